"""The compiled bookkeeping of lazy transmission equals the NumPy forms it replaces, bit for bit.

Each NumPy form below is what :mod:`asyncneurons.engine.transmission` computed over a group's
synapses at once before the compiled loops (:mod:`asyncneurons.engine.transmission_kernels`).
"""

import numpy as np
import pytest

from asyncneurons.engine import transmission_kernels as tk


def _histories(rng, n=6, depth=5):
    """Sample histories with empty slots (time −inf, wave and serial −1) and unique serials."""
    HT = rng.uniform(0.0, 10.0, (n, depth)).round(2)
    HW = rng.integers(0, 6, (n, depth))
    HN = rng.permutation(n * depth).reshape(n, depth).astype(np.int64)
    empty = rng.random((n, depth)) < 0.25
    HT[empty], HW[empty], HN[empty] = -np.inf, -1, -1
    return HT, rng.normal(size=(n, depth)), HW, HN


def _synapses(rng, n, m=9):
    src = rng.integers(0, n, m).astype(np.int64)
    delay = rng.choice([0.0, 0.25, 1.5, 3.0], m)
    edges = rng.permutation(20)[:m].astype(np.int64)
    return src, delay, edges


@pytest.mark.parametrize("seed", range(8))
def test_applying_the_arrived_samples_is_the_numpy_form(seed):
    rng = np.random.default_rng(seed)
    HT, HV, HW, HN = _histories(rng)
    src, delay, edges = _synapses(rng, len(HT))
    rows, cols = np.arange(len(src), dtype=np.int64) % 3, np.arange(len(src), dtype=np.int64)
    done = rng.integers(-1, 12, 20).astype(np.int64)
    for now in (0.0, 2.5, 6.0, 13.0):
        H, T = np.zeros((3, 10)), np.full((3, 10), 99, dtype=np.int64)
        H2, T2, done2 = H.copy(), T.copy(), done.copy()
        # the NumPy form
        arrived = HT[src] + delay[:, None] <= now
        serials = np.where(arrived, HN[src], -1)
        k = np.argmax(serials, axis=1)
        n_k = serials[np.arange(len(src)), k]
        fresh = n_k > done2[edges]
        H2[rows[fresh], cols[fresh]] = HV[src[fresh], k[fresh]]
        T2[rows[fresh], cols[fresh]] = HW[src[fresh], k[fresh]]
        done2[edges[fresh]] = n_k[fresh]
        got = tk.apply_arrived(HT, HV, HW, HN, src, delay, edges, rows, cols, done, H, T, now)
        assert got == bool(fresh.any())
        np.testing.assert_array_equal(H, H2)
        np.testing.assert_array_equal(T, T2)
        np.testing.assert_array_equal(done, done2)


@pytest.mark.parametrize("seed", range(8))
def test_the_next_wave_of_a_receiver_is_the_numpy_form(seed):
    rng = np.random.default_rng(seed)
    HT, _, HW, _ = _histories(rng)
    src, delay, edges = _synapses(rng, len(HT))
    for wave in (-2, 0, 2, 5):
        sat = np.zeros(20, dtype=bool)
        sat2 = sat.copy()
        newer = HW[src] > wave
        arrival = np.where(newer, HT[src] + delay[:, None], np.inf).min(axis=1)
        ok = np.isfinite(arrival)
        sat2[edges] = ok
        missing, latest = tk.next_wave(HT, HW, src, delay, edges, wave, sat)
        assert missing == int((~ok).sum())
        assert latest == (float(arrival[ok].max()) if ok.any() else -np.inf)
        np.testing.assert_array_equal(sat, sat2)


