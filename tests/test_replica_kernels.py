"""Replicas' compiled kernels give every replica the bits of the single run's kernel on its block.

Each test stacks R independent groups (or critics), runs the replica path once on all of them,
and compares replica r byte for byte with the single run's code on group r alone.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncneurons.engine import replica_kernels
from asyncneurons.learning import streams
from asyncneurons.learning.critic import Critic
from asyncneurons.learning.kernels import sum_rows
from asyncneurons.learning.optim import AdamConfig
from asyncneurons.engine.replicas import _BatchCritic
from asyncneurons.learning.units import UNIT_KINDS, LayerParams, sample_and_trace

SETTINGS = settings(max_examples=40, deadline=None)


def same(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def spread(rng, shape, scale=3.0):
    """Values over several magnitudes and both signs, with exact zeros of either sign."""
    x = rng.standard_normal(shape) * 10.0 ** rng.uniform(-scale, scale / 2, shape)
    x[rng.random(shape) < 0.05] = 0.0
    x[rng.random(shape) < 0.02] = -0.0
    return x


@SETTINGS
@given(R=st.integers(1, 6), m=st.integers(1, 40), cols=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_each_replicas_retrograde_sum_is_its_layers_ordered_sum(R, m, cols, seed):
    C = spread(np.random.default_rng(seed), (R * m, cols))
    out = np.empty((R, cols))
    replica_kernels.sum_blocks(C, m, out)
    for r in range(R):
        assert same(out[r], sum_rows(C[r * m:(r + 1) * m]))


@SETTINGS
@given(R=st.integers(1, 5), m=st.integers(1, 30), n=st.integers(0, 30), seed=st.integers(0, 2**32 - 1))
def test_every_unit_of_every_replica_holds_its_replicas_inputs_and_the_bias_input(R, m, n, seed):
    x = spread(np.random.default_rng(seed), (R, n))
    H = np.full((R, m, n + 1), np.nan)
    replica_kernels.hold_inputs(x, H)
    expected = np.empty_like(H)
    expected[..., :-1] = x[:, None, :]
    expected[..., -1] = 1.0
    assert same(H, expected)


@SETTINGS
@given(R=st.integers(1, 5), m=st.integers(1, 6), n=st.integers(1, 40), kind=st.sampled_from(["softmax", "categorical"]),
       per_row=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_a_population_output_samples_in_each_replica_as_its_group_alone(R, m, n, kind, per_row, seed):
    """Logits, the keyed draw at the replica's first unit, one-hot sample, score and trace."""
    rng = np.random.default_rng(seed)
    P, H, E = spread(rng, (R, m, n), 1.0), spread(rng, (R, m, n), 1.0), spread(rng, (R, m, n), 1.0)
    keys = np.stack([streams.unit_keys(seed + r, streams.SAMPLE, np.arange(m)) for r in range(R)])
    counters = rng.integers(0, 1000, (R, m)).astype(np.int64)
    decay = rng.uniform(0.0, 1.0, (R, m)) if per_row else 0.72
    lp = LayerParams(float(rng.uniform(0.5, 2.0)), 1.0)
    alone = []
    for r in range(R):  # each replica's group firing alone, on copies
        E_r, c_r = E[r].copy(), counters[r].copy()
        fired = sample_and_trace(UNIT_KINDS[kind], P[r].copy(), H[r].copy(), E_r, keys[r].copy(), c_r, lp,
                                 decay[r].copy() if per_row else decay)
        alone.append((fired, E_r, c_r))

    n_logits = m + 1 if kind == "softmax" else m
    pot, z = np.empty(R * m), np.empty((R, n_logits))
    replica_kernels.logits_rows(P.reshape(R * m, n), H.reshape(R * m, n), lp.temperature, m, n_logits, pot, z)
    np.exp(z, out=z)
    values, g, actions = np.empty(R * m), np.empty(R * m), np.empty(R, dtype=np.int64)
    flat_counters = counters.reshape(-1).copy()
    replica_kernels.categorical_rows(z, keys.reshape(-1), flat_counters, lp.temperature,
                                     0.0 if per_row else decay, decay.reshape(-1) if per_row else np.empty(0),
                                     H.reshape(R * m, n), E.reshape(R * m, n), values, g, actions)
    for r, ((v, (pi, a), gr), E_r, c_r) in enumerate(alone):
        assert same(values[r * m:(r + 1) * m], v) and same(g[r * m:(r + 1) * m], gr)
        assert same(z[r], pi) and actions[r] == a
        assert same(E[r], E_r) and np.array_equal(flat_counters[r * m:(r + 1) * m], c_r)


def _critics(R, n_obs, hidden, seed):
    kw = dict(lambda_=0.8, gamma=0.98, lr_start=[0.04, 4e-5, 4e-6], lr_end=[0.004, 4e-5, 4e-6], lr_steps=500,
              adam=AdamConfig(), bias_scale=1e-3)
    seeds = [seed + r for r in range(R)]
    return _BatchCritic(n_obs, hidden, seeds, **kw), [Critic(n_obs, hidden, s, **kw) for s in seeds]


