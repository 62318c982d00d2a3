"""The backprop baselines' errors of one instant, with the TD error's landings settled, in one call.

Under ``backprop`` and ``ste_backprop`` on firing windows, with δ landing on each unit at its own
time (:mod:`asyncneurons.engine.landings`), the output's error e^L lands on the last hidden layer,
which first takes every δ that has landed on its units by then, then turns the error into its
own term and trace and sends its error on (the rule's ``on_retro_blocks``,
:func:`asyncneurons.learning.compiled.error_lands`)::

    R_i = Σ_s block[s, i]     g_i = R_i · f'_i     E_i ← λγ E_i + g_i h_i     C_ij = W_ij g_i

With no retrograde delay the layer below hears C at the same instant and does the same. When
each of these applications would be the very next event processed (``Simulation._comes_next``),
each block covers its receiving layer's units in order, the traces are per sample and every unit
has sampled, the whole sequence — δ settled on the upper layer, its error, δ settled on the
lower layer, its error — is one compiled call (:func:`errors_land`): the same operations on the
same numbers in the same order, so the same bits, without the events, blocks and checks between
them. Otherwise, and whenever events are recorded, the engine takes its general path.

The output's error itself, ``e^L = W^L[:, :-1] · g^L`` sent when the output population samples
with no retrograde delay (:meth:`ErrorLanding.send`), lands by the call above as soon as the
firing window that sent it is done, at the output's own instant, where its landing would be the
next event processed and the last hidden layer would learn from it at once
(:meth:`ErrorLanding.after_window`): nothing processed in between, since the window fired
nothing past that landing and its wake-up and the environment's step come later. Otherwise it
is one event of its own carrying the matrix alone, which lands by the call above when it comes,
or becomes the blocks ``Simulation.send_retro`` would have sent and takes the engine's path. It
is never in the queue at a checkpoint (it lands within the instant the output sampled, before
the environment steps).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from asyncneurons.learning import kernel_cache  # noqa: F401  (stamps the kernel cache before any @njit)

from asyncneurons.engine import events
from asyncneurons.engine.landings import LT_P, group_arrays, land_rows_at
from asyncneurons.learning import compiled
from asyncneurons.learning.rules.backprop import Backprop


@njit(cache=True, error_model="numpy")
def _settled(now, n, T, gtab, ltab):
    """Every δ landed on the group's units by ``now`` (inclusive), applied
    (:meth:`~asyncneurons.engine.landings.Landings.settle`); returns the group's P and E."""
    m = gtab[LT_P, 1]
    land_rows_at(np.arange(m), np.full(m, now), gtab, ltab, n, T)
    (P, _, _, E, _, _, _, _), _ = group_arrays(gtab, ltab)
    return P, E


@njit(cache=True, error_model="numpy")
def errors_land(block, now, n, T, ltab, ga, Ha, slope_a, decay_a, gb, Hb, slope_b, decay_b, two):
    """Group ``a`` (its landing arrays' addresses ``ga``, :data:`~asyncneurons.engine.landings.LAND_ARRAYS`)
    settles its δ landings up to ``now`` and takes the error ``block``
    (:func:`~asyncneurons.learning.compiled.error_lands` with its inputs ``Ha``, slopes
    ``slope_a`` and trace decay ``decay_a``); with ``two`` the error it sends on,
    ``C = W[:, :-1] · g``, lands on group ``b`` the same way after ``b`` settles its own. The
    broadcasts kept (``n``) and Adam's corrections (``T``, ``ltab``) as
    :func:`~asyncneurons.engine.landings.land_rows_at` reads them."""
    P, E = _settled(now, n, T, ga, ltab)
    m = P.shape[0]
    R, g = np.empty(m), np.empty(m)
    C = np.empty((m, P.shape[1] - 1)) if two else np.empty((0, 0))
    compiled.error_lands(block, slope_a, Ha, E, decay_a, P, R, g, C)
    if two:
        P, E = _settled(now, n, T, gb, ltab)
        m = P.shape[0]
        R, g = np.empty(m), np.empty(m)
        compiled.error_lands(C, slope_b, Hb, E, decay_b, P, R, g, np.empty((0, 0)))


