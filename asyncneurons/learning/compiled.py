"""Compiled kernels (numba): the engine's inner loops, each giving the bits of the NumPy formula
it replaces.

A zero-delay CartPole step is about a hundred small NumPy calls of fixed cost each; these
kernels do a layer's work in one call. Every kernel reproduces its NumPy formula exactly, and a
property test holds each one to that formula bit for bit (``tests/test_compiled.py``):

* elementwise arithmetic is written in NumPy's order of operations, one rounding per operation
  (numba does not contract ``a·b + c`` into a fused multiply-add unless asked to);
* a pre-activation ``Σ_i P[j, i] H[j, i]`` is summed the way NumPy reduces a contiguous row:
  pairwise (:func:`pairwise_sum`);
* the keyed uniforms are SplitMix64 in wrapping 64-bit integers, exact by nature;
* ``exp`` and ``log1p`` are *not* compiled: NumPy evaluates them with its own SIMD routines on
  machines with AVX-512, whose last bits differ from the C library's that numba calls, so kernels
  stop before them and NumPy applies them between two kernel calls. ``sqrt`` is correctly rounded
  everywhere and is compiled.

Functions are compiled on first use and cached on disk (``cache=True``), so a second run loads
them without compiling.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from asyncneurons.learning import kernel_cache  # noqa: F401  (stamps the kernel cache before any @njit)
from asyncneurons.learning import at_rest

_NORMAL = at_rest.NORMAL

_CACHE = True
_PHI = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO53 = 1.0 / 9007199254740992.0


# ---------------------------------------------------------------------- sums
@njit(cache=_CACHE, error_model="numpy")
def _block_sum(a):
    """NumPy's pairwise sum of at most 128 terms: below 8 terms one after another from 0; else
    eight running partial sums combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the
    remainder one by one."""
    n = a.shape[0]
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[0], a[1], a[2], a[3]
    r4, r5, r6, r7 = a[4], a[5], a[6], a[7]
    end = n - n % 8
    for i in range(8, end, 8):
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(end, n):
        res += a[i]
    return res


@njit(cache=_CACHE, error_model="numpy")
def pairwise_sum(a, lo, n):
    """``Σ a[lo : lo + n]`` in NumPy's pairwise order: up to 128 terms :func:`_block_sum`;
    above, the sum of the two halves (the first a multiple of 8 long), each summed the same way.

    The recursion is unrolled onto an explicit stack (post-order: a node's two sums are added
    once both are known), which gives the same additions in the same order."""
    if n <= 128:
        return _block_sum(a[lo:lo + n])
    # stack of (lo, n, state): state 0 = to expand, 1 = children done
    st_lo = np.empty(128, np.int64)
    st_n = np.empty(128, np.int64)
    st_s = np.empty(128, np.int64)
    vals = np.empty(128)
    top = 0
    nv = 0
    st_lo[0], st_n[0], st_s[0] = lo, n, 0
    top = 1
    while top > 0:
        top -= 1
        l, k, s = st_lo[top], st_n[top], st_s[top]
        if k <= 128:
            vals[nv] = _block_sum(a[l:l + k])
            nv += 1
        elif s == 1:
            right = vals[nv - 1]
            left = vals[nv - 2]
            nv -= 2
            vals[nv] = left + right
            nv += 1
        else:
            k2 = k // 2
            k2 -= k2 % 8
            st_lo[top], st_n[top], st_s[top] = l, k, 1
            top += 1
            st_lo[top], st_n[top], st_s[top] = l + k2, k - k2, 0  # right half, done second
            top += 1
            st_lo[top], st_n[top], st_s[top] = l, k2, 0  # left half, done first
            top += 1
    return vals[0]


@njit(cache=_CACHE, error_model="numpy")
def potential_rows(P, H, out):
    """``out[j] = Σ_i P[j, i] H[j, i]`` for 2-D C-contiguous P and H: NumPy's
    ``(P * H).sum(axis=-1)`` bit for bit (0 plus the pairwise sum of the row's products)."""
    m, n = P.shape
    if n < 8:  # fewer than 8 terms: added one by one (pairwise_sum's order), each product rounded first
        for j in range(m):
            s = 0.0
            for i in range(n):
                s += P[j, i] * H[j, i]
            out[j] = 0.0 + s
        return
    t = np.empty(n)
    for j in range(m):
        for i in range(n):
            t[i] = P[j, i] * H[j, i]
        out[j] = 0.0 + pairwise_sum(t, 0, n)


@njit(cache=_CACHE, error_model="numpy")
def sum_rows_ordered(Z, out):
    """``out = Σ_r Z[r, :]`` added row after row from r = 0 (NumPy's reduction along a slow axis)."""
    rows, cols = Z.shape
    for c in range(cols):
        out[c] = Z[0, c]
    for r in range(1, rows):
        for c in range(cols):
            out[c] += Z[r, c]


@njit(cache=_CACHE, error_model="numpy")
def is_identity_block(uids, pos, cols, size):
    """True when a retrograde block covers receivers 0…size−1 in order and its senders ascend."""
    if cols != size or pos.shape[0] != size:
        return False
    for i in range(size):
        if pos[i] != i:
            return False
    for i in range(1, uids.shape[0]):
        if uids[i] <= uids[i - 1]:
            return False
    return True


# ---------------------------------------------------------------------- keyed uniforms
@njit(cache=_CACHE, error_model="numpy")
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=_CACHE, error_model="numpy")
def _uniform(key, counter):
    bits = _mix(key ^ (_PHI * (np.uint64(counter) + np.uint64(1))))
    return np.float64(bits >> np.uint64(11)) * _TWO53


