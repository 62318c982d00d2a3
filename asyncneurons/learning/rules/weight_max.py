"""Weight Maximization: every hidden unit is a REINFORCE agent whose reward is the change of the
norm of its outgoing weights (algorithms.md §2.3–2.4).

Output units learn by REINFORCE on the broadcast TD error: ``U^L = E^L δ``, ``W^L ← W^L +
Adam(U^L)``. Each synapse i → j then sends unit i a retrograde signal, and unit i's reward is
their sum over its outgoing synapses:

* ``weight_max`` (published, first order)::

      R_i = Σ_j p |W_ij|^{p−1} sign(W_ij) U_ij          (p = 2:  R_i = 2 Σ_j W_ij E_ij R_j)

  with W the weights *after* the update and U = E·R the raw update (no learning rate, no Adam,
  no ΔW² term; biases do not enter).

* ``weight_max_exact`` (a variant, labelled as such): the exact change of the p-norm to the
  power p under the update actually applied, ``R_i = Σ_j |W_ij + ΔW_ij|^p − |W_ij|^p``.

A hidden unit learns ``W ← W + Adam(E · R)`` when its signals land, using its trace at that
moment, then passes its own signals on. No unit waits for another: with eligibility traces
(λ > 0) this is the rule that needs no layer-wise synchronization. ``p`` is
``[learning] norm_power``.
"""

from __future__ import annotations

import numpy as np

from asyncneurons.learning import compiled, traces
from asyncneurons.learning.optim import adam_constants
from asyncneurons.learning.rules.base import Rule, per_row, register, reinforce_update


def first_order_signal(W: np.ndarray, U: np.ndarray, p: float) -> np.ndarray:
    """Per-synapse signal ``p |W|^{p−1} sign(W) U`` (units × sources)."""
    if p == 2.0:
        return (2.0 * W) * U
    return p * np.abs(W) ** (p - 1.0) * np.sign(W) * U


def exact_signal(W_before: np.ndarray, W_after: np.ndarray, p: float) -> np.ndarray:
    """Per-synapse exact change ``|W_after|^p − |W_before|^p``."""
    if p == 2.0:
        return W_after * W_after - W_before * W_before
    return np.abs(W_after) ** p - np.abs(W_before) ** p


@register
class WeightMax(Rule):
    name = "weight_max"
    uses_retro = True
    broadcast_to_hidden = False
    exact = False

    def __init__(self, scenario):
        super().__init__(scenario)
        self.p = float(scenario.learning.norm_power)

    def _learn(self, sim, group, R, step, reset):
        E = traces.at_landing(group, sim)  # the trace as the signal finds it
        if not self.exact and self.p == 2.0 and group.retro_buckets:
            rows = per_row(group, R)
            if rows is not None and E.flags.c_contiguous:  # one compiled pass: U = E·R, Adam, C = 2W·U (same bits)
                m, n = group.P.shape
                C = np.empty((m, n - 1))
                group.t += 1
                compiled.weight_max_rows(group.P, group.M, group.V, E, rows, float(sim.lr(group.layer, step)),
                                         *adam_constants(sim.adam, group.t), C)
                sim.send_retro(group, C, step, reset)
                return
        before = group.P[..., :-1].copy() if self.exact else None
        U = reinforce_update(group, R, sim.lr(group.layer, step), sim.adam, E)
        if group.retro_buckets:
            W = group.P[..., :-1]
            C = exact_signal(before, W, self.p) if self.exact else first_order_signal(W, U[..., :-1], self.p)
            sim.send_retro(group, C, step, reset)

    def on_reward(self, sim, group, delta, step, reset):
        self._learn(sim, group, delta, step, reset)

    def on_retro(self, sim, group, signal, step, reset):
        self._learn(sim, group, signal, step, reset)


@register
class WeightMaxExact(WeightMax):
    name = "weight_max_exact"
    exact = True
