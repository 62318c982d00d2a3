"""Run an experiment: its independent runs, on one process or a pool, into a run folder; and
resume one that was interrupted.

Runs are independent simulations seeded from ``[experiment] seed`` and the run index, so the
numbers do not depend on how many worker processes share them. Each run appends its episodes
to ``episodes/run-R.csv`` as they end (the durable record) and, at episode boundaries at most
every ``checkpoint_seconds`` of wall time, writes a checkpoint (:mod:`asyncneurons.checkpoint`;
runs simulated together as replicas write one for the chunk, between two steps).
``resume_experiment`` keeps finished runs, continues unfinished ones from their last checkpoint
(dropping the episodes recorded after it, which the run then repeats identically) and restarts
runs that have none. The result is the same as an uninterrupted run's. Runs that record their
events (``[record] events``) take no checkpoints and start over when resumed, so that
``events.csv`` stays whole.
"""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from . import checkpoint
from .errors import DivergenceError, UserInputError
from .recorder import METRIC_COLUMNS, RunFolder, write_events
from .scenario import load_scenario, to_toml
from .simulation import Simulation

CHECKPOINTS = "checkpoints"
EPISODES = "episodes"


def simulate_run(scenario, run: int, on_episode=None, record_events: bool = False, *, folder=None,
                 resume: bool = False, checkpoint_seconds: float = 30.0):
    """Simulate one run; return its event rows when recording (else an empty list).

    With ``folder``, the run keeps its episodes in ``folder/episodes/run-R.csv`` and writes
    checkpoints to ``folder/checkpoints``; with ``resume`` it continues from its checkpoint.
    """
    events: list = []
    on_event = None
    if record_events:
        def on_event(t, unit, kind, value, wave):
            events.append((run, repr(float(t)), unit, kind, repr(float(value)), wave))
    if scenario.learning.batch > 1:  # batched single-step tasks: no time, no checkpoints
        from .supervised import SupervisedRun
        if folder is None:
            SupervisedRun(scenario, run, on_episode=on_episode).run()
            return events
        return _supervised_into(folder, scenario, run, on_episode)
    if folder is None:
        Simulation(scenario, run, on_episode=on_episode, on_event=on_event).run()
        return events
    folder = Path(folder)
    rows_path = folder / EPISODES / f"run-{run}.csv"
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    # a run that records its events starts over when resumed, so that events.csv stays whole
    state = checkpoint.load(folder / CHECKPOINTS, run, scenario) if resume and not record_events else None
    kept = _read_rows(rows_path)[:state[0]["episode"]] if state else []
    with open(rows_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        w.writeheader()
        for row in kept:
            w.writerow(row)
        f.flush()
        last = [time.perf_counter()]

        def episode(row):
            w.writerow({k: row[k] for k in METRIC_COLUMNS})
            f.flush()
            if on_episode is not None:
                on_episode(row)

        sim = Simulation(scenario, run, on_episode=episode, on_event=on_event, resume=state)
        if scenario.record.diagnostics:  # [record] diagnostics: a row per episode from the run's state
            from .diagnostics import Writer
            diag = Writer(folder, run, sim.n_layers, kept=len(kept))
            sim.on_episode = lambda row: (diag.episode(sim, row), episode(row))

        def save(proc):
            if not record_events and time.perf_counter() - last[0] >= checkpoint_seconds:
                os.fsync(f.fileno())
                checkpoint.save(sim, proc, folder / CHECKPOINTS, run)
                last[0] = time.perf_counter()
        sim.checkpoint = save
        try:
            sim.run()
        finally:
            if scenario.record.diagnostics:
                diag.close()
    return events


def _supervised_into(folder, scenario, run: int, on_episode) -> list:
    from .supervised import SupervisedRun
    path = Path(folder) / EPISODES / f"run-{run}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        w.writeheader()

        def episode(row):
            w.writerow({k: row[k] for k in METRIC_COLUMNS})
            f.flush()
            if on_episode is not None:
                on_episode(row)
        SupervisedRun(scenario, run, on_episode=episode).run()
    return []


def simulate_replicas(scenario, runs, on_episode=None, *, folder, resume: bool = False,
                      checkpoint_seconds: float = 30.0):
    """Simulate several runs together (:mod:`asyncneurons.replicas`); each keeps its own
    ``episodes/run-R.csv``. The chunk writes a checkpoint at most every ``checkpoint_seconds``
    into ``folder/checkpoints``; with ``resume`` it continues from it (the episodes recorded after
    it are dropped and repeated identically). Returns the replicas as they ended."""
    from .replicas import Replicas
    folder = Path(folder)
    (folder / EPISODES).mkdir(parents=True, exist_ok=True)
    found = checkpoint.load_replicas(folder / CHECKPOINTS, runs, scenario) if resume else None
    rep = Replicas(scenario, runs)
    loop = checkpoint.restore_replicas(rep, *found) if found else None
    episodes = scenario.experiment.episodes
    kept = {r: _read_rows(folder / EPISODES / f"run-{r}.csv")[:min(int(loop["episode"][i]), episodes)]
            if loop else [] for i, r in enumerate(runs)}
    files = {r: open(folder / EPISODES / f"run-{r}.csv", "w", newline="") for r in runs}
    try:
        writers = {r: csv.DictWriter(f, fieldnames=METRIC_COLUMNS) for r, f in files.items()}
        for r, w in writers.items():
            w.writeheader()
            w.writerows(kept[r])
            files[r].flush()

        def episode(row):
            writers[row["run"]].writerow({k: row[k] for k in METRIC_COLUMNS})
            files[row["run"]].flush()
            if on_episode is not None:
                on_episode(row)
        last = [time.perf_counter()]

        def save(state):
            if time.perf_counter() - last[0] >= checkpoint_seconds:
                for f in files.values():
                    os.fsync(f.fileno())
                checkpoint.save_replicas(rep, state, folder / CHECKPOINTS)
                last[0] = time.perf_counter()
        rep.on_episode, rep.checkpoint = episode, save
        rep.run(resume=loop)
    finally:
        for f in files.values():
            f.close()
    return rep


def _resumed_chunks(scenario, out: Path, todo: list, workers: int) -> list:
    """The jobs of a resumed experiment: every replica chunk that left a checkpoint and still has
    an unfinished run, as it was (a replica that had finished its episodes stays in its chunk,
    whose checkpoint holds it), then the other unfinished runs as :func:`_chunks` groups them."""
    jobs, left = [], list(todo)
    if scenario.engine.replicas > 1:
        for meta in sorted((out / CHECKPOINTS).glob(checkpoint.replicas_name(["*"]) + ".json")):
            runs = [int(r) for r in meta.stem.split("-")[1:] if r.isdigit()]
            taken = {r for job in jobs for r in job}
            if (runs and set(runs) & set(left) and taken.isdisjoint(runs)
                    and all(r < scenario.experiment.runs for r in runs)):
                jobs.append(runs)
                left = [r for r in left if r not in runs]
    return jobs + _chunks(scenario, left, workers)


def _chunks(scenario, todo: list, workers: int) -> list:
    """Runs grouped for replicas (as many chunks as workers, at most ``[engine] replicas`` each),
    or one run per job when replicas do not apply."""
    from .replicas import supports
    size = scenario.engine.replicas
    if size <= 1 or len(todo) <= 1 or scenario.record.events or scenario.record.diagnostics or not supports(scenario):
        return [[r] for r in todo]
    per = min(size, -(-len(todo) // max(1, workers)))
    return [todo[i:i + per] for i in range(0, len(todo), per)]


def _read_rows(path: Path) -> list:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        try:
            out.append({"run": int(r["run"]), "episode": int(r["episode"]), "return": float(r["return"]),
                        "length": int(r["length"]), "sim_time_ms": float(r["sim_time_ms"]),
                        "wall_s": float(r["wall_s"]), "stale_actions": int(r["stale_actions"])})
        except (KeyError, TypeError, ValueError):
            break  # a row cut short by a kill: it and what follows are dropped
    return out


_QUEUE = None


def _init_worker(q, parent: int):
    global _QUEUE
    _QUEUE = q
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides what an interrupt does
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """A worker must not outlive a killed experiment: it would keep writing the run folder
    while a resumed experiment writes it too."""
    try:  # Linux: the kernel kills the worker the moment its parent dies
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        def watch():
            while os.getppid() == parent:
                time.sleep(0.2)
            os._exit(1)
        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _worker(scenario, runs: list, record_events: bool, folder, resume, checkpoint_seconds):
    try:
        if len(runs) > 1:
            simulate_replicas(scenario, runs, _QUEUE.put, folder=folder, resume=resume,
                              checkpoint_seconds=checkpoint_seconds)
            return "ok", [], ""
        return "ok", simulate_run(scenario, runs[0], _QUEUE.put, record_events, folder=folder, resume=resume,
                                  checkpoint_seconds=checkpoint_seconds), ""
    except DivergenceError as e:
        return "diverged", [], str(e)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def run_experiment(scenario, out, *, workers: int = 1, progress=None, resume: bool = False,
                   checkpoint_seconds: float = 30.0) -> dict:
    """Run every run of the scenario into the folder ``out``; return the summary.

    ``progress(row)`` is called in the main process after each finished episode. SIGINT and
    SIGTERM stop the runs, keep every finished episode and mark the summary incomplete.
    """
    out = Path(out)
    runs, episodes = scenario.experiment.runs, scenario.experiment.episodes
    done_rows = {r: _read_rows(out / EPISODES / f"run-{r}.csv") for r in range(runs)} if resume else {}
    finished = {r for r, rows in done_rows.items() if len(rows) >= episodes}
    scenario, resolved = portable(scenario, out)
    folder = RunFolder(out, resolved)
    for r in sorted(finished):
        for row in done_rows[r][:episodes]:
            folder.episode(row)
    todo = [r for r in range(runs) if r not in finished]
    record = scenario.record.events
    start = time.perf_counter()
    status, message, event_chunks = "complete", "", {}
    # explicit handlers: a process started in the background may inherit SIGINT ignored
    old_term = signal.signal(signal.SIGTERM, _terminate)
    old_int = signal.signal(signal.SIGINT, _terminate)

    def on_row(row):
        folder.episode(row)
        if progress is not None:
            progress(row)

    jobs = _chunks(scenario, todo, workers) if not resume else _resumed_chunks(scenario, out, todo, workers)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for runs_ in jobs:
                try:
                    if len(runs_) > 1:
                        simulate_replicas(scenario, runs_, on_row, folder=out, resume=resume,
                                          checkpoint_seconds=checkpoint_seconds)
                    else:
                        event_chunks[runs_[0]] = simulate_run(scenario, runs_[0], on_row, record, folder=out,
                                                              resume=resume, checkpoint_seconds=checkpoint_seconds)
                except DivergenceError as e:
                    status, message = "diverged", str(e)
                    break
        else:
            ctx = mp.get_context("fork")
            q = ctx.Queue()
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                                     initializer=_init_worker, initargs=(q, os.getpid())) as pool:
                futures = {pool.submit(_worker, scenario, runs_, record, out, resume, checkpoint_seconds): runs_[0]
                           for runs_ in jobs}
                pending = set(futures)
                while pending:
                    try:
                        on_row(q.get(timeout=0.2))
                    except queue_mod.Empty:
                        pass
                    for f in [f for f in pending if f.done()]:
                        pending.discard(f)
                        st, ev, msg = f.result()
                        event_chunks[futures[f]] = ev
                        if st == "diverged" and status != "diverged":
                            status, message = "diverged", msg
                while True:
                    try:
                        on_row(q.get(timeout=0.5))
                    except queue_mod.Empty:
                        break
    except KeyboardInterrupt:
        _finish_from_files(folder, out, runs, "incomplete", "interrupted", time.perf_counter() - start)
        raise
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
    if record:
        write_events(out / "events.csv", [event_chunks[r] for r in sorted(event_chunks)])
    return _finish_from_files(folder, out, runs, status, message, time.perf_counter() - start)


def portable(scenario, out: Path):
    """The scenario a run folder keeps, so that the folder can move: a graph file is copied into
    it (``graph.graphml`` or ``graph.json``) and the resolved scenario names the copy by a path
    relative to the folder. Returns (the scenario to run, reading the copy; its TOML text)."""
    import shutil

    graph = scenario.network.graph
    if graph is None:
        return scenario, to_toml(scenario)
    copy = out / ("graph" + Path(graph).suffix)
    out.mkdir(parents=True, exist_ok=True)
    if not copy.exists() or not os.path.samefile(graph, copy):
        shutil.copyfile(graph, copy)
    net = scenario.network
    here = scenario.model_copy(update={"network": net.model_copy(update={"graph": str(copy.resolve())})})
    kept = scenario.model_copy(update={"network": net.model_copy(update={"graph": copy.name})})
    return here, to_toml(kept)


def _finish_from_files(folder: RunFolder, out: Path, runs: int, status: str, message: str, wall: float) -> dict:
    """metrics.csv and summary.json from the runs' own episode files (the durable record)."""
    rows = []
    for r in range(runs):
        rows += _read_rows(out / EPISODES / f"run-{r}.csv")
    folder.rows = rows
    return folder.finish(status, message, wall, runs)


def resume_experiment(out, *, workers: int = 1, progress=None, checkpoint_seconds: float = 30.0):
    """Continue the experiment in the run folder ``out``; return (scenario, summary)."""
    out = Path(out)
    if not (out / "scenario.toml").is_file():
        raise UserInputError(f"{out}: not a run folder (no scenario.toml)")
    scenario = load_scenario(out / "scenario.toml")
    return scenario, run_experiment(scenario, out, workers=workers, progress=progress, resume=True,
                                    checkpoint_seconds=checkpoint_seconds)