@njit(cache=_CACHE, error_model="numpy")
def uniforms_into(keys, counters, out):
    """``out[j] = U(keys[j], counters[j])`` (streams.py: ``(mix(key ⊕ φ(c+1)) >> 11) · 2⁻⁵³``)."""
    for j in range(keys.shape[0]):
        out[j] = _uniform(keys[j], counters[j])


# ---------------------------------------------------------------------- clamps around exp
@njit(cache=_CACHE, error_model="numpy")
def _clamp(x, lo, hi):
    """``np.minimum(np.maximum(x, lo), hi)``, NaN kept."""
    if x != x:
        return x
    if x < lo:
        x = lo
    if x > hi:
        x = hi
    return x


@njit(cache=_CACHE, error_model="numpy")
def neg_clamp(x, bound, out):
    """``out = −clamp(x, −bound, bound)`` (before ``exp``: the logistic)."""
    for j in range(x.shape[0]):
        out[j] = -_clamp(x[j], -bound, bound)


@njit(cache=_CACHE, error_model="numpy")
def clamp(x, bound, out):
    """``out = clamp(x, −bound, bound)`` (before ``exp``: the softplus)."""
    for j in range(x.shape[0]):
        out[j] = _clamp(x[j], -bound, bound)


@njit(cache=_CACHE, error_model="numpy")
def logistic_finish(x, e, bound):
    """``σ = 1 / (1 + e)`` in place of ``e = exp(−clamp(x))``, exactly 1 where x ≥ bound and 0
    where x ≤ −bound."""
    for j in range(x.shape[0]):
        v = 1.0 / (e[j] + 1.0)
        if x[j] >= bound:
            v = 1.0
        elif x[j] <= -bound:
            v = 0.0
        e[j] = v


@njit(cache=_CACHE, error_model="numpy")
def softplus_finish(x, y, bound):
    """``softplus = x above bound, 0 below −bound, y = log1p(exp(clamp(x))) between``, in place of y."""
    for j in range(x.shape[0]):
        if x[j] > bound:
            y[j] = x[j]
        elif x[j] < -bound:
            y[j] = 0.0


# ---------------------------------------------------------------------- a Bernoulli layer's firing
@njit(cache=_CACHE, error_model="numpy")
def bernoulli_pre(P, H, temperature, pot, x, e):
    """Pre-activations ``pot``, ``x = pot / T`` and ``e = −clamp(x, ±20)`` (``exp`` comes next)."""
    potential_rows(P, H, pot)
    for j in range(pot.shape[0]):
        x[j] = pot[j] / temperature
        e[j] = -_clamp(x[j], -20.0, 20.0)


@njit(cache=_CACHE, error_model="numpy")
def bernoulli_post(x, p, keys, counters, temperature, decay, decays, H, E, values, g):
    """From ``p = exp(−clamp(x))``: σ in place of p, the sample ``h = 1[u < σ]`` with the keyed
    uniform at each unit's counter, the score ``g = (h − σ)/T`` and the trace
    ``E ← d_j · E + g ⊗ H`` (d_j = :func:`_row_decay`); counters advance by one."""
    m, n = H.shape
    logistic_finish(x, p, 20.0)
    for j in range(m):
        u = _uniform(keys[j], counters[j])
        h = 1.0 if u < p[j] else 0.0
        values[j] = h
        gj = (h - p[j]) / temperature
        g[j] = gj
        counters[j] += 1
        dj = _row_decay(decay, decays, j)
        for i in range(n):
            E[j, i] = E[j, i] * dj + gj * H[j, i]


