"""The model of time: event times equal a hand computation, and the order within an instant."""

import networkx as nx
import numpy as np
import pytest

from asyncneurons.model.graphio import save_graph
from asyncneurons.engine.simulation import Simulation

from conftest import SMALL_CARTPOLE


def _tiny_graph(path):
    """4 inputs → h1_0 → out0 (one softmax logit: two actions), plus a skip synapse in0 → out0.

    Delays (ms) are binary fractions so that sums are exact in floating point.
    """
    g = nx.DiGraph()
    for i in range(4):
        g.add_node(f"in{i}", role="input", kind="input", layer=0, index=i)
    g.add_node("h1_0", role="hidden", kind="bernoulli", layer=1, index=0)
    g.add_node("out0", role="output", kind="softmax", layer=2, index=0)
    for i, d in enumerate([1.5, 0.5, 2.0, 1.0]):
        g.add_edge(f"in{i}", "h1_0", delay=d, retro_delay=0.0)
    g.add_edge("h1_0", "out0", delay=0.25, retro_delay=0.0)
    g.add_edge("in0", "out0", delay=3.0, retro_delay=0.0)
    save_graph(g, path)
    return path


def _events(s, ticks):
    log = []
    Simulation(s, max_ticks=ticks, on_event=lambda t, u, k, v, w: log.append((t, u, k, w))).run()
    return log


def _times(log, unit, kind):
    return [t for t, u, k, _ in log if u == unit and k == kind]


@pytest.fixture
def tiny(tmp_path, scenario):
    path = _tiny_graph(tmp_path / "tiny.json")

    base = {k: v for k, v in SMALL_CARTPOLE.items() if k != "network"}

    def make(**over):
        over["network"] = {"graph": str(path)}
        over.setdefault("learning", {}).update({"lr": 0.01, "lr_end": None})
        over["experiment"] = {"episodes": 1000}
        return scenario(base=base, **over)
    return make


def test_on_input_samples_at_every_arrival_instant_and_waits_for_the_current_wave(tiny):
    s = tiny(timing={"firing": "on_input", "reward_delay": 0.75})
    log = _events(s, ticks=3)
    # h1_0 hears the inputs at 0.5, 1, 1.5 and 2 ms after each observation;
    # out0 hears h1_0 0.25 ms after each of those and in0 at 3 ms.
    # The action of wave k is the first output sample whose every input descends from wave k:
    # at 3.0 ms after the observation (in0's value is the last to arrive).
    assert _times(log, "environment", "env_step") == [3.0, 6.0]
    h = [0.5, 1.0, 1.5, 2.0]
    assert _times(log, "h1_0", "sample") == h + [3 + x for x in h] + [6 + x for x in h]
    out = [0.75, 1.25, 1.75, 2.25, 3.0]
    assert _times(log, "out0", "sample") == out + [3 + x for x in out] + [6 + x for x in out]
    # the TD error of each step lands 0.75 ms after the step, on every unit
    assert _times(log, "h1_0", "reward") == [3.75, 6.75]
    assert _times(log, "out0", "reward") == [3.75, 6.75]


def test_on_all_samples_once_per_wave_when_every_input_has_arrived(tiny):
    s = tiny(timing={"firing": "on_all"})
    log = _events(s, ticks=3)
    assert _times(log, "h1_0", "sample") == [2.0, 5.0, 8.0]
    assert _times(log, "out0", "sample") == [3.0, 6.0, 9.0]
    assert _times(log, "environment", "env_step") == [3.0, 6.0]


def test_clock_pacing_steps_on_its_period_with_stale_actions(tiny):
    s = tiny(timing={"firing": "on_all"}, env={"pacing": "clock", "period": 2.0})
    log = _events(s, ticks=4)
    assert _times(log, "environment", "env_step") == [2.0, 4.0, 6.0]
    # observations go out at 0, 2, 4 and 6 ms; h1_0 answers 2 ms after each, but out0 needs
    # in0's value, 3 ms old: it answers wave k at 2k + 3 ms, after the next step has happened
    # (the run stops at the 4th step, at 8 ms, after the samples of that instant)
    assert _times(log, "h1_0", "sample") == [2.0, 4.0, 6.0, 8.0]
    assert _times(log, "out0", "sample") == [3.0, 5.0, 7.0]
    waves = [w for t, u, k, w in log if u == "out0" and k == "sample"]
    assert waves == [0, 1, 2]  # each step at 2k ms acts on the wave before the current one


