"""The rule interface and its registry, plus the REINFORCE update every rule builds on.

REINFORCE with an eligibility trace, for a group of units whose rewards are ``R`` (one per
unit, or one number for all)::

    U = E · R          (E the trace of  g ⊗ h,  R broadcast along each unit's row)
    θ ← θ + Adam(U)    at the layer's learning rate for the current agent step

This is the output units' rule under every learning rule, and every unit's rule under
Global REINFORCE.
"""

from __future__ import annotations

import numpy as np

from asyncneurons.learning import compiled, traces
from asyncneurons.learning.optim import adam_ascent, adam_constants

RULES: dict = {}


def register(cls):
    """Class decorator: make a rule available by its ``name``."""
    RULES[cls.name] = cls
    return cls


def per_row(group, R):
    """The rewards ``R`` as one float64 per row of a single (2-D, contiguous) group, or None
    when the group is not such a group (replicas keep a leading batch axis)."""
    P = group.P
    if P.ndim != 2 or not (P.flags.c_contiguous and group.E.flags.c_contiguous and group.M.flags.c_contiguous
                           and group.V.flags.c_contiguous):
        return None
    R = np.asarray(R, dtype=np.float64)
    if R.ndim == 0:
        return np.full(P.shape[0], float(R))
    if R.shape != (P.shape[0],):
        return None
    return np.ascontiguousarray(R)


def reinforce_update(group, R, lr: float, adam, E=None) -> np.ndarray:
    """Apply ``θ ← θ + Adam(E · R)`` to a group in place; return the raw update ``U = E · R``.
    ``E`` is the trace as the signal finds it (:func:`asyncneurons.learning.traces.at_landing`; default
    the group's). One compiled pass for a single group (:func:`asyncneurons.learning.compiled.reinforce_rows`)."""
    E = group.E if E is None else E
    rows = per_row(group, R)
    if rows is not None and E.flags.c_contiguous:
        U = np.empty_like(group.P)
        group.t += 1
        compiled.reinforce_rows(group.P, group.M, group.V, E, rows, float(lr), *adam_constants(adam, group.t), U)
        return U
    R = np.asarray(R, dtype=np.float64)
    U = E * (R[..., None] if R.ndim else R)
    group.t += 1
    adam_ascent(group.P, group.M, group.V, U, group.t, lr, adam)
    return U


class Rule:
    """What a group does when a learning signal lands on it.

    ``on_reward(sim, group, delta, step, reset)`` is called when the broadcast TD error δ of
    agent step ``step`` reaches the group; ``on_retro(sim, group, signal, step, reset)`` when
    retrograde signals land (summed per unit; rules that send them only). ``reset`` marks the
    first step of a new episode: the engine clears the group's traces right after the call, and
    a rule passes the mark on with the signals it sends (``sim.send_retro(group, C, step,
    reset)``). ``sim`` is the event engine or the layer-synchronous reference: both offer
    ``lr(layer, step)``, ``adam`` and ``send_retro``.
    """

    name = ""
    uses_retro = False  # units send signals back along their incoming synapses
    broadcast_to_hidden = True  # hidden units receive the broadcast TD error
    hidden_kinds: tuple | None = None  # unit kinds the rule can train as hidden units (None: any)
    output_kinds: tuple | None = None
    samples_locally = True  # sampling only records the unit's own trace (firing windows apply)
    scores_samples = True  # on_sample reads the score g of the sample (else it is not computed)
    output_sends = False  # the output's sample sends retrograde signals (firing windows cut there)

    @classmethod
    def check(cls, graph) -> None:
        """Raise ScenarioError when the network has units this rule cannot train."""
        from asyncneurons.errors import ScenarioError
        for node, a in graph.nodes(data=True):
            allowed = {"hidden": cls.hidden_kinds, "output": cls.output_kinds}.get(a["role"])
            if allowed is not None and a["kind"] not in allowed:
                key = "network.unit" if a["role"] == "hidden" else "network.output"
                raise ScenarioError(f"{key}: rule {cls.name} cannot train {a['kind']} {a['role']} units "
                                    f"(unit {node!r}); use {' or '.join(allowed)}")

    def __init__(self, scenario):
        self.scenario = scenario

    def on_sample(self, sim, group, values: np.ndarray, aux, g: np.ndarray) -> None:
        """A group has sampled; ``g`` is the score of its sample. Default: the trace records
        ``E ← λγ E + g ⊗ h`` with the inputs as held now (or decays by exp(−Δt/τ) first:
        :mod:`asyncneurons.learning.traces`)."""
        traces.record(group, g, group.H, sim.now)

    def on_sample_rows(self, sim, group, rows, values, aux, g, H) -> None:
        """Rows ``rows`` of a group have sampled (firing windows, :mod:`asyncneurons.engine.windows`);
        ``H`` holds their inputs as read. The same as :meth:`on_sample` for those units alone."""
        if len(rows) == group.size:
            self.on_sample(sim, group, values, aux, g)
            return
        traces.record(group, g, H, sim.now, rows)

    def records_at_sample(self, group) -> bool:
        """Whether a sample of ``group`` records the plain trace ``E ← λγ E + g ⊗ h`` (what a
        compiled layer firing computes, :mod:`asyncneurons.engine.windows`). Default: yes."""
        return True

    def sampled(self, sim, group, rows, values, aux, g, H) -> None:
        """After a compiled firing of rows ``rows`` (firing windows): what :meth:`on_sample_rows`
        does besides recording the plain trace, which the firing has recorded when
        :meth:`records_at_sample` says so. A rule that overrides its sampling and this method
        has its layers fired by one compiled call; the default (nothing) is the plain trace's."""

    def sampled_in_place(self, sim, group, rows, times) -> bool:
        """:meth:`sampled` for rows ``rows`` of a compiled firing at ``times``, read from the group's
        own arrays (the inputs the rows read in ``group.H``, σ per row in ``group.aux``, a
        population's samples in ``group.values`` and ``(π, a)`` in ``group.aux``): True when done;
        False, the default, and the window computes the samples and scores and calls :meth:`sampled`."""
        return False

    def on_reward(self, sim, group, delta: float, step: int, reset: bool) -> None:
        raise NotImplementedError

    def on_retro_blocks(self, sim, group, blocks: list, step: int, reset: bool) -> bool:
        """The retrograde ``blocks`` (sender uids, receiver positions, block) of one instant have landed
        on ``group``: a rule may apply them itself, in one compiled call, with the bits of
        :meth:`on_retro` after :func:`asyncneurons.learning.kernels.sum_by_sender`; it returns whether it
        did. Default: no (the engine sums them and calls :meth:`on_retro`)."""
        return False

    def on_retro(self, sim, group, signal: np.ndarray, step: int, reset: bool) -> None:  # pragma: no cover
        raise NotImplementedError(f"rule {self.name} sends no retrograde signals")
