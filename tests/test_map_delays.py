"""MAP Propagation under delays: the relaxation read from histories equals the message engine.

The engine relaxes each group with one event per step and reads what it holds, and each
downstream unit's error term, from histories (:class:`~asyncneurons.engine.relaxation.HistoryRelaxation`).
The message engine (:class:`~asyncneurons.engine.relaxation.EventRelaxation`, ``relaxation="events"``)
sends every relaxed value and every error term as events; a unit sends its error term whenever
its state changes. The two must give the same runs to the last bit.
"""


from types import SimpleNamespace

import networkx as nx
import numpy as np
import pytest

from asyncneurons.engine import relaxation_kernels as kern
from asyncneurons.model.graphio import save_graph
from asyncneurons.learning.kernels import potential, sigmoid, softplus
from asyncneurons.engine.relaxation_kernels import row_potential
from asyncneurons.learning.rules.map_prop import map_error
from asyncneurons.engine.simulation import Simulation

from conftest import SMALL_CARTPOLE

MAP = {"network": {"hidden": [8, 4], "unit": "gaussian", "output": "categorical", "temperature": [1.0, 1.0, 2.0],
                   "variance": [0.03, 0.1, 0.1], "bias_init": 0.0},
       "learning": {"rule": "map_prop", "lambda": 0.95, "lr": [0.05, 1e-3, 1e-4], "lr_end": None,
                    "critic": "map_prop", "critic_hidden": [8, 4], "critic_variance": [0.03, 0.1, 0.1],
                    "critic_lr": [0.02, 2e-4, 2e-5], "critic_lr_end": None, "map_steps": 6, "map_step_size": 0.5}}
CLOCK = {"pacing": "clock", "period": 20.0}
UNIFORM = {"dist": "uniform", "low": 0.0, "high": 5.0}


def _run(s, mode, ticks):
    rows = []
    sim = Simulation(s, relaxation=mode, on_episode=rows.append, max_ticks=ticks).run()
    return sim, [(r["episode"], r["return"], r["length"], r["sim_time_ms"]) for r in rows]


def _assert_same(s, ticks):
    a, rows_a = _run(s, "history", ticks)
    b, rows_b = _run(s, "events", ticks)
    assert rows_a == rows_b
    for ga, gb in zip(a.groups, b.groups):
        for name in ("P", "E", "M", "V", "values"):  # H: each engine refreshes it when it looks
            np.testing.assert_array_equal(getattr(ga, name), getattr(gb, name), err_msg=f"{ga.names[0]} {name}")
    return a


@pytest.mark.parametrize("timing", [
    pytest.param({"synapse_delay": UNIFORM, "retro_delay": UNIFORM, "relax_period": 0.25}, id="uniform"),
    pytest.param({"synapse_delay": {"dist": "lognormal", "mu": 0.0, "sigma": 1.0},
                  "retro_delay": {"dist": "exponential", "mean": 1.0}, "relax_period": 0.25}, id="heavy-tailed"),
    pytest.param({"synapse_delay": {"dist": "uniform", "low": 1.0, "high": 6.0},
                  "retro_delay": {"dist": "uniform", "low": 0.5, "high": 3.0}, "relax_period": 0.25},
                 id="longer-than-a-period"),
    pytest.param({"synapse_delay": UNIFORM, "retro_delay": UNIFORM, "relax_period": 0.0}, id="period-0"),
    pytest.param({"synapse_delay": UNIFORM, "retro_delay": 0.0, "relax_period": 1.0}, id="no-retro-delay"),
])
@pytest.mark.parametrize("critic", ["map_prop", "mlp"])
def test_histories_equal_messages_under_delays(scenario, timing, critic):
    s = scenario(**MAP, timing={"reward_delay": 10.0, **timing}, env=CLOCK)
    s = s.model_copy(update={"learning": s.learning.model_copy(update={"critic": critic})})
    sim = _assert_same(s, ticks=40)
    assert any(g.E.any() for g in sim.groups)  # traces were recorded at relaxed states