@pytest.mark.parametrize("seed", range(8))
def test_marking_a_send_is_the_numpy_form(seed):
    rng = np.random.default_rng(seed)
    n_gid, m = 5, 12
    edges = rng.permutation(30)[:m].astype(np.int64)
    targets = rng.integers(0, n_gid, m).astype(np.int64)
    delays = rng.choice([0.0, 0.5, 2.0, 4.75], m)
    sat = rng.random(30) < 0.3
    last_wave = rng.integers(-1, 3, n_gid).astype(np.int64)
    waits = rng.random(n_gid) < 0.8
    missing = np.bincount(targets, minlength=n_gid).astype(np.int64) - rng.integers(0, 2, n_gid)
    latest = rng.uniform(0.0, 3.0, n_gid)
    wave, now = 2, 1.25
    sat2, missing2, latest2 = sat.copy(), missing.copy(), latest.copy()
    # the NumPy form
    new = ~sat2[edges] & (wave > last_wave[targets]) & waits[targets]
    e, tgt, d = edges[new], targets[new], delays[new]
    sat2[e] = True
    np.subtract.at(missing2, tgt, 1)
    np.maximum.at(latest2, tgt, now + d)
    expected = sorted(set(tgt[missing2[tgt] == 0].tolist()))
    armed = np.zeros(n_gid, dtype=bool)
    any_complete = tk.mark_sent(edges, targets, delays, sat, last_wave, waits, missing, latest, wave, now, armed)
    assert np.flatnonzero(armed).tolist() == expected and any_complete == bool(expected)
    np.testing.assert_array_equal(sat, sat2)
    np.testing.assert_array_equal(missing, missing2)
    np.testing.assert_array_equal(latest, latest2)



@pytest.mark.parametrize("room", [False, True])
def test_posting_one_units_sample_is_the_slot_form_then_the_marking(room):
    """A one-unit sender's post: the Python form wrote the sample into the unit's next slot unless
    the oldest sample (the slot after it) may still be on its way (then the histories grow first:
    ``room``), then marked the send (:func:`mark_sent`)."""
    rng = np.random.default_rng(11)
    HT, HV, HW, HN = _histories(rng, n=4, depth=3)
    head = np.array([0, 2, 1, 0], dtype=np.int64)
    max_delay = np.array([1.0, 5.0, 0.5, 2.0])
    edges, targets, delays = np.array([3, 0], dtype=np.int64), np.array([1, 0], dtype=np.int64), np.array([0.5, 1.0])
    last_wave, waits = np.full(2, -1, dtype=np.int64), np.ones(2, dtype=bool)
    marks = (np.zeros(4, dtype=bool), np.array([1, 2], dtype=np.int64), np.full(2, -np.inf))  # sat, missing, latest
    now, wave = 9.0, 4
    for i in range(4):
        hist, hist2 = (HT, HV, HW, HN, head), tuple(a.copy() for a in (HT, HV, HW, HN, head))
        marks2 = tuple(a.copy() for a in marks)
        armed, armed2, complete = np.zeros(2, dtype=bool), np.zeros(2, dtype=bool), np.full(2, -1, dtype=np.int64)
        got = tk.post_one(*hist, max_delay, i, now, 0.5 + i, wave, 100 + i, room, edges, targets, delays, marks[0],
                          last_wave, waits, marks[1], marks[2], armed, complete)
        # the Python form
        T2, V2, W2, N2, head2 = hist2
        slot = int(head2[i])
        if not room and T2[i, (slot + 1) % 3] + max_delay[i] > now:
            expected = -1
        else:
            T2[i, slot], V2[i, slot], W2[i, slot], N2[i, slot] = now, 0.5 + i, wave, 100 + i
            head2[i] = (slot + 1) % 3
            tk.mark_sent(edges, targets, delays, marks2[0], last_wave, waits, marks2[1], marks2[2], wave, now, armed2)
            expected = int(armed2.sum())
            assert complete[:expected].tolist() == np.flatnonzero(armed2).tolist()
        assert got == expected and not armed.any()  # the flags cleared again
        for a, b in zip(hist + marks, hist2 + marks2):
            np.testing.assert_array_equal(a, b)
