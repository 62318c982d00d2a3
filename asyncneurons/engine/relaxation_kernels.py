"""Compiled reads of MAP relaxation histories (:mod:`asyncneurons.engine.relaxation`).

Every unit keeps a short history of what it has sent forward: its samples and relaxed values,
each with its send time ``t``, its relaxation step ``k`` (0 for a sample or an observation) and
a serial number (the order in which entries were made). What a reader holds is found in these
histories, never by a message per synapse: each lookup (a unit, after given hops) keeps a cursor
that moves forward with the reader's time (:func:`held_from`) and remembers its answer while
nothing new has arrived (:func:`_held`).

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
two equal.

A relaxation step is compiled whole (:func:`relax_group`: reads, softplus, error terms, the sum
of the messages, the step, the entry in the history). Its ``exp`` and ``log1p`` are NumPy's own
float64 loops, called by address (:func:`numpy_loop`), not the C library's, whose last bits differ
for about 5 % of values on AVX-512 machines: so the step gives the bits of the NumPy functions
every other path uses (:func:`asyncneurons.learning.kernels.softplus`, :func:`~asyncneurons.learning.kernels.sigmoid`,
the categorical policy), and a test holds them equal.

The kernels that only read and write arrays they are given (the lookups, the histories' entries,
the heaps of what lands) are compiled without numba's reference counting (``_nrt=False``, :data:`NO_REFCOUNTS`): with
it, every array a call receives costs two atomic calls (a count taken on entry, given back on
exit), and these kernels are called per read unit and per step with tens of arrays each. They make
no array (NumPy's pairwise sum keeps its stack in arrays given to it, :func:`pairwise_with`).
"""

from __future__ import annotations

import ctypes

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic
from asyncneurons.learning import kernel_cache  # noqa: F401  (stamps the kernel cache before any @njit)
from asyncneurons.learning.compiled import _clamp, reinforce_rows, trace_rows, uniforms_into
from numba.core import cpu as _cpu

# ``_nrt`` is an option numba's CPU target declares but does not document: ask for it only where
# the installed numba declares it (elsewhere the kernels keep their reference counts: slower, same bits).
NO_REFCOUNTS = {"_nrt": False} if hasattr(_cpu.CPUTargetOptions, "_nrt") else {}

DELIVER = 100_000
R0 = 300_000
FORWARD, ERROR = 0, 1  # landing class of a hop: the value itself, or the error term it caused


@njit(cache=True, **NO_REFCOUNTS)
def landing_class(k, mode):
    if mode == ERROR:
        return R0 + 4 * k + 3
    if k == 0:
        return DELIVER
    return R0 + 4 * k + 1


@njit(cache=True, **NO_REFCOUNTS)
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


@njit(cache=True, **NO_REFCOUNTS)
def pairwise_with(a, lo, n, stack, partial):
    """NumPy's pairwise sum: blocks of at most 128, halves (rounded down to a multiple of 8)
    added recursively; written with an explicit stack (post-order) in ``stack`` (3 × 64 integers:
    start, length, stage) and ``partial`` (64 floats), so that it makes no array."""
    if n <= 128:
        return _block(a, lo, n)
    stack_lo, stack_n, stage = stack[0], stack[1], stack[2]
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
def _pairwise(a, lo, n):
    """:func:`pairwise_with`, with a stack of its own."""
    if n <= 128:
        return _block(a, lo, n)
    return pairwise_with(a, lo, n, np.zeros((3, 64), dtype=np.int64), np.zeros(64))


@njit(cache=True)
def row_potential(x):
    """``Σ_i x_i`` in NumPy's order for a contiguous row (x = P_row · H_row)."""
    return 0.0 + _pairwise(x, 0, x.size)


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def held_from(T, K, S, head, count, total, u, d1, d2, mode, tau, pr, wm, cur, c):
    """Physical slot of the newest entry of unit ``u`` held by a reader at (τ, pr) after hops
    ``d1`` and ``d2`` (``mode``: the landing class of the last hop), or −1.

    ``cur[c]`` counts the entries of unit ``u`` (numbered from its first, ever) that had arrived
    by the time this lookup was last made; a reader's time never decreases, so they have arrived
    now too, and the search moves on from there (usually by none or one entry). ``total[u]`` is
    the number of entries ever made; the newest is in slot ``head[u] − 1``. A cursor older than
    the oldest entry kept (or reset) starts at that entry. Returns the slot found, or −1."""
    D = T.shape[1]
    tot = total[u]
    oldest = tot - count[u]
    a = cur[c]
    if a < oldest:
        a = oldest
    while a < tot:
        s = head[u] - (tot - a)
        if s < 0:
            s += D
        if (T[u, s] + d1) + d2 <= tau:
            a += 1
        else:
            break
    cur[c] = a
    i = a - 1
    while i >= oldest:
        s = head[u] - (tot - i)
        if s < 0:
            s += D
        if (T[u, s] + d1) + d2 < tau:
            return s
        if landing_class(K[u, s], mode) < pr or S[u, s] < wm:
            return s
        i -= 1
    return -1


def lookups(n: int) -> tuple:
    """The memory of ``n`` lookups (see :func:`_held`): cursor, next arrival, entries seen, settled, value."""
    return (np.zeros(n, dtype=np.int64), np.full(n, -np.inf), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.bool_),
            np.zeros(n))


@njit(cache=True)
def _held(src, d1, d2, mode, T, K, S, V, head, count, total, tau, pr, wm, memory):
    """The value of each lookup i (unit ``src[i]`` after hops ``d1[i]``, ``d2[i]``), 0 before any
    (:func:`held_into`, into a new array)."""
    out = np.empty(src.size)
    held_into(src, d1, d2, mode, T, K, S, V, head, count, total, tau, pr, wm, memory, out)
    return out


@njit(cache=True, **NO_REFCOUNTS)
def held_into(src, d1, d2, mode, T, K, S, V, head, count, total, tau, pr, wm, memory, out):
    """The value of each lookup i (unit ``src[i]`` after hops ``d1[i]``, ``d2[i]``), 0 before any,
    into ``out``.

    A lookup remembers its answer (``last``) and whether it is *settled*: the entry held is the
    newest that had arrived, strictly before the reader's time (or none had arrived), so that only
    a new arrival can change it. It also remembers when the next entry arrives (``nxt``), or, when
    there was none, how many entries its unit had made (``seen``; −1 when a next one existed). A
    settled lookup whose next entry has not arrived and whose unit has made no new entry answers
    as before; any other is searched (:func:`held_from`)."""
    cur, nxt, seen, settled, last = memory
    D = T.shape[1]
    for i in range(src.size):
        u = src[i]
        if settled[i] and nxt[i] > tau and (seen[i] < 0 or seen[i] == total[u]):
            out[i] = last[i]
            continue
        s = held_from(T, K, S, head, count, total, u, d1[i], d2[i], mode, tau, pr, wm, cur, i)
        v = V[u, s] if s >= 0 else 0.0
        out[i], last[i] = v, v
        a, tot = cur[i], total[u]
        newest = head[u] - (tot - a) - 1  # slot of the newest entry arrived
        if newest < 0:
            newest += D
        if s < 0:
            settled[i] = a == tot - count[u]
        else:
            settled[i] = s == newest and (T[u, s] + d1[i]) + d2[i] < tau
        if a < tot:
            sa = newest + 1
            if sa >= D:
                sa -= D
            nxt[i], seen[i] = (T[u, sa] + d1[i]) + d2[i], -1
        else:
            nxt[i], seen[i] = np.inf, tot


