"""Transmission along synapses: when a value sent at t with delay d is applied to the receiver.

Semantically every value lands at t + d, in the delivery class of that instant
(:mod:`asyncneurons.engine.events`). How the engine achieves that depends on the receiver:

* **Eager** (receivers firing ``on_input``, and groups fed by few deliveries per wave): each
  (delay, batch of buckets) becomes one event, since an arrival may make the unit sample.
* **Lazy** (``on_all`` or ``clock`` receivers fed by many separate deliveries, typically when
  every synapse has its own continuous delay): nothing is scheduled per synapse. Each sender
  keeps a short history of its samples (time, values, wave); a receiver applies, when it next
  looks at what it holds (:meth:`Transmission.flush`), the latest sample of each presynaptic unit
  whose arrival time t + d has come. For ``on_all`` receivers, each synapse is marked when a
  value of the receiver's next wave is on its way; when none is missing, one timer event at the
  latest of those arrivals wakes the unit. The unit sees exactly the values eager events would
  have given it (a test holds the two equal), in compiled loops over its synapses
  (:mod:`asyncneurons.engine.transmission_kernels`; with jitter, NumPy calls over them).

With ``[timing] synapse_jitter`` (:mod:`asyncneurons.engine.jitter`) every receiver is lazy: each
synapse keeps, per slot of its sender's history, the jitter of that sample on it (``EJ``), a
sample arrives at ``HT + d + EJ``, and the latest *send* that has arrived is applied (newest
wins); the sends a later one overtakes are counted as stale (``stale_synaptic``). An ``on_input``
receiver then gets one event per instant at which a send arrives on one of its synapses, and
samples there when a newer send than it held has arrived (a stale arrival is no sample).
"""

from __future__ import annotations

import math

import numpy as np

from asyncneurons.model import delays
from asyncneurons.engine import events, jitter
from asyncneurons.engine.history_kernels import append, append_jittered, jitter_uniforms
from asyncneurons.engine import transmission_kernels as tk
from asyncneurons.engine.map_fire import arrived_at, kept_unit_table, send_table


def write(tg, b, values, wave: int) -> None:
    """Apply one bucket's values (and wave tags) to the receiving group's held inputs."""
    if b.whole:  # every row, every input column in order: plain slices
        tg.H[:, :-1] = values
        tg.T[:, :-1] = wave
    elif b.pairs is not None:
        rows, cols, pos = b.pairs
        tg.H[rows, cols] = values[pos]
        tg.T[rows, cols] = wave
    elif b.rows is None:
        tg.H[:, b.cols] = values[b.pos]
        tg.T[:, b.cols] = wave
    else:
        ix = np.ix_(b.rows, b.cols)
        tg.H[ix] = values[b.pos]
        tg.T[ix] = wave


def send_plan(buckets) -> list:
    """Eager buckets grouped by delay: [(delay, [buckets])] in first-seen order."""
    plan: dict = {}
    for b in buckets:
        if not b.target.lazy:
            plan.setdefault(b.delay, []).append(b)
    return list(plan.items())


def _edges_of(b):
    """(rows, cols, positions in the sender) of every synapse a bucket stands for."""
    if b.pairs is not None:
        return b.pairs
    rows = np.arange(b.target.size) if b.rows is None else np.asarray(b.rows)
    r = np.repeat(rows, len(b.cols))
    c = np.tile(b.cols, len(rows))
    p = np.tile(b.pos, len(rows))
    return r, c, p


