"""Replicas: independent runs of one scenario simulated together, with a leading batch axis.

In the synchronous limit (every delay zero, ``on_all`` firing, ``wait`` pacing) every run has the
same event structure, so R runs can share it: every array gains a leading axis of length R
(weights, traces, moments, held values, the critic's parameters), each replica keeps its own
keyed random streams, initial weights and gymnasium task, and one NumPy call serves all R.
Every operation is arranged so that replica r computes exactly the bits of run r simulated alone
(row-wise reductions, stacked matrix products, the same elementwise formulas); a test holds each
replica's episodes and weights equal to the single runs'. For the compiled kernels a layer of R
replicas of m units is one group of R·m rows (:class:`_Rows`): it fires and learns through the
single run's kernels, and what the single run computes over a whole group or buffer is its
kernel once per replica (:mod:`asyncneurons.engine.replica_kernels`). The stochastic (MAP) critic keeps a
sample index per replica: a replica whose episode ends without the dummy step samples its critic
again on its new first state, and only its index moves. Replicas serve the layered rules
(``global_reinforce``, ``weight_max``, ``weight_max_exact``, ``backprop``, ``ste_backprop``) and
MAP Propagation (relaxation period 0), with either critic or none.

A replica whose episodes are done keeps stepping (its rows are no longer reported) until every
replica is done: the others do not depend on it.

Replicas checkpoint at the top of their step loop, mid-episode for most of them: each task is
brought back by replaying the actions it was given since the reset that began its episode
(:mod:`asyncneurons.engine.checkpoint`); a resumed chunk gives the numbers of an uninterrupted one.
"""

from __future__ import annotations

import time

import numpy as np

from asyncneurons.engine import replica_kernels
from asyncneurons.learning import streams, traces
from asyncneurons import tasks
from asyncneurons.learning.critic import init_layer
from asyncneurons.errors import DivergenceError, ScenarioError
from asyncneurons.learning.kernels import NO_DECAYS, potential, sum_rows
from asyncneurons.learning.rules.map_prop import map_error, relax_layers
from asyncneurons.learning.optim import AdamConfig, adam_ascent, adam_constants, linear_schedule
from asyncneurons.learning.rules import RULES
from asyncneurons.learning.rules.base import Rule
from asyncneurons.engine.reference import SyncRelaxation, synchronous_layers
from asyncneurons.engine.simulation import build_graph, run_seed
from asyncneurons.learning.units import FUSED_KINDS, UNIT_KINDS, LayerParams, sample_and_trace

SUPPORTED_RULES = ("global_reinforce", "weight_max", "weight_max_exact", "backprop", "ste_backprop", "map_prop")


def supports(scenario) -> bool:
    """True when the scenario is in the synchronous limit and its rule and critic are supported."""
    t, s = scenario.timing, scenario
    zero = all(isinstance(d, (int, float)) and float(d) == 0.0
               for d in (t.synapse_delay, t.reward_delay, t.retro_delay, t.synapse_jitter,
                                         t.reward_jitter, t.retro_jitter))
    return (zero and t.firing == "on_all" and t.refractory == 0 and s.env.pacing == "wait" and s.learning.batch == 1
            and s.network.graph is None and s.learning.rule in SUPPORTED_RULES
            and (t.relax_period == 0 or s.learning.rule != "map_prop"))


def _plain(*arrays) -> bool:
    """True when every array is C-contiguous (the compiled kernels' layout)."""
    for a in arrays:
        if not a.flags.c_contiguous:
            return False
    return True


def _finite(a: np.ndarray) -> bool:
    """True when every entry of ``a`` is finite (a finite sum says so at once; NaN and ±∞ carry
    into any sum that contains them)."""
    return bool(np.isfinite(a.sum())) or bool(np.isfinite(a).all())


