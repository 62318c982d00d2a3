"""Compiled reads of the senders' sample histories and a firing window's layer pass.

Every sender keeps its recent samples in a ring (:class:`~asyncneurons.engine.transmission.Transmission`):
times ``HT``, values ``HV``, wave tags ``HW`` and serial numbers ``HN`` (sending order), one row
per sender, written at ``head``. A synapse e from sender s with delay d_e sees sample k of s from
``HT[s, k] + d_e`` on (plus the jitter ``EJ[e, k]`` of that send on e, :mod:`asyncneurons.engine.jitter`).
The questions a firing window asks of a synapse are answered here with the same floating-point
additions as an event's arrival time, so the answers are those of the event engine to the last bit:

* the latest sample that has arrived by the receiver's time t (largest serial among arrivals
  ``≤ t``); the synapse keeps what it held if nothing has arrived yet;
* the arrival of the first sample of a wave newer than the receiver's (``min {arrival : HW > wave}``,
  ∞ if none is on its way), which makes an ``on_all`` unit due;
* the first arrival after the receiver's last sample (``min {HT + d : HT + d > last}``), which
  makes an ``on_input`` unit due.

**Newest first.** A ring is written in sending order, so its slots read backwards from ``head``
run from the newest sample to the oldest, with the unwritten slots (serial −1) last. Along that
order a sender's times never increase (a unit samples forward in time) and neither do its wave
tags (a unit's wave is the oldest wave it holds, and what it holds only gets newer), so each
question stops at the first slot that settles it instead of scanning the whole ring: the newest
arrival; the last slot of a newer wave; the last arrival after ``last``.

A window's layer pass is a few calls here (:mod:`asyncneurons.engine.windows`): which units are due
(:func:`due_on_all`, :func:`due_on_input`, :func:`due_clock`), what they read (:func:`read_sets`),
their answered waves and the synapses that then wait for a newer one (:func:`answered`), and the
synapses their samples complete (:func:`mark_sent`); between them NumPy's ``exp`` and the
compiled sampling (:mod:`asyncneurons.learning.units`). Where no layer needs Python of its own, a
window's layers are one call (:func:`window_layers_any`). An ``on_all`` set's due time is kept
as its synapses change (:func:`_waiting`), so a selection reads two numbers per set.

Compiled with numba (cached on disk): a window reads thousands of synapses per layer pass, and
the NumPy form of these reads (gathering whole rings, masking, reducing) was most of its cost.
"""

from __future__ import annotations

import math

import numba
from asyncneurons.learning import kernel_cache  # noqa: F401  (stamps the kernel cache before any @njit)
import numpy as np
from numba import types
from numba.extending import intrinsic, overload

from asyncneurons.engine.clocks import _advance
from asyncneurons.engine.relaxation_kernels import apply_loop, apply_loop_with
from asyncneurons.learning.compiled import (_block_sum, _clamp, _uniform, categorical_sample, logistic_finish,
                                           logits_shifted, pairwise_sum, weight_max_chain)


@numba.njit(cache=True, nogil=True, inline="always")
def _older(k, depth):  # pragma: no cover - compiled
    """The slot written before slot k."""
    return depth - 1 if k == 0 else k - 1


@numba.njit(cache=True, nogil=True, inline="always")
def _arrival(HT, EJ, jittered, s, k, e, d):  # pragma: no cover - compiled
    """When sample k of sender s arrives on synapse e of delay d: ``HT + d`` (``+ EJ[e, k]``)."""
    t = HT[s, k] + d
    if jittered:
        t = t + EJ[e, k]
    return t


@numba.njit(cache=True, nogil=True)
def newest(HT, HN, HV, HW, head):  # pragma: no cover - compiled
    """Each sender's newest slot ``k`` (−1 if it has sent nothing yet) and that slot's time (∞
    if nothing was sent), value and wave tag: most reads settle there (the newest sample has
    arrived, or it is not of a newer wave), and a sender's slot read once serves its synapses
    (a synapse's own slot was an indexed read of a two-dimensional ring, a few times dearer)."""
    n = HT.shape[0]
    k_new, t_new, v_new, w_new = np.empty(n, dtype=np.int64), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    newest_into(HT, HN, HV, HW, head, k_new, t_new, v_new, w_new)
    return k_new, t_new, v_new, w_new


@numba.njit(cache=True, nogil=True)
def newest_into(HT, HN, HV, HW, head, k_new, t_new, v_new, w_new):  # pragma: no cover - compiled
    """:func:`newest` into arrays given, one entry per sender (a firing's scratch)."""
    depth = HT.shape[1]
    for s in range(HT.shape[0]):
        k = _older(head[s], depth)
        written = HN[s, k] >= 0
        k_new[s] = k if written else -1
        t_new[s] = HT[s, k] if written else math.inf
        v_new[s] = HV[s, k]
        w_new[s] = HW[s, k]


@numba.njit(cache=True, nogil=True, inline="always")
def _read_older(HT, HN, HV, HW, EJ, jittered, s, k, e, d, t, H, T, r, c):  # pragma: no cover - compiled
    """The rest of a synapse's read when its sender's newest sample (slot ``k``, −1 if none) has
    not arrived by ``t``: the older slots, newest first, until one has (or none is left)."""
    if k < 0:
        return  # nothing sent yet
    depth = HT.shape[1]
    for _ in range(depth - 1):
        k = _older(k, depth)
        if HN[s, k] < 0:
            break
        if _arrival(HT, EJ, jittered, s, k, e, d) <= t:
            H[r, c] = HV[s, k]
            T[r, c] = HW[s, k]
            break


@numba.njit(cache=True, nogil=True, inline="always")
def _newest_arrived(t_new, k_new, EJ, jittered, src, edges, delay, a, b, t):  # pragma: no cover - compiled
    """Whether on every synapse j of ``a ≤ j < b`` the newest sample of its sender has arrived by
    ``t`` (the first test of :func:`read_sets`, the same additions; false when a sender has sent
    nothing, ``t_new = ∞``)."""
    for j in range(a, b):
        s = src[j]
        x = t_new[s] + delay[j]
        if jittered:
            x = x + EJ[edges[j], k_new[s]]
        if not x <= t:
            return False
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _one_run(rows, cols, a, b):  # pragma: no cover - compiled
    """Whether synapses ``a ≤ j < b`` (sorted by row, then column; no two on one input) feed one
    row's consecutive inputs: the same row first and last, and as many columns as synapses."""
    return b > a and rows[a] == rows[b - 1] and cols[b - 1] - cols[a] == b - 1 - a


@numba.njit(cache=True, nogil=True)
def read_sets(HT, HN, HV, HW, head, EJ, jittered, sets, times, ptr, edges, src, delay, rows, cols,
              H, T):  # pragma: no cover - compiled
    """For each set ``sets[i]`` sampling at ``times[i]`` and each of its synapses j
    (``ptr[set] ≤ j < ptr[set + 1]``): ``H[rows[j], cols[j]], T[…] ←`` value and wave of the
    latest sample of ``src[j]`` that has arrived by then (the newest send that has, under jitter);
    nothing if none has. The newest slot is read from :func:`newest`, the older ones from the
    ring (:func:`_read_older`); the read under jitter is apart (:func:`_read_sets_jittered`).

    A set whose synapses fill one row's consecutive inputs (:func:`_one_run`; the windows sort a
    set's synapses by row and column) and on all of which the newest sample has arrived
    (:func:`_newest_arrived`, the usual case under ``on_all``) is read as one gather of the
    senders' newest values into that run: what the synapse-by-synapse read writes there
    (without jitter)."""
    k_new, t_new, v_new, w_new = newest(HT, HN, HV, HW, head)
    read_from_newest(HT, HN, HV, HW, EJ, jittered, sets, times, ptr, edges, src, delay, rows, cols, H, T, k_new, t_new,
                     v_new, w_new)


@numba.njit(cache=True, nogil=True)
def read_from_newest(HT, HN, HV, HW, EJ, jittered, sets, times, ptr, edges, src, delay, rows, cols, H, T, k_new, t_new,
                     v_new, w_new):  # pragma: no cover - compiled
    """:func:`read_sets` given each sender's newest slot (:func:`newest_into`)."""
    if jittered:
        _read_sets_jittered(HT, HN, HV, HW, EJ, sets, times, ptr, edges, src, delay, rows, cols, H, T, k_new, t_new,
                            v_new, w_new)
        return
    for i in range(sets.shape[0]):
        st = sets[i]
        t = times[i]
        a, b = ptr[st], ptr[st + 1]
        if _one_run(rows, cols, a, b) and _newest_arrived(t_new, k_new, EJ, False, src, edges, delay, a, b, t):
            r, c0 = rows[a], cols[a] - a
            for j in range(a, b):
                s = src[j]
                H[r, c0 + j] = v_new[s]
                T[r, c0 + j] = w_new[s]
            continue
        for j in range(a, b):
            s = src[j]
            r, c = rows[j], cols[j]
            if t_new[s] + delay[j] <= t:  # ∞ when nothing was sent
                H[r, c] = v_new[s]
                T[r, c] = w_new[s]
            else:
                _read_older(HT, HN, HV, HW, EJ, False, s, k_new[s], edges[j], delay[j], t, H, T, r, c)


@numba.njit(cache=True, nogil=True)
def _read_sets_jittered(HT, HN, HV, HW, EJ, sets, times, ptr, edges, src, delay, rows, cols, H, T, k_new, t_new, v_new,
                        w_new):  # pragma: no cover - compiled
    """:func:`read_sets` under jitter per send: the newest send on synapse e arrives at
    ``(t_new + d_e) + EJ[e, k_new]``. Synapse by synapse: a test that every newest send has
    arrived would read each synapse's jitter, as the read itself does."""
    for i in range(sets.shape[0]):
        st = sets[i]
        t = times[i]
        for j in range(ptr[st], ptr[st + 1]):
            s, e, k = src[j], edges[j], k_new[src[j]]
            r, c = rows[j], cols[j]
            if k >= 0 and (t_new[s] + delay[j]) + EJ[e, k] <= t:
                H[r, c] = v_new[s]
                T[r, c] = w_new[s]
            else:
                _read_older(HT, HN, HV, HW, EJ, True, s, k, e, delay[j], t, H, T, r, c)


@numba.njit(cache=True, nogil=True, inline="always")
def _pick(d, lt, inclusive, c, sets, times, st):  # pragma: no cover - compiled
    """Keep set ``st`` due at ``d`` when it is due before the limit ``lt`` (at it, ``inclusive``)."""
    if d < math.inf and (d <= lt if inclusive else d < lt):
        sets[c] = st
        times[c] = d
        return c + 1
    return c


@numba.njit(cache=True, nogil=True, inline="always")
def _waiting(first, n_sets):  # pragma: no cover - compiled
    """Where, in ``first``, the number of synapses of each set still waiting (``first = ∞``) and
    the latest of the others are kept: ``first`` holds the E synapses' arrivals, then S maxima,
    then S counts (−1: not known, to be counted again), S = ``n_sets``. Returns (E, E + S)."""
    e = first.shape[0] - 2 * n_sets
    return e, e + n_sets


@numba.njit(cache=True, nogil=True)
def due_on_all(first, edges, ptr, last, base, refractory, lt, inclusive, sets, times):  # pragma: no cover
    """``on_all``: set st is due at ``max_j first[edges[j]]`` over its synapses (∞ without any),
    and not before ``last[base + st] + refractory``. The sets due before ``lt`` (at it when
    ``inclusive``) go to ``sets`` and ``times``; returns their number and the earliest due time.

    The max is kept per set as the synapses change (:func:`answered`, :func:`mark_sent`): the
    number still at ∞ and the max of the others (:func:`_waiting`); a set whose count is not
    known (−1) is counted again here, over its synapses. A max is exact, so the bits are those
    of the max taken over the synapses each time."""
    at_max, at_count = _waiting(first, last.shape[0])
    c = 0
    lowest = math.inf
    for st in range(ptr.shape[0] - 1):
        d = math.inf
        if ptr[st + 1] > ptr[st]:
            gs = base + st
            if first[at_count + gs] < 0.0:
                count, mx = 0.0, -math.inf
                for j in range(ptr[st], ptr[st + 1]):
                    a = first[edges[j]]
                    if a == math.inf:
                        count += 1.0
                    elif a > mx:
                        mx = a
                first[at_count + gs] = count
                first[at_max + gs] = mx
            d = math.inf if first[at_count + gs] > 0.0 else first[at_max + gs]
        if refractory > 0.0:
            d = max(d, last[base + st] + refractory)
        if d < lowest:
            lowest = d
        c = _pick(d, lt, inclusive, c, sets, times, st)
    return c, lowest


@numba.njit(cache=True, nogil=True)
def due_on_input(HT, HN, head, src, delay, ptr, last, base, refractory, lt, inclusive, sets,
                 times):  # pragma: no cover - compiled
    """``on_input``: set st is due at the first arrival on any synapse after its last sample
    ``last[base + st]`` (``min_j min {HT + d_j : > last}``, ∞ if none), and not before
    ``last + refractory``; selected as in :func:`due_on_all`."""
    depth = HT.shape[1]
    c = 0
    lowest = math.inf
    for st in range(ptr.shape[0] - 1):
        after = last[base + st]
        d = math.inf
        for j in range(ptr[st], ptr[st + 1]):
            s, dj = src[j], delay[j]
            k = head[s]
            for _ in range(depth):
                k = _older(k, depth)
                if HN[s, k] < 0:
                    break
                a = HT[s, k] + dj
                if a <= after:
                    break
                if a < d:
                    d = a
        if refractory > 0.0:
            d = max(d, after + refractory)
        if d < lowest:
            lowest = d
        c = _pick(d, lt, inclusive, c, sets, times, st)
    return c, lowest


