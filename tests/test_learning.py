"""Learning, checked with thresholds that random play (about 22 steps) and a broken rule miss."""

import numpy as np

from asyncneurons.model.scenario import load_scenario
from asyncneurons.engine.simulation import Simulation

from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml"


def _returns(s):
    rows = []
    Simulation(s, on_episode=rows.append).run()
    return np.array([r["return"] for r in rows])


def test_quickstart_learns_cartpole():
    s = load_scenario(QUICKSTART, ["experiment.episodes=300"])
    returns = _returns(s)
    assert returns[:50].mean() < 60
    assert returns[-50:].mean() > 150, returns[-50:].mean()


def test_without_learning_nothing_improves():
    s = load_scenario(QUICKSTART, ["experiment.episodes=300", "learning.lr=1e-12", "learning.lr_end=1e-12"])
    returns = _returns(s)
    assert returns[-50:].mean() < 60
