"""Compiled bookkeeping of lazy transmission without jitter (:mod:`asyncneurons.engine.transmission`).

Each function does, synapse by synapse in a compiled loop, what the NumPy form of its caller
does over all of a group's synapses at once: the same comparisons, the same floating-point sums
(``HT + d``, one rounding each), the same order of writes, so the results are the same bits
(``tests/test_fusion.py`` holds the lazy receivers to the eager ones;
``tests/test_transmission_kernels.py`` holds each function to its NumPy form).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from asyncneurons.learning import kernel_cache  # noqa: F401  (stamps the kernel cache before any @njit)


@njit(cache=True)
def apply_arrived(HT, HV, HW, HN, src, delay, edges, rows, cols, done, H, T, now):
    """Apply to a receiver the latest sample of each sender that has arrived by ``now``.

    Synapse i (sender ``src[i]``, delay ``delay[i]``, index ``edges[i]`` among all lazy synapses)
    holds, of its sender's slots with ``HT + d ≤ now``, the one with the largest serial ``HN``
    (the first such slot; serial −1 when none has arrived). When that serial is newer than the one
    it last applied (``done``), the slot's value and wave go to ``H`` and ``T`` at (``rows[i]``,
    ``cols[i]``). Returns whether any synapse took a newer sample."""
    fresh = False
    depth = HT.shape[1]
    for i in range(src.size):
        u = src[i]
        best, kb = -1, 0
        for k in range(depth):
            if HT[u, k] + delay[i] <= now:
                s = HN[u, k]
                if s > best:
                    best, kb = s, k
        e = edges[i]
        if best > done[e]:
            H[rows[i], cols[i]] = HV[u, kb]
            T[rows[i], cols[i]] = HW[u, kb]
            done[e] = best
            fresh = True
    return fresh


@njit(cache=True)
def next_wave(HT, HW, src, delay, edges, wave, sat):
    """After a receiver sampled with wave ``wave``: on each synapse i the first arrival of a sample
    of a newer wave, ``min(HT + d)`` over its sender's slots with ``HW > wave`` (inf if none), and
    whether it is finite (``sat[edges[i]]``). Returns (synapses without one, the latest of the
    finite arrivals or −inf)."""
    missing, latest, any_sat = 0, -np.inf, False
    depth = HT.shape[1]
    for i in range(src.size):
        u = src[i]
        a = np.inf
        for k in range(depth):
            if HW[u, k] > wave:
                t = HT[u, k] + delay[i]
                if t < a:
                    a = t
        ok = a != np.inf and a != -np.inf
        sat[edges[i]] = ok
        if ok:
            if not any_sat or a > latest:
                latest = a
            any_sat = True
        else:
            missing += 1
    return missing, latest


@njit(cache=True)
def mark_sent(edges, targets, delays, sat, last_wave, waits, missing, latest, wave, now, armed):
    """A sender's sample of wave ``wave`` is on its way along its synapses (``edges``, to groups
    ``targets`` with ``delays``): each synapse that had no value of its receiver's next wave on
    its way, to a receiver that waits for complete waves and has served an older wave, is marked;
    its receiver misses one synapse fewer and its latest arrival is at least ``now + d``. Sets
    ``armed`` (one flag per group id, all False on entry) for the receivers so marked that miss
    none now; returns whether there is any."""
    for i in range(edges.size):
        g = targets[i]
        e = edges[i]
        if sat[e] or not (wave > last_wave[g]) or not waits[g]:
            continue
        sat[e] = True
        missing[g] -= 1
        a = now + delays[i]
        if a > latest[g]:
            latest[g] = a
        armed[g] = True
    complete = False
    for i in range(targets.size):
        g = targets[i]
        if armed[g]:
            if missing[g] == 0:
                complete = True
            else:
                armed[g] = False
    return complete


@njit(cache=True)
def post_one(HT, HV, HW, HN, head, max_delay, i, now, value, wave, serial, room, edges, targets, delays, sat,
             last_wave, waits, missing, latest, armed, complete):
    """A sender of one unit (row ``i`` of the histories) sampled ``value`` of wave ``wave`` at ``now``
    (send number ``serial``), what :meth:`~asyncneurons.engine.transmission.Transmission.post`
    does for it in one call: the sample takes the unit's next slot, then :func:`mark_sent` along
    its synapses. When that slot's sample may still be on its way (``HT + max_delay > now``) and
    ``room`` is False, nothing is done and it returns −1: the caller keeps more samples and calls
    again with ``room``. Else it returns the number n of receivers the send completes, their group
    ids in ``complete[:n]`` in increasing order, their flags in ``armed`` cleared again."""
    depth = HT.shape[1]
    slot = head[i]
    if not room and HT[i, (slot + 1) % depth] + max_delay[i] > now:
        return -1
    HT[i, slot], HV[i, slot], HW[i, slot], HN[i, slot] = now, value, wave, serial
    head[i] = (slot + 1) % depth
    if edges.size == 0 or not mark_sent(edges, targets, delays, sat, last_wave, waits, missing, latest, wave, now,
                                        armed):
        return 0
    n = 0
    for g in range(armed.size):
        if armed[g]:
            armed[g] = False
            complete[n] = g
            n += 1
    return n
