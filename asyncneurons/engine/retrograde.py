"""Retrograde signals landing one synapse at a time: a queue of arrays drained by one compiled loop.

Under Weight Maximization every synapse i → j sends unit i the signal ``C_ij = 2 W_ij U_ij`` when
unit j learns (:mod:`asyncneurons.learning.rules.weight_max`). With a retrograde delay per synapse
(``timing.retro_delay`` a distribution) or jitter per retrograde send (``timing.retro_jitter``)
each signal lands at an instant of its own, and each landing instant is a learning step of the
receiving unit: ``t_i ← t_i + 1``, ``W_i ← W_i + Adam_{t_i}(E_i · R_i)`` with R_i the sum of the
signals landing on i at that instant (added in the order of their senders' unit ids), after
which unit i sends its own signals on, each at (t + d_e) (+ j(e, n) with jitter, newest wins:
:mod:`asyncneurons.engine.jitter`), and clears its trace if a signal carried the new-episode mark.

The event engine makes every landing a SimPy event and every learning step another. Here the
signals are entries of one queue of arrays, ordered as the engine orders its events: by time,
then priority class (deeper receivers first, :func:`asyncneurons.engine.events.retro_arrival`), then
the order in which they were sent. One SimPy event, armed at the earliest entry, wakes the queue;
it then applies, in one compiled loop (:func:`drain`), every landing that precedes the next
event in SimPy's queue, cascades included. Nothing else can happen in between: every firing is
an event of SimPy's queue (firing windows arm one at their next due firing,
:mod:`asyncneurons.engine.windows`, and are cut at the queue's wake-up), the broadcast TD error too,
and landings change only the receiving unit's row and the queue. Each landing does the
arithmetic of the engine's one-row update with the same compiled Adam step
(:func:`asyncneurons.learning.compiled._adam_span`), so the numbers are the engine's bit for bit.

Entries on rows that send signals on are ordered by a heap. Entries on the *last* rows (units
whose presynaptic units are all inputs) cause nothing further, so each such row only keeps them,
in the order they were sent, and at the end of each drain the rows learn, each in its own time
order (an entry's place found by counting the entries that land before it). When the last rows
lie one after another in the flat arrays, all of one width, every row's learning steps of one
drain are one call with the rows side by side (:func:`asyncneurons.learning.compiled.adam_landings_rows`:
each weight takes its row's steps in order with the operations of one
:func:`~asyncneurons.learning.compiled._adam_span` per landing, and step k of every row is one
loop over the rows, which the compiler vectorizes, square roots and divisions included); else a
row's steps are one call (:func:`asyncneurons.learning.compiled.adam_landings`). A row that sends
along a synapse to every last row, in their order, writes its entries as one row of the columns
when every last row holds as many entries as the others: their times and values, the rest
(sending order, sender, send index, step, mark, synapse) once, as one record of that row of the
columns, written out only if the rows are then taken one by one; and when every entry is due,
each is an instant of its own and no synapse comes twice on a row, the places of all rows are
found in one pass (:func:`_last_rows_at_once`: a row's places of the last drain kept when its
entries, read in that order, still land one after another, as they do under fixed delays, else
counted; otherwise row by row, as when events are recorded). The compiled calls Python makes per environment step (:func:`drain_at`,
:func:`send_many_at`) are passed a table of the queue's arrays' addresses, not the arrays.

Since landings are no longer events of their own group, a layer need not split into one group per
unit: units are grouped as if every retrograde delay were the same, and each row keeps its own
count of optimizer steps (``g.t``, one per unit) and learns alone. The signals the output sends
when the TD error lands on it enter the queue from :meth:`RetroQueue.send`.

Ties are broken as the engine breaks them: signals landing on one unit at one instant are added
in ascending sender id (one synapse's sends in sending order), the unit learns at the rate of the
agent step its first signal carries (first in sending order, which follows the engine's order
of sending: a sender's synapses receiver by receiver, by rank then unit id), and units learning
at one instant learn in the order of their first signal.

Used on firing windows, for Weight Maximization with p = 2 and per-sample traces, when
retrograde signals reach units at instants of their own (:func:`applies`); elsewhere the engine's
events serve them.
"""

from __future__ import annotations

import math

import networkx as nx
import numba
import numpy as np
from numba import njit
from asyncneurons.learning import kernel_cache  # noqa: F401  (stamps the kernel cache before any @njit)

from asyncneurons.model import delays
from asyncneurons.engine import events, jitter
from asyncneurons.engine.history_kernels import _b1_at, _f8_at, _i8_at, array_addresses, checked_addresses
from asyncneurons.learning.compiled import _adam_span, _uniform, adam_landings, adam_landings_rows
from asyncneurons.model.graph import ranks
from asyncneurons.learning.optim import adam_constants

_BLOCK = 32  # jitter draws kept per retrograde synapse ahead of its sender's sends
_DRAWS = 1 << 16  # and at most this many in all
DONE, GROW, REFILL, RECORDS = 0, 1, 2, 3


def applies(scenario, graph, rule_cls, use_windows: bool) -> bool:
    """Whether a run's retrograde signals go through the queue (see the module docstring)."""
    from asyncneurons.learning.rules.weight_max import WeightMax
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
    from asyncneurons.learning.units import UNIT_KINDS
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
# An entry is a signal in flight: (time, priority, sending order, receiving row, sender's unit id,
# send index, value, agent step, new-episode mark, synapse).
# Q = (heap, free, st, qt, qp, qs, qrow, qsuid, qn, qval, qstep, qreset, qsyn): the entries on rows
#     that send signals on, each in a slot of the arrays, ordered by the heap;
#     st = [heap size, free slots, entries so far, row to refill, records, most entries on one last row].
# L = (count, lt, ls, lsuid, ln, lval, lstep, lreset, lsyn, lz): the entries on *last* rows (rows that
#     send nothing on: their landings cause nothing), kept per row in the order they were sent:
#     entry k of last row j is [k, j] of each array, ``count[j]`` of them (no priority, no heap).
#     lz[k] = (1, sending order, sender's unit id, send index, first synapse, agent step, mark): entry k
#     of every last row was sent by one landing onto every last row in their order (the last rows'
#     order = the synapses' order), and only its time and value are written: its sending order,
#     sender, send index, step, mark and synapse are those of lz[k] (sending order and synapse
#     counted up along the row); written out (:func:`_written_out`) before the rows are taken one
#     by one. Only within a drain (and the calls that continue it): between drains no entry is kept so.
# U = (FP, FM, FV, FE, off, width, T, layer, uid, prio, out_ptr, held, stale, sent, base, late,
#      e_dst, e_col, e_delay, e_syn, lslot, lrow, lprio, full): the rows and their retrograde synapses;
#      lslot[r] the column j of row r among the last rows (−1: a row that sends on), lrow[j] its row;
#      full[r] 1 when row r sends along a synapse to every last row in their order, 2 when moreover
#      those synapses' weights lie one after another in its row (0 otherwise).
# A = (lr0, lr1, lr_steps, bc1, bc2, Tbc, b1, c1, b2, c2, eps), REC = (time, row, R, step, first entry),
# S = (key, order, index, R, rate, mark, MS, VS, LS): a last row's scratch in a drain.
_INLINE = {"cache": True, "error_model": "numpy", "inline": "always"}


@njit(**_INLINE)
def _before(qt, qp, qs, a, b):
    """Entry a precedes entry b: (time, priority, sending order)."""
    if qt[a] != qt[b]:
        return qt[a] < qt[b]
    if qp[a] != qp[b]:
        return qp[a] < qp[b]
    return qs[a] < qs[b]


@njit(**_INLINE)
def _after_on_row(qt, qsuid, qn, qs, a, b):
    """On one row, entry a comes after entry b: (time, sender's unit id, send index, sending order)."""
    if qt[a] != qt[b]:
        return qt[a] > qt[b]
    if qsuid[a] != qsuid[b]:
        return qsuid[a] > qsuid[b]
    if qn[a] != qn[b]:
        return qn[a] > qn[b]
    return qs[a] > qs[b]