class _Rows:
    """A stacked layer (R replicas × m units) seen by a rule as one group of R·m rows, replica
    after replica: its parameters, trace and moments are views of the layer's, so the rule's
    compiled learning step (one pass over independent rows) serves every replica at once, and
    the signals it is given and sends carry one entry per row."""

    def __init__(self, lay):
        R, m, n = lay.P.shape
        self.lay, self.m, self.layer, self.retro_buckets = lay, m, lay.layer, lay.retro_buckets
        self.P, self.E, self.M, self.V = (a.reshape(R * m, n) for a in (lay.P, lay.E, lay.M, lay.V))
        self.keys1, self.count = lay.keys1.reshape(R * m), lay.count.reshape(R * m)
        self.decay, self.tau = lay.decay, getattr(lay, "tau", None)
        if self.tau is not None:
            self.trace_time = lay.trace_time.reshape(R * m)

    t = property(lambda self: self.lay.t, lambda self, t: setattr(self.lay, "t", t))


def _policy(pot: np.ndarray, temperature: float, fixed_last: bool) -> np.ndarray:
    """Row-wise softmax, the same operations as :func:`units.categorical_policy` on each row."""
    z = pot / temperature
    if fixed_last:
        z = np.concatenate([z, np.zeros((z.shape[0], 1))], axis=1)
    z = z - z.max(axis=-1, keepdims=True)
    z[z < -30.0] = -30.0
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _sample(kind, pot, lp, u1, u2):
    """A layer's samples for every replica (rows)."""
    if kind.name in ("softmax", "categorical"):
        pi = _policy(pot, lp.temperature, kind.name == "softmax")
        a = np.minimum((np.cumsum(pi, axis=-1) <= u1[:, :1]).sum(axis=-1), pi.shape[1] - 1)
        onehot = np.zeros_like(pi)
        onehot[np.arange(len(a)), a] = 1.0
        g = (onehot - pi) / lp.temperature
        if kind.name == "softmax":
            return onehot[:, :-1], (pi, a), g[:, :-1]
        return onehot, (pi, a), g
    values, aux = kind.sample(pot, lp, u1, u2)
    return values, aux, kind.score(values, pot, aux, lp)


