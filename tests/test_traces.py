"""Traces in continuous time: ``learning.trace = "exponential"`` decays a unit's trace by
exp(−Δt/τ) over the time between its events, and a learning signal uses the trace decayed to the
instant it lands. Every engine path gives the same bits; clock firing at period T with
exp(−T/τ) = λγ gives the per-sample run."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import resumed_equals_whole
from test_windows import assert_modes_agree

from asyncneurons.learning import traces
from asyncneurons.errors import ScenarioError
from asyncneurons.learning.optim import AdamConfig
from asyncneurons.engine.reference import Reference
from asyncneurons.engine.replicas import Replicas, supports
from asyncneurons.learning.rules.global_reinforce import GlobalReinforce
from asyncneurons.model.scenario import parse_scenario
from asyncneurons.engine.simulation import Simulation

EXPONENTIAL = {"trace": "exponential", "trace_tau": 6.0}


def _learning(**over):
    return {"learning": {**EXPONENTIAL, "lambda": 0.0, **over}}


def _group(m=2, n=3, tau=4.0):
    E = np.zeros((m, n))
    return SimpleNamespace(E=E, decay=0.0, tau=tau, trace_time=np.zeros(m))


# ------------------------------------------------------------------ the trace at given event times
def test_a_trace_decays_by_the_time_between_its_records_and_learning_reads_it_at_the_landing():
    tau = 4.0
    grp = _group(tau=tau)
    g1, g2, g3 = np.array([0.5, -1.0]), np.array([2.0, 0.25]), np.array([-0.75, 1.5])
    H1, H2, H3 = (np.arange(6.0).reshape(2, 3) + k for k in (1.0, 2.0, 3.0))
    traces.record(grp, g1, H1, 1.0)  # both units record at 1 ms
    traces.record(grp, g2, H2, 3.0)  # and at 3 ms
    traces.record(grp, g3[1:], H3[1:], np.array([3.5]), rows=np.array([1]))  # unit 1 alone at 3.5 ms
    assert grp.trace_time.tolist() == [3.0, 3.5]
    # by hand: each record decays what is there by exp(−Δt/τ), Δt the time since that unit's last record
    e1 = np.outer(g1, [1, 1, 1]) * H1
    e2 = np.outer(g2, [1, 1, 1]) * H2
    unit0 = math.exp(-2.0 / tau) * e1[0] + e2[0]
    unit1 = math.exp(-0.5 / tau) * (math.exp(-2.0 / tau) * e1[1] + e2[1]) + g3[1] * H3[1]
    np.testing.assert_allclose(grp.E, [unit0, unit1], rtol=1e-15)
    # a signal landing at 5 ms reads the trace decayed to 5 ms; the trace and its stamps stay
    stored = grp.E.copy()
    seen = traces.at_landing(grp, SimpleNamespace(now=5.0))
    np.testing.assert_allclose(seen, [math.exp(-2.0 / tau) * unit0, math.exp(-1.5 / tau) * unit1], rtol=1e-15)
    assert np.array_equal(grp.E, stored) and grp.trace_time.tolist() == [3.0, 3.5]
    # a record at the instant of the last one adds without decaying (exp(0) = 1 exactly)
    traces.record(grp, g1, H1, np.array([3.0, 3.5]))
    assert np.array_equal(grp.E, stored + g1[:, None] * H1)


def test_global_reinforce_learns_from_the_trace_decayed_to_the_landing_time():
    """δ landing 3 ms after the last record moves the weights as the per-sample rule does with
    the trace multiplied by exp(−3/τ) by hand."""
    rng = np.random.default_rng(5)
    adam = AdamConfig()
    sim = SimpleNamespace(now=5.0, adam=adam, lr=lambda layer, step: 0.01)
    exp_grp = SimpleNamespace(P=rng.standard_normal((3, 4)), E=rng.standard_normal((3, 4)), M=np.zeros((3, 4)),
                              V=np.zeros((3, 4)), t=0, layer=1, tau=4.0, trace_time=np.array([2.0, 2.0, 4.5]),
                              decay=0.0)
    by_hand = SimpleNamespace(P=exp_grp.P.copy(), M=np.zeros((3, 4)), V=np.zeros((3, 4)), t=0, layer=1, tau=None,
                              E=exp_grp.E * traces.decay_factors([2.0, 2.0, 4.5], 5.0, 4.0)[:, None])
    np.testing.assert_allclose(by_hand.E[0] / exp_grp.E[0], math.exp(-3.0 / 4.0), rtol=1e-15)
    E_before = exp_grp.E.copy()
    rule = GlobalReinforce(None)
    for _ in range(3):
        rule.on_reward(sim, exp_grp, 0.7, 1, False)
        rule.on_reward(sim, by_hand, 0.7, 1, False)
    assert np.array_equal(exp_grp.P, by_hand.P) and np.array_equal(exp_grp.E, E_before)


def test_the_trace_of_a_run_is_the_sum_of_its_samples_decayed_to_the_last_one(scenario):
    """Poisson firing (irregular times), no hidden layer, a learning rate too small to move any
    weight: the output's trace
    after a few steps equals Σ_j exp(−(t_n − t_j)/τ) g_j ⊗ h_j over its recorded samples, with
    g = (h − σ(w·x))/T computed from the events."""
    s = scenario(experiment={"episodes": 1000}, network={"hidden": [], "output": "bernoulli"},
                 learning={**EXPONENTIAL, "lr": 1e-300, "lr_end": None},
                 timing={"firing": "poisson", "firing_rate": 0.4}, env={"pacing": "clock", "period": 5.0})
    events, rows = [], []
    sim = Simulation(s, max_ticks=8, on_episode=rows.append,
                     on_event=lambda t, u, k, v, w: events.append((t, u, k, v))).run()
    assert not rows  # no episode ended: nothing cleared the trace
    out = sim.output
    assert np.array_equal(out.P, Simulation(s).output.P)  # the weights the samples were drawn with
    obs, held, terms = {}, None, []
    for t, unit, kind, v in events:
        if kind == "observation":
            obs[unit] = v
            held = np.array([obs.get(n, 0.0) for n in out.sources] + [1.0])
        elif kind == "sample" and unit == out.names[0]:
            p = 1.0 / (1.0 + math.exp(-float(out.P[0] @ held)))
            terms.append((t, (v - p) * held))
    assert len(terms) >= 8 and len({round(t, 9) for t, _ in terms}) == len(terms)
    t_n = terms[-1][0]
    expected = sum(math.exp(-(t_n - t) / 6.0) * e for t, e in terms)
    np.testing.assert_allclose(out.E[0], expected, rtol=1e-12)
    assert out.trace_time[0] == t_n


# ------------------------------------------------------------------ every engine path, the same bits
WINDOWED = {
    "weight max, compiled Bernoulli firing": {},
    "global reinforce, clock firing": {"learning": {"rule": "global_reinforce"},
                                       "timing": {"firing": "clock", "firing_period": 3.0}},
    "STE backprop (errors recorded when they land)": {"learning": {"rule": "ste_backprop"},
                                                      "timing": {"retro_delay": 1.5}},
    "softmax population, wait pacing": {"env": {"id": "Acrobot-v1", "pacing": "wait"}},
    "Gaussian outputs (rule's own record)": {"env": {"id": "MountainCarContinuous-v0"},
                                             "network": {"variance": [1.0, 1.0, 0.5]},
                                             "learning": {"rule": "global_reinforce"}},
    "on_input with refractory": {"timing": {"firing": "on_input", "refractory": 2.0}},
}


@pytest.mark.parametrize("over", list(WINDOWED.values()), ids=list(WINDOWED))
def test_windows_and_the_event_engine_give_identical_runs_with_exponential_traces(scenario, over):
    over = {**over, "learning": {**EXPONENTIAL, "lambda": 0.0, **over.get("learning", {})}}
    on, off = assert_modes_agree(scenario, over, 120, 120 * 5)
    assert all(g.tau == 6.0 for g in on.groups)
    stamps = [{n: t for g in sim.groups for n, t in zip(g.names, g.trace_time.tolist())} for sim in (on, off)]
    assert stamps[0] == stamps[1] and max(stamps[0].values()) > 0


@pytest.mark.parametrize("over", [
    {"timing": {"synapse_delay": 1.5, "reward_delay": 2.0}, "env": {"pacing": "clock", "period": 10.0}},
    {"timing": {"firing": "clock", "firing_period": 1.0, "synapse_delay": 0.5}, "env": {"pacing": "clock", "period": 4.0}},
    {"timing": {"synapse_delay": 0.5, "retro_delay": 0.25, "reward_delay": 0.75}, "learning": {"rule": "weight_max"}},
])
def test_fused_and_unfused_runs_are_identical_with_exponential_traces(scenario, over):
    s = scenario(experiment={"episodes": 1000}, network={"hidden": [16, 8]},
                 **{**over, **_learning(lr=[0.02, 2e-3, 2e-4], lr_end=None, **over.get("learning", {}))})
    runs = []
    for fuse in (True, False):
        rows = []
        sim = Simulation(s, fuse=fuse, on_episode=rows.append, max_ticks=200).run()
        runs.append((sim, [(r["return"], r["length"], r["sim_time_ms"]) for r in rows]))
    (fused, rows_f), (unfused, rows_u) = runs
    assert len(fused.groups) < len(unfused.groups) and rows_f == rows_u
    for layer, m in fused.layer_matrices().items():
        np.testing.assert_array_equal(unfused.layer_matrices()[layer], m)


@pytest.mark.parametrize("rule", ["global_reinforce", "weight_max", "ste_backprop"])
def test_replicas_the_reference_and_the_event_engine_agree_with_exponential_traces(scenario, rule):
    """In the synchronous limit every event is at one instant: the factors are exp(0) = 1, and
    every path adds the terms without decay."""
    s = scenario(experiment={"episodes": 1000}, **_learning(rule=rule))
    assert supports(s)
    rep = Replicas(s, [0, 1], max_ticks=150).run()
    for r in (0, 1):
        sim = Simulation(s, r, max_ticks=150).run()
        ref = Reference(s, r, max_ticks=150).run()
        for layer, m in sim.layer_matrices().items():
            np.testing.assert_array_equal(rep.layer_matrices(r)[layer], m)
            np.testing.assert_array_equal(ref.layer_matrices()[layer], m)

def test_in_the_synchronous_limit_exponential_traces_are_per_sample_traces_with_lambda_gamma_one(scenario):
    """Without a critic γ enters nothing but the actor's per-sample decay: λ = γ = 1 there."""
    over = {"experiment": {"episodes": 1000}, "env": {"id": "CartPole-v1"}}
    exponential = Simulation(scenario(**over, learning={"critic": "none", **EXPONENTIAL}), max_ticks=200).run()
    per_sample = Simulation(scenario(**{**over, "env": {**over["env"], "gamma": 1.0}},
                                     learning={"critic": "none", "lambda": 1.0}), max_ticks=200).run()
    for layer, m in per_sample.layer_matrices().items():
        np.testing.assert_array_equal(exponential.layer_matrices()[layer], m)
    assert not np.array_equal(Simulation(scenario(**over, learning={"critic": "none"}), max_ticks=200).run()
                              .layer_matrices()[1], per_sample.layer_matrices()[1])  # λ = 0 is another run


