"""Timing per layer, per unit and per edge: per-layer lists land on the units of their layer, a
graph file's node sets its own unit's timing, delays follow from positions and a conduction
velocity, and a single value draws exactly what it always drew."""

import math
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
from conftest import SMALL_CARTPOLE
from test_windows import _run, _scenario, assert_modes_agree

from asyncneurons.model import advice, delays
from asyncneurons.errors import GraphError
from asyncneurons.model.graphio import save_graph
from asyncneurons.engine.simulation import Simulation, build_graph, run_seed
from asyncneurons.engine.windows import applies
from asyncneurons.learning.rules import RULES

SMALL = {"network": {"hidden": [3, 2]}, "learning": {"lr": [0.02, 2e-3, 2e-4], "lr_end": None}}
UNIFORM = {"dist": "uniform", "low": 0.0, "high": 4.0}


def _small(scenario, timing=None, **over):
    return scenario(**{**SMALL, **over, "timing": timing or {}})


def _graph(s):
    return build_graph(s, 4, ("discrete", 2), run_seed(s.experiment.seed, 0))


def _edges_into(g, layer, key="delay"):
    return {(u, v): d for u, v, d in g.edges(data=key) if g.nodes[v]["layer"] == layer}


# ---------------------------------------------------------------------------------------------
# A single value draws what it always drew


def test_single_values_draw_the_delays_they_drew_before_timing_per_layer():
    """Numbers drawn by the code before per-layer timing existed, written down to the last bit."""
    from asyncneurons.model.graph import layered
    g = layered(4, [3, 2], 1)
    delays.assign_delays(g, {"dist": "lognormal", "mu": 0.5, "sigma": 1.0},
                         {"dist": "truncnormal", "mean": 1.0, "std": 2.0}, seed=11)
    assert [(a["delay"], a["retro_delay"]) for _, _, a in list(g.edges(data=True))[::7]] == [
        (12.405805520785519, 0.008592097682348698), (6.4888252782527704, 2.042451487910749),
        (3.6038248117323617, 2.31210879581357)]
    r = delays.unit_delays([n for n, x in g.nodes(data="role") if x != "input"],
                           {"dist": "exponential", "mean": 3.0, "shift": 0.5}, 11)
    assert [r[n] for n in ("h1_0", "h1_1", "h1_2", "h2_0")] == [
        5.713444503437867, 4.90451845711328, 10.110013165335085, 3.393230055634576]


# ---------------------------------------------------------------------------------------------
# Per-layer lists


def test_a_synapse_takes_the_delay_of_its_target_units_layer(scenario):
    g = _graph(_small(scenario, {"synapse_delay": [1.0, 2.0, 3.0], "retro_delay": [0.5, 0.0, 7.0]}))
    for layer, forward, back in ((1, 1.0, 0.5), (2, 2.0, 0.0), (3, 3.0, 7.0)):
        assert set(_edges_into(g, layer).values()) == {forward}
        assert set(_edges_into(g, layer, "retro_delay").values()) == {back}


def test_a_distribution_given_for_one_layer_draws_what_it_draws_for_every_layer(scenario):
    alone = _graph(_small(scenario, {"synapse_delay": UNIFORM}))
    mixed = _graph(_small(scenario, {"synapse_delay": [1.0, UNIFORM, 3.0]}))
    assert _edges_into(mixed, 2) == _edges_into(alone, 2)
    assert len(set(_edges_into(mixed, 2).values())) == 6  # each edge its own draw
    assert set(_edges_into(mixed, 1).values()) == {1.0} and set(_edges_into(mixed, 3).values()) == {3.0}


@pytest.mark.parametrize("key", ["synapse_delay", "retro_delay"])
def test_one_value_repeated_per_layer_draws_exactly_the_single_value(scenario, key):
    single = _graph(_small(scenario, {key: UNIFORM}))
    for listed in ([UNIFORM], [UNIFORM] * 3):
        g = _graph(_small(scenario, {key: listed}))
        attr = "delay" if key == "synapse_delay" else "retro_delay"
        assert list(g.edges(data=attr)) == list(single.edges(data=attr))


