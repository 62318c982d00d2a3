"""Compiled reads of MAP relaxation histories (:mod:`asyncneurons.engine.relaxation`).

Every unit keeps a short history of what it has sent forward: its samples and relaxed values,
each with its send time ``t``, its relaxation step ``k`` (0 for a sample or an observation) and
a serial number (the order in which entries were made). What a reader holds is found by binary
search in these histories, never by a message per synapse.

An entry sent at ``t`` reaches a reader after one or two hops, arriving at
``fl(fl(t + d1) + d2)`` (floating-point sums, exactly as events would be scheduled). At an
arrival time equal to the reader's time τ, order within the instant decides: the entry is held
when its landing class comes before the reader's priority, or when it was made before the last
environment step of that instant (``wm``: the serial counter at that step; −1 if none). Landing
classes are those of :mod:`asyncneurons.engine.events` and :mod:`asyncneurons.engine.relaxation`: a sample
lands in the delivery class, relaxed value k at ``R0 + 4k + 1``, the error computed after a
change of step k at ``R0 + 4k + 3``.

Pre-activations of a sender are recomputed with :func:`row_potential`, which adds the products
in the order NumPy's row reduction uses (``(P * H).sum(axis=-1)``, pairwise with eight
accumulators), so they carry the bits of :func:`asyncneurons.learning.kernels.potential`; a test holds the
two equal. No transcendental function is computed here: those stay with NumPy, whose vectorized
``exp`` and ``log1p`` give other bits than the C library's.
"""

from __future__ import annotations

import numpy as np
from numba import njit

DELIVER = 100_000
R0 = 300_000
FORWARD, ERROR = 0, 1  # landing class of a hop: the value itself, or the error term it caused


@njit(cache=True)
def landing_class(k, mode):
    if mode == ERROR:
        return R0 + 4 * k + 3
    if k == 0:
        return DELIVER
    return R0 + 4 * k + 1


@njit(cache=True)
def _block(a, lo, n):
    """NumPy's pairwise sum of a block of at most 128 elements."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    m = n - n % 8
    i = 8
    while i < m:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def _pairwise(a, lo, n):
    """NumPy's pairwise sum: blocks of at most 128, halves (rounded down to a multiple of 8)
    added recursively; written with an explicit stack (post-order)."""
    if n <= 128:
        return _block(a, lo, n)
    stack_lo = np.empty(64, dtype=np.int64)
    stack_n = np.empty(64, dtype=np.int64)
    stage = np.zeros(64, dtype=np.int64)
    partial = np.zeros(64)
    stack_lo[0], stack_n[0], stage[0] = lo, n, 0
    top = 0
    result = 0.0
    while top >= 0:
        m = stack_n[top]
        if m <= 128:
            result = _block(a, stack_lo[top], m)
            top -= 1
        elif stage[top] == 0:
            n2 = m // 2
            n2 -= n2 % 8
            stage[top] = 1
            stack_lo[top + 1], stack_n[top + 1], stage[top + 1] = stack_lo[top], n2, 0
            top += 1
            continue
        elif stage[top] == 1:
            partial[top] = result
            n2 = m // 2
            n2 -= n2 % 8
            stage[top] = 2
            stack_lo[top + 1], stack_n[top + 1], stage[top + 1] = stack_lo[top] + n2, m - n2, 0
            top += 1
            continue
        else:
            result = partial[top] + result
            top -= 1
    return result


@njit(cache=True)
def row_potential(x):
    """``Σ_i x_i`` in NumPy's order for a contiguous row (x = P_row · H_row)."""
    return 0.0 + _pairwise(x, 0, x.size)


@njit(cache=True)
def last_held(T, K, S, head, count, u, d1, d2, mode, tau, pr, wm):
    """Physical slot of the newest entry of unit ``u`` held by a reader at (τ, pr), or −1."""
    D = T.shape[1]
    n = count[u]
    base = head[u] - n  # the oldest entry's slot
    if base < 0:
        base += D
    lo, hi = 0, n  # first logical index whose arrival exceeds τ
    while lo < hi:
        mid = (lo + hi) >> 1
        s = base + mid
        if s >= D:
            s -= D
        if (T[u, s] + d1) + d2 <= tau:
            lo = mid + 1
        else:
            hi = mid
    i = lo - 1
    while i >= 0:
        s = base + i
        if s >= D:
            s -= D
        if (T[u, s] + d1) + d2 < tau:
            return s
        if landing_class(K[u, s], mode) < pr or S[u, s] < wm:
            return s
        i -= 1
    return -1


@njit(cache=True)
def _held(src, d1, d2, mode, T, K, S, V, head, count, tau, pr, wm):
    """The value of each lookup i (unit ``src[i]`` after hops ``d1[i]``, ``d2[i]``), 0 before any."""
    out = np.empty(src.size)
    for i in range(src.size):
        s = last_held(T, K, S, head, count, src[i], d1[i], d2[i], mode, tau, pr, wm)
        out[i] = V[src[i], s] if s >= 0 else 0.0
    return out