def test_map_prop_relaxation_from_histories_equals_the_message_engine_with_exponential_traces(scenario):
    from test_map_delays import CLOCK, MAP, UNIFORM, _assert_same
    s = scenario(**{**MAP, "learning": {**MAP["learning"], **EXPONENTIAL, "lambda": 0.0}},
                 timing={"reward_delay": 10.0, "synapse_delay": UNIFORM, "retro_delay": UNIFORM, "relax_period": 0.25},
                 env=CLOCK)
    sim = _assert_same(s, 60)
    assert all(g.trace_time.max() > 0 for g in sim.groups)


def test_a_checkpoint_keeps_the_trace_time_stamps(scenario, tmp_path):
    s = scenario(experiment={"episodes": 8}, network={"hidden": [12, 6]},
                 timing={"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 5.0}, "reward_delay": 3.0},
                 env={"pacing": "clock", "period": 20.0}, **_learning(rule="weight_max"))
    resumed_equals_whole(s, tmp_path, 4)


# ------------------------------------------------------------------ the relation to λγ
def _clock_runs(scenario, tau, lambda_=0.8, gamma=0.98, period=2.0, ticks=300, **timing):
    base = dict(experiment={"episodes": 1000}, network={"hidden": [16, 8]}, env={"gamma": gamma},
                timing={"firing": "clock", "firing_period": period, **timing})
    rows_p, rows_e = [], []
    per_sample = Simulation(scenario(**base, learning={"lambda": lambda_, "lr_end": None}),
                            on_episode=rows_p.append, max_ticks=ticks).run()
    exponential = Simulation(scenario(**base, learning={"lambda": 0.0, "lr_end": None, "trace": "exponential",
                                                        "trace_tau": tau}),
                             on_episode=rows_e.append, max_ticks=ticks).run()
    assert len(rows_p) >= 3  # episode ends: traces cleared, dummy steps crossed
    return per_sample, exponential, rows_p, rows_e


def _tau_giving(decay, period):
    """τ = −T/ln(λγ), moved by a few ulps if need be until NumPy's exp(−T/τ) rounds to λγ itself."""
    tau = -period / math.log(decay)
    for _ in range(64):
        f = traces.decay_factors([0.0], period, tau)[0]
        if f == decay:
            return tau
        tau = np.nextafter(tau, math.inf if f < decay else -math.inf)
    raise AssertionError("no τ gives λγ exactly")


def test_clock_firing_at_period_T_with_exp_of_minus_T_over_tau_equal_to_lambda_gamma_is_the_per_sample_run(
        scenario):
    """Every unit records once per period T, and every TD error lands at the instant of the
    samples it follows (zero reward delay): the landing factor is exp(0) = 1 and each record's
    factor is exp(−T/τ). With τ such that this rounds to λγ, the runs are the same bit for bit."""
    tau = _tau_giving(0.8 * 0.98, 2.0)
    per_sample, exponential, rows_p, rows_e = _clock_runs(scenario, tau)
    assert [(r["return"], r["length"]) for r in rows_p] == [(r["return"], r["length"]) for r in rows_e]
    for layer, m in per_sample.layer_matrices().items():
        np.testing.assert_array_equal(exponential.layer_matrices()[layer], m)
    for a, b in zip(per_sample.groups, exponential.groups):
        np.testing.assert_array_equal(a.E, b.E)


def test_with_tau_from_the_formula_the_runs_agree_to_rounding(scenario):
    """τ = −T/ln(λγ) as computed: exp(−T/τ) may differ from λγ in its last bit, and the runs by
    no more than that propagates (1e-12 relative over 300 steps)."""
    tau = -3.0 / math.log(0.51 * 0.98)
    assert traces.decay_factors([0.0], 3.0, tau)[0] != 0.51 * 0.98  # one ulp apart here
    per_sample, exponential, rows_p, rows_e = _clock_runs(scenario, tau, lambda_=0.51, period=3.0)
    assert [r["length"] for r in rows_p] == [r["length"] for r in rows_e]
    for layer, m in per_sample.layer_matrices().items():
        np.testing.assert_allclose(exponential.layer_matrices()[layer], m, rtol=1e-12, atol=1e-300)


def test_a_reward_delay_makes_learning_read_a_decayed_trace(scenario, monkeypatch):
    """With δ landing ρ = 0.5 ms after the samples it follows, the exponential trace has decayed
    by exp(−ρ/τ) when it is used, the per-sample one not at all: the runs part."""
    tau = _tau_giving(0.8 * 0.98, 2.0)
    landed = []
    original = traces.at_landing

    def spy(group, sim):
        if group.tau is not None and group.role == "output" and group.E.any():
            landed.append(traces.decay_factors(group.trace_time, sim.now, group.tau))
        return original(group, sim)

    monkeypatch.setattr(traces, "at_landing", spy)
    per_sample, exponential, _, _ = _clock_runs(scenario, tau, ticks=60, reward_delay=0.5)
    assert landed and all(np.array_equal(f, traces.decay_factors([0.0], 0.5, tau)) for f in landed)
    assert not np.array_equal(per_sample.layer_matrices()[1], exponential.layer_matrices()[1])


# ------------------------------------------------------------------ the scenario keys
@pytest.mark.parametrize("learning, message", [
    ({"trace": "exponential"}, 'learning.trace_tau: missing (trace = "exponential" needs its time constant in ms, > 0)'),
    ({"trace_tau": 5.0}, 'learning.trace_tau: only with trace = "exponential" (per-sample traces decay by λγ at each '
                         'record)'),
    ({"trace": "exponential", "trace_tau": 0.0}, "learning.trace_tau: must be a number > 0 (got 0.0)"),
    ({"trace": "continuous"}, 'learning.trace: must be one of "per_sample", "exponential" (got "continuous")'),
])
def test_trace_keys_are_checked_with_one_line_naming_the_key(learning, message):
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"learning": learning})
    assert str(info.value) == message


