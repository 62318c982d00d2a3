"""Sweeps: one scenario across a grid of overrides × seeds, on local processes or on Dask.

A sweep folder holds::

    sweep.json     what was swept: scenario, --set overrides, grid, seeds, and every run
                   (its point, seed, identity, folder, status)
    sweep.csv      tidy: one row per episode of every finished run; columns: the swept keys
                   (dotted, as given), seed, episode, return, length, sim_time_ms, stale_actions
    summary.csv    one row per grid point: the swept keys, n_seeds (finished runs), mean and
                   std (population, ddof = 0) across seeds of each seed's average return over
                   all its episodes (the published metric), episodes (per seed, the most any
                   seed ran) and n_diverged
    runs/<point>/seed-<s>-<hash>/   one run folder per (point, seed), as ``asyncneurons run``
                   writes it (scenario.toml, metrics.csv, summary.json, events.csv)

Each run is the scenario with ``experiment.seed = s`` (s = 0 … N-1) and ``experiment.runs =
1`` (:mod:`asyncneurons.study.identity`): a run folder can be rerun alone with ``asyncneurons run
runs/…/scenario.toml``, and adding seeds to a sweep keeps the runs it has. Runs are
deterministic, so the tables do not depend on the worker count or the backend.

A run is finished when its folder holds ``summary.json`` with status ``complete`` or
``diverged`` (a diverged run diverges again when rerun; its finished episodes count) and the
same resolved scenario; a sweep run again skips finished runs and redoes the others. Workers
compute; the process that runs the sweep writes every file (no shared file system is needed
between Dask workers and it), the tables atomically, after the last run.
"""

from __future__ import annotations

import itertools
import math
import json
import multiprocessing as mp
import os
import sys
import threading
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from asyncneurons.engine import interrupts
from asyncneurons.model.advice import advice
from asyncneurons.errors import DivergenceError, UserInputError
from asyncneurons.study.identity import (SWEEP_KEYS, RunSpec, parse_grid, parse_value, point_label, run_hash,
                                         table_value)
from asyncneurons.model.limits import MAX_RUNS, check_sweep
from asyncneurons.study.folders import FolderLock, check_dir, writing
from asyncneurons.study.recorder import RunFolder, atomic_write, summarize, write_events

METRICS = ["episode", "return", "length", "sim_time_ms", "stale_actions"]
FINISHED = ("complete", "diverged")


# ---------------------------------------------------------------------------------------------
# The plan


@dataclass
class Sweep:
    """A planned sweep: every run it is made of, validated, before anything runs."""

    scenario: str
    overrides: list
    grid: list
    seeds: int
    out: Path
    runs: list = field(default_factory=list)
    advice: list = field(default_factory=list)  # sentences of :mod:`asyncneurons.model.advice`, per point

    @property
    def keys(self) -> list[str]:
        return [k for k, _ in self.grid]

    @property
    def points(self) -> list[dict]:
        seen: dict = {}
        for r in self.runs:
            seen.setdefault(r.point, r.values)
        return [seen[i] for i in sorted(seen)]

    def finished(self, run: RunSpec) -> bool:
        return is_finished(self.out / run.folder, run.toml)


