"""Interrupted runs: SIGINT, SIGTERM and SIGKILL leave a consistent folder, and --resume ends
with exactly the results of an uninterrupted run. Real processes are killed."""

import csv
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import stop_at_checkpoint

from asyncneurons.engine import checkpoint
from asyncneurons.engine.simulation import Simulation

SCENARIO = """
[experiment]
name = "resume"
runs = 2
episodes = 150
seed = 3

[network]
hidden = [16, 8]

[learning]
rule = "weight_max"
lambda = 0.8
lr = [0.02, 2e-3, 2e-4]
critic_hidden = [16]
critic_lr = [0.02, 2e-4]

[timing]
synapse_delay = 0.5
reward_delay = 1.25
"""


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "asyncneurons.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _metrics(folder):
    with open(folder / "metrics.csv") as f:
        rows = list(csv.reader(f))
    assert all(len(r) == 7 for r in rows), "a row was cut short"
    head = rows[0]
    return [[v for k, v in zip(head, r) if k != "wall_s"] for r in rows[1:]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    (d / "s.toml").write_text(SCENARIO)
    p = cli("run", str(d / "s.toml"), "--out", str(d / "out"), "--quiet", "--workers", "1")
    assert p.wait(timeout=600) == 0, p.stderr.read()
    return d / "s.toml", _metrics(d / "out")


def _episodes_written(folder):
    path = folder / "episodes" / "run-0.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


@pytest.mark.parametrize("sig, workers", [(signal.SIGINT, "1"), (signal.SIGTERM, "1"), (signal.SIGKILL, "1"),
                                          (signal.SIGKILL, "2")])
def test_killed_run_resumes_to_the_uninterrupted_result(reference, tmp_path, sig, workers):
    scenario, expected = reference
    out = tmp_path / "out"
    p = cli("run", str(scenario), "--out", str(out), "--quiet", "--workers", workers, "--checkpoint-every", "0")
    deadline = time.time() + 300
    while _episodes_written(out) < 15 and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be interrupted"
    p.send_signal(sig)
    code = p.wait(timeout=120)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        err = p.stderr.read()
        assert code == 130, err
        assert "--resume" in err
        summary = json.loads((out / "summary.json").read_text())
        assert summary["status"] == "incomplete"
        assert 0 < len(_metrics(out)) < len(expected)
    assert (out / "checkpoints").is_dir()
    r = cli("run", "--resume", str(out), "--quiet", "--workers", workers)
    assert r.wait(timeout=600) == 0, r.stderr.read()
    assert _metrics(out) == expected
    assert json.loads((out / "summary.json").read_text())["status"] == "complete"


def test_resume_of_a_finished_folder_changes_nothing(reference, tmp_path):
    scenario, expected = reference
    out = tmp_path / "out"
    assert cli("run", str(scenario), "--out", str(out), "--quiet", "--workers", "1").wait(timeout=600) == 0
    assert cli("run", "--resume", str(out), "--quiet").wait(timeout=600) == 0
    assert _metrics(out) == expected


@pytest.mark.parametrize("over", [
    {},
    {"timing": {"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 5.0}, "reward_delay": 10.0,
                "retro_delay": 0.75}, "env": {"pacing": "clock", "period": 20.0}},
    {"timing": {"synapse_delay": {"dist": "uniform", "low": 0.0, "high": 5.0}, "reward_delay": 10.0,
                "retro_delay": 0.75}, "env": {"pacing": "clock", "period": 20.0}, "engine": {"windows": False}},
    {"timing": {"firing": "clock", "firing_period": 1.0, "synapse_delay": {"dist": "exponential", "mean": 1.0},
                "refractory": 1.5}, "env": {"pacing": "clock", "period": 10.0}},
    {"timing": {"firing": "on_input", "refractory": 0.25, "synapse_delay": 1.5, "retro_delay": 0.5}},
    # units inside their refractory period at the checkpoint, some already woken by an arrival
    {"timing": {"firing": "on_input", "refractory": 2.0, "synapse_delay": {"dist": "uniform", "low": 0.0, "high": 5.0}},
     "env": {"pacing": "clock", "period": 3.0}, "engine": {"windows": False}},
    {"timing": {"firing": "on_all", "refractory": 4.0, "synapse_delay": {"dist": "uniform", "low": 0.0, "high": 5.0}},
     "env": {"pacing": "clock", "period": 3.0}, "engine": {"windows": False}},
    {"network": {"hidden": [12, 6], "unit": "gaussian", "output": "categorical", "variance": [0.03, 0.1, 0.1]},
     "learning": {"rule": "map_prop", "critic": "map_prop", "map_steps": 5, "critic_variance": [0.03, 0.1, 0.1]},
     "timing": {"relax_period": 0.25, "synapse_delay": 0.5}},
    {"network": {"hidden": [12, 6], "unit": "gaussian", "output": "categorical", "variance": [0.03, 0.1, 0.1]},
     "learning": {"rule": "map_prop", "critic": "map_prop", "map_steps": 20, "critic_variance": [0.03, 0.1, 0.1]},
     "timing": {"relax_period": 0.25, "synapse_delay": {"dist": "uniform", "low": 0.0, "high": 5.0},
                "retro_delay": {"dist": "uniform", "low": 0.0, "high": 5.0}, "reward_delay": 10.0},
     "env": {"pacing": "clock", "period": 20.0}},
    {"env": {"id": "asyncneurons/Multiplexer20-v0", "dummy_step": False}, "network": {"output": "bernoulli"},
     "learning": {"critic": "none"}},
])
def test_restored_simulation_continues_bit_for_bit(scenario, tmp_path, over):
    """Stop at a checkpoint, restore into a fresh simulation: same episodes, same final weights."""
    base = {"experiment": {"episodes": 16}, "network": {"hidden": [12, 6]},
            "learning": {"rule": "weight_max", "lambda": 0.8, "lr": [0.02, 2e-3, 2e-4], "lr_end": None}}
    for k, v in over.items():
        base.setdefault(k, {}).update(v)
    s = scenario(**base)
    whole, rows = Simulation(s), []
    whole.on_episode = rows.append
    whole.run()
    rows_a = stop_at_checkpoint(s, tmp_path, 7)
    rows_b = []
    second = Simulation(s, on_episode=rows_b.append, resume=checkpoint.load(tmp_path, 0)).run()
    key = lambda r: (r["episode"], r["return"], r["length"], r["sim_time_ms"], r["stale_actions"])  # noqa: E731
    assert [key(r) for r in rows_a[:7] + rows_b] == [key(r) for r in rows]
    for layer, m in whole.layer_matrices().items():
        np.testing.assert_array_equal(second.layer_matrices()[layer], m)


def test_a_pickled_or_corrupt_checkpoint_is_refused(tmp_path):
    (tmp_path / "evil.npz").write_bytes(b"")
    np.savez(tmp_path / "evil.npz", a=np.array([{"x": 1}], dtype=object))  # an object array: a pickle
    (tmp_path / "run-0.json").write_text(json.dumps({"format": checkpoint.FORMAT, "run": 0, "arrays": "evil.npz"}))
    with pytest.raises(checkpoint.CheckpointError, match="unreadable checkpoint"):
        checkpoint.load(tmp_path, 0)
    (tmp_path / "run-0.json").write_text("{not json")
    with pytest.raises(checkpoint.CheckpointError, match="unreadable checkpoint"):
        checkpoint.load(tmp_path, 0)


GRAPH_SCENARIO = """
[experiment]
name = "travel"
runs = 1
episodes = 60
seed = 5

[network]
graph = "net.graphml"

[learning]
rule = "weight_max"
lambda = 0.8
lr = [0.02, 2e-3]
critic_hidden = [16]
critic_lr = [0.02, 2e-4]

[timing]
reward_delay = 1.25
"""


def test_a_run_folder_moved_elsewhere_resumes_there_without_its_graph_file(tmp_path):
    """The graph file is copied into the run folder and the resolved scenario names the copy by
    a relative path: killed, moved to another directory, the original graph file gone, the run
    resumes from the new place to the numbers of an uninterrupted run."""
    import shutil
    import tomllib
    from pathlib import Path

    graphs = Path(__file__).resolve().parents[1] / "scenarios" / "graphs"
    study = tmp_path / "study"
    study.mkdir()
    shutil.copyfile(graphs / "cartpole-small.graphml", study / "net.graphml")
    (study / "s.toml").write_text(GRAPH_SCENARIO)
    whole = cli("run", str(study / "s.toml"), "--out", str(tmp_path / "whole"), "--quiet", "--workers", "1")
    assert whole.wait(timeout=600) == 0, whole.stderr.read()
    expected = _metrics(tmp_path / "whole")
    kept = tomllib.loads((tmp_path / "whole" / "scenario.toml").read_text())
    assert kept["network"]["graph"] == "graph.graphml"
    assert (tmp_path / "whole" / "graph.graphml").read_bytes() == (study / "net.graphml").read_bytes()

    out = study / "out"
    p = cli("run", str(study / "s.toml"), "--out", str(out), "--quiet", "--workers", "1", "--checkpoint-every", "0")
    deadline = time.time() + 300
    while _episodes_written(out) < 10 and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be interrupted"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=120)
    assert (out / "checkpoints").is_dir()
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    shutil.move(str(out), str(moved))
    shutil.rmtree(study)  # the scenario and its graph file are gone
    r = cli("run", "--resume", str(moved), "--quiet", "--workers", "1", cwd=str(tmp_path / "elsewhere"))
    assert r.wait(timeout=600) == 0, r.stderr.read()
    assert _metrics(moved) == expected


def test_the_writing_line_comes_before_the_progress_bar(tmp_path):
    (tmp_path / "s.toml").write_text('[experiment]\nepisodes = 3\n[network]\nhidden = [4]\n'
                                     '[learning]\nlr = [0.01, 0.001]\n')
    p = cli("run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"), "--workers", "1")
    assert p.wait(timeout=300) == 0
    first = p.stderr.read().split("\r")[0].splitlines()[0]
    assert first == f"writing {tmp_path / 'out'}"