@njit(cache=_CACHE, error_model="numpy")
def _row_decay(decay, decays, j):
    """The factor row j's trace decays by: ``decays[j]`` when a factor is given per row
    (exponential traces, :mod:`asyncneurons.learning.traces`), else the one ``decay`` (λγ)."""
    if decays.shape[0] > 0:
        return decays[j]
    return decay


@njit(cache=_CACHE, error_model="numpy")
def trace_rows(E, decay, decays, g, H):
    """``E ← d_j · E + g ⊗ H`` in place (2-D, C-contiguous; d_j = :func:`_row_decay`)."""
    m, n = E.shape
    for j in range(m):
        gj = g[j]
        dj = _row_decay(decay, decays, j)
        for i in range(n):
            E[j, i] = E[j, i] * dj + gj * H[j, i]


@njit(cache=_CACHE, error_model="numpy")
def error_lands(block, slope, H, E, decay, P, R, g, C):
    """The backprop baselines' errors of one instant landing on a layer as one block (one row per
    sender, senders ascending, columns the layer's units in order): ``R = Σ_s block[s, :]`` added
    row after row (:func:`sum_rows_ordered`), ``g = R · f'`` (``slope``), the trace
    ``E ← decay · E + g ⊗ H`` (:func:`trace_rows`) and the error sent on, ``C[i, j] = P[i, j] · g[i]``
    for the ``C.shape[1]`` first columns (none when C has no rows): the operations of
    :func:`asyncneurons.learning.kernels.sum_by_sender` and the rule's ``on_retro``, one after another."""
    sum_rows_ordered(block, R)
    m, n = E.shape
    for j in range(m):
        g[j] = R[j] * slope[j]
    for j in range(m):
        gj = g[j]
        for i in range(n):
            E[j, i] = E[j, i] * decay + gj * H[j, i]
    for j in range(C.shape[0]):
        gj = g[j]
        for i in range(C.shape[1]):
            C[j, i] = P[j, i] * gj


@njit(cache=_CACHE, error_model="numpy")
def keep_inputs(rows, H, sigma, sample_H, slope):
    """What a hidden Bernoulli unit of the backprop baselines keeps when it samples, for each row
    r of ``rows``: the inputs it read, ``sample_H[r] = H[r]``, and its straight-through slope
    ``slope[r] = σ_r · (1 − σ_r)``."""
    n = H.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        for q in range(n):
            sample_H[r, q] = H[r, q]
        p = sigma[r]
        slope[r] = p * (1.0 - p)


@njit(cache=_CACHE, error_model="numpy")
def error_sent(values, probs, temperature, P, C):
    """The backprop baselines' output error sent back when it samples: for each unit s its score
    ``g_s = (values[s] − probs[s]) / temperature`` and ``C[s, i] = P[s, i] · g_s`` for the
    ``C.shape[1]`` first columns (the operations of ``(values − π)/T`` then ``P[:, :-1] · g[:, None]``)."""
    for s in range(C.shape[0]):
        gs = (values[s] - probs[s]) / temperature
        for i in range(C.shape[1]):
            C[s, i] = P[s, i] * gs


@njit(cache=_CACHE, error_model="numpy")
def _some_below_normal(M, V):
    """Whether some m or v is subnormal (nonzero, below 2⁻¹⁰²²): comparisons only, which cost
    no assist. A plain kernel, which LLVM inlines into its callers: compiled with
    ``inline="always"`` (inlined by numba), here or in :mod:`~asyncneurons.learning.at_rest`, it
    cost :func:`_adam_span` some 50 ns a call, more than a whole step of a 5-weight row (13 ns)."""
    some = False
    for k in range(M.shape[0]):
        some |= ((M[k] != 0.0) & (abs(M[k]) < _NORMAL)) | ((V[k] != 0.0) & (abs(V[k]) < _NORMAL))
    return some


