"""Backprop baselines: errors sent back along the synapses as retrograde events.

``backprop`` (deterministic hidden units, e.g. ``unit = "softplus"``) and ``ste_backprop``
(sampled Bernoulli units, straight-through estimator; algorithms.md §2.5) share one rule.
When the output samples, its score ``g^L = (onehot(a) − π)/T`` travels back along the synapses
(retrograde, after each ``retro_delay``), and each hidden unit turns the error that lands into
its own term::

    e^l_i = Σ_j W^{l+1}_ji g^{l+1}_j          g^l_i = e^l_i · f'(pot^l_i)

with f' the derivative of the unit's value with respect to its pre-activation: σ(pot) for
softplus units, and for Bernoulli units p(1 − p) as if the value were p = σ(u) rather than the
sampled h (the straight-through estimator; as published, no 1/T factor). The term enters the
trace with the inputs the unit held when it sampled, ``E^l ← λγ E^l + g^l ⊗ h^{l−1}``, and every
unit learns from the broadcast TD error, ``W ← W + Adam(E · δ)``. At zero delay and with
deterministic units the traces accumulate the exact ∇_W log π(a | s). The rule is not local:
the error carries downstream weights. With delays, an error lands on whatever the unit sampled
last.
"""

from __future__ import annotations

import numpy as np

from asyncneurons.learning import traces
from asyncneurons.learning.rules.base import register
from asyncneurons.learning.rules.global_reinforce import GlobalReinforce


@register
class Backprop(GlobalReinforce):
    name = "backprop"
    uses_retro = True
    broadcast_to_hidden = True
    hidden_kinds = ("softplus", "bernoulli")
    samples_locally = False  # the output sends its error back when it samples
    output_sends = True

    def on_sample(self, sim, group, values, aux, g):
        if group.role == "output":
            traces.record(group, g, group.H, sim.now)
            self._send_error(sim, group, g)
        else:  # keep what the error term needs when it lands
            group.sample_H = group.H.copy()
            group.sample_slope = group.kind.derivative(aux)

    def on_sample_rows(self, sim, group, rows, values, aux, g, H):
        if group.role == "output" or len(rows) == group.size:
            self.on_sample(sim, group, values, aux, g)
            return
        if not hasattr(group, "sample_H"):
            group.sample_H, group.sample_slope = np.zeros_like(group.H), np.zeros(group.size)
        group.sample_H[rows] = H
        group.sample_slope[rows] = group.kind.derivative(aux)

    def records_at_sample(self, group) -> bool:
        return group.role == "output"  # a hidden unit's trace records when the error lands (on_retro)

    def sampled(self, sim, group, rows, values, aux, g, H):
        if group.role == "output":
            self._send_error(sim, group, g)
        else:
            self.on_sample_rows(sim, group, rows, values, aux, g, H)

    def on_retro(self, sim, group, signal, step, reset):
        if not hasattr(group, "sample_slope"):  # an error reaching units that have not sampled yet
            group.sample_H, group.sample_slope = np.zeros_like(group.H), np.zeros(group.size)  # credits nothing
        g = signal * group.sample_slope
        traces.record(group, g, group.sample_H, sim.now)  # recorded when the error lands
        self._send_error(sim, group, g)

    @staticmethod
    def _send_error(sim, group, g):
        if group.retro_buckets:
            sim.send_retro(group, group.P[..., :-1] * g[..., None], -1, False)


@register
class SteBackprop(Backprop):
    name = "ste_backprop"