class ErrorLanding:
    """Which groups' errors may land in one call (:func:`plan`), and the call (:meth:`lands`)."""

    def __init__(self, sim):
        self.sim = sim
        self.landings = sim.landings
        self.output = None  # the output, when its error lands by this object (send)
        self.pending = None  # (C, t): the error the output sent in the current window (send)

    def lands(self, sg) -> bool:
        """Apply the retrograde blocks waiting on ``sg`` (and what it sends on at once) in one call,
        when that is the engine's own sequence (see the module docstring); False if it is not."""
        blocks = sg.retro_in
        if len(blocks) != 1 or sg.retro_reset:
            return False
        _, pos, block = blocks[0]
        if id(pos) not in sg.identity_in or not block.flags.c_contiguous or \
                not self._land(sg, block, float(self.sim.env.now)):
            return False
        sg.retro_in = []
        return True

    def _land(self, sg, block, now: float) -> bool:
        """:meth:`lands` for ``block``, a block covering ``sg``'s units in order, landing at ``now``
        on a group with nothing else waiting; False (nothing done) where it is not the engine's sequence."""
        if not hasattr(sg, "sample_slope"):
            return False
        nxt = sg.errors_next
        if nxt is not None:
            nb, arrival, apply = nxt
            if nb.retro_in or nb.retro_reset or not hasattr(nb, "sample_slope") or not (
                    self.sim._comes_next(arrival, now) and self.sim._comes_next(apply, now)):
                return False
        L = self.landings
        if sg.land_replaced() or (nxt is not None and nb.land_replaced()):
            L._tables()
            if sg.land_tab is None or (nxt is not None and nb.land_tab is None):
                return False
        if nxt is None:
            errors_land(block, now, L.n, L.constants[0], L.ltab, sg.land_tab, sg.sample_H,
                        sg.sample_slope, sg.decay_value, sg.land_tab, sg.sample_H, sg.sample_slope, 0.0, False)
        else:
            errors_land(block, now, L.n, L.constants[0], L.ltab, sg.land_tab, sg.sample_H,
                        sg.sample_slope, sg.decay_value, nb.land_tab, nb.sample_H, nb.sample_slope, nb.decay_value,
                        True)
        return True

    def send(self, out, C, at: float) -> None:
        """The output's error ``C`` (its units × the last hidden layer's), sent when it sampled at
        ``at`` inside a firing window: kept until the window is done (:meth:`after_window`); an
        error kept already, sent earlier in the window, becomes its event first."""
        if self.pending is not None:
            self._queue(*self.pending)
        delay, _, _, _ = out.errors_out
        self.pending = (C, at + delay)

    def after_window(self) -> None:
        """The error the window's output sent, at ``t``: where its landing would be the next event
        processed (it precedes everything queued once the window has fired and armed its wake-up)
        and the last hidden layer would learn from it at once, it lands now, at ``t``
        (:meth:`_land`); otherwise it is one event at the instant and priority of
        ``Simulation.send_retro``'s (:meth:`_arrives`)."""
        C, t = self.pending
        self.pending = None
        _, priority, sg, _ = self.output.errors_out
        if (self.sim._comes_next(priority, t) and not (sg.retro_in or sg.retro_reset)
                and self.sim._comes_next(sg.errors_apply, t) and self._land(sg, C, t)):
            return
        self._queue(C, t)

    def _queue(self, C, t: float) -> None:
        """The output's error ``C`` as one event at ``t`` (:meth:`_arrives`)."""
        _, priority, _, _ = self.output.errors_out
        self.sim.env.schedule_at(events.Signal.__new__(events.Signal), priority, t, C, self._arrives)

    def _arrives(self, event) -> None:
        """The output's error lands on the last hidden layer ``sg``: when ``sg`` has nothing else
        waiting and would learn from it at once (``Simulation._retro_landing`` then
        ``_retro_applying``), in one call (:meth:`_land`); otherwise as the blocks ``send_retro``
        sends, through the engine."""
        C = event._value
        sim, out = self.sim, self.output
        _, _, sg, bucket = out.errors_out
        if not (sg.retro_in or sg.retro_reset) and sim._comes_next(sg.errors_apply) and \
                self._land(sg, C, float(sim.env.now)):
            return
        sim._retro_landing(([(sg, out.uids, bucket.pos, C[:, bucket.span])], -1, False))


