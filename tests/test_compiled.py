"""Every compiled kernel gives the bits of the NumPy formula it replaces.

The formulas below are written out with NumPy here, as the engine computed them before it had
compiled kernels; each test draws shapes from 1×1 to 1024×1025 (with a leading replica axis
where the engine uses one) and values over many magnitudes, zeros of both signs and the clamp
edges, and compares byte for byte.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncneurons.learning import at_rest, compiled, streams
from asyncneurons.learning.critic import Critic
from asyncneurons.learning.kernels import (accumulate_trace, potential, sigmoid, softplus, sum_by_sender,
                                           sum_rows)
from asyncneurons.learning.optim import AdamConfig, adam_ascent, adam_constants
from asyncneurons.learning.rules.base import reinforce_update
from asyncneurons.learning.units import UNIT_KINDS, LayerParams, sample_and_trace

SETTINGS = settings(max_examples=60, deadline=None)
sizes = st.integers(1, 1025)
small = st.integers(1, 70)


def same(a, b) -> bool:
    """Equal bits (NaNs and signed zeros included)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def values(rng, shape, spread=6.0):
    """Values over many magnitudes, both signs, with some exact zeros of either sign."""
    x = rng.standard_normal(shape) * 10.0 ** rng.uniform(-spread, spread / 2, shape)
    x[rng.random(shape) < 0.05] = 0.0
    x[rng.random(shape) < 0.02] = -0.0
    return x


# ---------------------------------------------------------------- NumPy formulas (the oracle)
def np_sigmoid(x):
    out = np.minimum(np.maximum(x, -20.0), 20.0)
    out = 1.0 / (np.exp(-out) + 1.0)
    out[x >= 20.0] = 1.0
    out[x <= -20.0] = 0.0
    return out


def np_softplus(x):
    y = np.log1p(np.exp(np.minimum(np.maximum(x, -30.0), 30.0)))
    return np.where(x > 30.0, x, np.where(x < -30.0, 0.0, y))


def np_mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def np_uniforms(keys, counters):
    bits = np_mix(keys ^ (np.uint64(0x9E3779B97F4A7C15) * (counters.astype(np.uint64) + np.uint64(1))))
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def np_adam(P, M, V, G, t, lr, cfg):
    M *= cfg.beta1
    M += G * (1.0 - cfg.beta1)
    V *= cfg.beta2
    V += (G * G) * (1.0 - cfg.beta2)
    if t < cfg.bias_correction_steps:
        den = np.sqrt(V / (1.0 - cfg.beta2 ** t))
        step = (M / (1.0 - cfg.beta1 ** t)) * lr
    else:
        den = np.sqrt(V)
        step = M * lr
    P += step / (den + cfg.eps)


