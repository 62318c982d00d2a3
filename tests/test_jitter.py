"""Jitter per event: a fresh draw per (synapse, send); the newest send is held, older arrivals are
dropped and counted (docs/model-of-time.md, "Jitter per event")."""

import numpy as np
import pytest
from test_windows import _run, _scenario

from asyncneurons import advice, jitter
from asyncneurons.errors import ScenarioError
from asyncneurons.simulation import Simulation

DIRECT = {"network": {"hidden": []}, "learning": {"lr": 0.01, "lr_end": None},
          "timing": {"synapse_delay": 2.0, "synapse_jitter": {"dist": "uniform", "low": 0.5, "high": 3.0}},
          "env": {"pacing": "clock", "period": 1.0}}


def _by_hand(spec, keys, sends):
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
    monkeypatch.setattr(jitter, "draw", _by_hand)
    s = scenario(**DIRECT, engine={"windows": windows})
    samples = []
    sim = Simulation(s, max_ticks=8, on_event=lambda t, u, k, v, w: samples.append((t, w)) if k == "sample" else None)
    sim.run()
    assert (sim.windows is not None) == windows
    assert samples == [(3.5, 1), (5.5, 3), (7.5, 5)]  # never an even wave: those sends are overtaken
    assert sim.transmission.stale_count == 4 * 4  # sends 0, 2, 4, 6 on each of the four synapses


JITTERED = [
    {"timing": {"synapse_jitter": {"dist": "exponential", "mean": 3.0}}, "env": {"period": 7.0}},
    {"timing": {"synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 8.0}, "firing": "clock",
                "firing_period": 3.0}},
    {"timing": {"synapse_jitter": {"dist": "lognormal", "mu": 0.0, "sigma": 1.0}, "firing": "poisson",
                "firing_rate": 0.5}, "learning": {"rule": "global_reinforce"}},
    {"timing": {"synapse_jitter": 1.5, "synapse_delay": 1.0}, "learning": {"rule": "ste_backprop"}},
    {"timing": {"synapse_jitter": {"dist": "uniform", "low": 0.0, "high": 4.0}, "refractory": 1.0},
     "env": {"pacing": "wait"}},
]


@pytest.mark.parametrize("over", JITTERED)
def test_jittered_runs_are_the_same_with_or_without_windows_and_fusion(scenario, over):
    runs = {}
    for windows in (True, False):
        for fuse in (True, False):
            sim, rows, events = _run(_scenario(scenario, over, windows), 120, fuse=fuse)
            assert (sim.windows is not None) == windows
            runs[windows, fuse] = (rows, events, sim.transmission.stale_count,
                                   {l: m.tolist() for l, m in sim.layer_matrices().items()})
    first = runs[True, True]
    assert len(first[1]) > 120 * 5
    for key, run in runs.items():
        assert run == first, key


def test_stale_arrivals_are_counted_only_with_jitter_and_more_with_more_jitter(scenario):
    counts = []
    for spread in (0.0, 30.0, 120.0):  # ms, against 20 ms between waves
        over = {"timing": {"synapse_jitter": {"dist": "uniform", "low": 0.0, "high": spread}}}
        sim, _, _ = _run(_scenario(scenario, over, True), 100)
        counts.append(sim.transmission.stale_count)
    assert counts[0] == 0 < counts[1] < counts[2]


@pytest.mark.parametrize("zero", [0.0, {"dist": "constant", "value": 0.0}])
def test_zero_jitter_is_the_run_without_it_bit_for_bit(scenario, zero):
    for windows in (True, False):
        plain = _run(_scenario(scenario, {}, windows), 150)
        jittered = _run(_scenario(scenario, {"timing": {"synapse_jitter": zero}}, windows), 150)
        assert plain[1:] == jittered[1:]
        assert jittered[0].transmission.jitter is None


def test_draws_are_keyed_by_synapse_and_send_alone():
    keys = jitter.edge_keys(3, [10, 10, 11], [20, 21, 20])
    assert len(set(keys.tolist())) == 3
    spec = {"dist": "exponential", "mean": 2.0}
    one = jitter.draw(spec, keys, np.array([0, 5, 7]))
    # the same (synapse, send) gives the same draw in any batch, in any order
    again = jitter.draw(spec, keys[::-1].copy(), np.array([7, 5, 0]))
    np.testing.assert_array_equal(one, again[::-1])
    assert jitter.draw(spec, keys[:1], np.array([1]))[0] != one[0]


@pytest.mark.parametrize("over, message", [
    ({"timing": {"synapse_jitter": -1.0}}, "timing.synapse_jitter"),
    ({"timing": {"synapse_jitter": {"dist": "uniform", "low": 2.0, "high": 1.0}}}, "timing.synapse_jitter.high"),
    ({"timing": {"synapse_jitter": 1.0, "firing": "on_input", "refractory": 1.0}}, "timing.synapse_jitter: needs firing"),
    ({"timing": {"synapse_jitter": 1.0}, "learning": {"rule": "map_prop"},
      "network": {"unit": "gaussian", "output": "categorical"}}, "timing.synapse_jitter: is not available"),
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
    assert advice.overtaking_sends(narrow, None) is None
    assert advice.overtaking_sends(scenario(), None) is None


def test_diagnostics_count_stale_arrivals_per_episode(scenario, tmp_path):
    from asyncneurons.diagnostics import Writer, _read
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