@numba.njit(cache=True, nogil=True)
def due_clock(at, base, n, lt, inclusive, sets, times):  # pragma: no cover - compiled
    """``clock`` and ``poisson``: set st is due at its next tick ``at[base + st]``; selected as in
    :func:`due_on_all` (a tick inside the refractory period is skipped by the caller)."""
    c = 0
    lowest = math.inf
    for st in range(n):
        d = at[base + st]
        if d < lowest:
            lowest = d
        c = _pick(d, lt, inclusive, c, sets, times, st)
    return c, lowest


@numba.njit(cache=True, nogil=True)
def earliest_next(first, ptr, edges, src, delay, set_index, refractory, last, rptr, rows, lb, which):  # pragma: no cover
    """A lower bound on when ``on_all`` set ``which`` next samples (without jitter), from what the
    window holds now. Sets are visited in topological order (set i's synapses are
    ``edges[ptr[i]:ptr[i + 1]]`` from units ``src`` with delays ``delay`` at the same places, its
    units ``rows[rptr[i]:rptr[i + 1]]``); ``lb`` holds, per
    unit, a bound on its next sample (the inputs' already set: their next observation):

        lb(set) = max( max_e  first[e] if finite, else lb(sender of e) + d_e ,  last + refractory )

    A finite ``first[e]`` stays until the set samples, and a value still missing on e can only
    come from a later sample of its sender, which arrives no earlier than ``lb(sender) + d_e``
    (rounding is monotone, so the bound holds to the last bit). ∞ for a set without synapses."""
    out = -math.inf
    for i in range(ptr.shape[0] - 1):
        m = math.inf if ptr[i + 1] == ptr[i] else -math.inf
        for j in range(ptr[i], ptr[i + 1]):
            a = first[edges[j]]
            if a == math.inf:
                a = lb[src[j]] + delay[j]
            if a > m:
                m = a
        if refractory[i] > 0.0:
            m = max(m, last[set_index[i]] + refractory[i])
        for q in range(rptr[i], rptr[i + 1]):
            lb[rows[q]] = m
        if set_index[i] == which:
            out = m
    return out


@numba.njit(cache=True, nogil=True)
def answered(T, rows, population, sets, times, base, set_wave, last, waves, on_all, HT, HW, head, EJ,
             jittered, ptr, edges, src, delay, first):  # pragma: no cover - compiled
    """Rows ``rows`` (sets ``sets``, at ``times``) sampled: each answered the oldest wave it
    holds, ``waves[r] = min T[r]`` (a population the oldest of all its rows), which becomes its
    set's ``set_wave``, and its ``last`` sample time. Under ``on_all`` each of their synapses j
    then waits for the first arrival of a newer wave:
    ``first[edges[j]] = min {arrival : HW > set_wave}`` (∞ if none is on its way)."""
    depth = HT.shape[1]
    w_new = np.empty(HT.shape[0] if on_all else 0, dtype=np.int64)  # each sender's newest wave tag
    for s in range(w_new.shape[0]):
        w_new[s] = HW[s, _older(head[s], depth)]
    answered_from(T, rows, population, sets, times, base, set_wave, last, waves, on_all, HT, HW, head, EJ, jittered,
                  ptr, edges, src, delay, first, w_new)


@numba.njit(cache=True, nogil=True)
def answered_from(T, rows, population, sets, times, base, set_wave, last, waves, on_all, HT, HW, head, EJ, jittered,
                  ptr, edges, src, delay, first, w_new):  # pragma: no cover - compiled
    """:func:`answered` given each sender's newest wave tag ``w_new`` (``HW`` at its newest slot,
    as :func:`newest_into` leaves it; a firing's read and its answer see the same rings)."""
    depth = HT.shape[1]
    if population:
        w = T[0, 0]
        for r in range(T.shape[0]):
            for q in range(T.shape[1]):
                if T[r, q] < w:
                    w = T[r, q]
        for i in range(rows.shape[0]):
            waves[i] = w
    else:
        for i in range(rows.shape[0]):
            r = rows[i]
            w = T[r, 0]
            for q in range(1, T.shape[1]):
                if T[r, q] < w:
                    w = T[r, q]
            waves[i] = w
    for i in range(sets.shape[0]):
        st = sets[i]
        wave = waves[i]
        set_wave[base + st] = wave
        last[base + st] = times[i]
    if not on_all:
        return
    at_max, at_count = _waiting(first, set_wave.shape[0])
    for i in range(sets.shape[0]):
        st = sets[i]
        wave = waves[i]
        count, mx = 0.0, -math.inf  # the set's synapses still waiting, the latest of the others
        for j in range(ptr[st], ptr[st + 1]):
            s, e = src[j], edges[j]
            if w_new[s] <= wave:
                first[e] = math.inf  # not even the newest sample is of a newer wave
                count += 1.0
                continue
            d = delay[j]
            a = math.inf
            k = head[s]
            for _ in range(depth):
                k = _older(k, depth)
                if HW[s, k] <= wave:
                    break
                t = _arrival(HT, EJ, jittered, s, k, e, d)
                if t < a:
                    a = t
            first[e] = a
            if a == math.inf:
                count += 1.0
            elif a > mx:
                mx = a
        first[at_count + base + st] = count
        first[at_max + base + st] = mx


@numba.njit(cache=True, nogil=True)
def mark_sent(first, out_ptr, out_edges, rows, times, waves, set_wave, edge_set, delay, EJ, jittered,
              head, e_src):  # pragma: no cover - compiled
    """Rows ``rows`` of a sender sampled at ``times`` with ``waves`` (row r's synapses are
    ``out_edges[out_ptr[r]:out_ptr[r + 1]]``). On each synapse e whose receiver's wave is older,
    the first arrival of a newer wave becomes ``at + d_e`` if e was waiting for one (``first = ∞``);
    under jitter a later send may overtake, so ``min(first, at + d_e + EJ[e, slot just written])``.
    The receiving set's count of waiting synapses and max (:func:`due_on_all`) follow; a max
    lowered under jitter is left to be counted again."""
    depth = EJ.shape[1]
    at_max, at_count = _waiting(first, set_wave.shape[0])
    for i in range(rows.shape[0]):
        r = rows[i]
        b0, b1 = out_ptr[r], out_ptr[r + 1]
        k = 0  # under jitter, the slot just written (row r's synapses all have its unit as sender)
        if jittered and b1 > b0:
            k = _older(head[e_src[out_edges[b0]]], depth)
        for q in range(b0, b1):
            e = out_edges[q]
            gs = edge_set[e]
            if waves[i] <= set_wave[gs]:
                continue
            if jittered:
                a = (times[i] + delay[e]) + EJ[e, k]
                old = first[e]
                if a < old:
                    first[e] = a
                    if first[at_count + gs] >= 0.0:
                        if old == math.inf:
                            first[at_count + gs] -= 1.0
                            if a > first[at_max + gs]:
                                first[at_max + gs] = a
                        elif old == first[at_max + gs]:
                            first[at_count + gs] = -1.0  # the max may have been this one: count again
            elif first[e] == math.inf:
                a = times[i] + delay[e]
                first[e] = a
                if first[at_count + gs] >= 0.0:
                    first[at_count + gs] -= 1.0
                    if a > first[at_max + gs]:
                        first[at_max + gs] = a


@numba.njit(cache=True, nogil=True)
def append(HT, HV, HW, HN, head, max_delay, idx, times, values, waves, horizon, serial):  # pragma: no cover
    """Write one sample of each sender ``idx[j]`` into its ring at ``head``, all with the serial
    number ``serial``, and return True; or write nothing and return False when the slot after a
    sender's oldest may still be read at a time ≥ ``horizon`` (its successor has not arrived
    everywhere: ``HT + max_delay > horizon``), so that the caller makes the rings deeper first."""
    depth = HT.shape[1]
    for j in range(idx.shape[0]):
        i = idx[j]
        if HT[i, (head[i] + 1) % depth] + max_delay[i] > horizon:
            return False
    for j in range(idx.shape[0]):
        i = idx[j]
        slot = head[i]
        HT[i, slot] = times[j]
        HV[i, slot] = values[j]
        HW[i, slot] = waves[j]
        HN[i, slot] = serial
        head[i] = (slot + 1) % depth
    return True


# ---------------------------------------------------------------- jitter per event
# With ``[timing] synapse_jitter`` (:mod:`asyncneurons.engine.jitter`) each synapse e also keeps, per
# slot k of its sender's ring, the jitter ``EJ[e, k]`` of that sample on e: the sample arrives at
# ``(HT + d_e) + EJ[e, k]`` (what the reads above use when ``jittered``).


@numba.njit(cache=True, nogil=True)
def append_jittered(HT, HV, HW, HN, head, HA, EJ, ES, stale, idx, times, values, waves, horizon, serial,
                    src_ptr, by_src, JT, jt_base, sent, delay, e_key, law):  # pragma: no cover - compiled
    """:func:`append` when every synapse draws its own jitter per send. Returns 0 when written.

    The out-synapses of sender i are ``by_src[src_ptr[i]:src_ptr[i+1]]``, and ``sent[i]`` is its
    next send index n, which moves on. The jitter of send n on synapse e is drawn here from its
    key under a uniform law (``law``: :func:`asyncneurons.engine.jitter.compiled_law`),
    ``low + U(e_key[e], n) · (high − low)``, the two operations of
    :func:`asyncneurons.model.delays.law`, so the same bits; under other laws it is read from the
    jitters drawn ahead in Python, ``JT[q, n − jt_base[i]]`` for the synapse at position q
    (:func:`jitter_uniforms`). ``HA[i, k]`` is the last arrival of
    slot k over the sender's synapses (its send time if it has none): a slot is overwritten only
    once its successor's ``HA`` has passed. Nothing is written, and 1 returned, when that is not
    so (the caller makes the rings deeper first), or 2 when a sender's jitters for this send are
    not drawn ahead yet. Each earlier sample still on its way on e that the new one overtakes
    (arrival strictly later) is marked stale in ``ES`` and counted in ``stale[0]``.
    """
    depth = HT.shape[1]
    drawn = law[0] != 0.0  # a uniform law: the jitters drawn here
    low, span = law[1], law[2]
    if not drawn:
        for j in range(idx.shape[0]):
            i = idx[j]
            c = sent[i] - jt_base[i]
            if c < 0 or c >= JT.shape[1]:
                return 2
    for j in range(idx.shape[0]):
        i = idx[j]
        if HA[i, (head[i] + 1) % depth] > horizon:
            return 1
    live = np.empty(depth, dtype=np.int64)
    for j in range(idx.shape[0]):
        i = idx[j]
        slot = head[i]
        t = times[j]
        last = t
        n = sent[i]
        c = n - jt_base[i]
        # the earlier samples still on their way somewhere: a slot whose last arrival HA is not
        # after this send (a ≥ t on every synapse) cannot be overtaken
        n_live = 0
        for k in range(depth):
            if k != slot and HN[i, k] >= 0 and HA[i, k] > t:
                live[n_live] = k
                n_live += 1
        for q in range(src_ptr[i], src_ptr[i + 1]):
            e = by_src[q]
            jq = low + _uniform(e_key[e], n) * span if drawn else JT[q, c]
            a = (t + delay[e]) + jq
            for x in range(n_live):
                k = live[x]
                if not ES[e, k] and (HT[i, k] + delay[e]) + EJ[e, k] > a:
                    ES[e, k] = True
                    stale[0] += 1
            EJ[e, slot] = jq
            ES[e, slot] = False
            if a > last:
                last = a
        HT[i, slot] = t
        HV[i, slot] = values[j]
        HW[i, slot] = waves[j]
        HN[i, slot] = serial
        HA[i, slot] = last
        head[i] = (slot + 1) % depth
        sent[i] += 1
    return 0


@numba.njit(cache=True, nogil=True)
def due_on_input_jittered(HT, HN, head, EJ, ES, src, edges, delay, ptr, last, base, refractory, lt, inclusive, sets,
                          times):  # pragma: no cover - compiled
    """:func:`due_on_input` under jitter per send: set st is due at the first arrival after its
    last sample ``last[base + st]`` that is not stale, ``min_j min {(HT + d_j) + EJ : > last, not
    ES}`` (∞ if none), and not before ``last + refractory``. A stale arrival (``ES``: a later send
    arrived first) changes nothing the unit holds and makes it due at no time. Slots are read
    newest first down to the first that arrived by ``last``: an older send arriving after it was
    overtaken by it, so stale. ``ES`` is exact for every arrival before ``lt``: a send that could
    still overtake one leaves after ``lt``, and arrives after it."""
    depth = HT.shape[1]
    c = 0
    lowest = math.inf
    for st in range(ptr.shape[0] - 1):
        after = last[base + st]
        d = math.inf
        for j in range(ptr[st], ptr[st + 1]):
            s, e, dj = src[j], edges[j], delay[j]
            k = head[s]
            for _ in range(depth):
                k = _older(k, depth)
                if HN[s, k] < 0:
                    break
                a = (HT[s, k] + dj) + EJ[e, k]
                if a <= after:
                    break
                if a < d and not ES[e, k]:
                    d = a
        if refractory > 0.0:
            d = max(d, after + refractory)
        if d < lowest:
            lowest = d
        c = _pick(d, lt, inclusive, c, sets, times, st)
    return c, lowest


