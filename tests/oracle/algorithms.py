"""The published algorithms, one plain loop (algorithms.md §1–§3), for the tests to trust.

Conventions shared with the engine, and only these (they are how a run is keyed, not how it
learns):

* run r of an experiment seeded s is seeded ``seed_of(s, "run", r)``; episode e of a run resets
  its task with ``seed_of(run_seed, "episode", e) mod 2³¹``;
* unit j of actor layer l (inputs are layer 0) has the id ``n_obs + Σ_{m<l} n_m + j``; its k-th
  sample uses the uniforms keyed (SAMPLE, id, k) and, for Gaussian units, (SAMPLE2, id, k);
  a normal is ``√(−2 ln(1 − u₁)) cos(2π u₂)``; a categorical draw takes the first action whose
  cumulative probability exceeds the first unit's uniform; a Bernoulli unit fires when u < p;
* the stochastic critic is seeded ``seed_of(run_seed, "critic")``, its unit j of layer l
  (0-based) keyed by ``j + l·2³²``, its k-th evaluation using counter k;
* the project's one ordering difference (docs/design.md): at agent step k the actor learns from
  δ_k *before* it samples a_k (the published code samples first; both credit δ_k to the same
  traces).

The loop per agent step k ≥ 1 (§1.1, §1.3):

1. act with a_{k−1}, or, after an episode ended and the dummy step is on, reset instead (r = 0);
2. δ_k = r + γ V(s_k)(1 − terminated) − V(s_{k−1}) (δ = r without a critic), set to 0 after a dummy
   step and on a time-limit end (unless truncated episodes bootstrap);
3. without the dummy step, an ended episode resets at once and the critic evaluates the new s_k;
4. the critic learns (θ ← θ + Adam(δ z)), clears z on a new episode, adds ∇V(s_k) (or, for the
   MAP critic, its gated score at the relaxed state);
5. the actor learns from δ_k (rule by rule, deepest layer first) and clears its traces on a new
   episode;
6. the actor samples every layer on s_k and records its traces: a_k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from asyncneurons.learning import streams

# ---------------------------------------------------------------------------------------------
# numerics (algorithms.md §2.1, §2.2: clamps as published)


def sigmoid(x):
    """σ(x) = 1 / (1 + e^{−x}), exactly 0 below −20 and 1 above 20."""
    x = np.asarray(x, dtype=np.float64)
    out = 1.0 / (1.0 + np.exp(-np.clip(x, -20.0, 20.0)))
    return np.where(x >= 20.0, 1.0, np.where(x <= -20.0, 0.0, out))


def softplus(x):
    """log(1 + eˣ), equal to x above 30 and to 0 below −30."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 30.0, x, np.where(x < -30.0, 0.0, np.log1p(np.exp(np.clip(x, -30.0, 30.0)))))


def softmax(z):
    """softmax after subtracting the largest entry and clamping what is below −30 to −30."""
    z = np.maximum(z - z.max(), -30.0)
    e = np.exp(z)
    return e / e.sum()


def normal(u1, u2):
    """Box–Muller: √(−2 ln(1 − u₁)) cos(2π u₂)."""
    return np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)


def draw(pi, u):
    """The first action whose cumulative probability exceeds u."""
    return min(int(np.sum(np.cumsum(pi) <= u)), pi.size - 1)


def schedule(start, end, steps, i):
    """lr(i) = start + (end − start) · min(i, steps) / steps (§1)."""
    return start + (end - start) * min(i, steps) / steps


@dataclass
class Adam:
    """The published Adam for ascent, one per parameter tensor (§1)."""

    beta1: float
    beta2: float
    eps: float
    correct_until: int
    m: np.ndarray = None
    v: np.ndarray = None
    t: int = 0

    def step(self, theta, g, lr):
        if self.m is None:
            self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
        self.t += 1
        self.m = self.beta1 * self.m + (1.0 - self.beta1) * g
        self.v = self.beta2 * self.v + (1.0 - self.beta2) * g * g
        if self.t < self.correct_until:
            m_hat, v_hat = self.m / (1.0 - self.beta1 ** self.t), self.v / (1.0 - self.beta2 ** self.t)
        else:
            m_hat, v_hat = self.m, self.v
        theta += lr * m_hat / (np.sqrt(v_hat) + self.eps)


# ---------------------------------------------------------------------------------------------
# a layer of the actor or of the MAP critic


