"""Fusion never changes a result: units served together or one by one give identical runs."""

import numpy as np
import pytest

from asyncneurons.learning import kernels, streams
from asyncneurons.engine.simulation import Simulation


def _run(s, fuse, ticks):
    rows = []
    sim = Simulation(s, fuse=fuse, on_episode=rows.append, max_ticks=ticks).run()
    return sim, [(r["episode"], r["return"], r["length"], r["sim_time_ms"], r["stale_actions"]) for r in rows]


@pytest.mark.parametrize("over", [
    {},
    {"timing": {"synapse_delay": 1.5, "reward_delay": 2.0}, "env": {"pacing": "clock", "period": 10.0}},
    {"timing": {"synapse_delay": 0.5, "reward_delay": 0.25, "firing": "on_input", "refractory": 0.75}},
    {"timing": {"firing": "clock", "firing_period": 1.0, "synapse_delay": 0.5}, "env": {"pacing": "clock", "period": 4.0}},
])
def test_fused_and_unfused_runs_are_identical(scenario, over):
    s = scenario(experiment={"episodes": 1000}, network={"hidden": [16, 8]},
                 learning={"lr": [0.02, 2e-3, 2e-4], "lr_end": None}, **over)
    fused, rows_f = _run(s, True, 250)
    unfused, rows_u = _run(s, False, 250)
    assert len(fused.groups) == 3 and len(unfused.groups) == 16 + 8 + 1
    assert rows_f == rows_u
    a, b = fused.layer_matrices(), unfused.layer_matrices()
    for layer in a:
        np.testing.assert_array_equal(a[layer], b[layer])


def test_a_unit_alone_computes_the_same_bits_as_inside_its_layer():
    rng = np.random.default_rng(0)
    for m, n in [(1, 5), (32, 65), (64, 5), (7, 300), (100, 9)]:
        P, H = rng.normal(size=(m, n)), rng.normal(size=(m, n))
        whole = kernels.potential(P, H)
        for j in range(m):
            assert kernels.potential(P[j:j + 1], H[j:j + 1])[0] == whole[j]


def test_messages_are_summed_row_after_row_whatever_the_shape():
    """sum_rows gives the bits of adding the rows one by one, in order, for every shape the engine
    and the replicas meet: one column, one row, a batch axis, a transposed (non-contiguous) view."""
    rng = np.random.default_rng(1)
    shapes = [(40, 1), (28, 9, 1), (1, 64), (2, 32), (32, 64), (5, 32, 64), (5, 2, 32), (300, 3), (3, 70, 2)]
    for shape in shapes:
        Z = rng.normal(size=shape) * 10.0 ** rng.uniform(-8, 8, size=shape)
        for view in (Z, np.swapaxes(Z, -1, -2)):
            in_order = view[..., 0, :].copy()
            for i in range(1, view.shape[-2]):
                in_order += view[..., i, :]
            np.testing.assert_array_equal(kernels.sum_rows(view), in_order)


def test_keyed_uniforms_do_not_depend_on_grouping():
    keys = streams.unit_keys(11, streams.SAMPLE, np.arange(50))
    counters = np.arange(50) * 3
    together = streams.uniforms(keys, counters)
    alone = [streams.uniforms(keys[i:i + 1], counters[i:i + 1])[0] for i in range(50)]
    assert together.tolist() == alone
    assert 0.35 < together.mean() < 0.65


@pytest.mark.parametrize("over", [
    {},
    {"timing": {"synapse_delay": 1.5, "reward_delay": 2.0, "retro_delay": 0.75}, "env": {"pacing": "clock", "period": 10.0}},
    {"timing": {"retro_delay": 0.5, "firing": "on_input"}},
])
def test_weight_max_fused_and_unfused_are_identical(scenario, over):
    s = scenario(experiment={"episodes": 1000}, network={"hidden": [16, 8]},
                 learning={"rule": "weight_max", "lambda": 0.8, "lr": [0.02, 2e-3, 2e-4], "lr_end": None}, **over)
    fused, rows_f = _run(s, True, 250)
    unfused, rows_u = _run(s, False, 250)
    assert rows_f == rows_u
    a, b = fused.layer_matrices(), unfused.layer_matrices()
    for layer in a:
        np.testing.assert_array_equal(a[layer], b[layer])