@numba.njit(cache=True, nogil=True)
def jitter_uniforms(idx, src_ptr, by_src, sent, e_key, ahead):  # pragma: no cover - compiled
    """The keyed uniforms of the next ``ahead`` sends of senders ``idx`` on each of their
    out-synapses: for sender i (synapses at positions ``src_ptr[i] ≤ q < src_ptr[i+1]`` of
    ``by_src``) and send n = ``sent[i]`` + c, ``U(e_key[by_src[q]], n)`` at row q, column c.
    Returns the positions q, and the uniforms and send indices (one row per position)."""
    m = 0
    for j in range(idx.shape[0]):
        m += src_ptr[idx[j] + 1] - src_ptr[idx[j]]
    qs = np.empty(m, dtype=np.int64)
    u = np.empty((m, ahead))
    sends = np.empty((m, ahead), dtype=np.int64)
    r = 0
    for j in range(idx.shape[0]):
        i = idx[j]
        for q in range(src_ptr[i], src_ptr[i + 1]):
            qs[r] = q
            e = by_src[q]
            for c in range(ahead):
                u[r, c] = _uniform(e_key[e], sent[i] + c)
                sends[r, c] = sent[i] + c
            r += 1
    return qs, u, sends


# ---------------------------------------------------------------- a layer's firing, in two parts
# A window fires a layer of a kind the engine samples in compiled kernels (Bernoulli units, a
# softmax or categorical population) in two parts around NumPy's ``exp`` (one call, below):
# what the due sets read and their pre-activations; then the sample, the trace, the answered waves,
# the samples into the senders' rings and the synapses they complete. Each is the sequence of the
# kernels above and of :mod:`asyncneurons.learning.compiled`, with the same operations on the same values.

@numba.njit(cache=True, nogil=True, inline="always")
def _row_sum(t):  # pragma: no cover - compiled
    """``Σ t`` in NumPy's pairwise order (:func:`asyncneurons.learning.compiled.pairwise_sum` of the
    whole array; up to 128 terms its one block, taken without a slice of ``t``)."""
    n = t.shape[0]
    return _block_sum(t) if n <= 128 else pairwise_sum(t, 0, n)


@numba.njit(cache=True, nogil=True)
def _read_and_potentials(HT, HN, HV, HW, head, EJ, jittered, sets, times, ptr, edges, src, delay, erows, ecols, H, T, P,
                         rows, pot, sc):  # pragma: no cover - compiled
    """:func:`read_sets`, then ``pot[i] = Σ_q P[r, q] H[r, q]`` for each row r = ``rows[i]``
    (:func:`asyncneurons.learning.compiled.potential_rows` of the rows); the senders' newest
    slots and the products in the firing's scratch ``sc`` (:func:`_scratch`)."""
    k_new, t_new, v_new, w_new = sc[1], sc[4], sc[5], sc[2]
    newest_into(HT, HN, HV, HW, head, k_new, t_new, v_new, w_new)
    read_from_newest(HT, HN, HV, HW, EJ, jittered, sets, times, ptr, edges, src, delay, erows, ecols, H, T, k_new, t_new,
                     v_new, w_new)
    n = P.shape[1]
    t = sc[6][:n]
    for i in range(rows.shape[0]):
        r = rows[i]
        for q in range(n):
            t[q] = P[r, q] * H[r, q]
        pot[i] = 0.0 + _row_sum(t)


@numba.njit(cache=True, nogil=True)
def read_bernoulli_pre(HT, HN, HV, HW, head, EJ, jittered, sets, times, ptr, edges, src, delay, erows, ecols, H, T, P,
                       rows, temperature, pot, x, e, sc):  # pragma: no cover - compiled
    """:func:`_read_and_potentials`, then ``x = pot / T`` and ``e = −clamp(x, ±20)``
    (:func:`asyncneurons.learning.compiled.bernoulli_pre` of the rows; ``exp`` comes next)."""
    _read_and_potentials(HT, HN, HV, HW, head, EJ, jittered, sets, times, ptr, edges, src, delay, erows, ecols, H, T,
                         P, rows, pot, sc)
    for j in range(pot.shape[0]):
        x[j] = pot[j] / temperature
        e[j] = -_clamp(x[j], -20.0, 20.0)


@numba.njit(cache=True, nogil=True)
def read_categorical_pre(HT, HN, HV, HW, head, EJ, jittered, sets, times, ptr, edges, src, delay, erows, ecols, H, T,
                         P, rows, temperature, n, pot, z, sc):  # pragma: no cover - compiled
    """:func:`_read_and_potentials` of a whole population, then its ``n`` logits
    (:func:`asyncneurons.learning.compiled.logits_shifted`; ``exp`` comes next)."""
    _read_and_potentials(HT, HN, HV, HW, head, EJ, jittered, sets, times, ptr, edges, src, delay, erows, ecols, H, T,
                         P, rows, pot, sc)
    logits_shifted(pot, temperature, n, z)


@numba.njit(cache=True, nogil=True)
def _room(HT, head, max_delay, idx, horizon, jittered, J):  # pragma: no cover - compiled
    """0 when the samples of the senders ``idx`` can be written (:func:`append`, or with jitter
    :func:`append_jittered`, whose checks these are); else 1 (the rings must grow) or 2 (a
    sender's jitters for this send are not drawn yet, under a law other than the uniform one,
    ``J[9]``: that one is drawn in :func:`append_jittered`)."""
    depth = HT.shape[1]
    if jittered:
        HA, sent, jt_base, JT, law = J[0], J[7], J[6], J[5], J[9]
        if law[0] == 0.0:
            for j in range(idx.shape[0]):
                i = idx[j]
                c = sent[i] - jt_base[i]
                if c < 0 or c >= JT.shape[1]:
                    return 2
        for j in range(idx.shape[0]):
            i = idx[j]
            if HA[i, (head[i] + 1) % depth] > horizon:
                return 1
        return 0
    for j in range(idx.shape[0]):
        i = idx[j]
        if HT[i, (head[i] + 1) % depth] + max_delay[i] > horizon:
            return 1
    return 0


@numba.njit(cache=True, nogil=True)
def _answer_and_send(T, rows, population, sets, times, row_t, base, set_wave, last, waves, on_all, HT, HV, HW, HN,
                     head, EJ, jittered, J, ptr, edges, src, delay, first, max_delay, idx, values, horizon, serial,
                     out_ptr, out_sorted, edge_set, e_delay, e_src, marks, w_new):  # pragma: no cover - compiled
    """:func:`answered` (``w_new``: each sender's newest wave tag, :func:`answered_from`),
    :func:`append` or :func:`append_jittered` (room already checked) and, when ``marks``,
    :func:`mark_sent`."""
    answered_from(T, rows, population, sets, times, base, set_wave, last, waves, on_all, HT, HW, head, EJ, jittered,
                  ptr, edges, src, delay, first, w_new)
    if jittered:
        append_jittered(HT, HV, HW, HN, head, J[0], EJ, J[1], J[2], idx, row_t, values, waves, horizon, serial, J[3],
                        J[4], J[5], J[6], J[7], e_delay, J[8], J[9])
    else:
        append(HT, HV, HW, HN, head, max_delay, idx, row_t, values, waves, horizon, serial)
    if marks:
        mark_sent(first, out_ptr, out_sorted, rows, row_t, waves, set_wave, edge_set, e_delay, EJ, jittered, head,
                  e_src)


@numba.njit(cache=True, nogil=True)
def _select_next(mode, first, edges, ptr, last, base, refractory, lt, inclusive, due_sets, due_times, HT, HN, head,
                 src, delay):  # pragma: no cover - compiled
    """The layer's sets due next, as the window's :meth:`~asyncneurons.engine.windows.Windows.select`
    finds them after the firing: ``mode`` 1 :func:`due_on_all`, 2 :func:`due_on_input`, 0 none
    (clock firing: the caller selects)."""
    if mode == 1:
        return due_on_all(first, edges, ptr, last, base, refractory, lt, inclusive, due_sets, due_times)
    if mode == 2:
        return due_on_input(HT, HN, head, src, delay, ptr, last, base, refractory, lt, inclusive, due_sets, due_times)
    return 0, math.inf


@numba.njit(cache=True, nogil=True)
def bernoulli_fire_post_any(x, p, keys, counters, temperature, decay, decays, H, E, rows, values, gv, gaux,
                        T, sets, times, base, set_wave, last, waves, on_all, HT, HV, HW, HN, head, EJ, jittered, J, ptr,
                        edges, src, delay, first, max_delay, idx, horizon, serial, out_ptr, out_sorted, edge_set,
                        e_delay, e_src, marks, mode, refractory, lt, inclusive, due_sets,
                        due_times, w_new):  # pragma: no cover - compiled
    """From ``p = exp(−clamp(x))`` for rows ``rows`` of a Bernoulli layer sampling at ``times``:
    :func:`asyncneurons.learning.compiled.bernoulli_post` on those rows (values into ``values`` and
    ``gv[rows]``, σ into ``p`` and ``gaux[rows]``), then :func:`_answer_and_send` and the layer's
    next selection (:func:`_select_next`). Returns (the code of :func:`_room`, 0, 0), having
    changed nothing, when the rings must grow or jitters be drawn first; else (0, the number of
    sets due, the earliest due time)."""
    code = _room(HT, head, max_delay, idx, horizon, jittered, J)
    if code:
        return code, 0, 0.0
    logistic_finish(x, p, 20.0)
    n = H.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        u = _uniform(keys[r], counters[r])
        h = 1.0 if u < p[i] else 0.0
        values[i] = h
        gi = (h - p[i]) / temperature
        counters[r] += 1
        di = decays[i] if decays.shape[0] > 0 else decay
        for q in range(n):
            E[r, q] = E[r, q] * di + gi * H[r, q]
        gv[r] = h
        gaux[r] = p[i]
    _answer_and_send(T, rows, False, sets, times, times, base, set_wave, last, waves, on_all, HT, HV, HW, HN, head, EJ,
                     jittered, J, ptr, edges, src, delay, first, max_delay, idx, values, horizon, serial, out_ptr,
                     out_sorted, edge_set, e_delay, e_src, marks, w_new)
    n, lowest = _select_next(mode, first, edges, ptr, last, base, refractory, lt, inclusive, due_sets, due_times,
                             HT, HN, head, src, delay)
    return 0, n, lowest


@numba.njit(cache=True, nogil=True)
def categorical_fire_post_any(z, keys, counters, temperature, decay, decays, H, E, rows, values, g,
                          T, sets, times, row_t, base, set_wave, last, waves, on_all, HT, HV, HW, HN, head, EJ,
                          jittered, J, ptr, edges, src, delay, first, max_delay, idx, horizon, serial, out_ptr,
                          out_sorted, edge_set, e_delay, e_src, marks, mode, refractory, lt, inclusive, due_sets,
                          due_times, w_new):  # pragma: no cover - compiled
    """From ``z = exp(logits)``: :func:`asyncneurons.learning.compiled.categorical_sample` for a whole
    population sampling at ``times[0]`` (``row_t``: that time for each row), then
    :func:`_answer_and_send` and the next selection (:func:`_select_next`). Returns (the action,
    the number of sets due, the earliest due time), or (−code, 0, 0) with the code of
    :func:`_room`, having changed nothing, when the rings must grow or jitters be drawn first."""
    code = _room(HT, head, max_delay, idx, horizon, jittered, J)
    if code:
        return -code, 0, 0.0
    a = categorical_sample(z, keys, counters, temperature, decay, decays, H, E, values, g)
    _answer_and_send(T, rows, True, sets, times, row_t, base, set_wave, last, waves, on_all, HT, HV, HW, HN, head, EJ,
                     jittered, J, ptr, edges, src, delay, first, max_delay, idx, values, horizon, serial, out_ptr,
                     out_sorted, edge_set, e_delay, e_src, marks, w_new)
    n, lowest = _select_next(mode, first, edges, ptr, last, base, refractory, lt, inclusive, due_sets, due_times,
                             HT, HN, head, src, delay)
    return a, n, lowest


@numba.njit(cache=True, nogil=True)
def _no_jitter():  # pragma: no cover - compiled
    """Stand-ins for the arrays of synaptic jitter (:func:`_room`, :func:`_answer_and_send`)."""
    z, i = np.zeros((1, 1)), np.zeros(1, dtype=np.int64)
    return (z, np.zeros((1, 1), dtype=np.bool_), i, i, i, z, i, i, np.zeros(1, dtype=np.uint64), np.zeros(3))