@dataclass
class Layer:
    W: np.ndarray  # (inputs, units)
    b: np.ndarray  # (units,)
    kind: str  # bernoulli, gaussian, softplus, softmax, categorical, linear_gaussian
    T: float
    var: float
    keys1: np.ndarray
    keys2: np.ndarray
    lr: tuple
    adam_W: Adam
    adam_b: Adam
    count: int = 0
    EW: np.ndarray = None
    Eb: np.ndarray = None
    x: np.ndarray = None  # the inputs of the last sample
    pot: np.ndarray = None
    h: np.ndarray = None  # the sampled values (one-hot without the fixed logit for softmax)
    a: object = None  # the action index of a softmax or categorical layer
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.EW, self.Eb = np.zeros_like(self.W), np.zeros_like(self.b)

    def uniforms(self):
        u1 = streams.uniforms(self.keys1, np.full(self.keys1.shape, self.count, dtype=np.int64))
        u2 = streams.uniforms(self.keys2, np.full(self.keys2.shape, self.count, dtype=np.int64))
        return u1, u2

    def sample(self, x):
        """Sample the layer on inputs x (§2.1, §3.1); return the score g of the sample."""
        self.x = x
        pot = self.pot = x @ self.W + self.b
        u1, u2 = self.uniforms()
        self.count += 1
        if self.kind == "bernoulli":
            p = sigmoid(pot / self.T)
            self.h = (u1 < p).astype(np.float64)
            self.extra["p"] = p
            return (self.h - p) / self.T
        if self.kind == "softplus":
            self.h = softplus(pot)
            return np.zeros_like(pot)
        if self.kind == "gaussian":
            mu = softplus(pot)
            self.h = mu + math.sqrt(self.var) * normal(u1, u2)
            return (self.h - mu) * sigmoid(pot) / self.var
        if self.kind == "linear_gaussian":
            self.h = pot + math.sqrt(self.var) * normal(u1, u2)
            return (self.h - pot) / self.var
        z = pot / self.T
        fixed = self.kind == "softmax"  # n − 1 free logits, the last fixed at 0 (Weight Max)
        pi = softmax(np.append(z, 0.0) if fixed else z)
        self.a = draw(pi, u1[0])
        onehot = np.zeros(pi.size)
        onehot[self.a] = 1.0
        g = (onehot - pi) / self.T
        self.h = onehot[:-1] if fixed else onehot
        return g[:-1] if fixed else g

    def record(self, decay, g, x=None):
        """E_W ← λ' E_W + xᵀ g, E_b ← λ' E_b + g."""
        x = self.x if x is None else x
        self.EW = decay * self.EW + np.outer(x, g)
        self.Eb = decay * self.Eb + g

    def learn(self, R, step, lr_steps):
        """W ← W + Adam(E_W · R), b ← b + Adam(E_b · R), R per unit (or one number); return U_W."""
        lr = schedule(self.lr[0], self.lr[1], lr_steps, step)
        UW, Ub = self.EW * R, self.Eb * R
        self.adam_W.step(self.W, UW, lr)
        self.adam_b.step(self.b, Ub, lr)
        return UW

    def clear(self):
        self.EW[...] = 0.0
        self.Eb[...] = 0.0


def map_errors(layers, s, vals, action):
    """Pre-activations at the values ``vals`` and the error terms e^l (§3.3): Gaussian
    (h − μ) σ(pot)/σ², linear-Gaussian output (v − μ)/σ², categorical output (onehot(a) − π)/T."""
    pots, errors, x = [], [], s
    for lay, h in zip(layers, vals):
        pot = x @ lay.W + lay.b
        pots.append(pot)
        if lay.kind == "gaussian":
            errors.append((h - softplus(pot)) * sigmoid(pot) / lay.var)
        elif lay.kind == "linear_gaussian":
            errors.append((h - pot) / lay.var)
        else:
            pi = softmax(pot / lay.T)
            onehot = np.zeros(pi.size)
            onehot[action] = 1.0
            errors.append((onehot - pi) / lay.T)
        x = h
    return pots, errors