def test_per_sample_is_the_default_and_keeps_no_time_stamps(scenario):
    s = scenario()
    assert s.learning.trace == "per_sample" and s.learning.trace_tau is None
    sim = Simulation(s, max_ticks=2)
    assert all(g.tau is None and not hasattr(g, "trace_time") for g in sim.groups)


# ------------------------------------------------------------------ advice
def test_validate_notes_lambda_given_with_exponential_traces_and_traces_that_never_decay():
    from asyncneurons.model.advice import advice
    from asyncneurons.engine.simulation import build_graph

    def notes(**over):
        s = parse_scenario(over)  # from the defaults, where λ is not given
        return advice(s, build_graph(s, 4, ("discrete", 2), 0))

    timed = {"timing": {"firing": "clock", "firing_period": 2.0}}
    assert notes(**timed, learning=EXPONENTIAL | {"lambda": 0.8}) == [
        'learning.lambda has no effect under learning.trace = "exponential": the actor\'s traces decay by '
        'exp(−Δt/τ) with τ = learning.trace_tau = 6 ms. Units sampling every T ms decay as with λγ = exp(−T/τ) '
        '(docs/rules.md, "Traces in time")']
    [never] = notes(learning=EXPONENTIAL)  # zero delays, on_all firing, wait pacing
    assert never.startswith('learning.trace = "exponential" in the synchronous limit') and "λγ = 1" in never
    assert notes(**timed, learning=EXPONENTIAL) == []
    assert notes(timing={"synapse_delay": 0.5}, learning=EXPONENTIAL) == []
    assert notes(timing={"refractory": [0.0, 0.0, 1.0]}, learning=EXPONENTIAL) == []  # the output waits
    assert notes(learning={"lambda": 0.8}) == []  # per-sample traces: λ is what they use


