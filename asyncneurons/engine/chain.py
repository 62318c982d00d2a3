"""A chain of layers in the synchronous limit: a step's firing, and Weight Maximization's
learning cascade, each as one compound event of the instant (:mod:`asyncneurons.engine.instant`).

A network is a *chain* when its groups (fused layers) g₁ … g_L each receive every value of the
one below them (g₁ the observation) through one bucket that covers every row and input column
in order (``Bucket.whole``), and send only to the next. In the synchronous limit the instant of a
step then holds, after the learning signals, one delivery of the observation, and from it a
fixed sequence: g₁ fires (its only sender has delivered), its delivery reaches g₂, g₂ fires, …,
the output fires and hands its action to the environment. When sampling only records the plain
trace (``Rule.on_sample``) no firing queues anything else, and every event the sequence queues
has a class above the learning signals, so nothing can come between its events: :meth:`Chain.fire`
runs the sequence as one entry of the instant, at the delivery's priority, with the same
operations: for each layer the delivery (:func:`asyncneurons.engine.transmission.write`, compiled) and
:func:`asyncneurons.learning.units.sample_and_trace` as ``Simulation.fire`` calls it, the delivery joined
to its first kernel.

Under Weight Maximization (p = 2, first-order signals, per-sample traces) the TD error reaches
the output only, and its learning sends retrograde signals to the layer below only, which
learns from their sum and sends on, down to g₁, all within the learning classes of the instant
and before the observation's delivery. When every retrograde bucket covers the layer below in
order, :meth:`Chain.learn` does that cascade as one entry at the TD error's priority: one kernel
(:func:`asyncneurons.learning.compiled.weight_max_chain`) running the rule's own kernels
(``weight_max_rows``, ``reinforce_rows``) in the order of the events, with the learning rates
and Adam constants each group's event would have used. Other rules keep their events.

On firing windows the same cascade follows a TD error that lands after a reward delay, when it
reaches the output alone and every retrograde delay is zero: :func:`make_cascade` gives the
chain whose :meth:`Chain.learn` the landing event calls (under exponential traces with each
layer's trace decayed to the landing, :func:`asyncneurons.learning.traces.at_landing`, inside the
cascade's call: :func:`asyncneurons.engine.history_kernels.weight_max_chain_at_landing`).
"""

from __future__ import annotations

import numpy as np

from asyncneurons.engine.history_kernels import weight_max_chain_at_landing
from asyncneurons.engine.relaxation_kernels import EXP
from asyncneurons.learning import compiled, optim, traces
from asyncneurons.learning.rules.base import Rule
from asyncneurons.learning.rules.weight_max import WeightMax
from asyncneurons.learning.kernels import NO_DECAYS
from asyncneurons.learning.units import FUSED_KINDS


def _whole_to(grp, target) -> bool:
    return len(grp.buckets) == 1 and grp.buckets[0].whole and grp.buckets[0].target is target


def _plain(*arrays) -> bool:
    return all(a.ndim == 2 and a.dtype == np.float64 and a.flags.c_contiguous for a in arrays)


def make_chain(sim):
    """The chain of ``sim`` (in the synchronous limit, :mod:`asyncneurons.engine.instant`), or None."""
    groups = sim.groups
    if not groups or type(sim.rule).on_sample is not Rule.on_sample:
        return None
    if not _whole_to(sim.input_group, groups[0]) or groups[-1].buckets or groups[-1] is not sim.output:
        return None
    for i, grp in enumerate(groups):
        if grp.kind.name not in FUSED_KINDS or grp.senders != 1 or not _plain(grp.P, grp.H, grp.E):
            return None
        if i + 1 < len(groups) and not _whole_to(grp, groups[i + 1]):
            return None
    return Chain(sim, _learns(sim, groups))