def test_reward_delays_and_refractory_periods_per_layer_land_on_their_units(scenario):
    s = _small(scenario, {"reward_delay": [4.0, UNIFORM, 6.0], "refractory": [0.5, 1.0, 2.0],
                          "synapse_delay": UNIFORM, "firing": "on_input"})
    sim = Simulation(s, max_ticks=5)
    single = Simulation(_small(scenario, {"reward_delay": UNIFORM}), max_ticks=5)
    for n, layer in sim.layer_of.items():
        if layer == 2:
            assert sim.reward_delays[n] == single.reward_delays[n]
        else:
            assert sim.reward_delays[n] == {1: 4.0, 3: 6.0}[layer]
    for grp in sim.groups:
        assert grp.refractory == {1: 0.5, 2: 1.0, 3: 2.0}[grp.layer]
        # on windows the TD error lands on each unit's row after its own delay (asyncneurons.engine.landings)
        held = grp.row_delay.tolist() if sim.landings is not None else [grp.reward_delay] * grp.size
        assert [sim.reward_delays[n] for n in grp.names] == held


def test_per_layer_refractory_periods_keep_their_units_apart(scenario):
    """Each unit waits its own layer's refractory period between samples, in both engines."""
    over = {"timing": {"firing": "on_input", "refractory": [3.0, 1.0, 5.0], "reward_delay": [2.0, 4.0, 1.0]}}
    on, off = assert_modes_agree(scenario, over, 120, 120 * 8)
    times: dict = {}
    Simulation(on.scenario, max_ticks=120, on_event=lambda t, u, k, v, w: times.setdefault(u, []).append(t)
               if k == "sample" else None).run()
    gaps = {layer: min(np.diff(sorted(times[n])).min() for n, l in on.layer_of.items() if l == layer)
            for layer in (1, 2, 3)}
    assert gaps == {1: pytest.approx(3.0, abs=1e-9), 2: pytest.approx(1.0, abs=1e-9), 3: pytest.approx(5.0, abs=1e-9)}


@pytest.mark.parametrize("timing", [
    {"synapse_delay": [UNIFORM, 1.0, {"dist": "exponential", "mean": 2.0}], "retro_delay": [0.5, 1.5, 0.25],
     "reward_delay": [3.0, UNIFORM, 8.0]},
    {"firing": "clock", "firing_period": [2.0, 1.5, 3.0], "refractory": [0.0, 1.6, 0.5],
     "synapse_delay": [0.5, UNIFORM, 1.0]},
    {"firing": "on_all", "refractory": [0.5, 0.0, 2.5], "synapse_delay": [UNIFORM, UNIFORM, 0.0]},
])
def test_windows_serve_timing_per_layer_and_equal_the_event_engine(scenario, timing):
    on, _ = assert_modes_agree(scenario, {"timing": timing}, 200, 200 * 10)
    assert on.windows is not None


def test_on_input_stays_with_the_event_engine_while_any_unit_has_no_refractory_period(scenario):
    def windows(refractory):
        s = _small(scenario, {"firing": "on_input", "refractory": refractory, "synapse_delay": UNIFORM})
        return applies(s, _graph(s), RULES[s.learning.rule])
    assert windows([1.0, 0.5, 2.0]) and not windows([1.0, 0.0, 2.0])


# ---------------------------------------------------------------------------------------------
# Graph files: a node's own timing, positions and conduction velocity

UNITS = [("in0", "input", "input", 0, 0, (0.0, 0.0)), ("in1", "input", "input", 0, 1, (0.0, 1.0)),
         ("in2", "input", "input", 0, 2, (0.0, 2.0)), ("in3", "input", "input", 0, 3, (0.0, 3.0)),
         ("h0", "hidden", "bernoulli", 1, 0, (3.0, 4.0)), ("h1", "hidden", "bernoulli", 1, 1, (6.0, 1.0)),
         ("out0", "output", "softmax", 2, 0, (6.0, 9.0))]


def placed_graph(**edge_delays):
    g = nx.DiGraph()
    for n, role, kind, layer, index, (x, y) in UNITS:
        g.add_node(n, role=role, kind=kind, layer=layer, index=index, x=x, y=y)
    for i in range(4):
        for h in ("h0", "h1"):
            g.add_edge(f"in{i}", h)
    g.add_edge("h0", "out0")
    g.add_edge("h1", "out0")
    for (u, v), attrs in edge_delays.items():
        g.edges[u, v].update(attrs)
    return g


def _from_file(scenario, tmp_path, g, timing, name="g.json", **over):
    save_graph(g, tmp_path / name)
    base = {k: v for k, v in SMALL_CARTPOLE.items() if k != "network"}
    return scenario(base=base, network={"graph": str(tmp_path / name)},
                    learning={"lr": [0.02, 2e-3], "lr_end": None}, timing=timing, **over)