@pytest.mark.parametrize("shape", [(64, 5), (32, 65), (1, 33), (7, 3)])
def test_the_compiled_decay_at_a_landing_gives_the_numpy_trace_to_the_last_bit(shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    for _ in range(50):
        E = rng.normal(size=shape)
        stamps = rng.uniform(0.0, 500.0, size=shape[0])
        now, tau = float(rng.uniform(500.0, 900.0)), float(rng.uniform(1.0, 80.0))
        compiled = Simulation.decayed_trace(E, stamps, now, tau)
        expected = E * traces.decay_factors(stamps, now, tau)[..., None]
        assert compiled.tobytes() == expected.tobytes()


def test_the_compiled_decay_leaves_to_numpy_what_it_does_not_serve():
    E, stamps = np.ones((4, 3)), np.zeros(4)
    assert Simulation.decayed_trace(E, stamps, np.full(4, 2.0), 20.0) is None  # one time per row
    assert Simulation.decayed_trace(np.ones((2, 4, 3)), np.zeros((2, 4)), 2.0, 20.0) is None  # replicas
    assert Simulation.decayed_trace(np.ones((3, 4)).T, stamps, 2.0, 20.0) is None  # not contiguous


@pytest.mark.parametrize("reset", [False, True])
def test_the_chain_cascade_decays_each_trace_in_its_call_to_the_same_bits(reset):
    """Weight Max's cascade down a chain under exponential traces, in one call
    (``weight_max_chain_at_landing``), equals each layer's ``traces.at_landing`` then the cascade."""
    from asyncneurons.engine.history_kernels import weight_max_chain_at_landing
    from asyncneurons.engine.relaxation_kernels import EXP
    from asyncneurons.learning import compiled
    from asyncneurons.learning.optim import adam_constants

    rng = np.random.default_rng(7)
    shapes = [(8, 5), (6, 9), (2, 7)]  # a 4-8-6-2 chain, bias column last
    tau, now, delta = 20.0, 130.0, -0.37

    def state():
        r = np.random.default_rng(11)
        return [tuple(r.normal(size=s) for s in shapes) for _ in range(3)] + \
            [tuple(np.abs(r.normal(size=s)) for s in shapes)]

    stamps = tuple(rng.uniform(90.0, 130.0, size=s[0]) for s in shapes)
    lrs, corrects = np.array([0.01, 0.02, 0.03]), np.ones(3, dtype=np.bool_)
    b1, c1, b2, c2, bc1, bc2, _, eps = adam_constants(AdamConfig(), 3)
    bc1s, bc2s = np.full(3, bc1), np.full(3, bc2)

    def scratch():
        return (tuple(np.empty((s[0], s[1])) for s in shapes),
                tuple(np.empty((s[0], s[1] - (0 if i == 0 else 1))) for i, s in enumerate(shapes)),
                tuple(np.empty(s[0]) for s in shapes))

    P1, E1, M1, V1 = state()
    Ds, Cs1, Rs1 = scratch()
    weight_max_chain_at_landing(P1, M1, V1, E1, stamps, Ds, now, tau, EXP, Cs1, Rs1, delta, lrs, b1, c1, b2, c2,
                                bc1s, bc2s, corrects, eps, reset)
    P2, E2, M2, V2 = state()
    _, Cs2, Rs2 = scratch()
    decayed = tuple(traces.at_landing(SimpleNamespace(E=E, tau=tau, trace_time=t), SimpleNamespace(now=now))
                    for E, t in zip(E2, stamps))
    compiled.weight_max_chain(P2, M2, V2, decayed, Cs2, Rs2, delta, lrs, b1, c1, b2, c2, bc1s, bc2s, corrects, eps,
                              False)
    if reset:
        for E in E2:
            E[...] = 0.0
    for a, b in zip(P1 + M1 + V1 + E1 + Cs1, P2 + M2 + V2 + E2 + Cs2):
        assert a.tobytes() == b.tobytes()
    assert not any(E.any() for E in E1) if reset else all(E.any() for E in E1)
