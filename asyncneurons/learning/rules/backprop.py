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

from asyncneurons.learning import compiled, traces
from asyncneurons.learning.kernels import _plain
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

    def sampled_in_place(self, sim, group, rows, times) -> bool:
        """A hidden Bernoulli layer's rows keep their inputs and slope σ(1 − σ) in one compiled call
        (:func:`asyncneurons.learning.compiled.keep_inputs`, the bits of :meth:`on_sample_rows`). An
        output population sends its error ``C = W[:, :-1] · (onehot(a) − π)/T`` computed in one
        compiled call (:func:`asyncneurons.learning.compiled.error_sent`, the bits of :meth:`sampled`)
        from its samples and π (``group.values``, ``group.aux``), at its time ``times[0]``."""
        if group.role == "output":
            if not (group.kind.population and group.retro_buckets):
                return False
            P = group.P
            C = np.empty((P.shape[0], P.shape[1] - 1))
            compiled.error_sent(group.values, group.aux[0], float(group.lp.temperature), P, C)
            sim.send_retro(group, C, -1, False, float(times[0]))
            return True
        if group.kind.name != "bernoulli":
            return False
        if not hasattr(group, "sample_H"):
            group.sample_H, group.sample_slope = np.zeros_like(group.H), np.zeros(group.size)
        compiled.keep_inputs(rows, group.H, group.aux, group.sample_H, group.sample_slope)
        return True

    def on_retro(self, sim, group, signal, step, reset):
        if not hasattr(group, "sample_slope"):  # an error reaching units that have not sampled yet
            group.sample_H, group.sample_slope = np.zeros_like(group.H), np.zeros(group.size)  # credits nothing
        g = signal * group.sample_slope
        traces.record(group, g, group.sample_H, sim.now)  # recorded when the error lands
        self._send_error(sim, group, g)

    def on_retro_blocks(self, sim, group, blocks, step, reset) -> bool:
        """One block covering the group's units in order, per-sample traces, a unit that has sampled:
        the sum by sender, g, the trace and the error sent on in one compiled call
        (:func:`asyncneurons.learning.compiled.error_lands`, the same bits as :meth:`on_retro`)."""
        if len(blocks) != 1 or getattr(group, "tau", None) is not None or not hasattr(group, "sample_slope"):
            return False
        uids, pos, block = blocks[0]
        E, H, slope, P = group.E, group.sample_H, group.sample_slope, group.P
        m = group.size
        if not (block.ndim == 2 and block.shape[0] > 0 and E.shape == H.shape == P.shape and E.ndim == 2
                and slope.shape == (m,) and _plain(block, E, H, slope, P)
                and compiled.is_identity_block(np.asarray(uids, dtype=np.int64), np.asarray(pos, dtype=np.int64),
                                               block.shape[1], m)):
            return False
        R, g = np.empty(m), np.empty(m)
        C = np.empty((m, P.shape[-1] - 1) if group.retro_buckets else (0, 0))
        compiled.error_lands(block, slope, H, E, float(group.decay), P, R, g, C)
        if group.retro_buckets:
            sim.send_retro(group, C, -1, False)
        return True

    @staticmethod
    def _send_error(sim, group, g):
        if group.retro_buckets:
            sim.send_retro(group, group.P[..., :-1] * g[..., None], -1, False)


@register
class SteBackprop(Backprop):
    name = "ste_backprop"
