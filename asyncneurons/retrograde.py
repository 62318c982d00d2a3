"""Retrograde signals landing one synapse at a time: a queue of arrays drained by one compiled loop.

Under Weight Maximization every synapse i → j sends unit i the signal ``C_ij = 2 W_ij U_ij`` when
unit j learns (:mod:`asyncneurons.rules.weight_max`). With a retrograde delay per synapse
(``timing.retro_delay`` a distribution) or jitter per retrograde send (``timing.retro_jitter``)
each signal lands at an instant of its own, and each landing instant is a learning step of the
receiving unit: ``t_i ← t_i + 1``, ``W_i ← W_i + Adam_{t_i}(E_i · R_i)`` with R_i the sum of the
signals landing on i at that instant (added in the order of their senders' unit ids), after
which unit i sends its own signals on, each at (t + d_e) (+ j(e, n) with jitter, newest wins:
:mod:`asyncneurons.jitter`), and clears its trace if a signal carried the new-episode mark.

The event engine makes every landing a SimPy event and every learning step another. Here the
signals are entries of one queue of arrays, ordered as the engine orders its events: by time,
then priority class (deeper receivers first, :func:`asyncneurons.events.retro_arrival`), then
the order in which they were sent. One SimPy event, armed at the earliest entry, wakes the queue;
it then applies, in one compiled loop (:func:`drain`), every landing that precedes the next
event in SimPy's queue, cascades included. Nothing else can happen in between: every firing is
an event of SimPy's queue (firing windows arm one at their next due firing,
:mod:`asyncneurons.windows`, and are cut at the queue's wake-up), the broadcast TD error too,
and landings change only the receiving unit's row and the queue. Each landing does the
arithmetic of the engine's one-row update with the same compiled Adam step
(:func:`asyncneurons.compiled._adam_span`), so the numbers are the engine's bit for bit.

Since landings are no longer events of their own group, a layer need not split into one group per
unit: units are grouped as if every retrograde delay were the same, and each row keeps its own
count of optimizer steps (``g.t``, one per unit) and learns alone. The signals the output sends
when the TD error lands on it enter the queue from :meth:`RetroQueue.send`.

Used on firing windows, for Weight Maximization with p = 2 and per-sample traces, when
retrograde signals reach units at instants of their own (:func:`applies`); elsewhere the engine's
events serve them.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
from numba import njit

from . import delays, events, jitter
from .compiled import _adam_span
from .graph import ranks
from .optim import adam_constants

_BLOCK = 256  # jitter draws kept per retrograde synapse ahead of its sender's sends
DONE, GROW, REFILL, RECORDS = 0, 1, 2, 3


def applies(scenario, graph, rule_cls, use_windows: bool) -> bool:
    """Whether a run's retrograde signals go through the queue (see the module docstring)."""
    from .rules.weight_max import WeightMax
    if not use_windows or rule_cls is not WeightMax or float(scenario.learning.norm_power) != 2.0:
        return False
    if scenario.learning.trace != "per_sample":
        return False
    roles = dict(graph.nodes(data="role"))
    back = [(u, v, d) for u, v, d in graph.edges(data="retro_delay") if roles[u] != "input"]
    if not back:
        return False
    rank = ranks(graph)
    if any(rank[v] <= rank[u] or roles[u] == "output" for u, v, _ in back):
        return False  # signals must flow to strictly lower ranks, onto units the TD error never reaches
    from .units import UNIT_KINDS
    if any(UNIT_KINDS[graph.nodes[u]["kind"]].population for u, _, _ in back):
        return False
    return len({d for _, _, d in back}) > 1 or not delays.is_zero(scenario.timing.retro_jitter)


def fusing_graph(graph):
    """The graph with every retrograde delay set to 0: units are grouped as if their retrograde
    signals landed together (each row then learns at its own instants)."""
    g = graph.copy()
    nx.set_edge_attributes(g, 0.0, "retro_delay")
    return g