@njit(**_INLINE)
def _after_on_last_row(lt, lsuid, ln, ls, j, a, b):
    """On last row j, entry a comes after entry b: (time, sender's unit id, send index, sending order)."""
    if lt[a, j] != lt[b, j]:
        return lt[a, j] > lt[b, j]
    if lsuid[a, j] != lsuid[b, j]:
        return lsuid[a, j] > lsuid[b, j]
    if ln[a, j] != ln[b, j]:
        return ln[a, j] > ln[b, j]
    return ls[a, j] > ls[b, j]


@njit(**_INLINE)
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


@njit(**_INLINE)
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


@njit(**_INLINE)
def _keep(L, st, j, t, seq, suid, n, val, step, reset, syn):
    """An entry onto last row j (the caller has made sure there is room)."""
    count = L[0]
    k = count[j]
    L[1][k, j], L[2][k, j], L[3][k, j], L[4][k, j] = t, seq, suid, n
    L[5][k, j], L[6][k, j], L[7][k, j], L[8][k, j] = val, step, reset, syn
    count[j] = k + 1
    if k + 1 > st[5]:
        st[5] = k + 1


@njit(**_INLINE)
def _place(Q, L, lslot, t, p, seq, row, suid, n, val, step, reset, syn):
    """An entry onto the heap, in a free slot, or onto its last row (the caller has made sure there
    is room)."""
    st = Q[2]
    j = lslot[row]
    if j >= 0:
        _keep(L, st, j, t, seq, suid, n, val, step, reset, syn)
        return
    free = Q[1]
    nf = st[1] - 1
    st[1] = nf
    slot = free[nf]
    Q[3][slot], Q[4][slot], Q[5][slot] = t, p, seq
    Q[6][slot], Q[7][slot], Q[8][slot], Q[9][slot] = row, suid, n, val
    Q[10][slot], Q[11][slot], Q[12][slot] = step, reset, syn
    _push(Q[0], st, Q[3], Q[4], Q[5], slot)


@njit(**_INLINE)
def _enqueue(Q, L, lslot, t, p, row, suid, n, val, step, reset, syn):
    """One entry, its sending order the count of entries so far."""
    st = Q[2]
    seq = st[2]
    st[2] = seq + 1
    _place(Q, L, lslot, t, p, seq, row, suid, n, val, step, reset, syn)


@njit(**_INLINE)
def _earliest(Q, L, lprio, nxt):
    """``nxt`` = (time, priority) of the earliest entry in flight (time ∞ if none)."""
    heap, st, qt, qp = Q[0], Q[2], Q[3], Q[4]
    count, lt = L[0], L[1]
    bt, bp = math.inf, np.int64(0)
    if st[0] > 0:
        bt, bp = qt[heap[0]], qp[heap[0]]
    for j in range(count.shape[0]):
        p = lprio[j]
        for k in range(count[j]):
            t = lt[k, j]
            if t < bt or (t == bt and p < bp):
                bt, bp = t, p
    nxt[0], nxt[1] = bt, np.float64(bp)


@njit(cache=True, error_model="numpy")
def send_many(Q, L, lslot, lprio, t0, delay, late, jittered, p, row, suid, n0, n, C, rows, cols, step, reset, syn, nxt,
              need, lneed):
    """The signals ``C[rows[k], cols[k]]`` a group sends from outside the loop at ``t0`` (the output,
    when the TD error lands on it), as entries k = 0, 1, … in that sending order, entry k landing at
    ``t0 + delay[k]`` (``(t0 + delay[k]) + late[k]`` with jitter), its send index ``n0`` (or ``n[k]``
    when ``n0 < 0``); ``nxt`` = the earliest entry in flight then. Returns False, changing nothing,
    when there is no room for them with ``need`` free slots and ``lneed`` entries on a last row to spare."""
    m = rows.shape[0]
    st = Q[2]
    if st[1] < m + need or st[5] + m + lneed > L[1].shape[0]:
        return False
    for k in range(m):
        at = t0 + delay[k]
        if jittered:
            at = at + late[k]
        _enqueue(Q, L, lslot, at, p[k], row[k], suid[k], n0 if n0 >= 0 else n[k], C[rows[k], cols[k]], step, reset,
                 syn[k])
    _earliest(Q, L, lprio, nxt)
    return True


@njit(cache=True, error_model="numpy")
def keyed_block(keys, base, law, U, S):
    """``S[k, j] = base[j] + k`` and ``U[k, j]`` its keyed uniform ``U(keys[j], S[k, j])`` (the send
    indices of a block of sends along each synapse j, and their uniforms: :mod:`asyncneurons.learning.streams`);
    with ``law = [1, low, span]`` (a uniform law, :func:`asyncneurons.engine.jitter.compiled_law`)
    ``U[k, j]`` is the jitter itself, ``low + U(keys[j], S[k, j]) · span``, as :func:`delays.law` computes it."""
    uniform, low, span = law[0] == 1.0, law[1], law[2]
    for k in range(U.shape[0]):
        for j in range(keys.shape[0]):
            n = base[j] + k
            S[k, j] = n
            u = _uniform(keys[j], n)
            U[k, j] = low + u * span if uniform else u


@njit(cache=True, error_model="numpy")
def place_many(Q, L, lslot, lprio, t, p, seq, row, suid, n, val, step, reset, syn, nxt):
    """Entries given with their sending order (a checkpoint's); ``nxt`` as :func:`send_many`."""
    for k in range(t.shape[0]):
        _place(Q, L, lslot, t[k], p[k], seq[k], row[k], suid[k], n[k], val[k], step[k], reset[k], syn[k])
    _earliest(Q, L, lprio, nxt)


@njit(**_INLINE)
def _learn(FP, FM, FV, FE, o, w, T, r, lr, R, bc1, bc2, Tbc, b1, c1, b2, c2, eps):
    """Row r (entries ``[o, o + w)`` of the flat arrays) learns from R at rate ``lr``:
    ``t_r += 1``, ``P_r ← P_r + Adam_{t_r}(E_r · R)``."""
    tt = T[r] + 1
    T[r] = tt
    if tt < Tbc:
        _adam_span(FP[o:o + w], FM[o:o + w], FV[o:o + w], FE[o:o + w], R, lr, b1, c1, b2, c2,
                   bc1[tt], bc2[tt], True, eps)
    else:
        _adam_span(FP[o:o + w], FM[o:o + w], FV[o:o + w], FE[o:o + w], R, lr, b1, c1, b2, c2,
                   1.0, 1.0, False, eps)


@njit(**_INLINE)
def _rate(lr0, lr1, lr_steps, layer, step):
    """The layer's learning rate at agent step ``step``: ``lr0 + (lr1 − lr0)·min(k, lr_steps)/lr_steps``."""
    return lr0[layer] + ((lr1[layer] - lr0[layer]) * np.float64(min(step, lr_steps))) / np.float64(lr_steps)


@njit(**_INLINE)
def _record(REC, st, tau, r, R, step, first):
    k = st[4]
    REC[0][k], REC[1][k], REC[2][k], REC[3][k], REC[4][k] = tau, r, R, step, first
    st[4] = k + 1


@njit(**_INLINE)
def _instant(qs, qrow, qn, qval, qreset, qsyn, held, stale, jittered, order, a, b):
    """The entries ``order[a:b]`` land on one row at one instant, in the row's order: drop (and
    count) those older than a send already landed on their synapse; return (R, slot of the first
    kept entry in sending order, new-episode mark), R the kept values added one after another."""
    R = 0.0
    first = -1
    reset = False
    for k in range(a, b):
        x = order[k]
        if jittered:
            if qn[x] < held[qsyn[x]]:
                stale[qrow[x]] += 1
                continue
            held[qsyn[x]] = qn[x]
        if first < 0:
            R = qval[x]
        else:
            R += qval[x]
        if first < 0 or qs[x] < qs[first]:
            first = x
        reset = reset or qreset[x]
    return R, first, reset


@njit(**_INLINE)
def _clear(FE, o, w):
    for q in range(o, o + w):
        FE[q] = 0.0


