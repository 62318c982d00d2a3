"""Retrograde signals landing one synapse at a time, drained from a queue of arrays by one compiled
loop (asyncneurons/engine/retrograde.py): the same runs as the event engine, landing for landing."""

import numpy as np
import pytest
from conftest import resumed_equals_whole
from test_windows import _run, _scenario, assert_modes_agree

from asyncneurons.engine import jitter
from asyncneurons.engine.retrograde import RetroQueue
from asyncneurons.engine.simulation import Simulation
from asyncneurons.model import delays

PER_SYNAPSE = {"dist": "uniform", "low": 0.0, "high": 1.0}


def _stale(sim):
    return sum(getattr(g, "retro_stale", 0) for g in sim.groups)


@pytest.mark.parametrize("over", [
    {"timing": {"retro_delay": PER_SYNAPSE}},
    {"timing": {"retro_jitter": PER_SYNAPSE}},
    # jitter longer than the gaps between sends: older signals overtaken, dropped and counted
    {"timing": {"retro_jitter": {"dist": "exponential", "mean": 5.0}, "retro_delay": 0.5}},
    {"timing": {"retro_delay": {"dist": "lognormal", "mu": 0.0, "sigma": 1.0},
                "retro_jitter": {"dist": "uniform", "low": 0.0, "high": 30.0}}, "env": {"period": 7.0}},
    # landings while units fire, and windows computed again (wait pacing)
    {"timing": {"retro_delay": {"dist": "uniform", "low": 0.0, "high": 8.0}}, "env": {"pacing": "wait"}},
    {"timing": {"retro_delay": PER_SYNAPSE, "firing": "clock", "firing_period": 3.0}},
    {"timing": {"retro_delay": PER_SYNAPSE, "reward_delay": {"dist": "uniform", "low": 1.0, "high": 9.0}},
     "learning": {"lambda": 0.0}},
    # a retrograde delay per layer: a layer's signals land at one instant, summed in sender order
    {"timing": {"retro_delay": [1.0, 0.5, 0.25]}},
    # the output's signals land on the last layer directly
    {"timing": {"retro_jitter": PER_SYNAPSE}, "network": {"hidden": [8]}, "learning": {"lr": [0.02, 2e-3]}},
    {"timing": {"retro_delay": PER_SYNAPSE}, "env": {"id": "Acrobot-v1"}},
])
def test_the_queue_gives_the_event_engines_run_landing_for_landing(scenario, over):
    on, off = assert_modes_agree(scenario, over, 300, 300 * 15)
    assert on.retro is not None and off.retro is None
    assert len(on.groups) < len(off.groups)  # a layer stays one group: each row learns alone
    assert _stale(on) == _stale(off)
    for g_on in on.groups:  # every unit took the optimizer steps it takes alone
        for r, name in enumerate(g_on.names):
            g_off = next(g for g in off.groups if name in g.names)
            assert int(np.atleast_1d(g_on.t)[r if np.ndim(g_on.t) else 0]) == int(np.atleast_1d(g_off.t)[0])


@pytest.mark.parametrize("over", [{}, {"network": {"hidden": [8]}, "learning": {"lr": [0.02, 2e-3]}}])
def test_each_retrograde_synapse_keeps_its_own_jitter_key(scenario, over):
    """The keys of the jitter draws, found for every synapse in one call, are each synapse's own:
    the key of its (receiving unit, sending unit) pair found alone, for the synapses of rows that
    send on and for those of the output (which, with one hidden layer, reach the last rows)."""
    s = _scenario(scenario, {"timing": {"retro_jitter": PER_SYNAPSE}, **over}, True)
    sim = Simulation(s, max_ticks=1)
    q = sim.retro

    def own(receiver, sender):
        return int(jitter.edge_keys(sim.seed, [delays.node_key(receiver)], [delays.node_key(sender)],
                                    jitter.RETRO_JITTER)[0])

    inside = [own(q.names[q.e_dst[e]], q.names[r]) for r in range(len(q.names))
              for e in range(q.out_ptr[r], q.out_ptr[r + 1])]
    assert q.e_key.tolist() == inside and len(inside) == len(q.e_dst)
    outside = 0
    for gid, sending in q.senders.items():
        grp = next(g for g in sim.groups if g.gid == gid)
        keys = [own(q.names[d], grp.names[r]) for d, r in zip(sending["dst"].tolist(), sending["rows"].tolist())]
        assert sending["keys"].tolist() == keys
        outside += len(keys)
    assert outside > 0 and len(set(inside) | set(q.e_key.tolist())) == len(inside)


@pytest.mark.parametrize("spec", [PER_SYNAPSE, {"dist": "uniform", "low": 0.25, "high": 3.0},
                                  {"dist": "exponential", "mean": 2.0}])