@njit(cache=True)
def fill_inputs(H, f_row, f_col, f_look, l_src, l_d, l_zero, l_mem, T, K, S, V, head, count, total, tau, pr, wm):
    """Write into ``H`` what a group holds on its synapses at (τ, pr) (0 before any arrival).
    Synapse e (row ``f_row[e]``, column ``f_col[e]``) holds lookup ``f_look[e]``; synapses from
    one sender with one delay share a lookup (and its memory ``l_mem``, :func:`_held`)."""
    fill_inputs_with(H, f_row, f_col, f_look, l_src, l_d, l_zero, l_mem, T, K, S, V, head, count, total, tau, pr, wm,
                     np.empty(l_src.size))


@njit(cache=True, **NO_REFCOUNTS)
def fill_inputs_with(H, f_row, f_col, f_look, l_src, l_d, l_zero, l_mem, T, K, S, V, head, count, total, tau, pr, wm,
                     vals):
    """:func:`fill_inputs`, the lookups' values kept in ``vals`` (one per lookup)."""
    held_into(l_src, l_d, l_zero, FORWARD, T, K, S, V, head, count, total, tau, pr, wm, l_mem, vals)
    for e in range(f_row.size):
        H[f_row[e], f_col[e]] = vals[f_look[e]]


@njit(cache=True, **NO_REFCOUNTS)
def read_senders(q_ptr, q_units, q_dr, e_qu, e_col, x_ptr, x_col, x_look, l_src, l_d1, l_d2, ncols,
                 T, K, S, V, A, head, count, total, WT, WK, WS, WP, whead, wcount, wtotal, tau, pr, wm,
                 cursors, landed, pot, val, act, seen, w, held, widx, x, stack, partial):
    """The state of each queried sender as its error term reaches the reader at (τ, pr).

    Query q is a set of units (one unit, or a whole population output) and a retrograde delay
    ``q_dr[q]``. For each of its units: the value it holds (``val``), its pre-activation
    recomputed from the inputs it held (``pot``, every input carried two hops: forward to the
    sender, back to the reader) with the weights it had (the last weight change whose error has
    arrived); ``act`` the action of the population, ``seen`` whether any sample of the sender
    has been answered by an error that has arrived. ``w[e]`` is the weight of edge e's synapse.
    Query unit j's inputs are ``x_ptr[j] … x_ptr[j + 1]``: column ``x_col`` holds lookup ``x_look``
    (unit ``l_src`` after hops ``l_d1``, ``l_d2``; equal lookups are shared). ``cursors`` are
    those of the lookups, of each query unit's value and of its weights (:func:`held_from`) and
    of its landed inputs. Those come from what has landed on the unit (``landed``,
    :func:`landed_inputs`) when that tells, else input by input. Returns :data:`OK`, or what is
    full (grow it and read again: what was read stays read). Scratch: ``held`` (one per lookup),
    ``widx`` (one per query unit), ``x`` (a row of ``WP``), ``stack`` and ``partial``
    (:func:`pairwise_with`).
    """
    l_mem, v_cur, w_cur, r_cur = cursors
    on, rid, queue, land, outs, max_back, known = landed
    QA, qsize = queue[0], queue[3]
    LA, lcount, ltotal = land[0], land[4], land[5]
    k_point, k_weights, k_pot = known[0], known[1], known[2]
    mask = LA.shape[1] - 1
    looked = False
    for q in range(q_ptr.size - 1):
        dr = q_dr[q]
        seen[q] = True
        act[q] = 0
        for j in range(q_ptr[q], q_ptr[q + 1]):
            u = q_units[j]
            s = held_from(T, K, S, head, count, total, u, 0.0, dr, ERROR, tau, pr, wm, v_cur, j)
            if s < 0:
                seen[q] = False
                val[j] = 0.0
            else:
                val[j] = V[u, s]
                act[q] = A[u, s]
            ws = held_from(WT, WK, WS, whead, wcount, wtotal, u, 0.0, dr, ERROR, tau, pr, wm, w_cur, j)
            widx[j] = ws
            nc = ncols[u]
            told = False
            if on:
                r = rid[u]
                if qsize[r] > 0 and QA[r, 0] <= tau:  # something has landed since (else the call returns at once)
                    if extend_landed(r, tau, max_back, queue, land, T, S, V, head, count, total, u, nc, known, WS,
                                     WP, whead) != OK:
                        return LANDED_FULL
                lo = _landed_until(r, dr, tau, LA, lcount, ltotal, r_cur, j)
                if lo >= 0:  # the pre-activation after point lo, with these weights: computed once
                    told = True
                    slot, wid = lo & mask, WS[u, ws]
                    if k_point[r, slot] != lo or k_weights[r, slot] != wid:
                        products_at(r, lo, land, x, nc, WP[u, ws])
                        k_point[r, slot], k_weights[r, slot] = lo, wid
                        k_pot[r, slot] = 0.0 + pairwise_with(x, 0, nc, stack, partial)  # row_potential(x[:nc])
                    pot[j] = k_pot[r, slot]
            if not told:
                if not looked:
                    held_into(l_src, l_d1, l_d2, ERROR, T, K, S, V, head, count, total, tau, pr, wm, l_mem, held)
                    looked = True
                x[:nc] = 0.0
                for e in range(x_ptr[j], x_ptr[j + 1]):
                    x[x_col[e]] = held[x_look[e]]
                x[nc - 1] = 1.0
                for c in range(nc):
                    x[c] = WP[u, ws, c] * x[c]
                pot[j] = 0.0 + pairwise_with(x, 0, nc, stack, partial)  # row_potential(x[:nc])
    for e in range(e_qu.size):
        j = e_qu[e]
        w[e] = WP[q_units[j], widx[j], e_col[e]]
    return OK


@njit(cache=True, **NO_REFCOUNTS)
def _everywhere(T_next, S_next, d1, d2, t, wm):
    """Whether an entry sent at ``T_next`` is held by every reader from now on, after hops of at
    most ``d1`` and ``d2`` (then every older entry of its unit can be dropped)."""
    a = (T_next + d1) + d2
    return a < t or (a == t and S_next < wm)


@njit(cache=True, **NO_REFCOUNTS)
def append(T, K, S, V, A, head, count, total, units, t, k, values, action, serial, d1, d2, wm, posting):
    """Append an entry per unit. Returns :data:`OK`, or :data:`HISTORY_FULL` (nothing written)
    when some history is full and its oldest entry may still be read: an entry is dropped once
    the next one is held everywhere, after the longest forward and retrograde delays ``d1`` and
    ``d2`` (``wm``: see :func:`held_from`). A synapse to a read unit (:func:`extend_landed`) that
    had nothing in flight enters that unit's queue of synapses (``posting``: :func:`posting`)."""
    on, queue, outs = posting
    out_ptr, out_r, out_e, out_d = outs
    nxt = queue[4]
    D = T.shape[1]
    for i in range(units.size):
        u = units[i]
        if count[u] == D:
            nx = (head[u] + 1) % D
            if not _everywhere(T[u, nx], S[u, nx], d1, d2, t, wm):
                return HISTORY_FULL
    for i in range(units.size):
        u = units[i]
        if on:
            for e in range(out_ptr[u], out_ptr[u + 1]):
                if nxt[out_e[e]] == total[u]:  # nothing of u in flight on this synapse
                    push_synapse(queue, out_r[e], t + out_d[e], serial, out_e[e])
        s = head[u] % D
        T[u, s] = t
        K[u, s] = k
        S[u, s] = serial
        V[u, s] = values[i]
        A[u, s] = action
        head[u] = (s + 1) % D
        total[u] += 1
        if count[u] < D:
            count[u] += 1
    return OK


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def posting(landed):
    """What :func:`append` takes of what lands (:func:`extend_landed`): whether anything is kept,
    the read units' heaps of synapses and the synapses' cursors (``QA``, ``QS``, ``QE``, ``qsize``,
    ``nxt``), and each unit's synapses to read units (``out_ptr``, ``out_r``, ``out_e``, ``out_d``)."""
    on, rid, queue, land, outs, max_back, known = landed
    return on, (queue[0], queue[1], queue[2], queue[3], queue[4]), outs