# ---------------------------------------------------------------- tests
@SETTINGS
@given(m=sizes, n=sizes, replicas=st.sampled_from([0, 0, 3]), seed=st.integers(0, 2**32 - 1))
def test_pre_activation_is_numpy_pairwise_row_sum(m, n, replicas, seed):
    rng = np.random.default_rng(seed)
    if m * n > 200_000:
        m = max(1, 200_000 // n)
    shape = (replicas, m, n) if replicas else (m, n)
    P, H = values(rng, shape), values(rng, shape)
    assert same(potential(P, H), (P * H).sum(axis=-1))


def test_pre_activation_at_the_pairwise_block_edges():
    rng = np.random.default_rng(5)
    for n in [1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 255, 256, 257, 1023, 1024, 1025, 4097]:
        for m in [1, 3, 64, 1024]:
            P, H = values(rng, (m, n)), values(rng, (m, n))
            assert same(potential(P, H), (P * H).sum(axis=-1)), (m, n)


@SETTINGS
@given(m=sizes, seed=st.integers(0, 2**63 - 1), start=st.integers(0, 2**40))
def test_keyed_uniforms_are_splitmix64(m, seed, start):
    keys = streams.unit_keys(seed, streams.SAMPLE, np.arange(m))
    counters = start + np.arange(m, dtype=np.int64) * 7
    assert same(streams.uniforms(keys, counters), np_uniforms(keys, counters))


@SETTINGS
@given(m=sizes, replicas=st.sampled_from([0, 3]), seed=st.integers(0, 2**32 - 1))
def test_logistic_and_softplus_match_numpy(m, replicas, seed):
    rng = np.random.default_rng(seed)
    shape = (replicas, m) if replicas else (m,)
    x = values(rng, shape, spread=3.0) * 10.0
    flat = x.reshape(-1)
    flat[: min(flat.size, 8)] = [20.0, -20.0, 30.0, -30.0, np.inf, -np.inf, np.nan, 19.999999999999996][: min(flat.size, 8)]
    assert same(sigmoid(x), np_sigmoid(x))
    assert same(softplus(x), np_softplus(x))
    assert same(sigmoid(x[..., ::2]), np_sigmoid(x[..., ::2]))  # a strided view


@SETTINGS
@given(m=sizes, n=small, replicas=st.sampled_from([0, 4]), per_row=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_trace_matches_numpy(m, n, replicas, per_row, seed):
    rng = np.random.default_rng(seed)
    shape = (replicas, m, n) if replicas else (m, n)
    E, H, g = values(rng, shape), values(rng, shape), values(rng, shape[:-1])
    decay = rng.uniform(0.0, 1.0, shape[:-1]) if per_row else 0.784  # a factor per unit: exponential traces
    expected = E * (decay[..., None] if per_row else decay)
    expected += g[..., None] * H
    accumulate_trace(E, decay, g, H)
    assert same(E, expected)


@SETTINGS
@given(m=sizes, n=small, t=st.sampled_from([1, 2, 37, 999, 1000, 5000]), seed=st.integers(0, 2**32 - 1))
def test_adam_matches_numpy(m, n, t, seed):
    rng = np.random.default_rng(seed)
    cfg = AdamConfig(0.9, 0.999, 1e-8, 1000)
    P, M, G = values(rng, (m, n)), values(rng, (m, n)), values(rng, (m, n))
    V = np.abs(values(rng, (m, n)))
    P2, M2, V2 = P.copy(), M.copy(), V.copy()
    adam_ascent(P, M, V, G, t, 0.02, cfg)
    np_adam(P2, M2, V2, G, t, 0.02, cfg)
    assert same(P, P2) and same(M, M2) and same(V, V2)


@SETTINGS
@given(w=small, landings=st.integers(1, 70), t0=st.sampled_from([0, 1, 980, 999, 1000, 5000]),
       seed=st.integers(0, 2**32 - 1))
def test_a_row_learning_at_successive_landings_in_one_call_matches_numpy_step_by_step(w, landings, t0, seed):
    """Landing k: U = E·R_k, Adam step t0 + 1 + k at rate lr_k, then the trace cleared where marked."""
    rng = np.random.default_rng(seed)
    cfg = AdamConfig(0.9, 0.999, 1e-8, 1000)
    P, M, E = values(rng, w), values(rng, w), values(rng, w)
    V = np.abs(values(rng, w))
    R, lr = values(rng, landings), rng.uniform(1e-5, 0.1, landings)
    clear = rng.random(landings) < 0.1
    P2, M2, V2, E2 = P.copy(), M.copy(), V.copy(), E.copy()
    for k in range(landings):
        np_adam(P2, M2, V2, E2 * R[k], t0 + 1 + k, lr[k], cfg)
        if clear[k]:
            E2[:] = 0.0
    consts = [adam_constants(cfg, t) for t in range(cfg.bias_correction_steps)]
    bc1, bc2 = np.array([c[4] for c in consts]), np.array([c[5] for c in consts])
    scratch = [np.empty(landings * w) for _ in range(3)]
    compiled.adam_landings(P, M, V, E, R, lr, clear, t0, bc1, bc2, cfg.bias_correction_steps, cfg.beta1,
                           1.0 - cfg.beta1, cfg.beta2, 1.0 - cfg.beta2, cfg.eps, *scratch)
    assert same(P, P2) and same(M, M2) and same(V, V2) and same(E, E2)


@SETTINGS
@given(rows=st.integers(1, 70), w=small, most=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_rows_learning_at_their_own_landings_side_by_side_match_numpy_row_by_row_step_by_step(rows, w, most, seed):
    """Row j takes K_j steps: step k is U = E_j·R[k, j], Adam step t0_j + 1 + k at rate lr[k, j], then
    E_j cleared where marked; rows with different counts, some correcting their moments, some not."""
    rng = np.random.default_rng(seed)
    cfg = AdamConfig(0.9, 0.999, 1e-8, 1000)
    P, M, E = values(rng, (rows, w)), values(rng, (rows, w)), values(rng, (rows, w))
    V = np.abs(values(rng, (rows, w)))
    R, lr = values(rng, (most, rows)), rng.uniform(1e-5, 0.1, (most, rows))
    clear = rng.random((most, rows)) < 0.1
    K = rng.integers(0, most + 1, rows)
    t0 = rng.choice([0, 1, 980, 999, 1000, 5000], rows)
    P2, M2, V2, E2 = P.copy(), M.copy(), V.copy(), E.copy()
    for j in range(rows):
        for k in range(K[j]):
            np_adam(P2[j], M2[j], V2[j], E2[j] * R[k, j], int(t0[j]) + 1 + k, lr[k, j], cfg)
            if clear[k, j]:
                E2[j] = 0.0
    consts = [adam_constants(cfg, t) for t in range(cfg.bias_correction_steps)]
    bc1, bc2 = np.array([c[4] for c in consts]), np.array([c[5] for c in consts])
    scratch = [np.empty(rows * w) for _ in range(4)] + [np.empty(most * rows) for _ in range(2)]
    compiled.adam_landings_rows(P.reshape(-1), M.reshape(-1), V.reshape(-1), E.reshape(-1), R, lr, clear, K, t0,
                                bc1, bc2, cfg.bias_correction_steps, cfg.beta1, 1.0 - cfg.beta1, cfg.beta2,
                                1.0 - cfg.beta2, cfg.eps, *scratch)
    assert same(P, P2) and same(M, M2) and same(V, V2) and same(E, E2)


def moments_at_rest(rng, shape, cfg):
    """(P, M, V, E) where many weights have had no gradient for long: m subnormal, stuck where
    m·β₁ rounds to m (2⁻¹⁰⁷⁴ times 1 to 5 at β₁ = 0.9) or still falling (larger multiples), or
    ±0; v normal, subnormal (falling or stuck) or 0; their traces often exactly 0; a few weights
    of magnitude near 0 (for which the increment would not vanish), the rest as :func:`values`
    gives them."""
    tiny = np.float64(5e-324)
    P, M, E = values(rng, shape), values(rng, shape), values(rng, shape)
    V = np.abs(values(rng, shape))
    rest = rng.random(shape) < 0.6
    M[rest] = rng.choice([-1.0, 1.0], rest.sum()) * tiny * rng.choice([1, 2, 4, 5, 6, 40, 2**40, 2**51], rest.sum())
    V[rest & (rng.random(shape) < 0.3)] = tiny * rng.choice([1, 7, 499, 500, 2**30, 2**51], 1)[0]
    M[rest & (rng.random(shape) < 0.1)] = rng.choice([0.0, -0.0])
    zero_v = rest & (rng.random(shape) < 0.05)
    V[zero_v] = rng.choice([0.0, -0.0], zero_v.sum())
    E[rest & (rng.random(shape) < 0.7)] = 0.0
    small = rng.random(shape) < 0.05
    P[small] = rng.choice([1e-310, 1e-300, 1e-290, 1e-285], small.sum())
    return P, M, V, E


def kernel_constants(cfg):
    consts = [adam_constants(cfg, t) for t in range(cfg.bias_correction_steps)]
    return np.array([c[4] for c in consts]), np.array([c[5] for c in consts])


@pytest.mark.parametrize("beta", [0.51, 0.6, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999])
def test_a_subnormal_scaled_from_its_bit_pattern_is_the_processors_product(beta):
    """fl(x·β) for x = ±k·2⁻¹⁰⁷⁴, from k in integers and normal doubles: every k up to 3,000 (ties
    included: k·0.75 ends in .5 for every k = 2 mod 4), 20,000 more at random, the largest ones."""
    rng = np.random.default_rng(7)
    k = np.concatenate([np.arange(1, 3000), rng.integers(1, 2**52, 20000), 2**52 - np.arange(1, 100)]).astype(np.int64)
    for bits in (k, k | np.int64(-2**63)):
        got = np.array([at_rest.scaled_below_normal(b, beta) for b in bits])
        assert np.array_equal(got, (bits.view(np.float64) * beta).view(np.int64))


@SETTINGS
@given(w=small, steps=st.integers(1, 40), t0=st.sampled_from([0, 999, 5000]), silent=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_weights_at_rest_with_subnormal_moments_learn_as_numpy_computes_them(w, steps, t0, silent, seed):
    """Weights at rest (no gradient, m or v below the normal range) are given their numbers from
    their bit patterns; every bit of P, M and V is still NumPy's, step after step, one call per step."""
    rng = np.random.default_rng(seed)
    cfg = AdamConfig(0.9, 0.999, 1e-8, 1000)
    P, M, V, E = moments_at_rest(rng, w, cfg)
    R = np.zeros(steps) if silent else values(rng, steps)
    P2, M2, V2 = P.copy(), M.copy(), V.copy()
    for k in range(steps):
        t = t0 + 1 + k
        np_adam(P2, M2, V2, E * R[k], t, 0.01, cfg)
        compiled.adam_flat(P, M, V, E * R[k], 0.01, *adam_constants(cfg, t))
        assert same(P, P2) and same(M, M2) and same(V, V2)


@SETTINGS
@given(rows=st.integers(1, 40), w=small, most=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_rows_at_rest_learning_at_their_landings_match_numpy_step_by_step(rows, w, most, seed):
    """The same for the landings' kernels, one row (``adam_landings``) and rows side by side
    (``adam_landings_rows``): silent rows (every R zero), zero traces, traces cleared on the way,
    a NaN or an infinite R (nothing frozen then), tiny weights."""
    rng = np.random.default_rng(seed)
    cfg = AdamConfig(0.9, 0.999, 1e-8, 1000)
    P, M, V, E = moments_at_rest(rng, (rows, w), cfg)
    R, lr = values(rng, (most, rows)), rng.uniform(1e-5, 0.1, (most, rows))
    R[:, rng.random(rows) < 0.5] = 0.0
    if rng.random() < 0.2:
        R[rng.integers(most), rng.integers(rows)] = rng.choice([np.nan, np.inf])
    clear = rng.random((most, rows)) < 0.1
    K = rng.integers(0, most + 1, rows)
    t0 = rng.choice([0, 999, 5000], rows)
    P2, M2, V2, E2 = P.copy(), M.copy(), V.copy(), E.copy()
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(rows):
            for k in range(K[j]):
                np_adam(P2[j], M2[j], V2[j], E2[j] * R[k, j], int(t0[j]) + 1 + k, lr[k, j], cfg)
                if clear[k, j]:
                    E2[j] = 0.0
    bc1, bc2 = kernel_constants(cfg)
    const = (cfg.bias_correction_steps, cfg.beta1, 1.0 - cfg.beta1, cfg.beta2, 1.0 - cfg.beta2, cfg.eps)
    one = [a.copy() for a in (P, M, V, E)]
    for j in range(rows):
        scratch = [np.empty(max(1, K[j]) * w) for _ in range(3)]
        compiled.adam_landings(*(a[j] for a in one), R[:K[j], j].copy(), lr[:K[j], j].copy(), clear[:K[j], j].copy(),
                               int(t0[j]), bc1, bc2, *const, *scratch)
    assert all(same(a, b) for a, b in zip(one, (P2, M2, V2, E2)))
    scratch = [np.empty(rows * w) for _ in range(4)] + [np.empty(most * rows) for _ in range(2)]
    compiled.adam_landings_rows(P.reshape(-1), M.reshape(-1), V.reshape(-1), E.reshape(-1), R, lr, clear, K, t0,
                                bc1, bc2, *const, *scratch)
    assert same(P, P2) and same(M, M2) and same(V, V2) and same(E, E2)


@SETTINGS
@given(senders=st.integers(1, 40), m=st.integers(1, 70), n=st.integers(2, 70), sends=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_errors_landing_in_one_call_match_the_sum_by_sender_and_the_rules_numpy(senders, m, n, sends, seed):
    """R = the block summed in sender order, g = R·f', E ← λγE + g⊗H, the error sent on P[:, :-1]·g."""
    rng = np.random.default_rng(seed)
    block, slope = values(rng, (senders, m)), np.abs(values(rng, m))
    P, H, E = values(rng, (m, n)), values(rng, (m, n)), values(rng, (m, n))
    E2 = E.copy()
    R2 = sum_by_sender([(np.arange(senders), np.arange(m), block)], m)
    g2 = R2 * slope
    E2 *= 0.72
    E2 += g2[:, None] * H
    R, g = np.empty(m), np.empty(m)
    C = np.empty((m, n - 1) if sends else (0, 0))
    compiled.error_lands(block, slope, H, E, 0.72, P, R, g, C)
    assert same(R, R2) and same(g, g2) and same(E, E2)
    if sends:
        assert same(C, P[:, :-1] * g2[:, None])


@SETTINGS
@given(m=st.integers(1, 70), n=st.integers(1, 70), seed=st.integers(0, 2**32 - 1))
def test_a_hidden_unit_keeps_its_inputs_and_slope_as_the_rules_numpy_keeps_them(m, n, seed):
    """sample_H[rows] = H[rows] and slope[rows] = σ(1 − σ) (the Bernoulli kind's derivative), the
    other rows untouched."""
    from asyncneurons.learning.units import UNIT_KINDS
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(m, size=rng.integers(1, m + 1), replace=False)).astype(np.int64)
    H, sigma = values(rng, (m, n)), rng.random(m)
    sample_H, slope = values(rng, (m, n)), values(rng, m)
    H2, slope2 = sample_H.copy(), slope.copy()
    H2[rows] = H[rows]
    slope2[rows] = UNIT_KINDS["bernoulli"].derivative(sigma[rows])
    compiled.keep_inputs(rows, H, sigma, sample_H, slope)
    assert same(sample_H, H2) and same(slope, slope2)


@SETTINGS
@given(m=st.integers(1, 12), n=st.integers(2, 70), seed=st.integers(0, 2**32 - 1))
def test_the_outputs_error_is_sent_as_the_rules_numpy_sends_it(m, n, seed):
    """C = P[:, :-1] · g[:, None] with the score g = (values − π)/T, as the window and the rule compute them."""
    rng = np.random.default_rng(seed)
    v = np.zeros(m)
    v[rng.integers(m)] = 1.0
    probs, P, T = rng.random(m + 1), values(rng, (m, n)), float(rng.uniform(0.1, 3.0))
    C = np.empty((m, n - 1))
    compiled.error_sent(v, probs, T, P, C)
    assert same(C, P[..., :-1] * ((v - probs[:m]) / T)[..., None])


@SETTINGS
@given(rows=st.integers(1, 300), cols=sizes, seed=st.integers(0, 2**32 - 1))
def test_ordered_row_sums_add_rows_in_order(rows, cols, seed):
    rng = np.random.default_rng(seed)
    if rows * cols > 200_000:
        cols = max(1, 200_000 // rows)
    Z = values(rng, (rows, cols))
    assert same(sum_rows(Z), np.add.accumulate(Z, axis=0)[-1])
    uids = np.arange(rows) * 3 + 1
    assert same(sum_by_sender([(uids, np.arange(cols), Z)], cols), np.add.accumulate(Z, axis=0)[-1])


def test_retrograde_sums_of_shuffled_senders_follow_sender_order():
    rng = np.random.default_rng(2)
    Z = values(rng, (6, 4))
    uids = np.array([5, 1, 3, 0, 4, 2])
    expected = np.add.accumulate(Z[np.argsort(uids)], axis=0)[-1]
    assert same(sum_by_sender([(uids, np.arange(4), Z)], 4), expected)


class _Group:
    """The arrays of one group, as the engine holds them."""

    def __init__(self, rng, m, n):
        self.P, self.H, self.E = values(rng, (m, n), 1.0), values(rng, (m, n), 1.0), values(rng, (m, n), 1.0)
        self.H[:, -1] = 1.0
        self.M, self.V = values(rng, (m, n)), np.abs(values(rng, (m, n)))
        self.keys = streams.unit_keys(int(rng.integers(2**62)), streams.SAMPLE, np.arange(m) + 7)
        self.counters = rng.integers(0, 10**6, m)
        self.t = 3


@SETTINGS
@given(m=st.integers(1, 1024), n=sizes, kind=st.sampled_from(["bernoulli", "softmax", "categorical"]),
       temperature=st.sampled_from([1.0, 0.5, 3.0]), per_row=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_a_compiled_firing_equals_sample_score_and_trace(m, n, kind, temperature, per_row, seed):
    rng = np.random.default_rng(seed)
    if m * n > 100_000:
        n = max(2, 100_000 // m)
    if kind != "bernoulli":
        m = min(m, 9)
    grp, lp, k = _Group(rng, m, n), LayerParams(temperature, 1.0), UNIT_KINDS[kind]
    E, counters = grp.E.copy(), grp.counters.copy()
    pot = (grp.P * grp.H).sum(axis=-1)
    u1 = np_uniforms(grp.keys, counters)
    v_ref, aux_ref = k.sample(pot, lp, u1, None)
    g_ref = k.score(v_ref, pot, aux_ref, lp)
    decay = rng.uniform(0.0, 1.0, m) if per_row else 0.72  # a factor per unit: exponential traces
    E *= decay[:, None] if per_row else decay
    E += g_ref[:, None] * grp.H
    values_, aux, g = sample_and_trace(k, grp.P, grp.H, grp.E, grp.keys, grp.counters, lp, decay)
    assert same(values_, v_ref) and same(g, g_ref) and same(grp.E, E)
    assert np.array_equal(grp.counters, counters + 1)
    if kind == "bernoulli":
        assert same(aux, aux_ref)
    else:
        assert same(aux[0], aux_ref[0]) and aux[1] == aux_ref[1]


@SETTINGS
@given(m=st.integers(1, 1024), n=st.integers(2, 1025), scalar=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_weight_max_learning_step_matches_numpy(m, n, scalar, seed):
    from asyncneurons.learning.rules.weight_max import WeightMax
    rng = np.random.default_rng(seed)
    if m * n > 100_000:
        n = max(2, 100_000 // m)
    grp = _Group(rng, m, n)
    grp.retro_buckets, grp.layer = [object()], 1
    R = float(rng.standard_normal()) if scalar else values(rng, (m,), 2.0)
    P, M, V = grp.P.copy(), grp.M.copy(), grp.V.copy()
    U = grp.E * (R if scalar else R[:, None])
    cfg = AdamConfig()
    np_adam(P, M, V, U, 4, 0.003, cfg)
    C_ref = (2.0 * P[:, :-1]) * U[:, :-1]
    sent = []

    class Sim:
        adam = cfg

        def lr(self, layer, step):
            return 0.003

        def send_retro(self, group, C, step, reset):
            sent.append(C)

    rule = WeightMax.__new__(WeightMax)
    rule.p = 2.0
    rule._learn(Sim(), grp, R, 1, False)
    assert same(grp.P, P) and same(grp.M, M) and same(grp.V, V) and same(sent[0], C_ref)
    grp2 = _Group(np.random.default_rng(seed), m, n)  # the plain REINFORCE step
    P2, M2, V2 = grp2.P.copy(), grp2.M.copy(), grp2.V.copy()
    U2 = reinforce_update(grp2, R, 0.003, cfg)
    np_adam(P2, M2, V2, grp2.E * (R if scalar else R[:, None]), 4, 0.003, cfg)
    assert same(grp2.P, P2) and same(U2, grp2.E * (R if scalar else R[:, None]))


@pytest.mark.parametrize("hidden", [[64, 32], [5], [1024, 512]])
def test_critic_matches_the_numpy_critic(hidden):
    rng = np.random.default_rng(len(hidden))
    kw = dict(lambda_=0.8, gamma=0.98, lr_start=[0.04, 4e-5, 4e-6][:len(hidden) + 1],
              lr_end=[0.004, 4e-5, 4e-6][:len(hidden) + 1], lr_steps=50, adam=AdamConfig())
    c = Critic(4, hidden, 11, **kw)
    P = [p.copy() for p in c.P]
    Z, M, V = [np.zeros_like(p) for p in P], [np.zeros_like(p) for p in P], [np.zeros_like(p) for p in P]
    for step in range(1, 30):
        s = rng.standard_normal(4) * 3
        value, grads = c.value_and_grad(s)
        # the NumPy critic
        x, inputs, pots = np.append(s, 1.0), [], []
        for l, p in enumerate(P):
            pot = p @ x
            inputs.append(x)
            pots.append(pot)
            x = np.append(pot if l == len(P) - 1 else np_softplus(pot), 1.0)
        d, ref = np.ones(1), [None] * len(P)
        for l in range(len(P) - 1, -1, -1):
            ref[l] = d[:, None] * inputs[l][None, :]
            if l:
                d = (P[l][:, :-1].T @ d) * np_sigmoid(pots[l - 1])
        assert value == float(pots[-1][0]) and all(same(a, b) for a, b in zip(grads, ref))
        delta = float(rng.standard_normal())
        c.learn(delta, step)
        for l in range(len(P)):
            lr = kw["lr_start"][l] + (kw["lr_end"][l] - kw["lr_start"][l]) * min(step, 50) / 50
            np_adam(P[l], M[l], V[l], Z[l] * delta, step, lr, kw["adam"])
        c.record(grads)
        for z, g in zip(Z, ref):
            z *= 0.8 * 0.98
            z += g
        assert all(same(a, b) for a, b in zip(c.P, P)) and all(same(a, b) for a, b in zip(c.Z, Z))


def test_the_critic_keeps_its_arrays_when_a_checkpoint_assigns_them():
    c = Critic(3, [4], 1, lambda_=0.5, gamma=0.9, lr_start=0.1, lr_end=0.1, lr_steps=10, adam=AdamConfig())
    c.P = [np.full_like(p, 0.5) for p in c.P]
    c.learn(1.0, 1)  # Z is zero: nothing moves
    assert all((p == 0.5).all() for p in c.P)
    value, grads = c.value_and_grad(np.ones(3))
    c.record(grads)
    c.learn(1.0, 2)
    assert all((p != 0.5).any() for p in c.P)


def test_compiled_kernels_are_cached_on_disk():
    assert compiled.potential_rows._cache.__class__.__name__ != "NullCache"