def _whole(grp, b) -> bool:
    """Whether bucket ``b`` of ``grp`` sends the whole of ``grp``'s signals ``C`` to its target's
    units in order, from senders in ascending order (a block :func:`errors_land` reads as it is)."""
    tg = b.target
    n_in = grp.P.shape[-1] - 1
    return (b.rows is None and b.span == slice(0, n_in) and n_in == tg.size
            and compiled.is_identity_block(np.asarray(grp.uids, dtype=np.int64), np.asarray(b.pos, dtype=np.int64),
                                           tg.size, tg.size))


def plan(sim):
    """An :class:`ErrorLanding` for ``sim`` when its errors may land in one call somewhere, else
    None; per group, ``identity_in`` (the blocks that cover it in order, by their positions'
    ids) and ``errors_next`` (the group it sends on to at once, with the two priorities of that
    landing and its application, or None when it sends nothing), ``errors_at_once`` and
    ``errors_apply`` (the priority of its application); for the output, ``errors_out``: (delay,
    priority, target, bucket) of its one block when that covers the last hidden layer in order,
    with no delay, onto a group whose errors land in one call (:meth:`ErrorLanding.send`), else None."""
    rule = type(sim.rule)
    applies = (issubclass(rule, Backprop) and rule.on_retro_blocks is Backprop.on_retro_blocks
               and rule.on_retro is Backprop.on_retro and sim.landings is not None and sim.windows is not None
               and sim.retro is None and sim.retro_jitter is None and sim.instant is None)
    for grp in sim.groups:
        grp.errors_at_once = grp.errors_out = None
    if not applies:
        return None
    landing = ErrorLanding(sim)

    def plain(g) -> bool:
        return (getattr(g, "tau", None) is None and g.P.ndim == 2 and g.E.shape == g.P.shape
                and g in sim.landings.groups and g.land_tab is not None)

    for grp in sim.groups:
        grp.identity_in = set()
    for grp in sim.groups:
        for b in grp.retro_buckets:
            if b.rows is None and b.span is not None and b.span.stop - b.span.start == b.target.size and \
                    compiled.is_identity_block(np.asarray(grp.uids, dtype=np.int64),
                                               np.asarray(b.pos, dtype=np.int64), b.target.size, b.target.size):
                b.target.identity_in.add(id(b.pos))
    for grp in sim.groups:
        if not plain(grp) or grp.role == "output":
            continue
        if not grp.retro_buckets:
            grp.errors_next = None
        else:
            if len(grp.retro_plan) != 1:
                continue
            delay, priority, buckets = grp.retro_plan[0]
            if delay != 0.0 or len(buckets) != 1 or not _whole(grp, buckets[0]):
                continue
            nb = buckets[0].target
            if not plain(nb) or nb.retro_buckets or nb.role == "output":
                continue
            grp.errors_next = (nb, priority, events.retro_apply(nb.rank, sim.max_rank))
        grp.errors_at_once = landing
        grp.errors_apply = events.retro_apply(grp.rank, sim.max_rank)
    out = sim.output
    if len(out.retro_plan) == 1 and out.kind.population:
        delay, priority, buckets = out.retro_plan[0]
        if delay == 0.0 and len(buckets) == 1 and _whole(out, buckets[0]) and \
                buckets[0].target.errors_at_once is landing:
            out.errors_out = (delay, priority, buckets[0].target, buckets[0])
            landing.output = out
    return landing


__all__ = ["ErrorLanding", "errors_land", "plan"]
