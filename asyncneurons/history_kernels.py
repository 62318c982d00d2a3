"""Compiled reads of the senders' sample histories, one synapse at a time (firing windows).

Every sender keeps its recent samples in a ring (:class:`~asyncneurons.transmission.Transmission`):
times ``HT``, values ``HV``, wave tags ``HW`` and serial numbers ``HN`` (sending order), one row
per sender. A synapse e from sender s with delay d_e sees sample k of s from ``HT[s, k] + d_e``
on. The three questions a firing window asks of a synapse are answered here by a loop over the
ring slots, with the same floating-point addition ``HT + d`` as an event's arrival time, so the
answers are those of the event engine to the last bit:

* :func:`read_latest`: the latest sample that has arrived by the receiver's time t_e (largest
  serial among ``HT + d ≤ t_e``); the synapse keeps what it held if nothing has arrived yet;
* :func:`first_newer`: the arrival of the first sample of a wave newer than the receiver's
  (``min {HT + d : HW > wave}``, ∞ if none is on its way), which makes an ``on_all`` unit due;
* :func:`next_arrival`: the first arrival after the receiver's last sample
  (``min {HT + d : HT + d > last}``), which makes an ``on_input`` unit due.

Compiled with numba (cached on disk): a window reads thousands of synapses per layer pass, and
the NumPy form of these reads (gathering whole rings, masking, reducing) was most of its cost.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .compiled import _uniform


@numba.njit(cache=True, nogil=True)
def read_latest(HT, HN, HV, HW, src, delay, t_edge, rows, cols, H, T):  # pragma: no cover - compiled
    """``H[rows[e], cols[e]], T[...] ←`` value and tag of the latest sample of ``src[e]`` that has
    arrived by ``t_edge[e]`` (arrival ``HT + delay[e]``), for every synapse e."""
    depth = HT.shape[1]
    for e in range(src.shape[0]):
        s = src[e]
        best, slot = -1, -1
        for k in range(depth):
            if HT[s, k] + delay[e] <= t_edge[e] and HN[s, k] > best:
                best, slot = HN[s, k], k
        if best >= 0:
            H[rows[e], cols[e]] = HV[s, slot]
            T[rows[e], cols[e]] = HW[s, slot]


@numba.njit(cache=True, nogil=True)
def first_newer(HT, HW, src, delay, wave, out):  # pragma: no cover - compiled
    """``out[e] = min {HT[src[e], k] + delay[e] : HW[src[e], k] > wave[e]}`` (∞ if none)."""
    depth = HT.shape[1]
    for e in range(src.shape[0]):
        s = src[e]
        a = math.inf
        for k in range(depth):
            if HW[s, k] > wave[e]:
                t = HT[s, k] + delay[e]
                if t < a:
                    a = t
        out[e] = a


@numba.njit(cache=True, nogil=True)
def next_arrival(HT, src, delay, last, out):  # pragma: no cover - compiled
    """``out[e] = min {HT[src[e], k] + delay[e] : that > last[e]}`` (∞ if none)."""
    depth = HT.shape[1]
    for e in range(src.shape[0]):
        s = src[e]
        a = math.inf
        for k in range(depth):
            t = HT[s, k] + delay[e]
            if t > last[e] and t < a:
                a = t
        out[e] = a


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


@numba.njit(cache=True, nogil=True)
def latest_of_sets(first, edges, starts, fed, out):  # pragma: no cover - compiled
    """``out[fed[i]] = max_e first[e]`` over the synapses ``edges[starts[i]:starts[i+1]]`` of each
    set that has any (an ``on_all`` unit is due once its last synapse holds a newer wave)."""
    n = fed.shape[0]
    for i in range(n):
        end = starts[i + 1] if i + 1 < n else edges.shape[0]
        m = -math.inf
        for j in range(starts[i], end):
            v = first[edges[j]]
            if v > m:
                m = v
        out[fed[i]] = m


@numba.njit(cache=True, nogil=True)
def mark_newer(first, edges, edge_row, fired, at, waves, set_wave, edge_set, delay):  # pragma: no cover
    """A sender's rows ``fired`` sampled at ``at`` with ``waves``: on each of their outgoing
    synapses that waits for a newer wave (``first = ∞``) and gets one (wave above the receiver's),
    the first arrival of that wave is ``at + delay``."""
    for j in range(edges.shape[0]):
        r = edge_row[j]
        if not fired[r]:
            continue
        e = edges[j]
        if first[e] == math.inf and waves[r] > set_wave[edge_set[e]]:
            first[e] = at[r] + delay[e]


# ---------------------------------------------------------------- jitter per event
# With ``[timing] synapse_jitter`` (:mod:`asyncneurons.jitter`) each synapse e also keeps, per
# slot k of its sender's ring, the jitter ``EJ[e, k]`` of that sample on e: the sample arrives at
# ``(HT + d_e) + EJ[e, k]``. The reads below are those above with that arrival time.


@numba.njit(cache=True, nogil=True)
def read_latest_jittered(HT, HN, HV, HW, EJ, edges, src, delay, t_edge, rows, cols, H, T):  # pragma: no cover
    """:func:`read_latest` with arrivals ``HT + delay[e] + EJ[edges[e], k]`` (newest wins)."""
    depth = HT.shape[1]
    for e in range(src.shape[0]):
        s, g = src[e], edges[e]
        best, slot = -1, -1
        for k in range(depth):
            if (HT[s, k] + delay[e]) + EJ[g, k] <= t_edge[e] and HN[s, k] > best:
                best, slot = HN[s, k], k
        if best >= 0:
            H[rows[e], cols[e]] = HV[s, slot]
            T[rows[e], cols[e]] = HW[s, slot]


@numba.njit(cache=True, nogil=True)
def first_newer_jittered(HT, HW, EJ, edges, src, delay, wave, out):  # pragma: no cover - compiled
    """:func:`first_newer` with arrivals ``HT + delay[e] + EJ[edges[e], k]``."""
    depth = HT.shape[1]
    for e in range(src.shape[0]):
        s, g = src[e], edges[e]
        a = math.inf
        for k in range(depth):
            if HW[s, k] > wave[e]:
                t = (HT[s, k] + delay[e]) + EJ[g, k]
                if t < a:
                    a = t
        out[e] = a


@numba.njit(cache=True, nogil=True)
def mark_newer_jittered(first, edges, edge_row, fired, at, waves, set_wave, edge_set, delay,
                        EJ, head, e_src):  # pragma: no cover - compiled
    """:func:`mark_newer` when a later value may overtake an earlier one: the first arrival of a
    newer wave on e becomes ``min(first[e], at + delay + EJ[e, slot just written])``."""
    depth = EJ.shape[1]
    for j in range(edges.shape[0]):
        r = edge_row[j]
        if not fired[r]:
            continue
        e = edges[j]
        if waves[r] > set_wave[edge_set[e]]:
            a = (at[r] + delay[e]) + EJ[e, (head[e_src[e]] - 1 + depth) % depth]
            if a < first[e]:
                first[e] = a


@numba.njit(cache=True, nogil=True)
def append_jittered(HT, HV, HW, HN, head, HA, EJ, ES, stale, idx, times, values, waves, horizon, serial,
                    eptr, edges, jit, delay):  # pragma: no cover - compiled
    """:func:`append` when every synapse draws its own jitter per send.

    The out-synapses of sender ``idx[j]`` are ``edges[eptr[j]:eptr[j+1]]`` with this send's
    jitters ``jit``. ``HA[i, k]`` is the last arrival of slot k over the sender's synapses (its
    send time if it has none): a slot is overwritten only once its successor's ``HA`` has passed
    (else return False, nothing written). Each earlier sample still on its way on e that the new
    one overtakes (arrival strictly later) is marked stale in ``ES`` and counted in ``stale[0]``.
    """
    depth = HT.shape[1]
    for j in range(idx.shape[0]):
        i = idx[j]
        if HA[i, (head[i] + 1) % depth] > horizon:
            return False
    for j in range(idx.shape[0]):
        i = idx[j]
        slot = head[i]
        t = times[j]
        last = t
        for q in range(eptr[j], eptr[j + 1]):
            e = edges[q]
            a = (t + delay[e]) + jit[q]
            for k in range(depth):
                if k != slot and HN[i, k] >= 0 and not ES[e, k] and (HT[i, k] + delay[e]) + EJ[e, k] > a:
                    ES[e, k] = True
                    stale[0] += 1
            EJ[e, slot] = jit[q]
            ES[e, slot] = False
            if a > last:
                last = a
        HT[i, slot] = t
        HV[i, slot] = values[j]
        HW[i, slot] = waves[j]
        HN[i, slot] = serial
        HA[i, slot] = last
        head[i] = (slot + 1) % depth
    return True


@numba.njit(cache=True, nogil=True)
def jitter_uniforms(idx, src_ptr, by_src, sent, e_key):  # pragma: no cover - compiled
    """The out-synapses of the senders ``idx`` (``by_src[src_ptr[i]:src_ptr[i+1]]`` for sender
    i), as ``eptr`` (each sender's first position, and the total) and ``edges``, with the
    send index ``sent[i]`` and uniform ``U(e_key[e], sent[i])`` of each (its keyed draw)."""
    n = idx.shape[0]
    eptr = np.empty(n + 1, dtype=np.int64)
    eptr[0] = 0
    for j in range(n):
        eptr[j + 1] = eptr[j] + src_ptr[idx[j] + 1] - src_ptr[idx[j]]
    edges = np.empty(eptr[n], dtype=np.int64)
    u = np.empty(eptr[n])
    sends = np.empty(eptr[n], dtype=np.int64)
    for j in range(n):
        i = idx[j]
        q = eptr[j]
        for k in range(src_ptr[i], src_ptr[i + 1]):
            e = by_src[k]
            edges[q] = e
            u[q] = _uniform(e_key[e], sent[i])
            sends[q] = sent[i]
            q += 1
    return eptr, edges, u, sends
