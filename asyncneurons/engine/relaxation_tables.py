"""The relaxation's compiled calls per firing and per drive, their arrays passed by address.

:func:`~asyncneurons.engine.relaxation_kernels.relax_until` (some 77 calls per environment step of
the published CartPole MAP network under delays) and
:func:`~asyncneurons.engine.relaxation_kernels.gaussian_draw_into` (one per sample, some 97) take
some sixty and forty arrays in nested tuples: numba types and unpacks each of them at every call
(about 4 µs a call). Here they are passed two tables of addresses instead
(:func:`~asyncneurons.engine.history_kernels.checked_addresses`), read back as arrays without a
reference count (``numba.carray``), as the windows and the retrograde queue do: the relaxation's
own arrays in one table (:data:`LOOP_ROWS`, built by :meth:`HistoryRelaxation._table
<asyncneurons.engine.relaxation.HistoryRelaxation._table>` again whenever it replaces one), and a
sampling group's in a table of its own (:data:`DRAW_ROWS`, :func:`draw_table`, built again when
the group's arrays are replaced). The calls are the same compiled functions on the same arrays:
the same bits.
"""

from __future__ import annotations

import numpy as np

from asyncneurons.learning import kernel_cache  # noqa: F401  (stamps the kernel cache before any @njit)
from numba import njit

from asyncneurons.engine.history_kernels import (_b1_1, _f8_1, _f8_2, _f8_3, _i8_1, _i8_2, _i8_3, _u8_1,
                                                 checked_addresses)
from asyncneurons.engine.relaxation_kernels import gaussian_draw_into, relax_until

# The rows of the relaxation's table, each an array of the kind given (f float64, i int64, b bool; its
# number of axes): the groups' buffers (F, I, B, SE, D: relax_until's ``groups``); the steps due
# (next_t, next_k, next_seq, seq); the histories (T, K, S, V, A, head, count, total); the weights'
# (WT, WK, WS, WP, whead, wcount, wtotal); of what lands (rid; the heaps: QA, QS, QE, qsize, nxt, in_src,
# in_col, in_d; the points: LA, LC, LV, LX, lcount, ltotal, front; out_ptr, out_r, out_e, out_d; what is
# known: k_point, k_weights, k_pot, k_lanes, k_lanes_w); ncols; the records left (finished, finished_t);
# the heap of steps due; the steps' scratch (F, I, B, sizes) and the draws' (F, I, sizes).
LOOP_ROWS = ("f1 i1 b1 i3 i2" " f1 i1 i1 i1" " f2 i2 i2 f2 i2 i1 i1 i1" " f2 i2 i2 f3 i1 i1 i1"
             " i1" " f2 i2 i2 i1 i1 i1 i1 f1" " f2 i2 f2 f3 i1 i1 f2" " i1 i1 i1 f1" " i2 i2 f2 f2 i1"
             " i1" " i1 f1" " i1" " f1 i1 b1 i1" " f1 i1 i1").split()
L_GROUPS, L_DUE, L_HIST, L_WEIGHTS, L_RID, L_QUEUE, L_LAND, L_OUTS, L_KNOWN = 0, 5, 9, 17, 24, 25, 33, 40, 44
L_NCOLS, L_FINISHED, L_DUE_HEAP, L_SCRATCH, L_DRAW_SCRATCH = 49, 50, 52, 53, 57

# The rows of a sampling group's table: its weights P, held inputs H, wave tags W, keys (two), counters;
# its fill (rows, columns, lookups, their senders, delays, zeros; the lookups' memory: five); its units;
# where its draws are written (values, means, pre-activations).
DRAW_ROWS = ("f2 f2 i2 u1 u1 i1" " i1 i1 i1 i1 f1 f1" " i1 f1 i1 b1 f1" " i1" " f1 f1 f1").split()


def draw_table(grp) -> np.ndarray:
    """A Gaussian group's table (:data:`DRAW_ROWS`) for :func:`gaussian_draw_at`."""
    values, mu, pot, _ = grp.map_drawn
    arrays = [grp.P, grp.H, grp.T, grp.keys1, grp.keys2, grp.counters, *grp.map_fill[:6], *grp.map_fill[6],
              grp.hist, values, mu, pot]
    return checked_addresses(arrays, DRAW_ROWS, f"group {grp.names[0]}'s draw")


@njit(cache=True, inline="always")
def _hist(tab):  # pragma: no cover - compiled
    h = L_HIST
    return (_f8_2(tab, h), _i8_2(tab, h + 1), _i8_2(tab, h + 2), _f8_2(tab, h + 3), _i8_2(tab, h + 4),
            _i8_1(tab, h + 5), _i8_1(tab, h + 6), _i8_1(tab, h + 7))