# ---------------------------------------------------------------- a layer's firing in one call
# The two calls above and NumPy's ``exp`` between them, as one call: ``exp`` is NumPy's own float64
# loop, called by address (:func:`asyncneurons.engine.relaxation_kernels.apply_loop`), so every bit
# stays. A compiled call costs about 0.2 µs per argument it is passed, and a layer's firing
# needed about seventy, so what never changes is passed packed: a group's synapse and sender
# indices and its fixed integers in one array (:func:`layer_topology`), its fixed reals with its
# synapses' delays in another (:func:`layer_constants`).

W_PTR, W_EDGES, W_SRC, W_ROW, W_COL, OUT_PTR, OUT_SORTED, DENSE = range(8)  # parts of a layer's topology
SET_BASE, MARKS, MODE, ON_ALL = range(9, 13)  # its fixed integers, after the nine part bounds
TEMPERATURE, REFRACTORY, DECAY, TAU = range(4)  # a layer's fixed reals, before its synapses' delays
DELAYS = 4  # where its synapses' delays begin


def layer_topology(parts, set_base: int, marks: bool, mode: int, on_all: bool) -> np.ndarray:
    """One int64 array: the bounds of the eight ``parts`` (:data:`W_PTR` … :data:`DENSE`), the
    fixed integers (:data:`SET_BASE` … :data:`ON_ALL`), then the parts themselves."""
    head = 13
    sizes = np.cumsum([0] + [len(a) for a in parts]) + head
    return np.concatenate([sizes, [set_base, int(marks), mode, int(on_all)], *parts]).astype(np.int64)


def layer_constants(temperature: float, refractory: float, decay: float, delay, tau: float = 0.0) -> np.ndarray:
    """One float64 array: the layer's temperature, refractory period, per-sample trace decay and
    the time constant τ of exponential traces (0 for per-sample traces) (:data:`TEMPERATURE`,
    :data:`REFRACTORY`, :data:`DECAY`, :data:`TAU`), then its synapses' delays (from :data:`DELAYS`)."""
    return np.concatenate([[temperature, refractory, decay, tau], delay]).astype(np.float64)


@numba.njit(cache=True, nogil=True)
def _scratch(m, n, width):  # pragma: no cover - compiled
    """A firing's scratch, for up to ``m`` rows, ``n`` senders and inputs ``width`` wide, in two
    arrays: (rows or senders fired [m], each sender's newest slot [n] and wave tag [n], the
    arguments of NumPy's loop [5] (:func:`~asyncneurons.engine.relaxation_kernels.apply_loop_with`),
    each sender's newest time [n] and value [n], products [width], pre-activations [m], x [m],
    σ or scores [m], decay factors [m])."""
    n_ints, n_reals = scratch_lengths(m, n, width)
    return _scratch_of(np.empty(n_ints, dtype=np.int64), np.empty(n_reals), m, n, width)


@numba.njit(cache=True, nogil=True)
def scratch_lengths(m, n, width):  # pragma: no cover - compiled
    """The lengths of :func:`_scratch`'s two arrays (int64, float64) for ``m`` rows, ``n`` senders
    and inputs ``width`` wide."""
    return m + 2 * n + 5, 2 * n + width + 4 * m


@numba.njit(cache=True, nogil=True)
def _scratch_in(ints, reals, m, n, width):  # pragma: no cover - compiled
    """:func:`_scratch` as views of ``ints`` and ``reals`` (buffers a window keeps, nothing
    allocated), or made afresh when they are too short for these sizes."""
    n_ints, n_reals = scratch_lengths(m, n, width)
    if ints.shape[0] < n_ints or reals.shape[0] < n_reals:
        return _scratch(m, n, width)
    return _scratch_of(ints, reals, m, n, width)


@numba.njit(cache=True, nogil=True)
def _scratch_of(ints, reals, m, n, width):  # pragma: no cover - compiled
    """:func:`_scratch`'s parts, views of ``ints`` and ``reals`` (at least
    :func:`scratch_lengths` long)."""
    a, b = m + 2 * n, 2 * n + width
    return (ints[:m], ints[m:m + n], ints[m + n:a], ints[a:a + 5], reals[:n], reals[n:2 * n], reals[2 * n:b],
            reals[b:b + m], reals[b + m:b + 2 * m], reals[b + 2 * m:b + 3 * m], reals[b + 3 * m:b + 4 * m])


@numba.njit(cache=True, nogil=True, inline="always")
def _part(topo, i):  # pragma: no cover - compiled
    """Part ``i`` of a layer's topology (:func:`layer_topology`)."""
    return topo[topo[i]:topo[i + 1]]


@numba.njit(cache=True, nogil=True)
def bernoulli_fire_any(HT, HV, HW, HN, head, EJ, jittered, J, first, set_wave, last, max_delay, e_int, e_delay, topo,
                       consts, P, H, E, T, keys, counters, gv, gaux, decays, sets, times, values, waves, lt, inclusive,
                       horizon, serial, fexp, due_sets, due_times):  # pragma: no cover - compiled
    """Sets ``sets`` of a Bernoulli layer sample at ``times`` (one unit each):
    :func:`read_bernoulli_pre`, NumPy's ``exp`` (at address ``fexp``) and
    :func:`bernoulli_fire_post_any` on the layer's packed ``topo`` and ``consts``; ``e_int`` holds
    each synapse's receiving set and its sender. Its samples and waves go to ``values`` and
    ``waves`` (scratch of the layer's size). Returns what :func:`bernoulli_fire_post_any` returns,
    having changed nothing when the rings must grow or jitters be drawn first."""
    return _bernoulli_fire_in(HT, HV, HW, HN, head, EJ, jittered, J, first, set_wave, last, max_delay, e_int, e_delay,
                              topo, consts, P, H, E, T, keys, counters, gv, gaux, decays, sets, times, values, waves, lt,
                              inclusive, horizon, serial, fexp, due_sets, due_times,
                              _scratch(sets.shape[0], HT.shape[0], P.shape[1]))


@numba.njit(cache=True, nogil=True)
def _bernoulli_fire_in(HT, HV, HW, HN, head, EJ, jittered, J, first, set_wave, last, max_delay, e_int, e_delay, topo,
                       consts, P, H, E, T, keys, counters, gv, gaux, decays, sets, times, values, waves, lt, inclusive,
                       horizon, serial, fexp, due_sets, due_times, sc):  # pragma: no cover - compiled
    """:func:`bernoulli_fire_any` in the scratch ``sc`` (:func:`_scratch`, for at least as many sets)."""
    m = sets.shape[0]
    dense = _part(topo, DENSE)
    idx = sc[0][:m]
    for i in range(m):
        idx[i] = dense[sets[i]]
    code = _room(HT, head, max_delay, idx, horizon, jittered, J)
    if code:
        return code, 0, 0.0
    ptr, edges, src = _part(topo, W_PTR), _part(topo, W_EDGES), _part(topo, W_SRC)
    delay = consts[DELAYS:]
    temperature = consts[TEMPERATURE]
    pot, x, p = sc[7][:m], sc[8][:m], sc[9][:m]
    read_bernoulli_pre(HT, HN, HV, HW, head, EJ, jittered, sets, times, ptr, edges, src, delay, _part(topo, W_ROW),
                       _part(topo, W_COL), H, T, P, sets, temperature, pot, x, p, sc)
    apply_loop_with(fexp, p, p, sc[3])
    return bernoulli_fire_post_any(x, p, keys, counters, temperature, consts[DECAY], decays, H, E, sets, values[:m], gv,
                                   gaux, T, sets, times, topo[SET_BASE], set_wave, last, waves[:m], topo[ON_ALL] != 0,
                                   HT, HV, HW, HN, head, EJ, jittered, J, ptr, edges, src, delay, first, max_delay, idx,
                                   horizon, serial, _part(topo, OUT_PTR), _part(topo, OUT_SORTED), e_int[0], e_delay,
                                   e_int[1], topo[MARKS] != 0, topo[MODE], consts[REFRACTORY], lt, inclusive,
                                   due_sets, due_times, sc[2])


@numba.njit(cache=True, nogil=True)
def bernoulli_fire(HT, HV, HW, HN, head, EJ, first, set_wave, last, max_delay, e_int, e_delay, topo, consts, P, H, E, T,
                   keys, counters, gv, gaux, decays, sets, times, values, waves, lt, inclusive, horizon, serial, fexp,
                   due_sets, due_times):  # pragma: no cover - compiled
    """:func:`bernoulli_fire_any` without synaptic jitter (fewer arguments to pass)."""
    return bernoulli_fire_any(HT, HV, HW, HN, head, EJ, False, _no_jitter(), first, set_wave, last, max_delay, e_int,
                              e_delay, topo, consts, P, H, E, T, keys, counters, gv, gaux, decays, sets, times, values,
                              waves, lt, inclusive, horizon, serial, fexp, due_sets, due_times)


@numba.njit(cache=True, nogil=True)
def categorical_fire_any(HT, HV, HW, HN, head, EJ, jittered, J, first, set_wave, last, max_delay, e_int, e_delay, topo,
                         consts, P, H, E, T, keys, counters, gv, z, decays, sets, times, row_t, values, waves, lt,
                         inclusive, horizon, serial, fexp, due_sets, due_times):  # pragma: no cover - compiled
    """A softmax or categorical population (one set) samples at ``times[0]`` (``row_t``: that
    time per row): :func:`read_categorical_pre` into its ``z.shape[0]`` logits ``z``, NumPy's
    ``exp`` (at address ``fexp``) and :func:`categorical_fire_post_any`; its samples go to
    ``values`` (scratch) and ``gv``. Returns what :func:`categorical_fire_post_any` returns,
    having changed nothing when the rings must grow or jitters be drawn first."""
    return _categorical_fire_in(HT, HV, HW, HN, head, EJ, jittered, J, first, set_wave, last, max_delay, e_int, e_delay,
                                topo, consts, P, H, E, T, keys, counters, gv, z, decays, sets, times, row_t, values,
                                waves, lt, inclusive, horizon, serial, fexp, due_sets, due_times,
                                _scratch(P.shape[0], HT.shape[0], P.shape[1]))


@numba.njit(cache=True, nogil=True)
def _categorical_fire_in(HT, HV, HW, HN, head, EJ, jittered, J, first, set_wave, last, max_delay, e_int, e_delay, topo,
                         consts, P, H, E, T, keys, counters, gv, z, decays, sets, times, row_t, values, waves, lt,
                         inclusive, horizon, serial, fexp, due_sets, due_times, sc):  # pragma: no cover - compiled
    """:func:`categorical_fire_any` in the scratch ``sc`` (:func:`_scratch`, for at least the
    population's rows)."""
    dense = _part(topo, DENSE)
    m = dense.shape[0]
    code = _room(HT, head, max_delay, dense, horizon, jittered, J)
    if code:
        return -code, 0, 0.0
    rows = sc[0][:m]
    for i in range(m):
        rows[i] = i
    ptr, edges, src = _part(topo, W_PTR), _part(topo, W_EDGES), _part(topo, W_SRC)
    delay = consts[DELAYS:]
    temperature = consts[TEMPERATURE]
    pot = sc[7][:m]
    read_categorical_pre(HT, HN, HV, HW, head, EJ, jittered, sets, times, ptr, edges, src, delay, _part(topo, W_ROW),
                         _part(topo, W_COL), H, T, P, rows, temperature, z.shape[0], pot, z, sc)
    apply_loop_with(fexp, z, z, sc[3])
    out = values[:m]
    res = categorical_fire_post_any(z, keys, counters, temperature, consts[DECAY], decays, H, E, rows, out,
                                    sc[8][:m], T, sets, times, row_t, topo[SET_BASE], set_wave, last, waves[:m],
                                    topo[ON_ALL] != 0, HT, HV, HW, HN, head, EJ, jittered, J, ptr, edges, src, delay,
                                    first, max_delay, dense, horizon, serial, _part(topo, OUT_PTR),
                                    _part(topo, OUT_SORTED), e_int[0], e_delay, e_int[1], topo[MARKS] != 0,
                                    topo[MODE], consts[REFRACTORY], lt, inclusive, due_sets, due_times, sc[2])
    for i in range(m):
        gv[i] = out[i]
    return res


@numba.njit(cache=True, nogil=True)
def categorical_fire(HT, HV, HW, HN, head, EJ, first, set_wave, last, max_delay, e_int, e_delay, topo, consts, P, H, E,
                     T, keys, counters, gv, z, decays, sets, times, row_t, values, waves, lt, inclusive, horizon, serial,
                     fexp, due_sets, due_times):  # pragma: no cover - compiled
    """:func:`categorical_fire_any` without synaptic jitter (fewer arguments to pass)."""
    return categorical_fire_any(HT, HV, HW, HN, head, EJ, False, _no_jitter(), first, set_wave, last, max_delay, e_int,
                                e_delay, topo, consts, P, H, E, T, keys, counters, gv, z, decays, sets, times, row_t,
                                values, waves, lt, inclusive, horizon, serial, fexp, due_sets, due_times)


# ---------------------------------------------------------------- on_input without refractory period
# Every arrival instant of an ``on_input`` unit is a sample: a unit of the CartPole network's second
# hidden layer answers each of the 256 arrivals of a wave, the output each of 8,192. A layer pass
# then walks each unit's arrivals before the window's limit in time order, applying them and
# sampling at each instant in one compiled loop (:func:`on_input_layer`), instead of one selection
# and one firing per instant.