@njit(cache=True)
def fill_inputs(H, f_row, f_col, f_look, l_src, l_d, l_zero, T, K, S, V, head, count, tau, pr, wm):
    """Write into ``H`` what a group holds on its synapses at (τ, pr) (0 before any arrival).
    Synapse e (row ``f_row[e]``, column ``f_col[e]``) holds lookup ``f_look[e]``; synapses from
    one sender with one delay share a lookup."""
    vals = _held(l_src, l_d, l_zero, FORWARD, T, K, S, V, head, count, tau, pr, wm)
    for e in range(f_row.size):
        H[f_row[e], f_col[e]] = vals[f_look[e]]


@njit(cache=True)
def read_senders(q_ptr, q_units, q_dr, e_qu, e_col, x_ptr, x_col, x_look, l_src, l_d1, l_d2, ncols,
                 T, K, S, V, A, head, count, WT, WK, WS, WP, whead, wcount, tau, pr, wm,
                 pot, val, act, seen, w):
    """The state of each queried sender as its error term reaches the reader at (τ, pr).

    Query q is a set of units (one unit, or a whole population output) and a retrograde delay
    ``q_dr[q]``. For each of its units: the value it holds (``val``), its pre-activation
    recomputed from the inputs it held (``pot``, every input carried two hops: forward to the
    sender, back to the reader) with the weights it had (the last weight change whose error has
    arrived); ``act`` the action of the population, ``seen`` whether any sample of the sender
    has been answered by an error that has arrived. ``w[e]`` is the weight of edge e's synapse.
    Query unit j's inputs are ``x_ptr[j] … x_ptr[j + 1]``: column ``x_col`` holds lookup ``x_look``
    (unit ``l_src`` after hops ``l_d1``, ``l_d2``; equal lookups are shared).
    """
    held = _held(l_src, l_d1, l_d2, ERROR, T, K, S, V, head, count, tau, pr, wm)
    widx = np.empty(q_units.size, dtype=np.int64)
    x = np.empty(WP.shape[2])
    for q in range(q_ptr.size - 1):
        dr = q_dr[q]
        seen[q] = True
        act[q] = 0
        for j in range(q_ptr[q], q_ptr[q + 1]):
            u = q_units[j]
            s = last_held(T, K, S, head, count, u, 0.0, dr, ERROR, tau, pr, wm)
            if s < 0:
                seen[q] = False
                val[j] = 0.0
            else:
                val[j] = V[u, s]
                act[q] = A[u, s]
            ws = last_held(WT, WK, WS, whead, wcount, u, 0.0, dr, ERROR, tau, pr, wm)
            widx[j] = ws
            nc = ncols[u]
            x[:nc] = 0.0
            for e in range(x_ptr[j], x_ptr[j + 1]):
                x[x_col[e]] = held[x_look[e]]
            x[nc - 1] = 1.0
            for c in range(nc):
                x[c] = WP[u, ws, c] * x[c]
            pot[j] = row_potential(x[:nc])
    for e in range(e_qu.size):
        j = e_qu[e]
        w[e] = WP[q_units[j], widx[j], e_col[e]]


@njit(cache=True)
def _everywhere(T_next, S_next, d1, d2, t, wm):
    """Whether an entry sent at ``T_next`` is held by every reader from now on, after hops of at
    most ``d1`` and ``d2`` (then every older entry of its unit can be dropped)."""
    a = (T_next + d1) + d2
    return a < t or (a == t and S_next < wm)


@njit(cache=True)
def append(T, K, S, V, A, head, count, units, t, k, values, action, serial, d1, d2, wm):
    """Append an entry per unit; False (nothing written) when some history is full and its oldest
    entry may still be read: an entry is dropped once the next one is held everywhere, after the
    longest forward and retrograde delays ``d1`` and ``d2`` (``wm``: see :func:`last_held`)."""
    D = T.shape[1]
    for i in range(units.size):
        u = units[i]
        if count[u] == D:
            nxt = (head[u] + 1) % D
            if not _everywhere(T[u, nxt], S[u, nxt], d1, d2, t, wm):
                return False
    for i in range(units.size):
        u = units[i]
        s = head[u] % D
        T[u, s] = t
        K[u, s] = k
        S[u, s] = serial
        V[u, s] = values[i]
        A[u, s] = action
        head[u] = (s + 1) % D
        if count[u] < D:
            count[u] += 1
    return True


@njit(cache=True)
def append_weights(WT, WS, WP, whead, wcount, units, t, P, serial, d2, wm):
    """Append a snapshot of each unit's weight row (row i of ``P``), as :func:`append` does."""
    D = WT.shape[1]
    for i in range(units.size):
        u = units[i]
        if wcount[u] == D:
            nxt = (whead[u] + 1) % D
            if not _everywhere(WT[u, nxt], WS[u, nxt], 0.0, d2, t, wm):
                return False
    for i in range(units.size):
        u = units[i]
        s = whead[u] % D
        WT[u, s] = t
        WS[u, s] = serial
        for c in range(P.shape[1]):
            WP[u, s, c] = P[i, c]
        whead[u] = (s + 1) % D
        if wcount[u] < D:
            wcount[u] += 1
    return True
