"""The few array operations every unit and rule shares, written so grouping never changes a bit.

A group of m units with n presynaptic sources keeps its parameters as one array ``P`` of shape
(m, n + 1): row j holds unit j's incoming weights, and the last column its bias. What unit j
currently holds on each incoming synapse is row j of ``H`` (same shape, last column fixed at 1).

The pre-activation of unit j is ``pot_j = Σ_i P[j, i] H[j, i]`` (bias included), reduced along
each row. NumPy reduces each contiguous row with the same algorithm whatever the number of rows,
so a unit computed alone gives the same bits as the same unit inside a fused layer (a test pins
this down). A BLAS matrix product does not promise that, which is why it is not used here.

Each function runs a compiled kernel (:mod:`asyncneurons.learning.compiled`) on contiguous float64
arrays, which gives the same bits as the NumPy formula written in its docstring; other inputs
(broadcast shapes, strided views) take that NumPy formula itself.
"""

from __future__ import annotations

import numpy as np

from asyncneurons.learning import compiled


def _plain(*arrays) -> bool:
    """True when every array is C-contiguous float64 (a compiled kernel applies)."""
    for a in arrays:
        if not (isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.c_contiguous):
            return False
    return True


def potential(P: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Pre-activations ``pot_j = Σ_i P[j, i] · H[j, i]`` for every row j (weights and bias):
    ``(P * H).sum(axis=-1)``, leading axes (replicas) kept."""
    if P.shape == H.shape and P.ndim >= 1 and P.shape[-1] > 0 and _plain(P, H):
        n = P.shape[-1]
        out = np.empty(P.shape[:-1])
        compiled.potential_rows(P.reshape(-1, n), H.reshape(-1, n), out.reshape(-1))
        return out
    return (P * H).sum(axis=-1)


NO_DECAYS = np.empty(0)  # no factor per row: every row decays by the one given


def accumulate_trace(E: np.ndarray, decay, g: np.ndarray, H: np.ndarray) -> None:
    """Eligibility trace ``E ← decay · E + g ⊗ h`` in place (``h`` the inputs): ``E *= decay;
    E += g[..., None] * H``. ``decay`` is one number (λγ) or one factor per row, shaped like
    ``g`` (exponential traces, :mod:`asyncneurons.learning.traces`)."""
    per_row = isinstance(decay, np.ndarray)
    if (E.shape == H.shape and E.ndim >= 1 and g.shape == E.shape[:-1] and _plain(E, g, H) and E.size
            and (not per_row or (decay.shape == g.shape and _plain(decay)))):
        n = E.shape[-1]
        compiled.trace_rows(E.reshape(-1, n), 0.0 if per_row else float(decay),
                            decay.reshape(-1) if per_row else NO_DECAYS, g.reshape(-1), H.reshape(-1, n))
        return
    E *= decay[..., None] if per_row else decay
    E += g[..., None] * H


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic σ(x), clamped to exactly 0 and 1 for |x| ≥ 20 (algorithms.md §2.1):
    ``1 / (1 + exp(−clip(x, −20, 20)))``, then 1 where x ≥ 20 and 0 where x ≤ −20."""
    x = np.asarray(x, dtype=np.float64)
    if not _plain(x):
        x = np.ascontiguousarray(x)
    flat = x.reshape(-1)
    out = np.empty(x.shape)
    o = out.reshape(-1)
    compiled.neg_clamp(flat, 20.0, o)
    np.exp(o, out=o)  # NumPy's exp (its own SIMD routine on AVX-512 machines): the bits it gives
    compiled.logistic_finish(flat, o, 20.0)
    return out


def softplus(x: np.ndarray) -> np.ndarray:
    """softplus(x) = log(1 + eˣ), equal to x above 30 and to 0 below −30 (algorithms.md §2.2):
    ``log1p(exp(clip(x, −30, 30)))`` between."""
    x = np.asarray(x, dtype=np.float64)
    if not _plain(x):
        x = np.ascontiguousarray(x)
    flat = x.reshape(-1)
    out = np.empty(x.shape)
    o = out.reshape(-1)
    compiled.clamp(flat, 30.0, o)
    np.exp(o, out=o)  # exp and log1p stay NumPy's (see asyncneurons.learning.compiled)
    np.log1p(o, out=o)
    compiled.softplus_finish(flat, o, 30.0)
    return out


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
    if Z.ndim == 2 and Z.shape[0] > 0 and _plain(Z):
        out = np.empty(Z.shape[1])
        compiled.sum_rows_ordered(Z, out)
        return out
    if Z.shape[-1] > 1 and Z.flags.c_contiguous:
        return np.add.reduce(Z, axis=-2)
    return np.add.accumulate(Z, axis=-2)[..., -1, :]


def sum_by_sender(blocks, size: int) -> np.ndarray:
    """Sum retrograde blocks per receiving unit, sequentially in ascending sender unit id.

    ``blocks`` are (sender uids, receiver positions, block) with one block row per sender. The
    fixed order makes the sum the same bits whether the senders were one fused group or many
    single units (:func:`sum_rows` adds row after row).
    """
    if len(blocks) == 1:
        uids, pos, block = blocks[0]
        if block.ndim == 2 and compiled.is_identity_block(np.asarray(uids, dtype=np.int64),
                                                          np.asarray(pos, dtype=np.int64), block.shape[1], size):
            return sum_rows(block)
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
