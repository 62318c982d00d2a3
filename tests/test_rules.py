"""Conformance of every registered rule (parametrized over the registry: a new rule is tested by
registering it): same seed → same run; zero reward → no change; finite values; traces decay."""

import numpy as np
import pytest

from asyncneurons.learning.rules import RULES
from asyncneurons.engine.simulation import Simulation


def _small(scenario, rule, learning=(), **over):
    kinds = RULES[rule].hidden_kinds
    return scenario(experiment={"episodes": 1000}, network={"hidden": [8, 4], "unit": kinds[0] if kinds else "bernoulli"},
                    learning={"rule": rule, "lambda": 0.8, "lr": [0.02, 2e-3, 2e-4], "lr_end": None, **dict(learning)},
                    **over)


def _run(s, ticks=200):
    rows = []
    sim = Simulation(s, on_episode=rows.append, max_ticks=ticks).run()
    return sim, rows


@pytest.mark.parametrize("rule", sorted(RULES))
def test_same_seed_same_run(scenario, rule):
    s = _small(scenario, rule)
    a, ra = _run(s)
    b, rb = _run(s)
    assert [r["return"] for r in ra] == [r["return"] for r in rb]
    for l, m in a.layer_matrices().items():
        np.testing.assert_array_equal(m, b.layer_matrices()[l])
        assert np.isfinite(m).all()


@pytest.mark.parametrize("rule", sorted(RULES))
def test_zero_reward_changes_no_weight(scenario, rule):
    s = _small(scenario, rule, learning={"critic": "none"})
    sim = Simulation(s, max_ticks=60)
    before = {l: m.copy() for l, m in sim.layer_matrices().items()}
    # a task whose reward is always zero: wrap the step
    step = sim.task.step

    def zero_step(action):
        obs, r, term, trunc, info = step(action)
        return obs, 0.0, term, trunc, info
    sim.task.step = zero_step
    sim.run()
    for l, m in sim.layer_matrices().items():
        np.testing.assert_array_equal(m, before[l])


@pytest.mark.parametrize("rule", sorted(RULES))
def test_traces_decay_by_lambda_gamma_between_samples(scenario, rule):
    s = _small(scenario, rule)
    sim = Simulation(s, max_ticks=30).run()
    grp = sim.output  # output units always keep a REINFORCE trace
    E = grp.E.copy()
    H = grp.H.copy()
    sim.fire(grp)
    while np.array_equal(grp.E, E):  # rules that record after the sample (MAP: at the relaxed state)
        sim.env.step()
    added = grp.E - 0.8 * 0.98 * E  # what the new sample added: g ⊗ h, g read off the bias column
    g = added[:, -1]
    np.testing.assert_allclose(added[:, :-1], g[:, None] * H[:, :-1], rtol=1e-9, atol=1e-12)
    assert np.abs(g).max() > 0
