"""STE backprop (baseline): backpropagation through sampled Bernoulli units with the
straight-through estimator (algorithms.md §2.5).

The forward pass samples as usual. When the output samples, its score
``g^L = (onehot(a) − π)/T`` travels back along the synapses (retrograde, after each
``retro_delay``), and each hidden unit turns the error that lands into its own term::

    e^l_i = Σ_j W^{l+1}_ji g^{l+1}_j          g^l_i = e^l_i · p_i (1 − p_i)

as if its value were p = σ(u) rather than the sampled h (the straight-through estimator; the
published code has no 1/T factor here). The term enters the trace with the inputs the unit held
when it sampled, ``E^l ← λγ E^l + g^l ⊗ h^{l−1}``, and every unit learns from the broadcast TD
error, ``W ← W + Adam(E · δ)``. It is not local: the error needs the downstream weights. With
delays, an error lands on whatever the unit sampled last.
"""

from __future__ import annotations

from ..kernels import accumulate_trace
from .base import register
from .global_reinforce import GlobalReinforce


@register
class SteBackprop(GlobalReinforce):
    name = "ste_backprop"
    uses_retro = True
    broadcast_to_hidden = True

    def on_sample(self, sim, group, values, aux, g):
        if group.role == "output":
            accumulate_trace(group.E, group.decay, g, group.H)
            self._send_error(sim, group, g)
        else:  # keep what the straight-through term needs when the error lands
            group.sample_H = group.H.copy()
            group.sample_p = aux

    def on_retro(self, sim, group, signal, step, reset):
        p = group.sample_p
        g = signal * p * (1.0 - p)
        accumulate_trace(group.E, group.decay, g, group.sample_H)
        self._send_error(sim, group, g)

    @staticmethod
    def _send_error(sim, group, g):
        if group.retro_buckets:
            sim.send_retro(group, group.P[:, :-1] * g[:, None], -1, False)


__all__ = ["SteBackprop"]