@njit(cache=True, **NO_REFCOUNTS)
def append_weights(WT, WS, WP, whead, wcount, wtotal, units, t, P, serial, d2, wm):
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
        wtotal[u] += 1
        if wcount[u] < D:
            wcount[u] += 1
    return True


@njit(cache=True)
def reinforce_and_snapshot(Ps, Ms, Vs, Es, units, delta, lrs, adam, reset, start, reinforced, weights, t, serial, d2,
                           wm, R, U):
    """Groups ``start``, ``start + 1`` … learn from one TD error and enter their new weights in the
    weights' history, each in turn as :func:`asyncneurons.learning.rules.base.reinforce_update` and
    :func:`append_weights` do one group (the same kernels: the same bits): ``P ← P + Adam(E · R)``
    at rate ``lrs[g]`` with Adam's scalars ``adam[g]`` (:func:`asyncneurons.learning.optim.adam_constants`,
    ``correct`` as 1.0 or 0.0), then the snapshot as entry ``serial + g − start`` (``t``, ``d2``,
    ``wm``: :func:`append_weights`), then the trace cleared when ``reset``; every row's reward is
    ``delta``. ``reinforced``: group ``start`` has learned already (a call stopped at its
    snapshot). Returns the number of groups done from ``start``; fewer than all when the weights'
    history is full (grow it and call again from the group returned, ``reinforced``). ``R`` and
    ``U``: scratch (as long as the most rows, and the most weights, of a group)."""
    WT, WS, WP, whead, wcount, wtotal = weights
    for g in range(start, len(Ps)):
        P = Ps[g]
        m, n = P.shape
        if not (g == start and reinforced):
            for j in range(m):
                R[j] = delta
            c = adam[g]
            reinforce_rows(P, Ms[g], Vs[g], Es[g], R[:m], lrs[g], c[0], c[1], c[2], c[3], c[4], c[5], c[6] != 0.0,
                           c[7], U[:m * n].reshape((m, n)))
        if not append_weights(WT, WS, WP, whead, wcount, wtotal, units[g], t, P, serial + g - start, d2, wm):
            return g - start
        if reset:
            E = Es[g]
            for j in range(m):
                for k in range(n):
                    E[j, k] = 0.0
    return len(Ps) - start


# ---------------------------------------------------------------------- NumPy's exp and log1p
# A compiled loop calling the C library's exp or log1p gets other last bits than NumPy, whose
# float64 loops are its own SIMD routines on AVX-512 machines (about 5 % of values differ). The
# relaxation step calls NumPy's loops themselves: NumPy's C API publishes each ufunc's loops
# (``PyUFuncObject.functions``, one per type signature), which compiled code can call through their
# published signature ``loop(char **args, npy_intp *dimensions, npy_intp *steps, void *data)``,
# passed to compiled code as an address. Every element is computed alone, whatever the array's
# length (a test holds the bits to NumPy's).


def numpy_loop(ufunc) -> int:
    """The address of NumPy's float64 → float64 loop of a one-argument ufunc."""
    base, ptr, cint = id(ufunc), ctypes.c_void_p, ctypes.c_int
    # PyUFuncObject: PyObject_HEAD; int nin, nout, nargs, identity; functions; data; int ntypes, reserved1;
    # const char *name, *types
    # The offsets hold for 64-bit CPython builds whose object header is two words; each read is
    # checked against what the ufunc publishes before a loop is taken from it.
    nargs = cint.from_address(base + 24).value
    functions, ntypes = ptr.from_address(base + 32).value, cint.from_address(base + 48).value
    if ctypes.sizeof(ptr) != 8 or nargs != ufunc.nargs or ntypes != ufunc.ntypes:
        raise RuntimeError(f"NumPy's {ufunc.__name__} is not laid out as this module reads it")
    types = ctypes.string_at(ptr.from_address(base + 64).value, ntypes * nargs)
    double = np.dtype(np.float64).num
    for i in range(ntypes):
        if nargs == 2 and types[2 * i] == double and types[2 * i + 1] == double:
            if ufunc.types[i] != "d->d":
                raise RuntimeError(f"NumPy's {ufunc.__name__} is not laid out as this module reads it")
            return ptr.from_address(functions + 8 * i).value
    raise RuntimeError(f"NumPy's {ufunc.__name__} has no float64 loop")


EXP, LOG1P, COS = numpy_loop(np.exp), numpy_loop(np.log1p), numpy_loop(np.cos)


@intrinsic
def _call_loop(typingctx, address, args, dims, steps):
    """Call the ufunc loop at ``address`` with the addresses of its arguments (no data)."""
    def codegen(context, builder, signature, a):
        byte_ptr = ir.IntType(8).as_pointer()
        loop_type = ir.FunctionType(ir.VoidType(), [byte_ptr] * 4)
        loop = builder.inttoptr(a[0], loop_type.as_pointer())
        builder.call(loop, [builder.inttoptr(v, byte_ptr) for v in a[1:]] + [ir.Constant(byte_ptr, None)])
        return context.get_dummy_value()
    return types.void(types.intp, types.intp, types.intp, types.intp), codegen


@njit(cache=True)
def apply_loop(loop, x, out):
    """``out = f(x)`` elementwise with NumPy's loop at address ``loop`` (contiguous float64 arrays)."""
    args = np.empty(2, np.intp)
    args[0], args[1] = x.ctypes.data, out.ctypes.data
    dims = np.empty(1, np.intp)
    dims[0] = x.size
    steps = np.empty(2, np.intp)
    steps[0], steps[1] = 8, 8
    _call_loop(loop, args.ctypes.data, dims.ctypes.data, steps.ctypes.data)


@njit(cache=True, **NO_REFCOUNTS)
def apply_loop_with(loop, x, out, la):
    """:func:`apply_loop` with its arguments, length and strides written to ``la`` (5 intp)."""
    la[0], la[1], la[2], la[3], la[4] = x.ctypes.data, out.ctypes.data, x.size, 8, 8
    base = la.ctypes.data
    _call_loop(loop, base, base + 16, base + 24)


@njit(cache=True, **NO_REFCOUNTS)
def softplus_with(x, out, fexp, flog1p, la):
    """:func:`asyncneurons.learning.kernels.softplus`: ``log1p(exp(clip(x, −30, 30)))``, x above 30, 0
    below −30, with NumPy's loops by address; their arguments go in ``la`` (:func:`apply_loop_with`)."""
    for j in range(x.size):
        out[j] = _clamp(x[j], -30.0, 30.0)
    apply_loop_with(fexp, out, out, la)
    apply_loop_with(flog1p, out, out, la)
    for j in range(x.size):
        if x[j] > 30.0:
            out[j] = x[j]
        elif x[j] < -30.0:
            out[j] = 0.0


@njit(cache=True, **NO_REFCOUNTS)
def sigmoid_with(x, out, fexp, la):
    """:func:`asyncneurons.learning.kernels.sigmoid`: ``1 / (1 + exp(−clip(x, −20, 20)))``, 1 from 20, 0
    to −20, with NumPy's loop by address; its arguments go in ``la`` (:func:`apply_loop_with`)."""
    for j in range(x.size):
        out[j] = -_clamp(x[j], -20.0, 20.0)
    apply_loop_with(fexp, out, out, la)
    for j in range(x.size):
        v = 1.0 / (out[j] + 1.0)
        if x[j] >= 20.0:
            v = 1.0
        elif x[j] <= -20.0:
            v = 0.0
        out[j] = v


@njit(cache=True)
def softplus_into(x, out, fexp, flog1p):
    """:func:`softplus_with` with an argument array of its own."""
    softplus_with(x, out, fexp, flog1p, np.empty(5, np.intp))