# ---------------------------------------------------------------------- the queue in arrays
@njit(cache=True, error_model="numpy")
def _before(qt, qp, qs, a, b):
    """Entry a precedes entry b: (time, priority, sending order)."""
    if qt[a] != qt[b]:
        return qt[a] < qt[b]
    if qp[a] != qp[b]:
        return qp[a] < qp[b]
    return qs[a] < qs[b]


@njit(cache=True, error_model="numpy")
def _push(heap, st, qt, qp, qs, slot):
    i = st[0]
    st[0] = i + 1
    heap[i] = slot
    while i > 0:
        parent = (i - 1) // 2
        if _before(qt, qp, qs, heap[i], heap[parent]):
            heap[i], heap[parent] = heap[parent], heap[i]
            i = parent
        else:
            break


@njit(cache=True, error_model="numpy")
def _pop(heap, st, qt, qp, qs):
    top = heap[0]
    n = st[0] - 1
    st[0] = n
    if n > 0:
        heap[0] = heap[n]
        i = 0
        while True:
            left = 2 * i + 1
            if left >= n:
                break
            best = left
            if left + 1 < n and _before(qt, qp, qs, heap[left + 1], heap[left]):
                best = left + 1
            if _before(qt, qp, qs, heap[best], heap[i]):
                heap[i], heap[best] = heap[best], heap[i]
                i = best
            else:
                break
    return top


@njit(cache=True, error_model="numpy")
def _enqueue(heap, free, st, qt, qp, qs, qrow, qsuid, qn, qval, qstep, qreset, qsyn,
             t, p, row, suid, n, val, step, reset, syn):
    """One entry into a free slot (the caller has made sure there is one); its sending order is
    the count of entries so far."""
    nf = st[1] - 1
    st[1] = nf
    slot = free[nf]
    qt[slot], qp[slot], qs[slot] = t, p, st[2]
    st[2] += 1
    qrow[slot], qsuid[slot], qn[slot], qval[slot] = row, suid, n, val
    qstep[slot], qreset[slot], qsyn[slot] = step, reset, syn
    _push(heap, st, qt, qp, qs, slot)


@njit(cache=True, error_model="numpy")
def enqueue_many(heap, free, st, qt, qp, qs, qrow, qsuid, qn, qval, qstep, qreset, qsyn,
                 t, p, row, suid, n, val, step, reset, syn):
    """Entries k = 0, 1, … in that sending order (signals a group sends from outside the loop)."""
    for k in range(t.shape[0]):
        _enqueue(heap, free, st, qt, qp, qs, qrow, qsuid, qn, qval, qstep, qreset, qsyn,
                 t[k], p[k], row[k], suid[k], n[k], val[k], step, reset, syn[k])