# ---------------------------------------------------------------------- Adam and Weight Max
@njit(cache=_CACHE, error_model="numpy")
def _adam_span(P, M, V, X, r, lr, b1, c1, b2, c2, bc1, bc2, correct, eps):
    """Adam on flat arrays of one length with the update ``g = X · r``: ``m ← β₁m + (1−β₁)g``,
    ``v ← β₂v + (1−β₂)g²``, ``θ ← θ + (m̂ · lr) / (√v̂ + ε)`` (m̂ = m / (1−β₁ᵗ), v̂ = v / (1−β₂ᵗ)
    while correcting). Branch-free loops, so that they compile to SIMD instructions (IEEE
    division and square root are exact in any width: same bits); callers pass slices, since
    indices from 0 are what lets the compiler drop the negative-index check. Where some m or v
    is subnormal, one weight at a time instead, the weights at rest given their numbers without
    subnormal arithmetic (:func:`_adam_span_at_rest`, :mod:`asyncneurons.learning.at_rest`); the
    test for it is comparisons, which cost no assist and next to no time."""
    if _some_below_normal(M, V):
        _adam_span_at_rest(P, M, V, X, r, lr, b1, c1, b2, c2, bc1, bc2, correct, eps)
        return
    if correct:
        for k in range(P.shape[0]):
            g = X[k] * r
            m = M[k] * b1 + g * c1
            v = V[k] * b2 + (g * g) * c2
            M[k] = m
            V[k] = v
            P[k] = P[k] + ((m / bc1) * lr) / (np.sqrt(v / bc2) + eps)
    else:
        for k in range(P.shape[0]):
            g = X[k] * r
            m = M[k] * b1 + g * c1
            v = V[k] * b2 + (g * g) * c2
            M[k] = m
            V[k] = v
            P[k] = P[k] + (m * lr) / (np.sqrt(v) + eps)


@njit(cache=_CACHE, error_model="numpy", inline="always")
def _adam_span_at_rest(P, M, V, X, r, lr, b1, c1, b2, c2, bc1, bc2, correct, eps):
    """:func:`_adam_span` one weight at a time (the same operations on each), where a weight at
    rest (g = X·r = 0, X and r finite: :func:`asyncneurons.learning.at_rest.at_rest`) takes its
    step from :func:`~asyncneurons.learning.at_rest.rest`: the formula's bits without its
    subnormal operands."""
    pguard = at_rest.guard(b1, b2, eps, lr) if abs(r) < np.inf else np.inf
    k1 = at_rest.stuck_below(b1) if pguard < np.inf else np.int64(0)
    k2 = at_rest.stuck_below(b2) if pguard < np.inf else np.int64(0)
    for k in range(P.shape[0]):
        x = X[k]
        if at_rest.at_rest(P[k], M[k], V[k], (x == 0.0 or r == 0.0) and abs(x) < np.inf, pguard):
            M[k], V[k] = at_rest.rest(M[k], V[k], 1, b1, b2, k1, k2)
            continue
        g = x * r
        m = M[k] * b1 + g * c1
        v = V[k] * b2 + (g * g) * c2
        M[k] = m
        V[k] = v
        if correct:
            P[k] = P[k] + ((m / bc1) * lr) / (np.sqrt(v / bc2) + eps)
        else:
            P[k] = P[k] + (m * lr) / (np.sqrt(v) + eps)


@njit(cache=_CACHE, error_model="numpy", inline="always")
def _silent(R, K, j):
    """Whether every R of row j's steps (``R[k, j]``, k < ``K[j]``) is 0."""
    for k in range(K[j]):
        if R[k, j] != 0.0:
            return False
    return True


@njit(cache=_CACHE, error_model="numpy")
def adam_landings(P, M, V, E, R, lr, clear, t0, bc1, bc2, Tbc, b1, c1, b2, c2, eps, MS, VS, LS):
    """K = ``R.shape[0]`` successive learning steps of one row (flat P, M, V, E of one length w):
    step k is :func:`_adam_span` with ``g = E · R[k]`` at rate ``lr[k]`` and step count
    ``t = t0 + 1 + k`` (moments corrected by ``bc1[t]``, ``bc2[t]`` while ``t < Tbc``), after
    which E is cleared where ``clear[k]``. The same operations on the same numbers as K calls,
    so the same bits; arranged so that the costly part vectorizes: the moments m_k, v_k run
    through the K steps first (into MS, VS, each at least K·w long, with the rates in LS), then
    every step's ``(m̂ · lr) / (√v̂ + ε)`` at once, then the K increments are added to P in order.
    Where some m or v is subnormal, the K steps one call of :func:`_adam_span` each (which gives
    the weights at rest their numbers without subnormal arithmetic), exactly as defined."""
    w = P.shape[0]
    K = R.shape[0]
    if _some_below_normal(M, V):
        for k in range(K):
            t = t0 + 1 + k
            if t < Tbc:
                _adam_span(P, M, V, E, R[k], lr[k], b1, c1, b2, c2, bc1[t], bc2[t], True, eps)
            else:
                _adam_span(P, M, V, E, R[k], lr[k], b1, c1, b2, c2, 1.0, 1.0, False, eps)
            if clear[k]:
                for q in range(w):
                    E[q] = 0.0
        return
    for k in range(K):
        r = R[k]
        rate = lr[k]
        base = k * w
        for q in range(w):
            g = E[q] * r
            m = M[q] * b1 + g * c1
            v = V[q] * b2 + (g * g) * c2
            M[q] = m
            V[q] = v
            MS[base + q] = m
            VS[base + q] = v
            LS[base + q] = rate
        if clear[k]:
            for q in range(w):
                E[q] = 0.0
    if t0 + 1 < Tbc:  # some steps correct the moments
        for k in range(K):
            t = t0 + 1 + k
            base = k * w
            if t < Tbc:
                a1, a2 = bc1[t], bc2[t]
                for q in range(base, base + w):
                    MS[q] = ((MS[q] / a1) * LS[q]) / (np.sqrt(VS[q] / a2) + eps)
            else:
                for q in range(base, base + w):
                    MS[q] = (MS[q] * LS[q]) / (np.sqrt(VS[q]) + eps)
    else:
        for q in range(K * w):
            MS[q] = (MS[q] * LS[q]) / (np.sqrt(VS[q]) + eps)
    for q in range(w):
        p = P[q]
        for k in range(K):
            p = p + MS[k * w + q]
        P[q] = p