def plan(scenario, grid=(), seeds: int = 1, overrides=(), out="sweep") -> Sweep:
    """Validate the sweep and resolve each of its runs; raise UserInputError on bad input.

    ``grid`` holds ``"KEY=V1,V2,..."`` strings (the ``--grid`` options), ``overrides`` the
    ``"KEY=VALUE"`` strings of ``--set``, ``out`` the sweep folder.

    Every grid point is validated through the scenario validator (one-line error naming the
    key) and its graph is built, before any run starts.
    """
    from asyncneurons.model.scenario import load_scenario, to_toml

    overrides = list(overrides)
    parsed = parse_grid(grid)
    for o in overrides:
        key = str(o).partition("=")[0].strip()
        if key in SWEEP_KEYS:
            raise UserInputError(f"--set {key}: set by the sweep itself (each run is one seed: "
                                 f"use --seeds N)")
        if key in dict(parsed):
            raise UserInputError(f"{key}: given both in --set and in --grid")
    if seeds < 1:
        raise UserInputError(f"--seeds: must be ≥ 1 (got {seeds})")
    sweep = Sweep(str(scenario), overrides, parsed, seeds, Path(out))
    values_per_key = [[(k, t) for t in texts] for k, texts in parsed]
    n_runs = seeds * math.prod(len(v) for v in values_per_key)
    if n_runs > MAX_RUNS:
        first = load_scenario(scenario, overrides)
        sizes = [4, *first.network.hidden, 2]
        check_sweep(n_runs, sum(a * b for a, b in zip(sizes, sizes[1:])),
                    first.experiment.runs * first.experiment.episodes * 100)
    for point, combo in enumerate(itertools.product(*values_per_key)):
        point_overrides = [f"{k}={t}" for k, t in combo]
        values = {k: parse_value(t) for k, t in combo}
        base = load_scenario(scenario, [*overrides, *point_overrides])
        label = point_label(values)
        for text in advice(base, check_graph(base)):
            sweep.advice.append(f"{label}: {text}" if values else text)
        for s in range(seeds):
            sc = load_scenario(scenario, [*overrides, *point_overrides,
                                          f"experiment.seed={s}", "experiment.runs=1"])
            text = to_toml(sc)
            ident = run_hash(text, s)
            sweep.runs.append(RunSpec(point, values, s, text, ident,
                                      f"runs/{label}/seed-{s}-{ident}"))
    return sweep


def check_graph(scenario):
    """Build the scenario's graph once, so that graph errors surface before any run; return it."""
    import numpy as np

    from asyncneurons import tasks
    from asyncneurons.engine.simulation import build_graph, run_seed

    env = tasks.make_env(scenario.env.id, scenario.env.max_episode_steps)
    n_obs, action = int(np.prod(env.observation_space.shape)), tasks.action_spec(env)
    g = build_graph(scenario, n_obs, action, run_seed(scenario.experiment.seed, 0))
    if scenario.network.graph:  # what a run would refuse later, found now
        from asyncneurons.model.graph import check_task
        check_task(g, scenario, n_obs, action)
    from asyncneurons.model.limits import check_scenario
    check_scenario(scenario, g.number_of_edges(), n_obs)
    return g


def is_finished(folder: Path, scenario_toml: str) -> bool:
    """A run folder whose summary says complete (or diverged) for this very scenario."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
        same = (folder / "scenario.toml").read_text() == scenario_toml
    except (OSError, ValueError):
        return False
    if not same or summary.get("status") not in FINISHED or not (folder / "metrics.csv").exists():
        return False
    return "events = true" not in scenario_toml or (folder / "events.csv").exists()


# ---------------------------------------------------------------------------------------------
# One run, on a worker: compute only, return everything the folder needs


def execute_run(scenario_toml: str) -> dict:
    """Simulate the run described by ``scenario_toml`` (runs = 1); return its rows and events.

    Runs on a worker (a local process or a Dask worker): it writes nothing.
    """
    from asyncneurons.study.runner import simulate_run
    from asyncneurons.model.scenario import parse_scenario

    s = parse_scenario(tomllib.loads(scenario_toml))
    rows: list = []
    start = time.perf_counter()
    try:
        events = simulate_run(s, 0, rows.append, s.record.events)
        status, message = "complete", ""
    except DivergenceError as e:
        events, status, message = [], "diverged", str(e)
    return {"rows": rows, "events": events, "status": status, "message": message,
            "wall_s": time.perf_counter() - start}


def write_run(folder: Path, scenario_toml: str, result: dict) -> None:
    """Write a run folder from a worker's result; summary.json (written last) marks it done."""
    rf = RunFolder(folder, scenario_toml)
    for row in result["rows"]:
        rf.episode(row)
    if result["events"]:
        write_events(folder / "events.csv", [result["events"]])
    rf.finish(result["status"], result["message"], result["wall_s"], 1)


# ---------------------------------------------------------------------------------------------
# Backends: each yields (run, result or exception) as runs finish


def _watch_parent(parent: int) -> None:
    """In a local worker: exit when the sweep process is gone (killed), instead of lingering;
    leave interrupts to the sweep process (a Ctrl-C reaches every process of the terminal)."""
    interrupts.worker_setup()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def _inline(todo):
    for run in todo:
        try:
            yield run, execute_run(run.toml)
        except Exception as e:  # noqa: BLE001 - reported per run, the sweep goes on
            yield run, e