@njit(**_INLINE)
def _in_time_order(lt, lsuid, ln, ls, j, idx, key, order, nd):
    """``order[:nd]`` = the positions ``0 … nd−1`` of the entries ``idx[:nd]`` of last row j (their
    times in ``key``) in the row's order: time, then sender's unit id, send index, sending order.
    Each entry's place is the count of entries landing before it (a loop the compiler vectorizes);
    a row where two entries land at one instant (two entries counting the same place) is put in
    order one entry at a time."""
    for i in range(nd):
        order[i] = -1
    tie = False
    for i in range(nd):
        ki = key[i]
        below = 0
        for q in range(nd):
            below += key[q] < ki
        if order[below] >= 0:
            tie = True
        order[below] = i
    if tie:
        for i in range(nd):
            order[i] = i
        for i in range(1, nd):
            x = order[i]
            q = i - 1
            while q >= 0 and _after_on_last_row(lt, lsuid, ln, ls, j, idx[order[q]], idx[x]):
                order[q + 1] = order[q]
                q -= 1
            order[q + 1] = x


@njit(cache=True, error_model="numpy")  # (a call of its own: numba does not inline it with its 32 arguments)
def _last_rows_at_once(lc, nl, ft, fsyn, fn, fval, fstep, freset, lz, e_syn, lim_t, lim_p, lprio, lrow, layer, T, held,
                       stale, jittered, lr0, lr1, lr_steps, R2, L2, C2, KJ, T0J, POS, TT, KEPT, SEEN, stamp, RATE, MARK,
                       PLACED):
    """The last rows' landings of a drain sorted into their learning steps in one pass, when every
    row holds ``c = lc[0]`` entries (entry k of row j at ``k·nl + j``), all due, no two kept
    entries of a row at one instant and, with jitter, no synapse twice on a row: then each kept
    entry is an instant of its own (R its value, the rate of its agent step, its mark), and its
    step's place in its row is the count of the row's kept entries landing before it (the rows'
    times copied row after row, so that each count is a loop the compiler vectorizes). With jitter
    an entry is kept when its send index is not older than the newest landed on its synapse: with
    each synapse once on a row, the order does not matter. When every entry is kept and each is a
    record of ``lz`` (one landing's sends onto every last row, of one layer), an entry's rate and
    mark are found once for all rows (RATE, MARK) and the steps written place by place. Returns
    False, changing nothing, when these do not hold (the caller then takes the rows one by one).

    The places of the last such pass stay in POS (``PLACED[0]`` its c, 0 when a row's are not all its
    entries in time order): when every entry is kept, a row whose entries, read in that order, land
    strictly one after another keeps its places without counting them (the same order: no two at
    one instant, each before the next). Its times in one drain are those of the last one shifted
    (``t0 + d + d'`` for a fixed pair of retrograde delays), so mostly they do."""
    c = lc[0]
    for j in range(1, nl):
        if lc[j] != c:
            return False
    n = c * nl
    if c == 0 or n > POS.shape[0]:
        return False
    late = 0  # due: none at or past the limit's instant, or (less often) each before the limit
    for x in range(n):
        late += ft[x] >= lim_t
    if late > 0:
        for k in range(c):
            for j in range(nl):
                t = ft[k * nl + j]
                if not (t < lim_t or (t == lim_t and lprio[j] < lim_p)):
                    return False
    every = True  # every entry kept
    if jittered:
        for k in range(c):  # each synapse once (SEEN[e] = stamp: met in this pass; a stamp left by an
            if lz[k, 0]:    # earlier pass with the same stamp only sends the rows one by one)
                e0, nk = lz[k, 4], lz[k, 3]
                for j in range(nl):
                    e = e_syn[e0 + j]
                    if SEEN[e] == stamp:
                        return False
                    SEEN[e] = stamp
                    kept = nk >= held[e]
                    KEPT[j * c + k] = kept
                    every = every and kept
            else:
                for j in range(nl):
                    x = k * nl + j
                    e = fsyn[x]
                    if SEEN[e] == stamp:
                        return False
                    SEEN[e] = stamp
                    kept = fn[x] >= held[e]
                    KEPT[j * c + k] = kept
                    every = every and kept
    else:
        for x in range(n):
            KEPT[x] = True
    lr_layer, lr_step, lr = np.int64(-1), np.int64(-1), 0.0
    records = every  # every entry kept, each entry k one record of lz, the last rows of one layer
    for k in range(c):
        records = records and lz[k, 0] != 0
    for j in range(nl):
        records = records and layer[lrow[j]] == layer[lrow[0]]
    if records:  # entry k's rate and mark, those of its record, once for every row; each row's steps
        lr_layer = layer[lrow[0]]  # then written place by place as its places are known
        for k in range(c):
            if lz[k, 5] != lr_step:
                lr_step = lz[k, 5]
                lr = _rate(lr0, lr1, lr_steps, lr_layer, lr_step)
            RATE[k], MARK[k] = lr, lz[k, 6] != 0
    placed = every and PLACED[0] == c  # (POS[j·c + p]: the entry at place p of row j)
    PLACED[0] = 0
    for j in range(nl):
        pos = POS[j * c:j * c + c]
        if placed:  # the last pass's places, when the row's entries read in that order land one after another
            prev = -math.inf
            p = 0
            while p < c:
                i = pos[p]
                x = i * nl + j
                t = ft[x]
                if not prev < t:
                    break
                if records:
                    R2[p, j], L2[p, j], C2[p, j] = fval[x], RATE[i], MARK[i]
                prev = t
                p += 1
            if p == c:
                continue
            placed = False  # (and the rows after it are counted: their times have moved too, mostly)
        key = TT[j * c:j * c + c]  # the row's times copied, then counted
        for k in range(c):
            key[k] = ft[k * nl + j]
            pos[k] = -1
        kept = KEPT[j * c:j * c + c]
        i = 0
        if every:  # eight entries' counts in one pass over the row
            while i + 8 <= c:
                k0, k1, k2, k3, k4, k5, k6, k7 = key[i], key[i + 1], key[i + 2], key[i + 3], key[i + 4], key[i + 5], \
                    key[i + 6], key[i + 7]
                b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = 0
                for q in range(c):
                    kq = key[q]
                    b0 += kq < k0
                    b1 += kq < k1
                    b2 += kq < k2
                    b3 += kq < k3
                    b4 += kq < k4
                    b5 += kq < k5
                    b6 += kq < k6
                    b7 += kq < k7
                for below, x in ((b0, i), (b1, i + 1), (b2, i + 2), (b3, i + 3), (b4, i + 4), (b5, i + 5),
                                 (b6, i + 6), (b7, i + 7)):
                    if pos[below] >= 0:
                        return False  # two kept entries at one instant
                    pos[below] = x
                i += 8
        while i < c:
            if kept[i]:
                ki = key[i]
                below = 0
                if not every:
                    for q in range(c):
                        below += kept[q] & (key[q] < ki)
                else:
                    for q in range(c):
                        below += key[q] < ki
                if pos[below] >= 0:
                    return False  # two kept entries at one instant
                pos[below] = i
            i += 1
        if records:
            for p in range(c):
                i = pos[p]
                R2[p, j], L2[p, j], C2[p, j] = fval[i * nl + j], RATE[i], MARK[i]
    if records:
        if jittered:  # each synapse's newest send landed, that of its record (each synapse once)
            for k in range(c):
                es, nk = e_syn[lz[k, 4]:lz[k, 4] + nl], lz[k, 3]
                for j in range(nl):
                    held[es[j]] = nk
    for j in range(nl):
        r = lrow[j]
        K = c if records else 0
        for p in range(K, c):
            i = POS[j * c + p]
            if i < 0:
                break
            x = i * nl + j
            if lz[i, 0]:
                step, reset = lz[i, 5], lz[i, 6] != 0
            else:
                step, reset = fstep[x], freset[x]
            if layer[r] != lr_layer or step != lr_step:
                lr_layer, lr_step = layer[r], step
                lr = _rate(lr0, lr1, lr_steps, lr_layer, lr_step)
            R2[p, j], L2[p, j], C2[p, j] = fval[x], lr, reset
            K += 1
        if jittered and not records:
            for i in range(c):
                x = i * nl + j
                if KEPT[j * c + i]:
                    if lz[i, 0]:
                        held[e_syn[lz[i, 4] + j]] = lz[i, 3]
                    else:
                        held[fsyn[x]] = fn[x]
                else:
                    stale[r] += 1
        KJ[j], T0J[j] = K, T[r]
        T[r] += K
        lc[j] = 0
    for k in range(c):
        lz[k, 0] = 0
    if every:
        PLACED[0] = c
    return True