class _BatchCritic:
    """The deterministic critic for R replicas (stacked matrix products, same bits as alone)."""

    def __init__(self, n_obs, hidden, seeds, *, lambda_, gamma, lr_start, lr_end, lr_steps, adam, bias_scale):
        sizes = [n_obs, *hidden, 1]
        self.P = [np.stack([init_layer(s, streams.CRITIC_INIT, l, sizes[l], sizes[l + 1], bias_scale=bias_scale)
                            for s in seeds]) for l in range(len(sizes) - 1)]
        self.Z = [np.zeros_like(p) for p in self.P]
        self.M = [np.zeros_like(p) for p in self.P]
        self.V = [np.zeros_like(p) for p in self.P]
        self.t, self.decay, self.adam, self.lr_steps = 0, lambda_ * gamma, adam, lr_steps
        n = len(self.P)
        per = lambda r: [float(x) for x in (r if isinstance(r, (list, tuple)) else [r])]  # noqa: E731
        self.lr_start, self.lr_end = per(lr_start), per(lr_end)
        self.lr_start *= n if len(self.lr_start) == 1 else 1
        self.lr_end *= n if len(self.lr_end) == 1 else 1

    def value_and_grad(self, S, rows=None):
        """V(s) and ∇V(s) of every replica (``rows``: which replicas this evaluation is for; a
        deterministic critic gives the others the same bits again, so it evaluates them all).
        Matrix products are NumPy's, stacked; the softplus, σ and outer products are the single
        critic's kernels per replica (:mod:`asyncneurons.engine.replica_kernels`)."""
        R = S.shape[0]
        x = np.empty((R, S.shape[1] + 1))
        x[:, :-1] = S
        x[:, -1] = 1.0
        inputs, slopes, last = [], [], len(self.P) - 1
        for l, P in enumerate(self.P):
            pot = np.matmul(P, x[..., None])[..., 0]
            inputs.append(x)
            if l == last:
                break
            m = pot.shape[1]
            buf = np.empty((R, 2 * m))
            replica_kernels.critic_hidden_pre_rows(pot, buf)
            np.exp(buf, out=buf)
            logs = np.log1p(buf)  # on every entry (contiguous): the first m of each row are kept
            x = np.empty((R, m + 1))
            replica_kernels.critic_hidden_post_rows(pot, buf, logs, x)
            slopes.append(buf[:, m:])
        d = np.ones((R, 1))
        grads = [None] * len(self.P)
        for l in range(last, -1, -1):
            grads[l] = np.empty(self.P[l].shape)
            replica_kernels.outer_rows(d, inputs[l], grads[l])
            if l:
                d = np.matmul(self.P[l][:, :, :-1].transpose(0, 2, 1), d[..., None])[..., 0] * slopes[l - 1]
        return pot[:, 0].copy(), grads

    def reevaluate(self, S, rows, value, state):
        """After the replicas in ``rows`` reset their tasks: their V(s) and state evaluated again,
        the other replicas' kept as they are (each replica sees what its run alone sees)."""
        v2, state2 = self.value_and_grad(S, rows)
        value = np.where(rows, v2, value)
        return value, self._merge(rows, state, state2)

    @staticmethod
    def _merge(rows, old, new):
        out = []
        for a, b in zip(old, new):
            c = a.copy()
            c[rows] = b[rows]
            out.append(c)
        return out

    def learn(self, delta, step):
        """θ ← θ + Adam(δ · z) for every replica, each at its own δ."""
        self.t += 1
        R, consts = len(delta), adam_constants(self.adam, self.t)
        delta = np.ascontiguousarray(delta, dtype=np.float64)
        for l, P in enumerate(self.P):
            lr = self.lr_start[l] + (self.lr_end[l] - self.lr_start[l]) * min(step, self.lr_steps) / self.lr_steps
            if _plain(P, self.M[l], self.V[l], self.Z[l]):
                replica_kernels.adam_scaled_rows(P.reshape(R, -1), self.M[l].reshape(R, -1), self.V[l].reshape(R, -1),
                                                 self.Z[l].reshape(R, -1), delta, float(lr), *consts)
            else:
                adam_ascent(P, self.M[l], self.V[l], self.Z[l] * delta[:, None, None], self.t, lr, self.adam)

    def record(self, grads, reset):
        """z ← λ_c γ z + ∇V, each replica's z cleared first where ``reset``."""
        reset = np.ascontiguousarray(reset, dtype=np.bool_)
        for z, g in zip(self.Z, grads):
            if _plain(z, g) and z.shape == g.shape:
                R = z.shape[0]
                replica_kernels.record_rows(z.reshape(R, -1), reset, float(self.decay), g.reshape(R, -1))
                continue
            z[reset] = 0.0
            z *= self.decay
            z += g


