"""MAP Propagation's relaxation window against the time between a unit's samples.

A unit relaxes ``map_steps`` times every ``relax_period`` ms after its sample and records its
trace after the last step; a new sample restarts the relaxation. When the window is longer
than the time between samples the relaxation never ends, so no unit records a trace and the
actor never learns. At exactly one period under delays the last step and the next sample share an
instant up to the rounding of their times, which decides unit by unit; at zero delay the last
step and the trace come before the environment steps, and the next wave after it. ``validate``
points out every window not shorter than the time between samples, but the last.
"""

import numpy as np
import pytest

from asyncneurons.engine.simulation import Simulation, build_graph
from asyncneurons.model.advice import relaxation_cut_short

from test_map_delays import MAP

CLOCK = {"pacing": "clock", "period": 20.0}
SMALL_DELAYS = {"dist": "uniform", "low": 0.0, "high": 0.01}


def _map(scenario, relax_period, delay, **timing):
    """The small MAP network relaxing four times every ``relax_period`` ms, a 20 ms clock."""
    return scenario(network=MAP["network"], learning=MAP["learning"] | {"map_steps": 4}, env=CLOCK,
                    timing={"synapse_delay": delay, "relax_period": relax_period, "reward_delay": 10.0} | timing)


def _actor_traces_after(s, ticks=60):
    sim = Simulation(s, max_ticks=ticks).run()
    return [float(np.abs(g.E).sum()) for g in sim.groups]


@pytest.mark.parametrize("relax_period, delay, records", [
    (5.5, SMALL_DELAYS, False),  # 22 ms: the next sample cuts every relaxation
    (5.5, 0.0, False),           # at zero delay too
    (4.5, SMALL_DELAYS, True),   # 18 ms: each ends before the next sample
    (5.0, 0.0, True),            # one period at zero delay: the last step comes first
])
def test_a_relaxation_as_long_as_the_time_between_samples_records_no_trace(scenario, relax_period, delay, records):
    traces = _actor_traces_after(_map(scenario, relax_period, delay))
    assert all(t > 0 for t in traces) if records else all(t == 0 for t in traces)


def _note(s):
    return relaxation_cut_short(s, build_graph(s, 4, ("discrete", 2), 0))


def test_validate_points_out_a_relaxation_window_that_the_next_sample_always_cuts(scenario):
    note = _note(_map(scenario, 5.0, SMALL_DELAYS))
    assert note.startswith("learning.map_steps × timing.relax_period = 20 ms is not shorter than the 20 ms between "
                           "a unit's samples (env.period)")
    assert "a unit records its trace only after its last step, so the actor learns little or nothing" in note
    assert _note(_map(scenario, 4.5, SMALL_DELAYS)) is None
    assert _note(_map(scenario, 5.0, 0.0)) is None  # one period, zero delay: it ends
    assert _note(_map(scenario, 6.0, 0.0)) is not None  # longer than the period: cut even at zero delay
    assert "(timing.firing_period)" in _note(_map(scenario, 0.5, 0.0, firing="clock", firing_period=2.0))
    assert _note(scenario(**MAP, timing={"relax_period": 10.0})) is None  # wait pacing: no fixed gap