def test_ste_backprop_fused_and_unfused_are_identical(scenario):
    s = scenario(experiment={"episodes": 1000}, network={"hidden": [16, 8]},
                 learning={"rule": "ste_backprop", "lambda": 0.8, "lr": [0.02, 2e-3, 2e-4], "lr_end": None},
                 timing={"retro_delay": 0.5, "synapse_delay": 0.25})
    fused, rows_f = _run(s, True, 250)
    unfused, rows_u = _run(s, False, 250)
    assert rows_f == rows_u
    for layer, m in fused.layer_matrices().items():
        np.testing.assert_array_equal(m, unfused.layer_matrices()[layer])


@pytest.mark.parametrize("timing", [{}, {"retro_delay": 0.5, "synapse_delay": 0.25, "relax_period": 0.125}])
def test_map_prop_fused_and_unfused_are_identical(scenario, timing):
    s = scenario(experiment={"episodes": 1000},
                 network={"hidden": [16, 8], "unit": "gaussian", "output": "categorical", "variance": [0.03, 0.1, 0.1],
                          "bias_init": 0.0},
                 learning={"rule": "map_prop", "lambda": 0.95, "lr": [0.01, 1e-3, 1e-4], "lr_end": None,
                           "map_steps": 5},
                 timing=timing)
    fused, rows_f = _run(s, True, 150)
    unfused, rows_u = _run(s, False, 150)
    assert rows_f == rows_u
    for layer, m in fused.layer_matrices().items():
        np.testing.assert_array_equal(m, unfused.layer_matrices()[layer])


@pytest.mark.parametrize("over", [
    {"timing": {"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 5.0}, "reward_delay": 10.0},
     "env": {"pacing": "clock", "period": 20.0}},
    {"timing": {"synapse_delay": {"dist": "exponential", "mean": 1.0}}},
    {"timing": {"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 3.0}, "firing": "clock",
                "firing_period": 0.75}, "env": {"pacing": "clock", "period": 5.0}},
    {"timing": {"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 2.0}, "relax_period": 0.25},
     "network": {"hidden": [12, 6], "unit": "gaussian", "output": "categorical", "variance": [0.03, 0.1, 0.1]},
     "learning": {"rule": "map_prop", "lambda": 0.9, "lr": [0.01, 1e-3, 1e-4], "lr_end": None, "map_steps": 4}},
])
def test_lazy_and_eager_transmission_give_identical_runs(scenario, over):
    """Values held in an inbox until the receiver looks are the values eager events would give."""
    base = {"experiment": {"episodes": 1000}, "network": {"hidden": [12, 6]},
            "learning": {"rule": "weight_max", "lambda": 0.8, "lr": [0.02, 2e-3, 2e-4], "lr_end": None}}
    for k, v in over.items():
        base.setdefault(k, {}).update(v)
    s = scenario(**base)
    out = []
    for mode in ("eager", "lazy"):
        rows = []
        sim = Simulation(s, on_episode=rows.append, max_ticks=150, transmission=mode).run()
        out.append((sim, [(r["return"], r["length"], r["sim_time_ms"], r["stale_actions"]) for r in rows]))
    assert out[0][1] == out[1][1]
    for layer, m in out[0][0].layer_matrices().items():
        np.testing.assert_array_equal(m, out[1][0].layer_matrices()[layer])


@pytest.mark.parametrize("over", [
    {"timing": {"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 5.0}, "reward_delay": 10.0},
     "env": {"pacing": "clock", "period": 20.0}},
    {"timing": {"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 5.0}, "reward_delay": 3.0},
     "env": {"pacing": "clock", "period": 7.0}, "learning": {"rule": "ste_backprop"}},
])
def test_lazy_and_eager_transmission_give_identical_runs_unit_by_unit(scenario, over):
    """The same with firing windows off: under clock pacing they would serve both runs."""
    test_lazy_and_eager_transmission_give_identical_runs(scenario, {**over, "engine": {"windows": False}})