@njit(cache=True)
def sigmoid_into(x, out, fexp):
    """:func:`sigmoid_with` with an argument array of its own."""
    sigmoid_with(x, out, fexp, np.empty(5, np.intp))


def draw_scratch(m: int, n: int, n_fill: int) -> tuple:
    """The working arrays of :func:`gaussian_draw_into` for groups of at most ``m`` units with ``n``
    inputs each and ``n_fill`` lookups of what they hold, in two buffers (float, integer) with
    their sizes: three arrays to hand over instead of seven (:func:`draw_views` gives the arrays)."""
    sizes = np.array([m, n, n_fill], dtype=np.int64)
    return np.zeros(n_fill + n + 2 * m + 64), np.zeros(5 + 3 * 64, dtype=np.int64), sizes


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def draw_views(F, I, sizes):
    """The working arrays of :func:`gaussian_draw_into` as views of the buffers of
    :func:`draw_scratch`: the lookups' values (n_fill), a row of products (n), two rows of
    uniforms (m each), the loop's arguments (5), the pairwise sum's stack (3 × 64) and partial
    sums (64)."""
    m, n, nf = sizes[0], sizes[1], sizes[2]
    return (F[0:nf], F[nf:nf + n], F[nf + n:nf + n + m], F[nf + n + m:nf + n + 2 * m],
            I[0:5], I[5:5 + 3 * 64].reshape((3, 64)), F[nf + n + 2 * m:nf + n + 2 * m + 64])


@njit(cache=True, **NO_REFCOUNTS)
def gaussian_draw_into(P, H, W, keys1, keys2, counters, sd, fill, hist, tau, pr, wm, fexp, flog1p, fcos, units,
                       serial, max_fwd, max_back, post, values, mu, pot, scratch):
    """A group of Gaussian units samples at (τ, pr): what it holds is filled in first
    (:func:`fill_inputs`), then each unit draws ``μ + sd · sqrt(−2 log1p(−u₁)) cos(2π u₂)``,
    μ = softplus(pot), u₁ and u₂ its keyed uniforms at its counter
    (:func:`asyncneurons.learning.units._gaussian_sample`, :func:`asyncneurons.learning.kernels.potential`,
    the same bits: NumPy's ``log1p``, ``cos`` and ``exp`` by address), and the sample enters the
    history as entry ``serial`` of ``units`` (:func:`append`; ``post``: :func:`posting`). The values,
    μ and pre-activations are written to ``values``, ``mu`` and ``pot`` (one per unit), the working
    arrays are those of ``scratch`` (:func:`draw_scratch`, its buffers): no array is made. Returns
    (the oldest wave it holds, the least of ``W``; what :func:`append` returned)."""
    T, K, S, V, A, head, count, total = hist
    f_row, f_col, f_look, l_src, l_d, l_zero, l_mem = fill
    SF, SI, sizes = scratch
    vals, x, u1, u2, la, stack, partial = draw_views(SF, SI, sizes)
    fill_inputs_with(H, f_row, f_col, f_look, l_src, l_d, l_zero, l_mem, T, K, S, V, head, count, total, tau, pr, wm,
                     vals[:l_src.size])
    m, n = P.shape
    x, u1, u2 = x[:n], u1[:m], u2[:m]
    for r in range(m):
        for c in range(n):
            x[c] = P[r, c] * H[r, c]
        pot[r] = 0.0 + pairwise_with(x, 0, n, stack, partial)  # row_potential(x)
    softplus_with(pot, mu, fexp, flog1p, la)
    uniforms_into(keys1, counters, u1)
    uniforms_into(keys2, counters, u2)
    for r in range(m):
        u1[r] = -u1[r]
        u2[r] = (2.0 * np.pi) * u2[r]
    apply_loop_with(flog1p, u1, u1, la)
    apply_loop_with(fcos, u2, u2, la)
    for r in range(m):
        values[r] = mu[r] + sd * (np.sqrt(-2.0 * u1[r]) * u2[r])
    wave = W[0, 0]
    for r in range(W.shape[0]):
        for c in range(W.shape[1]):
            if W[r, c] < wave:
                wave = W[r, c]
    code = append(T, K, S, V, A, head, count, total, units, tau, 0, values, 0, serial, max_fwd, max_back, wm, post)
    return wave, code


# ---------------------------------------------------------------------- a relaxation step
GAUSSIAN, LINEAR_GAUSSIAN, CATEGORICAL, SOFTMAX = 0, 1, 2, 3
KIND_CODES = {"gaussian": GAUSSIAN, "linear_gaussian": LINEAR_GAUSSIAN, "categorical": CATEGORICAL,
              "softmax": SOFTMAX}


@njit(cache=True, **NO_REFCOUNTS)
def _policy_error(pot, val, lo, n, temperature, action, free, e, fexp, scratch, la, stack, partial):
    """:func:`asyncneurons.learning.rules.map_prop.map_error` of a categorical (``free`` = False) or softmax
    output (its last logit fixed at 0): ``(onehot(a) − π)/T``, π = softmax(pot/T) with the largest
    subtracted and clamped at −30, written to ``e[lo : lo + n]`` (the logits in ``scratch``)."""
    m = n + 1 if free else n
    z = scratch[:m]
    for i in range(n):
        z[i] = pot[lo + i] / temperature
    if free:
        z[n] = 0.0 / temperature
    mx = z[0]
    for i in range(1, m):
        if z[i] != z[i]:
            mx = z[i]  # np.max propagates NaN
            break
        if z[i] > mx:
            mx = z[i]
    for i in range(m):
        z[i] = z[i] - mx
        if z[i] < -30.0:
            z[i] = -30.0
    apply_loop_with(fexp, z, z, la)
    total = 0.0 + pairwise_with(z, 0, m, stack, partial)  # row_potential(z)
    for i in range(n):
        onehot = 1.0 if i == action else 0.0
        e[lo + i] = (onehot - z[i] / total) / temperature


@njit(cache=True)
def error_terms(q_ptr, q_kind, q_var, q_temp, pot, val, act, e, fexp, flog1p):
    """Each queried unit's error term e (:func:`asyncneurons.learning.rules.map_prop.map_error`): a Gaussian
    unit's ``(h − softplus(pot)) σ(pot)/σ²``, a linear-Gaussian output's ``(h − pot)/σ²``, a
    population output's ``(onehot(a) − π)/T``."""
    n = pot.size
    error_terms_with(q_ptr, q_kind, q_var, q_temp, pot, val, act, e, fexp, flog1p, np.empty(n), np.empty(n),
                     np.empty(n + 1), np.empty(5, np.intp), np.empty((3, 64), np.int64), np.empty(64))


@njit(cache=True, **NO_REFCOUNTS)
def error_terms_with(q_ptr, q_kind, q_var, q_temp, pot, val, act, e, fexp, flog1p, sp, sg, z, la, stack, partial):
    """:func:`error_terms` in scratch arrays: ``sp``, ``sg`` (as long as ``pot``), ``z`` (one more),
    ``la`` (:func:`apply_loop_with`), ``stack`` and ``partial`` (:func:`pairwise_with`)."""
    softplus_with(pot, sp, fexp, flog1p, la)  # elementwise: each value as if computed alone
    sigmoid_with(pot, sg, fexp, la)
    for q in range(q_ptr.size - 1):
        lo, hi = q_ptr[q], q_ptr[q + 1]
        kind = q_kind[q]
        if kind == CATEGORICAL or kind == SOFTMAX:
            _policy_error(pot, val, lo, hi - lo, q_temp[q], act[q], kind == SOFTMAX, e, fexp, z, la, stack, partial)
            continue
        for j in range(lo, hi):
            if kind == GAUSSIAN:
                e[j] = (val[j] - sp[j]) * sg[j] / q_var[q]
            else:
                e[j] = (val[j] - pot[j]) / q_var[q]


