"""[record] diagnostics: a row per episode read from the run's state; recording changes no result,
does not depend on fusion, survives a kill and a resume, and is plotted."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
import tomllib

import numpy as np
import pytest

from asyncneurons.study.diagnostics import Writer, columns, layer_totals
from asyncneurons.errors import ScenarioError
from asyncneurons.study.runner import run_experiment
from asyncneurons.model.scenario import parse_scenario
from asyncneurons.engine.simulation import Simulation

SCENARIO = """
[experiment]
name = "diag"
runs = 2
episodes = 8
seed = 2

[env]
pacing = "clock"
period = 10.0

[network]
hidden = [6, 4]

[learning]
rule = "weight_max"
lambda = 0.8
lr = [0.02, 2e-3, 2e-4]
critic_hidden = [8]
critic_lr = [0.02, 2e-4]

[timing]
synapse_delay = { dist = "uniform", low = 0.0, high = 7.0 }
reward_delay = 3.0
retro_delay = 1.0
"""


def _scenario(*overrides):
    return parse_scenario(tomllib.loads(SCENARIO), list(overrides))


def _csv(path, drop=("wall_s",)):
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def test_recording_diagnostics_changes_no_result(tmp_path):
    run_experiment(_scenario(), tmp_path / "plain")
    run_experiment(_scenario("record.diagnostics=true"), tmp_path / "diag")
    assert _csv(tmp_path / "diag" / "metrics.csv") == _csv(tmp_path / "plain" / "metrics.csv")
    for run in (0, 1):
        rows = _csv(tmp_path / "diag" / "diagnostics" / f"run-{run}.csv")
        assert list(rows[0]) == columns(3) and [int(r["episode"]) for r in rows] == list(range(8))
        metrics = [r for r in _csv(tmp_path / "diag" / "metrics.csv") if r["run"] == str(run)]
        assert [r["stale_actions"] for r in rows] == [r["stale_actions"] for r in metrics]
        assert all(float(r["mean_abs_delta"]) > 0 for r in rows)


def test_diagnostics_do_not_depend_on_fusion(tmp_path):
    run_experiment(_scenario("record.diagnostics=true", "engine.fuse=true"), tmp_path / "fused")
    run_experiment(_scenario("record.diagnostics=true", "engine.fuse=false"), tmp_path / "apart")
    for run in (0, 1):
        name = f"diagnostics/run-{run}.csv"
        assert _csv(tmp_path / "fused" / name) == _csv(tmp_path / "apart" / name)


def test_counts_add_up_to_the_runs_counters_and_norms_are_the_weights(tmp_path):
    s = _scenario("experiment.runs=1")
    sim = Simulation(s)
    writer = Writer(tmp_path, 0, sim.n_layers)
    sim.on_episode = lambda row: writer.episode(sim, row)
    sim.run()
    writer.close()
    rows = _csv(tmp_path / "diagnostics" / "run-0.csv")
    for layer in (1, 2, 3):
        groups = [g for g in sim.groups if g.layer == layer]
        units = sum(g.P.shape[0] for g in groups)
        samples = sum(int(np.sum(g.counters)) for g in groups) / units
        steps = sum(g.t * g.P.shape[0] for g in groups) / units
        assert sum(float(r[f"samples_l{layer}"]) for r in rows) == pytest.approx(samples)
        assert sum(float(r[f"learning_events_l{layer}"]) for r in rows) == pytest.approx(steps)
        norm = np.sqrt(sum(np.sum(g.P ** 2) for g in groups))
        assert float(rows[-1][f"weight_norm_l{layer}"]) == pytest.approx(norm)
    assert layer_totals(sim.groups, sim.n_layers)["norm"][0] == 0.0  # inputs have no weights


def test_diagnostics_survive_a_kill_and_a_resume(tmp_path):
    (tmp_path / "s.toml").write_text(SCENARIO.replace("episodes = 8", "episodes = 120")
                                     + "\n[record]\ndiagnostics = true\n")

    def cli(*args):
        return subprocess.Popen([sys.executable, "-m", "asyncneurons.cli", *args, "--quiet", "--workers", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert cli("run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "whole")).wait(timeout=600) == 0
    p = cli("run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "cut"), "--checkpoint-every", "0")
    path = tmp_path / "cut" / "diagnostics" / "run-0.csv"
    deadline = time.time() + 300
    while (not path.exists() or len(path.read_text().splitlines()) < 30) and p.poll() is None \
            and time.time() < deadline:
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be interrupted"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    assert cli("run", "--resume", str(tmp_path / "cut")).wait(timeout=600) == 0
    for run in (0, 1):
        name = f"diagnostics/run-{run}.csv"
        assert _csv(tmp_path / "cut" / name) == _csv(tmp_path / "whole" / name)


def test_plot_draws_the_diagnostics(tmp_path):
    run_experiment(_scenario("record.diagnostics=true"), tmp_path / "run")
    r = subprocess.run([sys.executable, "-m", "asyncneurons.cli", "plot", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    svg = (tmp_path / "run" / "figures" / "diagnostics.svg").read_text()
    for title in ("mean |δ| per step", "stale actions per episode", "weight norm ‖W‖", "samples per unit",
                  "learning events per unit", "layer 3"):
        assert title in svg


def test_batched_tasks_refuse_diagnostics():
    with pytest.raises(ScenarioError, match=r"^record.diagnostics: batched single-step tasks"):
        parse_scenario({"learning": {"batch": 4, "critic": "none"}, "record": {"diagnostics": True}})