@numba.njit(cache=True, nogil=True)
def _arrivals_between(HT, HN, head, ptr, src, delay, st, after, lt, inclusive):  # pragma: no cover - compiled
    """The arrivals on set ``st``'s synapses after ``after`` and before ``lt`` (at it, ``inclusive``),
    in order of time, then of sending (serial): (times, synapse positions j, ring slots k). Each
    sender's ring is read newest first down to the first sample that arrived by ``after``."""
    depth = HT.shape[1]
    m = 0
    for j in range(ptr[st], ptr[st + 1]):
        s, k = src[j], head[src[j]]
        for _ in range(depth):
            k = _older(k, depth)
            if HN[s, k] < 0 or HT[s, k] + delay[j] <= after:
                break
            m += 1
    at, ser = np.empty(m), np.empty(m, dtype=np.int64)
    js, ks = np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64)
    c = 0
    for j in range(ptr[st], ptr[st + 1]):
        s, k = src[j], head[src[j]]
        for _ in range(depth):
            k = _older(k, depth)
            if HN[s, k] < 0:
                break
            a = HT[s, k] + delay[j]
            if a <= after:
                break
            if a < lt or (inclusive and a == lt):
                at[c], ser[c], js[c], ks[c] = a, HN[s, k], j, k
                c += 1
    order = np.argsort(ser[:c], kind="mergesort")
    order = order[np.argsort(at[:c][order], kind="mergesort")]
    return at[:c][order], js[:c][order], ks[:c][order]


@numba.njit(cache=True, nogil=True)
def on_input_layer(HT, HV, HW, HN, head, max_delay, topo, consts, P, H, E, T, keys, counters, gv, gaux, z, last,
                   set_wave, lt, inclusive, horizon, serial, fexp, rec_t, rec_set, rec_wave, rec_v,
                   rec_action):  # pragma: no cover - compiled
    """Every sample of an ``on_input`` layer without refractory period before ``lt`` (at it,
    ``inclusive``), set by set (units of a layer never read each other): at each instant at which
    something arrives on a set's synapses after its last sample, the arrivals of that instant are
    applied (in sending order) and the set samples, as :func:`bernoulli_fire_any` or
    :func:`categorical_fire_any` would fire it there (one serial number per sample). A Bernoulli
    layer's sets are its units; a population (``z`` holds its logits) is one set.

    Each sample is written to ``rec_*`` (time, set, wave, the set's values, a population's
    action). Returns (code, samples written, next serial): code 0 when the layer is done, 1 when
    a sender's ring must grow first, 2 when ``rec_t`` is full; the samples written are then
    complete, and a second call goes on from there. A unit without outgoing synapses, whose
    samples nobody reads, keeps only its latest ones in its ring."""
    ptr, src, dense = _part(topo, W_PTR), _part(topo, W_SRC), _part(topo, DENSE)
    rows, cols, out_ptr = _part(topo, W_ROW), _part(topo, W_COL), _part(topo, OUT_PTR)
    base = topo[SET_BASE]
    delay = consts[DELAYS:]
    temperature, decay = consts[TEMPERATURE], consts[DECAY]
    depth = HT.shape[1]
    population = z.shape[0] > 0
    m = dense.shape[0] if population else 1
    n_sets = ptr.shape[0] - 1
    width = P.shape[1]
    prod = np.empty(width)
    x1, p1 = np.empty(1), np.empty(1)
    pot = np.empty(m)
    scratch = np.empty(m)
    no_decays = np.empty(0)
    cap = rec_t.shape[0]
    c = 0
    for st in range(n_sets):
        after = last[base + st]
        at, js, ks = _arrivals_between(HT, HN, head, ptr, src, delay, st, after, lt, inclusive)
        i = 0
        r0 = 0 if population else st
        read = False
        for q in range(m):
            if out_ptr[r0 + q + 1] > out_ptr[r0 + q]:
                read = True
        while i < at.shape[0]:
            if c == cap:
                return 2, c, serial
            if read:
                for q in range(m):
                    d = dense[r0 + q]
                    if HT[d, (head[d] + 1) % depth] + max_delay[d] > horizon:
                        return 1, c, serial
            t = at[i]
            while i < at.shape[0] and at[i] == t:
                j, k, s = js[i], ks[i], src[js[i]]
                H[rows[j], cols[j]] = HV[s, k]
                T[rows[j], cols[j]] = HW[s, k]
                i += 1
            for q in range(m):  # the pre-activations, as _read_and_potentials
                r = r0 + q
                for w in range(width):
                    prod[w] = P[r, w] * H[r, w]
                pot[q] = 0.0 + _row_sum(prod)
            action = -1
            if population:
                logits_shifted(pot, temperature, z.shape[0], z)
                apply_loop(fexp, z, z)
                action = categorical_sample(z, keys, counters, temperature, decay, no_decays, H, E, gv, scratch)
            else:  # bernoulli_fire_post_any on one row
                x1[0] = pot[0] / temperature
                p1[0] = -_clamp(x1[0], -20.0, 20.0)
                apply_loop(fexp, p1, p1)
                logistic_finish(x1, p1, 20.0)
                u = _uniform(keys[st], counters[st])
                h = 1.0 if u < p1[0] else 0.0
                gi = (h - p1[0]) / temperature
                counters[st] += 1
                for w in range(width):
                    E[st, w] = E[st, w] * decay + gi * H[st, w]
                gv[st] = h
                gaux[st] = p1[0]
            wave = T[r0, 0]  # the oldest wave held (answered)
            for q in range(m):
                for w in range(T.shape[1]):
                    if T[r0 + q, w] < wave:
                        wave = T[r0 + q, w]
            set_wave[base + st] = wave
            last[base + st] = t
            for q in range(m):  # append
                d = dense[r0 + q]
                slot = head[d]
                HT[d, slot], HV[d, slot], HW[d, slot], HN[d, slot] = t, gv[r0 + q], wave, serial
                head[d] = (slot + 1) % depth
            serial += 1
            rec_t[c], rec_set[c], rec_wave[c], rec_action[c] = t, st, wave, action
            for q in range(m):
                rec_v[c, q] = gv[r0 + q]
            c += 1
    return 0, c, serial


# ---------------------------------------------------------------- a window's layers in one call
# A window fires its layers in topological order, each until nothing more of it is due before the
# window's limit (:meth:`asyncneurons.engine.windows.Windows._layer`). Where every layer fires by
# one of the calls above and nothing but the output's action needs Python, the whole sequence is
# one call that comes back to Python only for what Python does (deeper rings, jitters drawn ahead,
# the output's action), to be called again where it stopped. A compiled call costs about 0.07 µs
# per array it is passed, so the window's fixed integers and reals and every group's scratch live
# in two arrays (``wi``, ``wf``; the groups' own names for them are views), a group's place in
# them in a row of ``info``. The calls Python makes per window or firing (:func:`window_layers`,
# :func:`window_layers_jittered`, :func:`observation_sent_at`, :func:`bernoulli_fire_at`,
# :func:`categorical_fire_at`, :func:`earliest_next_at`) are passed no array but two tables of
# addresses: the window's arrays and each group's (:func:`array_addresses`,
# :func:`group_addresses`), read back as arrays without a reference count
# (``numba.carray``): the unpacking of some forty arrays per call is gone, and so are the counts
# taken and given back on them by every compiled function they pass through (measured on the
# common point of ``benchmarks/every_timing.py``, 1,500 steps alternately: about 151 → 136 µs per
# environment step). The caller (the window) keeps
# the arrays alive, and builds the tables again when a run has replaced one (deeper rings, a
# restored state), which it asks before each call.

G_P, G_H, G_E, G_T, G_KEYS, G_COUNTERS, G_VALUES, G_AUX, G_STAMPS = range(9)  # a group's arrays, in the tuple
# passed (G_STAMPS: the time stamps t_E of exponential traces, empty for per-sample ones)
GP_ROWS, GP_WIDTH, GP_AUX, GP_STAMPS = range(9, 13)  # after their addresses, in a row of ``gp`` (group_addresses)
# then the layer's fixed parts (bernoulli_fire_at): its topology and constants (address, length), the
# addresses of its firing's values and waves (its size) and of its selection's sets and times, and its number of sets
GP_TOPO, GP_TOPO_N, GP_CONSTS, GP_CONSTS_N, GP_FIRE_VALUES, GP_FIRE_WAVES, GP_DUE_SETS, GP_DUE_TIMES, GP_N_SETS = \
    range(13, 22)


def group_addresses(groups, parts=None) -> np.ndarray:
    """Per group (a row each), the addresses of its arrays ``groups[i]`` (:data:`G_P` …
    :data:`G_STAMPS`), its number of rows and inputs, and the lengths of its ``aux`` and stamps
    (:data:`GP_ROWS` … :data:`GP_STAMPS`): what :func:`window_layers_any` reads them from,
    instead of a tuple of 27 arrays, each of which a call would unpack (about 0.07 µs each). With
    ``parts``, per group its (topology, constants, firing values, firing waves, due sets, due
    times) too (:data:`GP_TOPO` …). A group given as None has a row of zeros. The caller keeps
    the arrays alive and unchanged in place (a replaced one needs a new row)."""
    gp = np.zeros((len(groups), 22), dtype=np.int64)
    for i, arrays in enumerate(groups):
        if arrays is None:
            continue
        if parts is not None:
            topo, consts, fv, fw, ds, dt = parts[i]
            for a, want in ((topo, np.int64), (consts, np.float64), (fv, np.float64), (fw, np.int64),
                            (ds, np.int64), (dt, np.float64)):
                if a.dtype != want or not a.flags.c_contiguous:
                    raise ValueError(f"a part of group {i}: {a.dtype}, not as a window reads it")
            gp[i, GP_TOPO], gp[i, GP_TOPO_N] = topo.ctypes.data, len(topo)
            gp[i, GP_CONSTS], gp[i, GP_CONSTS_N] = consts.ctypes.data, len(consts)
            gp[i, GP_FIRE_VALUES], gp[i, GP_FIRE_WAVES] = fv.ctypes.data, fw.ctypes.data
            gp[i, GP_DUE_SETS], gp[i, GP_DUE_TIMES], gp[i, GP_N_SETS] = ds.ctypes.data, dt.ctypes.data, len(ds)
        P = arrays[G_P]
        for k, a in enumerate(arrays):
            want = (np.uint64 if k == G_KEYS else np.int64 if k in (G_T, G_COUNTERS) else np.float64)
            if a.dtype != want or not a.flags.c_contiguous or (a.ndim == 2 and a.shape != P.shape):
                raise ValueError(f"array {k} of group {i}: {a.dtype}, {a.shape}, not as a window reads it")
            gp[i, k] = a.ctypes.data
        gp[i, GP_ROWS], gp[i, GP_WIDTH] = P.shape
        gp[i, GP_AUX], gp[i, GP_STAMPS] = len(arrays[G_AUX]), len(arrays[G_STAMPS])
    return gp


@intrinsic
def _f8_at(typingctx, address):
    """The int64 ``address`` as a pointer to float64 (of an array :func:`group_addresses` saw)."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return types.CPointer(types.float64)(types.int64), codegen


@intrinsic
def _i8_at(typingctx, address):
    """The int64 ``address`` as a pointer to int64."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return types.CPointer(types.int64)(types.int64), codegen


@intrinsic
def _b1_at(typingctx, address):
    """The int64 ``address`` as a pointer to booleans (one byte each, as NumPy's)."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return types.CPointer(types.boolean)(types.int64), codegen


@intrinsic
def _u8_at(typingctx, address):
    """The int64 ``address`` as a pointer to uint64."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return types.CPointer(types.uint64)(types.int64), codegen


@numba.njit(cache=True, nogil=True)
def _group_parts(gp, gi):  # pragma: no cover - compiled
    """Group ``gi``'s fixed parts, (topology, constants, firing values, firing waves, due sets, due
    times), from row ``gi`` of ``gp`` (:func:`group_addresses` with ``parts``)."""
    row = gp[gi]
    size, n_sets = row[GP_ROWS], row[GP_N_SETS]
    return (numba.carray(_i8_at(row[GP_TOPO]), row[GP_TOPO_N]), numba.carray(_f8_at(row[GP_CONSTS]), row[GP_CONSTS_N]),
            numba.carray(_f8_at(row[GP_FIRE_VALUES]), size), numba.carray(_i8_at(row[GP_FIRE_WAVES]), size),
            numba.carray(_i8_at(row[GP_DUE_SETS]), n_sets), numba.carray(_f8_at(row[GP_DUE_TIMES]), n_sets))


