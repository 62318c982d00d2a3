"""Units on their own clocks: tick times pinned down by hand from the keyed streams, the same
whatever the grouping, and the same on firing windows as on the event engine."""

import math

import numpy as np
import pytest
from conftest import resumed_equals_whole
from test_windows import _run, _scenario, assert_modes_agree

from asyncneurons.learning import streams
from asyncneurons.engine.clocks import Clocks
from asyncneurons.model.delays import node_key
from asyncneurons.engine.simulation import Simulation, run_seed

END = 95.0  # compare ticks before the environment's last step (5 steps of 20 ms)


def _two_units(scenario, timing, windows=True):
    """Two units (one hidden, one output) on CartPole's four inputs, synapses of different delays,
    the environment stepping every 20 ms."""
    return scenario(network={"hidden": [1]}, env={"pacing": "clock", "period": 20.0},
                    learning={"rule": "global_reinforce", "lr": 0.01, "lr_end": None, "critic_lr": 0.01,
                              "critic_lr_end": None},
                    timing={"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 3.0}} | timing,
                    engine={"windows": windows})


def _sample_times(s, **kw):
    times: dict = {}
    sim = Simulation(s, max_ticks=5, on_event=lambda t, u, k, v, w: times.setdefault(u, []).append(t)
                     if k == "sample" else None, **kw).run()
    return sim, {u: [t for t in ts if t < END] for u, ts in times.items()}


def _u(seed, purpose, unit, k=0):
    return streams.uniform_at(seed, purpose, node_key(unit), k)


def test_clock_ticks_follow_phase_period_and_jitter_computed_by_hand(scenario):
    """tick_k = max(c_k + j_k, tick_{k−1}), c_0 = φ, c_{k+1} = c_k + T: phase uniform on [0, 5),
    period uniform on [4, 6), jitter uniform on [0, 1) per tick, each keyed by (seed, unit[, k])."""
    timing = {"firing": "clock", "firing_phase": {"dist": "uniform", "low": 0.0, "high": 5.0},
              "firing_period": {"dist": "uniform", "low": 4.0, "high": 6.0},
              "firing_jitter": {"dist": "uniform", "low": 0.0, "high": 1.0}}
    s = _two_units(scenario, timing)
    seed = run_seed(s.experiment.seed, 0)
    expected = {}
    for unit in ("h1_0", "out0"):
        phase = 0.0 + _u(seed, streams.PHASE, unit) * (5.0 - 0.0)
        period = 4.0 + _u(seed, streams.PERIOD, unit) * (6.0 - 4.0)
        c, prev, ticks, k = phase, 0.0, [], 0
        while True:
            prev = max(c + (0.0 + _u(seed, streams.JITTER, unit, k) * (1.0 - 0.0)), prev)
            if prev >= END:
                break
            ticks.append(prev)
            c, k = c + period, k + 1
        expected[unit] = ticks
    assert len(expected["h1_0"]) >= 15 and expected["h1_0"][0] != expected["out0"][0]
    for windows in (True, False):
        sim, times = _sample_times(_two_units(scenario, timing, windows))
        assert (sim.windows is not None) == windows
        assert times == expected  # exactly: the same floating-point sums


def test_poisson_ticks_are_keyed_exponential_intervals(scenario):
    """tick_k = tick_{k−1} + I_k, I_k = −ln(1 − U(seed, INTERVAL, unit, k)) / rate."""
    timing = {"firing": "poisson", "firing_rate": 0.4}
    s = _two_units(scenario, timing)
    seed = run_seed(s.experiment.seed, 0)
    by_engine = []
    for windows in (True, False):
        sim, times = _sample_times(_two_units(scenario, timing, windows))
        by_engine.append(times)
        for unit in ("h1_0", "out0"):
            t, expected, k = 0.0, [], 0
            while (t := t - math.log1p(-_u(seed, streams.INTERVAL, unit, k)) / 0.4) < END:
                expected.append(t)
                k += 1
            assert len(expected) >= 20
            # numpy's and math's logarithms may round differently in the last place
            assert times[unit] == pytest.approx(expected, rel=1e-12, abs=0)
    assert by_engine[0] == by_engine[1]


def test_without_phase_and_jitter_the_clock_is_the_repeated_sum_of_its_period(scenario):
    """The zero limits are the clock units always had: ticks at T, T + T, (T + T) + T, … summed
    one period at a time (not k·T), whether the spec is a number, a constant distribution or a
    phase of one period, and whatever the engine."""
    T = 0.7  # k·0.7 and the running sum part after a few ticks
    ticks, t = [], T
    while t < END:
        ticks.append(t)
        t += T
    assert ticks != [k * T for k in range(1, len(ticks) + 1)]
    for timing in ({"firing_period": T},
                   {"firing_period": {"dist": "constant", "value": T}, "firing_phase": T,
                    "firing_jitter": {"dist": "uniform", "low": 0.0, "high": 0.0}}):
        for windows in (True, False):
            _, times = _sample_times(_two_units(scenario, {"firing": "clock"} | timing, windows))
            assert times == {"h1_0": ticks, "out0": ticks}


def test_a_jittered_tick_is_never_earlier_than_the_one_before():
    """With jitter up to five periods, a tick due before its predecessor happens at its instant."""
    from types import SimpleNamespace

    timing = SimpleNamespace(firing="clock", firing_rate=1.0,
                             firing_jitter={"dist": "uniform", "low": 0.0, "high": 5.0})
    clocks = Clocks(timing, 3, ["a"], {"a": (1.0, 1.0)}, {"a": 1})
    one = np.zeros(1, dtype=np.int64)
    ticks = [float(clocks.at[0])] + [float(clocks.advance(one)[0]) for _ in range(199)]
    c, prev, expected = 1.0, 0.0, []
    for k in range(200):
        prev = max(c + 5.0 * streams.uniform_at(3, streams.JITTER, node_key("a"), k), prev)
        expected.append(prev)
        c += 1.0
    assert ticks == expected
    assert np.all(np.diff(ticks) >= 0) and np.sum(np.diff(ticks) == 0) > 20  # many ticks coincide


@pytest.mark.parametrize("firing, jitter", [("clock", 0.0), ("clock", {"dist": "uniform", "low": 0.0, "high": 3.0}),
                                             ("poisson", 0.0)])
def test_clocks_move_on_in_one_compiled_pass_as_in_numpy(firing, jitter):
    """Clocks advanced in subsets, past several blocks of draws, tick exactly as NumPy's definition."""
    from types import SimpleNamespace

    timing = SimpleNamespace(firing=firing, firing_rate=0.7, firing_jitter=jitter)
    names = [f"u{i}" for i in range(5)]
    own = {n: (0.5 * i, 1.0 + 0.25 * i) for i, n in enumerate(names)}
    compiled_, numpy_ = (Clocks(timing, 11, names, own, {n: 1 for n in names}) for _ in range(2))
    rng = np.random.default_rng(0)
    for _ in range(400):
        idx = np.flatnonzero(rng.random(5) < 0.6)
        assert compiled_.advance(idx).tolist() == numpy_.advance_numpy(idx).tolist()
    assert compiled_.at.tolist() == numpy_.at.tolist() and compiled_.k.tolist() == numpy_.k.tolist()
    assert int(compiled_.k.max()) > 2 * 64  # past two blocks of draws


def test_units_on_different_clocks_do_not_share_a_process(scenario):
    """Fusion groups units whose events coincide: one clock for all keeps a layer in one group; a
    phase per unit or jitter per tick gives each unit its own process, and the same samples."""
    over = {"timing": {"synapse_delay": 1.0, "firing": "clock", "firing_period": 3.0}}
    same, _, ev_same = _run(_scenario(scenario, over, False), 40)
    assert len(same.groups) == 3
    runs = []
    for extra in ({"firing_phase": {"dist": "uniform", "low": 0.0, "high": 3.0}},
                  {"firing_jitter": {"dist": "exponential", "mean": 0.2}}):
        o = {"timing": over["timing"] | extra}
        fused, rows_f, ev_f = _run(_scenario(scenario, o, False), 40)
        alone, rows_a, ev_a = _run(_scenario(scenario, o, False), 40, fuse=False)
        assert len(fused.groups) == len(alone.groups) == 12 + 6 + 1
        assert rows_f == rows_a and ev_f == ev_a
        runs.append(ev_f)
    assert runs[0] != ev_same and runs[1] != ev_same


OWN_CLOCKS = {
    "phases": {"timing": {"firing": "clock", "firing_period": 4.0,
                          "firing_phase": {"dist": "uniform", "low": 0.0, "high": 4.0}}},
    "period per unit": {"timing": {"firing": "clock", "firing_period": {"dist": "uniform", "low": 2.0, "high": 6.0}}},
    "jitter per tick": {"timing": {"firing": "clock", "firing_period": 3.0,
                                   "firing_jitter": {"dist": "truncnormal", "mean": 0.5, "std": 0.5, "high": 2.0}}},
    "all three, refractory": {"timing": {"firing": "clock", "refractory": 1.0,
                                         "firing_period": {"dist": "lognormal", "mu": 1.0, "sigma": 0.3},
                                         "firing_phase": {"dist": "uniform", "low": 0.0, "high": 3.0},
                                         "firing_jitter": {"dist": "uniform", "low": 0.0, "high": 0.8}}},
    "all three, wait pacing": {"timing": {"firing": "clock", "firing_period": {"dist": "uniform", "low": 2.0, "high": 4.0},
                                          "firing_phase": {"dist": "uniform", "low": 0.0, "high": 2.0},
                                          "firing_jitter": {"dist": "uniform", "low": 0.0, "high": 0.5}},
                               "env": {"pacing": "wait"}},
    "poisson": {"timing": {"firing": "poisson", "firing_rate": 0.3}},
    # the output may tick, and its error land, before a hidden unit has ever sampled: it credits nothing
    "phases, STE backprop": {"timing": {"firing": "clock", "firing_period": 4.0, "retro_delay": 0.5,
                                        "firing_phase": {"dist": "uniform", "low": 0.0, "high": 4.0}},
                             "learning": {"rule": "ste_backprop"}},
    "poisson, refractory, Acrobot softmax": {"timing": {"firing": "poisson", "firing_rate": 0.5, "refractory": 1.5},
                                             "env": {"id": "Acrobot-v1"}, "learning": {"rule": "global_reinforce"}},
}


@pytest.mark.parametrize("over", list(OWN_CLOCKS.values()), ids=list(OWN_CLOCKS))
def test_own_clocks_on_windows_equal_the_event_engine(scenario, over):
    assert_modes_agree(scenario, over, 60, 60 * 5)


@pytest.mark.parametrize("windows", [True, False])
def test_a_run_on_own_clocks_continues_from_a_checkpoint(scenario, tmp_path, windows):
    """A checkpoint holds each clock's state (its clock, tick index and next tick)."""
    over = OWN_CLOCKS["all three, refractory"] | {"experiment": {"episodes": 8}}
    s = _scenario(scenario, over, windows)
    whole, second = resumed_equals_whole(s, tmp_path, 4)
    assert (second.windows is not None) == windows


def test_validate_notes_jitter_that_reorders_ticks_and_phases_beyond_the_period(scenario):
    from asyncneurons.model.advice import advice

    def notes(**timing):
        return advice(scenario(timing={"firing": "clock", "firing_period": 2.0} | timing), None)

    assert notes(firing_jitter={"dist": "uniform", "low": 0.0, "high": 1.5},
                 firing_phase={"dist": "uniform", "low": 0.0, "high": 2.0}) == []
    reorder = notes(firing_jitter={"dist": "uniform", "low": 0.5, "high": 3.0})
    assert len(reorder) == 1 and reorder[0].startswith("timing.firing_jitter varies by up to 2.5 ms, more than "
                                                       "timing.firing_period (2 ms at least)")
    assert "without bound" in notes(firing_jitter={"dist": "exponential", "mean": 0.1})[0]
    late = notes(firing_phase={"dist": "uniform", "low": 0.0, "high": 5.0})
    assert len(late) == 1 and late[0].startswith("timing.firing_phase (up to 5 ms) can exceed timing.firing_period")
    unused = advice(scenario(timing={"firing": "on_all", "firing_jitter": 1.0, "firing_rate": 2.0}), None)
    assert unused == ['timing.firing_jitter, timing.firing_rate have no effect under timing.firing = "on_all"']


def test_firing_keys_given_per_layer(scenario):
    """Each layer on its own keys: the hidden unit ticks every 3 ms in phase 1 ms without jitter,
    the output every 5 ms (first tick one period in) with jitter uniform on [0, 2) ms."""
    timing = {"firing": "clock", "firing_period": [3.0, 5.0], "firing_phase": [1.0, 5.0],
              "firing_jitter": [0.0, {"dist": "uniform", "low": 0.0, "high": 2.0}]}
    s = _two_units(scenario, timing)
    seed = run_seed(s.experiment.seed, 0)
    hidden, c = [], 1.0
    while c < END:
        hidden.append(c)
        c += 3.0
    out, c, prev, k = [], 5.0, 0.0, 0
    while (prev := max(c + 2.0 * _u(seed, streams.JITTER, "out0", k), prev)) < END:
        out.append(prev)
        c, k = c + 5.0, k + 1
    for windows in (True, False):
        _, times = _sample_times(_two_units(scenario, timing, windows))
        assert times == {"h1_0": hidden, "out0": out}


def test_per_layer_clocks_on_windows_equal_the_event_engine(scenario):
    over = {"timing": {"firing": "clock", "firing_period": [{"dist": "uniform", "low": 2.0, "high": 4.0}, 3.0, 6.0],
                       "firing_phase": [{"dist": "uniform", "low": 0.0, "high": 2.0}, 1.0, 0.5],
                       "firing_jitter": [0.0, {"dist": "uniform", "low": 0.0, "high": 0.5}, 0.25]}}
    on, rows_on, ev_on = _run(_scenario(scenario, over, True), 60)
    off, rows_off, ev_off = _run(_scenario(scenario, over, False), 60)
    assert on.windows is not None and off.windows is None
    assert rows_on == rows_off and ev_on == ev_off
    poisson = {"timing": {"firing": "poisson", "firing_rate": [0.5, 0.3, 0.2]}}
    assert _run(_scenario(scenario, poisson, True), 40)[1:] == _run(_scenario(scenario, poisson, False), 40)[1:]


def test_a_list_of_the_wrong_length_names_the_key(scenario):
    from asyncneurons.errors import ScenarioError

    with pytest.raises(ScenarioError, match=r"^timing.firing_period: 2 values given but the network has 3 layers"):
        scenario(timing={"firing": "clock", "firing_period": [1.0, 2.0]})