def test_histories_equal_messages_with_wait_pacing_and_constant_delays(scenario):
    """Constant delays put arrivals, relaxation steps and environment steps at the same instants:
    the order within an instant decides, and both engines follow it."""
    s = scenario(**MAP, timing={"synapse_delay": 0.5, "retro_delay": 0.25, "relax_period": 0.25,
                                "reward_delay": 0.5})
    _assert_same(s, ticks=40)


def test_zero_delay_relaxation_is_the_message_engines(scenario):
    """At zero delay every step happens within one instant, wave after wave (the published
    synchronous iterations, tests/test_oracle.py): the histories give the same bits."""
    _assert_same(scenario(**MAP), ticks=60)


def test_row_potential_adds_in_numpys_order():
    rng = np.random.default_rng(0)
    for n in (1, 5, 8, 33, 65, 129, 300, 1025):
        P, H = rng.normal(size=(20, n)), rng.normal(size=(20, n)) * 10 ** rng.uniform(-3, 3, size=(20, n))
        got = [row_potential(np.ascontiguousarray(P[i] * H[i])) for i in range(20)]
        np.testing.assert_array_equal(got, potential(P, H))


EDGES = [-np.inf, -31.0, -30.0, -20.0, -1e-300, -0.0, 0.0, 1e-300, 20.0, 30.0, 31.0, np.inf, np.nan]


def test_the_compiled_step_computes_softplus_and_sigmoid_with_numpys_bits():
    """NumPy's own exp and log1p loops, called from the compiled relaxation step: every value as
    NumPy's softplus and sigmoid give it, whether computed in an array or alone."""
    x = np.concatenate([np.random.default_rng(1).normal(0.0, 12.0, 50_000), EDGES])
    sp, sg = np.empty_like(x), np.empty_like(x)
    kern.softplus_into(x, sp, kern.EXP, kern.LOG1P)
    kern.sigmoid_into(x, sg, kern.EXP)
    np.testing.assert_array_equal(sp, softplus(x))
    np.testing.assert_array_equal(sg, sigmoid(x))
    alone = np.empty(1)
    for i in range(0, x.size, 97):
        kern.softplus_into(x[i:i + 1], alone, kern.EXP, kern.LOG1P)
        np.testing.assert_array_equal(alone, sp[i:i + 1])


@pytest.mark.parametrize("name", ["gaussian", "linear_gaussian", "categorical", "softmax"])
def test_the_compiled_error_terms_are_map_errors(name):
    rng = np.random.default_rng(2)
    kind, lp = SimpleNamespace(name=name), SimpleNamespace(variance=0.1, temperature=2.0)
    population = name in ("categorical", "softmax")
    q, m = 50, 3 if population else 1
    pot, val = rng.normal(0.0, 10.0, (q, m)), rng.normal(0.0, 1.0, (q, m))
    pot[:5] = np.array(EDGES[1:-2] * 3)[:5 * m].reshape(5, m)  # the clamps' edges
    act = rng.integers(0, m + (name == "softmax"), q)
    e = np.empty(q * m)
    kern.error_terms(np.arange(0, q * m + 1, m), np.full(q, kern.KIND_CODES[name]), np.full(q, lp.variance),
                     np.full(q, lp.temperature), pot.reshape(-1), val.reshape(-1), act, e, kern.EXP, kern.LOG1P)
    expected = map_error(kind, val, pot, lp, act) if population else map_error(kind, val[:, 0], pot[:, 0], lp)
    np.testing.assert_array_equal(e, np.reshape(expected, -1))


# ------------------------------------------------------------------------------------------------
# A timeline computed by hand (docs/model-of-time.md, "MAP Propagation: a timeline").