@numba.njit(cache=True, nogil=True)
def bernoulli_fire_at(tab, gp, gi, decays, sets, times, lt, inclusive, horizon, serial, fexp,
                      clock):  # pragma: no cover - compiled
    """:func:`bernoulli_fire` of group ``gi``, its arrays read from their addresses: the window's
    in ``tab`` (:func:`array_addresses`), the group's in ``gp`` (:func:`group_addresses` with parts).
    With ``clock`` (clock and Poisson firing, whose firing selects nothing) the layer's next
    selection after it, :func:`due_clock` on each set's next tick (row :data:`A_CLOCK_AT`)."""
    P, H, E, T, keys, counters, gv, gaux, _ = _group_views(gp, gi)
    topo, consts, values, waves, due_sets, due_times = _group_parts(gp, gi)
    EJ, J = _no_jitter_at(tab)
    HT = _f8_2(tab, A_HT)
    code, n, lowest = _bernoulli_fire_in(HT, _f8_2(tab, A_HV), _i8_2(tab, A_HW), _i8_2(tab, A_HN),
                              _i8_1(tab, A_HEAD), EJ, False, J, _f8_1(tab, A_FIRST),
                              _i8_1(tab, A_SET_WAVE), _f8_1(tab, A_LAST), _f8_1(tab, A_MAX_DELAY), _i8_2(tab, A_E_INT),
                              _f8_1(tab, A_E_DELAY), topo, consts, P, H, E, T, keys, counters, gv, gaux, decays, sets,
                              times, values, waves, lt, inclusive, horizon, serial, fexp, due_sets, due_times,
                              _scratch_at(tab, sets.shape[0], HT.shape[0], P.shape[1]))
    if clock and code == 0:
        n, lowest = due_clock(_f8_1(tab, A_CLOCK_AT), topo[SET_BASE], gp[gi, GP_N_SETS], lt, inclusive, due_sets,
                              due_times)
    return code, n, lowest


@numba.njit(cache=True, nogil=True)
def categorical_fire_at(tab, gp, gi, z, decays, sets, times, row_t, lt, inclusive, horizon, serial, fexp,
                        clock):  # pragma: no cover - compiled
    """:func:`categorical_fire` of group ``gi`` (its logits in ``z``), its arrays read from their
    addresses, and with ``clock`` its next selection, as in :func:`bernoulli_fire_at`."""
    P, H, E, T, keys, counters, gv, _, _ = _group_views(gp, gi)
    topo, consts, values, waves, due_sets, due_times = _group_parts(gp, gi)
    EJ, J = _no_jitter_at(tab)
    HT = _f8_2(tab, A_HT)
    a, n, lowest = _categorical_fire_in(HT, _f8_2(tab, A_HV), _i8_2(tab, A_HW), _i8_2(tab, A_HN),
                                _i8_1(tab, A_HEAD), EJ, False, J, _f8_1(tab, A_FIRST),
                                _i8_1(tab, A_SET_WAVE), _f8_1(tab, A_LAST), _f8_1(tab, A_MAX_DELAY),
                                _i8_2(tab, A_E_INT), _f8_1(tab, A_E_DELAY), topo, consts, P, H, E, T, keys, counters, gv,
                                z, decays, sets, times, row_t, values, waves, lt, inclusive, horizon, serial, fexp,
                                due_sets, due_times, _scratch_at(tab, P.shape[0], HT.shape[0], P.shape[1]))
    if clock and a >= 0:
        n, lowest = due_clock(_f8_1(tab, A_CLOCK_AT), topo[SET_BASE], gp[gi, GP_N_SETS], lt, inclusive, due_sets,
                              due_times)
    return a, n, lowest


# the arrays of a window's pass, by address (window_layers): rows of ``tab``
(A_HT, A_HV, A_HW, A_HN, A_HEAD, A_FIRST, A_SET_WAVE, A_LAST, A_MAX_DELAY, A_E_INT, A_E_DELAY, A_WI, A_WF, A_INFO,
 A_LINKS, A_STALE, A_DUE_AT, A_IN_DENSE, A_IN_OUT_PTR, A_IN_OUT_SORTED, A_FED, A_CLOCK_AT, A_NO_JITTER, A_SCRATCH_I,
 A_SCRATCH_F, A_IN_TIMES, A_IN_WAVES, A_IN_ROWS) = range(28)
# (observation_sent_at: the input units, their synapses by unit, the groups they feed; under clock and Poisson
# firing each set's next tick; a float64 zero of two axes that the stand-ins for synaptic jitter view, _no_jitter_at;
# the firings' scratch, the int64 and float64 buffers _scratch_at views; an observation's times, waves and rows)

# the clocks' state under clock and Poisson firing, by address (window_layers, observation_sent_at): rows of
# ``ctab`` (asyncneurons.engine.clocks.Clocks: k, c, the period (c under Poisson firing), the blocks of draws
# and their indices; flags: clock or Poisson firing, Poisson, drawn)
C_K, C_C, C_PERIOD, C_BLOCK, C_BLOCK_OF, C_FLAGS = range(6)


def array_addresses(arrays) -> np.ndarray:
    """One row per array of ``arrays`` (C-contiguous, float64, int64, uint64 or bool, one to three
    axes): its address and shape (axes it lacks of length 1), as :func:`window_layers` reads them.
    The caller keeps the arrays alive and in place (a replaced one needs a new table)."""
    tab = np.zeros((len(arrays), 4), dtype=np.int64)
    for k, a in enumerate(arrays):
        if a.dtype not in (np.float64, np.int64, np.uint64, np.bool_) or not a.flags.c_contiguous or a.ndim not in (1, 2, 3):
            raise ValueError(f"array {k}: {a.dtype}, {a.shape}, not as a window reads it")
        tab[k, 0] = a.ctypes.data
        tab[k, 1:] = a.shape + (1,) * (3 - a.ndim)
    return tab


KIND_DTYPES = {"f": np.float64, "i": np.int64, "b": np.bool_, "u": np.uint64}


def checked_addresses(arrays, kinds, what: str) -> np.ndarray:
    """:func:`array_addresses` of ``arrays``, each first checked against its kind in ``kinds``
    (``"f2"``: float64 with two axes; f float64, i int64, b bool, u uint64), so that a table read
    back by kind never reads an array as another: a ValueError names the array of ``what`` at fault."""
    if len(arrays) != len(kinds):
        raise AssertionError(f"{what}: {len(arrays)} arrays, not {len(kinds)}")
    for k, (a, kind) in enumerate(zip(arrays, kinds)):
        if a.dtype != KIND_DTYPES[kind[0]] or a.ndim != int(kind[1]):
            raise ValueError(f"array {k} of {what}: {a.dtype}, {a.shape}, not {kind}")
    return array_addresses(arrays)


@numba.njit(cache=True, nogil=True, inline="always")
def _f8_1(tab, k):  # pragma: no cover - compiled
    """Array ``k`` of ``tab`` (:func:`array_addresses`): float64, one axis."""
    return numba.carray(_f8_at(tab[k, 0]), tab[k, 1])


@numba.njit(cache=True, nogil=True, inline="always")
def _f8_2(tab, k):  # pragma: no cover - compiled
    """Array ``k`` of ``tab``: float64, two axes."""
    return numba.carray(_f8_at(tab[k, 0]), (tab[k, 1], tab[k, 2]))


@numba.njit(cache=True, nogil=True, inline="always")
def _i8_1(tab, k):  # pragma: no cover - compiled
    """Array ``k`` of ``tab``: int64, one axis."""
    return numba.carray(_i8_at(tab[k, 0]), tab[k, 1])


@numba.njit(cache=True, nogil=True, inline="always")
def _i8_2(tab, k):  # pragma: no cover - compiled
    """Array ``k`` of ``tab``: int64, two axes."""
    return numba.carray(_i8_at(tab[k, 0]), (tab[k, 1], tab[k, 2]))


@numba.njit(cache=True, nogil=True, inline="always")
def _f8_3(tab, k):  # pragma: no cover - compiled
    """Array ``k`` of ``tab``: float64, three axes."""
    return numba.carray(_f8_at(tab[k, 0]), (tab[k, 1], tab[k, 2], tab[k, 3]))


@numba.njit(cache=True, nogil=True, inline="always")
def _i8_3(tab, k):  # pragma: no cover - compiled
    """Array ``k`` of ``tab``: int64, three axes."""
    return numba.carray(_i8_at(tab[k, 0]), (tab[k, 1], tab[k, 2], tab[k, 3]))


@numba.njit(cache=True, nogil=True, inline="always")
def _b1_1(tab, k):  # pragma: no cover - compiled
    """Array ``k`` of ``tab``: bool, one axis."""
    return numba.carray(_b1_at(tab[k, 0]), tab[k, 1])


@numba.njit(cache=True, nogil=True, inline="always")
def _u8_1(tab, k):  # pragma: no cover - compiled
    """Array ``k`` of ``tab``: uint64, one axis."""
    return numba.carray(_u8_at(tab[k, 0]), tab[k, 1])


@numba.njit(cache=True, nogil=True, inline="always")
def _b1_2(tab, k):  # pragma: no cover - compiled
    """Array ``k`` of ``tab``: bool, two axes."""
    return numba.carray(_b1_at(tab[k, 0]), (tab[k, 1], tab[k, 2]))


# the per-send jitters of a window's pass, by address (window_layers_jittered): rows of ``jtab``
J_EJ, J_HA, J_ES, J_STALE, J_SRC_PTR, J_BY_SRC, J_JT, J_JT_BASE, J_SENT, J_E_KEY, J_LAW = range(11)


@numba.njit(cache=True, nogil=True)
def _no_jitter_at(tab):  # pragma: no cover - compiled
    """(EJ, J): :func:`_no_jitter`'s stand-ins as views of the one zero at row :data:`A_NO_JITTER`
    of ``tab``, nothing allocated (they are typed, never read)."""
    a = tab[A_NO_JITTER, 0]
    z, i = numba.carray(_f8_at(a), (1, 1)), numba.carray(_i8_at(a), 1)
    return z, (z, numba.carray(_b1_at(a), (1, 1)), i, i, i, z, i, i, numba.carray(_u8_at(a), 1),
               numba.carray(_f8_at(a), 1))


@numba.njit(cache=True, nogil=True)
def _scratch_at(tab, m, n, width):  # pragma: no cover - compiled
    """:func:`_scratch` as views of the window's buffers, rows :data:`A_SCRATCH_I` and
    :data:`A_SCRATCH_F` of ``tab`` (:func:`_scratch_in`)."""
    return _scratch_in(_i8_1(tab, A_SCRATCH_I), _f8_1(tab, A_SCRATCH_F), m, n, width)


@numba.njit(cache=True, nogil=True)
def _jitter_views(jtab):  # pragma: no cover - compiled
    """(EJ, J): the per-send jitters and their bookkeeping (:func:`_room`, :func:`_answer_and_send`)
    read from their addresses in ``jtab`` (rows :data:`J_EJ` … :data:`J_LAW`)."""
    return _f8_2(jtab, J_EJ), (_f8_2(jtab, J_HA), _b1_2(jtab, J_ES), _i8_1(jtab, J_STALE), _i8_1(jtab, J_SRC_PTR),
                               _i8_1(jtab, J_BY_SRC), _f8_2(jtab, J_JT), _i8_1(jtab, J_JT_BASE), _i8_1(jtab, J_SENT),
                               _u8_1(jtab, J_E_KEY), _f8_1(jtab, J_LAW))


def _clock_views(tab, ctab):  # pragma: no cover - compiled (the overload below)
    """The clocks' arrays (each set's next tick, row :data:`A_CLOCK_AT` of ``tab``, then rows
    :data:`C_K` … :data:`C_FLAGS` of ``ctab``); None when firing is not on clocks (``ctab`` None),
    so that the kernels given it leave the clocks' code out (a branch on ``C is not None`` is
    pruned when ``C``'s type is None)."""


@overload(_clock_views)
def _clock_views_typed(tab, ctab):
    """:func:`_clock_views` by ``ctab``'s type: None, or the clocks' arrays."""
    if isinstance(ctab, types.NoneType):
        return lambda tab, ctab: None
    return lambda tab, ctab: (_f8_1(tab, A_CLOCK_AT), _i8_1(ctab, C_K), _f8_1(ctab, C_C), _f8_1(ctab, C_PERIOD),
                              _f8_2(ctab, C_BLOCK), _i8_1(ctab, C_BLOCK_OF), _i8_1(ctab, C_FLAGS))


@numba.njit(cache=True, nogil=True)
def _group_views(gp, gi):  # pragma: no cover - compiled
    """Group ``gi``'s arrays, (P, H, E, T, keys, counters, values, aux, stamps), from row ``gi`` of
    ``gp`` (:func:`group_addresses`)."""
    row = gp[gi]
    shape = (row[GP_ROWS], row[GP_WIDTH])
    m = row[GP_ROWS]
    return (numba.carray(_f8_at(row[G_P]), shape), numba.carray(_f8_at(row[G_H]), shape),
            numba.carray(_f8_at(row[G_E]), shape), numba.carray(_i8_at(row[G_T]), shape),
            numba.carray(_u8_at(row[G_KEYS]), m), numba.carray(_i8_at(row[G_COUNTERS]), m),
            numba.carray(_f8_at(row[G_VALUES]), m), numba.carray(_f8_at(row[G_AUX]), row[GP_AUX]),
            numba.carray(_f8_at(row[G_STAMPS]), row[GP_STAMPS]))
(I_CLASS, I_POPULATION, I_OUTPUT, I_TOPO, I_CONSTS, I_DUE_SETS, I_FIRE_WAVES, I_SETS, I_DUE_TIMES,
 I_FIRE_VALUES, I_TIMES, I_ROW_T, I_Z, I_N_SETS, I_SIZE, I_N_LOGITS, I_TARGETS, I_N_TARGETS,
 I_TOPO_END, I_CONSTS_END) = range(20)  # a row of ``info``: a group's fixed integers and places


