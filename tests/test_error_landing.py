"""Backprop's errors of one instant, with the TD error's landings settled, in one compiled call
(asyncneurons.engine.error_landing): the same run as the event engine, weight for weight."""

import numpy as np
import pytest

from asyncneurons.engine.simulation import Simulation

PER_UNIT = {"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 5.0},
            "reward_delay": {"dist": "uniform", "low": 5.0, "high": 15.0}}


def _scenario(scenario, windows, over=None):
    base = {"experiment": {"episodes": 1000}, "network": {"hidden": [12, 6]},
            "learning": {"rule": "ste_backprop", "lambda": 0.8, "lr": [0.02, 2e-3, 2e-4], "lr_end": None},
            "timing": dict(PER_UNIT), "env": {"pacing": "clock", "period": 20.0}, "engine": {"windows": windows}}
    for k, v in (over or {}).items():
        base.setdefault(k, {}).update(v)
    return scenario(**base)


def _run(s, ticks, count=None):
    rows = []
    sim = Simulation(s, on_episode=rows.append, max_ticks=ticks)
    if count is not None and sim.error_landing is not None:
        land = sim.error_landing._land

        def counted(sg, block, now):
            done = land(sg, block, now)
            count.append(done)
            return done
        sim.error_landing._land = counted
    sim.run()
    return sim, [(r["return"], r["length"], r["sim_time_ms"]) for r in rows]


@pytest.mark.parametrize("over", [{}, {"network": {"hidden": [12]}, "learning": {"lr": [0.02, 2e-4]}},
                                  {"learning": {"lambda": 0.0}}, {"env": {"period": 7.0}},
                                  {"timing": {"retro_delay": 1.5}}],
                         ids=["two hidden layers", "one hidden layer", "lambda 0", "waves overlapping",
                              "retrograde delay: each layer alone"])
def test_errors_landing_in_one_call_give_the_event_engines_run(scenario, over):
    count = []
    on, rows_on = _run(_scenario(scenario, True, over), 300, count)
    off, rows_off = _run(_scenario(scenario, False, over), 300)
    assert on.landings is not None and off.windows is None
    assert sum(count) > 100  # the one call took most instants' errors
    assert rows_on == rows_off
    for layer, m in off.layer_matrices().items():
        np.testing.assert_array_equal(on.layer_matrices()[layer], m)
    steps = {n: int(g.t) for g in off.groups if g.role != "output" for n in g.names}
    assert {n: int(g.t[r]) for g in on.groups if g.role != "output" for r, n in enumerate(g.names)} == steps


def test_the_last_hidden_layer_sends_its_error_on_within_the_call_and_the_first_sends_nothing(scenario):
    sim = Simulation(_scenario(scenario, True), max_ticks=1)
    first, second, out = sorted(sim.groups, key=lambda g: g.rank)
    assert second.errors_next[0] is first and first.errors_next is None
    assert first.errors_at_once is second.errors_at_once is sim.error_landing and out.errors_at_once is None
    assert out.errors_out[2] is second and sim.error_landing.output is out  # its error: one event of its own


@pytest.mark.parametrize("way", ["event, then the engine's path", "event, then one call"])
def test_the_outputs_error_sent_as_its_own_event_lands_as_the_engines_blocks(scenario, way):
    """The output's error as one event without blocks (ErrorLanding.send when it cannot land at
    once), landing by the one call when it comes or taken by the engine's general path: the run
    of the blocks send_retro sends."""
    s = _scenario(scenario, True)
    sims, landed = [], []
    for own in (True, False):
        sim = Simulation(s, max_ticks=200)
        L = sim.error_landing
        if not own:
            sim.output.errors_out = None  # the output's error sent as blocks
        elif way == "event, then the engine's path":
            L._land = lambda sg, block, now: False
        else:
            land = L._land
            L.after_window = lambda L=L: L._queue(*L.pending) or setattr(L, "pending", None)  # always an event
            L._land = lambda sg, block, now: landed.append(land(sg, block, now)) or landed[-1]
        sim.run()
        sims.append(sim)
    assert way != "event, then one call" or sum(landed) > 100
    for layer, m in sims[1].layer_matrices().items():
        np.testing.assert_array_equal(sims[0].layer_matrices()[layer], m)


def test_an_error_sent_while_another_waits_for_the_window_to_end_makes_the_first_an_event(scenario):
    """Two errors of the output in one window: the first becomes its event, in sending order, and
    only the second may land at once when the window is done (ErrorLanding.after_window)."""
    sim = Simulation(_scenario(scenario, True), max_ticks=5)
    sim.run()
    L, out = sim.error_landing, sim.output
    C1, C2 = np.ones((out.size, 6)), np.full((out.size, 6), 2.0)
    t = float(sim.env.now) + 1.0
    queued = len(sim.env._queue)
    L.send(out, C1, t)
    assert L.pending[0] is C1 and len(sim.env._queue) == queued
    L.send(out, C2, t)
    assert L.pending[0] is C2 and len(sim.env._queue) == queued + 1
    event = [q for q in sim.env._queue if q[3].callbacks == [L._arrives]][0]
    assert event[0] == t and event[3]._value is C1
    L.after_window()  # not the next event (the first comes before it): an event too
    assert L.pending is None and len(sim.env._queue) == queued + 2


def test_a_layer_whose_error_goes_on_after_a_delay_takes_its_own_alone(scenario):
    sim = Simulation(_scenario(scenario, True, {"timing": {"retro_delay": 1.5}}), max_ticks=1)
    first, second, out = sorted(sim.groups, key=lambda g: g.rank)
    assert out.errors_out is None  # the output's error lands after 1.5 ms: sent as blocks
    assert first.errors_at_once is sim.error_landing and first.errors_next is None
    assert second.errors_at_once is None  # it sends on after 1.5 ms: an event of its own


@pytest.mark.parametrize("over", [{"learning": {"rule": "global_reinforce"}}, {"engine": {"windows": False}},
                                  {"timing": {"reward_jitter": {"dist": "uniform", "low": 0.0, "high": 2.0}}}],
                         ids=["another rule", "the event engine", "reward jitter: the TD error lands as events"])
def test_without_backprop_on_windows_and_landings_per_unit_nothing_lands_in_one_call(scenario, over):
    sim = Simulation(_scenario(scenario, True, over), max_ticks=1)
    assert sim.error_landing is None and all(g.errors_at_once is None for g in sim.groups)
