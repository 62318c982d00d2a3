"""Jitter per event: a fresh draw per (synapse, send); the newest send is held, older arrivals are
dropped and counted (docs/model-of-time.md, "Jitter per event")."""

import networkx as nx
import numpy as np
import pytest
from conftest import SMALL_CARTPOLE
from test_windows import _run, _scenario

from asyncneurons.model import advice, delays
from asyncneurons.model.graphio import save_graph
from asyncneurons.engine import jitter
from asyncneurons.errors import ScenarioError
from asyncneurons.engine.simulation import Simulation

DIRECT = {"network": {"hidden": []}, "learning": {"lr": 0.01, "lr_end": None},
          "timing": {"synapse_delay": 2.0, "synapse_jitter": {"dist": "uniform", "low": 0.5, "high": 3.0}},
          "env": {"pacing": "clock", "period": 1.0}}


def _by_hand(spec, u, sends):
    """The jitters of the timeline in docs/model-of-time.md: 3 ms for even sends, 0.5 ms for odd."""
    return np.where(sends % 2 == 0, 3.0, 0.5)


def test_the_newest_send_is_held_and_an_older_arrival_is_dropped_by_definition():
    # one synapse, delay 2: a sent at 0 with jitter 3, b at 1 with jitter 0.5, c at 4 with jitter 0
    arrivals, stale = jitter.hold([(0.0, 3.0, "a"), (1.0, 0.5, "b"), (4.0, 0.0, "c")], 2.0)
    assert arrivals == [(3.5, 1, "b", True), (5.0, 0, "a", False), (6.0, 2, "c", True)]
    assert stale == 1
    # arriving together is not stale: the later send is held
    arrivals, stale = jitter.hold([(0.0, 1.0, "a"), (0.5, 0.5, "b")], 2.0)
    assert arrivals == [(3.0, 0, "a", True), (3.0, 1, "b", True)] and stale == 0


@pytest.mark.parametrize("windows", [True, False])
def test_the_hand_computed_timeline_of_the_documentation(scenario, monkeypatch, windows):
    monkeypatch.setattr(jitter, "late", _by_hand)
    s = scenario(**DIRECT, engine={"windows": windows})
    samples = []
    sim = Simulation(s, max_ticks=8, on_event=lambda t, u, k, v, w: samples.append((t, w)) if k == "sample" else None)
    sim.run()
    assert (sim.windows is not None) == windows
    assert samples == [(3.5, 1), (5.5, 3), (7.5, 5)]  # never an even wave: those sends are overtaken
    assert sim.transmission.stale_count == 4 * 4  # sends 0, 2, 4, 6 on each of the four synapses


def _two_delays(path):
    """CartPole's four inputs straight into one softmax logit: in0 and in2 by 2 ms, in1 and in3 by 0.5 ms."""
    g = nx.DiGraph()
    for i in range(4):
        g.add_node(f"in{i}", role="input", kind="input", layer=0, index=i)
    g.add_node("out0", role="output", kind="softmax", layer=1, index=0)
    for i, d in enumerate([2.0, 0.5, 2.0, 0.5]):
        g.add_edge(f"in{i}", "out0", delay=d, retro_delay=0.0)
    save_graph(g, path)
    return str(path)


@pytest.mark.parametrize("refractory, windows, expected", [
    # send n leaves at n ms and arrives at n + 5 or n + 2.5 (even or odd n) on the long synapses,
    # at n + 3.5 or n + 1 on the short ones; the even sends arrive after the next odd one: stale
    # at 3.5 and 5.5 and 7.5 (short, under a held arrival), at 5 and 7 (long, alone: no sample)
    (0.0, False, [(2.0, -1), (3.5, 1), (4.0, 1), (5.5, 3), (6.0, 3), (7.5, 5), (8.0, 5)]),
    # 0.75 ms refractory: 4.0 and 6.0 are answered at 4.25 and 6.25; the stale arrivals at 5.0
    # (just as the period after 4.25 ends) and 7.0 wake nothing, so the next samples wait for 5.5 and 7.5
    (0.75, False, [(2.0, -1), (3.5, 1), (4.25, 1), (5.5, 3), (6.25, 3), (7.5, 5)]),
    (0.75, True, [(2.0, -1), (3.5, 1), (4.25, 1), (5.5, 3), (6.25, 3), (7.5, 5)]),
])
def test_an_on_input_unit_samples_at_each_arrival_that_is_not_stale(scenario, monkeypatch, tmp_path, refractory,
                                                                   windows, expected):
    monkeypatch.setattr(jitter, "late", _by_hand)
    s = scenario(base={k: v for k, v in SMALL_CARTPOLE.items() if k != "network"},
                 network={"graph": _two_delays(tmp_path / "two.json")}, learning={"lr": 0.01, "lr_end": None},
                 timing={"firing": "on_input", "refractory": refractory,
                         "synapse_jitter": {"dist": "uniform", "low": 0.5, "high": 3.0}},
                 env={"pacing": "clock", "period": 1.0}, engine={"windows": windows})
    samples = []
    sim = Simulation(s, max_ticks=8, on_event=lambda t, u, k, v, w: samples.append((t, w)) if k == "sample" else None)
    sim.run()
    assert (sim.windows is not None) == windows
    assert samples == expected
    assert sim.transmission.stale_count == 4 * 4  # sends 0, 2, 4, 6 on each synapse