def scratch_sizes(m: int, n: int, plan: tuple, n_senders: int, C: int, n_fill: int) -> tuple:
    """What :func:`relax_scratch` needs for a group of ``m`` units with ``n`` inputs each
    (``plan``: what it reads from downstream; ``C``: the widest weight row; ``n_fill``: its
    lookups)."""
    return (m, n, plan[1].size, plan[2].size, plan[3].size, n_senders, C, plan[11].size, n_fill)


def relax_scratch(m: int, n: int, nu: int, nq: int, ne: int, ns: int, C: int, nl: int, nf: int) -> tuple:
    """The working arrays of :func:`relax_group`, made once and shared by every group (the steps run
    one after the other), so that a step makes no array: sized for the largest group, of ``m``
    units with ``n`` inputs each, ``nu`` downstream units in ``nq`` queries over ``ne`` synapses
    from ``ns`` senders, weight rows of at most ``C``, ``nl`` lookups of what the downstream units
    hold and ``nf`` of what the group holds (:func:`scratch_sizes`). They lie in three buffers
    (float, integer, bool), passed with their sizes as (F, I, B, sizes): four arrays to hand to
    the loop instead of 21 (:func:`scratch_views` gives the arrays)."""
    sizes = np.array([m, n, nu, nq, ne, ns, C, nl, nf], dtype=np.int64)
    floats = 3 * m + n + 6 * nu + 1 + ne + ns * m + C + nl + nf + 64
    return np.empty(floats), np.empty(nq + nu + 5 + 3 * 64, dtype=np.int64), np.empty(nq, dtype=np.bool_), sizes


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _take(buf, a, n):
    """The ``n`` entries of ``buf`` from ``a`` (a view), and where the next take starts."""
    return buf[a:a + n], a + n


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def scratch_views(F, I, B, sizes):
    """The working arrays of :func:`relax_group` as views of the buffers of :func:`relax_scratch`:
    pot (m), x (n), mu (m), td (m), qpot, val, e (nu each), act (nq), seen (nq), w (ne), Z (ns × m),
    widx (nu), xq (C), held (nl), fvals (nf), sp, sg (nu each), z (nu + 1), la (5), stack (3 × 64),
    partial (64)."""
    m, n, nu, nq, ne, ns, C, nl, nf = (sizes[0], sizes[1], sizes[2], sizes[3], sizes[4], sizes[5], sizes[6],
                                       sizes[7], sizes[8])
    pot, a = _take(F, 0, m)
    x, a = _take(F, a, n)
    mu, a = _take(F, a, m)
    td, a = _take(F, a, m)
    qpot, a = _take(F, a, nu)
    val, a = _take(F, a, nu)
    e, a = _take(F, a, nu)
    w, a = _take(F, a, ne)
    Z, a = _take(F, a, ns * m)
    xq, a = _take(F, a, C)
    held, a = _take(F, a, nl)
    fvals, a = _take(F, a, nf)
    sp, a = _take(F, a, nu)
    sg, a = _take(F, a, nu)
    z, a = _take(F, a, nu + 1)
    partial, a = _take(F, a, 64)
    act, b = _take(I, 0, nq)
    widx, b = _take(I, b, nu)
    la, b = _take(I, b, 5)
    stack, b = _take(I, b, 3 * 64)
    Z, stack = Z.reshape((ns, m)), stack.reshape((3, 64))
    return (pot, x, mu, td, qpot, val, e, act, B[0:nq], w, Z, widx, xq, held, fvals, sp, sg, z, la, stack, partial)


@njit(cache=True, **NO_REFCOUNTS)
def relax_group(P, H, h, out, variance, alpha, fill, plan, q_kind, q_var, q_temp, n_senders, cursors, hist, weights,
                landed, ncols, tau, pr, wm, fexp, flog1p, units, k, serial, max_fwd, max_back, scratch):
    """One relaxation step of a group at (τ, pr), every unit's new value written to ``out``:
    ``h + α [(softplus(pot) − h)/σ² + Σ_j W_ij e_j]`` (:func:`asyncneurons.learning.rules.map_prop.relax_step`),
    with ``pot`` from what the group holds (``fill``: :func:`fill_inputs`) and each downstream error
    term as it reaches the group (``plan``: :func:`read_senders`), the messages W_ij e_j added per
    receiving unit in ascending sender id, row after row (:func:`asyncneurons.learning.kernels.sum_rows`).
    The new values enter the history as step ``k`` of ``units`` (:func:`append`). Returns
    :data:`OK`, or what is full (nothing entered: grow it and step again, which reads the same).
    Every array it works in is in ``scratch`` (:func:`relax_scratch`)."""
    T, K, S, V, A, head, count, total = hist
    WT, WK, WS, WP, whead, wcount, wtotal = weights
    f_row, f_col, f_look, l_src, l_d, l_zero, l_mem = fill
    (pot, x, mu, td, qpot, val, e, act, seen, w, Z, widx, xq, held, fvals, sp, sg, z, la, stack,
     partial) = scratch
    fill_inputs_with(H, f_row, f_col, f_look, l_src, l_d, l_zero, l_mem, T, K, S, V, head, count, total, tau, pr, wm,
                     fvals)
    m, n = P.shape
    pot, mu = pot[:m], mu[:m]  # the scratch is sized for the largest group
    for r in range(m):
        for c in range(n):
            x[c] = P[r, c] * H[r, c]
        pot[r] = 0.0 + pairwise_with(x, 0, n, stack, partial)  # row_potential(x)
    softplus_with(pot, mu, fexp, flog1p, la)
    for c in range(m):
        td[c] = 0.0
    (q_ptr, q_units, q_dr, e_q, e_qu, e_col, e_zrow, e_rrow, x_ptr, x_col, x_look, l_src2, l_d1, l_d2) = plan
    if e_q.size:
        nu = q_units.size
        qpot, sp, sg = qpot[:nu], sp[:nu], sg[:nu]
        code = read_senders(q_ptr, q_units, q_dr, e_qu, e_col, x_ptr, x_col, x_look, l_src2, l_d1, l_d2, ncols,
                            T, K, S, V, A, head, count, total, WT, WK, WS, WP, whead, wcount, wtotal, tau, pr, wm,
                            cursors, landed, qpot, val, act, seen, w, held, widx, xq, stack, partial)
        if code != OK:
            return code
        error_terms_with(q_ptr, q_kind, q_var, q_temp, qpot, val, act, e, fexp, flog1p, sp, sg, z, la, stack, partial)
        for r in range(n_senders):
            for c in range(m):
                Z[r, c] = 0.0
        for i in range(e_q.size):
            if seen[e_q[i]]:
                Z[e_zrow[i], e_rrow[i]] = w[i] * e[e_qu[i]]
        for c in range(m):
            td[c] = Z[0, c]
        for r in range(1, n_senders):
            for c in range(m):
                td[c] += Z[r, c]
    for r in range(m):
        out[r] = h[r] + alpha * ((mu[r] - h[r]) / variance + td[r])
    return append(T, K, S, V, A, head, count, total, units, tau, k, out, 0, serial, max_fwd, max_back, wm,
                  posting(landed))