@numba.njit(cache=True, nogil=True)
def observation_sent(HT, HV, HW, HN, head, max_delay, EJ, jittered, J, first, set_wave, last, e_int, e_delay, dense,
                     out_ptr, out_sorted, values, now, wave, serial, marks, wi, wf, info, fed, stale,
                     due_at, C, times, waves, rows):  # pragma: no cover - compiled
    """The input units ``dense`` emitted ``values`` of wave ``wave`` at ``now``, outside any window,
    as :meth:`~asyncneurons.engine.windows.Windows.post_input` takes them in Python: into their rings
    (:func:`append`, under synaptic jitter :func:`append_jittered`, each at ``now`` with serial
    number ``serial``), the synapses they complete (:func:`mark_sent`, when ``marks``), then each
    group ``fed`` (rows of ``info``) due next, nothing selected, and marked stale: on the sets'
    next ticks under clock and Poisson firing (:func:`due_clock`; ``C``, :func:`_clock_views`),
    under jitter at the first arrival that is not stale when the group fires ``on_input``
    (:func:`due_on_input_jittered`), else
    :func:`_select_next`. ``times``, ``waves``: scratch of the inputs' number; ``rows``: their
    indices 0 … n − 1. Returns 0; or, having changed nothing, the code of :func:`_room` (1:
    the rings must grow first; 2: the inputs' jitters must be drawn first)."""
    times[:] = now
    waves[:] = wave
    code = _room(HT, head, max_delay, dense, now, jittered, J)
    if code:
        return code
    if jittered:
        append_jittered(HT, HV, HW, HN, head, J[0], EJ, J[1], J[2], dense, times, values, waves, now, serial, J[3],
                        J[4], J[5], J[6], J[7], e_delay, J[8], J[9])
    else:
        append(HT, HV, HW, HN, head, max_delay, dense, times, values, waves, now, serial)
    if marks:
        mark_sent(first, out_ptr, out_sorted, rows, times, waves, set_wave, e_int[0], e_delay, EJ, jittered, head,
                  e_int[1])
    for gi in fed:
        row = info[gi]
        topo, consts = wi[row[I_TOPO]:row[I_TOPO_END]], wf[row[I_CONSTS]:row[I_CONSTS_END]]
        n_sets = row[I_N_SETS]
        due_sets, due_times = wi[row[I_DUE_SETS]:row[I_DUE_SETS] + n_sets], wf[row[I_DUE_TIMES]:row[I_DUE_TIMES] + n_sets]
        if C is not None:
            _, low = due_clock(C[0], topo[SET_BASE], n_sets, -math.inf, False, due_sets, due_times)
        elif jittered and topo[MODE] == 0:
            _, low = due_on_input_jittered(HT, HN, head, EJ, J[1], _part(topo, W_SRC), _part(topo, W_EDGES),
                                           consts[DELAYS:], _part(topo, W_PTR), last, topo[SET_BASE],
                                           consts[REFRACTORY], -math.inf, False, due_sets, due_times)
        else:
            _, low = _select_next(topo[MODE], first, _part(topo, W_EDGES), _part(topo, W_PTR), last, topo[SET_BASE],
                                  consts[REFRACTORY], -math.inf, False, due_sets, due_times, HT, HN, head,
                                  _part(topo, W_SRC), consts[DELAYS:])
        due_at[gi] = low
        stale[gi] = 1
    return 0


@numba.njit(cache=True, nogil=True)
def earliest_next_at(tab, btab, which, now):  # pragma: no cover - compiled
    """:func:`earliest_next` of set ``which``, the inputs' bound their next observation ``now``:
    ``first`` and ``last`` read from their addresses in ``tab`` (:func:`array_addresses`), the
    sets' synapses, units and bounds in ``btab`` (ptr, edges, src, delay, set_index, refractory,
    rptr, rows, lb, the inputs)."""
    lb, inputs = _f8_1(btab, 8), _i8_1(btab, 9)
    for i in range(inputs.shape[0]):
        lb[inputs[i]] = now
    return earliest_next(_f8_1(tab, A_FIRST), _i8_1(btab, 0), _i8_1(btab, 1), _i8_1(btab, 2), _f8_1(btab, 3),
                         _i8_1(btab, 4), _f8_1(btab, 5), _f8_1(tab, A_LAST), _i8_1(btab, 6), _i8_1(btab, 7), lb, which)


@numba.njit(cache=True, nogil=True)
def _observation_at(tab, EJ, jittered, J, C, values, now, wave, serial, marks):  # pragma: no cover - compiled
    """:func:`observation_sent` with the window's arrays read from their addresses in ``tab``
    (:func:`array_addresses`, rows :data:`A_HT` … :data:`A_CLOCK_AT`), the jitters' ``EJ`` and
    ``J`` and the clocks' ``C`` (:func:`_clock_views`) given."""
    return observation_sent(_f8_2(tab, A_HT), _f8_2(tab, A_HV), _i8_2(tab, A_HW), _i8_2(tab, A_HN), _i8_1(tab, A_HEAD),
                            _f8_1(tab, A_MAX_DELAY), EJ, jittered, J, _f8_1(tab, A_FIRST), _i8_1(tab, A_SET_WAVE),
                            _f8_1(tab, A_LAST), _i8_2(tab, A_E_INT), _f8_1(tab, A_E_DELAY), _i8_1(tab, A_IN_DENSE),
                            _i8_1(tab, A_IN_OUT_PTR), _i8_1(tab, A_IN_OUT_SORTED), values, now, wave, serial, marks,
                            _i8_1(tab, A_WI), _f8_1(tab, A_WF), _i8_2(tab, A_INFO), _i8_1(tab, A_FED),
                            _i8_1(tab, A_STALE), _f8_1(tab, A_DUE_AT), C, _f8_1(tab, A_IN_TIMES),
                            _i8_1(tab, A_IN_WAVES), _i8_1(tab, A_IN_ROWS))


@numba.njit(cache=True, nogil=True)
def observation_sent_at(tab, ctab, values, now, wave, serial, marks):  # pragma: no cover - compiled
    """:func:`observation_sent` without synaptic jitter, its arrays read from their addresses in
    ``tab`` and, under clock and Poisson firing, ``ctab`` (None else: no clocks' code)."""
    EJ, J = _no_jitter_at(tab)
    return _observation_at(tab, EJ, False, J, _clock_views(tab, ctab), values, now, wave, serial, marks)


@numba.njit(cache=True, nogil=True)
def observation_sent_jittered(tab, jtab, ctab, values, now, wave, serial, marks):  # pragma: no cover - compiled
    """:func:`observation_sent` under synaptic jitter, its arrays read from their addresses in
    ``tab``, ``jtab`` and ``ctab`` (as :func:`window_layers_jittered` reads them)."""
    EJ, J = _jitter_views(jtab)
    return _observation_at(tab, EJ, True, J, _clock_views(tab, ctab), values, now, wave, serial, marks)


@numba.njit(cache=True, nogil=True)
def _stamped_decays(stamps, population, sets, times, m, tau, fexp, sc):  # pragma: no cover - compiled
    """The factors by which the exponential traces of the ``m`` rows firing (the units ``sets``
    at ``times``, or a whole population at ``times[0]``) decay when they record:
    ``exp((t_E − t)/τ)`` with NumPy's ``exp`` at address ``fexp`` on a fresh contiguous array,
    the operations of :func:`asyncneurons.learning.traces.decay_factors` (the stamps move on
    only once the firing is done, :func:`_restamp`); in the scratch ``sc`` (:func:`_scratch`)."""
    x = sc[10][:m]
    for i in range(m):
        if population:
            x[i] = stamps[i] - times[0]
        else:
            x[i] = stamps[sets[i]] - times[i]
    for i in range(m):
        x[i] = x[i] / tau
    apply_loop_with(fexp, x, x, sc[3])
    return x


@numba.njit(cache=True, nogil=True)
def _restamp(stamps, population, sets, times, m):  # pragma: no cover - compiled
    """The rows that recorded: their traces' time stamps t_E become their times."""
    for i in range(m):
        if population:
            stamps[i] = times[0]
        else:
            stamps[sets[i]] = times[i]


@numba.njit(cache=True, nogil=True)
def _ticked(C, base, sets, times, n, last, refractory, sc):  # pragma: no cover - compiled
    """Sets ``sets`` (``n``, due at their ticks ``times``) of the layer at ``base`` move their
    clocks on (:func:`asyncneurons.engine.clocks._advance`, the idx in the scratch ``sc``); those
    whose tick falls inside their refractory period are dropped, in place, the others kept in
    order (:meth:`~asyncneurons.engine.windows.Windows._layer`). Returns the number kept, or
    −2 − i, having changed nothing, when clock i's block of draws does not hold its next tick."""
    clock_at, k, c, period, block, block_of, flags = C
    idx = sc[0][:n]
    for i in range(n):
        idx[i] = base + sets[i]
    missing = _advance(idx, k, c, clock_at, period, block, block_of, flags[1] != 0, flags[2] != 0)
    if missing >= 0:
        return -2 - missing
    if refractory <= 0.0:
        return n
    kept = 0
    for i in range(n):
        if times[i] - last[base + sets[i]] >= refractory:
            sets[kept] = sets[i]
            times[kept] = times[i]
            kept += 1
    return kept


@numba.njit(cache=True, nogil=True)
def window_layers_any(HT, HV, HW, HN, head, EJ, jittered, J, first, set_wave, last, max_delay, e_int, e_delay, gp,
                      wi, wf, info, links, stale, due_at, start, stop, pending, lt, lp, horizon, serial,
                      fexp, C, ints, reals):  # pragma: no cover - compiled
    """Groups ``links[start:stop]`` (indices into ``groups`` and the rows of ``info``, in
    topological order) fire, each every set due before the limit (``lt``, ``lp``), as
    :meth:`~asyncneurons.engine.windows.Windows._layer` fires them: a group whose inputs have not
    changed (``stale`` 0) and whose next due time ``due_at[gi]`` lies beyond the limit is passed
    over; else its due sets are selected (:func:`_select_next`) and fire by
    :func:`bernoulli_fire_any` or :func:`categorical_fire_any` (priority class ``I_CLASS``, so
    ``inclusive`` when it precedes ``lp``) until none is due, each firing marking the groups it
    feeds (``I_N_TARGETS`` of ``links`` from ``I_TARGETS``) stale.
    ``ints`` and ``reals``: the firings' scratch (:func:`_scratch_in`).
    ``pending`` ≥ 0: the group at ``start`` has that many sets selected already. Returns
    (status, position, pending, serial, action, m): status 0 when every group is done; 1 or 2
    when a firing needs deeper rings or jitters drawn first (:func:`_room`: nothing changed, call
    again at that position with that pending number); 3 right after the output (``I_OUTPUT``)
    fired ``m`` rows (``action``: a population's sampled index), for Python to hand its action on
    before calling again at the position and pending number returned (past the output when
    nothing more of it is due).

    Under clock and Poisson firing (``C``: :func:`_clock_views`; None else) a group's
    sets are due at their ticks (:func:`due_clock`), and before they fire their clocks move on
    and those inside their refractory period drop out (:func:`_ticked`); status 4 when a clock's
    draws must be filled first (``action``: the clock; nothing changed), and a pending number
    −2 − n says that the group's n sets have moved their clocks on already (in ``I_SETS`` and
    ``I_TIMES``) and now fire."""
    m_max, width = 1, 1  # the firings' scratch, views of ``ints`` and ``reals`` (_scratch_in)
    for gi in range(info.shape[0]):
        m_max = max(m_max, info[gi, I_SIZE])
        width = max(width, gp[gi, GP_WIDTH])
    sc = _scratch_in(ints, reals, m_max, HT.shape[0], width)
    no_decays = sc[10][:0]  # a layer of per-sample traces decays them by its one factor
    for pos in range(start, stop):
        gi = links[pos]
        grp = _group_views(gp, gi)
        row = info[gi]
        topo, consts = wi[row[I_TOPO]:row[I_TOPO_END]], wf[row[I_CONSTS]:row[I_CONSTS_END]]
        n_sets, size = row[I_N_SETS], row[I_SIZE]
        due_sets = wi[row[I_DUE_SETS]:row[I_DUE_SETS] + n_sets]
        due_times = wf[row[I_DUE_TIMES]:row[I_DUE_TIMES] + n_sets]
        fire_values = wf[row[I_FIRE_VALUES]:row[I_FIRE_VALUES] + size]
        fire_waves = wi[row[I_FIRE_WAVES]:row[I_FIRE_WAVES] + size]
        cls = row[I_CLASS]
        inclusive = cls < lp
        ticked = -1  # sets whose clocks have moved on already (pending −2 − n)
        if pos == start and pending >= 0:
            n = pending
        elif pos == start and pending <= -2:
            n = ticked = -2 - pending
        else:
            d = due_at[gi]
            if stale[gi] == 0 and not (d < lt or (d == lt and cls < lp)):
                continue
            if C is not None:
                n, low = due_clock(C[0], topo[SET_BASE], n_sets, lt, inclusive, due_sets, due_times)
            else:
                n, low = _select_next(topo[MODE], first, _part(topo, W_EDGES), _part(topo, W_PTR), last,
                                      topo[SET_BASE], consts[REFRACTORY], lt, inclusive, due_sets, due_times, HT, HN,
                                      head, _part(topo, W_SRC), consts[DELAYS:])
            due_at[gi] = low
        while n > 0:
            if ticked >= 0:
                n, ticked = ticked, -1
                sets, times = wi[row[I_SETS]:row[I_SETS] + n], wf[row[I_TIMES]:row[I_TIMES] + n]
            else:
                sets, times = wi[row[I_SETS]:row[I_SETS] + n], wf[row[I_TIMES]:row[I_TIMES] + n]
                sets[:] = due_sets[:n]
                times[:] = due_times[:n]
                if C is not None:
                    kept = _ticked(C, topo[SET_BASE], sets, times, n, last, consts[REFRACTORY], sc)
                    if kept < -1:
                        return 4, pos, n, serial, -2 - kept, 0
                    if kept == 0:
                        n, low = due_clock(C[0], topo[SET_BASE], n_sets, lt, inclusive, due_sets, due_times)
                        due_at[gi] = low
                        continue
                    n = kept
                    sets, times = sets[:n], times[:n]
            action = 0
            population = row[I_POPULATION] != 0
            m = size if population else n
            tau = consts[TAU]
            decays = _stamped_decays(grp[G_STAMPS], population, sets, times, m, tau, fexp, sc) if tau > 0.0 \
                else no_decays
            if population:
                row_t = wf[row[I_ROW_T]:row[I_ROW_T] + size]
                row_t[:] = times[0]  # one set: every row at its time
                a, n_next, low = _categorical_fire_in(
                    HT, HV, HW, HN, head, EJ, jittered, J, first, set_wave, last, max_delay, e_int, e_delay, topo,
                    consts, grp[G_P], grp[G_H], grp[G_E], grp[G_T], grp[G_KEYS], grp[G_COUNTERS], grp[G_VALUES],
                    wf[row[I_Z]:row[I_Z] + row[I_N_LOGITS]], decays, sets, times, row_t, fire_values, fire_waves, lt,
                    inclusive, horizon, serial, fexp, due_sets, due_times, sc)
                if a < 0:
                    return -a, pos, -2 - n if C is not None else n, serial, 0, 0
                action = a
            else:
                code, n_next, low = _bernoulli_fire_in(
                    HT, HV, HW, HN, head, EJ, jittered, J, first, set_wave, last, max_delay, e_int, e_delay, topo,
                    consts, grp[G_P], grp[G_H], grp[G_E], grp[G_T], grp[G_KEYS], grp[G_COUNTERS], grp[G_VALUES],
                    grp[G_AUX], decays, sets, times, fire_values, fire_waves, lt, inclusive, horizon, serial, fexp,
                    due_sets, due_times, sc)
                if code:
                    return code, pos, -2 - n if C is not None else n, serial, 0, 0
            if tau > 0.0:  # the stamps move to the rows' times once they have recorded
                _restamp(grp[G_STAMPS], population, sets, times, m)
            serial += 1
            for q in range(row[I_TARGETS], row[I_TARGETS] + row[I_N_TARGETS]):
                stale[links[q]] = 1
            if C is not None:  # the sets due next, at their ticks
                n_next, low = due_clock(C[0], topo[SET_BASE], n_sets, lt, inclusive, due_sets, due_times)
            due_at[gi] = low
            n = n_next
            if row[I_OUTPUT]:
                if n > 0:
                    return 3, pos, n, serial, action, m
                stale[gi] = 0
                return 3, pos + 1, -1, serial, action, m
        stale[gi] = 0
    return 0, stop, 0, serial, 0, 0


