"""asyncneurons: networks of asynchronous, local reinforcement-learning units, simulated as events.

The Python API speaks the same vocabulary as the scenario files::

    from asyncneurons import load_scenario, Simulation
    s = load_scenario("scenarios/quickstart.toml", ["experiment.episodes=20"])
    rows = []
    Simulation(s, on_episode=rows.append).run()

``Simulation`` is the event engine, ``Reference`` the layer-synchronous oracle it is checked
against, ``run_experiment`` writes a run folder for all the runs of a scenario.
"""

from asyncneurons.errors import DivergenceError, GraphError, ScenarioError, UserInputError
from asyncneurons.model.scenario import load_scenario, parse_scenario, to_toml
from asyncneurons.engine.simulation import Simulation
from asyncneurons.engine.reference import Reference
from asyncneurons.study.runner import run_experiment

__all__ = ["DivergenceError", "GraphError", "ScenarioError", "UserInputError", "load_scenario",
           "parse_scenario", "to_toml", "Simulation", "Reference", "run_experiment"]
__version__ = "0.1.0"