@njit(cache=_CACHE, error_model="numpy")
def adam_landings_rows(P, M, V, E, R, lr, clear, K, t0, bc1, bc2, Tbc, b1, c1, b2, c2, eps, PT, MT, VT, ET, A1, A2):
    """The successive learning steps of n rows of one width w at once (P, M, V, E flat, row j at
    ``[j·w, j·w + w)``): row j takes ``K[j]`` steps, its step k being :func:`_adam_span` with
    ``g = E_j · R[k, j]`` at rate ``lr[k, j]`` and step count ``t = t0[j] + 1 + k`` (moments
    corrected by ``bc1[t]``, ``bc2[t]`` while ``t < Tbc``), after which ``E_j`` is cleared where
    ``clear[k, j]``.

    Every weight goes through its row's steps in their order with the operations of
    :func:`_adam_span`, so the bits are those of one call per step; what changes is only which
    weights are computed side by side. The rows are turned into columns (``PT[q, j]`` = weight q
    of row j, each of PT, MT, VT, ET at least w·n long), and step k of every row is one loop over
    the n rows for each q: contiguous, independent, so the compiler vectorizes the square roots
    and divisions as well (a row that has taken all its steps keeps its numbers: the select is
    branch-free). A step that does not correct its moments divides by 1.0, exact (A1, A2: the
    corrections of each [k, j], at least ``max K``·n long)."""
    n = K.shape[0]
    w = P.shape[0] // n if n > 0 else 0
    kmax = 0
    correcting = False
    for j in range(n):
        if K[j] > kmax:
            kmax = K[j]
        if K[j] > 0 and t0[j] + 1 < Tbc:
            correcting = True
    if kmax == 0:
        return
    resting = False  # some m or v subnormal: look for weights at rest (asyncneurons.learning.at_rest)
    for j in range(n):
        for q in range(w):
            x = j * w + q
            y = q * n + j
            PT[y], MT[y], VT[y], ET[y] = P[x], M[x], V[x], E[x]
            resting |= ((M[x] != 0.0) & (abs(M[x]) < _NORMAL)) | ((V[x] != 0.0) & (abs(V[x]) < _NORMAL))
    pguard = np.inf
    if resting:
        lmax = 0.0
        for j in range(n):
            for k in range(K[j]):
                if not (abs(R[k, j]) < np.inf and abs(lr[k, j]) < np.inf):
                    lmax = np.inf
                elif abs(lr[k, j]) > lmax:
                    lmax = abs(lr[k, j])
        pguard = at_rest.guard(b1, b2, eps, lmax)
        for j in range(n):
            silent = _silent(R, K, j)
            for q in range(w):
                x = j * w + q
                if at_rest.at_rest(P[x], M[x], V[x], (E[x] == 0.0 or silent) and abs(E[x]) < np.inf, pguard):
                    y = q * n + j
                    MT[y], VT[y] = 0.0, 1.0  # computed as a weight with zero moments: no subnormal in sight
    if correcting:
        for k in range(kmax):
            for j in range(n):
                t = t0[j] + 1 + k
                if t < Tbc:
                    A1[k * n + j], A2[k * n + j] = bc1[t], bc2[t]
                else:
                    A1[k * n + j], A2[k * n + j] = 1.0, 1.0
    for k in range(kmax):
        Rk = R[k]
        Lk = lr[k]
        for q in range(w):
            Pq, Mq, Vq, Eq = PT[q * n:q * n + n], MT[q * n:q * n + n], VT[q * n:q * n + n], ET[q * n:q * n + n]
            if correcting:
                a1, a2 = A1[k * n:k * n + n], A2[k * n:k * n + n]
                for j in range(n):
                    g = Eq[j] * Rk[j]
                    m = Mq[j] * b1 + g * c1
                    v = Vq[j] * b2 + (g * g) * c2
                    p = Pq[j] + ((m / a1[j]) * Lk[j]) / (np.sqrt(v / a2[j]) + eps)
                    act = k < K[j]
                    Mq[j] = m if act else Mq[j]
                    Vq[j] = v if act else Vq[j]
                    Pq[j] = p if act else Pq[j]
            else:
                for j in range(n):
                    g = Eq[j] * Rk[j]
                    m = Mq[j] * b1 + g * c1
                    v = Vq[j] * b2 + (g * g) * c2
                    p = Pq[j] + (m * Lk[j]) / (np.sqrt(v) + eps)
                    act = k < K[j]
                    Mq[j] = m if act else Mq[j]
                    Vq[j] = v if act else Vq[j]
                    Pq[j] = p if act else Pq[j]
        for j in range(n):
            if k < K[j] and clear[k, j]:
                for q in range(w):
                    ET[q * n + j] = 0.0
    k1 = at_rest.stuck_below(b1) if pguard < np.inf else np.int64(0)
    k2 = at_rest.stuck_below(b2) if pguard < np.inf else np.int64(0)
    for j in range(n):
        silent = resting and _silent(R, K, j)
        for q in range(w):
            x = j * w + q
            y = q * n + j
            if resting and at_rest.at_rest(P[x], M[x], V[x], (E[x] == 0.0 or silent) and abs(E[x]) < np.inf, pguard):
                M[x], V[x] = at_rest.rest(M[x], V[x], K[j], b1, b2, k1, k2)  # θ + 0 is θ; E as cleared
                P[x], E[x] = PT[y], ET[y]
            else:
                P[x], M[x], V[x], E[x] = PT[y], MT[y], VT[y], ET[y]


