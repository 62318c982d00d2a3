"""Any gymnasium task with Discrete or Box spaces runs, including a user's own registered from a
module (the examples of docs/tasks.md, read from the page itself so that it cannot drift)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from asyncneurons.errors import ScenarioError
from asyncneurons.model.scenario import parse_scenario
from asyncneurons.engine.simulation import Simulation
from asyncneurons.tasks import action_spec, make_env, to_env_action

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "tasks.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE, re.S)


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "asyncneurons.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _episodes(scenario, run=0):
    rows = []
    Simulation(scenario, run, on_episode=rows.append).run()
    return rows


def test_pendulum_runs_with_a_gaussian_output():
    scenario = parse_scenario(tomllib.loads(_blocks("toml")[0]))
    assert scenario.env.id == "Pendulum-v1"
    sim = Simulation(scenario, 0)
    out = [a["kind"] for _, a in sim.graph.nodes(data=True) if a["role"] == "output"]
    assert out == ["linear_gaussian"]
    assert sum(1 for _, r in sim.graph.nodes(data="role") if r == "input") == 3
    rows = _episodes(scenario)
    assert [r["length"] for r in rows] == [200, 200, 200]
    assert all(np.isfinite(r["return"]) and r["return"] < 0 for r in rows)  # Pendulum's cost
    assert [r["return"] for r in _episodes(scenario)] == [r["return"] for r in rows]


def _own_task(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "cuetask.py").write_text(_blocks("python")[0])
    scenario = folder / "cue.toml"
    scenario.write_text(_blocks("toml")[1])
    return scenario


def test_own_task_is_imported_from_the_scenarios_folder(tmp_path):
    scenario = _own_task(tmp_path / "study")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok = _cli("validate", str(scenario), cwd=elsewhere)
    assert ok.returncode == 0, ok.stderr
    # three one-hot inputs → 16 hidden → a softmax over three actions (two free logits)
    assert "cuetask/Cue-v0" in ok.stdout and "18 units, 80 synapses" in ok.stdout
    done = _cli("run", str(scenario), "--out", str(tmp_path / "run"), "--quiet",
                "--set", "experiment.episodes=6", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(lines) == 1 + 6
    returns = [float(v) for v in re.findall(r"^0,\d+,([^,]+),20,", "\n".join(lines[1:]), re.M)]
    assert len(returns) == 6 and all(0 <= r <= 20 for r in returns)


def test_own_task_learns(tmp_path, monkeypatch):
    """The cue task of the docs: 100 episodes lift the return well above chance (20/3)."""
    scenario = _own_task(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from asyncneurons.model.scenario import load_scenario
    rows = _episodes(load_scenario(scenario))
    first = np.mean([r["return"] for r in rows[:10]])
    last = np.mean([r["return"] for r in rows[-10:]])
    assert len(rows) == 100 and last > first + 4 and last > 12


def test_discrete_observations_are_one_hot():
    env = make_env("FrozenLake-v1")
    assert env.observation_space.shape == (16,)
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [1] + [0] * 15
    rows = _episodes(parse_scenario({"experiment": {"episodes": 3}, "env": {"id": "FrozenLake-v1"}}))
    assert len(rows) == 3 and all(r["return"] in (0.0, 1.0) for r in rows)


def test_box_actions_of_any_shape_are_flattened():
    class Grid(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (2, 3))
        action_space = gym.spaces.Box(-1, 1, (2, 2))

    env = Grid()
    kind, dim, low, high = action_spec(env)
    assert (kind, dim, low.shape, high.shape) == ("continuous", 4, (4,), (4,))
    a = to_env_action(env, [0.5, 2.0, -3.0, 0.0])
    assert a.shape == (2, 2) and a.tolist() == [[0.5, 1.0], [-1.0, 0.0]]


def test_unsupported_space_is_refused_in_one_line(tmp_path):
    (tmp_path / "s.toml").write_text('[env]\nid = "Blackjack-v1"\n')
    out = _cli("validate", "s.toml", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == ("error: env.id: Blackjack-v1 has a Tuple observation space "
                          "(Tuple(Discrete(32), Discrete(11), Discrete(2))); only Discrete and Box "
                          "spaces are supported\n")


def test_a_missing_module_is_one_line(tmp_path):
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"env": {"import": "no_such_module_here"}}, base_dir=tmp_path)
    assert str(err.value) == (f'env.import: no module named "no_such_module_here" on Python\'s '
                              f"path or in {tmp_path}")
    with pytest.raises(ScenarioError, match=r'^env.import: must be a module name or a list of '
                                            r'them \(got "not a module"\)$'):
        parse_scenario({"env": {"import": "not a module"}})


def test_a_module_that_raises_is_one_line(tmp_path):
    (tmp_path / "brokentask.py").write_text("raise RuntimeError('no licence file')\n")
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"env": {"import": ["brokentask"]}}, base_dir=tmp_path)
    assert str(err.value) == 'env.import: importing "brokentask" failed: RuntimeError: no licence file'


def test_a_task_that_cannot_be_made_is_one_line():
    gym.register(id="broken/NoInit-v0", entry_point="math:nope") if "broken/NoInit-v0" not in gym.registry \
        else None
    with pytest.raises(ScenarioError, match=r"^env.id: broken/NoInit-v0 cannot be made: "):
        make_env("broken/NoInit-v0")