def test_a_refill_draws_the_jitters_of_the_law_of_each_synapse_and_send(scenario, spec):
    """The queue's jitters of the next sends along every retrograde synapse are F⁻¹ of the keyed
    uniforms of (synapse, send) (jitter.draw), to the last bit: a uniform law's computed in the
    compiled pass of the uniforms (keyed_block), other laws through jitter.late."""
    s = _scenario(scenario, {"timing": {"retro_jitter": spec}}, True)
    q = Simulation(s, max_ticks=1).retro
    assert q.compiled_law[0] == (spec["dist"] == "uniform")
    q.sent[:] = np.arange(len(q.sent)) % 5 + 3
    q._refill(np.arange(len(q.names)))
    for e in range(len(q.e_dst)):
        r = q.e_row[e]
        sends = q.base[r] + np.arange(q.late.shape[0])
        np.testing.assert_array_equal(q.late[:, e], jitter.draw(spec, np.full(len(sends), q.e_key[e]), sends))


def test_stale_retrograde_signals_are_counted_as_the_event_engine_counts_them(scenario):
    over = {"timing": {"retro_jitter": {"dist": "exponential", "mean": 50.0}, "retro_delay": 0.5}}
    on, _, _ = _run(_scenario(scenario, over, True), 150)
    off, _, _ = _run(_scenario(scenario, over, False), 150)
    assert on.retro is not None and _stale(on) == _stale(off) > 0


@pytest.mark.parametrize("over", [
    {"timing": {"retro_jitter": PER_SYNAPSE}},
    {"timing": {"retro_delay": PER_SYNAPSE}},
    {"timing": {"retro_jitter": {"dist": "exponential", "mean": 5.0}, "retro_delay": 0.5}},
    {"timing": {"retro_delay": [1.0, 0.5, 0.25]}},
    {"timing": {"retro_delay": {"dist": "uniform", "low": 0.0, "high": 8.0}}, "env": {"pacing": "wait"}},
    {"timing": {"retro_jitter": PER_SYNAPSE}, "network": {"hidden": [8]}, "learning": {"lr": [0.02, 2e-3]}},
])
def test_the_queue_without_records_is_the_same_run(scenario, over):
    """Recording events changes nothing: the run without ``on_event`` (where the last rows' landings
    are put in order and learned all rows at once whenever each is an instant of its own) ends with
    the same weights, moments, traces, step counts and stale counts as the recorded run (row by row)."""
    s = _scenario(scenario, over, True)
    recorded, _, _ = _run(s, 200)
    plain = Simulation(s, max_ticks=200).run()
    assert plain.retro is not None
    assert plain.weights() == recorded.weights() and _stale(plain) == _stale(recorded)
    for a, b in zip(plain.groups, recorded.groups):
        for x, y in ((a.P, b.P), (a.E, b.E), (a.M, b.M), (a.V, b.V), (a.t, b.t)):
            np.testing.assert_array_equal(x, y)



@pytest.mark.parametrize("over", [{"timing": {"retro_delay": PER_SYNAPSE}}, {"timing": {"retro_jitter": PER_SYNAPSE}}])
def test_the_last_rows_places_kept_from_a_drain_are_checked_before_they_are_used(scenario, monkeypatch, over):
    """The places of a drain's last-row entries are kept for the next drain and used when its
    entries, read in that order, land one after another. Kept places put out of order before every
    drain (two of each row swapped) are counted again: the run is still the recorded run."""
    from asyncneurons.engine import retrograde

    s = _scenario(scenario, over, True)
    recorded, _, _ = _run(s, 150)
    plain = Simulation(s, max_ticks=150)
    q = plain.retro
    drain_at, swapped = retrograde.drain_at, []

    def scrambled(*args):
        POS, PLACED = q.S[-5], q.S[-1]
        c, nl = int(PLACED[0]), len(q.lrow)
        if c > 1:
            pos = POS[:c * nl].reshape(nl, c)
            pos[:, [0, c - 1]] = pos[:, [c - 1, 0]]
            swapped.append(c)
        return drain_at(*args)

    monkeypatch.setattr(retrograde, "drain_at", scrambled)
    plain.run()
    assert swapped and plain.weights() == recorded.weights() and _stale(plain) == _stale(recorded)
    for a, b in zip(plain.groups, recorded.groups):
        for x, y in ((a.P, b.P), (a.E, b.E), (a.M, b.M), (a.V, b.V), (a.t, b.t)):
            np.testing.assert_array_equal(x, y)