@njit(cache=_CACHE, error_model="numpy")
def adam_flat(P, M, V, G, lr, b1, c1, b2, c2, bc1, bc2, correct, eps):
    """One Adam ascent step on flat arrays (optim.py's formula, same order of operations)."""
    _adam_span(P, M, V, G, 1.0, lr, b1, c1, b2, c2, bc1, bc2, correct, eps)


@njit(cache=_CACHE, error_model="numpy")
def adam_scaled_flat(P, M, V, Z, scale, lrs, ends, b1, c1, b2, c2, bc1, bc2, correct, eps):
    """Adam on the update ``G = Z · scale`` over consecutive segments ``[ends[s−1], ends[s])``,
    segment s at learning rate ``lrs[s]`` (the critic's layers in one buffer)."""
    start = 0
    for s in range(ends.shape[0]):
        e = ends[s]
        _adam_span(P[start:e], M[start:e], V[start:e], Z[start:e], scale, lrs[s],
                   b1, c1, b2, c2, bc1, bc2, correct, eps)
        start = ends[s]


@njit(cache=_CACHE, error_model="numpy")
def decay_add(Z, decay, G):
    """``Z ← decay · Z + G`` in place (flat)."""
    for k in range(Z.shape[0]):
        Z[k] = Z[k] * decay + G[k]


@njit(cache=_CACHE, error_model="numpy")
def reinforce_rows(P, M, V, E, R, lr, b1, c1, b2, c2, bc1, bc2, correct, eps, U):
    """``U = E · R`` (R one number per row) and ``P ← P + Adam(U)`` (2-D, C-contiguous).

    Adam runs once over the whole flat U with the factor 1: its update ``g = U · 1`` is ``E · r``
    exactly, as if it ran row by row on E with each row's r, and one long loop vectorizes where
    rows of a few inputs would not."""
    m, n = P.shape
    Pf, Mf, Vf, Ef, Uf = P.reshape(m * n), M.reshape(m * n), V.reshape(m * n), E.reshape(m * n), U.reshape(m * n)
    for j in range(m):
        r = R[j]
        for k in range(j * n, j * n + n):
            Uf[k] = Ef[k] * r
    _adam_span(Pf, Mf, Vf, Uf, 1.0, lr, b1, c1, b2, c2, bc1, bc2, correct, eps)