@njit(cache=True, inline="always")
def _outs(tab):  # pragma: no cover - compiled
    o = L_OUTS
    return _i8_1(tab, o), _i8_1(tab, o + 1), _i8_1(tab, o + 2), _f8_1(tab, o + 3)


@njit(cache=True)
def relax_until_at(tab, t_lim, pr_lim, inclusive, wm_t, wm_s, serial, landed_on, fexp, flog1p, max_fwd, max_back,
                   period, steps, r0):  # pragma: no cover - compiled
    """:func:`~asyncneurons.engine.relaxation_kernels.relax_until`, its arrays read from ``tab``
    (:data:`LOOP_ROWS`); ``landed_on``: whether anything that lands is kept."""
    g = L_GROUPS
    groups = (_f8_1(tab, g), _i8_1(tab, g + 1), _b1_1(tab, g + 2), _i8_3(tab, g + 3), _i8_2(tab, g + 4))
    w = L_WEIGHTS
    weights = (_f8_2(tab, w), _i8_2(tab, w + 1), _i8_2(tab, w + 2), _f8_3(tab, w + 3), _i8_1(tab, w + 4),
               _i8_1(tab, w + 5), _i8_1(tab, w + 6))
    q, a, k = L_QUEUE, L_LAND, L_KNOWN
    queue = (_f8_2(tab, q), _i8_2(tab, q + 1), _i8_2(tab, q + 2), _i8_1(tab, q + 3), _i8_1(tab, q + 4),
             _i8_1(tab, q + 5), _i8_1(tab, q + 6), _f8_1(tab, q + 7))
    land = (_f8_2(tab, a), _i8_2(tab, a + 1), _f8_2(tab, a + 2), _f8_3(tab, a + 3), _i8_1(tab, a + 4),
            _i8_1(tab, a + 5), _f8_2(tab, a + 6))
    known = (_i8_2(tab, k), _i8_2(tab, k + 1), _f8_2(tab, k + 2), _f8_2(tab, k + 3), _i8_1(tab, k + 4))
    landed = (landed_on, _i8_1(tab, L_RID), queue, land, _outs(tab), max_back, known)
    s = L_SCRATCH
    scratch = (_f8_1(tab, s), _i8_1(tab, s + 1), _b1_1(tab, s + 2), _i8_1(tab, s + 3))
    d, f = L_DUE, L_FINISHED
    return relax_until(groups, _f8_1(tab, d), _i8_1(tab, d + 1), _i8_1(tab, d + 2), _i8_1(tab, d + 3), t_lim, pr_lim,
                       inclusive, wm_t, wm_s, serial, _hist(tab), weights, landed, _i8_1(tab, L_NCOLS), fexp, flog1p,
                       max_fwd, max_back, period, steps, r0, _i8_1(tab, f), _f8_1(tab, f + 1),
                       _i8_1(tab, L_DUE_HEAP), scratch)


@njit(cache=True)
def gaussian_draw_at(tab, gtab, sd, tau, pr, wm, fexp, flog1p, fcos, serial, max_fwd, max_back,
                     landed_on):  # pragma: no cover - compiled
    """:func:`~asyncneurons.engine.relaxation_kernels.gaussian_draw_into`, the relaxation's arrays
    read from ``tab`` (:data:`LOOP_ROWS`), the group's from ``gtab`` (:data:`DRAW_ROWS`)."""
    q = L_QUEUE
    post = (landed_on, (_f8_2(tab, q), _i8_2(tab, q + 1), _i8_2(tab, q + 2), _i8_1(tab, q + 3), _i8_1(tab, q + 4)),
            _outs(tab))
    s = L_DRAW_SCRATCH
    scratch = (_f8_1(tab, s), _i8_1(tab, s + 1), _i8_1(tab, s + 2))
    fill = (_i8_1(gtab, 6), _i8_1(gtab, 7), _i8_1(gtab, 8), _i8_1(gtab, 9), _f8_1(gtab, 10), _f8_1(gtab, 11),
            (_i8_1(gtab, 12), _f8_1(gtab, 13), _i8_1(gtab, 14), _b1_1(gtab, 15), _f8_1(gtab, 16)))
    return gaussian_draw_into(_f8_2(gtab, 0), _f8_2(gtab, 1), _i8_2(gtab, 2), _u8_1(gtab, 3), _u8_1(gtab, 4),
                              _i8_1(gtab, 5), sd, fill, _hist(tab), tau, pr, wm, fexp, flog1p, fcos, _i8_1(gtab, 17),
                              serial, max_fwd, max_back, post, _f8_1(gtab, 18), _f8_1(gtab, 19), _f8_1(gtab, 20),
                              scratch)


__all__ = ["DRAW_ROWS", "LOOP_ROWS", "draw_table", "gaussian_draw_at", "relax_until_at"]
