"""Weights at rest: Adam's steps on moments below the normal range, without subnormal arithmetic.

A weight whose gradient g = E·R is exactly 0 for a long time keeps ``m ← β₁m`` and ``v ← β₂v``.
m falls below 2⁻¹⁰²² (the smallest normal double) within some 6,700 steps at β₁ = 0.9, and from
there through the subnormal numbers ±k·2⁻¹⁰⁷⁴ until k·β₁ rounds back to k (k ≤ 5 at β₁ = 0.9),
where it stays for good; v does the same later (k ≤ 499 at β₂ = 0.999). This happens to every
weight of a unit whose trace is 0 (a saturated unit: p exactly 0 or 1) and, under Weight
Maximization, to every weight of a unit that stays silent: the units above send it R = 2 W E R'
with their traces of it 0. Each arithmetic operation with a subnormal operand or result costs
the processor a microcode assist (about 30 ns here, against a fraction of a nanosecond), and such
a weight's steps cost several. Under per-synapse retrograde delays a first-layer unit learns 32
times per environment step, so a run of the published CartPole network went from 190 to 330 µs
per environment step over its first 20,000 steps, while the benchmarks, timing the first few
hundred steps, saw nothing (``docs/performance.md``).

A weight *at rest* in a call (g = 0 at every step of it, E, R and the rates finite; m subnormal,
or +0 with v subnormal; |θ| not tiny) is given its numbers here from their bit patterns and
normal doubles only, and they are the formula's bits:

* m ← fl(β₁m) (the ``+ (1 − β₁)·g`` adds a zero): for m = ±k·2⁻¹⁰⁷⁴, fl(β₁m) = ±round(k·β₁)·2⁻¹⁰⁷⁴
  with IEEE's rounding (to nearest, ties to even), and k·β₁ is known exactly as p + e (p the
  rounded product, e its error by Dekker's product, both normal): :func:`scaled_below_normal`;
* v ← fl(β₂v) the same way while v is subnormal (a plain product while it is normal);
* θ unchanged: |m| < 2⁻¹⁰²², so the increment (m̂ · lr)/(√v̂ + ε) is at most
  8·2⁻¹⁰²²·max(lr, 1)/((1 − β₁)·ε) (1 − β₁ᵗ ≥ 1 − β₁, the divisor at least ε, a factor 8 for the
  roundings), and θ + inc rounds to θ whenever |θ| ≥ 2⁵⁵·that (:func:`guard`: about 10⁻²⁸⁰ for
  the published settings). A smaller |θ| is computed by the formula.

The usual case, m stuck and v still normal, is one product per step on v; m still falling and
v subnormal go by their bit patterns (:func:`rest`; the patterns are read and written by
:func:`bits_of` and :func:`double_of`, which move no number through arithmetic). Kernels look at
these only where some m or v of the call is subnormal (comparisons, which cost no assist, find
out), so everything else runs the SIMD loops as before.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic
from asyncneurons.learning import kernel_cache  # noqa: F401  (stamps the kernel cache before any @njit)

NORMAL = 2.2250738585072014e-308  # 2⁻¹⁰²²
_SIGN = np.int64(-9223372036854775808)  # the sign bit of a double's pattern
_MAGNITUDE = np.int64(9223372036854775807)
_SPLIT = 134217729.0  # 2²⁷ + 1, Veltkamp's splitter
_INLINE = {"cache": True, "error_model": "numpy", "inline": "always"}



@njit(**_INLINE)
def below_normal(x):
    """Whether x is subnormal (nonzero, |x| < 2⁻¹⁰²²)."""
    return (x != 0.0) & (abs(x) < NORMAL)


@njit(**_INLINE)
def guard(b1, b2, eps, lmax):
    """The least |θ| of a weight at rest left to the formula's θ + inc = θ (see the module
    docstring); ∞ (no weight at rest) unless ½ < β₁, β₂ < 1, ε > 0 and the rates are finite."""
    if not (b1 > 0.5 and b1 < 1.0 and b2 > 0.5 and b2 < 1.0 and eps > 0.0 and abs(lmax) < np.inf):
        return np.inf
    return ((8.0 / (1.0 - b1)) * max(abs(lmax), 1.0) / eps * 36028797018963968.0) * NORMAL  # 2⁵⁵


@njit(**_INLINE)
def at_rest(p, m, v, g_zero, pguard):
    """Whether a weight (θ = p, moments m, v) whose gradient is 0 at every step (``g_zero``) is
    at rest: m subnormal, or +0 with v subnormal (−0 + a zero may take either sign: left to the
    formula), and |θ| at least ``pguard``."""
    return g_zero and (below_normal(m) or (m == 0.0 and math.copysign(1.0, m) > 0.0 and below_normal(v))) \
        and abs(p) >= pguard


@njit(**_INLINE)
def _product_error(a, b):
    """(fl(a·b), a·b − fl(a·b)) exactly (Dekker's product, Veltkamp's split; for a, b and their
    halves' products in the normal range)."""
    p = a * b
    ca = _SPLIT * a
    ah = ca - (ca - a)
    al = a - ah
    cb = _SPLIT * b
    bh = cb - (cb - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@intrinsic
def bits_of(typingctx, x):
    """A double's bit pattern as an int64 (no arithmetic: a subnormal costs nothing here)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def double_of(typingctx, b):
    """The double of an int64 bit pattern (the inverse of :func:`bits_of`)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@njit(**_INLINE)
def scaled_below_normal(bits, b):
    """The bit pattern of fl(x·β) for x of pattern ``bits`` with |x| < 2⁻¹⁰²² and 0 < β < 1.

    x = ±k·2⁻¹⁰⁷⁴ with k = the pattern's magnitude (the exponent field is 0), so fl(x·β) =
    ±round(k·β)·2⁻¹⁰⁷⁴. With k·β = p + e exactly (:func:`_product_error`), f = ⌊p⌋ and s =
    (p − f) − ½ (both exact), k·β lies above f + ½ when s > −e, on it when s = −e (then the even
    one of f, f + 1). A result of 0 keeps x's sign, as IEEE's product does."""
    k = bits & _MAGNITUDE
    if k == 0:
        return bits
    p, e = _product_error(np.float64(k), b)
    f = np.floor(p)
    s = (p - f) - 0.5
    r = np.int64(f)
    if s > -e or (s == -e and (r & 1) == 1):
        r += 1
    return r | (bits & _SIGN)


@njit(**_INLINE)
def stuck_below(b):
    """The largest k such that fl(j·2⁻¹⁰⁷⁴·β) = j·2⁻¹⁰⁷⁴ for every 1 ≤ j ≤ k, for ½ < β < 1: with
    β = m_β/2⁵³ exactly and d = 2⁵³ − m_β, j·β lies within j·d/2⁵³ of j and rounds to j when
    j·d < 2⁵², so k = ⌊(2⁵² − 1)/d⌋, in integers (ties, which round to even, left out). A
    weight at rest whose moments are stuck so takes its steps without any arithmetic."""
    return np.int64(4503599627370495) // (np.int64(9007199254740992) - np.int64(b * 9007199254740992.0))


@njit(**_INLINE)
def rest(m, v, steps, b1, b2, k1, k2):
    """(m, v) after ``steps`` steps of a weight at rest: m ← fl(β₁m), v ← fl(β₂v) + 0 each
    (``k1``, ``k2``: :func:`stuck_below` of β₁ and β₂). The ``+ 0`` (the formula's
    ``+ (1 − β)·g``, g = 0) changes no nonzero number and makes a zero +0; m below the normal
    range, with β₁ > ½, never rounds to zero. Stuck moments are left as they are (the usual case:
    m stuck, v normal, one product per step); a moment below the normal range is scaled by its
    bit pattern (:func:`scaled_below_normal`), a normal v by a product."""
    mb = bits_of(m)
    m_falls = (mb & _MAGNITUDE) > k1
    for _ in range(steps):
        if m_falls:
            mb = scaled_below_normal(mb, b1)
            m_falls = (mb & _MAGNITUDE) > k1
        if abs(v) >= NORMAL:
            v = v * b2 + 0.0
        elif v == 0.0:
            v = 0.0
        else:
            vb = bits_of(v)
            if vb >= 0 and vb <= k2 and not m_falls:
                break  # both stuck
            v = double_of(scaled_below_normal(vb, b2))
    return double_of(mb), v
