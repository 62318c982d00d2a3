"""The critic: a deterministic softplus MLP trained by semi-gradient TD(λ) (algorithms.md §2.2).

    V(s) = softplus(softplus(s W¹ + b¹) W² + b²) W³ + b³
    z ← λ_c γ z + ∇_θ V(s_t)          θ ← θ + Adam(δ · z)

The critic lives with the environment: it evaluates V when the environment steps and computes
the TD error δ = r + γ V(s')(1 − terminated) − V(s), which is then broadcast to the units.
Parameters use the same (units, inputs + 1) layout as the actor's groups (bias last).
"""

from __future__ import annotations

import numpy as np

from . import streams
from .kernels import glorot_bound, sigmoid, softplus
from .optim import AdamConfig, adam_ascent


def init_layer(seed: int, purpose: int, layer: int, n_in: int, n_out: int, fan_out: int | None = None,
               bias_scale: float = 1e-3) -> np.ndarray:
    """Glorot-uniform weights and U(−bias_scale, bias_scale) biases, keyed by (layer, unit, input)."""
    a = glorot_bound(n_in, fan_out if fan_out is not None else n_out)
    rows = np.arange(n_out, dtype=np.int64) + (layer << 32)
    u = streams.uniform_grid(seed, purpose, rows, np.arange(n_in + 1, dtype=np.int64))
    P = (2.0 * u - 1.0) * a
    P[:, -1] = (2.0 * u[:, -1] - 1.0) * bias_scale
    return P


def _with_one(v: np.ndarray) -> np.ndarray:
    """``v`` followed by a constant 1 (the bias input)."""
    out = np.empty(v.size + 1)
    out[:-1] = v
    out[-1] = 1.0
    return out


class Critic:
    """A deterministic MLP value function with TD(λ) traces and per-layer Adam."""

    def __init__(self, n_inputs: int, hidden, seed: int, *, lambda_: float, gamma: float,
                 lr_start, lr_end, lr_steps: int, adam: AdamConfig, bias_scale: float = 1e-3):
        sizes = [n_inputs, *hidden, 1]
        self.P = [init_layer(seed, streams.CRITIC_INIT, l, sizes[l], sizes[l + 1], bias_scale=bias_scale)
                  for l in range(len(sizes) - 1)]
        self.Z = [np.zeros_like(p) for p in self.P]
        self.M = [np.zeros_like(p) for p in self.P]
        self.V = [np.zeros_like(p) for p in self.P]
        self.t = 0
        self.decay = lambda_ * gamma
        n = len(sizes) - 1
        per_layer = lambda r: [float(x) for x in (r if isinstance(r, (list, tuple)) else [r])]  # noqa: E731
        self.lr_start, self.lr_end = per_layer(lr_start), per_layer(lr_end)
        if len(self.lr_start) == 1:
            self.lr_start *= n
        if len(self.lr_end) == 1:
            self.lr_end *= n
        self.lr_steps = lr_steps
        self.adam = adam

    def value_and_grad(self, s: np.ndarray):
        """V(s) and ∇_θ V(s) (one array per layer, same layout as the parameters)."""
        x = _with_one(np.asarray(s, dtype=np.float64))
        inputs, pots = [], []
        last = len(self.P) - 1
        for l, P in enumerate(self.P):
            pot = P @ x
            inputs.append(x)
            pots.append(pot)
            x = _with_one(pot if l == last else softplus(pot))
        value = float(pots[-1][0])
        grads = [None] * len(self.P)
        d = np.ones(1)  # ∂V/∂pot of the output
        for l in range(last, -1, -1):
            grads[l] = d[:, None] * inputs[l][None, :]
            if l:
                d = (self.P[l][:, :-1].T @ d) * sigmoid(pots[l - 1])
        return value, grads

    def value(self, s: np.ndarray) -> float:
        return self.value_and_grad(s)[0]

    def learn(self, delta: float, step: int) -> None:
        """θ ← θ + Adam(δ · z) at the learning rates of agent step ``step``."""
        self.t += 1
        for l, P in enumerate(self.P):
            lr = self.lr_start[l] + (self.lr_end[l] - self.lr_start[l]) * min(step, self.lr_steps) / self.lr_steps
            adam_ascent(P, self.M[l], self.V[l], self.Z[l] * delta, self.t, lr, self.adam)

    def reset_traces(self) -> None:
        for z in self.Z:
            z[...] = 0.0

    def record(self, grads) -> None:
        """z ← λ_c γ z + ∇V."""
        for z, g in zip(self.Z, grads):
            z *= self.decay
            z += g

    def state(self) -> dict:
        return {"P": self.P, "Z": self.Z, "M": self.M, "V": self.V, "t": self.t}


def make_critic(scenario, n_obs: int, seed: int, adam: AdamConfig):
    """The critic a scenario asks for (``[learning] critic``), or None."""
    L = scenario.learning
    if L.critic == "none":
        return None
    kwargs = dict(lambda_=L.critic_lambda, gamma=scenario.env.gamma, lr_start=L.critic_lr,
                  lr_end=L.critic_lr_end if L.critic_lr_end is not None else L.critic_lr,
                  lr_steps=L.lr_steps, adam=adam, bias_scale=scenario.network.bias_init)
    critic_seed = streams.seed_of(seed, "critic")
    if L.critic == "map_prop":
        from .map_critic import MapCritic
        return MapCritic(n_obs, L.critic_hidden, critic_seed, variance=L.critic_variance,
                         steps=L.map_steps, step_size=L.map_step_size, **kwargs)
    return Critic(n_obs, L.critic_hidden, critic_seed, **kwargs)