@njit(cache=_CACHE, error_model="numpy")
def weight_max_rows(P, M, V, E, R, lr, b1, c1, b2, c2, bc1, bc2, correct, eps, C):
    """Weight Maximization's learning step of a group (p = 2): ``U = E · R``, ``P ← P + Adam(U)``
    and the retrograde signal ``C = (2 W) · U`` on the weights after the update (bias excluded)."""
    m, n = P.shape
    Pf, Mf, Vf, Ef = P.reshape(m * n), M.reshape(m * n), V.reshape(m * n), E.reshape(m * n)
    for j in range(m):
        r = R[j]
        a, b = j * n, j * n + n
        _adam_span(Pf[a:b], Mf[a:b], Vf[a:b], Ef[a:b], r, lr, b1, c1, b2, c2, bc1, bc2, correct, eps)
        for i in range(n - 1):
            C[j, i] = (2.0 * P[j, i]) * (E[j, i] * r)


# ---------------------------------------------------------------------- a softmax / categorical output
@njit(cache=_CACHE, error_model="numpy")
def logits_shifted(pot, temperature, n, z):
    """``z = [pot, 0…] / T`` (n logits: a softmax's fixed last logit is 0), then ``z − max z`` and
    values below −30 set to −30 (``exp`` comes next)."""
    m = pot.shape[0]
    for k in range(m):
        z[k] = pot[k] / temperature
    for k in range(m, n):
        z[k] = 0.0 / temperature
    mx = z[0]
    for k in range(1, n):
        if z[k] != z[k] or z[k] > mx:
            if mx == mx:
                mx = z[k]
    for k in range(n):
        v = z[k] - mx
        if v < -30.0:
            v = -30.0
        z[k] = v


@njit(cache=_CACHE, error_model="numpy")
def categorical_post(e, u, temperature, decay, decays, H, E, values, g):
    """From ``e = exp(z)``: π = e / Σe in place of e, the action ``a`` = the number of cumulative
    probabilities ≤ u (at most n − 1), the one-hot sample and score ``(onehot − π)/T`` of the
    group's m = len(values) units (m = n, or n − 1 for a softmax) and their trace
    ``E ← d_j · E + g ⊗ H`` (d_j = :func:`_row_decay`). Returns a."""
    n = e.shape[0]
    s = 0.0 + pairwise_sum(e, 0, n)
    for k in range(n):
        e[k] = e[k] / s
    c = e[0]
    a = 0
    while a < n and c <= u:
        a += 1
        if a < n:
            c = c + e[a]
    if a > n - 1:
        a = n - 1
    m = values.shape[0]
    cols = H.shape[1]
    for j in range(m):
        h = 1.0 if j == a else 0.0
        values[j] = h
        gj = (h - e[j]) / temperature
        g[j] = gj
        dj = _row_decay(decay, decays, j)
        for i in range(cols):
            E[j, i] = E[j, i] * dj + gj * H[j, i]
    return a


# ---------------------------------------------------------------------- the critic's layers
@njit(cache=_CACHE, error_model="numpy")
def critic_hidden_pre(pot, buf):
    """``buf[:m] = clamp(pot, ±30)`` (for the softplus) and ``buf[m:] = −clamp(pot, ±20)`` (for
    its derivative σ); ``exp`` comes next on all of buf, then ``log1p`` on buf[:m]."""
    m = pot.shape[0]
    for j in range(m):
        buf[j] = _clamp(pot[j], -30.0, 30.0)
        buf[m + j] = -_clamp(pot[j], -20.0, 20.0)


@njit(cache=_CACHE, error_model="numpy")
def critic_hidden_post(pot, buf, x_next):
    """``x_next = [softplus(pot), 1]`` and σ(pot) in place of buf[m:] (see :func:`critic_hidden_pre`)."""
    m = pot.shape[0]
    for j in range(m):
        p = pot[j]
        y = buf[j]
        if p > 30.0:
            y = p
        elif p < -30.0:
            y = 0.0
        x_next[j] = y
        s = 1.0 / (buf[m + j] + 1.0)
        if p >= 20.0:
            s = 1.0
        elif p <= -20.0:
            s = 0.0
        buf[m + j] = s
    x_next[m] = 1.0


@njit(cache=_CACHE, error_model="numpy")
def outer_into(d, x, G, offset):
    """``G[offset:].reshape(len(d), len(x)) = d ⊗ x`` (one product per entry)."""
    n = x.shape[0]
    for j in range(d.shape[0]):
        dj = d[j]
        row = G[offset + j * n:offset + j * n + n]
        for i in range(n):
            row[i] = dj * x[i]


