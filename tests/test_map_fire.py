"""A MAP hidden unit's firing under delays in one compiled call gives the run the separate calls give.

:mod:`asyncneurons.engine.map_fire` makes the draw, the first relaxation step due, the counters,
the next wave and the post of a one-unit Gaussian group one compiled call, and its timer one more.
The oracle is the same run with every group firing through the separate calls
(``fires_in_one_call`` answering False): every array a run writes (weights, Adam moments, traces,
held inputs and waves, counters, the histories, the steps due, the critic) must be equal bit for
bit, under per-synapse delays and under one delay on every synapse (ties at one instant), and on the paths
that make room first (histories kept whole, so that the draw and the post find them full).
"""

import copy

import numpy as np
import pytest

from asyncneurons.engine import map_fire
from asyncneurons.engine import simulation as simulation_module
from asyncneurons.engine.simulation import Simulation

from test_map_delays import CLOCK, MAP, UNIFORM

# one delay on every synapse, both ways (values land together: ties at one instant), the units kept
# apart by a TD error reaching each at its own delay
FIXED = {"synapse_delay": 5.0, "retro_delay": 5.0, "reward_delay": {"dist": "uniform", "low": 5.0, "high": 15.0},
         "relax_period": 0.95}
DRAWN = {"synapse_delay": UNIFORM, "retro_delay": UNIFORM, "reward_delay": 10.0, "relax_period": 0.25}


def _state(sim) -> list:
    arrays = []
    for g in sim.groups:
        arrays += [g.P, g.H, g.E, g.M, g.V, g.T, g.counters, np.asarray(g.values)]
    rx, tr = sim.relaxation, sim.transmission
    arrays += [*rx.hist_arrays(), *rx.weight_arrays(), rx.next_t, rx.next_k, rx.next_seq, rx.seq]
    arrays += [tr.HT, tr.HV, tr.HW, tr.HN, tr.head, tr.e_sat, tr.e_done, tr.last_wave, tr.missing, tr.latest]
    arrays += [np.asarray(a) for a in sim.critic.P] if sim.critic is not None else []
    return arrays


def _run(s, ticks, separate: bool, monkeypatch, keep_whole: bool = False):
    fired = []
    if separate:
        monkeypatch.setattr(simulation_module, "fires_in_one_call", lambda sim, grp: False)
    else:
        real = simulation_module.fire_one
        monkeypatch.setattr(simulation_module, "fire_one", lambda sim, grp: fired.append(grp.gid) or real(sim, grp))
    sim = Simulation(s, max_ticks=ticks)
    if keep_whole:  # no hidden sample or relaxation entry is ever dropped: the histories fill and grow
        hidden = [int(u) for g in sim.groups if g.role != "output" for u in g.dense]
        sim.transmission.max_delay[hidden] = 1e9  # (the observations' row grows no sooner than the samples')
        sim.relaxation.max_fwd = 1e9
    sim.run()
    monkeypatch.undo()
    return sim, fired


@pytest.mark.parametrize("timing", [DRAWN, FIXED], ids=["per-synapse delays", "one delay on every synapse"])
def test_a_run_fired_in_one_call_equals_the_run_fired_call_by_call(scenario, monkeypatch, timing):
    s = scenario(**MAP, timing=timing, env=CLOCK)
    separate, _ = _run(s, 40, True, monkeypatch)
    together, fired = _run(s, 40, False, monkeypatch)
    lazy = {g.gid for g in together.groups if g.role != "output" and g.lazy}  # (eager ones fire call by call)
    assert lazy and set(fired) == lazy and len(fired) >= 40 * len(lazy)  # every lazy hidden unit, at every wave
    for a, b in zip(_state(separate), _state(together), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_paths_that_make_room_first_give_the_same_run(scenario, monkeypatch):
    one_step = copy.deepcopy(MAP)
    one_step["learning"]["map_steps"] = 1  # a draw for every relaxation step: some draws find the history full
    s = scenario(**one_step, timing=DRAWN, env=CLOCK)
    codes = []
    real = map_fire.fire_one_at

    def counting(*args):
        out = real(*args)
        codes.append((int(out[1]), int(out[3])))
        return out

    separate, _ = _run(s, 30, True, monkeypatch, keep_whole=True)
    monkeypatch.setattr(map_fire, "fire_one_at", counting)
    together, _ = _run(s, 30, False, monkeypatch, keep_whole=True)
    assert any(code != 0 for code, _ in codes), "no draw found the history full"
    assert any(code == 0 and n < 0 for code, n in codes), "no post found the sender history full"
    for a, b in zip(_state(separate), _state(together), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_timer_answers_as_the_flush_and_the_least_wave_do(scenario, monkeypatch):
    s = scenario(**MAP, timing=DRAWN, env=CLOCK)
    sim = Simulation(s, max_ticks=3).run()
    tr = sim.transmission
    for grp in sim.groups:
        if grp.role == "output":
            continue
        utab = map_fire.unit_table(grp)
        H, T, done = grp.H.copy(), grp.T.copy(), tr.e_done.copy()
        now = sim.env.now + 7.5
        newer = map_fire.arrived_at(tr.send_table(), utab, now, grp.last_wave)
        H2, T2 = grp.H.copy(), grp.T.copy()
        grp.H[:], grp.T[:], tr.e_done[:] = H, T, done
        grp.flushed = (-1.0, -1)
        monkeypatch.setattr(type(sim.env), "now", property(lambda env: now))
        tr.flush(grp)
        monkeypatch.undo()
        np.testing.assert_array_equal(grp.H, H2)
        np.testing.assert_array_equal(grp.T, T2)
        assert newer == (grp.T.min() > grp.last_wave)
