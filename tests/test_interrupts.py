"""Interrupts with worker processes: Ctrl-C (SIGINT to the whole process group, as a terminal
sends it, or to the command alone) and SIGTERM stop ``run`` and ``sweep`` promptly, keep every
finished episode, exit 130, and leave no process that writes into the folder afterwards. Real
processes receive real signals."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

SCENARIO = """
[experiment]
name = "interrupts"
runs = 3
episodes = {episodes}
seed = 5

[network]
hidden = [16, 8]

[learning]
rule = "weight_max"
lambda = 0.8
lr = [0.02, 2e-3, 2e-4]
"""


def start(*args):
    """``python -m asyncneurons.cli ARGS`` in its own process group (as a shell job is)."""
    return subprocess.Popen([sys.executable, "-m", "asyncneurons.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def episodes_written(folder):
    return sum(max(0, len(p.read_text().splitlines()) - 1) for p in (folder / "episodes").glob("run-*.csv"))


def snapshot(folder):
    """Every file under ``folder`` with its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def live_members(pgid) -> list:
    """Processes of the group ``pgid`` that are still running (zombies left to their reaper aside)."""
    found = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(stat))
    return found


def group_is_gone(pgid) -> bool:
    """Every process of the command is gone (multiprocessing's resource tracker, which writes
    nothing, is given a moment to notice that its parent has ended)."""
    deadline = time.monotonic() + 3
    while live_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not live_members(pgid)


def signal_when(p, ready, sig, whole_group):
    deadline = time.monotonic() + 300
    while not ready() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p.poll() is None, "the command ended before it could be interrupted: " + p.stderr.read()
    if whole_group:
        os.killpg(p.pid, sig)
    else:
        p.send_signal(sig)
    sent = time.monotonic()
    code = p.wait(timeout=60)
    return code, time.monotonic() - sent


@pytest.mark.parametrize("sig, whole_group", [(signal.SIGINT, True), (signal.SIGINT, False),
                                              (signal.SIGTERM, False)])
def test_an_interrupted_run_with_workers_stops_keeps_its_episodes_and_writes_nothing_after(
        tmp_path, sig, whole_group):
    (tmp_path / "s.toml").write_text(SCENARIO.format(episodes=100_000))
    out = tmp_path / "out"
    p = start("run", str(tmp_path / "s.toml"), "--out", str(out), "--quiet")  # default: 2 workers
    code, took = signal_when(p, lambda: episodes_written(out) >= 6, sig, whole_group)
    err = p.stderr.read()
    assert code == 130, err
    assert "Traceback" not in err and f"--resume {out}" in err
    assert group_is_gone(p.pid), "a worker outlived its command"
    after = snapshot(out)
    time.sleep(2.0)
    assert snapshot(out) == after, "a file of the run folder changed after the command had exited"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "incomplete"
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == episodes_written(out) >= 6  # every finished episode is kept
    for r in range(3):
        mine = [int(row["episode"]) for row in rows if row["run"] == str(r)]
        assert mine == list(range(len(mine)))


def test_a_run_interrupted_with_workers_resumes_to_the_uninterrupted_result(tmp_path):
    (tmp_path / "s.toml").write_text(SCENARIO.format(episodes=120))
    ref = tmp_path / "ref"
    r = start("run", str(tmp_path / "s.toml"), "--out", str(ref), "--quiet", "--workers", "1")
    assert r.wait(timeout=600) == 0, r.stderr.read()
    out = tmp_path / "out"
    p = start("run", str(tmp_path / "s.toml"), "--out", str(out), "--quiet", "--checkpoint-every", "0")
    code, _ = signal_when(p, lambda: episodes_written(out) >= 20, signal.SIGINT, True)
    assert code == 130
    r = start("run", "--resume", str(out), "--quiet")
    assert r.wait(timeout=600) == 0, r.stderr.read()

    def table(folder):
        with open(folder / "metrics.csv") as f:
            return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]
    assert table(out) == table(ref)
    assert json.loads((out / "summary.json").read_text())["status"] == "complete"
    assert not (out / "checkpoints").exists(), "a finished run keeps no checkpoints"


