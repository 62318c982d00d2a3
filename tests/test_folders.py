"""Run folders are never lost: another scenario's run is not overwritten, one command writes a
folder at a time, a failed resume moves no row, links are never followed, names cannot climb
out of ``runs/``, and every filesystem error is one line naming the path. Real processes, real
files, real read-only and full file systems (where this machine lets a test mount them)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SMALL = """
[experiment]
name = "{name}"
runs = {runs}
episodes = {episodes}
seed = 1

[network]
hidden = [8]

[learning]
lambda = 0.8
lr = [0.01, 0.001]
"""


def write(path, name="folders", runs=1, episodes=3):
    path.write_text(SMALL.format(name=name, runs=runs, episodes=episodes))
    return path


def cli(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "asyncneurons.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def one_line_error(r, code):
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.lower().startswith("error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def snapshot(folder):
    return {str(p): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file() and p.name != ".lock"}


def test_a_run_into_the_folder_of_another_scenario_is_refused_and_changes_nothing(tmp_path):
    out = tmp_path / "out"
    assert cli("run", str(write(tmp_path / "a.toml")), "--out", str(out), "--quiet").returncode == 0
    before = snapshot(out)
    line = one_line_error(cli("run", str(write(tmp_path / "b.toml", episodes=4)), "--out", str(out),
                              "--quiet"), 2)
    assert "another scenario" in line and "--resume" in line and "--out" in line
    assert snapshot(out) == before
    # the same scenario again is the same run (same numbers): allowed
    assert cli("run", str(tmp_path / "a.toml"), "--out", str(out), "--quiet").returncode == 0


def test_a_folder_holding_files_a_run_writes_but_no_run_is_refused(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metrics.csv").write_text("my own numbers\n")
    line = one_line_error(cli("run", str(write(tmp_path / "a.toml")), "--out", str(out)), 2)
    assert "metrics.csv" in line
    assert (out / "metrics.csv").read_text() == "my own numbers\n"


def test_a_second_command_writing_the_same_folder_is_refused(tmp_path):
    long = write(tmp_path / "long.toml", episodes=100_000)
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "asyncneurons.cli", "run", str(long), "--out", str(out),
                              "--quiet", "--workers", "1"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "episodes" / "run-0.csv").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.05)
        line = one_line_error(cli("run", str(long), "--out", str(out), "--quiet"), 2)
        assert "another command is writing" in line
        line = one_line_error(cli("run", "--resume", str(out), "--quiet"), 2)
        assert "another command is writing" in line
        assert first.poll() is None, "the first run was disturbed"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the lock dies with its holder, even killed
    from asyncneurons.study.folders import FolderLock
    FolderLock(out).release()


def _interrupted_run(tmp_path, runs=2, episodes=400):
    """A run stopped by SIGINT after its first episodes, with checkpoints; return its folder."""
    s = write(tmp_path / "s.toml", runs=runs, episodes=episodes)
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "asyncneurons.cli", "run", str(s), "--out", str(out), "--quiet",
                          "--workers", "1", "--checkpoint-every", "0"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    path = out / "episodes" / "run-0.csv"
    while not (path.exists() and len(path.read_text().splitlines()) > 6):
        assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=60) == 130
    return out


@pytest.mark.parametrize("damage", ["truncate", "edit", "foreign", "arrays"])
def test_a_resume_refused_for_a_bad_checkpoint_moves_no_row(tmp_path, damage):
    out = _interrupted_run(tmp_path)
    meta = out / "checkpoints" / "run-0.json"
    text = meta.read_text()
    if damage == "truncate":
        meta.write_text(text[: len(text) // 2])
    elif damage == "edit":
        meta.write_text(text.replace('"episode": ', '"episode": 1', 1))
    elif damage == "foreign":
        state = json.loads(text)
        state["scenario"] = "0123456789abcdef"
        meta.write_text(json.dumps(state))
    else:
        npz = out / "checkpoints" / json.loads(text)["arrays"]
        data = bytearray(npz.read_bytes())
        data[len(data) // 2] ^= 0xFF
        npz.write_bytes(bytes(data))
    before = snapshot(out)
    line = one_line_error(cli("run", "--resume", str(out), "--quiet"), 2)
    assert "run-0.json" in line
    assert snapshot(out) == before, "a refused resume changed the folder"


def test_a_finished_run_keeps_no_checkpoints_and_its_wall_time_is_the_sum_of_its_parts(tmp_path):
    out = _interrupted_run(tmp_path, runs=1, episodes=40)
    summary = json.loads((out / "summary.json").read_text())
    summary["wall_s"] = 1000.0  # an earlier part that took long (set so that no clock is read)
    (out / "summary.json").write_text(json.dumps(summary))
    assert cli("run", "--resume", str(out), "--quiet").returncode == 0
    done = json.loads((out / "summary.json").read_text())
    assert done["status"] == "complete" and done["wall_s"] > 1000.0
    assert not (out / "checkpoints").exists()


def test_links_in_a_run_folder_are_never_followed(tmp_path):
    out = _interrupted_run(tmp_path, runs=1, episodes=40)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / "metrics.csv").unlink()
    (out / "metrics.csv").symlink_to(victim)
    (out / "checkpoints" / "run-0.json.tmp").symlink_to(victim)
    assert cli("run", "--resume", str(out), "--quiet").returncode == 0
    assert victim.read_text() == "precious\n"
    assert not (out / "metrics.csv").is_symlink()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "second").mkdir()
    other = _interrupted_run(tmp_path / "second", runs=1, episodes=40)
    for f in (other / "episodes").iterdir():
        f.rename(elsewhere / f.name)
    (other / "episodes").rmdir()
    (other / "episodes").symlink_to(elsewhere)
    before = snapshot(elsewhere)
    line = one_line_error(cli("run", "--resume", str(other), "--quiet"), 2)
    assert "episodes" in line and "link" in line
    assert snapshot(elsewhere) == before


def test_an_experiment_name_cannot_climb_out_of_runs(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    s = write(tmp_path / "s.toml", name="../../../escape/x")
    r = cli("run", str(s), "--quiet", cwd=work)
    assert r.returncode == 0, r.stderr
    made = [p for p in (work / "runs").iterdir()]
    assert len(made) == 1 and made[0].parent == work / "runs" and "/" not in made[0].name
    assert made[0].name.startswith("escape-x-")
    assert [p for p in tmp_path.rglob("escape*") if (work / "runs") not in p.parents] == []


def test_an_out_that_is_a_file_is_one_line(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    line = one_line_error(cli("run", str(write(tmp_path / "s.toml")), "--out", str(f)), 2)
    assert str(f) in line
    line = one_line_error(cli("run", str(tmp_path / "s.toml"), "--out", str(f / "below")), 1)
    assert str(f) in line
    line = one_line_error(cli("sweep", str(tmp_path / "s.toml"), "--out", str(f)), 2)
    assert str(f) in line


@contextlib.contextmanager
def mounted(where: Path, options: str):
    """A small tmpfs at ``where`` (needs the right to mount; the test is skipped without it)."""
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("this machine does not let a test mount a file system")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_read_only_file_system_is_one_line_naming_the_path(tmp_path):
    s = write(tmp_path / "s.toml")
    with mounted(tmp_path / "ro", "size=1m,ro") as ro:
        line = one_line_error(cli("run", str(s), "--out", str(ro / "out")), 1)
        assert str(ro / "out") in line and "read-only" in line.lower()
        line = one_line_error(cli("sweep", str(s), "--out", str(ro / "sw")), 1)
        assert str(ro / "sw") in line


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_full_disk_is_one_line_naming_the_path(tmp_path, workers):
    s = write(tmp_path / "s.toml", runs=2, episodes=4000)
    with mounted(tmp_path / "full", "size=24k") as full:
        r = cli("run", str(s), "--out", str(full / "out"), "--quiet", "--workers", workers)
        line = one_line_error(r, 1)
        assert str(full / "out") in line and "No space left" in line


def test_a_run_is_complete_only_with_every_episode_row_in_place(tmp_path):
    from asyncneurons.study.runner import incomplete_runs
    rows = [{"run": r, "episode": e} for r in range(2) for e in range(3)]
    assert incomplete_runs(rows, 2, 3) == []
    assert incomplete_runs(rows[:-1], 2, 3) == [1]
    assert incomplete_runs([row for row in rows if row != {"run": 0, "episode": 1}], 2, 3) == [0]
    assert incomplete_runs(rows + [{"run": 0, "episode": 1}], 2, 3) == [0]

    s = write(tmp_path / "s.toml", runs=2, episodes=4)
    out = tmp_path / "out"
    assert cli("run", str(s), "--out", str(out), "--quiet", "--workers", "1").returncode == 0
    whole = (out / "metrics.csv").read_text()
    episodes = out / "episodes" / "run-1.csv"
    lines = episodes.read_text().splitlines(keepends=True)
    episodes.write_text("".join(lines[:2] + lines[3:]))  # episode 1 of run 1 is lost
    r = cli("run", "--resume", str(out), "--quiet", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "summary.json").read_text())["status"] == "complete"

    def table(text):
        return [line.split(",")[:5] + line.split(",")[6:] for line in text.splitlines()]
    assert table((out / "metrics.csv").read_text()) == table(whole)  # the run was redone, identically