def test_ste_errors_applied_in_one_call_without_events_are_the_recorded_runs(scenario):
    """Under STE backprop a run without records applies each instant's errors in one compiled call,
    and with no SimPy event when theirs would come next: the same weights, traces and moments as
    the run with records (the errors summed, recorded and applied step by step, each an event)."""
    s = _scenario(scenario, {"learning": {"rule": "ste_backprop"},
                             "timing": {"reward_delay": {"dist": "uniform", "low": 5.0, "high": 15.0}}}, True)
    recorded, _, samples = _run(s, 200)
    plain = Simulation(s, max_ticks=200).run()
    assert any(kind == "retro" for _, _, kind, _, _ in samples)
    assert plain.windows is not None and plain.weights() == recorded.weights()
    for a, b in zip(plain.groups, recorded.groups):
        for x, y in ((a.E, b.E), (a.M, b.M), (a.V, b.V)):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("timing", [
    {"retro_delay": {"dist": "uniform", "low": 0.0, "high": 6.0}},
    {"retro_jitter": {"dist": "exponential", "mean": 3.0}, "retro_delay": 2.0},
])
def test_a_run_stopped_at_a_checkpoint_and_resumed_is_the_whole_run(scenario, tmp_path, monkeypatch, timing):
    # the TD error lands 17 ms after each step and its signals travel on past the next one, so
    # checkpoints hold signals in flight
    in_flight = []
    state = RetroQueue.state
    def counted(self):
        saved = state(self)
        in_flight.append(len(saved["entries"][0]))
        return saved
    monkeypatch.setattr(RetroQueue, "state", counted)
    s = _scenario(scenario, {"experiment": {"episodes": 10}, "timing": {"reward_delay": 17.0, **timing}}, True)
    whole, second = resumed_equals_whole(s, tmp_path, 4)
    assert whole.retro is not None and second.retro is not None
    assert max(in_flight) > 0
    assert _stale(whole) == _stale(second)


@pytest.mark.parametrize("over", [
    {"timing": {"retro_delay": 0.5}},  # one retrograde delay: a layer's signals land together
    {"timing": {"retro_delay": PER_SYNAPSE}, "learning": {"rule": "weight_max_exact"}},
    {"timing": {"retro_delay": PER_SYNAPSE}, "learning": {"norm_power": 1.5}},
    {"timing": {"retro_delay": PER_SYNAPSE}, "learning": {"trace": "exponential", "trace_tau": 20.0}},
    {"timing": {"retro_delay": PER_SYNAPSE}, "learning": {"rule": "ste_backprop"}},
])
def test_other_runs_keep_the_event_engines_retrograde_signals(scenario, over):
    sim = Simulation(_scenario(scenario, over, True), max_ticks=3)
    assert sim.windows is not None and sim.retro is None


def test_the_queue_follows_a_graph_with_skip_connections_and_missing_synapses(scenario, tmp_path):
    """Units fed back from several layers, and units whose signals reach only some units below."""
    from asyncneurons.model.graph import layered, node_name
    from asyncneurons.model.graphio import save_graph

    g = layered(4, [10, 6], 1, hidden_kind="bernoulli", output_kind="softmax")
    for i in range(0, 10, 3):  # the first layer reaches the output
        g.add_edge(node_name(1, i, 3), node_name(3, 0, 3))
    g.remove_edge(node_name(1, 1, 3), node_name(2, 4, 3))
    save_graph(g, tmp_path / "skip.json")
    over = {"timing": {"retro_jitter": {"dist": "exponential", "mean": 2.0}, "retro_delay": PER_SYNAPSE}}
    out = []
    for windows in (True, False):
        s = _scenario(scenario, over, windows, network={"graph": str(tmp_path / "skip.json")})
        sim, rows, ev = _run(s, 300)
        assert (sim.retro is not None) == windows
        out.append((sim.weights(), rows, ev, _stale(sim)))
    assert out[0] == out[1]


def test_signals_of_two_agent_steps_landing_on_a_unit_at_one_instant(scenario, tmp_path):
    """Steps every 20 ms, the TD error 10 ms late, the output's signals 0.5 ms on: the last
    hidden layer learns at 20k + 10.5 ms. Half its units reach the first layer in 20 ms, half in
    40 ms, so step k's slow signals and step k+1's fast ones land on a first-layer unit at the
    same instant (every time exact in binary), under a learning rate that changes every step."""
    from asyncneurons.model.graph import layered, node_name
    from asyncneurons.model.graphio import save_graph

    g = layered(4, [10, 6], 1, hidden_kind="bernoulli", output_kind="softmax")
    for j in range(6):
        g.edges[node_name(2, j, 3), node_name(3, 0, 3)]["retro_delay"] = 0.5
        for i in range(10):
            g.edges[node_name(1, i, 3), node_name(2, j, 3)]["retro_delay"] = 20.0 if j % 2 else 40.0
    save_graph(g, tmp_path / "collide.json")
    over = {"learning": {"lr_end": [2e-4, 2e-5, 2e-6], "lr_steps": 400}}
    out = []
    for windows in (True, False):
        s = _scenario(scenario, over, windows, network={"graph": str(tmp_path / "collide.json")})
        sim, rows, ev = _run(s, 300)
        assert (sim.retro is not None) == windows
        out.append((sim.weights(), rows, ev))
    assert out[0] == out[1]
    # the collisions happen: a unit records one landing per instant, so a first-layer unit, fed
    # back twice per step (after 20 and after 40 ms), records about one landing per step, not two
    def landings(unit):
        return [t for t, u, kind, _, _ in out[0][2] if kind == "retro" and u == unit]
    first, last = landings(node_name(1, 0, 3)), landings(node_name(2, 0, 3))
    assert len(last) > 100 and len(first) <= len(last) + 1
    assert all((t - 10.5) % 20.0 == 0.0 for t in first)