@njit(cache=_CACHE, error_model="numpy")
def scaled_outer_into(dpre, slope, d, x, G, offset):
    """``d = dpre · slope`` (elementwise), then ``G[offset:].reshape(len(d), len(x)) = d ⊗ x``:
    a critic layer's backward term and its gradient."""
    n = x.shape[0]
    for j in range(d.shape[0]):
        dj = dpre[j] * slope[j]
        d[j] = dj
        row = G[offset + j * n:offset + j * n + n]
        for i in range(n):
            row[i] = dj * x[i]


# ---------------------------------------------------------------------- a chain of layers (asyncneurons.engine.chain)
@njit(cache=_CACHE, error_model="numpy")
def deliver_whole(values, H, T, wave):
    """Every row of H holds ``values`` on its input columns, tagged ``wave`` in T (the bias
    column kept): ``H[:, :-1] = values; T[:, :-1] = wave``."""
    m, n = H.shape
    for j in range(m):
        for i in range(n - 1):
            H[j, i] = values[i]
            T[j, i] = wave


@njit(cache=_CACHE, error_model="numpy")
def weight_max_chain(Ps, Ms, Vs, Es, Cs, Rs, delta, lrs, b1, c1, b2, c2, bc1s, bc2s, corrects, eps, reset):
    """Weight Maximization's learning cascade (p = 2) down a chain of layers 0…L−1, each layer
    sending its retrograde signals to the one below it only: the top layer's rewards are δ;
    layer l's rewards ``Rs[l]`` are the sum of layer l+1's signals over its rows, row after row
    (:func:`sum_rows_ordered`); each layer l ≥ 1 learns with :func:`weight_max_rows`, writing its
    signals to ``Cs[l]``, and layer 0 with :func:`reinforce_rows`, writing its update to
    ``Cs[0]``; with ``reset`` each layer's trace is cleared after it has learned."""
    L = len(Ps)
    for l in range(L - 1, -1, -1):
        R = Rs[l]
        if l == L - 1:
            for j in range(R.shape[0]):
                R[j] = delta
        else:
            sum_rows_ordered(Cs[l + 1], R)
        if l > 0:
            weight_max_rows(Ps[l], Ms[l], Vs[l], Es[l], R, lrs[l], b1, c1, b2, c2, bc1s[l], bc2s[l], corrects[l],
                            eps, Cs[l])
        else:
            reinforce_rows(Ps[l], Ms[l], Vs[l], Es[l], R, lrs[l], b1, c1, b2, c2, bc1s[l], bc2s[l], corrects[l],
                           eps, Cs[l])
        if reset:
            E = Es[l]
            m, n = E.shape
            for j in range(m):
                for i in range(n):
                    E[j, i] = 0.0


@njit(cache=_CACHE, error_model="numpy")
def deliver_bernoulli_pre(values, wave, T, P, H, temperature, pot, x, e):
    """:func:`deliver_whole` of ``values`` into H and T, then :func:`bernoulli_pre`."""
    deliver_whole(values, H, T, wave)
    bernoulli_pre(P, H, temperature, pot, x, e)


@njit(cache=_CACHE, error_model="numpy")
def deliver_categorical_pre(values, wave, T, P, H, temperature, n, pot, z):
    """:func:`deliver_whole` of ``values`` into H and T, then :func:`potential_rows` and
    :func:`logits_shifted` (``n`` logits)."""
    deliver_whole(values, H, T, wave)
    potential_rows(P, H, pot)
    logits_shifted(pot, temperature, n, z)


@njit(cache=_CACHE, error_model="numpy")
def categorical_sample(e, keys, counters, temperature, decay, decays, H, E, values, g):
    """The uniform at the first unit's counter (:func:`uniforms_into`), :func:`categorical_post`,
    then every counter advances by one. Returns the action."""
    u = _uniform(keys[0], counters[0])
    a = categorical_post(e, u, temperature, decay, decays, H, E, values, g)
    for j in range(counters.shape[0]):
        counters[j] += 1
    return a


@njit(cache=_CACHE, error_model="numpy")
def adam_scaled_flat_record(P, M, V, Z, scale, lrs, ends, b1, c1, b2, c2, bc1, bc2, correct, eps, reset, decay, G):
    """The critic's step after a TD error: :func:`adam_scaled_flat` on the trace Z, Z cleared
    when ``reset``, then ``Z ← decay · Z + G`` (:func:`decay_add`)."""
    adam_scaled_flat(P, M, V, Z, scale, lrs, ends, b1, c1, b2, c2, bc1, bc2, correct, eps)
    if reset:
        for k in range(Z.shape[0]):
            Z[k] = 0.0
    decay_add(Z, decay, G)