@njit(**_INLINE)
def _written_out(L, e_syn):
    """Every entry kept as a record of ``lz`` written out into the columns (see L above)."""
    lc, ls, lsuid, ln, lstep, lreset, lsyn, lz = L[0], L[2], L[3], L[4], L[6], L[7], L[8], L[9]
    nl = lc.shape[0]
    for k in range(lz.shape[0]):
        if lz[k, 0]:
            seq, u, n, e0, step, reset = lz[k, 1], lz[k, 2], lz[k, 3], lz[k, 4], lz[k, 5], lz[k, 6] != 0
            for j in range(nl):
                ls[k, j], lsuid[k, j], ln[k, j], lstep[k, j], lreset[k, j] = seq + j, u, n, step, reset
                lsyn[k, j] = e_syn[e0 + j]
            lz[k, 0] = 0


@njit(cache=True, error_model="numpy")
def drain(lim_t, lim_p, need, lneed, Q, L, U, A, REC, S, batch, keep, keep_r, jittered, recording, nxt):
    """Apply, in the event engine's order, every landing that precedes (``lim_t``, ``lim_p``).

    Entries landing at one (time, priority) are the signals reaching units of one rank at one
    instant. For each receiving row, in the order of its first signal: with jitter, a signal older
    (send index) than one already landed on its synapse is dropped and counted (newest wins); R
    is the sum of the kept signals in the order of their senders' unit ids (a synapse's sends in
    sending order); the row learns (:func:`_learn`), sends ``(2 P_ri) · (E_ri R)`` along each of its
    retrograde synapses e, landing at ``t + d_e`` (+ the jitter of its n-th send), and clears its
    trace when a signal carried the new-episode mark. The last rows (rows that send nothing on)
    learn at the end, each in its own time order: nothing they do reaches another row.

    Then ``nxt`` = the earliest entry still in flight. Returns DONE, or, before changing anything:
    GROW (fewer than ``need`` free slots, or no room for ``lneed`` more entries on a last row),
    REFILL (row ``st[3]`` has used its jitter draws) or RECORDS (the record buffer may overflow).
    """
    heap, free, st, qt, qp, qs, qrow, qsuid, qn = Q[0], Q[1], Q[2], Q[3], Q[4], Q[5], Q[6], Q[7], Q[8]
    qval, qstep, qreset, qsyn = Q[9], Q[10], Q[11], Q[12]
    lc, lt, ls, lsuid, ln, lval, lstep, lreset, lsyn, lz = L
    nl = lc.shape[0]  # (the columns written flat, entry k of last row j at k·nl + j: the hot path)
    ft, fs, fsuid, fn = lt.reshape(lt.size), ls.reshape(ls.size), lsuid.reshape(lsuid.size), ln.reshape(ln.size)
    fval, fstep, freset, fsyn = lval.reshape(lval.size), lstep.reshape(lstep.size), lreset.reshape(lreset.size), \
        lsyn.reshape(lsyn.size)
    FP, FM, FV, FE, off, width, T, layer, uid, prio, out_ptr = U[:11]
    held, stale = U[11], U[12]
    sent, base, late, e_dst, e_col, e_delay, e_syn = U[13], U[14], U[15], U[16], U[17], U[18], U[19]
    lslot, lrow, lprio, full = U[20], U[21], U[22], U[23]
    even = nl > 0  # every last row holds as many entries as the others
    for j in range(1, nl):
        if lc[j] != lc[0]:
            even = False
    key, order, idx, Rk, Lk, Ck, MS, VS, LS = S[:9]
    block, R2, L2, C2, KJ, T0J, PT, MT, VT, ET, A1, A2, POS, TT, KEPT, SEEN, PLACED = S[9:]
    together = block[1] > 0  # the last rows are one block of one width: they learn in one call
    lr0, lr1, lr_steps, bc1, bc2, Tbc, b1, c1, b2, c2, eps = A
    nrec = REC[0].shape[0]
    cap = lt.shape[0]
    lr_layer, lr_step, lr = np.int64(-1), np.int64(-1), 0.0
    while st[0] > 0:
        s = heap[0]
        if qt[s] > lim_t or (qt[s] == lim_t and qp[s] >= lim_p):
            break
        if st[1] < need or st[5] + lneed > cap:
            return GROW
        tau, pr = qt[s], qp[s]
        nb = 0
        while st[0] > 0 and nb < batch.shape[0]:
            h = heap[0]
            if qt[h] != tau or qp[h] != pr:
                break
            batch[nb] = _pop(heap, st, qt, qp, qs)
            nb += 1
        problem = DONE
        if recording and st[4] + nb > nrec:
            problem = RECORDS
        if jittered and problem == DONE:
            for k in range(nb):
                r = qrow[batch[k]]
                if sent[r] - base[r] >= late.shape[0]:
                    st[3] = r
                    problem = REFILL
                    break
        if problem != DONE:
            for k in range(nb):
                _push(heap, st, qt, qp, qs, batch[k])
            return problem
        # by row, then in the row's order (sender, send index)
        for i in range(1, nb):
            x = batch[i]
            j = i - 1
            while j >= 0 and (qrow[batch[j]] > qrow[x] or (qrow[batch[j]] == qrow[x] and
                                                           _after_on_row(qt, qsuid, qn, qs, batch[j], x))):
                batch[j + 1] = batch[j]
                j -= 1
            batch[j + 1] = x
        # the signals each row keeps; the rows learn in the order of their first kept signal
        nrows = 0
        a = 0
        while a < nb:
            r = qrow[batch[a]]
            b = a
            while b < nb and qrow[batch[b]] == r:
                b += 1
            R, first, reset = _instant(qs, qrow, qn, qval, qreset, qsyn, held, stale, jittered, batch, a, b)
            if first >= 0:
                i = nrows
                while i > 0 and qs[keep[2 * (i - 1)]] > qs[first]:
                    keep[2 * i], keep[2 * i + 1], keep_r[i] = keep[2 * (i - 1)], keep[2 * (i - 1) + 1], keep_r[i - 1]
                    i -= 1
                keep[2 * i], keep[2 * i + 1], keep_r[i] = first, np.int64(reset), R
                nrows += 1
            a = b
        for i in range(nrows):
            first, reset, R = keep[2 * i], keep[2 * i + 1] != 0, keep_r[i]
            r = qrow[first]
            step = qstep[first]
            o = off[r]
            if layer[r] != lr_layer or step != lr_step:  # (the rate of the last landing, mostly)
                lr_layer, lr_step = layer[r], step
                lr = _rate(lr0, lr1, lr_steps, lr_layer, lr_step)
            _learn(FP, FM, FV, FE, o, width[r], T, r, lr, R, bc1, bc2, Tbc, b1, c1, b2, c2, eps)
            if recording:
                _record(REC, st, tau, r, R, step, qs[first])
            n = sent[r]
            u = uid[r]
            seq = st[2]  # (entries, as _enqueue and _keep make them, written out: the hot path)
            most = st[5]
            e0 = out_ptr[r]
            if even and full[r] > 0:  # one entry onto every last row, each at the same place of its column
                x0 = lc[0] * nl
                # (one array per loop, on slices indexed from 0: loops the compiler vectorizes)
                tk, vk, dk = ft[x0:x0 + nl], fval[x0:x0 + nl], e_delay[e0:e0 + nl]
                if jittered:
                    lk = late[n - base[r], e0:e0 + nl]
                    for i in range(nl):
                        tk[i] = (tau + dk[i]) + lk[i]
                else:
                    for i in range(nl):
                        tk[i] = tau + dk[i]
                if full[r] == 2:  # the row's weights onto the last rows one after another
                    c0 = o + e_col[e0]
                    pk, ek = FP[c0:c0 + nl], FE[c0:c0 + nl]
                    for i in range(nl):
                        vk[i] = (2.0 * pk[i]) * (ek[i] * R)
                else:
                    ck = e_col[e0:e0 + nl]
                    for i in range(nl):
                        c = o + ck[i]
                        vk[i] = (2.0 * FP[c]) * (FE[c] * R)
                k = lc[0]  # the rest in one record (lz)
                lz[k, 0], lz[k, 1], lz[k, 2], lz[k, 3], lz[k, 4], lz[k, 5], lz[k, 6] = 1, seq, u, n, e0, step, np.int64(reset)
                k += 1
                for i in range(nl):
                    lc[i] = k
                if k > most:
                    most = k
                e0 = out_ptr[r + 1]
                seq += nl
            for e in range(e0, out_ptr[r + 1]):
                c = o + e_col[e]
                val = (2.0 * FP[c]) * (FE[c] * R)
                at = tau + e_delay[e]
                if jittered:
                    at = at + late[n - base[r], e]
                d = e_dst[e]
                j = lslot[d]
                if j >= 0:
                    even = False
                    k = lc[j]
                    x = k * nl + j
                    ft[x], fs[x], fsuid[x], fn[x] = at, seq, u, n
                    fval[x], fstep[x], freset[x], fsyn[x] = val, step, reset, e_syn[e]
                    k += 1
                    lc[j] = k
                    if k > most:
                        most = k
                else:
                    nf = st[1] - 1
                    st[1] = nf
                    x = free[nf]
                    qt[x], qp[x], qs[x], qrow[x], qsuid[x], qn[x] = at, prio[d], seq, d, u, n
                    qval[x], qstep[x], qreset[x], qsyn[x] = val, step, reset, e_syn[e]
                    _push(heap, st, qt, qp, qs, x)
                seq += 1
            st[2] = seq
            st[5] = most
            if jittered:
                sent[r] = n + 1
            if reset:
                _clear(FE, o, width[r])
        for k in range(nb):  # the batch's slots are free again
            free[st[1]] = batch[k]
            st[1] += 1
    # the last rows, each in its own time order
    if recording:  # (room for their records first)
        nd = 0
        for j in range(nl):
            for k in range(lc[j]):
                if lt[k, j] < lim_t or (lt[k, j] == lim_t and lprio[j] < lim_p):
                    nd += 1
        if st[4] + nd > nrec:
            return RECORDS
    most = 0
    if together and not recording and _last_rows_at_once(
            lc, nl, ft, fsyn, fn, fval, fstep, freset, lz, e_syn, lim_t, lim_p, lprio, lrow, layer, T, held, stale,
            jittered, lr0, lr1, lr_steps, R2, L2, C2, KJ, T0J, POS, TT, KEPT, SEEN, st[2], Lk, Ck, PLACED):
        nl_rows = 0  # (every row done)
    else:
        nl_rows = nl
        _written_out(L, e_syn)
    for j in range(nl_rows):
        c = lc[j]
        if together:
            KJ[j] = 0
        if c == 0:
            continue
        pj = lprio[j]
        nd = 0  # the due entries, in the order they were sent
        for k in range(c):
            t = lt[k, j]
            if t < lim_t or (t == lim_t and pj < lim_p):
                idx[nd] = k
                key[nd] = t
                nd += 1
        if nd > 0:
            r = lrow[j]
            _in_time_order(lt, lsuid, ln, ls, j, idx, key, order, nd)
            # each instant: the kept signals summed (R, rate, new-episode mark), then the row's
            # learning steps in one pass
            K = 0
            i = 0
            while i < nd:
                tau = key[order[i]]
                i2 = i + 1
                while i2 < nd and key[order[i2]] == tau:
                    i2 += 1
                R = 0.0
                first = np.int64(-1)
                step = np.int64(0)
                reset = False
                for q in range(i, i2):
                    k = idx[order[q]]
                    if jittered:
                        e = lsyn[k, j]
                        if ln[k, j] < held[e]:
                            stale[r] += 1
                            continue
                        held[e] = ln[k, j]
                    if first < 0:
                        R = lval[k, j]
                    else:
                        R += lval[k, j]
                    if first < 0 or ls[k, j] < first:
                        first, step = ls[k, j], lstep[k, j]
                    reset = reset or lreset[k, j]
                if first >= 0:
                    if layer[r] != lr_layer or step != lr_step:
                        lr_layer, lr_step = layer[r], step
                        lr = _rate(lr0, lr1, lr_steps, lr_layer, lr_step)
                    if together:
                        R2[K, j], L2[K, j], C2[K, j] = R, lr, reset
                    else:
                        Rk[K], Lk[K], Ck[K] = R, lr, reset
                    K += 1
                    if recording:
                        _record(REC, st, tau, r, R, step, first)
                i = i2
            if together:
                KJ[j], T0J[j] = K, T[r]
                T[r] += K
            elif K > 0:
                o, w = off[r], width[r]
                t0 = T[r]
                T[r] = t0 + K
                adam_landings(FP[o:o + w], FM[o:o + w], FV[o:o + w], FE[o:o + w], Rk[:K], Lk[:K], Ck[:K], t0,
                              bc1, bc2, Tbc, b1, c1, b2, c2, eps, MS, VS, LS)
            if nd < c:  # the entries not yet due move up, in the order they were sent
                kept = 0
                q = 0
                for k in range(c):
                    if q < nd and idx[q] == k:
                        q += 1
                        continue
                    lt[kept, j], ls[kept, j], lsuid[kept, j], ln[kept, j] = lt[k, j], ls[k, j], lsuid[k, j], ln[k, j]
                    lval[kept, j], lstep[kept, j] = lval[k, j], lstep[k, j]
                    lreset[kept, j], lsyn[kept, j] = lreset[k, j], lsyn[k, j]
                    kept += 1
                c = kept
            else:
                c = 0
            lc[j] = c
        if c > most:
            most = c
    if together:  # every last row's steps of this drain, side by side
        o, w = block[0], block[1]
        adam_landings_rows(FP[o:o + nl * w], FM[o:o + nl * w], FV[o:o + nl * w], FE[o:o + nl * w], R2, L2, C2, KJ, T0J,
                           bc1, bc2, Tbc, b1, c1, b2, c2, eps, PT, MT, VT, ET, A1, A2)
    st[5] = most
    _earliest(Q, L, lprio, nxt)
    return DONE