@njit(cache=True, **NO_REFCOUNTS)
def gaussian_record_error(P, H, h, variance, fill, hist, tau, pr, wm, fexp, flog1p, scratch, e):
    """The error term a group of Gaussian units records its trace with at (τ, pr), into ``e``:
    what it holds is filled in first (:func:`fill_inputs`), then
    ``(h − softplus(pot)) σ(pot)/σ²`` with ``pot`` its pre-activations
    (:func:`asyncneurons.learning.rules.map_prop.map_error` and
    :func:`asyncneurons.learning.kernels.potential`, the same bits), in the scratch of
    :func:`relax_scratch` (its buffers)."""
    T, K, S, V, A, head, count, total = hist
    f_row, f_col, f_look, l_src, l_d, l_zero, l_mem = fill
    SF, SI, SB, sizes = scratch
    (pot, x, sp, sg, qpot, val, qe, act, seen, w, Z, widx, xq, held, fvals, qsp, qsg, z, la, stack,
     partial) = scratch_views(SF, SI, SB, sizes)
    fill_inputs_with(H, f_row, f_col, f_look, l_src, l_d, l_zero, l_mem, T, K, S, V, head, count, total, tau, pr, wm,
                     fvals)
    m, n = P.shape
    pot, sp, sg = pot[:m], sp[:m], sg[:m]
    for r in range(m):
        for c in range(n):
            x[c] = P[r, c] * H[r, c]
        pot[r] = 0.0 + pairwise_with(x, 0, n, stack, partial)
    softplus_with(pot, sp, fexp, flog1p, la)
    sigmoid_with(pot, sg, fexp, la)
    for r in range(m):
        e[r] = (h[r] - sp[r]) * sg[r] / variance


# ---------------------------------------------------------------------- steps between events
LIMIT = -1  # or what is full

# What the loop takes of each relaxing group, in order, and in which buffer each part lives (f: float64,
# i: int64, b: bool): its weights P, held inputs H, values h, next values, variance σ², step α, units;
# its fill (:func:`fill_inputs`: rows, columns, lookups, their senders, delays, zeros, memory), its
# plan (:func:`read_senders`), the kinds, variances and temperatures of its queries, its number of
# senders, the cursors of its reads; its trace E, decay λγ, whether it records in the loop, and a
# scratch row of error terms (:func:`group_at`).
GROUP_PARTS = "ffff" "ff" "i" "iiiiff" "ifibf" "iifiiiiiiiiiff" "iff" "i" "ifibf" "iii" "ffbf"


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def group_at(F, I, B, SE, D, g):
    """Group g's parts (:data:`GROUP_PARTS`) as views of the three buffers: part k is
    ``buffer[SE[0, k, g] : SE[1, k, g]]``, its weights, inputs and trace of shapes ``D[g]``
    (m, n, rows and columns of E)."""
    s, t = SE[0], SE[1]
    m, n = D[g, 0], D[g, 1]
    P = F[s[0, g]:t[0, g]].reshape((m, n))
    H = F[s[1, g]:t[1, g]].reshape((m, n))
    fill = (I[s[7, g]:t[7, g]], I[s[8, g]:t[8, g]], I[s[9, g]:t[9, g]], I[s[10, g]:t[10, g]],
            F[s[11, g]:t[11, g]], F[s[12, g]:t[12, g]],
            (I[s[13, g]:t[13, g]], F[s[14, g]:t[14, g]], I[s[15, g]:t[15, g]], B[s[16, g]:t[16, g]],
             F[s[17, g]:t[17, g]]))
    plan = (I[s[18, g]:t[18, g]], I[s[19, g]:t[19, g]], F[s[20, g]:t[20, g]], I[s[21, g]:t[21, g]],
            I[s[22, g]:t[22, g]], I[s[23, g]:t[23, g]], I[s[24, g]:t[24, g]], I[s[25, g]:t[25, g]],
            I[s[26, g]:t[26, g]], I[s[27, g]:t[27, g]], I[s[28, g]:t[28, g]], I[s[29, g]:t[29, g]],
            F[s[30, g]:t[30, g]], F[s[31, g]:t[31, g]])
    cursors = ((I[s[36, g]:t[36, g]], F[s[37, g]:t[37, g]], I[s[38, g]:t[38, g]], B[s[39, g]:t[39, g]],
                F[s[40, g]:t[40, g]]), I[s[41, g]:t[41, g]], I[s[42, g]:t[42, g]], I[s[43, g]:t[43, g]])
    E = F[s[44, g]:t[44, g]].reshape((D[g, 2], D[g, 3]))
    return (P, H, F[s[2, g]:t[2, g]], F[s[3, g]:t[3, g]], F[s[4, g]], F[s[5, g]], I[s[6, g]:t[6, g]], fill, plan,
            I[s[32, g]:t[32, g]], F[s[33, g]:t[33, g]], F[s[34, g]:t[34, g]], I[s[35, g]], cursors, E, F[s[45, g]],
            B[s[46, g]], F[s[47, g]:t[47, g]])


@njit(cache=True, **NO_REFCOUNTS)
def relax_until(groups, next_t, next_k, next_seq, seq, t_lim, pr_lim, inclusive, wm_t, wm_s, serial, hist, weights,
                landed, ncols, fexp, flog1p, max_fwd, max_back, period, steps, r0, finished, finished_t, due, scratch):
    """Run the pending relaxation steps in time order while they come before the next other event.

    ``groups``: the relaxing groups' parts in three buffers (:func:`group_at`).
    Group g's next step is step ``next_k[g]`` at ``next_t[g]`` (inf: none), priority
    ``r0 + 4k``, ties broken by the order of scheduling (``next_seq``). Steps run while their
    (time, priority) comes before (``t_lim``, ``pr_lim``), the first event of the simulation's
    queue (or equals it when ``inclusive``: that event is one that runs these steps). Each step is
    :func:`relax_group` and schedules the group's next one ``period`` later. A group that made
    its last step at τ records its trace there, at priority ``r0 + 4 (steps + 1)``, after every
    step at τ: here (:func:`record_trace`) when the group records in the loop and that record
    comes before the first event of the queue, else the loop stops before it and it is left in
    ``finished`` (its time in ``finished_t``) for the caller to schedule as an event, after every
    event already queued, as are the records after it.
    Returns (status, serial, group, time, first, count): :data:`LIMIT` when the next step is not
    due before the limit (``group`` and ``time``: that next step, −1 if none); or what is full
    (:data:`HISTORY_FULL` …: grow it; the step stays due, in ``group``); ``finished[first:count]``
    the records left. Group g's values are ``h``, written in place at each of its steps. ``due``: a
    heap of the groups with a step due (:func:`_due_heap`), made at each call (as long as the groups);
    ``scratch``: the working arrays of the steps (:func:`relax_scratch`, their buffers).
    """
    GF, GI, GB, GSE, GD = groups
    SF, SI, SB, sizes = scratch
    work = scratch_views(SF, SI, SB, sizes)
    done, first = 0, 0
    pr_record = r0 + 4 * (steps + 1)
    nd = _due_heap(next_t, next_k, next_seq, due)
    while True:
        g = due[0] if nd > 0 else -1
        while first < done and (g < 0 or finished_t[first] < next_t[g]):  # a record due before that step
            f, tr = finished[first], finished_t[first]
            (P, H, h, new, variance, alpha, units, fill, plan, q_kind, q_var, q_temp, n_senders, cursors, E, decay,
             here, e) = group_at(GF, GI, GB, GSE, GD, f)
            if not here or not (tr < t_lim or (tr == t_lim and pr_record < pr_lim)):
                return LIMIT, serial, g, next_t[g] if g >= 0 else 0.0, first, done
            record_trace(P, H, h, variance, fill, hist, tr, pr_record, wm_s if tr == wm_t else -1, fexp, flog1p,
                         scratch, e, E, decay)
            first += 1
        if g < 0:
            return LIMIT, serial, -1, 0.0, first, done
        tau, k = next_t[g], next_k[g]
        pr = r0 + 4 * k
        if not (tau < t_lim or (tau == t_lim and (pr < pr_lim or (pr == pr_lim and inclusive)))):
            return LIMIT, serial, g, tau, first, done
        (P, H, h, new, variance, alpha, units, fill, plan, q_kind, q_var, q_temp, n_senders, cursors, E, decay,
         here, e) = group_at(GF, GI, GB, GSE, GD, g)
        wm = wm_s if tau == wm_t else -1
        code = relax_group(P, H, h, new, variance, alpha, fill, plan, q_kind, q_var, q_temp, n_senders, cursors,
                           hist, weights, landed, ncols, tau, pr, wm, fexp, flog1p, units, k, serial, max_fwd,
                           max_back, work)
        if code != OK:
            return code, serial, g, tau, first, done
        serial += 1
        for i in range(h.size):
            h[i] = new[i]
        if k < steps:
            next_t[g], next_k[g], next_seq[g] = tau + period, k + 1, seq[0]
            seq[0] += 1
        else:
            next_t[g] = np.inf
            finished[done], finished_t[done] = g, tau
            done += 1
            nd -= 1
            due[0] = due[nd]
        _due_down(next_t, next_k, next_seq, due, nd, 0)


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _due_first(next_t, next_k, next_seq, a, b):
    """Whether group a's next step comes before group b's: by time, then step, then the order of
    scheduling (unique, so the order is total)."""
    return next_t[a] < next_t[b] or (next_t[a] == next_t[b] and (
        next_k[a] < next_k[b] or (next_k[a] == next_k[b] and next_seq[a] < next_seq[b])))


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _due_down(next_t, next_k, next_seq, due, nd, i):
    """Sift ``due[i]`` down the heap of the first ``nd`` groups of ``due``."""
    g = due[i]
    while True:
        child = 2 * i + 1
        if child >= nd:
            break
        if child + 1 < nd and _due_first(next_t, next_k, next_seq, due[child + 1], due[child]):
            child += 1
        if not _due_first(next_t, next_k, next_seq, due[child], g):
            break
        due[i] = due[child]
        i = child
    due[i] = g