def _local(todo, workers: int):
    ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                               initializer=_watch_parent, initargs=(os.getpid(),))
    try:
        # workers are started as runs are submitted: an interrupt then would cut one short while
        # it reads its start-up data from this process, so it waits until all are started
        with interrupts.starting_workers():
            futures = {pool.submit(execute_run, run.toml): run for run in todo}
        for f in as_completed(futures):
            try:
                yield futures[f], f.result()
            except Exception as e:  # noqa: BLE001
                yield futures[f], e
    finally:
        from asyncneurons.study.runner import stop_workers
        stop_workers(pool)  # a sweep stopped early leaves no worker behind (nor waits for one)


def _dask(todo, scheduler: str | None, n_workers: int | None, say):
    import distributed

    cluster = None
    if scheduler is None:
        cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                           processes=True, dashboard_address=None)
    try:
        with _client(distributed, scheduler or cluster) as client:
            say(f"dask: {client.scheduler.address}, "
                f"{len(client.scheduler_info()['workers'])} worker(s)")
            futures = {client.submit(execute_run, run.toml, key=f"asyncneurons-run-{run.ident}-"
                                     f"{run.seed}", pure=False): run for run in todo}
            for f in distributed.as_completed(list(futures)):
                try:
                    yield futures[f], f.result()
                except Exception as e:  # noqa: BLE001
                    yield futures[f], e
                f.release()
    finally:
        if cluster is not None:
            cluster.close()


CONNECT_TIMEOUT = 5.0  # seconds to reach a Dask scheduler before giving up


def check_scheduler(address: str) -> None:
    """Refuse a ``--scheduler`` that is not an address (before anything is written)."""
    import re
    if not re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?/?",
                        str(address)):
        raise UserInputError(f"--scheduler {address!r}: not a scheduler address "
                             f"(expected tcp://HOST:PORT)")


def _client(distributed, address):
    """A Dask client for ``address`` (a scheduler address or a local cluster); an address that
    does not answer as a Dask scheduler within CONNECT_TIMEOUT seconds is one line naming it."""
    if isinstance(address, str):
        check_scheduler(address)
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except Exception as e:  # noqa: BLE001 - whatever the address answered, one line
        raise UserInputError(f"--scheduler {address}: no Dask scheduler answered within "
                             f"{CONNECT_TIMEOUT:g} s ({type(e).__name__}); check the address and that "
                             f"the scheduler runs") from None


# ---------------------------------------------------------------------------------------------
# The sweep


@dataclass
class SweepResult:
    sweep: Sweep
    skipped: int
    ran: int
    failed: list  # (run, message)
    summary: object  # pandas DataFrame


def run_sweep(sweep: Sweep, *, workers: int = 2, scheduler: str | None = None,
              dask_local: int | None = None, progress: bool = True, say=None) -> SweepResult:
    """Run every unfinished run of ``sweep``, rewriting the tables as each run finishes; return
    what happened.

    ``workers``: local worker processes (1: in this process); ``scheduler``: the address of a
    Dask scheduler; ``dask_local``: start a local Dask cluster of that many worker processes.
    ``say(text)`` receives progress messages (default: stderr).
    """
    from tqdm import tqdm

    say = say or (lambda text: tqdm.write(text, file=sys.stderr))
    out = check_dir(sweep.out)
    with FolderLock(out, "sweep"), interrupts.interruptible(), writing(out):
        return _run_locked(sweep, workers, scheduler, dask_local, progress, say)