# ---------------------------------------------------------------------- the queue by address
# The queue's arrays (Q, L, U, REC, S, the batch, the rows kept, nxt) and the constants of Adam and
# of the learning rates, one row each of a table of addresses (``array_addresses``), in this
# order and of these kinds (f float64, i int64, b bool; 1 or 2 axes): a call is passed the table,
# not some ninety arrays in tuples (each about 0.07 µs to pass), and reads them back as arrays
# (``numba.carray``). The queue keeps the arrays alive and builds the table again when it
# replaces one (:meth:`RetroQueue._table`).
_TAB = ("i1 i1 i1 f1 i1 i1 i1 i1 i1 f1 i1 b1 i1"  # Q
        " i1 f2 i2 i2 i2 f2 i2 b2 i2 i2"  # L
        " f1 f1 f1 f1 i1 i1 i1 i1 i1 i1 i1 i1 i1 i1 i1 f2 i1 i1 f1 i1 i1 i1 i1 i1"  # U
        " f1 i1 f1 i1 i1"  # REC
        " f1 i1 i1 f1 f1 b1 f1 f1 f1 i1 f2 f2 b2 i1 i1 f1 f1 f1 f1 f1 f1 i1 f1 b1 i1 i1"  # S
        " i1 i1 f1 f1"  # batch, keep, keep_r, nxt
        " f1 f1 i1 f1 f1 f1").split()  # A: lr0, lr1, (lr_steps, Tbc), bc1, bc2, (b1, c1, b2, c2, eps)
T_Q, T_L, T_U, T_REC, T_S, T_BATCH, T_A = 0, 13, 23, 47, 52, 78, 82


@njit(**_INLINE)
def _f1(tab, k):
    return numba.carray(_f8_at(tab[k, 0]), tab[k, 1])


@njit(**_INLINE)
def _i1(tab, k):
    return numba.carray(_i8_at(tab[k, 0]), tab[k, 1])


@njit(**_INLINE)
def _b1(tab, k):
    return numba.carray(_b1_at(tab[k, 0]), tab[k, 1])


@njit(**_INLINE)
def _f2(tab, k):
    return numba.carray(_f8_at(tab[k, 0]), (tab[k, 1], tab[k, 2]))


@njit(**_INLINE)
def _i2(tab, k):
    return numba.carray(_i8_at(tab[k, 0]), (tab[k, 1], tab[k, 2]))


@njit(**_INLINE)
def _b2(tab, k):
    return numba.carray(_b1_at(tab[k, 0]), (tab[k, 1], tab[k, 2]))