@njit(cache=True, error_model="numpy")
def drain(lim_t, lim_p, need, heap, free, st, qt, qp, qs, qrow, qsuid, qn, qval, qstep, qreset, qsyn,
          batch, keep,
          FP, FM, FV, FE, off, width, T, layer, uid, prio, out_ptr, held, stale, rec_t, rec_row, rec_val, rec_step,
          e_dst, e_col, e_delay, e_syn, sent, base, late, jittered, recording,
          lr0, lr1, lr_steps, bc1, bc2, Tbc, b1, c1, b2, c2, eps):
    """Apply, in the event engine's order, every landing that precedes (``lim_t``, ``lim_p``).

    The entries landing at one (time, priority) are the signals reaching units of one rank at one
    instant. For each receiving row r, in the order of its first signal: with jitter, a signal
    older (send index ``qn``) than one already landed on its synapse is dropped and counted
    (newest wins); R = the signals kept, added in the order of their senders' unit ids (a
    synapse's sends in sending order); the row learns: ``t_r += 1``,
    ``P_r ← P_r + Adam_{t_r}(E_r · R)`` at its layer's rate for the agent step of its first
    signal (``lr0 + (lr1 − lr0)·min(k, lr_steps)/lr_steps``); it sends ``(2 P_ri) · (E_ri R)``
    along each of its retrograde synapses e, landing at ``t + d_e`` (+ ``late[e, n − base_r]``
    with jitter, n its count of sends); and it clears its trace when a signal carried the
    new-episode mark.

    Returns DONE, or, before touching anything: GROW (fewer than ``need`` free entries),
    REFILL (row ``st[3]`` has used its jitter draws) or RECORDS (the record buffer is full).
    """
    nb_max = batch.shape[0]
    while st[0] > 0:
        s = heap[0]
        if qt[s] > lim_t or (qt[s] == lim_t and qp[s] >= lim_p):
            return DONE
        if st[1] < need:
            return GROW
        tau, pr = qt[s], qp[s]
        nb = 0
        while st[0] > 0 and nb < nb_max:
            h = heap[0]
            if qt[h] != tau or qp[h] != pr:
                break
            batch[nb] = _pop(heap, st, qt, qp, qs)
            nb += 1
        # the checks that may send us back to Python, before anything changes
        problem = DONE
        if recording and st[4] + nb > rec_t.shape[0]:
            problem = RECORDS
        if jittered and problem == DONE:
            for k in range(nb):
                r = qrow[batch[k]]
                if out_ptr[r + 1] > out_ptr[r] and sent[r] - base[r] >= late.shape[1]:
                    st[3] = r
                    problem = REFILL
                    break
        if problem != DONE:
            for k in range(nb):
                _push(heap, st, qt, qp, qs, batch[k])
            return problem
        # order: by row in the order of its first entry, then sender uid, then send index
        for i in range(1, nb):  # insertion sort (batches are small)
            x = batch[i]
            j = i - 1
            while j >= 0:
                y = batch[j]
                if qrow[y] > qrow[x] or (qrow[y] == qrow[x] and (qsuid[y] > qsuid[x] or (
                        qsuid[y] == qsuid[x] and (qn[y] > qn[x] or (qn[y] == qn[x] and qs[y] > qs[x]))))):
                    batch[j + 1] = y
                    j -= 1
                else:
                    break
            batch[j + 1] = x
        # rows, each with its run [a, b) of entries and the sending order of its first kept entry
        nrows = 0
        a = 0
        while a < nb:
            r = qrow[batch[a]]
            b = a
            first = -1
            while b < nb and qrow[batch[b]] == r:
                x = batch[b]
                ok = True
                if jittered:
                    if qn[x] < held[qsyn[x]]:
                        stale[r] += 1
                        ok = False
                    else:
                        held[qsyn[x]] = qn[x]
                if ok:
                    if first < 0 or qs[x] < qs[first]:
                        first = x
                else:
                    qt[x] = math.inf  # dropped
                b += 1
            if first >= 0:
                keep[3 * nrows], keep[3 * nrows + 1], keep[3 * nrows + 2] = a, b, first
                nrows += 1
            a = b
        # apply the rows in the order of their first kept entry
        for i in range(1, nrows):
            xa, xb, xf = keep[3 * i], keep[3 * i + 1], keep[3 * i + 2]
            j = i - 1
            while j >= 0 and qs[keep[3 * j + 2]] > qs[xf]:
                keep[3 * (j + 1)], keep[3 * (j + 1) + 1], keep[3 * (j + 1) + 2] = \
                    keep[3 * j], keep[3 * j + 1], keep[3 * j + 2]
                j -= 1
            keep[3 * (j + 1)], keep[3 * (j + 1) + 1], keep[3 * (j + 1) + 2] = xa, xb, xf
        for i in range(nrows):
            a, b, first = keep[3 * i], keep[3 * i + 1], keep[3 * i + 2]
            r = qrow[first]
            R = 0.0
            started = False
            reset = False
            for k in range(a, b):
                x = batch[k]
                if qt[x] != tau:
                    continue  # dropped
                if started:
                    R += qval[x]
                else:
                    R = qval[x]
                    started = True
                reset = reset or qreset[x]
            step = qstep[first]
            L = layer[r]
            lr = lr0[L] + ((lr1[L] - lr0[L]) * np.float64(min(step, lr_steps))) / np.float64(lr_steps)
            tt = T[r] + 1
            T[r] = tt
            o, w = off[r], width[r]
            if tt < Tbc:
                _adam_span(FP[o:o + w], FM[o:o + w], FV[o:o + w], FE[o:o + w], R, lr, b1, c1, b2, c2,
                           bc1[tt], bc2[tt], True, eps)
            else:
                _adam_span(FP[o:o + w], FM[o:o + w], FV[o:o + w], FE[o:o + w], R, lr, b1, c1, b2, c2,
                           1.0, 1.0, False, eps)
            if recording:
                k = st[4]
                rec_t[k], rec_row[k], rec_val[k], rec_step[k] = tau, r, R, step
                st[4] = k + 1
            e0, e1 = out_ptr[r], out_ptr[r + 1]
            if e1 > e0:
                n = sent[r]
                for e in range(e0, e1):
                    c = o + e_col[e]
                    val = (2.0 * FP[c]) * (FE[c] * R)
                    at = tau + e_delay[e]
                    if jittered:
                        at = at + late[e, n - base[r]]
                    d = e_dst[e]
                    _enqueue(heap, free, st, qt, qp, qs, qrow, qsuid, qn, qval, qstep, qreset, qsyn,
                             at, prio[d], d, uid[r], n, val, step, reset, e_syn[e])
                if jittered:
                    sent[r] = n + 1
            if reset:
                for q in range(o, o + w):
                    FE[q] = 0.0
        for k in range(nb):  # the batch's slots are free again
            free[st[1]] = batch[k]
            st[1] += 1
    return DONE