def map_relax(layers, s, action, steps, step_size):
    """N synchronous ascent steps on the hidden values, output frozen (§3.3):
    h^l ← h^l + α_l [(μ^l − h^l)/σ_l² + e^{l+1} W^{l+1 ᵀ}], α_l = step_size · σ_l²."""
    vals = [lay.h.copy() for lay in layers]
    for _ in range(steps):
        pots, errors = map_errors(layers, s, vals, action)
        new = []
        for l in range(len(layers) - 1):
            lay = layers[l]
            mu = softplus(pots[l])
            new.append(vals[l] + step_size * lay.var * ((mu - vals[l]) / lay.var + errors[l + 1] @ layers[l + 1].W.T))
        vals[:-1] = new
    pots, errors = map_errors(layers, s, vals, action)
    return vals, pots, errors


# ---------------------------------------------------------------------------------------------
# critics (§2.2, §3.4, §3.5)


class MlpCritic:
    """V(s) = softplus(softplus(s W1 + b1) W2 + b2) W3 + b3 by semi-gradient TD(λ) (§2.2)."""

    def __init__(self, Ps, decay, lr_start, lr_end, lr_steps, adam):
        self.W = [P[:, :-1].T.copy() for P in Ps]
        self.b = [P[:, -1].copy() for P in Ps]
        self.zW = [np.zeros_like(w) for w in self.W]
        self.zb = [np.zeros_like(b) for b in self.b]
        self.adam = [(Adam(*adam), Adam(*adam)) for _ in Ps]
        self.decay, self.lr_start, self.lr_end, self.lr_steps = decay, lr_start, lr_end, lr_steps

    def evaluate(self, s):
        """V(s) and ∇V by backprop: (value, (∇W, ∇b))."""
        xs, pots, x = [], [], s
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            xs.append(x)
            pot = x @ W + b
            pots.append(pot)
            x = pot if l == len(self.W) - 1 else softplus(pot)
        d = np.ones(1)
        gW, gb = [None] * len(self.W), [None] * len(self.W)
        for l in range(len(self.W) - 1, -1, -1):
            gW[l], gb[l] = np.outer(xs[l], d), d.copy()
            if l:
                d = (self.W[l] @ d) * sigmoid(pots[l - 1])
        return float(pots[-1][0]), (gW, gb)

    def learn(self, delta, step):
        for l in range(len(self.W)):
            lr = schedule(self.lr_start[l], self.lr_end[l], self.lr_steps, step)
            self.adam[l][0].step(self.W[l], delta * self.zW[l], lr)
            self.adam[l][1].step(self.b[l], delta * self.zb[l], lr)

    def clear(self):
        for z in self.zW + self.zb:
            z[...] = 0.0

    def record(self, state):
        gW, gb = state
        self.zW = [self.decay * z + g for z, g in zip(self.zW, gW)]
        self.zb = [self.decay * z + g for z, g in zip(self.zb, gb)]

    def matrices(self):
        return [np.concatenate([W.T, b[:, None]], axis=1) for W, b in zip(self.W, self.b)]


class MapCritic(MlpCritic):
    """A stochastic critic of Gaussian softplus units and a linear-Gaussian output, trained by
    MAP Propagation with the gate c = 1/(v − μ^L_MAP) (§3.4, §3.5); δ uses the forward mean."""

    def __init__(self, Ps, decay, lr_start, lr_end, lr_steps, adam, *, seed, variances, steps, step_size):
        super().__init__(Ps, decay, lr_start, lr_end, lr_steps, adam)
        self.layers = []
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            uid = np.arange(W.shape[1], dtype=np.int64) + (l << 32)
            kind = "linear_gaussian" if l == len(self.W) - 1 else "gaussian"
            self.layers.append(Layer(W, b, kind, 1.0, float(variances[l]),
                                     streams.unit_keys(seed, streams.SAMPLE, uid),
                                     streams.unit_keys(seed, streams.SAMPLE2, uid), (0.0, 0.0), None, None))
        self.steps, self.step_size = steps, step_size

    def evaluate(self, s):
        x = s
        for lay in self.layers:
            lay.sample(x)
            x = lay.h
        return float(self.layers[-1].pot[0]), (s, [lay.h.copy() for lay in self.layers])

    def record(self, state):
        s, values = state
        for lay, h in zip(self.layers, values):
            lay.h = h
        vals, pots, errors = map_relax(self.layers, s, None, self.steps, self.step_size)
        gate = 1.0 / (vals[-1][0] - pots[-1][0])
        xs = [s] + vals[:-1]
        self.zW = [self.decay * z + np.outer(x, gate * e) for z, x, e in zip(self.zW, xs, errors)]
        self.zb = [self.decay * z + gate * e for z, e in zip(self.zb, errors)]


# ---------------------------------------------------------------------------------------------
# the run


