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