class RetroQueue:
    """The retrograde signals of one simulation in flight, and the rows they land on."""

    def __init__(self, sim):
        self.sim = sim
        graph, groups = sim.graph, sim.groups
        roles = dict(graph.nodes(data="role"))
        rank = ranks(graph)
        self.max_rank = sim.max_rank
        where = {}
        for g in groups:
            for r, n in enumerate(g.names):
                where[n] = (g, r)
        # the rows that receive signals, numbered across their groups
        self.recv = [g for g in groups if any(graph.out_degree(u) > 0 for u in g.names)]
        recv_ids = {id(g) for g in self.recv}
        self.row_of = {}
        names, offs, widths, layers, uids, prios = [], [], [], [], [], []
        o = 0
        for g in self.recv:
            g.row_base = len(names)
            w = g.P.shape[1]
            for r, n in enumerate(g.names):
                self.row_of[n] = len(names)
                names.append(n)
                offs.append(o)
                widths.append(w)
                layers.append(g.layer - 1)
                uids.append(int(g.uids[r]))
                prios.append(events.retro_arrival(rank[n], self.max_rank))
                o += w
        self.names = names
        nr = len(names)
        self.off, self.width = np.array(offs, dtype=np.int64), np.array(widths, dtype=np.int64)
        self.layer, self.uid = np.array(layers, dtype=np.int64), np.array(uids, dtype=np.int64)
        self.prio = np.array(prios, dtype=np.int64)
        self.size = o
        self.FP, self.FM, self.FV, self.FE = (np.zeros(o) for _ in range(4))
        self.T = np.zeros(nr, dtype=np.int64)
        self.views = [None] * len(self.recv)
        self._adopt(force=True)
        # every retrograde synapse, numbered; those sent by receiving rows grouped by sender row
        spec = sim.retro_jitter
        self.spec = spec
        self.jittered = spec is not None
        key_of = lambda u, v: jitter.edge_keys(sim.seed, [delays.node_key(u)], [delays.node_key(v)],  # noqa: E731
                                               jitter.RETRO_JITTER)[0]
        order = lambda v: sorted((u for u in graph.predecessors(v) if roles[u] != "input"),  # noqa: E731
                                 key=lambda u: (rank[u], uids[self.row_of[u]]))
        n_syn = 0
        ptr, dst, col, dly, syn, keys = [0], [], [], [], [], []
        for n in names:
            g, _ = where[n]
            for u in order(n):
                dst.append(self.row_of[u])
                col.append(g.col[u])
                dly.append(float(graph.edges[u, n]["retro_delay"]))
                syn.append(n_syn)
                keys.append(key_of(u, n) if self.jittered else np.uint64(0))
                n_syn += 1
            ptr.append(len(dst))
        self.out_ptr = np.array(ptr, dtype=np.int64)
        self.e_dst, self.e_col = np.array(dst, dtype=np.int64), np.array(col, dtype=np.int64)
        self.e_delay, self.e_syn = np.array(dly, dtype=float), np.array(syn, dtype=np.int64)
        self.e_key = np.array(keys, dtype=np.uint64)
        # groups that send from outside the loop (the output, when the TD error lands on it)
        self.senders = {}
        for g in groups:
            if id(g) in recv_ids:
                continue
            rows, cols, dst, dly, syn, keys = [], [], [], [], [], []
            for r, n in enumerate(g.names):
                for u in order(n):
                    rows.append(r), cols.append(g.col[u]), dst.append(self.row_of[u])
                    dly.append(float(graph.edges[u, n]["retro_delay"])), syn.append(n_syn)
                    keys.append(key_of(u, n) if self.jittered else np.uint64(0))
                    n_syn += 1
            if rows:
                rows = np.array(rows, dtype=np.int64)
                self.senders[g.gid] = {"rows": rows, "cols": np.array(cols, dtype=np.int64),
                                       "dst": np.array(dst, dtype=np.int64), "delay": np.array(dly, dtype=float),
                                       "syn": np.array(syn, dtype=np.int64), "keys": np.array(keys, dtype=np.uint64),
                                       "sent": np.zeros(g.size, dtype=np.int64)}
        self.held = np.full(n_syn, -1, dtype=np.int64)  # the newest send landed on each synapse (jitter)
        self.stale = np.zeros(nr, dtype=np.int64)
        self.sent = np.zeros(nr, dtype=np.int64)  # retrograde sends per row (the jitter's send index)
        self.base = np.zeros(nr, dtype=np.int64)
        self.late = np.zeros((len(self.e_dst), _BLOCK if self.jittered else 1))
        if self.jittered:
            self._refill(np.arange(nr))
        # Adam and the learning rates
        L = sim.scenario.learning
        Tbc = sim.adam.bias_correction_steps
        b1, c1, b2, c2, _, _, _, eps = adam_constants(sim.adam, Tbc)
        consts = [adam_constants(sim.adam, t) for t in range(max(Tbc, 1))]
        self.bc1 = np.array([c[4] for c in consts])
        self.bc2 = np.array([c[5] for c in consts])
        self.lr0 = np.array([lr[0] for lr in sim._lr])
        self.lr1 = np.array([lr[1] for lr in sim._lr])
        self.adam = (int(L.lr_steps), self.bc1, self.bc2, int(Tbc), b1, c1, b2, c2, eps)
        # the queue
        self.need = len(self.e_dst) + 1
        self._allocate(4 * self.need + 64)
        self.keep = np.zeros(3 * (nr + 1), dtype=np.int64)
        self.recording = sim.on_event is not None
        cap = 4 * nr + 16 if self.recording else 0
        self.rec = (np.zeros(cap), np.zeros(cap, dtype=np.int64), np.zeros(cap), np.zeros(cap, dtype=np.int64))
        self.token = 0
        self.armed = None
        self._sync_stale()

    # ------------------------------------------------------------------ arrays
    def _allocate(self, cap: int, old=None) -> None:
        """Room for ``cap`` entries, keeping those of ``old`` (heap, free, st, q) in their slots."""
        q = (np.zeros(cap), np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int64),
             np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int64),
             np.zeros(cap), np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.bool_), np.zeros(cap, dtype=np.int64))
        heap, free = np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int64)
        if old is None:
            st = np.zeros(5, dtype=np.int64)  # heap size, free slots, entries sent, row to refill, records
            free[:] = np.arange(cap - 1, -1, -1)
            st[1] = cap
        else:
            oheap, ofree, st, oq = old
            oc = len(oheap)
            for a, b in zip(q, oq):
                a[:oc] = b
            heap[:st[0]] = oheap[:st[0]]
            nf = int(st[1])
            free[:nf] = ofree[:nf]
            free[nf:nf + cap - oc] = np.arange(cap - 1, oc - 1, -1)
            st[1] = nf + cap - oc
        self.heap, self.free, self.st, self.q = heap, free, st, q
        self.batch = np.zeros(cap, dtype=np.int64)

    def _grow(self) -> None:
        self._allocate(2 * len(self.heap), (self.heap, self.free, self.st, self.q))

    def _refill(self, rows) -> None:
        """The jitter draws j(e, n) of the next ``_BLOCK`` sends of each row in ``rows``, along its synapses."""
        for r in np.atleast_1d(rows).tolist():
            e0, e1 = int(self.out_ptr[r]), int(self.out_ptr[r + 1])
            self.base[r] = self.sent[r]
            if e1 == e0:
                continue
            B = self.late.shape[1]
            sends = np.tile(self.base[r] + np.arange(B, dtype=np.int64), e1 - e0)
            keys = np.repeat(self.e_key[e0:e1], B)
            self.late[e0:e1] = jitter.draw(self.spec, keys, sends).reshape(e1 - e0, B)

    def _adopt(self, force: bool = False) -> None:
        """Make every receiving group's P, M, V, E and step counts t views of the queue's arrays
        (copying in what a group holds, when something gave it fresh arrays: a checkpoint, a
        firing window computed again)."""
        for i, g in enumerate(self.recv):
            v = self.views[i]
            if not force and v is not None and g.P is v[0] and g.M is v[1] and g.V is v[2] and g.E is v[3] \
                    and g.t is v[4]:
                continue
            m, w = g.P.shape
            o = int(self.off[g.row_base]) if len(self.off) else 0
            arrays = []
            for flat, a in ((self.FP, g.P), (self.FM, g.M), (self.FV, g.V), (self.FE, g.E)):
                view = flat[o:o + m * w].reshape(m, w)
                if a is not view:
                    view[...] = a
                arrays.append(view)
            t = self.T[g.row_base:g.row_base + m]
            t[...] = g.t
            g.P, g.M, g.V, g.E = arrays
            g.t = t
            self.views[i] = (*arrays, t)

    def _args(self):
        return (self.heap, self.free, self.st, *self.q, self.batch, self.keep,
                self.FP, self.FM, self.FV, self.FE, self.off, self.width, self.T, self.layer, self.uid, self.prio,
                self.out_ptr, self.held, self.stale, *self.rec, self.e_dst, self.e_col, self.e_delay, self.e_syn,
                self.sent, self.base, self.late, self.jittered, self.recording, self.lr0, self.lr1, *self.adam)

    def _sync_stale(self) -> None:
        if not self.jittered:
            return
        for g in self.recv:
            g.retro_stale = int(self.stale[g.row_base:g.row_base + g.size].sum())

    # ------------------------------------------------------------------ signals in
    def send(self, grp, C: np.ndarray, step: int, reset: bool, t0: float) -> None:
        """A group that learns outside the loop (the output) sends ``C`` (units × sources) at ``t0``."""
        s = self.senders.get(grp.gid)
        if s is None:
            return
        rows = s["rows"]
        if self.jittered:
            n = s["sent"][rows]
            at = (t0 + s["delay"]) + jitter.draw(self.spec, s["keys"], n)
            s["sent"] += 1
        else:
            n = np.zeros(len(rows), dtype=np.int64)
            at = t0 + s["delay"]
        while self.st[1] < len(rows):
            self._grow()
        suid = grp.uids[rows].astype(np.int64)
        enqueue_many(self.heap, self.free, self.st, *self.q, np.ascontiguousarray(at, dtype=np.float64),
                     self.prio[s["dst"]], s["dst"], suid, n, np.ascontiguousarray(C[rows, s["cols"]], dtype=np.float64),
                     int(step), bool(reset), s["syn"])
        self._arm()

    def _arm(self) -> None:
        """One wake-up in SimPy's queue, at the earliest entry (a later one, if armed, is superseded)."""
        if self.st[0] == 0:
            return
        top = int(self.heap[0])
        best = (float(self.q[0][top]), int(self.q[1][top]))
        if self.armed is not None and self.armed <= best:
            return
        self.token += 1
        self.armed = best
        self.sim.env.schedule_at(events.Signal.__new__(events.Signal), best[1], best[0], self.token, self._wake)

    # ------------------------------------------------------------------ landings
    def _wake(self, event):
        if event._value != self.token:
            return  # superseded by an earlier wake-up
        self.armed = None
        queue = self.sim.env._queue
        limit = queue[0][:2] if queue else (math.inf, math.inf)
        self.run(limit)
        self._arm()

    def run(self, limit) -> None:
        """Apply every landing that precedes ``limit`` = (time, priority)."""
        self._adopt()
        lim_t = float(limit[0])
        lim_p = int(limit[1]) if math.isfinite(limit[1]) else np.iinfo(np.int64).max
        while True:
            status = drain(lim_t, lim_p, self.need, *self._args())
            if status == DONE:
                break
            if status == GROW:
                self._grow()
            elif status == REFILL:
                self._refill(int(self.st[3]))
            elif status == RECORDS:
                self._emit()
                if self.st[4] == 0:
                    self.rec = tuple(np.zeros(2 * len(a), dtype=a.dtype) for a in self.rec)
        self._emit()
        self._sync_stale()

    def _emit(self) -> None:
        k = int(self.st[4])
        if not k:
            return
        self.st[4] = 0
        on_event = self.sim.on_event
        t, row, val, step = (a[:k].tolist() for a in self.rec)
        for i in range(k):
            on_event(t[i], self.names[row[i]], "retro", val[i], step[i])

    def settle(self) -> None:
        """The state is observed now: counters as groups keep them."""
        self._adopt()
        self._sync_stale()

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        live = self.heap[:self.st[0]]
        q = [a[live] for a in self.q]
        return {"entries": q, "sent_entries": int(self.st[2]), "held": self.held.copy(), "stale": self.stale.copy(),
                "sent": self.sent.copy(), "out_sent": {gid: s["sent"].copy() for gid, s in self.senders.items()},
                "token": self.token, "armed": list(self.armed) if self.armed is not None else None}

    def restore(self, state: dict) -> None:
        self._adopt(force=True)
        q = [np.asarray(x) for x in state["entries"]]
        n = len(q[0])
        self._allocate(max(4 * self.need + 64, 2 * n))
        for x, y in zip(self.q, q):
            x[:n] = y
        cap = len(self.heap)
        self.free[:cap - n] = np.arange(cap - 1, n - 1, -1)
        self.st[:] = 0
        self.st[1] = cap - n
        for slot in range(n):
            _push(self.heap, self.st, self.q[0], self.q[1], self.q[2], slot)
        self.st[2] = int(state["sent_entries"])
        self.held[:] = state["held"]
        self.stale[:] = state["stale"]
        self.sent[:] = state["sent"]
        for gid, sent in state["out_sent"].items():
            self.senders[int(gid)]["sent"][:] = sent
        if self.jittered:
            self._refill(np.arange(len(self.names)))
        self.token = int(state["token"])
        self.armed = tuple(state["armed"]) if state["armed"] is not None else None
        self._sync_stale()


__all__ = ["RetroQueue", "applies", "drain", "fusing_graph"]