@njit(**_INLINE)
def _queue_at(tab):
    """(Q, L) read from ``tab``."""
    q = T_Q
    Q = (_i1(tab, q), _i1(tab, q + 1), _i1(tab, q + 2), _f1(tab, q + 3), _i1(tab, q + 4), _i1(tab, q + 5),
         _i1(tab, q + 6), _i1(tab, q + 7), _i1(tab, q + 8), _f1(tab, q + 9), _i1(tab, q + 10), _b1(tab, q + 11),
         _i1(tab, q + 12))
    q = T_L
    L = (_i1(tab, q), _f2(tab, q + 1), _i2(tab, q + 2), _i2(tab, q + 3), _i2(tab, q + 4), _f2(tab, q + 5),
         _i2(tab, q + 6), _b2(tab, q + 7), _i2(tab, q + 8), _i2(tab, q + 9))
    return Q, L


@njit(cache=True, error_model="numpy")
def drain_at(tab, lim_t, lim_p, need, lneed, jittered, recording):
    """:func:`drain`, its arrays read from their addresses in ``tab`` (:data:`_TAB`)."""
    Q, L = _queue_at(tab)
    u = T_U
    U = (_f1(tab, u), _f1(tab, u + 1), _f1(tab, u + 2), _f1(tab, u + 3), _i1(tab, u + 4), _i1(tab, u + 5),
         _i1(tab, u + 6), _i1(tab, u + 7), _i1(tab, u + 8), _i1(tab, u + 9), _i1(tab, u + 10), _i1(tab, u + 11),
         _i1(tab, u + 12), _i1(tab, u + 13), _i1(tab, u + 14), _f2(tab, u + 15), _i1(tab, u + 16), _i1(tab, u + 17),
         _f1(tab, u + 18), _i1(tab, u + 19), _i1(tab, u + 20), _i1(tab, u + 21), _i1(tab, u + 22), _i1(tab, u + 23))
    r = T_REC
    REC = (_f1(tab, r), _i1(tab, r + 1), _f1(tab, r + 2), _i1(tab, r + 3), _i1(tab, r + 4))
    s = T_S
    S = (_f1(tab, s), _i1(tab, s + 1), _i1(tab, s + 2), _f1(tab, s + 3), _f1(tab, s + 4), _b1(tab, s + 5),
         _f1(tab, s + 6), _f1(tab, s + 7), _f1(tab, s + 8), _i1(tab, s + 9), _f2(tab, s + 10), _f2(tab, s + 11),
         _b2(tab, s + 12), _i1(tab, s + 13), _i1(tab, s + 14), _f1(tab, s + 15), _f1(tab, s + 16), _f1(tab, s + 17),
         _f1(tab, s + 18), _f1(tab, s + 19), _f1(tab, s + 20), _i1(tab, s + 21), _f1(tab, s + 22), _b1(tab, s + 23),
         _i1(tab, s + 24), _i1(tab, s + 25))
    b = T_BATCH
    a = T_A
    ai, af = _i1(tab, a + 2), _f1(tab, a + 5)
    A = (_f1(tab, a), _f1(tab, a + 1), ai[0], _f1(tab, a + 3), _f1(tab, a + 4), ai[1], af[0], af[1], af[2], af[3],
         af[4])
    return drain(lim_t, lim_p, need, lneed, Q, L, U, A, REC, S, _i1(tab, b), _i1(tab, b + 1), _f1(tab, b + 2),
                 jittered, recording, _f1(tab, b + 3))


@njit(cache=True, error_model="numpy")
def send_many_at(tab, stab, t0, late, jittered, n0, n, C, step, reset, need, lneed):
    """:func:`send_many` of one sending group, the queue's arrays read from ``tab`` and the group's
    (delay, priority, receiving row, sender's unit id, row of C, column of C, synapse) from ``stab``."""
    Q, L = _queue_at(tab)
    return send_many(Q, L, _i1(tab, T_U + 20), _i1(tab, T_U + 22), t0, _f1(stab, 0), late, jittered, _i1(stab, 1),
                     _i1(stab, 2), _i1(stab, 3), n0, n, C, _i1(stab, 4), _i1(stab, 5), step, reset, _i1(stab, 6),
                     _f1(tab, T_BATCH + 3), need, lneed)