class _BatchMapCritic(_BatchCritic):
    """The MAP Propagation critic for R replicas (:mod:`asyncneurons.learning.map_critic`, batched)."""

    def __init__(self, n_obs, hidden, seeds, *, variance, steps, step_size, **kwargs):
        super().__init__(n_obs, hidden, seeds, **kwargs)
        n = len(self.P)
        self.kinds = [UNIT_KINDS["gaussian"]] * (n - 1) + [UNIT_KINDS["linear_gaussian"]]
        self.lps = [LayerParams(1.0, float(v)) for v in variance]
        self.steps, self.step_size = steps, step_size
        self.count = np.zeros(len(seeds), dtype=np.int64)  # each replica's own sample index
        self.keys = [(np.stack([streams.unit_keys(s, streams.SAMPLE, np.arange(P.shape[1]) + (l << 32)) for s in seeds]),
                      np.stack([streams.unit_keys(s, streams.SAMPLE2, np.arange(P.shape[1]) + (l << 32)) for s in seeds]))
                     for l, P in enumerate(self.P)]

    def value_and_grad(self, S, rows=None):
        """Sample every replica's critic on its row of ``S``, each at its own sample index; only
        the replicas in ``rows`` (all when None) advance theirs, as only they sampled alone."""
        self.count = np.zeros(S.shape[0], dtype=np.int64) + self.count  # a scalar from an old checkpoint
        x, values = S, []
        for l, P in enumerate(self.P):
            H = np.empty_like(P)
            H[..., :-1] = x[:, None, :]
            H[..., -1] = 1.0
            pot = potential(P, H)
            counters = np.broadcast_to(self.count[:, None], P.shape[:2])
            u1, u2 = streams.uniforms(self.keys[l][0], counters), streams.uniforms(self.keys[l][1], counters)
            x, aux = self.kinds[l].sample(pot, self.lps[l], u1, u2)
            values.append(x)
        self.count = self.count + (1 if rows is None else np.asarray(rows, dtype=np.int64))
        return aux[:, 0].copy(), (S.copy(), values)

    @staticmethod
    def _merge(rows, old, new):
        (s_old, v_old), (s_new, v_new) = old, new
        s = s_old.copy()
        s[rows] = s_new[rows]
        return s, _BatchCritic._merge(rows, v_old, v_new)

    def record(self, state, reset):
        s, values = state
        vals, Hs, pots = relax_layers(self.P, self.kinds, self.lps, s, values, None, self.steps, self.step_size)
        gate = 1.0 / (vals[-1][:, 0] - pots[-1][:, 0])
        for l, (z, H) in enumerate(zip(self.Z, Hs)):
            e = map_error(self.kinds[l], vals[l], pots[l], self.lps[l])
            z[reset] = 0.0
            z *= self.decay
            z += (gate[:, None] * e)[..., None] * H


