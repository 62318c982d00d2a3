"""Batched single-step tasks (MAP Propagation's multiplexer and regression protocol)."""

from pathlib import Path

import numpy as np
import pytest

from asyncneurons import load_scenario
from asyncneurons.errors import ScenarioError
from asyncneurons.model.scenario import parse_scenario
from asyncneurons.engine.supervised import SupervisedRun

PAPER = Path(__file__).resolve().parents[1] / "scenarios" / "paper" / "map-prop"


def _returns(s):
    rows = []
    SupervisedRun(s, on_episode=rows.append).run()
    return np.array([r["return"] for r in rows])


def test_map_prop_learns_the_37_bit_multiplexer_in_batches():
    r = _returns(load_scenario(PAPER / "multiplexer.toml", ["experiment.episodes=150"]))
    assert r[-50:].mean() > 0.1  # chance is 0
    frozen = _returns(load_scenario(PAPER / "multiplexer.toml", ["experiment.episodes=150", "learning.lr=1e-12"]))
    assert abs(frozen[-50:].mean()) < 0.06


def test_map_prop_fits_the_regression_teacher_through_the_gate():
    r = _returns(load_scenario(PAPER / "regression.toml", ["experiment.episodes=150"]))
    assert r[-30:].mean() > r[:30].mean() + 1.0 and r[-30:].mean() > -1.0


def test_same_seed_same_batches():
    s = load_scenario(PAPER / "multiplexer.toml", ["experiment.episodes=20", "learning.batch=16"])
    assert _returns(s).tolist() == _returns(s).tolist()


def test_batches_need_no_critic():
    with pytest.raises(ScenarioError, match=r"learning.batch: batches serve single-step supervised tasks"):
        parse_scenario({"learning": {"batch": 8}})


@pytest.mark.parametrize("rule", ["weight_max", "weight_max_exact", "backprop", "ste_backprop"])
def test_rules_that_learn_one_sample_at_a_time_refuse_batches_when_validated(rule):
    unit = ["network.unit=softplus"] if rule == "backprop" else ["network.unit=bernoulli"]
    with pytest.raises(ScenarioError, match=rf"learning.batch: rule {rule} learns one sample at a time"):
        load_scenario(PAPER / "multiplexer.toml", [f"learning.rule={rule}", *unit])
    s = load_scenario(PAPER / "multiplexer.toml", [f"learning.rule={rule}", *unit, "learning.batch=1"])
    assert s.learning.batch == 1 and s.learning.critic == "none"
