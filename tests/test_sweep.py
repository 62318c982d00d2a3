"""Sweeps: grid parsing, identity, tables, backends that agree, and resuming after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from asyncneurons.errors import UserInputError
from asyncneurons.study.identity import parse_grid, split_top_level
from asyncneurons.study.sweep import plan, run_sweep

SMALL = """
[experiment]
name = "small"
episodes = 10

[network]
hidden = [8]

[learning]
lambda = 0.8
lr = [0.01, 0.001]
"""

GRID = ["--grid", "learning.rule=global_reinforce,weight_max",
        "--grid", "timing.reward_delay=0,5"]
SEEDS = ["--seeds", "2"]


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "asyncneurons.cli", *args], check=False,
                          capture_output=True,
                          text=True, timeout=300, **kwargs)


def sweep_cli(scenario, out, *extra):
    return cli("sweep", str(scenario), *GRID, *SEEDS, "--set", "env.pacing=clock", "--out",
               str(out), "--quiet", *extra)


def tables(out):
    return (Path(out) / "sweep.csv").read_bytes(), (Path(out) / "summary.csv").read_bytes()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    p = tmp_path_factory.mktemp("scenario") / "small.toml"
    p.write_text(SMALL)
    return p


@pytest.fixture(scope="module")
def reference(small, tmp_path_factory):
    """The sweep, uninterrupted, on 2 local worker processes."""
    out = tmp_path_factory.mktemp("reference") / "sweep"
    r = sweep_cli(small, out, "--workers", "2")
    assert r.returncode == 0, r.stderr
    return out


def test_grid_values_split_on_top_level_commas_only():
    assert split_top_level('0,{dist="uniform",low=0,high=5}, [1, 2],"a,b"') == [
        "0", '{dist="uniform",low=0,high=5}', "[1, 2]", '"a,b"']
    grid = parse_grid(['timing.synapse_delay={dist = "uniform", low = 0, high = 2},3.5',
                       "learning.lr=[0.02, 2e-4],[0.01, 1e-4]", "learning.rule=weight_max"])
    assert grid == [("timing.synapse_delay", ['{dist = "uniform", low = 0, high = 2}', "3.5"]),
                    ("learning.lr", ["[0.02, 2e-4]", "[0.01, 1e-4]"]),
                    ("learning.rule", ["weight_max"])]


@pytest.mark.parametrize("spec, message", [
    ("learning.rule", "the form is KEY=V1,V2"),
    ("timing.reward_delay=1,,2", "empty value"),
    ("experiment.seed=1,2", "use --seeds"),
])
def test_malformed_grids_are_refused(spec, message):
    with pytest.raises(UserInputError, match=message):
        parse_grid([spec])


def test_each_point_is_validated_before_anything_runs(small, tmp_path):
    with pytest.raises(UserInputError, match=r"^timing\.reward_delay: must be"):
        plan(small, ["timing.reward_delay=0,-1"], 1, [], tmp_path / "out")
    with pytest.raises(UserInputError, match="use --seeds"):
        plan(small, [], 2, ["experiment.runs=3"], tmp_path / "out")


def test_a_bad_grid_key_is_a_one_line_error_with_status_2(small, tmp_path):
    out = tmp_path / "out"
    r = cli("sweep", str(small), "--grid", "timing.reward_dealy=0,5", "--out", str(out))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        'error: timing.reward_dealy: unknown key (did you mean "reward_delay"?)']
    assert not out.exists()


def test_runs_are_named_by_their_point_and_a_hash_of_scenario_and_seed(small, tmp_path):
    a = plan(small, GRID[1::2], 2, [], tmp_path)
    b = plan(small, GRID[1::2], 2, [], tmp_path)
    c = plan(small, GRID[1::2], 2, ["learning.lambda=0.5"], tmp_path)
    assert [r.folder for r in a.runs] == [r.folder for r in b.runs]
    assert len({r.ident for r in a.runs}) == 8
    assert not {r.ident for r in a.runs} & {r.ident for r in c.runs}
    assert a.runs[3].folder.startswith("runs/learning.rule=global_reinforce,"
                                       "timing.reward_delay=5/seed-1-")
    assert 'seed = 1' in a.runs[3].toml and "runs = 1" in a.runs[3].toml


def test_tables_hold_every_episode_and_the_published_metric(reference):
    tidy = pd.read_csv(reference / "sweep.csv")
    summary = pd.read_csv(reference / "summary.csv")
    assert list(tidy.columns) == ["learning.rule", "timing.reward_delay", "seed", "episode",
                                  "return", "length", "sim_time_ms", "stale_actions"]
    assert len(tidy) == 2 * 2 * 2 * 10
    assert list(summary.columns) == ["learning.rule", "timing.reward_delay", "n_seeds", "mean",
                                     "std", "episodes", "n_diverged"]
    per_seed = tidy.groupby(["learning.rule", "timing.reward_delay", "seed"])["return"].mean()
    expected = per_seed.groupby(level=[0, 1]).agg(["mean", lambda x: x.std(ddof=0)])
    for _, row in summary.iterrows():
        m, s = expected.loc[(row["learning.rule"], row["timing.reward_delay"])]
        assert row["mean"] == pytest.approx(m) and row["std"] == pytest.approx(s)
        assert row["n_seeds"] == 2 and row["episodes"] == 10
    meta = json.loads((reference / "sweep.json").read_text())
    assert {r["status"] for r in meta["runs"]} == {"complete"}
    for r in meta["runs"]:
        assert len(pd.read_csv(reference / r["folder"] / "metrics.csv")) == 10


def test_a_local_dask_cluster_gives_identical_tables(small, reference, tmp_path):
    out = tmp_path / "dask"
    r = sweep_cli(small, out, "--dask-local", "2")
    assert r.returncode == 0, r.stderr
    assert tables(out) == tables(reference)


def test_a_killed_sweep_resumes_without_redoing_finished_runs(small, reference, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "asyncneurons.cli", "sweep", str(small),
                             *GRID, *SEEDS, "--set", "env.pacing=clock", "--out", str(out),
                             "--quiet", "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("runs/*/*/summary.json")):
            assert proc.poll() is None and time.monotonic() < deadline, "no run finished"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = {p.parent: p.stat().st_mtime_ns for p in out.glob("runs/*/*/summary.json")}
    assert 1 <= len(done) < 8
    if (out / "sweep.csv").exists():  # the tables hold finished runs only (the last may not be in yet)
        runs = pd.read_csv(out / "sweep.csv").groupby(["learning.rule", "timing.reward_delay", "seed"])
        assert 0 < len(runs) <= len(done)

    r = sweep_cli(small, out, "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert f"{len(done)} already finished" in r.stderr
    assert tables(out) == tables(reference)
    for folder, mtime in done.items():
        assert (folder / "summary.json").stat().st_mtime_ns == mtime

    again = sweep_cli(small, out, "--workers", "2")
    assert "8 already finished" in again.stderr and "0 run(s) done now" in again.stdout
    assert tables(out) == tables(reference)


def test_the_tables_hold_every_finished_run_while_the_sweep_goes_on(small, tmp_path, monkeypatch):
    """Killed after its third run, a sweep leaves tables with those three runs: a partial sweep
    can be plotted without running the command again."""
    import asyncneurons.study.sweep as sweep_mod

    class Killed(Exception):
        pass
    calls, write = [], sweep_mod.write_tables

    def write_then_kill(sweep):
        result = write(sweep)
        calls.append(1)
        if len(calls) == 3:
            raise Killed
        return result
    monkeypatch.setattr(sweep_mod, "write_tables", write_then_kill)
    sweep = plan(small, GRID[1::2], 2, ["env.pacing=clock"], tmp_path / "sweep")
    with pytest.raises(Killed):
        run_sweep(sweep, workers=1, progress=False, say=lambda text: None)
    tidy = pd.read_csv(tmp_path / "sweep" / "sweep.csv")
    assert len(tidy.groupby(["learning.rule", "timing.reward_delay", "seed"])) == 3
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert summary["n_seeds"].tolist() == [1, 1, 1, 0]  # seed 0 of three points so far


def test_an_unfinished_run_folder_is_redone(small, reference, tmp_path):
    import shutil

    out = tmp_path / "partial"
    shutil.copytree(reference, out)
    victim = next(out.glob("runs/*/*/summary.json"))
    summary = json.loads(victim.read_text())
    victim.write_text(json.dumps({**summary, "status": "incomplete"}))
    r = sweep_cli(small, out, "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "7 already finished" in r.stderr
    assert json.loads(victim.read_text())["status"] == "complete"
    assert tables(out) == tables(reference)


def test_only_one_backend_may_be_chosen(small, tmp_path):
    r = cli("sweep", str(small), "--out", str(tmp_path / "o"), "--workers", "2",
            "--dask-local", "2")
    assert r.returncode == 2 and "choose one" in r.stderr
    assert os.listdir(tmp_path) == []


def test_runs_go_seed_by_seed_so_a_partial_sweep_covers_every_point(small, tmp_path):
    out = tmp_path / "order"
    r = sweep_cli(small, out, "--workers", "1")
    assert r.returncode == 0, r.stderr
    finished = sorted(out.glob("runs/*/*/summary.json"), key=lambda p: p.stat().st_mtime_ns)
    seeds = [int(p.parent.name.split("-")[1]) for p in finished]
    assert seeds == sorted(seeds) and len(set(seeds)) == 2
    first_seed = [p.parent.parent.name for p in finished[:len(finished) // 2]]
    assert len(set(first_seed)) == len(finished) // 2  # every point once before any second seed