class Replicas:
    """R runs of a synchronous-limit scenario, simulated together; ``run()`` like a Simulation.

    ``on_episode(row)`` receives each replica's episodes with ``row["run"]`` its run index.
    """

    now = 0.0  # the synchronous limit is one instant: exponential traces never decay (asyncneurons.learning.traces)

    def __init__(self, scenario, runs, *, on_episode=None, max_ticks: int | None = None):
        if not supports(scenario):
            raise ScenarioError("replicas need the synchronous limit (zero delays, on_all firing, wait pacing, "
                                f"a layered network) and one of the rules {', '.join(SUPPORTED_RULES)}")
        s = self.scenario = scenario
        self.runs = list(runs)
        R = len(self.runs)
        self.seeds = [run_seed(s.experiment.seed, r) for r in self.runs]
        self.tasks = [tasks.make_env(s.env.id, s.env.max_episode_steps) for _ in self.runs]
        spec = tasks.action_spec(self.tasks[0])
        n_obs = int(np.prod(self.tasks[0].observation_space.shape))
        g = build_graph(s, n_obs, spec, self.seeds[0])
        L = s.learning
        self.adam = AdamConfig(L.adam_beta1, L.adam_beta2, L.adam_eps, L.bias_correction_steps)
        self.layers = synchronous_layers(s, g, self.seeds, stacked=True)
        for lay in self.layers:
            lay.count = np.zeros(lay.keys1.shape, dtype=np.int64)  # each replica's counters, in lockstep
        self.n_layers = len(self.layers)
        self.rule = RULES[L.rule](s)
        self._fused = type(self.rule).on_sample is Rule.on_sample  # sampling records the plain trace only
        self.relaxation = SyncRelaxation(self)  # the reference's, on arrays with a replica axis
        self.critic = None
        if L.critic == "map_prop":
            self.critic = _BatchMapCritic(n_obs, L.critic_hidden, [streams.seed_of(x, "critic") for x in self.seeds],
                                          lambda_=L.critic_lambda, gamma=s.env.gamma, lr_start=L.critic_lr,
                                          lr_end=L.critic_lr_end if L.critic_lr_end is not None else L.critic_lr,
                                          lr_steps=L.lr_steps, adam=self.adam, bias_scale=s.network.bias_init,
                                          variance=L.critic_variance, steps=L.map_steps, step_size=L.map_step_size)
        elif L.critic == "mlp":
            self.critic = _BatchCritic(n_obs, L.critic_hidden, [streams.seed_of(x, "critic") for x in self.seeds],
                                       lambda_=L.critic_lambda, gamma=s.env.gamma, lr_start=L.critic_lr,
                                       lr_end=L.critic_lr_end if L.critic_lr_end is not None else L.critic_lr,
                                       lr_steps=L.lr_steps, adam=self.adam, bias_scale=s.network.bias_init)
        self.on_episode, self.max_ticks, self.R = on_episode, max_ticks, R
        self._action_map = s.env.action_map
        self.checkpoint = None  # called with the step loop's variables at the top of every step
        self.replay: list = [[] for _ in range(R)]

    # the interface rules use (as the event engine and the reference offer it)
    def lr(self, layer: int, step: int) -> float:
        return linear_schedule(*self.layers[layer - 1].lr, self.scenario.learning.lr_steps, step)

    def send_retro(self, lay, C, step, reset) -> None:
        """The layer below receives, per replica and unit, the sum of ``C`` over this layer's
        units (rows of a :class:`_Rows` group: one entry per row of the layer below)."""
        if isinstance(lay, _Rows) and _plain(C):
            out = np.empty((self.R, C.shape[1]))
            replica_kernels.sum_blocks(C, lay.m, out)
            self._retro = out.reshape(-1)
        elif isinstance(lay, _Rows):
            self._retro = sum_rows(C.reshape(self.R, lay.m, -1)).reshape(-1)
        else:
            self._retro = sum_rows(C)

    def _drain(self, index: int, step: int, groups) -> None:
        while getattr(self, "_retro", None) is not None and index > 0:
            index -= 1
            signal, self._retro = self._retro, None
            self.rule.on_retro(self, groups[index], signal, step, False)

    def forward(self, obs: np.ndarray) -> np.ndarray:
        self.obs = x = obs
        for lay, rows in zip(self.layers, self._rows):
            H = np.empty_like(lay.P)
            replica_kernels.hold_inputs(np.ascontiguousarray(x, dtype=np.float64), H)
            lay.H = H
            if self._fused and lay.kind.name in FUSED_KINDS:
                values, aux, g = self._fire(lay, rows)
                lay.values, lay.aux = values, aux
            else:
                pot = potential(lay.P, H)
                u1 = streams.uniforms(lay.keys1, lay.count)
                u2 = streams.uniforms(lay.keys2, lay.count) if lay.kind.gaussian else None
                values, aux, g = _sample(lay.kind, pot, lay.lp, u1, u2)
                lay.values, lay.aux = values, aux
                self.rule.on_sample(self, lay, values, aux, g)
                lay.count += 1
            x = values
        self._drain(len(self.layers) - 1, -1, self.layers)
        kind = self.layers[-1].kind
        if kind.name in ("softmax", "categorical"):
            return aux[1]
        if kind.name == "bernoulli":
            return values[:, 0].astype(int)
        return values

    def _fire(self, lay, rows):
        """A layer's sample, score and trace for every replica in compiled kernels, on its R·m
        rows (the single run's firing, :func:`asyncneurons.learning.units.sample_and_trace`, per row;
        a softmax or categorical output per replica): the same bits as sampling and then
        recording the trace (``Rule.on_sample``)."""
        R, m, n = lay.P.shape
        P, H, E, keys, counters = rows.P, lay.H.reshape(R * m, n), rows.E, rows.keys1, rows.count
        decay = traces.record_decay(lay, self.now)
        per_row = isinstance(decay, np.ndarray)
        if per_row:
            decay = np.ascontiguousarray(decay, dtype=np.float64).reshape(R * m)
        if lay.kind.name == "bernoulli":
            values, p, g = sample_and_trace(lay.kind, P, H, E, keys, counters, lay.lp, decay)
            return values.reshape(R, m), p.reshape(R, m), g.reshape(R, m)
        T = float(lay.lp.temperature)
        n_logits = m + 1 if lay.kind.name == "softmax" else m
        pot, z = np.empty(R * m), np.empty((R, n_logits))
        replica_kernels.logits_rows(P, H, T, m, n_logits, pot, z)
        np.exp(z, out=z)
        values, g, actions = np.empty(R * m), np.empty(R * m), np.empty(R, dtype=np.int64)
        replica_kernels.categorical_rows(z, keys, counters, T, 0.0 if per_row else float(decay),
                                         decay if per_row else NO_DECAYS, H, E, values, g, actions)
        return values.reshape(R, m), (z, actions), g.reshape(R, m)

    def learn(self, delta: np.ndarray, step: int, reset: np.ndarray) -> None:
        """Learning, deepest layer first, each layer seen as one group of R·m rows (:class:`_Rows`):
        δ is given to every row of its replica."""
        self._retro = None
        rows = self._rows
        if self.rule.broadcast_to_hidden:
            for g in reversed(rows):
                self.rule.on_reward(self, g, np.repeat(delta, g.m), step, False)
        else:
            self.rule.on_reward(self, rows[-1], np.repeat(delta, rows[-1].m), step, False)
            self._drain(len(self.layers) - 1, step, rows)
        for lay in self.layers:
            lay.E[reset] = 0.0

    def _prepare(self) -> None:
        """Per-replica sample counters (a checkpoint taken before they were kept per replica
        holds one per unit), contiguous arrays, and the layers' row views on them as they now are
        (a checkpoint's restore replaces the arrays; the views must write into the layer's own)."""
        for lay in self.layers:
            if lay.count.shape != lay.keys1.shape:
                lay.count = np.broadcast_to(lay.count, lay.keys1.shape).copy()
            for name in ("P", "E", "M", "V", "count", "keys1", "trace_time"):
                a = getattr(lay, name, None)
                if a is not None and not a.flags.c_contiguous:
                    setattr(lay, name, np.ascontiguousarray(a))
        self._rows = [_Rows(lay) for lay in self.layers]

    def _reset(self, r: int, episode: int) -> np.ndarray:
        seed = streams.seed_of(self.seeds[r], "episode", episode) % (2 ** 31)
        self.replay[r] = []  # the actions given since this reset (what a checkpoint replays)
        return np.asarray(self.tasks[r].reset(seed=seed)[0], dtype=np.float64).ravel()

    def _step(self, r: int, action):
        self.replay[r].append(action)
        task = self.tasks[r]
        return task.step(tasks.to_env_action(task, action, self._action_map))

    def _replay(self, episode: np.ndarray, prev_end: np.ndarray, obs: np.ndarray) -> None:
        """Bring every task back to where a checkpoint left it: reset it as its episode began and
        give it the same actions again (the tasks are deterministic given their reset seed)."""
        from asyncneurons.engine.checkpoint import CheckpointError
        for r in range(self.R):
            if prev_end[r]:
                continue  # its episode has ended: the task is reset before it steps again
            actions, o = self.replay[r], self._reset(r, int(episode[r]))
            for a in actions:
                o = np.asarray(self._step(r, a)[0], dtype=np.float64).ravel()
            if not np.array_equal(o, obs[r]):
                raise CheckpointError(f"run {self.runs[r]}: replaying its episode's {len(actions)} actions does "
                                      f"not bring the task back to the checkpoint's observation")

    def run(self, resume: dict | None = None):
        """Simulate until every replica has done its episodes; ``resume``: the step loop's
        variables from a checkpoint (:func:`asyncneurons.engine.checkpoint.restore_replicas`). With
        ``self.checkpoint`` set, it is called with those variables at the top of every step."""
        s, critic, R = self.scenario, self.critic, self.R
        gamma, clip, dummy = s.env.gamma, s.env.reward_clip, s.env.dummy_step
        episodes = s.experiment.episodes
        v_prev = grads = None
        self._prepare()
        if resume is None:
            self.replay = [[] for _ in range(R)]
            episode = np.zeros(R, dtype=int)
            prev_end = np.zeros(R, dtype=bool)
            obs = np.stack([self._reset(r, 0) for r in range(R)])
            ret, length = np.zeros(R), np.zeros(R, dtype=int)
            if critic is not None:
                v_prev, grads = critic.value_and_grad(obs)
                critic.record(grads, np.zeros(R, dtype=bool))
            action = self.forward(obs)
            k = 0
        else:
            k, episode, prev_end, obs, ret, length, v_prev, grads, action = (
                resume[name] for name in ("k", "episode", "prev_end", "obs", "ret", "length", "v_prev", "grads",
                                          "action"))
            self._replay(episode, prev_end, obs)
        wall = [time.perf_counter()] * R
        while True:
            if self.checkpoint is not None:
                self.checkpoint({"k": k, "episode": episode, "prev_end": prev_end, "obs": obs, "ret": ret,
                                 "length": length, "v_prev": v_prev, "grads": grads, "action": action})
            k += 1
            rewards, term, trunc = np.zeros(R), np.zeros(R, dtype=bool), np.zeros(R, dtype=bool)
            masked, new_episode = prev_end.copy(), prev_end.copy()
            for r, reset in enumerate(prev_end.tolist()):  # the tasks step one by one; the rest is per array
                if reset:
                    obs[r] = self._reset(r, episode[r])
                    wall[r] = time.perf_counter()
                else:
                    o, rew, term[r], trunc[r], _ = self._step(r, action[r])
                    obs[r], rewards[r] = np.asarray(o).reshape(-1), float(rew)
            ret += rewards  # a task that was reset has the reward 0.0, which leaves its return as it is
            length += ~prev_end
            prev_end[:] = False
            ended = term | trunc
            if ended.any():
                self._check_finite(k)
            for r in np.flatnonzero(ended):
                if episode[r] < episodes and self.on_episode is not None:
                    self.on_episode({"run": self.runs[r], "episode": int(episode[r]), "return": float(ret[r]),
                                     "length": int(length[r]), "sim_time_ms": 0.0,
                                     "wall_s": time.perf_counter() - wall[r], "stale_actions": 0})
                episode[r] += 1
                ret[r], length[r], wall[r] = 0.0, 0, time.perf_counter()
            if (episode >= episodes).all() or (self.max_ticks is not None and k >= self.max_ticks):
                break
            rr = rewards if clip is None else np.clip(rewards, -clip, clip)
            if critic is not None:
                value, grads = critic.value_and_grad(obs)
                delta = rr + gamma * value * np.where(term, 0.0, 1.0) - v_prev
            else:
                delta = rr.copy()
            delta[masked | (trunc & ~term & (not s.env.bootstrap_truncated))] = 0.0
            if dummy:
                prev_end |= ended
            else:
                new_episode |= ended
                for r in np.flatnonzero(ended):
                    obs[r] = self._reset(r, episode[r])
                if critic is not None and ended.any():
                    value, grads = critic.reevaluate(obs, ended, value, grads)
            if critic is not None:
                critic.learn(delta, k)
                critic.record(grads, new_episode)
                v_prev = value
            self.learn(delta, k, new_episode)
            action = self.forward(obs)
        return self

    def _check_finite(self, step: int) -> None:
        for lay in self.layers:
            if not _finite(lay.P):
                r, row = (int(i) for i in np.argwhere(~np.isfinite(lay.P))[0][:2])
                raise DivergenceError(f"run {self.runs[r]}: a unit of layer {lay.layer} (index {row}) has a "
                                      f"non-finite weight at agent step {step}; the learning rate learning.lr "
                                      f"is the most likely cause")
        if self.critic is not None and not all(_finite(p) for p in self.critic.P):
            raise DivergenceError(f"the critic of a run has a non-finite weight at agent step {step}; the "
                                  f"learning rate learning.critic_lr is the most likely cause")

    def layer_matrices(self, replica: int) -> dict:
        return {lay.layer: lay.P[replica] for lay in self.layers}