JITTERED = [
    {"timing": {"synapse_jitter": {"dist": "exponential", "mean": 3.0}}, "env": {"period": 7.0}},
    {"timing": {"synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 8.0}, "firing": "clock",
                "firing_period": 3.0}},
    {"timing": {"synapse_jitter": {"dist": "lognormal", "mu": 0.0, "sigma": 1.0}, "firing": "poisson",
                "firing_rate": 0.5}, "learning": {"rule": "global_reinforce"}},
    {"timing": {"synapse_jitter": 1.5, "synapse_delay": 1.0}, "learning": {"rule": "ste_backprop"}},
    {"timing": {"synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 4.0}, "refractory": 1.0},
     "env": {"pacing": "wait"}},
    # units with the same senders and delays: under jitter each hears its own arrivals
    {"timing": {"synapse_delay": 2.0, "synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 3.0}},
     "env": {"period": 5.0}},
    # on_input with a refractory period: each unit at its first arrival that is not stale
    {"timing": {"firing": "on_input", "refractory": 0.5, "synapse_jitter": {"dist": "exponential", "mean": 2.0}}},
    {"timing": {"firing": "on_input", "refractory": [0.3, 0.6, 1.0],
                "synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 6.0}},
     "env": {"pacing": "wait"}, "learning": {"rule": "global_reinforce"}},
    {"timing": {"firing": "on_input", "refractory": 0.4, "retro_delay": 0.3,
                "synapse_jitter": {"dist": "lognormal", "mu": 0.0, "sigma": 1.0}}, "learning": {"rule": "ste_backprop"}},
    # the TD error and retrograde signals, each with its own jitter per send
    {"timing": {"reward_jitter": {"dist": "exponential", "mean": 30.0}}},
    {"timing": {"reward_jitter": {"dist": "uniform", "low": 0.0, "high": 50.0}}, "learning": {"rule": "global_reinforce"}},
    {"timing": {"retro_jitter": {"dist": "exponential", "mean": 5.0}, "retro_delay": 0.5}, "learning": {"lambda": 0.0}},
    {"timing": {"retro_jitter": {"dist": "uniform", "low": 0.0, "high": 3.0}, "retro_delay": 1.5},
     "learning": {"rule": "ste_backprop"}},
    {"timing": {"retro_jitter": 0.7, "reward_jitter": 5.0, "synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 5.0},
                "firing": "clock", "firing_period": 4.0}},
]


def _stale(sim):
    return (sim.transmission.stale_count, sum(g.reward_stale for g in sim.groups),
            sum(getattr(g, "retro_stale", 0) for g in sim.groups))


@pytest.mark.parametrize("over", JITTERED)
def test_jittered_runs_are_the_same_with_or_without_windows_and_fusion(scenario, over):
    runs = {}
    for windows in (True, False):
        for fuse in (True, False):
            sim, rows, events = _run(_scenario(scenario, over, windows), 120, fuse=fuse)
            assert (sim.windows is not None) == windows
            runs[windows, fuse] = (rows, events, _stale(sim),
                                   {l: m.tolist() for l, m in sim.layer_matrices().items()})
    first = runs[True, True]
    assert len(first[1]) > 120 * 5
    for key, run in runs.items():
        assert run == first, key


@pytest.mark.parametrize("over", [
    {"timing": {"firing": "on_input", "synapse_jitter": {"dist": "exponential", "mean": 2.0}}},
    {"timing": {"firing": "on_input", "synapse_delay": 1.0, "synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 2.0}},
     "env": {"pacing": "wait"}},
])
def test_on_input_without_refractory_answers_every_arrival_the_same_whatever_the_grouping(scenario, over):
    runs = {}
    for fuse in (True, False):
        sim, rows, events = _run(_scenario(scenario, over, True), 120, fuse=fuse)
        assert sim.windows is None  # every arrival instant is a sample: the event engine serves it
        runs[fuse] = (rows, events, _stale(sim), {l: m.tolist() for l, m in sim.layer_matrices().items()})
    assert runs[True] == runs[False]
    assert runs[True][2][0] > 0 and len(runs[True][1]) > 120 * 5


def test_stale_retrograde_signals_are_counted_only_with_jitter(scenario):
    counts = []
    for mean in (0.0, 5.0, 50.0):
        over = {"timing": {"retro_delay": 0.5, "retro_jitter": {"dist": "exponential", "mean": mean} if mean else 0.0}}
        sim, _, _ = _run(_scenario(scenario, over, True), 100)
        counts.append(_stale(sim))
    assert [c[2] for c in counts][0] == 0 < counts[1][2] < counts[2][2]
    assert all(c[:2] == (0, 0) for c in counts)


def test_stale_arrivals_are_counted_only_with_jitter_and_more_with_more_jitter(scenario):
    counts = []
    for spread in (0.0, 30.0, 120.0):  # ms, against 20 ms between waves
        over = {"timing": {"synapse_jitter": {"dist": "uniform", "low": 0.0, "high": spread}}}
        sim, _, _ = _run(_scenario(scenario, over, True), 100)
        counts.append(sim.transmission.stale_count)
    assert counts[0] == 0 < counts[1] < counts[2]


@pytest.mark.parametrize("zero, firing", [
    (0.0, {}), ({"dist": "constant", "value": 0.0}, {}),
    (0.0, {"firing": "on_input"}), ({"dist": "constant", "value": 0.0}, {"firing": "on_input", "refractory": 0.5}),
])
def test_zero_jitter_is_the_run_without_it_bit_for_bit(scenario, zero, firing):
    every = {"synapse_jitter": zero, "reward_jitter": zero, "retro_jitter": zero}
    for windows in (True, False):
        plain = _run(_scenario(scenario, {"timing": {"retro_delay": 0.5, **firing}}, windows), 150)
        jittered = _run(_scenario(scenario, {"timing": {"retro_delay": 0.5, **firing, **every}}, windows), 150)
        assert plain[1:] == jittered[1:]
        sim = jittered[0]
        assert sim.transmission.jitter is sim.reward_jitter is sim.retro_jitter is None
        assert len(sim.groups) == len(plain[0].groups)


@pytest.mark.parametrize("windows", [True, False])
def test_a_unit_learns_from_the_newest_td_error_and_drops_an_older_one(scenario, monkeypatch, windows):
    # δ_k leaves at t = k (clock pacing, 1 ms), reward delay 2 ms, jitter 3 ms for even k and 0.5 ms
    # for odd k: δ_1 lands at 3.5, δ_2 at 7 (after δ_3 at 5.5: dropped), δ_3 at 5.5, δ_5 at 7.5
    monkeypatch.setattr(jitter, "late", _by_hand)
    s = scenario(network={"hidden": []}, learning={"lr": 0.01, "lr_end": None},
                 timing={"synapse_delay": {"dist": "uniform", "low": 0.1, "high": 0.3}, "reward_delay": 2.0,
                         "reward_jitter": {"dist": "uniform", "low": 0.5, "high": 3.0}},
                 env={"pacing": "clock", "period": 1.0}, engine={"windows": windows})
    learned = []
    sim = Simulation(s, max_ticks=8, on_event=lambda t, u, k, v, w: learned.append((t, w)) if k == "reward" else None)
    sim.run()
    assert (sim.windows is not None) == windows
    assert learned == [(3.5, 1), (5.5, 3), (7.5, 5)]
    assert [g.reward_stale for g in sim.groups] == [1]  # δ_2 at 7 ms; δ_4 would land at 9, after the run


def test_draws_are_keyed_by_synapse_and_send_alone():
    keys = jitter.edge_keys(3, [10, 10, 11], [20, 21, 20])
    assert len(set(keys.tolist())) == 3
    spec = {"dist": "exponential", "mean": 2.0}
    one = jitter.draw(spec, keys, np.array([0, 5, 7]))
    # the same (synapse, send) gives the same draw in any batch, in any order
    again = jitter.draw(spec, keys[::-1].copy(), np.array([7, 5, 0]))
    np.testing.assert_array_equal(one, again[::-1])
    assert jitter.draw(spec, keys[:1], np.array([1]))[0] != one[0]


@pytest.mark.parametrize("spec", [2.5, {"dist": "constant", "value": 1.5}, {"dist": "uniform", "low": 0.5, "high": 3.0},
                                  {"dist": "truncnormal", "mean": 2.0, "std": 1.0, "low": 0.5},
                                  {"dist": "exponential", "mean": 2.0, "shift": 0.25},
                                  {"dist": "lognormal", "mu": 0.5, "sigma": 0.3}])
def test_a_broadcast_draws_the_jitters_of_its_units_with_the_distribution_read_once(spec):
    keys = jitter.unit_keys(3, ["out0", "out1", "h1_0"])
    late = jitter.Broadcast(spec, keys)
    for step in (0, 1, 17, 4096):
        expected = jitter.draw(spec, keys, np.full(len(keys), step, dtype=np.int64))
        assert late(step) == expected.tolist()  # the same draws, to the last bit
    u = np.linspace(0.0, 0.999, 7)
    by_table = np.full(7, spec) if not isinstance(spec, dict) else delays.DISTRIBUTIONS[spec["dist"]].inverse_cdf(
        u, **{k: v for k, v in spec.items() if k != "dist"})  # the table of asyncneurons.model.delays
    np.testing.assert_array_equal(jitter.late(delays.law(spec), u, np.arange(7)), by_table)


@pytest.mark.parametrize("spec", [{"dist": "uniform", "low": 0.5, "high": 3.0}, {"dist": "uniform", "low": 0.0, "high": 5.0},
                                  {"dist": "exponential", "mean": 2.0}])
def test_jitters_drawn_in_compiled_code_are_those_of_the_law(spec):
    """A uniform law's jitter of each send is drawn in compiled code as the send is written
    (history_kernels.append_jittered), the same numbers as F⁻¹ of the keyed uniforms (jitter.draw);
    other laws are left to jitter.late (drawn ahead: the write asks for them first)."""
    from asyncneurons.engine.history_kernels import append_jittered
    law = jitter.compiled_law(spec)
    assert bool(law[0]) == (spec["dist"] == "uniform")
    keys = jitter.edge_keys(5, [10, 11, 12, 13, 14], [1, 1, 2, 3, 3])
    src_ptr, by_src = np.array([0, 0, 2, 3, 5]), np.array([0, 1, 2, 3, 4])  # senders 1, 2, 3 and their synapses
    n, depth = 4, 4
    HT, HV, HA = np.full((n, depth), -np.inf), np.zeros((n, depth)), np.full((n, depth), -np.inf)
    HW, HN = np.zeros((n, depth), dtype=np.int64), np.full((n, depth), -1, dtype=np.int64)
    head, sent, jt_base = np.zeros(n, dtype=np.int64), np.array([0, 7, 4096, 3]), np.full(n, -9)
    EJ, ES, JT = np.zeros((5, depth)), np.zeros((5, depth), dtype=bool), np.zeros((5, 8))
    stale = np.zeros(1, dtype=np.int64)
    idx = np.array([1, 3])
    code = append_jittered(HT, HV, HW, HN, head, HA, EJ, ES, stale, idx, np.array([1.0, 2.0]), np.array([0.5, 1.0]),
                           np.array([0, 0]), 0.0, 0, src_ptr, by_src, JT, jt_base, sent, np.zeros(5), keys, law)
    if not law[0]:
        assert code == 2 and sent.tolist() == [0, 7, 4096, 3]  # nothing written: to be drawn ahead first
        return
    assert code == 0 and sent.tolist() == [0, 8, 4096, 4]
    for q, s in ((0, 1), (1, 1), (3, 3), (4, 3)):
        expected = jitter.draw(spec, np.array([keys[q]]), np.array([sent[s] - 1]))
        np.testing.assert_array_equal(EJ[q, :1], expected)  # to the last bit
    assert not EJ[2].any() and not JT.any()


@pytest.mark.parametrize("over, message", [
    ({"timing": {"synapse_jitter": -1.0}}, "timing.synapse_jitter"),
    ({"timing": {"synapse_jitter": {"dist": "uniform", "low": 2.0, "high": 1.0}}}, "timing.synapse_jitter.high"),
    ({"timing": {"synapse_jitter": 1.0}, "learning": {"rule": "map_prop"},
      "network": {"unit": "gaussian", "output": "categorical"}}, "timing.synapse_jitter: is not available"),
    ({"timing": {"retro_jitter": 1.0}, "learning": {"rule": "map_prop"},
      "network": {"unit": "gaussian", "output": "categorical"}}, "timing.retro_jitter: is not available"),
    ({"timing": {"reward_jitter": {"dist": "exponential"}}}, "timing.reward_jitter.mean"),
])
def test_bad_jitter_is_a_one_line_error_naming_the_key(scenario, over, message):
    with pytest.raises(ScenarioError) as err:
        scenario(**over)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_note_when_jitter_spreads_wider_than_the_gap_between_sends(scenario):
    wide = scenario(timing={"firing": "clock", "firing_period": 2.0,
                            "synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 5.0}})
    narrow = scenario(timing={"firing": "clock", "firing_period": 2.0,
                              "synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 1.0}})
    note = advice.overtaking_sends(wide, None)
    assert "timing.synapse_jitter varies by up to 5 ms" in note and "firing_period: 2 ms" in note
    reward = scenario(timing={"reward_jitter": 30.0, "synapse_jitter": 1.0}, env={"pacing": "clock", "period": 20.0})
    assert advice.overtaking_sends(reward, None) is None  # a constant jitter never reorders
    reward = scenario(timing={"reward_jitter": {"dist": "uniform", "low": 0.0, "high": 50.0}},
                      env={"pacing": "clock", "period": 20.0})
    assert "timing.reward_jitter" in advice.overtaking_sends(reward, None)
    assert "stale_reward" in advice.overtaking_sends(reward, None)
    assert advice.overtaking_sends(narrow, None) is None
    assert advice.overtaking_sends(scenario(), None) is None
    # under on_input a unit sends at every arrival it answers: the gap is its refractory period
    spread = {"dist": "uniform", "low": 0.0, "high": 1.0}
    note = advice.overtaking_sends(scenario(timing={"firing": "on_input", "synapse_jitter": spread}), None)
    assert "timing.refractory, the least time between an on_input unit's sends: 0 ms" in note
    note = advice.overtaking_sends(scenario(timing={"firing": "on_input", "synapse_jitter": spread,
                                                    "refractory": [2.0, 0.5, 3.0]}), None)
    assert "unit's sends: 0.5 ms" in note
    assert advice.overtaking_sends(scenario(timing={"firing": "on_input", "synapse_jitter": spread,
                                                    "refractory": 2.0}), None) is None
    unused = scenario(timing={"retro_jitter": 2.0}, learning={"rule": "global_reinforce"})
    assert "timing.retro_jitter has no effect" in advice.unused_clock_keys(unused, None)


def test_diagnostics_count_stale_arrivals_per_episode(scenario, tmp_path):
    from asyncneurons.study.diagnostics import Writer, _read
    s = _scenario(scenario, {"timing": {"synapse_jitter": {"dist": "exponential", "mean": 4.0}}}, True)
    sim = Simulation(s, max_ticks=300)
    writer = Writer(tmp_path, 0, sim.n_layers)
    sim.on_episode = lambda row: writer.episode(sim, row)
    sim.run()
    writer.close()
    rows = _read(tmp_path / "diagnostics" / "run-0.csv")
    assert len(rows) > 3
    per_episode = [int(r["stale_synaptic"]) for r in rows]
    assert all(n > 0 for n in per_episode)
    assert sum(per_episode) <= sim.transmission.stale_count
    assert {r["stale_reward"] for r in rows} == {r["stale_retrograde"] for r in rows} == {"0"}


@pytest.mark.parametrize("windows, refractory", [(True, 0.5), (False, 0.5), (False, 2.0), (False, 0.0)])
def test_a_jittered_on_input_run_saved_at_a_checkpoint_continues_as_the_whole_run(scenario, tmp_path, windows,
                                                                                 refractory):
    """Arrivals still to come are events (the event engine) or read from the histories (windows)."""
    from conftest import resumed_equals_whole

    over = {"experiment": {"episodes": 10},
            "timing": {"firing": "on_input", "refractory": refractory,
                       "synapse_jitter": {"dist": "exponential", "mean": 8.0}}}
    s = _scenario(scenario, over, windows)
    whole, second = resumed_equals_whole(s, tmp_path, 4)
    assert (whole.windows is not None) == (windows and refractory > 0)
    assert _stale(second) == _stale(whole) and _stale(whole)[0] > 0


@pytest.mark.parametrize("windows", [True, False])
def test_a_jittered_run_saved_at_a_checkpoint_continues_as_the_whole_run(scenario, tmp_path, windows):
    """A checkpoint holds the per-synapse jitters, the newest sends held and the stale counts."""
    from conftest import resumed_equals_whole

    over = {"experiment": {"episodes": 10},
            "timing": {"synapse_jitter": {"dist": "exponential", "mean": 8.0}, "reward_jitter": 15.0,
                       "retro_jitter": {"dist": "uniform", "low": 0.0, "high": 30.0}, "retro_delay": 0.5}}
    s = _scenario(scenario, over, windows)
    whole, second = resumed_equals_whole(s, tmp_path, 4)
    assert _stale(second) == _stale(whole) and _stale(whole)[0] > 0 and _stale(whole)[2] > 0
