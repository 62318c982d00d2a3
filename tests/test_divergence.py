"""Numerical faults stop a run with a message naming the unit, the time and the likely key."""

import pytest

from asyncneurons.errors import DivergenceError
from asyncneurons.engine.simulation import Simulation


def test_an_exploding_actor_names_the_unit_the_time_and_the_learning_rate(scenario):
    s = scenario(experiment={"episodes": 50}, network={"hidden": [8]},
                 learning={"lr": [1e308, 1e308], "lr_end": None, "critic_hidden": [8], "critic_lr": [1e-3, 1e-3],
                           "critic_lr_end": None},
                 timing={"synapse_delay": 0.5})
    rows = []
    with pytest.raises(DivergenceError) as err:
        Simulation(s, on_episode=rows.append).run()
    message = str(err.value)
    assert "non-finite weight" in message and "learning.lr" in message
    assert message.startswith("unit h1_") or message.startswith("unit out")
    assert " ms" in message
    assert len(rows) < 50


def test_an_exploding_critic_names_the_critic_learning_rate(scenario):
    s = scenario(experiment={"episodes": 50}, network={"hidden": [8]},
                 learning={"lr": [1e-3, 1e-3], "lr_end": None, "critic_hidden": [8], "critic_lr": [1e308, 1e308],
                           "critic_lr_end": None})
    with pytest.raises(DivergenceError, match="learning.critic_lr"):
        Simulation(s).run()
