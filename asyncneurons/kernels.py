"""The few array operations every unit and rule shares, written so grouping never changes a bit.

A group of m units with n presynaptic sources keeps its parameters as one array ``P`` of shape
(m, n + 1): row j holds unit j's incoming weights, and the last column its bias. What unit j
currently holds on each incoming synapse is row j of ``H`` (same shape, last column fixed at 1).

The pre-activation of unit j is ``pot_j = Σ_i P[j, i] H[j, i]`` (bias included), reduced along
each row. NumPy reduces each contiguous row with the same algorithm whatever the number of rows,
so a unit computed alone gives the same bits as the same unit inside a fused layer (a test pins
this down). A BLAS matrix product does not promise that, which is why it is not used here.
"""

from __future__ import annotations

import numpy as np


def potential(P: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Pre-activations ``pot_j = Σ_i P[j, i] · H[j, i]`` for every row j (weights and bias)."""
    return (P * H).sum(axis=-1)


def accumulate_trace(E: np.ndarray, decay: float, g: np.ndarray, H: np.ndarray) -> None:
    """Eligibility trace ``E ← decay · E + g ⊗ h`` in place (``decay`` = λγ, ``h`` the inputs)."""
    E *= decay
    E += g[..., None] * H


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic σ(x), clamped to exactly 0 and 1 for |x| ≥ 20 (algorithms.md §2.1)."""
    out = np.minimum(np.maximum(x, -20.0), 20.0)  # np.clip, without its Python-level overhead
    np.negative(out, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.divide(1.0, out, out=out)
    out[x >= 20.0] = 1.0
    out[x <= -20.0] = 0.0
    return out


def softplus(x: np.ndarray) -> np.ndarray:
    """softplus(x) = log(1 + eˣ), equal to x above 30 and to 0 below −30 (algorithms.md §2.2)."""
    y = np.log1p(np.exp(np.minimum(np.maximum(x, -30.0), 30.0)))
    return np.where(x > 30.0, x, np.where(x < -30.0, 0.0, y))


def glorot_bound(fan_in: int, fan_out: int) -> float:
    """Glorot-uniform half-width ``a = sqrt(6 / (fan_in + fan_out))``."""
    return float(np.sqrt(6.0 / (fan_in + fan_out)))


def sum_rows(Z: np.ndarray) -> np.ndarray:
    """``Σ_i Z[..., i, :]``, added row after row in the order i = 0, 1, … (the order in which a
    unit-by-unit engine adds its messages).

    NumPy reduces along an axis that is not the fastest in memory by adding whole rows in order
    (its pairwise summation applies only along the fast axis), which gives these bits at a
    fraction of the cost of ``np.add.accumulate``. With a single column the reduced axis becomes
    the fast one, so ``accumulate`` keeps the order there (a test holds both paths to it).
    """
    if Z.shape[-1] > 1 and Z.flags.c_contiguous:
        return np.add.reduce(Z, axis=-2)
    return np.add.accumulate(Z, axis=-2)[..., -1, :]


def sum_by_sender(blocks, size: int) -> np.ndarray:
    """Sum retrograde blocks per receiving unit, sequentially in ascending sender unit id.

    ``blocks`` are (sender uids, receiver positions, block) with one block row per sender. The
    fixed order makes the sum the same bits whether the senders were one fused group or many
    single units (:func:`sum_rows` adds row after row).
    """
    if len(blocks) == 1 and blocks[0][2].shape[1] == size and np.all(np.diff(blocks[0][0]) > 0) \
            and np.array_equal(blocks[0][1], np.arange(size)):
        return sum_rows(blocks[0][2])
    uids = np.concatenate([b[0] for b in blocks])
    if size == 1:  # a single receiving unit: every block is one column already
        Z = np.concatenate([b[2] for b in blocks], axis=0)
    else:
        Z = np.zeros((len(uids), size))
        r = 0
        for u, pos, block in blocks:
            Z[r:r + len(u), pos] = block
            r += len(u)
    return sum_rows(Z[np.argsort(uids, kind="stable")])
