"""Tested claims: does a reproduced cell agree with the published one?

A published cell is a mean and a population standard deviation (ddof = 0) over n runs of each
run's average return (algorithms.md §1.2); ours is the same metric over our runs. The two are
compared by a two-sided Welch t-test, from the summary statistics of both samples:

    s = σ · √(n / (n − 1))                      (sample std from a population std)
    t = (x̄₁ − x̄₂) / √(s₁²/n₁ + s₂²/n₂)
    ν = (s₁²/n₁ + s₂²/n₂)² / ((s₁²/n₁)²/(n₁ − 1) + (s₂²/n₂)²/(n₂ − 1))     (Welch–Satterthwaite)
    p = 2 · P(T_ν > |t|)

The verdict at level α (0.05): ``consistent`` when p ≥ α, else ``significantly below`` or
``significantly above`` by the sign of t. Our mean also gets its 95 % confidence interval,
``x̄ ± t_{0.975, n−1} · s / √n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

ALPHA = 0.05
PUBLISHED_RUNS = 10


def sample_std(population_std: float, n: int) -> float:
    """The sample std (ddof = 1) of n values whose population std (ddof = 0) is given."""
    return population_std * math.sqrt(n / (n - 1))


def welch(mean1: float, std1: float, n1: int, mean2: float, std2: float, n2: int) -> tuple[float, float, float]:
    """(t, ν, two-sided p) of Welch's test; ``std1``, ``std2`` are sample stds (ddof = 1)."""
    v1, v2 = std1 ** 2 / n1, std2 ** 2 / n2
    se2 = v1 + v2
    if se2 == 0.0:
        return (0.0 if mean1 == mean2 else math.copysign(math.inf, mean1 - mean2)), math.nan, \
            (1.0 if mean1 == mean2 else 0.0)
    t = (mean1 - mean2) / math.sqrt(se2)
    df = se2 ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1))
    p = 2.0 * float(student_t.sf(abs(t), df))
    return t, df, p


def confidence_interval(values, level: float = 0.95) -> tuple[float, float]:
    """``x̄ ± t_{(1+level)/2, n−1} · s / √n`` of the values (n ≥ 2)."""
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    half = float(student_t.ppf(0.5 + level / 2.0, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return float(x.mean()) - half, float(x.mean()) + half


@dataclass(frozen=True)
class Claim:
    """Our runs of one cell against its published mean and population std."""

    mean: float
    std: float  # population std (ddof = 0), as published
    n: int
    ci: tuple[float, float]
    t: float
    df: float
    p: float
    verdict: str  # consistent, significantly below, significantly above


def judge(values, published_mean: float, published_std: float, published_n: int = PUBLISHED_RUNS,
               alpha: float = ALPHA) -> Claim:
    """Two-sided Welch test of our per-run values against a published mean (population std)."""
    x = np.asarray(values, dtype=np.float64)
    t, df, p = welch(float(x.mean()), float(x.std(ddof=1)), x.size,
                     published_mean, sample_std(published_std, published_n), published_n)
    verdict = "consistent" if p >= alpha else ("significantly below" if t < 0 else "significantly above")
    return Claim(float(x.mean()), float(x.std()), int(x.size), confidence_interval(x), t, df, p, verdict)

__all__ = ["ALPHA", "Claim", "PUBLISHED_RUNS", "confidence_interval", "sample_std", "judge", "welch"]
