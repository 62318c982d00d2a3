"""The MAP Propagation critic: a stochastic network of Gaussian units trained by MAP Propagation
with the gate (algorithms.md §3.4–3.5).

Hidden units are Gaussian with softplus means, the output linear Gaussian; a forward pass samples
every layer. The TD error uses the output *mean* of the forward pass,
``δ = r + γ μ_V(s')(1 − terminated) − μ_V(s)``. After learning, the hidden values relax toward
the most probable values given the sampled output v (held fixed), and every layer's trace
records its score at the relaxed state times the gate ``c = 1/(v − μ^L_MAP)``:
``z^l ← λ_c γ z^l + c · e^l ⊗ h^{l−1}_MAP``, so that the output layer learns exactly the
semi-gradient of −(target − μ)²/(2σ_L²). The gate divides by a noise sample; as published, there
is no guard. Like the deterministic critic it lives with the environment (no delays).
"""

from __future__ import annotations

import numpy as np

from asyncneurons.learning import streams
from asyncneurons.learning.critic import Critic
from asyncneurons.learning.kernels import potential
from asyncneurons.learning.rules.map_prop import map_error, relax_layers
from asyncneurons.learning.units import UNIT_KINDS, LayerParams


class MapCritic(Critic):
    """Stochastic critic trained by MAP Propagation with the gate."""

    def __init__(self, n_inputs, hidden, seed, *, variance, steps: int, step_size: float, **kwargs):
        super().__init__(n_inputs, hidden, seed, **kwargs)
        n = len(self.P)
        self.kinds = [UNIT_KINDS["gaussian"]] * (n - 1) + [UNIT_KINDS["linear_gaussian"]]
        self.lps = [LayerParams(1.0, float(v)) for v in variance]
        self.steps, self.step_size = steps, step_size
        self.keys = [(streams.unit_keys(seed, streams.SAMPLE, np.arange(P.shape[0]) + (l << 32)),
                      streams.unit_keys(seed, streams.SAMPLE2, np.arange(P.shape[0]) + (l << 32)))
                     for l, P in enumerate(self.P)]
        self.count = 0

    def value_and_grad(self, s):
        """Sample every layer on ``s``; return μ_V(s) and the sampled state (for :meth:`record`)."""
        x = np.asarray(s, dtype=np.float64)
        values = []
        for l, P in enumerate(self.P):
            H = np.empty_like(P)
            H[:, :-1] = x
            H[:, -1] = 1.0
            pot = potential(P, H)
            counters = np.full(P.shape[0], self.count, dtype=np.int64)
            u1, u2 = streams.uniforms(self.keys[l][0], counters), streams.uniforms(self.keys[l][1], counters)
            x, aux = self.kinds[l].sample(pot, self.lps[l], u1, u2)
            values.append(x)
        self.count += 1
        mean = float(aux[0])  # the output's mean μ_V(s)
        return mean, (np.asarray(s, dtype=np.float64), values)

    def record(self, state) -> None:
        """Relax with the output held at its sample, then record the gated scores."""
        s, values = state
        vals, Hs, pots = relax_layers(self.P, self.kinds, self.lps, s, values, None, self.steps, self.step_size)
        gate = 1.0 / (vals[-1][0] - pots[-1][0])
        for l, (z, H) in enumerate(zip(self.Z, Hs)):
            e = map_error(self.kinds[l], vals[l], pots[l], self.lps[l])
            z *= self.decay
            z += (gate * e)[:, None] * H


__all__ = ["MapCritic"]