def engine_initial_state(scenario, run: int = 0) -> dict:
    """The initial weights the engine starts run ``run`` with (actor layers, critic layers), as
    (units × (inputs + 1)) arrays with the bias last: the one thing taken from the engine."""
    if scenario.learning.batch > 1:
        from asyncneurons.engine.supervised import SupervisedRun
        run_ = SupervisedRun(scenario, run)
        return {"actor": [lay["P"].copy() for lay in run_.layers], "critic": None}
    from asyncneurons.engine.simulation import Simulation
    sim = Simulation(scenario, run)
    return {"actor": [m.copy() for _, m in sorted(sim.layer_matrices().items())],
            "critic": None if sim.critic is None else [p.copy() for p in sim.critic.P]}


def _per_layer(value, n):
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return [float(v) for v in (values * n if len(values) == 1 else values)]


class Oracle:
    """One run of a layered scenario in the synchronous limit, from the equations."""

    def __init__(self, scenario, init: dict, run: int = 0, *, max_ticks: int | None = None):
        s, L = scenario, scenario.learning
        self.s, self.rule, self.max_ticks = s, L.rule, max_ticks
        self.seed = streams.seed_of(s.experiment.seed, "run", run)
        kwargs = {} if s.env.max_episode_steps is None else {"max_episode_steps": int(s.env.max_episode_steps)}
        import asyncneurons.tasks  # noqa: F401  (registers the multiplexer under gymnasium)
        asyncneurons.tasks.register()
        self.task = gym.make(s.env.id, **kwargs)
        n_obs = int(np.prod(self.task.observation_space.shape))
        adam = (L.adam_beta1, L.adam_beta2, L.adam_eps, L.bias_correction_steps)
        Ps = init["actor"]
        n = len(Ps)
        kinds = [s.network.unit] * (n - 1) + [self._output_kind(Ps[-1].shape[0])]
        temps, variances = _per_layer(s.network.temperature, n), _per_layer(s.network.variance, n)
        lr_start = _per_layer(L.lr, n)
        lr_end = _per_layer(L.lr_end if L.lr_end is not None else L.lr, n)
        self.layers, first = [], n_obs
        for l, P in enumerate(Ps):
            uid = np.arange(first, first + P.shape[0], dtype=np.int64)
            first += P.shape[0]
            self.layers.append(Layer(P[:, :-1].T.copy(), P[:, -1].copy(), kinds[l], temps[l], variances[l],
                                     streams.unit_keys(self.seed, streams.SAMPLE, uid),
                                     streams.unit_keys(self.seed, streams.SAMPLE2, uid),
                                     (lr_start[l], lr_end[l]), Adam(*adam), Adam(*adam)))
        self.decay = L.lambda_ * s.env.gamma
        self.critic = None
        if L.critic != "none":
            nc = len(init["critic"])
            args = (init["critic"], L.critic_lambda * s.env.gamma, _per_layer(L.critic_lr, nc),
                    _per_layer(L.critic_lr_end if L.critic_lr_end is not None else L.critic_lr, nc), L.lr_steps, adam)
            if L.critic == "map_prop":
                self.critic = MapCritic(*args, seed=streams.seed_of(self.seed, "critic"),
                                        variances=_per_layer(L.critic_variance, nc), steps=L.map_steps,
                                        step_size=L.map_step_size)
            else:
                self.critic = MlpCritic(*args)
        self.episodes, self.actions = [], []

    def _output_kind(self, n_out):
        out = self.s.network.output
        if out is not None:
            return out
        return "softmax" if isinstance(self.task.action_space, gym.spaces.Discrete) else "linear_gaussian"

    # -- the actor ------------------------------------------------------------------------------

    def forward(self, s):
        """Sample every layer on s, record the traces as the rule says; return a_k."""
        x, scores = s, []
        for lay in self.layers:
            scores.append(lay.sample(x))
            x = lay.h
        out = self.layers[-1]
        if self.rule in ("backprop", "ste_backprop"):  # §2.5: g^l = (g^{l+1} W^{l+1 ᵀ}) ⊙ f'(pot^l)
            g = scores[-1]
            out.record(self.decay, g)
            for lay, above in zip(reversed(self.layers[:-1]), reversed(self.layers[1:])):
                slope = (lay.extra["p"] * (1.0 - lay.extra["p"]) if lay.kind == "bernoulli" else sigmoid(lay.pot))
                g = (g @ above.W.T) * slope
                lay.record(self.decay, g)
        elif self.rule == "map_prop":  # §3.3: record at the relaxed state
            L = self.s.learning
            vals, pots, errors = map_relax(self.layers, s, out.a, L.map_steps, L.map_step_size)
            for lay, x_in, e in zip(self.layers, [s] + vals[:-1], errors):
                lay.record(self.decay, e, x_in)
        else:
            for lay, g in zip(self.layers, scores):
                lay.record(self.decay, g)
        if out.kind in ("softmax", "categorical"):
            return out.a
        if out.kind == "bernoulli":
            return int(out.h[0])
        return out.h.copy()

    def learn(self, delta, step, new_episode):
        lr_steps = self.s.learning.lr_steps
        if self.rule in ("weight_max", "weight_max_exact"):  # §2.3: deepest first, R from the layer above
            R = delta
            for l in range(len(self.layers) - 1, -1, -1):
                lay = self.layers[l]
                W_before = lay.W.copy()
                U = lay.learn(R, step, lr_steps)
                if self.rule == "weight_max":
                    R = (2.0 * lay.W * U).sum(axis=1)  # R_i = 2 Σ_j W_ij U_ij, W after the update
                else:
                    R = (lay.W ** 2 - W_before ** 2).sum(axis=1)
        else:  # REINFORCE on δ for every layer (global REINFORCE, backprop, STE, MAP Prop)
            for lay in reversed(self.layers):
                lay.learn(delta, step, lr_steps)
        if new_episode:
            for lay in self.layers:
                lay.clear()

    # -- the loop (§1.1, §1.3) --------------------------------------------------------------------

    def _reset(self, episode):
        seed = streams.seed_of(self.seed, "episode", episode) % (2 ** 31)
        return np.asarray(self.task.reset(seed=seed)[0], dtype=np.float64).ravel()

    def _env_action(self, a):
        space = self.task.action_space
        if isinstance(space, gym.spaces.Discrete):
            return int(space.start) + int(a)
        a = np.asarray(a, dtype=np.float64).reshape(space.shape)
        if self.s.env.action_map == "affine":
            a = a * (space.high - space.low) - space.low
        return np.clip(a, space.low, space.high).astype(np.float32)

    def run(self):
        env, critic = self.s.env, self.critic
        episode, k, prev_end, ret, length = 0, 0, False, 0.0, 0
        obs = self._reset(0)
        if critic is not None:
            v_prev, state = critic.evaluate(obs)
            critic.record(state)
        action = self.forward(obs)
        self.actions.append(action)
        while True:
            k += 1
            terminated = truncated = masked = new_episode = False
            if prev_end:  # the dummy step: reset instead of acting, reward 0, δ masked
                obs, reward, masked, new_episode, prev_end = self._reset(episode), 0.0, True, True, False
            else:
                obs, reward, terminated, truncated, info = self.task.step(self._env_action(action))
                obs, reward = np.asarray(obs, dtype=np.float64).ravel(), float(reward)
                ret, length = ret + reward, length + 1
            ended = terminated or truncated
            if ended:
                self.episodes.append((episode, ret, length))
                episode, ret, length = episode + 1, 0.0, 0
                if episode >= self.s.experiment.episodes:
                    break
                if env.dummy_step:
                    prev_end = True
                else:
                    new_episode = True
            if self.max_ticks is not None and k >= self.max_ticks:
                break
            r = reward if env.reward_clip is None else float(np.clip(reward, -env.reward_clip, env.reward_clip))
            if critic is not None:
                value, state = critic.evaluate(obs)
                delta = r + env.gamma * value * (0.0 if terminated else 1.0) - v_prev
            else:
                delta = r
            if masked or (truncated and not terminated and not env.bootstrap_truncated):
                delta = 0.0
            if ended and not env.dummy_step:
                obs = self._reset(episode)
                if critic is not None:
                    value, state = critic.evaluate(obs)
            if critic is not None:
                critic.learn(delta, k)
                if new_episode:
                    critic.clear()
                critic.record(state)
                v_prev = value
            self.learn(delta, k, new_episode)
            action = self.forward(obs)
            self.actions.append(action)
        return self

    def layer_matrices(self) -> dict:
        """The actor's parameters in the engine's layout, for comparison."""
        return {l + 1: np.concatenate([lay.W.T, lay.b[:, None]], axis=1) for l, lay in enumerate(self.layers)}