@njit(cache=True, **NO_REFCOUNTS)
def _due_heap(next_t, next_k, next_seq, due):
    """Put the groups with a step due (``next_t`` finite) in a binary heap in ``due``, the first
    due on top (:func:`_due_first`); returns their number. The top is the group a search over all
    would find first: the loop takes it, then sifts it down at its new time, or drops it."""
    nd = 0
    for i in range(next_t.size):
        if next_t[i] != np.inf:
            due[nd] = i
            nd += 1
    for i in range(nd // 2 - 1, -1, -1):
        _due_down(next_t, next_k, next_seq, due, nd, i)
    return nd


NO_DECAYS = np.empty(0)


@njit(cache=True, **NO_REFCOUNTS)
def record_trace(P, H, h, variance, fill, hist, tau, pr, wm, fexp, flog1p, scratch, e, E, decay):
    """A relaxed group of Gaussian units records its trace at (τ, pr): ``E ← λγ · E + e ⊗ h`` with
    its error term e (:func:`gaussian_record_error`, which fills in what it holds first) and the
    decay λγ of every row (:func:`asyncneurons.learning.traces.record`, the same operations)."""
    gaussian_record_error(P, H, h, variance, fill, hist, tau, pr, wm, fexp, flog1p, scratch, e)
    trace_rows(E, decay, NO_DECAYS, e, H)


# ---------------------------------------------------------------------- what lands on a unit
# A downstream unit's error term, as a reader sees it, depends on the inputs it held as of the
# retrograde delay. Rather than look each input up for every reader, each unit that someone reads
# keeps the values landing on it in landing order, each point with the unit's inputs after it:
# a value sent at t on a synapse of delay d lands at fl(t + d). One synapse's delay is fixed, so
# what it carries lands in the order it was sent: the entries of the sender's history from the
# synapse's cursor on (the oldest not landed yet) are that synapse's landings, in order, and a
# read unit merges its synapses' streams with a heap over the synapses that have something in
# flight, keyed by the landing of each one's oldest (landing time, then the order the entries were
# made). Nothing is copied before it lands, and a landing costs a sift in a heap of at most as
# many synapses as the unit has.

OK, HISTORY_FULL, LANDED_FULL = 0, 1, 3


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _before(a1, s1, a2, s2):
    return a1 < a2 or (a1 == a2 and s1 < s2)


@njit(cache=True, **NO_REFCOUNTS)
def push_synapse(queue, r, a, serial, e):
    """Put synapse e, whose oldest value in flight lands at ``a`` (made as entry ``serial``), in
    read unit r's heap."""
    QA, QS, QE, qsize = queue[0], queue[1], queue[2], queue[3]
    i = qsize[r]
    qsize[r] = i + 1
    _sift_up(QA, QS, QE, r, i, a, serial, e)


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _sift_up(QA, QS, QE, r, i, a, s, e):
    """Put (a, s, e) in the hole at place i of read unit r's heap and let it climb to its place."""
    while i > 0:
        parent = (i - 1) >> 1
        if not _before(a, s, QA[r, parent], QS[r, parent]):
            break
        QA[r, i], QS[r, i], QE[r, i] = QA[r, parent], QS[r, parent], QE[r, parent]
        i = parent
    QA[r, i], QS[r, i], QE[r, i] = a, s, e


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _sift_down(QA, QS, QE, r, n, a, s, e):
    """Put (a, s, e) at the top of read unit r's heap of n synapses and sift it down: bottom up
    (the hole at the top moves down to a leaf along the earlier child, one comparison a level and
    no branch on it, then (a, s, e) climbs from there; a synapse put back lands after most
    others, so it climbs little)."""
    i = 0
    child = 1
    while child < n:
        if child + 1 < n:
            child += _before_flag(QA[r, child + 1], QS[r, child + 1], QA[r, child], QS[r, child])
        QA[r, i], QS[r, i], QE[r, i] = QA[r, child], QS[r, child], QE[r, child]
        i = child
        child = 2 * i + 1
    _sift_up(QA, QS, QE, r, i, a, s, e)


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _before_flag(a1, s1, a2, s2):
    """:func:`_before` as 1 or 0, computed without a branch."""
    return np.int64(a1 < a2) | (np.int64(a1 == a2) & np.int64(s1 < s2))


BLOCK = 16  # a read unit's inputs are copied whole before every 16th point landed on it


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _product(w, f, i, nc):
    """Input i's product with its weight, the last input (the bias) being 1 (:func:`products_at`)."""
    return w[i] * (1.0 if i == nc - 1 else f[i])


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _lane(acc, w, f, k, nc, m):
    """Lane k of NumPy's pairwise block (:func:`_block`): the products k, k + 8 … below m, added in turn."""
    a = _product(w, f, k, nc)
    for i in range(k + 8, m, 8):
        a += _product(w, f, i, nc)
    acc[k] = a


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _pot_from_lanes(lanes, w, f, nc):
    """NumPy's pairwise sum of the products (:func:`_block`, n = ``nc`` ≤ 128) from its eight lanes
    (``lanes``, made by :func:`_lane`; none below 8 products): the lanes pairwise, then the rest."""
    if nc < 8:
        res = 0.0
        for i in range(nc):
            res += _product(w, f, i, nc)
        return 0.0 + res
    res = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    for i in range(nc - nc % 8, nc):
        res += _product(w, f, i, nc)
    return 0.0 + res


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def extend_landed(r, tau, max_back, queue, land, T, S, V, head, count, total, ru, nc, known, WS, WP, whead):
    """Move to read unit r's landed points whatever has landed by τ. Point number a (from the
    unit's first, ever) is in slot a mod L of ``LA`` (landing time), ``LC`` (column) and ``LV``
    (value); before every :data:`BLOCK`-th point the unit's inputs are copied whole into ``LX``
    (block a / BLOCK, mod L / BLOCK); ``front`` holds them after the newest point. A point is
    dropped once the next one is held by every reader for good: fl(its landing + the longest
    retrograde delay) < τ; slots stay in use from the start of the oldest point's block.

    The landings come from the heap of r's synapses (``queue``: landing, serial and synapse of
    each one's oldest value in flight; the synapses' cursors ``nxt``, their senders, columns and
    delays), each value read from its sender's history at the synapse's cursor. A value its
    sender's history has dropped before r was read is one whose successor on the synapse was
    already held by every reader for good: no read can hold it, and it is passed over.

    The pre-activation of r (unit ``ru``, ``nc`` inputs) after each new point, with its newest
    weights, is kept as a reader would keep it (``known``: :func:`read_senders`), so that readers
    find it known instead of computing it again from the copy. NumPy sums a block of at most 128
    products in eight lanes (input i in lane i mod 8, up to the last multiple of 8), then the
    lanes pairwise, then the rest in turn (:func:`_block`); a point changes one input, hence one
    lane: r's lanes are kept (``acc``, made whole again when the weights they were made with,
    ``acc_w``, are not the newest) and only the point's lane is added again, in the same order,
    so the pre-activation has the bits of the one computed whole (a test holds them equal).
    Returns :data:`OK`, or :data:`LANDED_FULL` (grow the points and call again)."""
    QA, QS, QE, qsize, nxt, e_src, e_col, e_d = queue
    LA, LC, LV, LX, lcount, ltotal, front = land
    if qsize[r] == 0 or QA[r, 0] > tau:
        return OK
    mask, bmask = LA.shape[1] - 1, LX.shape[1] - 1
    D = T.shape[1]
    k_point, k_weights, k_pot, acc, acc_w = known
    keep = nc <= 128
    wid, f, lanes = -1, front[r], acc[r]
    w = WP[ru, 0]
    m8 = nc - nc % 8
    if keep:
        ws = whead[ru] - 1
        if ws < 0:
            ws += WS.shape[1]
        wid, w = WS[ru, ws], WP[ru, ws]
        if acc_w[r] != wid:
            if nc >= 8:
                for k in range(8):
                    _lane(lanes, w, f, k, nc, m8)
            acc_w[r] = wid
    while lcount[r] > 1 and LA[r, (ltotal[r] - lcount[r] + 1) & mask] + max_back < tau:
        lcount[r] -= 1
    while qsize[r] > 0 and QA[r, 0] <= tau:
        e = QE[r, 0]
        u = e_src[e]
        i = nxt[e]
        tot = total[u]
        oldest = tot - count[u]
        if i < oldest:  # passed over: its successor lands in its place
            nxt[e] = oldest
            s = head[u] - (tot - oldest)
            if s < 0:
                s += D
            _sift_down(QA, QS, QE, r, qsize[r], T[u, s] + e_d[e], S[u, s], e)
            continue
        a = ltotal[r]
        first = a - lcount[r]
        if a - (first - first % BLOCK) >= LA.shape[1]:
            return LANDED_FULL
        if a % BLOCK == 0:
            b = (a // BLOCK) & bmask
            for c in range(front.shape[1]):
                LX[r, b, c] = front[r, c]
        s = head[u] - (tot - i)
        if s < 0:
            s += D
        c = e_col[e]
        v = V[u, s]
        front[r, c] = v
        sl = a & mask
        LA[r, sl], LC[r, sl], LV[r, sl] = QA[r, 0], c, v
        lcount[r] += 1
        ltotal[r] += 1
        if keep:
            if c < m8:
                _lane(lanes, w, f, c % 8, nc, m8)
            sl = (a + 1) & mask
            k_point[r, sl], k_weights[r, sl], k_pot[r, sl] = a + 1, wid, _pot_from_lanes(lanes, w, f, nc)
        i += 1
        nxt[e] = i
        if i < tot:
            s += 1
            if s >= D:
                s -= D
            _sift_down(QA, QS, QE, r, qsize[r], T[u, s] + e_d[e], S[u, s], e)
        else:
            n = qsize[r] - 1
            qsize[r] = n
            if n > 0:
                _sift_down(QA, QS, QE, r, n, QA[r, n], QS[r, n], QE[r, n])
    return OK


SCAN = 24  # points a reader's cursor moves one by one before it gallops (:func:`_landed_until`)


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _landed_until(r, d2, tau, LA, lcount, ltotal, r_cur, c):
    """The number (from the first, ever) of read unit r's points after its last with
    fl(landing + d2) < τ, found from the reader's cursor ``r_cur[c]`` (a reader's time never
    decreases: point by point over the next :data:`SCAN` points, where a reader that read a
    moment ago finds it, then galloping), or −1 when the points cannot tell: a point lands at
    exactly fl(landing + d2) = τ, or none is kept before the reader's time (:func:`landed_inputs`)."""
    mask = LA.shape[1] - 1
    tot = ltotal[r]
    oldest = tot - lcount[r]
    lo = r_cur[c]
    if lo < oldest:
        lo = oldest
    end = lo + SCAN if lo + SCAN < tot else tot
    while lo < end and LA[r, lo & mask] + d2 < tau:
        lo += 1
    if lo == end and lo < tot and LA[r, lo & mask] + d2 < tau:
        step, hi = 1, lo + 1
        while hi < tot and LA[r, hi & mask] + d2 < tau:
            lo = hi
            step *= 2
            hi = lo + step
        if hi > tot:
            hi = tot
        lo += 1
        while lo < hi:
            mid = (lo + hi) >> 1
            if LA[r, mid & mask] + d2 < tau:
                lo = mid + 1
            else:
                hi = mid
    r_cur[c] = lo
    if lo == oldest or (lo < tot and LA[r, lo & mask] + d2 == tau):
        return -1
    return lo


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def landed_inputs(r, d2, tau, land, r_cur, c, x, nc):
    """The inputs read unit r held as its error term reaches a reader at τ after ``d2``, into
    ``x[:nc]``: those after its last point with fl(landing + d2) < τ (the copy before that point's
    block, then the block's points up to it), found from the reader's cursor ``r_cur[c]``
    (galloping forward: a reader's time never decreases). False when the points cannot tell: a
    point lands at exactly fl(landing + d2) = τ (order within the instant decides,
    :func:`held_from`), or none is kept before the reader's time."""
    LA, LC, LV, LX, lcount, ltotal, front = land
    lo = _landed_until(r, d2, tau, LA, lcount, ltotal, r_cur, c)
    if lo < 0:
        return False
    mask, bmask = LA.shape[1] - 1, LX.shape[1] - 1
    start = (lo - 1) - (lo - 1) % BLOCK
    b = (start // BLOCK) & bmask
    for i in range(nc):
        x[i] = LX[r, b, i]
    for a in range(start, lo):
        x[LC[r, a & mask]] = LV[r, a & mask]
    return True


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def landed_products(r, d2, tau, land, r_cur, c, x, nc, w):
    """:func:`landed_inputs` times the weights (:func:`products_at`). False (and ``x`` untouched)
    when the points cannot tell."""
    LA, LC, LV, LX, lcount, ltotal, front = land
    lo = _landed_until(r, d2, tau, LA, lcount, ltotal, r_cur, c)
    if lo < 0:
        return False
    products_at(r, lo, land, x, nc, w)
    return True


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def products_at(r, lo, land, x, nc, w):
    """``x[i] = w[i] · input i`` for i < ``nc`` of read unit r after its points before number ``lo``
    (:func:`landed_inputs`), the last (the bias) ``w[nc − 1] · 1``: the same products in one pass
    over the copy."""
    LA, LC, LV, LX, lcount, ltotal, front = land
    mask, bmask = LA.shape[1] - 1, LX.shape[1] - 1
    start = (lo - 1) - (lo - 1) % BLOCK
    b = (start // BLOCK) & bmask
    for i in range(nc):
        x[i] = w[i] * LX[r, b, i]
    for a in range(start, lo):
        col = LC[r, a & mask]
        x[col] = w[col] * LV[r, a & mask]
    x[nc - 1] = w[nc - 1] * 1.0
