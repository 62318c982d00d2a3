"""Firing windows never change a result: the same runs as the event engine, sample for sample."""

import numpy as np
import pytest
from conftest import resumed_equals_whole, stop_at_checkpoint

from asyncneurons.engine import checkpoint
from asyncneurons.study.diagnostics import layer_totals
from asyncneurons.engine.simulation import Simulation

HETEROGENEOUS = {"timing": {"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 5.0}, "reward_delay": 10.0},
                 "env": {"pacing": "clock", "period": 20.0}}


def _scenario(scenario, over, windows, network=None):
    base = {"experiment": {"episodes": 1000}, "network": network or {"hidden": [12, 6]},
            "learning": {"rule": "weight_max", "lambda": 0.8, "lr": [0.02, 2e-3, 2e-4], "lr_end": None},
            "engine": {"windows": windows}}
    for part in (HETEROGENEOUS, over):
        for k, v in part.items():
            base.setdefault(k, {}).update(v)
    if network is not None:
        from conftest import SMALL_CARTPOLE
        return scenario(base={k: v for k, v in SMALL_CARTPOLE.items() if k != "network"}, **base)
    return scenario(**base)


def _run(s, ticks, **kw):
    rows, samples = [], []
    sim = Simulation(s, on_episode=rows.append, max_ticks=ticks,
                     on_event=lambda t, u, k, v, w: samples.append((t, u, k, v, w)), **kw).run()
    return sim, [(r["return"], r["length"], r["sim_time_ms"], r["stale_actions"]) for r in rows], samples


def assert_modes_agree(scenario, over, ticks: int, min_events: int):
    """Run ``over`` with firing windows and with the unit-by-unit event engine: every sample,
    reward and step at the same time in the same order, the same episodes and weights; return
    both simulations."""
    on, rows_on, ev_on = _run(_scenario(scenario, over, True), ticks)
    off, rows_off, ev_off = _run(_scenario(scenario, over, False), ticks)
    assert on.windows is not None and off.windows is None
    assert rows_on == rows_off and len(ev_on) > min_events
    assert ev_on == ev_off
    for layer, m in off.layer_matrices().items():
        np.testing.assert_array_equal(on.layer_matrices()[layer], m)
    return on, off


@pytest.mark.parametrize("over", [
    {},
    {"learning": {"rule": "global_reinforce"}},
    {"learning": {"rule": "weight_max_exact", "norm_power": 1.5}},
    {"learning": {"lambda": 0.0}, "timing": {"retro_delay": 0.75}},
    # delays longer than the period: waves overlap and units answer several waves per window
    {"timing": {"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 20.0}, "reward_delay": 3.0},
     "env": {"period": 7.0}},
    # heavy tails, and every unit with its own reward delay
    {"timing": {"synapse_delay": {"dist": "lognormal", "mu": 0.5, "sigma": 1.0},
                "reward_delay": {"dist": "uniform", "low": 1.0, "high": 9.0}}},
    # a softmax population over four actions, a categorical one, Gaussian outputs
    {"env": {"id": "Acrobot-v1"}},
    {"env": {"id": "Acrobot-v1"}, "network": {"output": "categorical"}, "learning": {"rule": "global_reinforce"}},
    {"env": {"id": "MountainCarContinuous-v0"}, "network": {"variance": [1.0, 1.0, 0.5]},
     "learning": {"rule": "global_reinforce"}},
    # backprop: the output's error leaves when it samples, and hidden units may not fire past its landing
    {"learning": {"rule": "ste_backprop"}},
    {"learning": {"rule": "ste_backprop"}, "timing": {"retro_delay": 1.5}},
    {"learning": {"rule": "ste_backprop"},
     "timing": {"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 20.0}, "reward_delay": 3.0},
     "env": {"period": 7.0}},
    {"learning": {"rule": "backprop"}, "network": {"unit": "softplus"},
     "timing": {"synapse_delay": {"dist": "exponential", "mean": 4.0}, "retro_delay": 0.5}, "env": {"period": 6.0}},
])
def test_windows_and_the_event_engine_give_identical_runs(scenario, over):
    on, off = assert_modes_agree(scenario, over, 300, 300 * 15)
    assert len(on.groups) <= len(off.groups)  # layers fuse whatever the forward delays


def test_windows_without_fusion_and_with_fusion_agree(scenario):
    s = _scenario(scenario, {}, True)
    fused, rows_f, ev_f = _run(s, 200)
    unfused, rows_u, ev_u = _run(s, 200, fuse=False)
    assert len(fused.groups) == 3 and len(unfused.groups) == 12 + 6 + 1
    assert rows_f == rows_u and ev_f == ev_u


@pytest.mark.parametrize("over", [
    # every arrival a sample, outside the compiled pass through them: one event each is cheaper
    {"timing": {"firing": "on_input"}, "learning": {"rule": "global_reinforce"}},
    {"timing": {"firing": "on_input"}, "env": {"pacing": "wait"}},
    {"timing": {"firing": "on_input", "synapse_jitter": 1.0}},
    {"learning": {"rule": "map_prop", "lambda": 0.9, "lr": [0.01, 1e-3, 1e-4], "map_steps": 4},
     "network": {"unit": "gaussian", "output": "categorical", "variance": [0.03, 0.1, 0.1]}},
    {"timing": {"synapse_delay": 2.0}},  # one delay everywhere: fusion serves each layer already
])
def test_windows_stay_off_where_they_would_not_be_exact_or_useful(scenario, over):
    sim = Simulation(_scenario(scenario, over, True), max_ticks=5)
    assert sim.windows is None


def test_a_run_saved_with_windows_continues_with_windows(scenario, tmp_path):
    """A checkpoint holds the window state (the wake-up in the queue, the per-synapse arrivals)."""
    s = _scenario(scenario, {"experiment": {"episodes": 12}}, True)
    whole_rows = []
    whole = Simulation(s, on_episode=whole_rows.append).run()
    rows_a = stop_at_checkpoint(s, tmp_path, 5)
    # the engine key does not enter the scenario hash; the checkpoint's mode wins
    s_off = _scenario(scenario, {"experiment": {"episodes": 12}}, False)
    rows_b = []
    second = Simulation(s_off, on_episode=rows_b.append, resume=checkpoint.load(tmp_path, 0, s_off)).run()
    assert second.windows is not None
    key = lambda r: (r["episode"], r["return"], r["length"], r["sim_time_ms"])
    assert [key(r) for r in rows_a[:5] + rows_b] == [key(r) for r in whole_rows]
    for layer, m in whole.layer_matrices().items():
        np.testing.assert_array_equal(second.layer_matrices()[layer], m)


def test_windows_follow_a_graph_with_skip_connections_and_missing_synapses(scenario, tmp_path):
    """Layers fed from several layers back, units with different sources: served in topological
    order, each unit on its own synapses."""
    from asyncneurons.model.graph import layered, node_name
    from asyncneurons.model.graphio import save_graph

    g = layered(4, [10, 6], 1, hidden_kind="bernoulli", output_kind="softmax")
    for i in range(4):  # the inputs reach half of the second layer directly
        for j in range(0, 6, 2):
            g.add_edge(node_name(0, i, 3), node_name(2, j, 3))
    for i in range(0, 10, 3):  # and the first layer reaches the output
        g.add_edge(node_name(1, i, 3), node_name(3, 0, 3))
    g.remove_edge(node_name(1, 1, 3), node_name(2, 4, 3))
    save_graph(g, tmp_path / "skip.json")
    out = []
    for windows in (True, False):
        s = _scenario(scenario, {}, windows, network={"graph": str(tmp_path / "skip.json")})
        sim, rows, ev = _run(s, 300)
        assert (sim.windows is not None) == windows
        out.append((sim.weights(), rows, ev))
    assert out[0][1] == out[1][1] and out[0][0] == out[1][0]
    # the same events at the same times; within an instant, units that learn together are
    # reported group by group, and the groups differ (here a layer splits by its sources)
    assert sorted(out[0][2]) == sorted(out[1][2])


# Every other timing of the scenario language, on windows: each row changes one thing from the
# heterogeneous point above (synapses uniform on [0, 5] ms, TD error 10 ms late, clock pacing).
EVERY_TIMING = {
    "wait pacing": {"env": {"pacing": "wait"}},
    "wait pacing, reward delay per unit": {"env": {"pacing": "wait"}, "learning": {"rule": "global_reinforce"},
                                           "timing": {"reward_delay": {"dist": "uniform", "low": 0.0, "high": 4.0}}},
    "wait pacing, STE backprop": {"env": {"pacing": "wait"}, "learning": {"rule": "ste_backprop"},
                                  "timing": {"retro_delay": 1.5}},
    "refractory": {"timing": {"refractory": 1.0}},
    "refractory longer than the gaps": {"timing": {"refractory": 4.0}, "learning": {"rule": "global_reinforce"}},
    "refractory, wait pacing": {"timing": {"refractory": 2.5}, "env": {"pacing": "wait"}},
    "clock firing": {"timing": {"firing": "clock", "firing_period": 5.0}},
    "clock firing, refractory skips ticks": {"timing": {"firing": "clock", "firing_period": 1.5, "refractory": 2.0}},
    "clock firing, wait pacing": {"timing": {"firing": "clock", "firing_period": 3.0}, "env": {"pacing": "wait"}},
    "clock firing, STE backprop": {"timing": {"firing": "clock", "firing_period": 4.0, "retro_delay": 1.0},
                                   "learning": {"rule": "ste_backprop"}},
    # without a retrograde delay the output's error lands within its own tick's instant
    "clock firing, STE backprop, no retrograde delay": {"timing": {"firing": "clock", "firing_period": 4.0},
                                                        "learning": {"rule": "ste_backprop"}},
    "clock firing in a pipeline, STE backprop": {"timing": {"firing": "clock", "firing_period": 20.0,
                                                            "firing_phase": [5.0, 10.0, 15.0]},
                                                 "learning": {"rule": "ste_backprop"}},
    "on_input with refractory": {"timing": {"firing": "on_input", "refractory": 2.0}},
    "on_input with refractory, wait pacing": {"timing": {"firing": "on_input", "refractory": 3.0},
                                              "env": {"pacing": "wait"}},
    "on_input, Acrobot softmax": {"timing": {"firing": "on_input", "refractory": 1.0}, "env": {"id": "Acrobot-v1"},
                                  "learning": {"rule": "global_reinforce"}},
    # every arrival instant a sample: the compiled pass through each unit's arrivals
    "on_input without refractory": {"timing": {"firing": "on_input"}},
    "on_input without refractory, Acrobot softmax": {"timing": {"firing": "on_input"}, "env": {"id": "Acrobot-v1"}},
    "on_input without refractory, categorical output, retrograde delay": {
        "timing": {"firing": "on_input", "retro_delay": 0.5}, "network": {"output": "categorical"}},
    "on_input without refractory, Bernoulli output": {
        "timing": {"firing": "on_input", "synapse_delay": {"dist": "exponential", "mean": 1.0}},
        "network": {"output": "bernoulli"}},
    "on_input, refractory in the second layer only": {"timing": {"firing": "on_input", "refractory": [0.0, 0.5, 0.0]}},
}


@pytest.mark.parametrize("over", list(EVERY_TIMING.values()), ids=list(EVERY_TIMING))
def test_every_firing_policy_and_pacing_on_windows_equals_the_event_engine(scenario, over):
    assert_modes_agree(scenario, over, 60, 60 * 5)


def test_on_input_samples_handed_back_a_few_at_a_time_are_the_same_run(scenario, monkeypatch):
    from asyncneurons.engine.windows import Windows

    monkeypatch.setattr(Windows, "arrival_buffer", 5)  # a layer pass in many calls, each going on from the last
    on, _ = assert_modes_agree(scenario, {"timing": {"firing": "on_input"}}, 40, 40 * 5)
    assert all(g.every_arrival and len(g.arrival_rec[0]) == 5 for g in on.groups)


def test_an_on_input_run_without_refractory_saved_at_a_checkpoint_continues_as_the_whole_run(scenario, tmp_path):
    s = _scenario(scenario, {"experiment": {"episodes": 10}, "timing": {"firing": "on_input"}}, True)
    whole, second = resumed_equals_whole(s, tmp_path, 4)
    assert whole.windows is not None and second.windows is not None


# δ landing on each hidden unit at its own time (asyncneurons.engine.landings): one group per layer on
# windows, one group per unit on the event engine
PER_UNIT_REWARD_DELAY = {"reward_delay": {"dist": "uniform", "low": 5.0, "high": 15.0}}
LANDINGS = {
    "global_reinforce": {"learning": {"rule": "global_reinforce"}, "timing": PER_UNIT_REWARD_DELAY},
    "new episodes, fast learning": {"learning": {"rule": "global_reinforce", "lr": [0.05, 0.01, 1e-3]},
                                    "timing": {"reward_delay": {"dist": "uniform", "low": 0.0, "high": 30.0}},
                                    "env": {"period": 4.0}},
    "clock firing": {"learning": {"rule": "global_reinforce"},
                     "timing": {"firing": "clock", "firing_period": 3.0, **PER_UNIT_REWARD_DELAY}},
    "own clocks": {"learning": {"rule": "global_reinforce"},
                   "timing": {"firing": "clock", "firing_period": {"dist": "uniform", "low": 2.0, "high": 4.0},
                              "firing_phase": {"dist": "uniform", "low": 0.0, "high": 3.0}, **PER_UNIT_REWARD_DELAY}},
    "wait pacing": {"learning": {"rule": "global_reinforce"}, "env": {"pacing": "wait"},
                    "timing": PER_UNIT_REWARD_DELAY},
    "wait pacing, clock firing": {"learning": {"rule": "global_reinforce"}, "env": {"pacing": "wait"},
                                  "timing": {"firing": "clock", "firing_period": 3.0, **PER_UNIT_REWARD_DELAY}},
    "refractory": {"learning": {"rule": "global_reinforce"}, "timing": {"refractory": 2.0, **PER_UNIT_REWARD_DELAY}},
    "on_input with refractory": {"learning": {"rule": "global_reinforce"},
                                 "timing": {"firing": "on_input", "refractory": 2.0, **PER_UNIT_REWARD_DELAY}},
    "poisson firing": {"learning": {"rule": "global_reinforce"},
                       "timing": {"firing": "poisson", "firing_rate": 0.3, **PER_UNIT_REWARD_DELAY}},
    "a categorical population": {"learning": {"rule": "global_reinforce"}, "env": {"id": "Acrobot-v1"},
                                 "network": {"output": "categorical"}, "timing": PER_UNIT_REWARD_DELAY},
    # a landing reads the trace decayed to its own time
    "exponential traces": {"learning": {"rule": "global_reinforce", "trace": "exponential", "trace_tau": 20.0},
                           "timing": PER_UNIT_REWARD_DELAY},
    "exponential traces, STE backprop": {"learning": {"rule": "ste_backprop", "trace": "exponential",
                                                      "trace_tau": 10.0},
                                         "timing": {"retro_delay": 1.0, **PER_UNIT_REWARD_DELAY}},
    "bias correction ends": {"learning": {"rule": "global_reinforce", "bias_correction_steps": 40},
                             "timing": PER_UNIT_REWARD_DELAY},
    # more broadcasts on their way than the first capacity holds
    "delta far behind": {"learning": {"rule": "global_reinforce"}, "env": {"period": 2.0},
                         "timing": {"reward_delay": {"dist": "uniform", "low": 100.0, "high": 300.0}}},
    "STE backprop": {"learning": {"rule": "ste_backprop"}, "timing": {"retro_delay": 1.5, **PER_UNIT_REWARD_DELAY}},
    "STE backprop, wait pacing": {"learning": {"rule": "ste_backprop"}, "env": {"pacing": "wait"},
                                  "timing": {"retro_delay": 0.5, **PER_UNIT_REWARD_DELAY}},
    "backprop, softplus": {"learning": {"rule": "backprop"}, "network": {"unit": "softplus"},
                           "timing": {"retro_delay": 1.0, **PER_UNIT_REWARD_DELAY}},
}


@pytest.mark.parametrize("over", list(LANDINGS.values()), ids=list(LANDINGS))
def test_delta_landing_on_each_unit_at_its_own_time_keeps_a_layer_one_group(scenario, over):
    on, off = assert_modes_agree(scenario, over, 120, 120 * 5)
    hidden = [g for g in on.groups if g.role != "output"]
    assert on.landings is not None and len(hidden) == 2  # one group per layer
    assert len(off.groups) == 12 + 6 + 1  # the event engine: one group per unit
    # every unit took the optimizer steps of its own landings: those before the run's end
    steps = {n: int(g.t) for g in off.groups if g.role != "output" for n in g.names}
    assert {n: int(g.t[r]) for g in hidden for r, n in enumerate(g.names)} == steps
    assert max(steps.values()) > 0
    assert np.array_equal(layer_totals(on.groups, 3)["steps"], layer_totals(off.groups, 3)["steps"])


def test_ste_backprop_layers_fire_in_one_compiled_call_as_the_event_engine_fires_them(scenario):
    over = {"learning": {"rule": "ste_backprop"}, "timing": {"retro_delay": 1.0, **PER_UNIT_REWARD_DELAY}}
    on, _ = assert_modes_agree(scenario, over, 120, 120 * 5)
    assert all(g.compiled_fire for g in on.groups)
    # the output's firing records its trace; a hidden unit's trace records when the error lands
    assert [g.keeps_trace for g in on.groups] == [g.role == "output" for g in on.groups]


def test_a_run_with_delta_landing_per_unit_continues_from_a_checkpoint(scenario, tmp_path):
    over = {"experiment": {"episodes": 10}, **LANDINGS["global_reinforce"]}
    s = _scenario(scenario, over, True)
    whole, second = resumed_equals_whole(s, tmp_path, 4)
    assert second.landings is not None


def test_a_checkpoint_without_landings_per_unit_is_refused_in_one_line(scenario, tmp_path):
    """A checkpoint written while the TD error was a queue of events does not hold the landings."""
    s = _scenario(scenario, {"experiment": {"episodes": 6}, **LANDINGS["global_reinforce"]}, True)
    stop_at_checkpoint(s, tmp_path, 3)
    state, arrays = checkpoint.load(tmp_path, 0, s)
    del state["landings"]
    with pytest.raises(checkpoint.CheckpointError, match="before firing windows kept the TD error per unit"):
        Simulation(s, resume=(state, arrays))


# What the compiled layer pass relies on (asyncneurons.engine.history_kernels): a sender's ring, read
# newest first, never goes up in time or wave, and the bound on the output's next sample
# (earliest_next) is never later than that sample.
ORDERED = {
    "on_all": {},
    "wait pacing, refractory": {"env": {"pacing": "wait"}, "timing": {"refractory": 2.5}},
    "on_input with refractory": {"timing": {"firing": "on_input", "refractory": 2.0}},
    "jitter per send": {"timing": {"synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 8.0}}, "env": {"period": 7.0}},
    "clock firing": {"timing": {"firing": "clock", "firing_period": 3.0}},
}


@pytest.mark.parametrize("over", list(ORDERED.values()), ids=list(ORDERED))
def test_each_senders_history_read_newest_first_never_goes_up_in_time_or_wave(scenario, over):
    sim = Simulation(_scenario(scenario, over, True), max_ticks=80)
    tr, w, seen = sim.transmission, sim.windows, 0

    def check():
        """After every observation taken in and every window (the rings change nowhere else)."""
        nonlocal seen
        depth = tr.HT.shape[1]
        order = (tr.head[:, None] - 1 - np.arange(depth)[None, :]) % depth  # newest first
        rows = np.arange(len(tr.head))[:, None]
        HN, HT, HW = tr.HN[rows, order], tr.HT[rows, order], tr.HW[rows, order]
        written = HN >= 0
        assert np.all(written[:, :-1] | ~written[:, 1:])  # the unwritten slots come last
        both = written[:, :-1] & written[:, 1:]
        assert np.all((HN[:, :-1] > HN[:, 1:])[both])
        assert np.all((HT[:, :-1] >= HT[:, 1:])[both]) and np.all((HW[:, :-1] >= HW[:, 1:])[both])
        seen += int(both.sum())

    post_input, advance = w.post_input, w.advance
    w.post_input = lambda *a: (post_input(*a), check())
    w.advance = lambda *a: (advance(*a), check())
    sim.run()
    assert sim.windows is not None and seen > 1000


@pytest.mark.parametrize("over", [{"env": {"pacing": "wait"}}, {"learning": {"rule": "ste_backprop"}},
                                  {"env": {"pacing": "wait"}, "timing": {"refractory": 2.5}},
                                  {"learning": {"rule": "ste_backprop"}, "env": {"period": 7.0},
                                   "timing": {"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 20.0}}}],
                         ids=["wait pacing", "STE backprop", "wait pacing, refractory", "STE backprop, waves overlap"])
def test_the_bound_on_the_outputs_next_sample_is_never_later_than_it(scenario, over, monkeypatch):
    from asyncneurons.engine import windows
    sim = Simulation(_scenario(scenario, over, True), max_ticks=80)
    w = sim.windows
    bounds, samples = [], []
    receive = sim.environment.receive_action

    def bounding(call):  # the bound the call left (under wait pacing in one call, the last it moved to)
        def bounded(*args):
            out = call(*args)
            bounds.append((sim.env.now, float(w.b_lb[w.output.dense[0]])))
            return out
        return bounded

    def receive_action(action, wave, at=None):  # the output sampled at ``at``
        samples.append(float(at))
        return receive(action, wave, at)

    w._earliest_cut, sim.environment.receive_action = bounding(w._earliest_cut), receive_action
    monkeypatch.setattr(windows, "wait_window_at", bounding(windows.wait_window_at))
    sim.run()
    assert len(bounds) >= 70 and len(samples) >= 70
    for now, bound in bounds:
        later = [t for t in samples if t >= now]
        if later:
            assert bound <= later[0]
    assert sum(np.isfinite(b) and b > now for now, b in bounds) > 40  # the bound is not trivially −∞


def _learning_state(sim):
    """Every group's weights, moments, traces, counters and step counts, and the stale TD errors."""
    out = {}
    for g in sim.groups:
        for r, name in enumerate(g.names):
            out[name] = (g.P[r].tolist(), g.M[r].tolist(), g.V[r].tolist(), g.E[r].tolist(), int(g.counters[r]))
    return out, sum(g.reward_stale for g in sim.groups), sim.env.now


@pytest.mark.parametrize("over", [
    {},
    {"env": {"pacing": "wait"}},
    {"learning": {"trace": "exponential", "trace_tau": 20.0}},
    # TD errors overtaking each other: the older one is dropped and counted
    {"timing": {"reward_jitter": {"dist": "uniform", "low": 0.0, "high": 45.0}}},
    {"timing": {"firing": "poisson", "firing_rate": 0.2}},
    {"timing": {"firing": "on_input", "refractory": 2.0}},
])
def test_weight_max_cascade_after_the_td_error_is_one_kernel_and_the_event_engines_run(scenario, over):
    """Without recorded events, Weight Max's learning after the TD error lands (every retrograde
    delay zero) is one kernel on windows (asyncneurons.engine.chain): the same learning as the event engine's
    events, step for step."""
    rows_on, rows_off = [], []
    on = Simulation(_scenario(scenario, over, True), on_episode=rows_on.append, max_ticks=400).run()
    off = Simulation(_scenario(scenario, over, False), on_episode=rows_off.append, max_ticks=400).run()
    assert on.cascade is not None and on.windows is not None and off.windows is None
    key = lambda r: (r["return"], r["length"], r["sim_time_ms"], r["stale_actions"])  # noqa: E731
    assert [key(r) for r in rows_on] == [key(r) for r in rows_off] and rows_on
    assert _learning_state(on) == _learning_state(off)
    if "reward_jitter" in over.get("timing", {}):
        assert _learning_state(on)[1] > 0


def test_the_cascade_stays_off_where_a_retrograde_signal_takes_time(scenario):
    sim = Simulation(_scenario(scenario, {"timing": {"retro_delay": 0.75}}, True), max_ticks=5)
    assert sim.windows is not None and sim.cascade is None


def _window_state(sim):
    w, tr = sim.windows, sim.transmission
    return (_learning_state(sim), tr.HT.tolist(), tr.HV.tolist(), tr.HW.tolist(), w.first.tolist(),
            w.last.tolist(), w.set_wave.tolist(), w.due_at.tolist(), w.stale.tolist(), tr.serial,
            [getattr(g, "trace_time", np.zeros(0)).tolist() for g in sim.groups])


@pytest.mark.parametrize("over", [
    {},
    {"timing": {"firing": "on_input", "refractory": 2.0}},
    {"timing": {"refractory": 1.5}},
    {"timing": {"synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 5.0}}},
    {"timing": {"reward_delay": {"dist": "uniform", "low": 5.0, "high": 15.0}}},
    {"learning": {"trace": "exponential", "trace_tau": 20.0}},
    {"learning": {"trace": "exponential", "trace_tau": 5.0}, "network": {"output": "softmax"}},
    {"timing": {"firing": "clock", "firing_period": 5.0}},
    {"timing": {"firing": "clock", "firing_period": 5.0, "refractory": 7.0,
                "firing_jitter": {"dist": "uniform", "low": 0.0, "high": 1.0}}},
    {"timing": {"firing": "clock", "firing_period": 5.0,
                "synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 5.0}}},
    {"timing": {"firing": "poisson", "firing_rate": 0.2}},
    {"timing": {"firing": "poisson", "firing_rate": 0.5, "refractory": 1.5}, "network": {"output": "softmax"}},
], ids=["on_all", "on_input, refractory", "refractory", "synaptic jitter", "reward delay per unit",
        "exponential traces", "exponential traces, a softmax population", "clock firing",
        "clock firing, jitter and refractory period", "clock firing, synaptic jitter", "poisson firing",
        "poisson firing, refractory, a softmax population"])
def test_a_windows_layers_fired_in_one_call_are_those_fired_layer_by_layer(scenario, over):
    """Where every layer fires by a compiled call, a window's layers are one call
    (Windows._pass; under clock and Poisson firing each set's clock moved on in it, ticks inside
    the refractory period dropped); the run is the one the layer-by-layer passes
    (Windows._layer) compute."""
    rows_one, rows_each = [], []
    one = Simulation(_scenario(scenario, over, True), on_episode=rows_one.append, max_ticks=300)
    each = Simulation(_scenario(scenario, over, True), on_episode=rows_each.append, max_ticks=300)
    assert one.windows.one_call
    each.windows.one_call = False
    calls = []
    one_pass = one.windows._pass
    one.windows._pass = lambda limit: calls.append(limit) or one_pass(limit)
    one.run(), each.run()
    key = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]  # noqa: E731
    assert len(calls) > 300 and key(rows_one) == key(rows_each) and rows_one
    assert _window_state(one) == _window_state(each)


@pytest.mark.parametrize("over", [{}, {"timing": {"synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 5.0}}},
                                  {"env": {"pacing": "wait"}, "timing": {"refractory": 2.5}}],
                         ids=["on_all", "synaptic jitter", "wait pacing, refractory"])
def test_each_sets_due_time_kept_as_its_synapses_change_is_the_latest_of_their_arrivals(scenario, over):
    """An on_all set is due at the latest first arrival of a newer wave over its synapses; the
    count of those still at ∞ and the latest of the others, kept per set as the synapses change,
    say the same after every window (or are marked to be counted again)."""
    sim = Simulation(_scenario(scenario, over, True), max_ticks=150)
    w = sim.windows
    n_edges, n_sets = w.n_edges, len(w.set_wave)
    wake = w._wake
    checked = []

    def wake_and_check(event):
        wake(event)
        first = w.first
        arrivals, latest, count = first[:n_edges], first[n_edges:n_edges + n_sets], first[n_edges + n_sets:]
        for g in w.order:
            for st in range(g.n_sets):
                gs = g.set_base + st
                if count[gs] < 0:
                    continue
                a = arrivals[g.w_edges[g.w_ptr[st]:g.w_ptr[st + 1]]]
                assert count[gs] == np.sum(a == np.inf)
                if count[gs] == 0:
                    assert latest[gs] == a.max()
                checked.append(count[gs] == 0)

    w._wake = wake_and_check
    w.wakeup.callback = wake_and_check
    sim.run()
    assert sum(checked) > 100 and len(checked) > sum(checked)  # sets due and sets waiting were both seen


JITTER = {"synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 5.0}}


@pytest.mark.parametrize("over", [{}, {"timing": {"firing": "on_input", "refractory": 2.0}}, {"env": {"pacing": "wait"}},
                                  {"learning": {"rule": "global_reinforce"},
                                   "timing": {"reward_delay": {"dist": "uniform", "low": 5.0, "high": 15.0}}},
                                  {"timing": JITTER}, {"timing": {"firing": "on_input", "refractory": 2.0, **JITTER}},
                                  {"timing": {"firing": "clock", "firing_period": 5.0, **JITTER}},
                                  {"timing": {"firing": "poisson", "firing_rate": 0.2}}],
                         ids=["on_all", "on_input, refractory", "wait pacing", "delta landing per unit",
                              "synaptic jitter", "synaptic jitter, on_input", "synaptic jitter, clock firing",
                              "poisson firing"])
def test_an_observation_taken_in_by_one_call_is_the_one_taken_in_step_by_step(scenario, over):
    """An observation goes into the input units' rings (under synaptic jitter with its jitters),
    completes their synapses and makes the groups it feeds due (by what arrives, or on their
    clocks) in one compiled call (history_kernels.observation_sent): the run is the one the
    separate steps (record, mark_sent, select) give."""
    rows_one, rows_steps = [], []
    one = Simulation(_scenario(scenario, over, True), on_episode=rows_one.append, max_ticks=250)
    steps = Simulation(_scenario(scenario, over, True), on_episode=rows_steps.append, max_ticks=250)
    assert one.windows.input_call
    steps.windows.input_call = False
    one.run(), steps.run()
    key = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]  # noqa: E731
    assert key(rows_one) == key(rows_steps) and rows_one
    assert _window_state(one) == _window_state(steps)


@pytest.mark.parametrize("over", [{}, {"learning": {"rule": "ste_backprop"}}, {"env": {"pacing": "wait"}},
                                  {"timing": {"firing": "clock", "firing_period": 5.0}}],
                         ids=["on_all", "ste backprop", "wait pacing", "clock firing"])
def test_the_compiled_firings_scratch_kept_by_the_window_is_the_run_with_scratch_made_per_call(scenario, over,
                                                                                              monkeypatch):
    """The compiled calls' scratch (history_kernels._scratch_at) and an observation's times, waves
    and rows are views of buffers the window keeps, made once: the run is the one whose calls make
    their scratch afresh (buffers too short for them, history_kernels._scratch_in)."""
    from asyncneurons.engine import windows
    rows_kept, rows_fresh = [], []
    kept = Simulation(_scenario(scenario, over, True), on_episode=rows_kept.append, max_ticks=250)
    buffers = (kept.windows.scratch_ints, kept.windows.scratch_reals)
    assert all(len(b) for b in buffers)
    monkeypatch.setattr(windows, "scratch_lengths", lambda m, n, width: (0, 0))
    fresh = Simulation(_scenario(scenario, over, True), on_episode=rows_fresh.append, max_ticks=250)
    assert not len(fresh.windows.scratch_ints)
    kept.run(), fresh.run()
    assert kept.windows.scratch_ints is buffers[0] and kept.windows.scratch_reals is buffers[1]  # never remade
    key = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]  # noqa: E731
    assert key(rows_kept) == key(rows_fresh) and rows_kept
    assert _window_state(kept) == _window_state(fresh)