def make_cascade(sim):
    """On firing windows (:mod:`asyncneurons.engine.windows`), the chain whose :meth:`Chain.learn` serves
    the TD error landing on the output, or None.

    When δ reaches the output alone, after one reward delay d, and every retrograde delay is
    zero, the cascade down the layers happens at the instant of the landing, in the learning
    classes of that instant, exactly as in the synchronous limit: one kernel runs it. Firing
    plays no part, so the groups need not form a chain for :meth:`Chain.fire`. Whether another
    learning signal shares the instant is checked at each landing
    (``Simulation._reward_lands``)."""
    groups = sim.groups
    if not groups or groups[-1] is not sim.output or sim.retro is not None or sim.retro_jitter is not None:
        return None
    if sim.on_event is not None or sim.landings is not None or sim.relaxation is not None:
        return None
    return Chain(sim, True) if _learns(sim, groups) else None


def _learns(sim, groups) -> bool:
    """Whether the TD error's cascade down the chain is Weight Maximization's, as one kernel."""
    rule = sim.rule
    batches = sim._broadcast_batches
    if type(rule) is not WeightMax or rule.p != 2.0 or len(batches) != 1 or batches[0][1] != [groups[-1]]:
        return False
    if sim.instant is not None and batches[0][0] != 0.0:
        return False
    if groups[0].retro_buckets:
        return False
    # exponential traces: on windows only, each layer's trace decayed to the landing (Chain.learn)
    timed_traces = sim.instant is None
    for below, grp in zip(groups, groups[1:]):
        if (getattr(grp, "tau", None) is not None and not timed_traces) or len(grp.retro_plan) != 1:
            return False
        delay, _, buckets = grp.retro_plan[0]
        if delay != 0.0:
            return False
        b = buckets[0] if len(buckets) == 1 else None
        if (b is None or b.target is not below or b.rows is not None or b.span != slice(0, below.size)
                or not compiled.is_identity_block(np.asarray(grp.uids, dtype=np.int64),
                                                  np.asarray(b.pos, dtype=np.int64), below.size, below.size)):
            return False
        if not _plain(grp.M, grp.V):
            return False
    return (getattr(groups[0], "tau", None) is None or timed_traces) and _plain(groups[0].M, groups[0].V)