def test_clock_firing_samples_on_the_unit_period(tiny):
    s = tiny(timing={"firing": "clock", "firing_period": 1.25}, env={"pacing": "clock", "period": 5.0})
    log = _events(s, ticks=2)
    ticks = [1.25 * k for k in range(1, 9)]  # until the run stops at its 2nd step, 10 ms
    assert _times(log, "h1_0", "sample") == ticks
    assert _times(log, "out0", "sample") == ticks
    assert _times(log, "environment", "env_step") == [5.0]


def test_refractory_period_defers_a_sample_to_its_end(tiny):
    s = tiny(timing={"firing": "on_input", "refractory": 0.75})
    log = _events(s, ticks=2)
    # arrivals at 0.5, 1.0, 1.5, 2.0: samples at 0.5, then deferred to 1.25, then 2.0
    assert _times(log, "h1_0", "sample")[:3] == [0.5, 1.25, 2.0]


def test_order_within_an_instant_at_zero_delay(scenario):
    """Learning signals, then the new wave layer by layer, then the environment."""
    s = scenario(experiment={"episodes": 1000}, network={"hidden": [3, 2]},
                 learning={"lr": 0.01, "lr_end": None, "critic_hidden": [4], "critic_lr": 0.01, "critic_lr_end": None})
    log = []
    Simulation(s, max_ticks=4, on_event=lambda t, u, k, v, w: log.append((u, k, w))).run()
    # everything happens at t = 0: look at the sequence between two environment steps
    steps = [i for i, (u, k, w) in enumerate(log) if k == "env_step"]
    one = log[steps[1] + 1:steps[2]]
    kinds = [k for _, k, _ in one]
    first_sample = kinds.index("sample")
    # the step emits its observation, then its TD error lands on every unit before any samples
    assert kinds[:4] == ["observation"] * 4
    assert set(kinds[4:first_sample]) == {"reward"} and "reward" not in kinds[first_sample:]
    # rewards land deepest layer first
    reward_units = [u for u, k, _ in one if k == "reward"]
    assert reward_units[0].startswith("out") and reward_units[-1].startswith("h1_")
    samples = [u for u, k, _ in one[first_sample:] if k == "sample"]
    layer = [0 if u.startswith("h1_") else 1 if u.startswith("h2_") else 2 for u in samples]
    assert layer == sorted(layer) and len(samples) == 3 + 2 + 1


@pytest.mark.parametrize("rule", ["weight_max", "global_reinforce"])
def test_delays_that_reorder_nothing_change_nothing(scenario, rule):
    """With synapses of at most 2 ms, a wave crosses the three layers within 6 ms: every unit still
    samples wave k, learns from δ_k (10 ms after step k) and samples wave k + 1 (20 ms) in the same
    order as with no synaptic delay at all, so the runs are the same to the last bit. Delays
    matter to learning only through the order of events they change."""
    def run(delay):
        s = scenario(experiment={"episodes": 1000},
                     learning={"rule": rule, "lambda": 0.8, "lr": [0.02, 2e-3, 2e-4], "lr_end": None},
                     timing={"synapse_delay": delay, "reward_delay": 10.0}, env={"pacing": "clock", "period": 20.0})
        rows = []
        sim = Simulation(s, on_episode=rows.append, max_ticks=400).run()
        return [(r["return"], r["length"], r["stale_actions"]) for r in rows], sim.layer_matrices()
    rows_0, w_0 = run(0.0)
    rows_2, w_2 = run({"dist": "uniform", "low": 0.0, "high": 2.0})
    rows_9, w_9 = run({"dist": "uniform", "low": 0.0, "high": 9.0})  # now some units sample after δ lands
    assert rows_2 == rows_0 and len(rows_0) > 5
    for layer in w_0:
        np.testing.assert_array_equal(w_2[layer], w_0[layer])
    assert any(not np.array_equal(w_9[layer], w_0[layer]) for layer in w_0)