def _run_locked(sweep: Sweep, workers, scheduler, dask_local, progress, say) -> SweepResult:
    from tqdm import tqdm

    out = sweep.out
    # seed by seed: a sweep stopped partway has covered every grid point with as many seeds as it could
    todo = sorted((r for r in sweep.runs if not sweep.finished(r)), key=lambda r: (r.seed, r.point))
    skipped = len(sweep.runs) - len(todo)
    n_points = len(sweep.points)
    say(f"sweep: {len(sweep.runs)} runs ({n_points} point{'s' * (n_points != 1)} × "
        f"{sweep.seeds} seed{'s' * (sweep.seeds != 1)}), {skipped} already finished; "
        f"writing {out}")
    write_meta(sweep)
    failed: list = []
    if todo:
        if scheduler or dask_local:
            results = _dask(todo, scheduler, dask_local, say)
        elif workers <= 1 or len(todo) == 1:
            results = _inline(todo)
        else:
            results = _local(todo, workers)
        bar = tqdm(total=len(sweep.runs), initial=skipped, unit="run", desc="sweep",
                   disable=not progress, dynamic_ncols=True, file=sys.stderr)
        try:
            for run, result in results:
                if isinstance(result, BaseException):
                    failed.append((run, f"{type(result).__name__}: {result}".splitlines()[0]))
                    bar.write(f"run {run.folder} failed: {failed[-1][1]}", file=sys.stderr)
                else:
                    write_run(out / run.folder, run.toml, result)
                    write_meta(sweep)  # the tables hold every finished run, even if the sweep is killed
                    write_tables(sweep)
                bar.update(1)
        except KeyboardInterrupt:  # the tables already hold every run finished so far
            interrupts.ignore()  # a second Ctrl-C must not cut the clean-up short
            bar.close()
            raise
        finally:
            results.close()
        bar.close()
    write_meta(sweep)
    summary = write_tables(sweep)
    return SweepResult(sweep, skipped, len(todo) - len(failed), failed, summary)


def write_meta(sweep: Sweep) -> None:
    """sweep.json: the sweep's definition and the status of each run."""
    from asyncneurons import __version__

    def status(run):
        try:
            return json.loads((sweep.out / run.folder / "summary.json").read_text())["status"]
        except (OSError, ValueError, KeyError):
            return "pending"

    meta = {
        "asyncneurons": __version__,
        "scenario": os.path.abspath(sweep.scenario),
        "overrides": list(sweep.overrides),
        "grid": {k: v for k, v in sweep.grid},
        "seeds": sweep.seeds,
        "runs": [{"point": r.point, "values": {k: table_value(v) for k, v in r.values.items()},
                  "seed": r.seed, "id": r.ident, "folder": r.folder, "status": status(r)}
                 for r in sweep.runs],
    }
    atomic_write(sweep.out / "sweep.json", json.dumps(meta, indent=2) + "\n")


def write_tables(sweep: Sweep):
    """Write sweep.csv and summary.csv from the finished run folders; return the summary."""
    import numpy as np
    import pandas as pd

    keys = sweep.keys
    frames, summary_rows = [], []
    by_point: dict = {}
    for run in sweep.runs:
        by_point.setdefault(run.point, []).append(run)
    for point in sorted(by_point):
        runs = by_point[point]
        cells = {k: table_value(v) for k, v in runs[0].values.items()}
        per_seed, diverged, episodes = [], 0, 0
        for run in runs:
            folder = sweep.out / run.folder
            if not sweep.finished(run):
                continue
            m = pd.read_csv(folder / "metrics.csv")
            m = m.sort_values("episode", kind="stable")
            frame = pd.DataFrame({**{k: [cells[k]] * len(m) for k in keys},
                                  "seed": run.seed, **{c: m[c].to_numpy() for c in METRICS}})
            frames.append(frame)
            status = json.loads((folder / "summary.json").read_text())["status"]
            diverged += status == "diverged"
            episodes = max(episodes, len(m))
            per_seed += [{"run": run.seed, "return": float(x)} for x in m["return"]]
        s = summarize(per_seed)
        summary_rows.append({**cells, "n_seeds": len(s["runs"]),
                             "mean": s["mean"] if s["mean"] is not None else np.nan,
                             "std": s["std"] if s["std"] is not None else np.nan,
                             "episodes": episodes, "n_diverged": diverged})
    columns = [*keys, "seed", *METRICS]
    tidy = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    summary = pd.DataFrame(summary_rows, columns=[*keys, "n_seeds", "mean", "std", "episodes",
                                                  "n_diverged"])
    atomic_write(sweep.out / "sweep.csv", tidy[columns].to_csv(index=False))
    atomic_write(sweep.out / "summary.csv", summary.to_csv(index=False))
    return summary
