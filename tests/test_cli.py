"""The command line: run folders, determinism, exit statuses, one-line errors."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SMALL = """
[experiment]
name = "small"
runs = 2
episodes = 6
seed = 4

[network]
hidden = [8]

[learning]
lambda = 0.8
lr = [0.01, 0.001]
critic_hidden = [8]
critic_lr = [0.01, 0.001]
"""


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "asyncneurons.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def _rows(path):
    with open(path) as f:
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(f)]


@pytest.fixture
def small(tmp_path):
    p = tmp_path / "small.toml"
    p.write_text(SMALL)
    return p


def test_run_writes_the_run_folder(small, tmp_path):
    out = tmp_path / "out"
    r = cli("run", str(small), "--out", str(out), "--quiet", "--set", "record.events=true")
    assert r.returncode == 0, r.stderr
    rows = _rows(out / "metrics.csv")
    assert [(int(x["run"]), int(x["episode"])) for x in rows] == [(r_, e) for r_ in range(2) for e in range(6)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and len(summary["runs"]) == 2
    averages = [sum(float(x["return"]) for x in rows if int(x["run"]) == k) / 6 for k in range(2)]
    assert summary["runs"][0]["average_return"] == pytest.approx(averages[0])
    assert summary["mean"] == pytest.approx(sum(averages) / 2)
    assert summary["std"] == pytest.approx(abs(averages[0] - averages[1]) / 2)
    resolved = (out / "scenario.toml").read_text()
    assert "synapse_delay" in resolved and 'name = "small"' in resolved
    with open(out / "events.csv") as f:
        events = list(csv.DictReader(f))
    assert {"observation", "sample", "reward", "env_step"} <= {e["kind"] for e in events}
    assert "average return" in r.stdout


def test_same_seed_gives_identical_metrics_whatever_the_worker_count(small, tmp_path):
    outs = []
    for i, workers in enumerate(["1", "2", "1"]):
        out = tmp_path / f"o{i}"
        assert cli("run", str(small), "--out", str(out), "--quiet", "--workers", workers).returncode == 0
        outs.append(_rows(out / "metrics.csv"))
    assert outs[0] == outs[1] == outs[2]
    other = tmp_path / "other"
    cli("run", str(small), "--out", str(other), "--quiet", "--set", "experiment.seed=5")
    assert _rows(other / "metrics.csv") != outs[0]


def test_validate_describes_a_good_scenario(small):
    r = cli("validate", str(small))
    assert r.returncode == 0 and r.stdout.startswith("ok: small: CartPole-v1")


@pytest.mark.parametrize("args, message", [
    (["--set", "timing.firing=on_al"], 'timing.firing: must be one of'),
    (["--set", "learning.rule=global_reinforc"], 'did you mean "global_reinforce"'),
    (["--set", "experiment.episods=3"], 'experiment.episods: unknown key (did you mean "episodes"?)'),
])
def test_bad_input_exits_2_with_one_line_and_no_traceback(small, tmp_path, args, message):
    for command in (["validate", str(small)], ["run", str(small), "--out", str(tmp_path / "x"), "--quiet"]):
        r = cli(*command, *args)
        assert r.returncode == 2
        assert message in r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_missing_file_exits_2(tmp_path):
    r = cli("validate", str(tmp_path / "nope.toml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_a_diverging_run_stops_with_a_message_and_keeps_its_rows(small, tmp_path):
    out = tmp_path / "div"
    r = cli("run", str(small), "--out", str(out), "--quiet", "--workers", "1",
            "--set", "learning.critic_lr=1e300", "--set", "experiment.episodes=50")
    assert r.returncode == 1
    assert "learning.critic_lr" in r.stderr and "Traceback" not in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged"
    with open(out / "metrics.csv") as f:
        assert all(len(row) == 7 for row in csv.reader(f))


def test_shipped_scenarios_validate():
    files = sorted((ROOT / "scenarios").rglob("*.toml"))
    assert len(files) >= 3
    for f in files:
        r = cli("validate", str(f))
        assert r.returncode == 0, f"{f}: {r.stderr}"


MAP_DELAYED = ["--set", "learning.rule=map_prop", "--set", "network.unit=gaussian",
               "--set", "network.output=categorical", "--set", "learning.critic=map_prop",
               "--set", 'timing.synapse_delay={dist = "uniform", low = 0, high = 5}']


def test_map_relaxation_blind_to_the_action_is_pointed_out_and_still_runs(small, tmp_path):
    r = cli("validate", str(small), *MAP_DELAYED)
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "timing.relax_period = 0 with map_prop" in notes[0]
    assert "explains the previous action" in notes[0]
    # a relaxation window, or no delays, says nothing
    assert "note:" not in cli("validate", str(small), *MAP_DELAYED, "--set", "timing.relax_period=1").stderr
    assert "note:" not in cli("validate", str(small), *MAP_DELAYED[:-2]).stderr
    # a sweep names the grid points it concerns, before running them
    out = tmp_path / "sweep"
    r = cli("sweep", str(small), *MAP_DELAYED[:-2], "--grid", "timing.synapse_delay=0,2", "--out", str(out),
            "--set", "experiment.episodes=2", "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].startswith("note: timing.synapse_delay=2: timing.relax_period = 0")


@pytest.mark.parametrize("command", ["", "run", "sweep", "plot", "validate"])
def test_every_help_states_the_exit_statuses(command):
    r = cli(*([command] if command else []), "--help")
    assert r.returncode == 0 and r.stderr == ""
    assert "Exit status" in r.stdout and "2" in r.stdout.split("Exit status")[1]
    if not command:  # no description cut short in the list of commands
        listed = r.stdout.split("Commands:")[1].split("Documentation")[0]
        assert "..." not in listed and all(c in listed for c in ("plot", "run", "sweep", "validate"))
    if command in ("run", "sweep"):
        assert "--out DIRECTORY" in r.stdout and "(default: runs/NAME-" in " ".join(r.stdout.split())
    if command == "run":
        assert "[default: 30.0; x>=0]" in r.stdout and "130" in r.stdout


def test_sweep_has_a_default_folder_like_run(small, tmp_path):
    r = cli("sweep", str(small), "--grid", "timing.reward_delay=0,5", "--set", "experiment.episodes=2",
            "--workers", "1", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("small-sweep-") and (folder / "summary.csv").exists()
    assert f"writing {Path('runs') / folder.name}" in r.stderr


@pytest.mark.parametrize("over", [[], ['learning.trace="exponential"', "learning.trace_tau=20.0",
                                       'env.pacing="clock"', "env.period=20.0", "timing.synapse_delay=1.0"]],
                         ids=["on_all", "exponential traces"])
def test_a_run_folders_scenario_has_no_notes_on_keys_its_author_never_set(tmp_path, over):
    from asyncneurons.model.scenario import load_scenario, to_toml

    plain = tmp_path / "plain.toml"
    plain.write_text(SMALL.replace("lambda = 0.8\n", ""))
    resolved = tmp_path / "scenario.toml"  # as a run folder holds it: every key, defaults included
    resolved.write_text(to_toml(load_scenario(plain, over)))
    assert "firing_rate = " in resolved.read_text() and "lambda = " in resolved.read_text()
    r = cli("validate", str(resolved))
    assert r.returncode == 0, r.stderr
    assert "note:" not in r.stdout + r.stderr
    noted = cli("validate", str(resolved), "--set", "timing.firing_rate=2.0")
    assert 'timing.firing_rate has no effect under timing.firing = "on_all"' in noted.stdout + noted.stderr
