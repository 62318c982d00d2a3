"""What a firing window's unit reads on its synapses: the latest sample of each sender that has
arrived by the unit's time, whichever way the compiled read takes (history_kernels.read_sets)."""

import math

import numpy as np
import pytest

from asyncneurons.engine.history_kernels import _newest_arrived, _one_run, newest, read_sets


def _rings(rng, n_senders: int, depth: int):
    """Each sender's ring of samples, written in sending order up to a random head: times that
    never go down, waves that never go down, serial numbers in sending order; one sender has sent
    nothing."""
    HT = np.full((n_senders, depth), -math.inf)
    HV = np.zeros((n_senders, depth))
    HW = np.full((n_senders, depth), -1, dtype=np.int64)
    HN = np.full((n_senders, depth), -1, dtype=np.int64)
    head = np.zeros(n_senders, dtype=np.int64)
    for s in range(1, n_senders):  # sender 0 has sent nothing
        n = int(rng.integers(1, 2 * depth))
        t = np.cumsum(rng.uniform(0.5, 6.0, n))
        for k in range(n):
            slot = head[s]
            HT[s, slot], HV[s, slot], HW[s, slot], HN[s, slot] = t[k], rng.normal(), k // 2, 100 * s + k
            head[s] = (slot + 1) % depth
    return HT, HV, HW, HN, head


def _reference(HT, HV, HW, HN, EJ, jittered, src, edges, delay, rows, cols, t, H, T):
    """The latest sample (largest serial) of each synapse's sender that has arrived by ``t``, in Python."""
    H, T = H.copy(), T.copy()
    for j in range(len(src)):
        s, e = src[j], edges[j]
        best = -1
        for k in range(HT.shape[1]):
            if HN[s, k] < 0:
                continue
            a = HT[s, k] + delay[j]
            if jittered:
                a = a + EJ[e, k]
            if a <= t and (best < 0 or HN[s, k] > HN[s, best]):
                best = k
        if best >= 0:
            H[rows[j], cols[j]], T[rows[j], cols[j]] = HV[s, best], HW[s, best]
    return H, T


@pytest.mark.parametrize("jittered", [False, True], ids=["fixed delays", "jitter per send"])
def test_a_unit_whose_senders_newest_samples_have_all_arrived_reads_them_as_one_gather(jittered):
    """Synapses sorted by input fill one row's inputs in order: when every sender's newest
    sample has arrived the read is one gather of the newest values; when one has not (or a sender
    has sent nothing), and under jitter, each synapse is read on its own. Both give what a
    synapse-by-synapse read of the history gives, and what the same synapses read in another
    order give."""
    rng = np.random.default_rng(7)
    n_senders, depth, width = 9, 3, 8
    HT, HV, HW, HN, head = _rings(rng, n_senders, depth)
    # two units (sets), each with one synapse from each sender but 0 and 8: columns 1…7 of its row
    src = np.array([1, 2, 3, 4, 5, 6, 7] * 2, dtype=np.int64)
    rows = np.repeat([0, 1], 7).astype(np.int64)
    cols = np.tile(np.arange(1, 8), 2).astype(np.int64)
    edges = np.arange(14, dtype=np.int64)
    delay = rng.uniform(0.0, 3.0, 14)
    EJ = rng.uniform(0.0, 2.0, (14, depth)) if jittered else np.zeros((1, 1))
    ptr = np.array([0, 7, 14], dtype=np.int64)
    k_new, t_new, _, _ = newest(HT, HN, HV, HW, head)
    arrival = t_new[src] + delay + (EJ[edges, k_new[src]] if jittered else 0.0)
    all_in = float(arrival.max()) + 0.25  # every newest sample has arrived by then
    j_late = int(np.argmax(arrival[:7]))  # unit 0's latest newest arrival: just before it, not yet
    one_late = float(np.nextafter(arrival[j_late], -math.inf))
    H0, T0 = rng.normal(size=(2, width)), np.full((2, width), -5, dtype=np.int64)
    cases = [(np.array([all_in, all_in]), [True, True]), (np.array([one_late, all_in]), [False, True])]
    for times, gathered in cases:
        for st in (0, 1):
            a, b = ptr[st], ptr[st + 1]
            assert _one_run(rows, cols, a, b)
            assert _newest_arrived(t_new, k_new, EJ, jittered, src, edges, delay, a, b, times[st]) == gathered[st]
        H, T = H0.copy(), T0.copy()
        read_sets(HT, HN, HV, HW, head, EJ, jittered, np.array([0, 1]), times, ptr, edges, src, delay, rows, cols, H,
                  T)
        for st in (0, 1):
            want_H, want_T = _reference(HT, HV, HW, HN, EJ, jittered, src[ptr[st]:ptr[st + 1]],
                                        edges[ptr[st]:ptr[st + 1]], delay[ptr[st]:ptr[st + 1]],
                                        rows[ptr[st]:ptr[st + 1]], cols[ptr[st]:ptr[st + 1]], times[st], H0, T0)
            np.testing.assert_array_equal(H[st], want_H[st])
            np.testing.assert_array_equal(T[st], want_T[st])
        # the same synapses in another order within each unit: read one by one
        order = np.concatenate([rng.permutation(7), 7 + rng.permutation(7)])
        assert not _one_run(rows, cols[order], 0, 7)
        H2, T2 = H0.copy(), T0.copy()
        read_sets(HT, HN, HV, HW, head, EJ, jittered, np.array([0, 1]), times, ptr, edges[order], src[order],
                  delay[order], rows[order], cols[order], H2, T2)
        np.testing.assert_array_equal(H2, H)
        np.testing.assert_array_equal(T2, T)
    # the late sender's newest had not arrived: unit 0 holds an older sample of it
    assert H[0, cols[j_late]] != HV[src[j_late], k_new[src[j_late]]]


def test_a_unit_with_a_sender_that_has_sent_nothing_keeps_what_it_held():
    rng = np.random.default_rng(3)
    HT, HV, HW, HN, head = _rings(rng, 4, 3)
    src, rows, cols = np.array([0, 1, 2, 3]), np.zeros(4, dtype=np.int64), np.arange(4)
    delay, edges, ptr = np.zeros(4), np.arange(4), np.array([0, 4])
    k_new, t_new, _, _ = newest(HT, HN, HV, HW, head)
    assert not _newest_arrived(t_new, k_new, np.zeros((1, 1)), False, src, edges, delay, 0, 4, 1e9)
    H, T = np.full((1, 5), 0.5), np.full((1, 5), -3, dtype=np.int64)
    read_sets(HT, HN, HV, HW, head, np.zeros((1, 1)), False, np.array([0]), np.array([1e9]), ptr, edges, src, delay,
              rows, cols, H, T)
    assert H[0, 0] == 0.5 and T[0, 0] == -3  # sender 0: nothing sent
    np.testing.assert_array_equal(H[0, 1:4], [HV[s, k_new[s]] for s in (1, 2, 3)])


def test_a_set_spread_over_rows_or_gaps_is_not_one_run():
    rows, cols = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    assert not _one_run(rows, cols, 0, 4) and _one_run(rows, cols, 0, 2) and _one_run(rows, cols, 2, 4)
    assert not _one_run(np.zeros(3, dtype=np.int64), np.array([0, 1, 3]), 0, 3)
    assert not _one_run(rows, cols, 2, 2)  # no synapse
