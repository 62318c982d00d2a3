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

    Written with one scratch array and in-place operations; the arithmetic is exactly
    ``θ += lr · m̂ / (√v̂ + ε)`` in that order of operations.
    """
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


def linear_schedule(start: float, end: float, steps: int, i: int) -> float:
    """``start + (end − start) · min(i, steps) / steps``."""
    return start + (end - start) * min(i, steps) / steps