def _chain(path):
    """in0 → a, in0 → b; a → j, b → j; j → out (a categorical output of two units)."""
    g = nx.DiGraph()
    g.add_node("in0", role="input", kind="input", layer=0, index=0)
    for i in range(1, 4):
        g.add_node(f"in{i}", role="input", kind="input", layer=0, index=i)
    g.add_node("a", role="hidden", kind="gaussian", layer=1, index=0)
    g.add_node("b", role="hidden", kind="gaussian", layer=1, index=1)
    g.add_node("j", role="hidden", kind="gaussian", layer=2, index=0)
    g.add_node("o0", role="output", kind="categorical", layer=3, index=0)
    g.add_node("o1", role="output", kind="categorical", layer=3, index=1)
    for i in range(4):
        g.add_edge(f"in{i}", "a", delay=0.5, retro_delay=0.0)
        g.add_edge(f"in{i}", "b", delay=1.0, retro_delay=0.0)
    g.add_edge("a", "j", delay=0.5, retro_delay=1.0)
    g.add_edge("b", "j", delay=2.0, retro_delay=1.0)
    g.add_edge("j", "o0", delay=0.25, retro_delay=0.25)
    g.add_edge("j", "o1", delay=0.25, retro_delay=0.25)
    save_graph(g, path)


def test_a_sample_landing_changes_the_error_read_below_at_once(scenario, tmp_path):
    """The timeline of docs/model-of-time.md, computed by hand from the run's own values.

    Observations at 0 and 20 ms (clock pacing). a hears them after 0.5 ms, b after 1 ms; a → j takes
    0.5 ms, b → j 2 ms, j → outputs 0.25 ms; errors go back in 1 ms (j → a, b) and 0.25 ms. Every
    unit relaxes 8 steps, one every 0.5 ms. Wave 1: a samples at 20.5 ms; the sample reaches j at
    21 ms, while j still holds b's wave-0 value (b's wave-1 sample reaches j at 23 ms, when j
    samples). a's third step, at 22 ms, reads j's error term as of 22 − 1 = 21 ms: computed from a's
    new sample, b's last relaxed value of wave 0 and j's last relaxed value (7 ms).
    """
    _chain(tmp_path / "chain.json")
    base = {k: v for k, v in SMALL_CARTPOLE.items() if k != "network"}
    s = scenario(base=base, network={"graph": str(tmp_path / "chain.json"), "variance": [0.03, 0.1, 0.1],
                          "temperature": [1.0, 1.0, 2.0], "bias_init": 0.0},
                 learning={"rule": "map_prop", "lr": 0.01, "lr_end": None, "critic": "mlp", "map_steps": 8,
                           "map_step_size": 0.5},
                 timing={"relax_period": 0.5, "reward_delay": 50.0}, env=CLOCK, experiment={"episodes": 1000})
    log = []
    sim = Simulation(s, on_event=lambda t, u, k, v, w: log.append((t, u, k, v)))
    sim.env.run(until=22.0)  # everything strictly before 22 ms
    assert [(t, u) for t, u, k, _ in log if k == "sample"] == [
        (0.5, "a"), (1.0, "b"), (3.0, "j"), (3.25, "o0"), (3.25, "o1"), (20.5, "a"), (21.0, "b")]
    group = {g.names[0]: g for g in sim.groups}
    rel = sim.relaxation

    def sent(unit, t):
        """The value ``unit`` sent at ``t`` (its sample, or a relaxation step)."""
        u = int(group[unit].hist[0])
        return rel.V[u, [i for i in range(rel.T.shape[1]) if rel.T[u, i] == t][-1]]

    a_new, a_old = sent("a", 20.5), sent("a", 4.5)  # a's wave-1 sample; its last wave-0 value (arrived at 5)
    b_old, j_old = sent("b", 5.0), sent("j", 7.0)  # b's and j's last relaxed values of wave 0
    P = group["j"].P[0]
    col = group["j"].col

    def error_j(a_value):
        H = np.zeros(3)
        H[col["a"]], H[col["b"]], H[2] = a_value, b_old, 1.0
        pot = np.array([(P * H).sum()])
        return ((j_old - softplus(pot)) * sigmoid(pot) / 0.1)[0]

    before = sent("a", 21.5)  # a's value after its second step
    sim.env.run(until=22.0 + 1e-9)  # a's third step
    ga = group["a"]
    var = 0.03
    mu = softplus(potential(ga.P, ga.H))[0]
    expected = before + 0.5 * var * ((mu - before) / var + P[col["a"]] * error_j(a_new))
    assert ga.values[0] == expected
    # the error term j sent after a's old value landed (at 5 ms) would have moved a elsewhere
    stale = before + 0.5 * var * ((mu - before) / var + P[col["a"]] * error_j(a_old))
    assert stale != expected