@numba.njit(cache=True, nogil=True)
def _window_layers_at(tab, EJ, jittered, J, C, gp, start, stop, pending, lt, lp, horizon, serial,
                      fexp):  # pragma: no cover - compiled
    """:func:`window_layers_any` with the window's arrays read from their addresses in ``tab``
    (:func:`array_addresses`, rows :data:`A_HT` … :data:`A_DUE_AT`), the jitters' ``EJ`` and ``J``
    and the clocks' ``C`` (:func:`_clock_views`) given."""
    return window_layers_any(_f8_2(tab, A_HT), _f8_2(tab, A_HV), _i8_2(tab, A_HW), _i8_2(tab, A_HN),
                             _i8_1(tab, A_HEAD), EJ, jittered, J, _f8_1(tab, A_FIRST), _i8_1(tab, A_SET_WAVE),
                             _f8_1(tab, A_LAST), _f8_1(tab, A_MAX_DELAY), _i8_2(tab, A_E_INT), _f8_1(tab, A_E_DELAY),
                             gp, _i8_1(tab, A_WI), _f8_1(tab, A_WF), _i8_2(tab, A_INFO), _i8_1(tab, A_LINKS),
                             _i8_1(tab, A_STALE), _f8_1(tab, A_DUE_AT), start, stop, pending, lt, lp, horizon, serial,
                             fexp, C, _i8_1(tab, A_SCRATCH_I), _f8_1(tab, A_SCRATCH_F))


@numba.njit(cache=True, nogil=True)
def window_layers_jittered(tab, jtab, ctab, gp, start, stop, pending, lt, lp, horizon, serial,
                           fexp):  # pragma: no cover - compiled
    """:func:`window_layers_any` under synaptic jitter, its arrays read from their addresses:
    ``tab``, ``ctab`` and ``gp`` as for :func:`window_layers`, the jitters and their bookkeeping in
    ``jtab`` (rows :data:`J_EJ` … :data:`J_LAW`, :func:`array_addresses`)."""
    EJ, J = _jitter_views(jtab)
    return _window_layers_at(tab, EJ, True, J, _clock_views(tab, ctab), gp, start, stop, pending, lt, lp, horizon,
                             serial, fexp)


@numba.njit(cache=True, nogil=True)
def window_layers(tab, ctab, gp, start, stop, pending, lt, lp, horizon, serial, fexp):  # pragma: no cover - compiled
    """:func:`window_layers_any` without synaptic jitter, its arrays read from their addresses:
    ``tab`` (:func:`array_addresses`, rows :data:`A_HT` … :data:`A_NO_JITTER`), under clock and
    Poisson firing the clocks' ``ctab`` (rows :data:`C_K` … :data:`C_FLAGS`; None else, and the
    clocks' code is left out) and ``gp`` (:func:`group_addresses`). A few arrays to pass, and
    arrays without reference counts inside."""
    EJ, J = _no_jitter_at(tab)
    return _window_layers_at(tab, EJ, False, J, _clock_views(tab, ctab), gp, start, stop, pending, lt, lp, horizon,
                             serial, fexp)


@numba.njit(cache=True, nogil=True, inline="always")
def _precedes(t1, p1, t2, p2):  # pragma: no cover - compiled
    """Whether (t1, p1) comes before (t2, p2) in SimPy's order (time, then priority class)."""
    return t1 < t2 or (t1 == t2 and p1 < p2)


@numba.njit(cache=True, nogil=True)
def wait_window_at(tab, btab, gp, hidden0, hidden1, out0, out1, lt, lp, which, horizon, serial, fexp,
                   env_class):  # pragma: no cover - compiled
    """A window under ``wait`` pacing (``on_all``, no jitter, no retrograde signals), as
    :meth:`~asyncneurons.engine.windows.Windows.advance` computes it, in one call where nothing
    needs Python: while some hidden group may fire before the limit, the output's next sample
    bounded below (:func:`earliest_next_at`, ``which`` its set) from what has fired, the cut
    (t_lb, ENV) this implies, and the hidden groups ``links[hidden0:hidden1]`` up to the earlier
    of it and the limit (:func:`window_layers`); every such firing precedes the output's sample,
    so none is undone. Then, once no hidden group may fire before the limit (or the bound was the
    limit), the output's due time t_out
    (:func:`_select_next`), the limit moved to (t_out, ENV) when the output is due before it, and
    the output ``links[out0:out1]`` up to it. Returns window_layers's six numbers, then the phase
    and its limit: 0 in the hidden groups (status ≠ 0: resume them up to that limit; status 0:
    the bound stopped moving and some hidden group may still fire before the window's limit,
    which Python computes from a copy),
    1 in the output (resume it up to that limit while status ≠ 0)."""
    info, links, stale, due_at = _i8_2(tab, A_INFO), _i8_1(tab, A_LINKS), _i8_1(tab, A_STALE), _f8_1(tab, A_DUE_AT)
    bt, bp = -math.inf, env_class
    while True:
        more = False  # some hidden group may fire before the limit (else no bound is needed)
        for pos in range(hidden0, hidden1):
            gi = links[pos]  # (one not stale and never due, as things stand, fires nowhere)
            if stale[gi] != 0 or (due_at[gi] < math.inf and _precedes(due_at[gi], info[gi, I_CLASS], lt, lp)):
                more = True
                break
        if not more:
            break
        lb = earliest_next_at(tab, btab, which, horizon)
        if lb == bt:  # no firing moved the bound: the rest from a copy (Python)
            return 0, hidden1, -1, serial, 0, 0, 0, bt, bp
        bt, bp = lb, env_class
        if not _precedes(bt, bp, lt, lp):
            bt, bp = lt, lp
        status, pos, pending, serial, action, m = window_layers(tab, None, gp, hidden0, hidden1, -1, bt, bp,
                                                                horizon, serial, fexp)
        if status != 0:
            return status, pos, pending, serial, action, m, 0, bt, bp
        if not _precedes(bt, bp, lt, lp):
            break
    gi = links[out0]
    row = info[gi]
    wi, wf = _i8_1(tab, A_WI), _f8_1(tab, A_WF)
    topo, consts = wi[row[I_TOPO]:row[I_TOPO_END]], wf[row[I_CONSTS]:row[I_CONSTS_END]]
    n_sets = row[I_N_SETS]
    _, due = _select_next(topo[MODE], _f8_1(tab, A_FIRST), _part(topo, W_EDGES), _part(topo, W_PTR),
                          _f8_1(tab, A_LAST), topo[SET_BASE], consts[REFRACTORY], -math.inf, False,
                          wi[row[I_DUE_SETS]:row[I_DUE_SETS] + n_sets], wf[row[I_DUE_TIMES]:row[I_DUE_TIMES] + n_sets],
                          _f8_2(tab, A_HT), _i8_2(tab, A_HN), _i8_1(tab, A_HEAD), _part(topo, W_SRC), consts[DELAYS:])
    if _precedes(due, row[I_CLASS], lt, lp) and _precedes(due, env_class, lt, lp):
        lt, lp = due, env_class
    status, pos, pending, serial, action, m = window_layers(tab, None, gp, out0, out1, -1, lt, lp, horizon, serial,
                                                            fexp)
    return status, pos, pending, serial, action, m, 1, lt, lp


@numba.njit(cache=True, nogil=True)
def trace_at_landing(E, stamps, now, tau, fexp):  # pragma: no cover - compiled
    """``exp(−(now − t_E)/τ) · E`` per unit (rows of ``E``, stamps ``t_E``; C-contiguous), the
    trace a learning signal landing at ``now`` uses: the operations of
    :func:`asyncneurons.learning.traces.at_landing`, ``exp`` NumPy's at address ``fexp`` on a
    fresh contiguous array, so the same bits."""
    out = np.empty_like(E)
    trace_at_landing_into(E, stamps, now, tau, fexp, out)
    return out


@numba.njit(cache=True, nogil=True)
def trace_at_landing_into(E, stamps, now, tau, fexp, out):  # pragma: no cover - compiled
    """:func:`trace_at_landing` written into ``out`` (E's shape)."""
    m = stamps.size
    x = np.empty(m)
    for i in range(m):
        x[i] = stamps[i] - now
    for i in range(m):
        x[i] = x[i] / tau
    la = np.empty(5, np.intp)
    apply_loop_with(fexp, x, x, la)
    n = E.shape[1]
    for i in range(m):
        f = x[i]
        for j in range(n):
            out[i, j] = E[i, j] * f


@numba.njit(cache=True, nogil=True)
def weight_max_chain_at_landing(Ps, Ms, Vs, Es, stamps, Ds, now, tau, fexp, Cs, Rs, delta, lrs, b1, c1, b2, c2,
                                bc1s, bc2s, corrects, eps, reset):  # pragma: no cover - compiled
    """Weight Maximization's cascade down a chain (:func:`asyncneurons.learning.compiled.weight_max_chain`)
    under exponential traces: each layer's trace ``Es[l]`` decayed to the landing at ``now``
    (:func:`trace_at_landing_into`, into ``Ds[l]``) is the trace it learns with; with ``reset`` the
    traces themselves are cleared after. One call for what ``traces.at_landing`` per layer and the
    cascade did in turn, the same operations."""
    for l in range(len(Es)):
        trace_at_landing_into(Es[l], stamps[l], now, tau, fexp, Ds[l])
    weight_max_chain(Ps, Ms, Vs, Ds, Cs, Rs, delta, lrs, b1, c1, b2, c2, bc1s, bc2s, corrects, eps, False)
    if reset:
        for l in range(len(Es)):
            E = Es[l]
            m, n = E.shape
            for j in range(m):
                for i in range(n):
                    E[j, i] = 0.0