SWEEP = """
[experiment]
name = "sw"
episodes = {episodes}

[network]
hidden = [8]

[learning]
lambda = 0.8
lr = [0.01, 0.001]
"""


@pytest.mark.parametrize("sig, whole_group", [(signal.SIGINT, True), (signal.SIGINT, False),
                                              (signal.SIGTERM, False)])
def test_an_interrupted_sweep_stops_and_leaves_no_worker(tmp_path, sig, whole_group):
    (tmp_path / "s.toml").write_text(SWEEP.format(episodes=100_000))
    out = tmp_path / "sweep"
    p = start("sweep", str(tmp_path / "s.toml"), "--seeds", "3", "--out", str(out), "--quiet")
    code, _ = signal_when(p, lambda: (out / "sweep.json").exists(), sig, whole_group)
    err = p.stderr.read()
    assert code == 130, err
    assert "Traceback" not in err and f"run the same command with --out {out} to resume" in err
    assert group_is_gone(p.pid), "a sweep worker outlived its command"
    after = snapshot(out)
    time.sleep(1.5)
    assert snapshot(out) == after


def _simulation_interrupted_inside_an_event(times: int):
    """A small run in which one event sends SIGINT to this process ``times`` times and then
    marks that it ran to its end; a later event marks that the run went on."""
    from asyncneurons.engine import events, interrupts
    import tomllib

    from asyncneurons.model.scenario import parse_scenario
    from asyncneurons.engine.simulation import Simulation

    text = SCENARIO.format(episodes=50) + '\n[env]\npacing = "clock"\nperiod = 20.0\n'
    sim = Simulation(parse_scenario(tomllib.loads(text)), 0)
    seen = []

    def intruder(env):
        yield env.timeout(25.0)
        for _ in range(times):
            os.kill(os.getpid(), signal.SIGINT)
        seen.append("end of the event")
        yield env.timeout(1.0)
        seen.append("a later event")

    sim.env.process(intruder(sim.env))
    with interrupts.interruptible(), pytest.raises(KeyboardInterrupt):
        sim.run()
    assert not interrupts.pending()
    return seen, sim


def test_an_interrupt_stops_a_simulation_between_two_events_never_inside_one():
    seen, sim = _simulation_interrupted_inside_an_event(1)
    assert seen == ["end of the event"]
    assert sim.env.now == 25.0


def test_a_second_interrupt_stops_at_once():
    seen, _ = _simulation_interrupted_inside_an_event(2)
    assert seen == []


def test_a_stopped_pools_broken_pipes_are_not_printed_other_thread_failures_are():
    """After its workers are stopped, a pool's feeder thread may fail writing to a pipe a worker
    held: the command is stopping and ends in one line, so that failure is not printed."""
    import threading
    from types import SimpleNamespace

    from asyncneurons.study.runner import quiet_pool_thread

    def failure(exc_type, thread):
        return SimpleNamespace(exc_type=exc_type, exc_value=exc_type(), exc_traceback=None, thread=thread)

    feeder = threading.Thread(target=lambda: None, name="QueueFeederThread")
    other = threading.Thread(target=lambda: None, name="Thread-7 (watch)")
    assert quiet_pool_thread(failure(BrokenPipeError, feeder))
    assert quiet_pool_thread(failure(OSError, feeder))
    assert not quiet_pool_thread(failure(ValueError, feeder))
    assert not quiet_pool_thread(failure(OSError, other))
    assert not quiet_pool_thread(failure(OSError, None))


def test_stopping_a_pool_waits_for_its_manager_thread():
    """The interpreter's exit hook for pools writes to each live pool manager's wake-up pipe; a
    stopped pool's manager must have ended (its pipe closed and marked so) before the command
    exits, or that write can meet the pipe as it closes and print a traceback."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from asyncneurons.study.runner import stop_workers

    pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
    future = pool.submit(time.sleep, 60)
    deadline = time.monotonic() + 60
    while not future.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    manager = pool._executor_manager_thread
    stop_workers(pool)
    assert not manager.is_alive()