@settings(max_examples=15, deadline=None)
@given(R=st.integers(1, 4), n_obs=st.integers(1, 8), seed=st.integers(0, 2**31))
def test_the_batch_critic_evaluates_learns_and_records_as_each_critic_alone(R, n_obs, seed):
    """V, ∇V, the Adam step at each replica's own δ and the trace cleared where its episode began."""
    rng = np.random.default_rng(seed)
    batch, alone = _critics(R, n_obs, [12, 6], seed)
    for step in range(1, 5):
        S = rng.standard_normal((R, n_obs)) * 3.0
        reset = rng.random(R) < 0.3
        value, grads = batch.value_and_grad(S)
        batch.record(grads, reset)
        delta = rng.standard_normal(R)
        batch.learn(delta, step)
        for r, c in enumerate(alone):
            v, gr = c.value_and_grad(S[r])
            assert same(value[r], v)
            for a, b in zip(grads, gr):
                assert same(a[r], b)
            if reset[r]:
                c.reset_traces()
            c.record(gr)
            c.learn(float(delta[r]), step)
    for r, c in enumerate(alone):
        for l in range(len(c.P)):
            assert same(batch.P[l][r], c.P[l]) and same(batch.Z[l][r], c.Z[l])
            assert same(batch.M[l][r], c.M[l]) and same(batch.V[l][r], c.V[l])


@SETTINGS
@given(R=st.integers(1, 4), sizes=st.lists(st.integers(1, 12), min_size=2, max_size=4), reset=st.booleans(),
       correct=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_weight_max_s_cascade_over_replicas_is_each_chain_alone(R, sizes, reset, correct, seed):
    """The output's rows of replica r get δ_r; each replica's layers learn and send on as its
    chain alone (compiled.weight_max_chain), traces cleared only in the replicas that reset."""
    from asyncneurons.learning import compiled

    rng = np.random.default_rng(seed)
    shapes = [(sizes[l + 1], sizes[l] + 1) for l in range(len(sizes) - 1)]  # layer l: units × (inputs + 1)
    P, M, E = ([spread(rng, (R, *s), 1.0) for s in shapes] for _ in range(3))
    V = [np.abs(spread(rng, (R, *s), 1.0)) for s in shapes]
    deltas, resets = spread(rng, R, 1.0), rng.random(R) < 0.5 if reset else np.zeros(R, dtype=bool)
    L = len(shapes)
    lrs, bc1s, bc2s = rng.uniform(1e-4, 1e-1, L), rng.uniform(0.1, 1.0, L), rng.uniform(0.001, 1.0, L)
    corrects = np.full(L, correct)
    consts = (0.9, 0.1, 0.999, 0.001)

    alone = []
    for r in range(R):
        Ps, Ms, Vs, Es = ([a[r].copy() for a in arrays] for arrays in (P, M, V, E))
        Cs = tuple(np.empty((m, n - (0 if l == 0 else 1))) for l, (m, n) in enumerate(shapes))
        compiled.weight_max_chain(tuple(Ps), tuple(Ms), tuple(Vs), tuple(Es), Cs, tuple(np.empty(m) for m, _ in shapes),
                                  float(deltas[r]), lrs, *consts, bc1s, bc2s, corrects, 1e-8, bool(resets[r]))
        alone.append((Ps, Ms, Vs, Es))

    rows = lambda arrays: tuple(a.reshape(R * a.shape[1], a.shape[2]) for a in arrays)  # noqa: E731
    Cs = tuple(np.empty((R * m, n - (0 if l == 0 else 1))) for l, (m, n) in enumerate(shapes))
    replica_kernels.weight_max_chain_rows(rows(P), rows(M), rows(V), rows(E), Cs, tuple(np.empty(R * m) for m, _ in shapes),
                                          deltas, lrs, *consts, bc1s, bc2s, corrects, 1e-8, resets)
    for r, (Ps, Ms, Vs, Es) in enumerate(alone):
        for l in range(L):
            assert same(P[l][r], Ps[l]) and same(M[l][r], Ms[l]) and same(V[l][r], Vs[l]) and same(E[l][r], Es[l])


@settings(max_examples=15, deadline=None)
@given(R=st.integers(1, 4), n_obs=st.integers(1, 8), seed=st.integers(0, 2**31))
def test_the_batch_critic_learns_from_its_gradient_factors_as_each_critic_alone(R, n_obs, seed):
    """evaluate's factors (input and backward term per layer) give V and the learning step with
    the trace recorded, cleared where a replica's episode began, as each critic alone."""
    rng = np.random.default_rng(seed)
    batch, alone = _critics(R, n_obs, [12, 6], seed)
    for step in range(1, 6):
        S = rng.standard_normal((R, n_obs)) * 3.0
        reset = rng.random(R) < 0.3
        delta = rng.standard_normal(R)
        value, factors = batch.evaluate(S)
        batch.learn_and_record(delta, step, reset, factors)
        for r, c in enumerate(alone):
            v, gr = c.value_and_grad(S[r])
            assert same(value[r], v)
            c.learn_and_record(float(delta[r]), step, bool(reset[r]), gr)
    for r, c in enumerate(alone):
        for l in range(len(c.P)):
            assert same(batch.P[l][r], c.P[l]) and same(batch.Z[l][r], c.Z[l])
            assert same(batch.M[l][r], c.M[l]) and same(batch.V[l][r], c.V[l])
