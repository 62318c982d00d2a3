"""The published optimizer: Adam for gradient *ascent*, bias correction for the first steps only,
per-layer learning rates on linear schedules (algorithms.md §1).

For a parameter array θ with update direction g (the raw, batch-1 update)::

    m ← β₁ m + (1 − β₁) g          v ← β₂ v + (1 − β₂) g²          t ← t + 1
    m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)   while t < T_bc   (m̂ = m, v̂ = v from then on)
    θ ← θ + lr · m̂ / (√v̂ + ε)

and ``lr(i) = lr_start + (lr_end − lr_start) · min(i, i_end) / i_end`` at agent step i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asyncneurons.learning import compiled


@dataclass(frozen=True)
class AdamConfig:
    """Adam's constants (published: β₁ 0.9, β₂ 0.999, ε 1e-8 for Weight Max, T_bc 1000)."""

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    bias_correction_steps: int = 1000


def adam_ascent(P: np.ndarray, M: np.ndarray, V: np.ndarray, G: np.ndarray, t: int, lr: float,
                cfg: AdamConfig) -> None:
    """One Adam ascent step on ``P`` in place; ``t`` is the step number after increment (≥ 1).

    Compiled (:func:`asyncneurons.learning.compiled.adam_flat`) for contiguous arrays of one shape, else
    written with one scratch array and in-place NumPy operations; either way the arithmetic is
    exactly ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``, ``θ += (m̂ · lr) / (√v̂ + ε)`` in that
    order of operations.
    """
    if P.shape == M.shape == V.shape == G.shape and _contiguous(P, M, V, G):
        compiled.adam_flat(P.reshape(-1), M.reshape(-1), V.reshape(-1), G.reshape(-1), float(lr),
                           *adam_constants(cfg, t))
        return
    M *= cfg.beta1
    tmp = G * (1.0 - cfg.beta1)
    M += tmp
    np.multiply(G, G, out=tmp)
    tmp *= 1.0 - cfg.beta2
    V *= cfg.beta2
    V += tmp
    if t < cfg.bias_correction_steps:
        np.divide(V, 1.0 - cfg.beta2 ** t, out=tmp)
        np.sqrt(tmp, out=tmp)
        step = M / (1.0 - cfg.beta1 ** t)
        step *= lr
    else:
        np.sqrt(V, out=tmp)
        step = M * lr
    tmp += cfg.eps
    step /= tmp
    P += step


def adam_constants(cfg: AdamConfig, t: int) -> tuple:
    """The scalars of Adam step ``t`` for the compiled kernels: β₁, 1−β₁, β₂, 1−β₂, the bias
    corrections 1−β₁ᵗ and 1−β₂ᵗ (Python floats, as the NumPy formula computes them), whether they
    apply (t < T_bc), and ε."""
    correct = t < cfg.bias_correction_steps
    bc1 = 1.0 - cfg.beta1 ** t if correct else 1.0
    bc2 = 1.0 - cfg.beta2 ** t if correct else 1.0
    b1, b2 = float(cfg.beta1), float(cfg.beta2)
    return (b1, 1.0 - b1, b2, 1.0 - b2, float(bc1), float(bc2), bool(correct), float(cfg.eps))


def _contiguous(*arrays) -> bool:
    for a in arrays:
        if not (isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.c_contiguous):
            return False
    return True


def linear_schedule(start: float, end: float, steps: int, i: int) -> float:
    """``start + (end − start) · min(i, steps) / steps``."""
    return start + (end - start) * min(i, steps) / steps