def graph_modes_agree(scenario, over, path, ticks: int):
    """``over`` on the graph file ``path`` with firing windows and with the event engine: the same
    events and weights; return both simulations."""
    on, rows_on, ev_on = _run(_scenario(scenario, over, True, {"graph": str(path)}), ticks)
    off, rows_off, ev_off = _run(_scenario(scenario, over, False, {"graph": str(path)}), ticks)
    assert on.windows is not None and off.windows is None
    assert rows_on == rows_off and ev_on == ev_off and len(ev_on) > 2 * ticks
    for layer, m in off.layer_matrices().items():
        np.testing.assert_array_equal(on.layer_matrices()[layer], m)
    return on, off


def test_a_synapse_without_a_delay_takes_distance_over_velocity_plus_offset(scenario, tmp_path):
    g = placed_graph()
    g.edges["in1", "h1"]["delay"] = 9.5  # a delay the file sets wins
    g.nodes["h0"]["z"] = 12.0  # (3, 4, 12): 13 from in0 at the origin
    s = _from_file(scenario, tmp_path, g, {"conduction_velocity": 2.0, "synaptic_offset": 0.5,
                                           "synapse_delay": 100.0})
    built = _graph(s)
    hand = {("in0", "h0"): 13 / 2 + 0.5,                 # ‖(3, 4, 12)‖ = 13
            ("in0", "h1"): math.sqrt(37) / 2 + 0.5,      # (6, 1)
            ("in3", "h0"): math.sqrt(9 + 1 + 144) / 2 + 0.5,
            ("in1", "h1"): 9.5,
            ("h1", "out0"): 8 / 2 + 0.5,                 # (6, 1) → (6, 9)
            ("h0", "out0"): math.sqrt(9 + 25 + 144) / 2 + 0.5}
    for (u, v), d in hand.items():
        assert built.edges[u, v]["delay"] == pytest.approx(d, rel=1e-15)
    assert built.edges["in0", "h0"]["retro_delay"] == 7.0  # the same path back
    assert built.edges["in1", "h1"]["retro_delay"] == pytest.approx(math.sqrt(36) / 2 + 0.5)


def test_windows_serve_delays_from_positions_and_equal_the_event_engine(scenario, tmp_path):
    save_graph(placed_graph(), tmp_path / "g.graphml")
    over = {"timing": {"conduction_velocity": 1.5, "synaptic_offset": 0.25, "reward_delay": 2.0, "synapse_delay": 0.0},
            "learning": {"lr": [0.02, 2e-3], "lr_end": None}}
    on, _ = graph_modes_agree(scenario, over, tmp_path / "g.graphml", 200)
    assert on.windows is not None and on.graph.edges["h1", "out0"]["delay"] == 8 / 1.5 + 0.25


def test_velocity_needs_a_position_at_both_ends_of_every_synapse_it_times(scenario, tmp_path):
    g = placed_graph()
    for c in ("x", "y"):
        del g.nodes["h1"][c]
    with pytest.raises(GraphError, match=r"g.json: node 'h1': no position \(x, y or z\) .* edge 'in0' -> 'h1'"):
        _graph(_from_file(scenario, tmp_path, g, {"conduction_velocity": 2.0}))
    for i in range(4):  # every edge of h1 given its delays by hand: it needs no position
        g.edges[f"in{i}", "h1"].update(delay=1.0, retro_delay=1.0)
    g.edges["h1", "out0"].update(delay=1.0, retro_delay=1.0)
    assert _graph(_from_file(scenario, tmp_path, g, {"conduction_velocity": 2.0})).edges["in0", "h1"]["delay"] == 1.0