def _node_key(known: dict, node) -> int:
    """``delays.node_key(node)``, kept in ``known``."""
    key = known.get(node)
    if key is None:
        key = known[node] = delays.node_key(node)
    return key


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
                where[n] = g
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
        self.FP, self.FM, self.FV, self.FE = (np.zeros(o) for _ in range(4))
        self.T = np.zeros(nr, dtype=np.int64)
        self.views = [None] * len(self.recv)
        self._adopt(force=True)
        # every retrograde synapse, numbered; those sent by receiving rows grouped by sender row, in
        # the order the event engine sends them (receivers by rank, then unit id)
        spec = self.spec = sim.retro_jitter
        self.jittered = spec is not None
        node_keys: dict = {}  # (each node's key computed once; the synapses' keys in one call per list)
        key_of = lambda u, v: (_node_key(node_keys, u), _node_key(node_keys, v))  # noqa: E731
        order = lambda v: sorted((u for u in graph.predecessors(v) if roles[u] != "input"),  # noqa: E731
                                 key=lambda u: (rank[u], uids[self.row_of[u]]))
        n_syn = 0
        ptr, dst, col, dly, syn, keys = [0], [], [], [], [], []
        for n in names:
            g = where[n]
            for u in order(n):
                dst.append(self.row_of[u])
                col.append(g.col[u])
                dly.append(float(graph.edges[u, n]["retro_delay"]))
                syn.append(n_syn)
                keys.append(key_of(u, n) if self.jittered else None)
                n_syn += 1
            ptr.append(len(dst))
        self.out_ptr = np.array(ptr, dtype=np.int64)
        self.e_dst, self.e_col = np.array(dst, dtype=np.int64), np.array(col, dtype=np.int64)
        self.e_delay, self.e_syn = np.array(dly, dtype=float), np.array(syn, dtype=np.int64)
        self.e_key = self._keys(keys)
        # groups that send from outside the loop (the output, when the TD error lands on it)
        self.senders = {}
        for g in groups:
            if id(g) in recv_ids:
                continue
            rows, cols, dst, dly, syn, keys = [], [], [], [], [], []
            # as the engine sends a group's signals: receiver by receiver, then the group's rows
            pairs = sorted(((u, r, n) for r, n in enumerate(g.names) for u in order(n)),
                           key=lambda p: (rank[p[0]], uids[self.row_of[p[0]]], p[1]))
            for u, r, n in pairs:
                rows.append(r), cols.append(g.col[u]), dst.append(self.row_of[u])
                dly.append(float(graph.edges[u, n]["retro_delay"])), syn.append(n_syn)
                keys.append(key_of(u, n) if self.jittered else None)
                n_syn += 1
            if rows:
                self.senders[g.gid] = {"rows": np.array(rows, dtype=np.int64), "cols": np.array(cols, dtype=np.int64),
                                       "dst": np.array(dst, dtype=np.int64), "delay": np.array(dly, dtype=float),
                                       "syn": np.array(syn, dtype=np.int64), "keys": self._keys(keys),
                                       "sent": np.zeros(g.size, dtype=np.int64),
                                       "suid": g.uids[np.array(rows, dtype=np.int64)].astype(np.int64),
                                       "prio": self.prio[np.array(dst, dtype=np.int64)],
                                       "n": 0, "count": len(rows), "late_base": None}
        indeg = np.bincount(np.concatenate([self.e_dst, *[s["dst"] for s in self.senders.values()]]), minlength=nr)
        self.indeg = int(indeg.max()) if nr else 0
        # the last rows (rows that send nothing on), each keeping its entries in a column of its own
        self.lrow = np.flatnonzero(self.out_ptr[1:] == self.out_ptr[:-1]).astype(np.int64)
        self.lslot = np.full(nr, -1, dtype=np.int64)
        self.lslot[self.lrow] = np.arange(len(self.lrow))
        self.lprio = self.prio[self.lrow]
        # entries one drain's batch can add to one last row: one per synapse onto it from rows that send on
        self.lneed = int(np.bincount(self.e_dst, minlength=nr)[self.lrow].max()) if len(self.lrow) and len(self.e_dst) \
            else 0
        self.lwidth = int(self.width[self.lrow].max()) if len(self.lrow) else 1
        # the rows whose synapses reach every last row, one each, in the last rows' order
        nl = len(self.lrow)
        # (2: and the row's weights onto them lie one after another)
        self.full = np.zeros(nr, dtype=np.int64)
        for r in range(nr):
            e0, e1 = self.out_ptr[r], self.out_ptr[r + 1]
            if nl > 0 and e1 - e0 == nl and bool(np.all(self.lslot[self.e_dst[e0:e1]] == np.arange(nl))):
                self.full[r] = 2 if bool(np.all(np.diff(self.e_col[e0:e1]) == 1)) else 1
        # (offset, width) of the last rows when they lie one after another, all of one width (else width 0)
        lo, lw = self.off[self.lrow], self.width[self.lrow]
        side_by_side = len(self.lrow) > 0 and bool(np.all(lw == lw[0])) and \
            bool(np.all(lo == lo[0] + lw[0] * np.arange(len(lo))))
        self.lblock = np.array([int(lo[0]), int(lw[0])] if side_by_side else [0, 0], dtype=np.int64)
        self.held = np.full(n_syn, -1, dtype=np.int64)  # the newest send landed on each synapse (jitter)
        self.stale = np.zeros(nr, dtype=np.int64)
        self.sent = np.zeros(nr, dtype=np.int64)  # retrograde sends per row (the jitter's send index)
        self.base = np.zeros(nr, dtype=np.int64)
        # [send − base, synapse]: up to _BLOCK sends ahead, in at most _DRAWS numbers
        block = max(2, min(_BLOCK, _DRAWS // max(1, len(self.e_dst)))) if self.jittered else 1
        self.late = np.zeros((block, len(self.e_dst)))
        self.e_row = np.repeat(np.arange(nr), np.diff(self.out_ptr)).astype(np.int64)  # each synapse's sending row
        self.sends_on = self.out_ptr[1:] > self.out_ptr[:-1]
        if self.jittered:  # (a refill of every synapse writes its keyed uniforms and send indices here)
            self.law = delays.law(spec)
            self.compiled_law = jitter.compiled_law(spec)  # (a uniform law: drawn in keyed_block)
            self.U_all, self.S_all = np.empty(self.late.shape), np.empty(self.late.shape, dtype=np.int64)
            self._refill(np.arange(nr))
        # Adam and the learning rates
        Tbc = sim.adam.bias_correction_steps
        b1, c1, b2, c2, _, _, _, eps = adam_constants(sim.adam, Tbc)
        consts = [adam_constants(sim.adam, t) for t in range(max(Tbc, 1))]
        self.A = (np.array([lr[0] for lr in sim._lr], dtype=np.float64), np.array([lr[1] for lr in sim._lr], dtype=np.float64),
                  np.array([int(sim.scenario.learning.lr_steps), int(Tbc)], dtype=np.int64),
                  np.array([c[4] for c in consts], dtype=np.float64), np.array([c[5] for c in consts], dtype=np.float64),
                  np.array([b1, c1, b2, c2, eps], dtype=np.float64))
        # the queue
        self.need = len(self.e_dst) + 1
        self._allocate(4 * self.need + 64)
        self._columns(max(16, 2 * self.indeg + self.lneed))
        self.keep = np.zeros(2 * (nr + 1), dtype=np.int64)
        self.keep_r = np.zeros(nr + 1)
        self.recording = sim.on_event is not None
        self._records(4 * nr + 16 if self.recording else 1)
        self.nxt = np.array([math.inf, 0.0])  # (time, priority) of the earliest entry in flight
        self.wakeup = events.WakeUp(sim.env, self._wake)  # at the earliest entry
        self.tab = None  # the arrays' addresses (_table), built again when one is replaced
        for s in self.senders.values():
            s["tab"] = array_addresses([s["delay"], s["prio"], s["dst"], s["suid"], s["rows"], s["cols"], s["syn"]])
        self._sync_stale()

    def _keys(self, pairs: list) -> np.ndarray:
        """The fixed keys of retrograde synapses given as (node key of the receiving unit, node key of
        the sending unit) pairs (:func:`asyncneurons.engine.jitter.edge_keys`, one call for all; zeros
        without jitter, where no key is read)."""
        if not self.jittered or not pairs:
            return np.zeros(len(pairs), dtype=np.uint64)
        receivers, senders = zip(*pairs)
        return jitter.edge_keys(self.sim.seed, list(receivers), list(senders), jitter.RETRO_JITTER)

    # ------------------------------------------------------------------ arrays
    def _allocate(self, cap: int, old=None) -> None:
        """Room for ``cap`` entries on the heap, keeping those of ``old`` (heap, free, st, q) in their slots."""
        q = (np.zeros(cap), np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int64),
             np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int64),
             np.zeros(cap), np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.bool_), np.zeros(cap, dtype=np.int64))
        heap, free = (np.zeros(cap, dtype=np.int64) for _ in range(2))
        if old is None:
            st = np.zeros(6, dtype=np.int64)
            free[:] = np.arange(cap - 1, -1, -1)
            st[1] = cap
        else:
            oheap, ofree, st, oq = old
            oc = len(oheap)
            for x, y in zip(q, oq):
                x[:oc] = y
            heap[:st[0]] = oheap[:st[0]]
            nf = int(st[1])
            free[:nf] = ofree[:nf]
            free[nf:nf + cap - oc] = np.arange(cap - 1, oc - 1, -1)
            st[1] = nf + cap - oc
        self.heap, self.free, self.st, self.q = heap, free, st, q
        self.batch = np.zeros(cap, dtype=np.int64)
        self._pack()

    def _columns(self, cap: int) -> None:
        """Room for ``cap`` entries on each last row, keeping those it holds, and the scratch of one row."""
        nl = len(self.lrow)
        kinds = (float, np.int64, np.int64, np.int64, float, np.int64, np.bool_, np.int64)
        cols = [np.zeros((cap, nl), dtype=k) for k in kinds] + [np.zeros((cap, 7), dtype=np.int64)]
        old = getattr(self, "L", None)
        if old is not None:
            for x, y in zip(cols, old[1:]):
                x[:len(y)] = y
        self.L = (old[0] if old is not None else np.zeros(nl, dtype=np.int64), *cols)
        self.tab = None
        self.S = (np.zeros(cap), np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int64), np.zeros(cap),
                  np.zeros(cap), np.zeros(cap, dtype=np.bool_), *(np.zeros(cap * self.lwidth) for _ in range(3)),
                  self.lblock, np.zeros((cap, nl)), np.zeros((cap, nl)), np.zeros((cap, nl), dtype=np.bool_),
                  np.zeros(nl, dtype=np.int64), np.zeros(nl, dtype=np.int64),
                  *(np.zeros(nl * self.lwidth) for _ in range(4)), np.zeros(cap * nl), np.zeros(cap * nl),
                  np.zeros(cap * nl, dtype=np.int64), np.zeros(cap * nl), np.zeros(cap * nl, dtype=np.bool_),
                  np.full(len(self.held), -1, dtype=np.int64), np.zeros(1, dtype=np.int64))

    def _pack(self) -> None:
        self.tab = None
        self.Q = (self.heap, self.free, self.st, *self.q)
        self.U = (self.FP, self.FM, self.FV, self.FE, self.off, self.width, self.T, self.layer, self.uid, self.prio,
                  self.out_ptr, self.held, self.stale, self.sent, self.base, self.late,
                  self.e_dst, self.e_col, self.e_delay, self.e_syn, self.lslot, self.lrow, self.lprio, self.full)

    def _table(self) -> np.ndarray:
        """The table of the queue's arrays' addresses (:data:`_TAB`), built when one was replaced."""
        if self.tab is None:
            arrays = [*self.Q, *self.L, *self.U, *self.REC, *self.S, self.batch, self.keep, self.keep_r, self.nxt,
                      *self.A]
            self.tab = checked_addresses(arrays, _TAB, "the retrograde queue")
        return self.tab

    def _records(self, cap: int) -> None:
        self.tab = None
        self.REC = (np.zeros(cap), np.zeros(cap, dtype=np.int64), np.zeros(cap), np.zeros(cap, dtype=np.int64),
                    np.zeros(cap, dtype=np.int64))

    def _grow(self, more: int = 0) -> None:
        """Twice the slots, or twice the room on each last row, whichever is short (for ``more``
        entries besides)."""
        if self.st[1] < more + self.need:
            self._allocate(2 * len(self.heap), (self.heap, self.free, self.st, self.q))
        if self.st[5] + more + self.lneed > len(self.L[1]):
            self._columns(2 * len(self.L[1]))

    def _refill(self, rows) -> None:
        """The jitter draws j(e, n) of the next ``_BLOCK`` sends of each row in ``rows`` (and of
        every row past half of its draws), along its synapses."""
        B = self.late.shape[0]
        due = self.sent - self.base >= B // 2
        due[np.atleast_1d(rows)] = True
        due &= self.sends_on
        if not due.any():
            return
        self.base[due] = self.sent[due]
        drawn = self.compiled_law[0] == 1.0  # the jitters j(e, n) = F⁻¹(U(e, n)) computed in the compiled pass
        if bool(due[self.e_row].all()):  # every synapse, in order
            if drawn:
                keyed_block(self.e_key, self.base[self.e_row], self.compiled_law, self.late, self.S_all)
                return
            keyed_block(self.e_key, self.base[self.e_row], self.compiled_law, self.U_all, self.S_all)
            self.late[...] = jitter.late(self.law, self.U_all, self.S_all)
            return
        edges = np.flatnonzero(due[self.e_row])  # the synapses of the rows refilled, in order
        U, S = np.empty((B, len(edges))), np.empty((B, len(edges)), dtype=np.int64)
        keyed_block(self.e_key[edges], self.base[self.e_row[edges]], self.compiled_law, U, S)
        self.late[:, edges] = U if drawn else jitter.late(self.law, U, S)

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
            o = int(self.off[g.row_base])
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
        n0, n, late = 0, s["rows"], s["delay"]  # (no jitter: every send index 0, and no lateness read)
        if self.jittered:
            n0 = s["n"]
            if n0 is None:  # the group's units at send indices of their own (a checkpoint's)
                n = s["sent"][s["rows"]]
                late = jitter.draw(self.spec, s["keys"], n)
                s["sent"] += 1
                n0 = -1
            else:
                late = self._lateness(s, n0)
                s["n"] = n0 + 1
        C = np.ascontiguousarray(C, dtype=np.float64)
        while not send_many_at(self.tab if self.tab is not None else self._table(), s["tab"], float(t0), late,
                               self.jittered, n0, n, C, int(step), bool(reset), self.need, self.lneed):
            self._grow(s["count"])
        self._arm()

    def _lateness(self, s: dict, n: int) -> np.ndarray:
        """The jitters j(e, n) of a sending group's synapses at send index ``n``: the group's units
        send together, so every synapse is at one send index, and the draws of a block of sends are
        kept ahead (keyed by synapse and send, so the same numbers as drawn one send at a time)."""
        B = self.late.shape[0]
        b = s["late_base"]
        if b is None or not b <= n < b + B:
            b = s["late_base"] = n
            sends = np.repeat(np.arange(b, b + B, dtype=np.int64), s["count"])
            s["late"] = jitter.draw(self.spec, np.tile(s["keys"], B), sends).reshape(B, s["count"])
        return s["late"][n - b]

    def _arm(self) -> None:
        """One wake-up in SimPy's queue, at the earliest entry (a later one, if armed, is superseded)."""
        t, p = self.nxt.tolist()  # (as the last drain or send left it)
        self.wakeup.arm(t, int(p))

    # ------------------------------------------------------------------ landings
    def _wake(self, event):
        if not self.wakeup.current(event):
            return  # superseded by an earlier wake-up
        queue = self.sim.env._queue
        self.run(queue[0][:2] if queue else None)
        self._arm()

    def run(self, limit) -> None:
        """Apply every landing that precedes ``limit`` = (time, priority) (None: every landing)."""
        self._adopt()
        lim_t, lim_p = (math.inf, np.iinfo(np.int64).max) if limit is None else (float(limit[0]), int(limit[1]))
        while True:
            status = drain_at(self.tab if self.tab is not None else self._table(), lim_t, lim_p, self.need,
                              self.lneed, self.jittered, self.recording)
            if status == DONE:
                break
            if status == GROW:
                self._grow()
            elif status == REFILL:
                self._refill(int(self.st[3]))
            elif status == RECORDS:  # the records of one drain are passed on together, in order
                k = int(self.st[4])
                rec = self.REC
                self._records(2 * len(rec[0]) + len(self.heap))
                for a, b in zip(self.REC, rec):
                    a[:k] = b[:k]
        self._emit()

    def _emit(self) -> None:
        """Pass on the records of the landings applied, in the engine's order."""
        k = int(self.st[4])
        if not k:
            return
        self.st[4] = 0
        t, row, val, step, first = (a[:k] for a in self.REC)
        on_event = self.sim.on_event
        for i in np.lexsort((first, self.prio[row], t)).tolist():
            on_event(float(t[i]), self.names[row[i]], "retro", float(val[i]), int(step[i]))

    def settle(self) -> None:
        """The state is observed now: counters as groups keep them."""
        self._adopt()
        self._sync_stale()

    # ------------------------------------------------------------------ checkpoints
    def _entries(self) -> list:
        """Every entry in flight, as columns (time, priority, sending order, row, sender's unit id,
        send index, value, agent step, new-episode mark, synapse): those on the heap, then those on
        the last rows in the order they were sent."""
        heaped = [a[self.heap[:self.st[0]]] for a in self.q]
        count, lt, ls, lsuid, ln, lval, lstep, lreset, lsyn = self.L[:9]  # (between drains no entry is in lz)
        held = np.arange(len(lt))[:, None] < count[None, :]  # [k, j]: entry k of last row j is in flight
        rows = np.broadcast_to(self.lrow, lt.shape)
        kept = [lt[held], self.prio[rows[held]], ls[held], rows[held], lsuid[held], ln[held], lval[held],
                lstep[held], lreset[held], lsyn[held]]
        order = np.argsort(kept[2], kind="stable")
        return [np.concatenate([a, b[order]]) for a, b in zip(heaped, kept)]

    def state(self) -> dict:
        return {"entries": self._entries(), "sent_entries": int(self.st[2]), "held": self.held.copy(),
                "stale": self.stale.copy(), "sent": self.sent.copy(),
                "out_sent": {gid: s["sent"].copy() if s["n"] is None else np.full_like(s["sent"], s["n"])
                             for gid, s in self.senders.items()},
                **self.wakeup.state()}

    def restore(self, state: dict) -> None:
        self._adopt(force=True)
        q = [np.asarray(x) for x in state["entries"]]
        n = len(q[0])
        self._allocate(max(4 * self.need + 64, 2 * n + self.need))
        kinds = (float, np.int64, np.int64, np.int64, np.int64, np.int64, float, np.int64, np.bool_, np.int64)
        q = [np.ascontiguousarray(x, dtype=k) for x, k in zip(q, kinds)]
        self.L[0][:] = 0
        self.L[9][:] = 0
        self.st[5] = 0
        on_last = self.lslot[q[3]] >= 0
        most = int(np.bincount(q[3][on_last], minlength=len(self.names)).max()) if on_last.any() else 0
        if most + self.lneed > len(self.L[1]):
            self._columns(2 * (most + self.lneed))
        order = np.argsort(q[2], kind="stable")  # in sending order, as they were sent
        place_many(self.Q, self.L, self.lslot, self.lprio, *(x[order] for x in q), self.nxt)
        self.st[2] = int(state["sent_entries"])
        self.held[:] = state["held"]
        self.stale[:] = state["stale"]
        self.sent[:] = state["sent"]
        for gid, sent in state["out_sent"].items():
            s = self.senders[int(gid)]
            s["sent"][:] = sent
            s["n"] = int(sent[0]) if len(sent) and bool(np.all(sent == sent[0])) else None  # (all alike: one index)
            s["late_base"] = None
        if self.jittered:
            self._refill(np.arange(len(self.names)))
        self.wakeup.restore(state)
        self._sync_stale()


__all__ = ["RetroQueue", "applies", "drain", "drain_at", "fusing_graph", "keyed_block", "place_many", "send_many",
           "send_many_at"]
