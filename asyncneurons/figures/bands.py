"""Bands and error bars of figures: the bootstrap confidence interval of a mean across seeds, or
the standard deviation. Small pure functions over arrays; nothing here draws."""

from __future__ import annotations

import warnings

import numpy as np

BANDS = ("ci", "std")
N_BOOT = 2000
BOOT_SEED = 20240917  # fixed: a figure is the same every time it is drawn


def bootstrap_ci(samples, level: float = 0.95, n_boot: int = N_BOOT, seed: int = BOOT_SEED):
    """The percentile-bootstrap confidence interval of the mean of ``samples`` along axis 0.

    ``samples`` has shape (n, …): n seeds, each a value (or a row of values, e.g. one per
    episode; NaN marks a missing value). Resample b = 1 … ``n_boot``: draw n seeds with
    replacement, c_bi = how often seed i was drawn, and take the mean
    m_b = Σ_i c_bi x_i / Σ_i c_bi over the seeds present; the interval is the (1 − level)/2 and
    (1 + level)/2 quantiles of m_1 … m_B. The draws come from a generator seeded with ``seed``,
    so the interval is deterministic. Returns (low, high) with the shape of one sample.
    """
    x = np.asarray(samples, dtype=np.float64)
    n = x.shape[0]
    flat = x.reshape(n, -1)
    present = np.isfinite(flat)
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (counts @ np.where(present, flat, 0.0)) / (counts @ present)
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(means, [alpha, 1.0 - alpha], axis=0) if means.size else (means, means)
    return low.reshape(x.shape[1:]), high.reshape(x.shape[1:])


def spread(samples, band: str):
    """(mean, low, high) across seeds (axis 0) of ``samples``: the bootstrap CI (``"ci"``) or
    mean ± population std (``"std"``)."""
    x = np.asarray(samples, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(x, axis=0)
            if band == "std":
                std = np.nanstd(x, axis=0)
                return mean, mean - std, mean + std
    low, high = bootstrap_ci(x)
    return mean, low, high


def band_text(band: str) -> str:
    return "band: 95 % bootstrap CI of the mean" if band == "ci" else "band: mean ± std"