def test_a_node_sets_its_own_timing_over_the_scenarios(scenario, tmp_path):
    g = placed_graph()
    g.nodes["h0"].update(reward_delay=4.5, refractory=2.0, firing_period=3.0, firing_jitter=0.0)
    g.nodes["h1"].update(firing_phase=0.25)
    g.nodes["out0"].update(firing_period=5.0, firing_phase=1.0)
    s = _from_file(scenario, tmp_path, g, {"firing": "clock", "firing_period": 2.0, "reward_delay": UNIFORM,
                                           "refractory": 0.5, "synapse_delay": UNIFORM,
                                           "firing_jitter": {"dist": "uniform", "low": 0.0, "high": 0.1}})
    sim = Simulation(s, max_ticks=5)
    assert sim.reward_delays["h0"] == 4.5 and sim.reward_delays["h1"] != 4.5
    assert sim.clocks == {"h0": (3.0, 3.0), "h1": (0.25, 2.0), "out0": (1.0, 5.0)}  # no phase: one period
    group_of = {n: grp for grp in sim.groups for n in grp.names}
    assert group_of["h0"].refractory == 2.0 and group_of["h1"].refractory == 0.5
    assert group_of["h0"].clock.specs == [0.0] and group_of["h1"].clock.specs[0]["dist"] == "uniform"
    rate_graph = placed_graph()
    rate_graph.nodes["h1"]["firing_rate"] = 4.0
    sim = Simulation(_from_file(scenario, tmp_path, rate_graph, {"firing": "poisson", "firing_rate": 0.5}, "p.json"),
                     max_ticks=5)
    specs = {grp.names[0]: grp.clock.specs[0]["mean"] for grp in sim.groups}
    assert specs == {"h0": 2.0, "h1": 0.25, "out0": 2.0}  # mean interval 1 / rate


def test_a_unit_with_its_own_refractory_period_is_served_alone_in_both_engines(scenario, tmp_path):
    g = placed_graph()
    g.nodes["h1"]["refractory"] = 3.0
    save_graph(g, tmp_path / "g.json")
    over = {"timing": {"firing": "on_input", "refractory": 0.5, "conduction_velocity": 2.0},
            "learning": {"lr": [0.02, 2e-3], "lr_end": None}}
    on, off = graph_modes_agree(scenario, over, tmp_path / "g.json", 150)
    assert {grp.refractory for grp in off.groups if grp.layer == 1} == {0.5, 3.0}


# ---------------------------------------------------------------------------------------------
# What validate says


def _validate(tmp_path, g, timing: str):
    save_graph(g, tmp_path / "g.json")
    (tmp_path / "s.toml").write_text(f'[network]\ngraph = "g.json"\n[learning]\nlr = 0.01\n[timing]\n{timing}\n')
    return subprocess.run([sys.executable, "-m", "asyncneurons.cli", "validate", str(tmp_path / "s.toml")],
                          capture_output=True, text=True, timeout=120)


def test_validate_refuses_a_missing_position_in_one_line_and_notes_delays_asked_twice(tmp_path):
    g = placed_graph()
    r = _validate(tmp_path, g, 'conduction_velocity = 2.0\nsynapse_delay = { dist = "uniform", low = 0, high = 3 }')
    assert r.returncode == 0, r.stderr
    assert "note: timing.synapse_delay has no effect: with timing.conduction_velocity" in r.stderr
    del g.nodes["out0"]["x"], g.nodes["out0"]["y"]
    r = _validate(tmp_path, g, "conduction_velocity = 2.0")
    assert r.returncode != 0 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "node 'out0': no position (x, y or z)" in r.stderr


def test_advice_on_a_node_timing_its_firing_policy_ignores(scenario, tmp_path):
    g = placed_graph()
    g.nodes["h0"]["firing_period"] = 2.0
    g.nodes["h1"]["firing_period"] = 3.0
    s = _from_file(scenario, tmp_path, g, {"conduction_velocity": 1.0})
    assert advice.unused_node_timing(s, _graph(s)) == (
        "the graph file sets firing_period on 2 node(s), e.g. 'h0': no effect under timing.firing = \"on_all\"")
    s = _from_file(scenario, tmp_path, g, {"conduction_velocity": 1.0, "firing": "clock"})
    assert advice.unused_node_timing(s, _graph(s)) is None


def test_advice_on_an_offset_without_velocity(scenario):
    s = _small(scenario, {"synaptic_offset": 1.0})
    assert advice.distance_and_drawn_delays(s, _graph(s)) == \
        "timing.synaptic_offset has no effect without timing.conduction_velocity"
    assert advice.distance_and_drawn_delays(_small(scenario), None) is None


def test_per_layer_timing_must_have_one_value_per_layer_of_the_graph(tmp_path):
    r = _validate(tmp_path, placed_graph(), "refractory = [1.0, 2.0, 3.0]")
    assert r.returncode != 0 and "timing.refractory: 3 values given but the graph has 2 layers" in r.stderr


def test_conduction_delay_is_the_euclidean_distance_over_the_velocity():
    assert delays.conduction_delay((0, 0, 0), (3, 4, 12), 2.0, 0.5) == 7.0
    assert delays.conduction_delay((1, 1, 1), (1, 1, 1), 0.1) == 0.0