class Chain:
    """A chain's firing (:meth:`fire`) and, when ``learns``, its Weight Max cascade (:meth:`learn`)."""

    def __init__(self, sim, learns: bool):
        self.sim = sim
        self.groups = sim.groups
        self.learns = learns
        self.timed_traces = any(getattr(g, "tau", None) is not None for g in self.groups)
        taus = {getattr(g, "tau", None) for g in self.groups}
        self.tau = float(next(iter(taus))) if self.timed_traces and len(taus) == 1 else None
        self.Ds = tuple(np.empty_like(g.E) for g in self.groups)  # each trace decayed to a landing
        L = len(self.groups)
        self.Cs = tuple(np.empty((g.size, g.P.shape[1] - (0 if i == 0 else 1))) for i, g in enumerate(self.groups))
        self.Rs = tuple(np.empty(g.size) for g in self.groups)
        self.lrs, self.bc1s, self.bc2s = np.empty(L), np.empty(L), np.empty(L)
        self.corrects = np.empty(L, dtype=np.bool_)
        self.lr_ends = [sim._lr[g.layer - 1] for g in self.groups]  # (start, end) of each layer's schedule
        self.lr_steps = sim.scenario.learning.lr_steps
        self.layers = [(g, g.size, float(g.lp.temperature), g.kind.name == "bernoulli",
                        g.size + 1 if g.kind.name == "softmax" else g.size) for g in self.groups]

    def fire(self, payload) -> None:
        """The observation ``obs`` of ``wave`` delivered to g₁, then every layer in turn fires and
        delivers to the next; the output's action goes to the environment."""
        obs, wave = payload
        sim = self.sim
        now = sim.env.now
        values, exp, empty = obs, np.exp, np.empty
        for grp, m, T, bernoulli, n in self.layers:  # units.sample_and_trace, the delivery in its first kernel
            decay = grp.decay if grp.tau is None else traces.record_decay(grp, now)
            if isinstance(decay, np.ndarray):
                decays, decay = np.ascontiguousarray(decay, dtype=np.float64).reshape(m), 0.0
            else:
                decays = NO_DECAYS
            if bernoulli:
                pot, x, p, out, g = empty((5, m))
                compiled.deliver_bernoulli_pre(values, wave, grp.T, grp.P, grp.H, T, pot, x, p)
                exp(p, out=p)
                compiled.bernoulli_post(x, p, grp.keys1, grp.counters, T, float(decay), decays, grp.H, grp.E, out, g)
                aux = p
            else:
                out, g, pot, z = empty(m), empty(m), empty(m), empty(n)
                compiled.deliver_categorical_pre(values, wave, grp.T, grp.P, grp.H, T, n, pot, z)
                exp(z, out=z)
                a = compiled.categorical_sample(z, grp.keys1, grp.counters, T, float(decay), decays, grp.H, grp.E,
                                                out, g)
                aux = (z, int(a))
            values = out
            grp.values, grp.aux, grp.last_fire, grp.last_wave = values, aux, now, wave
        sim.environment.receive_action(grp.kind.action(values, aux), wave)

    def learn(self, payload) -> None:
        """The TD error δ of agent step ``step`` lands on the output; Weight Maximization's
        signals go down the chain, each layer learning in turn (``reset``: traces cleared)."""
        delta, step, reset = payload
        lrs, bc1s, bc2s, corrects = self.lrs, self.bc1s, self.bc2s, self.corrects
        gs, adam, n = self.groups, self.sim.adam, self.lr_steps
        t_prev = consts = None
        for i, grp in enumerate(gs):
            t = grp.t = grp.t + 1
            lo, hi = self.lr_ends[i]
            lrs[i] = lo + (hi - lo) * min(step, n) / n  # Simulation.lr (optim.linear_schedule)
            if t != t_prev:
                consts, t_prev = optim.adam_constants(adam, t), t
            bc1s[i], bc2s[i], corrects[i] = consts[4], consts[5], consts[6]
        b1, c1, b2, c2, _, _, _, eps = consts
        if self.timed_traces:  # each trace decayed to the landing (traces.at_landing), cleared after
            now = self.sim.now
            if self._decay_in_call(now):  # the same operations in one call
                weight_max_chain_at_landing(tuple([g.P for g in gs]), tuple([g.M for g in gs]),
                                            tuple([g.V for g in gs]), tuple([g.E for g in gs]),
                                            tuple([g.trace_time for g in gs]), self.Ds, float(now), self.tau, EXP,
                                            self.Cs, self.Rs, float(delta), lrs, b1, c1, b2, c2, bc1s, bc2s,
                                            corrects, eps, bool(reset))
                return
            Es = tuple([traces.at_landing(g, self.sim) for g in gs])
            compiled.weight_max_chain(tuple([g.P for g in gs]), tuple([g.M for g in gs]), tuple([g.V for g in gs]),
                                      Es, self.Cs, self.Rs, float(delta), lrs, b1, c1, b2, c2, bc1s, bc2s, corrects,
                                      eps, False)
            if reset:
                for g in gs:
                    g.E[...] = 0.0
            return
        compiled.weight_max_chain(tuple([g.P for g in gs]), tuple([g.M for g in gs]), tuple([g.V for g in gs]),
                                  tuple([g.E for g in gs]), self.Cs, self.Rs, float(delta), lrs, b1, c1, b2, c2,
                                  bc1s, bc2s, corrects, eps, bool(reset))

    def _decay_in_call(self, now) -> bool:
        """Whether the landing at ``now`` may decay the traces inside the cascade's call
        (:func:`~asyncneurons.engine.history_kernels.weight_max_chain_at_landing`): one time for
        every group on one exponential τ, each trace of the shape its buffer in ``Ds`` was made for (a
        restore may replace the arrays) and in the form the call takes
        (:func:`~asyncneurons.learning.traces.decays_in_one_call`)."""
        if self.tau is None:
            return False
        return all(g.tau == self.tau and g.E.shape == D.shape and traces.decays_in_one_call(g.E, g.trace_time, now)
                   for g, D in zip(self.groups, self.Ds))


__all__ = ["Chain", "make_cascade", "make_chain"]