class Transmission:
    """Sample histories of the senders and the lazy synapses of one simulation."""

    def __init__(self, sim, depth: int = 4):
        self.sim = sim
        groups = [sim.input_group, *sim.groups]
        n = 0
        for grp in groups:
            grp.dense = np.arange(n, n + grp.size)
            n += grp.size
        self.depth = depth
        self.HT = np.full((n, depth), -math.inf)  # sample times
        self.HV = np.zeros((n, depth))  # sampled values
        self.HW = np.full((n, depth), -1, dtype=np.int64)  # their waves
        self.HN = np.full((n, depth), -1, dtype=np.int64)  # their serial numbers (sending order)
        self.serial = 0
        self.head = np.zeros(n, dtype=np.int64)  # next slot to write, per unit
        self.max_delay = np.zeros(n)
        lazy = [g for g in sim.groups if g.lazy]
        src, tgt, rows, cols, delay = [], [], [], [], []
        for grp in groups:
            for b in grp.buckets:
                if not b.target.lazy:
                    continue
                r, c, p = _edges_of(b)
                src.append(grp.dense[p])
                tgt.append(np.full(len(r), b.target.gid))
                rows.append(r)
                cols.append(c)
                delay.append(np.full(len(r), b.delay))
        cat = (lambda xs, dt: np.concatenate(xs).astype(dt)) if src else (lambda xs, dt: np.zeros(0, dt))
        self.e_src, self.e_tgt = cat(src, np.int64), cat(tgt, np.int64)
        self.e_row, self.e_col, self.e_delay = cat(rows, np.int64), cat(cols, np.int64), cat(delay, float)
        np.maximum.at(self.max_delay, self.e_src, self.e_delay)
        self.e_sat = np.zeros(len(self.e_src), dtype=bool)  # a value of the receiver's next wave is on its way
        self.e_done = np.full(len(self.e_src), -1, dtype=np.int64)  # serial of the last value applied
        by_gid = {g.gid: g for g in sim.groups}
        n_gid = max(by_gid) + 1 if by_gid else 1
        self.last_wave = np.full(n_gid, -1, dtype=np.int64)
        self.missing = np.zeros(n_gid, dtype=np.int64)
        self.latest = np.full(n_gid, -math.inf)
        self.waits = np.zeros(n_gid, dtype=bool)  # on_all receivers wait for complete waves
        self.answers = sim.scenario.timing.firing == "on_input"  # receivers answer each arrival (jitter)
        for g in lazy:
            g.in_edges = np.flatnonzero(self.e_tgt == g.gid)
            g.in_src, g.in_delay = self.e_src[g.in_edges], self.e_delay[g.in_edges][:, None]
            g.in_rows, g.in_cols = self.e_row[g.in_edges], self.e_col[g.in_edges]
            g.in_d = np.ascontiguousarray(g.in_delay[:, 0])  # the same delays, one axis (transmission_kernels)
            g.in_index = np.arange(len(g.in_edges))
            g.flushed = (None, -1)  # (time, serial) of the last flush
            g.min_delay = float(g.in_delay.min()) if len(g.in_delay) else 0.0
            g.wake_token = 0
            self.missing[g.gid] = len(g.in_edges)
            self.waits[g.gid] = sim.scenario.timing.firing == "on_all"
        for grp in groups:
            grp.out_edges = np.flatnonzero(np.isin(self.e_src, grp.dense)).astype(np.int64)
            grp.out_tgt, grp.out_delay = self.e_tgt[grp.out_edges], self.e_delay[grp.out_edges]
        self.armed = np.zeros(n_gid, dtype=np.bool_)  # receivers a send completes (transmission_kernels.mark_sent)
        self.complete = np.zeros(n_gid, dtype=np.int64)  # their group ids, as post_one lists them
        self.by_gid = by_gid
        spec = sim.scenario.timing.synapse_jitter
        self.jitter = None if delays.is_zero(spec) else spec
        self.jitter_arrays = ()
        if self.jitter is not None:
            self._plan_jitter(groups)

    def _plan_jitter(self, groups) -> None:
        """Keys, per-slot jitters and stale marks of every synapse (jitter per event)."""
        names = [nm for grp in groups for nm in grp.names]
        src = [delays.node_key(names[i]) for i in self.e_src]
        tgt = [delays.node_key(self.by_gid[int(g)].names[int(r)]) for g, r in zip(self.e_tgt, self.e_row)]
        self.e_key = jitter.edge_keys(self.sim.seed, tgt, src)
        n, E = len(self.head), len(self.e_src)
        self.by_src = np.argsort(self.e_src, kind="stable").astype(np.int64)  # synapses grouped by sender
        self.src_ptr = np.searchsorted(self.e_src[self.by_src], np.arange(n + 1))
        self.sent = np.zeros(n, dtype=np.int64)  # sends so far, per sender: the index n of j(e, n)
        self.HA = np.full((n, self.depth), -math.inf)  # the last arrival of each slot on any synapse
        self.EJ = np.zeros((E, self.depth))  # the jitter of each slot's sample on each synapse
        self.ES = np.zeros((E, self.depth), dtype=bool)  # overtaken by a later send: stale
        self.stale = np.zeros(1, dtype=np.int64)  # stale arrivals so far
        self.e_first = np.full(E, math.inf)  # on_all: first arrival of a newer wave on each synapse
        self.jt_law = jitter.compiled_law(self.jitter)  # a uniform law: drawn in compiled code (append_jittered)
        # other laws' jitters drawn ahead: row q (synapse by_src[q]) holds sends jt_base[its sender] + 0…7
        self.JT = np.zeros((E, 8) if not self.jt_law[0] else (1, 1))
        self.jt_base = np.full(n, -9, dtype=np.int64)  # none drawn yet
        self.jitter_arrays = ("sent", "HA", "EJ", "ES", "stale", "e_first")

    @property
    def stale_count(self) -> int:
        """Synaptic arrivals dropped so far because a later send had arrived first."""
        return int(self.stale[0]) if self.jitter is not None else 0

    # ---------------------------------------------------------------- senders
    def post(self, grp, values, wave: int) -> None:
        """A group sampled now: remember it, and mark the synapses it completes."""
        now = self.sim.env.now
        if self.jitter is not None:
            self.record(grp.dense, now, values, wave, now)
            self._mark_jittered(grp, wave, now)
            if self.answers:
                self._announce(grp, now)
            return
        e = grp.out_edges
        if grp.size == 1:  # one unit: the sample and its synapses in one compiled call
            sent = (grp.out_tgt, grp.out_delay, self.e_sat, self.last_wave, self.waits, self.missing, self.latest,
                    self.armed, self.complete)
            n = tk.post_one(self.HT, self.HV, self.HW, self.HN, self.head, self.max_delay, grp.dense[0], now,
                            values[0], wave, self.serial, False, e, *sent)
            if n < 0:
                self._grow()  # the oldest sample may still be on its way somewhere: keep more
                n = tk.post_one(self.HT, self.HV, self.HW, self.HN, self.head, self.max_delay, grp.dense[0], now,
                                values[0], wave, self.serial, True, e, *sent)
            self.serial += 1
            if not n:
                return
            gids = self.complete[:n].tolist()  # in order of group id
        else:
            self.record(grp.dense, now, values, wave, now)
            if not len(e) or not tk.mark_sent(e, grp.out_tgt, grp.out_delay, self.e_sat, self.last_wave, self.waits,
                                              self.missing, self.latest, wave, now, self.armed):
                return
            gids = np.flatnonzero(self.armed)  # in order of group id
            self.armed[gids] = False
            gids = gids.tolist()
        for gid in gids:
            self._arm(self.by_gid[gid])

    def _mark_jittered(self, grp, wave: int, now: float) -> None:
        """Jittered :meth:`post`: the sample just recorded may overtake one still on its way, so
        each synapse keeps the first arrival of a newer wave (``e_first``), lowered as needed."""
        e = grp.out_edges
        if not len(e):
            return
        tgt = grp.out_tgt
        cand = (wave > self.last_wave[tgt]) & self.waits[tgt]
        if not cand.any():
            return
        e, tgt = e[cand], tgt[cand]
        slot = (self.head[self.e_src[e]] - 1) % self.depth
        a = (now + self.e_delay[e]) + self.EJ[e, slot]
        newly = ~self.e_sat[e]
        lower = a < self.e_first[e]
        self.e_first[e] = np.minimum(self.e_first[e], a)
        self.e_sat[e] = True
        np.subtract.at(self.missing, tgt, newly.astype(np.int64))
        for gid in sorted(set(tgt[newly | lower].tolist())):
            if self.missing[gid] == 0:
                tg = self.by_gid[gid]
                latest = float(self.e_first[tg.in_edges].max())
                if newly[tgt == gid].any() or latest != self.latest[gid]:
                    self.latest[gid] = latest
                    self._arm(tg)

    def _announce(self, grp, now: float) -> None:
        """Jittered :meth:`post` to ``on_input`` receivers: every arrival instant may be a sample,
        so each receiving group gets one event per instant at which the send just recorded
        arrives on one of its synapses (:meth:`_arrival`), in order of time, then of group."""
        e = grp.out_edges
        if not len(e):
            return
        slot = (self.head[self.e_src[e]] - 1) % self.depth
        at = (now + self.e_delay[e]) + self.EJ[e, slot]  # the arrival flush and the windows compute
        tgt = grp.out_tgt
        env, seen = self.sim.env, None
        for i in np.lexsort((tgt, at)).tolist():
            key = (float(at[i]), int(tgt[i]))
            if key != seen:
                seen = key
                env.schedule_at(events.Signal.__new__(events.Signal), events.DELIVER, key[0],
                                self.by_gid[key[1]], self._arrival)

    def _arrival(self, event) -> None:
        """A jittered send arrives on a synapse of an ``on_input`` group: the group samples at this
        instant when a newer send than it held has arrived on some synapse. A stale arrival
        (a later send arrived first, :mod:`asyncneurons.engine.jitter`) changes nothing it holds
        and is no sample."""
        tg = event._value
        if self.flush(tg) and tg.wake is not None:
            events.trigger(tg.wake, events.FIRE + tg.rank)

    def record(self, idx, times, values, waves, horizon: float) -> None:
        """Append samples of the units ``idx`` (dense indices) taken at ``times`` (now, or each
        unit's own time inside a firing window, :mod:`asyncneurons.engine.windows`), keeping every sample
        a receiver may still read at a time ≥ ``horizon``: the oldest sample is overwritten only
        once the one after it has arrived everywhere."""
        n = len(idx)
        times = times if isinstance(times, np.ndarray) else np.full(n, float(times))
        waves = waves if isinstance(waves, np.ndarray) else np.full(n, int(waves), dtype=np.int64)
        args = (idx, times, np.asarray(values, dtype=np.float64), waves.astype(np.int64, copy=False),
                float(horizon), self.serial)
        if self.jitter is not None:
            self._append_jittered(idx, args)
            return
        if not append(self.HT, self.HV, self.HW, self.HN, self.head, self.max_delay, *args):
            self._grow()
            append(self.HT, self.HV, self.HW, self.HN, self.head, self.max_delay, *args)
        self.serial += 1

    def _append_jittered(self, idx, args) -> None:
        """Append with j(e, n) for every synapse of the senders ``idx`` at their send index n."""
        idx = np.asarray(idx, dtype=np.int64)
        while True:
            code = append_jittered(self.HT, self.HV, self.HW, self.HN, self.head, self.HA, self.EJ, self.ES,
                                   self.stale, *args, self.src_ptr, self.by_src, self.JT, self.jt_base, self.sent,
                                   self.e_delay, self.e_key, self.jt_law)
            if code == 0:
                break
            if code == 1:
                self._grow()
            else:
                self._draw_ahead(idx)
        self.serial += 1

    def _draw_ahead(self, idx) -> None:
        """Draw the jitters of the next sends of the senders ``idx`` on all their synapses, under
        a law other than the uniform one (each j(e, n) is a function of its key and n alone:
        drawing ahead changes no value)."""
        qs, u, sends = jitter_uniforms(idx, self.src_ptr, self.by_src, self.sent, self.e_key, self.JT.shape[1])
        self.JT[qs] = jitter.late(self.jitter, u.ravel(), sends.ravel()).reshape(u.shape)
        self.jt_base[idx] = self.sent[idx]

    def _grow(self) -> None:
        """Keep more samples per sender (some are still on their way)."""
        n, k = self.HT.shape
        order = (self.head[:, None] + np.arange(k)[None, :]) % k  # oldest first
        rows = np.arange(n)[:, None]
        pad = lambda a, fill: np.concatenate([a[rows, order], np.full((n, k), fill, a.dtype)], axis=1)  # noqa: E731
        self.HT, self.HV, self.HW = pad(self.HT, -math.inf), pad(self.HV, 0.0), pad(self.HW, -1)
        self.HN = pad(self.HN, -1)
        if self.jitter is not None:
            self.HA = pad(self.HA, -math.inf)
            edge_order = order[self.e_src]  # a synapse's slots follow its sender's
            ring = np.arange(len(self.e_src))[:, None]
            self.EJ = np.concatenate([self.EJ[ring, edge_order], np.zeros((len(ring), k))], axis=1)
            self.ES = np.concatenate([self.ES[ring, edge_order], np.zeros((len(ring), k), bool)], axis=1)
        self.head[:] = k
        self.depth = 2 * k

    # ---------------------------------------------------------------- receivers
    def _arm(self, tg) -> None:
        tg.wake_token += 1
        self.sim.env.schedule_at(events.Signal.__new__(events.Signal), events.DELIVER,
                                 float(self.latest[tg.gid]), (tg, tg.wake_token), self._timer)

    def _timer(self, event):
        tg, token = event._value
        if token != tg.wake_token:
            return
        utab = kept_unit_table(tg) if self.jitter is None else None
        now = self.sim.env.now
        if utab is not None and self._unseen(tg, now):
            # a unit firing in one call (asyncneurons.engine.map_fire): the flush and the test in one call too
            newer = arrived_at(self.send_table(), utab, now, tg.last_wave)
        else:
            self.flush(tg)
            newer = tg.T.min() > tg.last_wave
        if newer:
            events.trigger(tg.wake, events.FIRE + tg.rank)

    def send_table(self):
        """The table of the transmission's arrays (:func:`asyncneurons.engine.map_fire.send_table`),
        made again when the histories have been replaced (:meth:`_grow`, a restored checkpoint:
        both replace ``HT``)."""
        kept = self.__dict__.get("_send_tab")
        if kept is None or kept[1] is not self.HT:
            kept = self._send_tab = (send_table(self), self.HT)
        return kept[0]

    def flush(self, tg) -> bool:
        """Apply to a lazy group the latest sample of each sender that has arrived by now; return
        whether some synapse now holds a newer sample than before (False when nothing was applied)."""
        if not tg.lazy:
            return False
        now = self.sim.env.now
        if not self._unseen(tg, now):
            return False
        e, src = tg.in_edges, tg.in_src
        if self.jitter is None:
            return tk.apply_arrived(self.HT, self.HV, self.HW, self.HN, src, tg.in_d, e, tg.in_rows, tg.in_cols,
                                    self.e_done, tg.H, tg.T, now)
        arrived = self.HT[src] + tg.in_delay + self.EJ[e] <= now
        serials = np.where(arrived, self.HN[src], -1)
        k = np.argmax(serials, axis=1)  # the latest sample that has arrived
        n_k = serials[tg.in_index, k]
        fresh = n_k > self.e_done[e]
        if fresh.any():
            src, k = src[fresh], k[fresh]
            rows, cols = tg.in_rows[fresh], tg.in_cols[fresh]
            tg.H[rows, cols] = self.HV[src, k]
            tg.T[rows, cols] = self.HW[src, k]
            self.e_done[e[fresh]] = n_k[fresh]
            return True
        return False

    def _unseen(self, tg, now: float) -> bool:
        """Whether something may have arrived on the group's synapses since it last looked (and
        mark it as looking now): False when it already looked at this instant and nothing sent
        since can have arrived yet."""
        if tg.flushed[0] == now and (tg.flushed[1] == self.serial or tg.min_delay > 0.0):
            return False
        tg.flushed = (now, self.serial)
        return True

    def after_fire(self, tg) -> None:
        """The group sampled (wave tag ``tg.last_wave``): look for its next complete wave."""
        if not tg.lazy or not self.waits[tg.gid]:
            return
        self.last_wave[tg.gid] = tg.last_wave
        e, src = tg.in_edges, tg.in_src
        if self.jitter is None:
            missing, latest = tk.next_wave(self.HT, self.HW, src, tg.in_d, e, int(tg.last_wave), self.e_sat)
            self.missing[tg.gid], self.latest[tg.gid] = missing, latest
            tg.wake_token += 1  # any armed timer belongs to the wave just served
            if missing == 0:
                self._arm(tg)
            return
        newer = self.HW[src] > tg.last_wave
        at = self.HT[src] + tg.in_delay
        if self.jitter is not None:
            at = at + self.EJ[e]
        arrival = np.where(newer, at, math.inf).min(axis=1)
        sat = np.isfinite(arrival)
        if self.jitter is not None:
            self.e_first[e] = arrival
        self.e_sat[e] = sat
        self.missing[tg.gid] = int((~sat).sum())
        self.latest[tg.gid] = float(arrival[sat].max()) if sat.any() else -math.inf
        tg.wake_token += 1  # any armed timer belongs to the wave just served
        if self.missing[tg.gid] == 0:
            self._arm(tg)
