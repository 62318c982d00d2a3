"""The relaxation loop's own bookkeeping: the order of the steps due and its working arrays.

The loop (``relaxation_kernels.relax_until``) takes the next step due from a binary heap made at
each call; the order must be the one a search over all groups gives, by time, then step, then
the order of scheduling. Its working arrays lie in three buffers, cut into the arrays a step
works in: each of the size asked, none sharing memory with another. The oracle here is plain
Python: a sort, and the sizes of the documented arrays.
"""

import numpy as np
from numba import literal_unroll, njit

from asyncneurons.engine import relaxation_kernels as kern


def _check_heap(t, k, seq, due, nd):
    for i in range(1, nd):
        p = (i - 1) // 2
        assert (t[due[p]], k[due[p]], seq[due[p]]) < (t[due[i]], k[due[i]], seq[due[i]])


def test_the_heap_gives_the_steps_due_in_time_then_step_then_scheduling_order():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 96):
        next_t = rng.choice([0.25, 0.5, 0.75, np.inf], size=n)  # many ties, some groups with nothing due
        next_k = rng.integers(1, 4, size=n).astype(np.int64)
        next_seq = rng.permutation(n).astype(np.int64)
        due = np.zeros(n, dtype=np.int64)
        nd = kern._due_heap(next_t, next_k, next_seq, due)
        finite = [i for i in range(n) if next_t[i] != np.inf]
        assert nd == len(finite)
        _check_heap(next_t, next_k, next_seq, due, nd)
        expected = sorted(finite, key=lambda i: (next_t[i], next_k[i], next_seq[i]))
        if finite:
            assert int(due[0]) == expected[0]


def test_a_step_sifted_down_at_its_new_time_keeps_the_heap():
    rng = np.random.default_rng(5)
    n = 40
    next_t = rng.choice([1.0, 1.25, 1.5], size=n)
    next_k = rng.integers(1, 3, size=n).astype(np.int64)
    next_seq = rng.permutation(n).astype(np.int64)
    due = np.zeros(n, dtype=np.int64)
    nd = kern._due_heap(next_t, next_k, next_seq, due)
    seq = n
    taken = []
    for _ in range(200):  # the loop's move: the top steps, is due a period later, and sinks
        g = int(due[0])
        taken.append((next_t[g], next_k[g], next_seq[g]))
        next_t[g], next_k[g], next_seq[g] = next_t[g] + 0.25, next_k[g] + 1, seq
        seq += 1
        kern._due_down(next_t, next_k, next_seq, due, nd, 0)
        _check_heap(next_t, next_k, next_seq, due, nd)
    assert taken == sorted(taken)


@njit
def _layout(F, I, B, sizes):
    """Each working array's address, number of elements and first dimension (made in compiled code)."""
    out = np.zeros((21, 3), dtype=np.int64)
    i = 0
    for v in literal_unroll(kern.scratch_views(F, I, B, sizes)):
        out[i, 0], out[i, 1], out[i, 2] = v.ctypes.data, v.size, v.shape[0]
        i += 1
    return out


def test_the_working_arrays_have_their_sizes_and_share_no_memory():
    m, n, nu, nq, ne, ns, C, nl, nf = 3, 5, 7, 2, 11, 4, 6, 9, 8
    buffers = kern.relax_scratch(m, n, nu, nq, ne, ns, C, nl, nf)
    layout = _layout(*buffers)
    shapes = [(m,), (n,), (m,), (m,), (nu,), (nu,), (nu,), (nq,), (nq,), (ne,), (ns, m), (nu,), (C,), (nl,), (nf,),
              (nu,), (nu,), (nu + 1,), (5,), (3, 64), (64,)]
    assert [int(s) for s in layout[:, 1]] == [int(np.prod(s)) for s in shapes]
    assert [int(s) for s in layout[:, 2]] == [s[0] for s in shapes]
    found = 0
    for buffer in buffers[:3]:  # each view lies in one buffer, and no element belongs to two
        base = buffer.__array_interface__["data"][0]
        owner = np.zeros(buffer.size, dtype=np.int64)
        for address, size, _ in layout:
            start = (int(address) - base) // buffer.itemsize
            if 0 <= start < buffer.size:
                assert start + size <= buffer.size
                owner[start:start + size] += 1
                found += 1
        assert owner.max() <= 1
    assert found == len(shapes)