def _runs_state(sim):
    return [(g.P.copy(), g.E.copy(), g.M.copy(), g.V.copy(), np.array(g.values, float)) for g in sim.groups]


@pytest.mark.parametrize("timing", [
    pytest.param({"synapse_delay": UNIFORM, "retro_delay": UNIFORM, "relax_period": 0.25}, id="uniform"),
    pytest.param({"synapse_delay": 0.5, "retro_delay": 0.25, "relax_period": 0.25, "reward_delay": 0.5},
                 id="constant"),
])
def test_traces_recorded_in_the_loop_equal_traces_recorded_at_events(scenario, monkeypatch, timing):
    """A relaxed Gaussian group records its trace inside the compiled loop when nothing queued
    comes before the record; with every record an event instead (as before), the run is the same
    to the last bit, and the loop did record most of them."""
    s = scenario(**MAP, timing={"reward_delay": 10.0, **timing}, env=CLOCK)
    from asyncneurons.engine.relaxation import HistoryRelaxation
    recorded = []
    at_event = HistoryRelaxation._record
    monkeypatch.setattr(HistoryRelaxation, "_record", lambda self, ev: recorded.append(1) or at_event(self, ev))
    in_loop, rows_loop = _run(s, "history", 40)
    n_in_loop = len(recorded)
    monkeypatch.setattr(HistoryRelaxation, "_records_in_loop", staticmethod(lambda grp: False))
    recorded.clear()
    events, rows_events = _run(s, "history", 40)
    assert rows_loop == rows_events
    for a, b in zip(_runs_state(in_loop), _runs_state(events)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert len(recorded) > 2 * n_in_loop  # only the output's records stay events, and a few others
    assert any(g.E.any() for g in in_loop.groups if g.role != "output")


def test_the_landed_products_are_the_weights_times_the_landed_inputs():
    """One pass over a read unit's copy and points gives w_i · x_i for every input, and w · 1 for
    the bias, x being what :func:`landed_inputs` reads (the same bits)."""
    rng = np.random.default_rng(3)
    R, L, C, nc = 2, 64, 9, 9
    B = kern.BLOCK
    LA = np.sort(rng.uniform(0.0, 10.0, (R, L)), axis=1)
    LC, LV = rng.integers(0, nc - 1, (R, L)), rng.normal(size=(R, L))
    LX, front = rng.normal(size=(R, L // B, C)), rng.normal(size=(R, C))
    lcount, ltotal = np.array([L - 5, L]), np.array([L, L])
    land = (LA, LC, LV, LX, lcount, ltotal, front)
    w = rng.normal(size=nc)
    told_some = False
    for tau in (0.5, 3.0, 7.25, 9.9, 12.0):
        for r in range(R):
            x_in, x_prod = np.full(C, np.nan), np.full(C, np.nan)
            c_in, c_prod = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
            told = kern.landed_inputs(r, 0.25, tau, land, c_in, 0, x_in, nc)
            assert kern.landed_products(r, 0.25, tau, land, c_prod, 0, x_prod, nc, w) == told
            assert c_in[0] == c_prod[0]
            if told:
                told_some = True
                x_in[nc - 1] = 1.0
                np.testing.assert_array_equal(x_prod[:nc], w * x_in[:nc])
    assert told_some


def test_pre_activations_known_from_earlier_reads_are_those_computed_again(scenario, monkeypatch):
    """A reader takes a downstream unit's pre-activation after a landed point from an earlier
    reader's computation when the weights are the same; forgetting them all before every pass of
    the loop (each computed again from the point's inputs) gives the same run to the last bit."""
    s = scenario(**MAP, timing={"reward_delay": 10.0, "synapse_delay": UNIFORM, "retro_delay": UNIFORM,
                                "relax_period": 0.25}, env=CLOCK)
    from asyncneurons.engine.relaxation import HistoryRelaxation
    kept, rows_kept = _run(s, "history", 40)
    assert (kept.relaxation.k_point >= 0).any()
    drive = HistoryRelaxation._drive

    def forgetting(self):
        self._forget_known()
        self._tie()
        drive(self)

    monkeypatch.setattr(HistoryRelaxation, "_drive", forgetting)
    forgot, rows_forgot = _run(s, "history", 40)
    assert rows_kept == rows_forgot
    for a, b in zip(_runs_state(kept), _runs_state(forgot)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_a_read_units_heap_gives_its_synapses_in_landing_order():
    """Taking the top of a read unit's heap of synapses and putting the synapse back with its next
    landing (or dropping it) gives the landings in order of (landing, serial), as sorting them does."""
    rng = np.random.default_rng(5)
    n, Q = 40, 64
    QA, QS, QE, qsize = np.zeros((1, Q)), np.zeros((1, Q), dtype=np.int64), np.zeros((1, Q), dtype=np.int64), \
        np.zeros(1, dtype=np.int64)
    streams = [np.cumsum(rng.choice([0.25, 0.5, 1.0], size=rng.integers(1, 12))) + rng.choice([0.0, 0.5, 2.5])
               for _ in range(n)]
    expected = sorted((a, e, e) for e, st in enumerate(streams) for a in st)  # serial e: ties by sender
    nxt = [0] * n
    for e, st in enumerate(streams):
        kern.push_synapse((QA, QS, QE, qsize), 0, st[0], e, e)
    got = []
    while qsize[0] > 0:
        e = int(QE[0, 0])
        got.append((QA[0, 0], int(QS[0, 0]), e))
        nxt[e] += 1
        if nxt[e] < len(streams[e]):
            kern._sift_down(QA, QS, QE, 0, qsize[0], streams[e][nxt[e]], e, e)
        else:
            qsize[0] -= 1
            m = qsize[0]
            if m:
                kern._sift_down(QA, QS, QE, 0, m, QA[0, m], QS[0, m], QE[0, m])
    assert got == expected


@pytest.mark.parametrize("hidden", [[8, 4], [15, 7]])  # the bias after the eight lanes, or in the last
def test_pre_activations_kept_as_points_land_are_those_computed_whole(scenario, hidden):
    """The pre-activation a read unit keeps after each point as it lands (one lane of NumPy's
    pairwise sum added again) equals its pre-activation computed whole from its inputs after
    that point (the copy before the point's block, then the block's points) with the weights it
    names, to the last bit."""
    s = scenario(**{**MAP, "network": {**MAP["network"], "hidden": hidden}},
                 timing={"reward_delay": 10.0, "synapse_delay": UNIFORM, "retro_delay": UNIFORM,
                         "relax_period": 0.25}, env=CLOCK)
    sim, _ = _run(s, "history", 40)
    rx = sim.relaxation
    L, B = rx.LA.shape[1], kern.BLOCK
    checked = 0
    for u in np.flatnonzero(rx.rid >= 0):
        r, nc = rx.rid[u], rx.ncols[u]
        first = rx.ltotal[r] - rx.lcount[r]
        for slot in range(L):
            lo = rx.k_point[r, slot]
            if lo <= first - first % B or lo > rx.ltotal[r]:
                continue  # its copy is gone, or an entry of an earlier point in this slot
            start = (lo - 1) - (lo - 1) % B
            x = rx.LX[r, (start // B) % (L // B), :nc].copy()
            for a in range(start, lo):
                x[rx.LC[r, a % L]] = rx.LV[r, a % L]
            x[nc - 1] = 1.0
            (kept,) = np.flatnonzero(rx.WS[u, :rx.wcount[u]] == rx.k_weights[r, slot])
            assert rx.k_pot[r, slot] == potential(rx.WP[u, kept, None, :nc], x[None])[0]
            checked += 1
    assert checked > 100


def test_a_gaussian_sample_drawn_with_the_fill_is_the_engines_own_sample(scenario, monkeypatch):
    """A group of Gaussian units samples in the compiled call that fills in what it holds, and its
    sample enters the history there; with every group filled in alone and sampled by the engine
    (NumPy, the sample entered when the relaxation starts), the run is the same to the last bit."""
    s = scenario(**MAP, timing={"reward_delay": 10.0, "synapse_delay": UNIFORM, "retro_delay": UNIFORM,
                                "relax_period": 0.25}, env=CLOCK)
    from asyncneurons.engine import events
    from asyncneurons.engine import simulation as simulation_module
    from asyncneurons.engine.relaxation import HistoryRelaxation
    # every firing through before_fire (not the one-call firing of map_fire, tests/test_map_fire.py)
    monkeypatch.setattr(simulation_module, "fires_in_one_call", lambda sim, grp: False)
    draws = []
    before_fire = HistoryRelaxation.before_fire
    monkeypatch.setattr(HistoryRelaxation, "before_fire",
                        lambda self, grp: (lambda d: draws.append(d is not None) or d)(before_fire(self, grp)))
    drawn, rows_drawn = _run(s, "history", 40)
    assert sum(draws) > len(draws) // 2  # the hidden groups drew; the output sampled in the engine
    monkeypatch.setattr(HistoryRelaxation, "before_fire",
                        lambda self, grp: self._fill(grp, events.FIRE + grp.rank))
    engine, rows_engine = _run(s, "history", 40)
    assert rows_drawn == rows_engine
    for a, b in zip(_runs_state(drawn), _runs_state(engine)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("retro_delay", [pytest.param(UNIFORM, id="uniform"),
                                         pytest.param({"dist": "uniform", "low": 0.0, "high": 100.0},
                                                      id="weights-history-grows")])
def test_groups_that_learn_in_one_call_learn_as_each_alone(scenario, monkeypatch, retro_delay):
    """The groups on which a TD error lands learn in one compiled call (REINFORCE with Adam, the
    new weights entered in their history, the traces cleared at an episode's start); with each
    group learning alone, as before, the run is the same to the last bit: weights, Adam moments,
    traces, values and the weights' history. Under retrograde delays up to 100 ms the weights'
    history fills up inside the call, which stops, grows it and goes on."""
    s = scenario(**MAP, timing={"reward_delay": 10.0, "synapse_delay": UNIFORM, "retro_delay": retro_delay,
                                "relax_period": 0.25}, env=CLOCK)
    from asyncneurons.engine.relaxation import HistoryRelaxation
    calls, grown = [], []
    together = HistoryRelaxation.reinforce_groups
    monkeypatch.setattr(HistoryRelaxation, "reinforce_groups",
                        lambda self, *a: (lambda done: calls.append(done) or done)(together(self, *a)))
    grow = HistoryRelaxation._grow_weights
    monkeypatch.setattr(HistoryRelaxation, "_grow_weights", lambda self: grown.append(1) or grow(self))
    one_call, rows_one = _run(s, "history", 60)
    assert calls and all(calls)
    grows_in_call = len(grown)
    monkeypatch.setattr(HistoryRelaxation, "reinforce_groups", lambda self, *a: False)
    alone, rows_alone = _run(s, "history", 60)
    assert rows_one == rows_alone and len(rows_one) >= 2  # episodes ended: traces were cleared
    for a, b in zip(_runs_state(one_call), _runs_state(alone)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    ra, rb = one_call.relaxation, alone.relaxation
    assert ra.serial == rb.serial
    for name in ("WT", "WS", "WP", "whead", "wcount", "wtotal"):
        np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name), err_msg=name)
    if retro_delay["high"] > 50:
        assert grows_in_call > 0
