"""Run an experiment: its independent runs, on one process or a pool, into a run folder; and
resume one that was interrupted.

Runs are independent simulations seeded from ``[experiment] seed`` and the run index, so the
numbers do not depend on how many worker processes share them. Each run appends its episodes
to ``episodes/run-R.csv`` as they end (the durable record) and, at episode boundaries at most
every ``checkpoint_seconds`` of wall time, writes a checkpoint (:mod:`asyncneurons.engine.checkpoint`;
runs simulated together as replicas write one for the chunk, between two steps).
``resume_experiment`` keeps finished runs, continues unfinished ones from their last checkpoint
(dropping the episodes recorded after it, which the run then repeats identically) and restarts
runs that have none. The result is the same as an uninterrupted run's. Runs that record their
events (``[record] events``) take no checkpoints and start over when resumed, so that
``events.csv`` stays whole.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from asyncneurons.engine import checkpoint, interrupts
from asyncneurons.errors import DivergenceError, UserInputError
from asyncneurons.study.folders import (FolderError, FolderLock, check_dir, open_write, subdir, write_atomic,
                                        writing)
from asyncneurons.study.provenance import stack
from asyncneurons.study.recorder import METRIC_COLUMNS, OUTPUTS, RunFolder, write_events
from asyncneurons.model.scenario import load_scenario, to_toml
from asyncneurons.engine.simulation import Simulation

CHECKPOINTS = "checkpoints"
EPISODES = "episodes"


def simulate_run(scenario, run: int, on_episode=None, record_events: bool = False, *, folder=None,
                 resume: bool = False, checkpoint_seconds: float = 30.0):
    """Simulate one run; return its event rows when recording (else an empty list).

    With ``folder``, the run keeps its episodes in ``folder/episodes/run-R.csv`` and writes
    checkpoints to ``folder/checkpoints``; with ``resume`` it continues from its checkpoint.
    """
    stack()  # the checkout this process simulates with, taken now: it may move on during a long run
    events: list = []
    on_event = None
    if record_events:
        def on_event(t, unit, kind, value, wave):
            events.append((run, repr(float(t)), unit, kind, repr(float(value)), wave))
    if scenario.learning.batch > 1:  # batched single-step tasks: no time, no checkpoints
        from asyncneurons.engine.supervised import SupervisedRun
        if folder is None:
            SupervisedRun(scenario, run, on_episode=on_episode).run()
            return events
        return _supervised_into(folder, scenario, run, on_episode)
    if folder is None:
        Simulation(scenario, run, on_episode=on_episode, on_event=on_event).run()
        return events
    folder = Path(folder)
    rows_path = subdir(folder, EPISODES) / f"run-{run}.csv"
    # a run that records its events starts over when resumed, so that events.csv stays whole
    state = checkpoint.load(folder / CHECKPOINTS, run, scenario) if resume and not record_events else None
    kept = _read_rows(rows_path, run)[:state[0]["episode"]] if state else []
    with writing(rows_path), open_write(rows_path, newline="") as f:
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

        sim = checkpoint.restoring(lambda: Simulation(scenario, run, on_episode=episode, on_event=on_event,
                                                      resume=state), state, folder / CHECKPOINTS)
        if scenario.record.diagnostics:  # [record] diagnostics: a row per episode from the run's state
            from asyncneurons.study.diagnostics import Writer
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
    from asyncneurons.engine.supervised import SupervisedRun
    path = subdir(Path(folder), EPISODES) / f"run-{run}.csv"
    with writing(path), open_write(path, newline="") as f:
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
    """Simulate several runs together (:mod:`asyncneurons.engine.replicas`); each keeps its own
    ``episodes/run-R.csv``. The chunk writes a checkpoint at most every ``checkpoint_seconds``
    into ``folder/checkpoints``; with ``resume`` it continues from it (the episodes recorded after
    it are dropped and repeated identically). Returns the replicas as they ended."""
    from asyncneurons.engine.replicas import Replicas
    stack()  # (as simulate_run)
    folder = Path(folder)
    subdir(folder, EPISODES)
    found = checkpoint.load_replicas(folder / CHECKPOINTS, runs, scenario) if resume else None
    rep = Replicas(scenario, runs)
    loop = checkpoint.restoring(lambda: checkpoint.restore_replicas(rep, *found), found,
                                folder / CHECKPOINTS) if found else None
    episodes = scenario.experiment.episodes
    kept = {r: _read_rows(folder / EPISODES / f"run-{r}.csv", r)[:min(int(loop["episode"][i]), episodes)]
            if loop else [] for i, r in enumerate(runs)}
    files = {}
    with writing(folder / EPISODES):
        for r in runs:
            files[r] = open_write(folder / EPISODES / f"run-{r}.csv", newline="")
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
        with writing(folder / EPISODES):
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
    from asyncneurons.engine.replicas import supports
    size = scenario.engine.replicas
    if size <= 1 or len(todo) <= 1 or scenario.record.events or scenario.record.diagnostics or not supports(scenario):
        return [[r] for r in todo]
    per = min(size, -(-len(todo) // max(1, workers)))
    return [todo[i:i + per] for i in range(0, len(todo), per)]


def _read_rows(path: Path, run: int | None = None) -> list:
    """The episode rows of ``path`` in order: the first row that is cut short (by a kill), not a
    number, or out of place (not the next episode of ``run``) ends the record, and it and what
    follows are dropped (a resumed run repeats them identically)."""
    try:
        with open(path, newline="", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]  # a last line without its newline was cut short
    out = []
    for r in csv.DictReader(text.splitlines()):
        try:
            row = {"run": int(r["run"]), "episode": int(r["episode"]), "return": float(r["return"]),
                   "length": int(r["length"]), "sim_time_ms": float(r["sim_time_ms"]),
                   "wall_s": float(r["wall_s"]), "stale_actions": int(r["stale_actions"])}
        except (KeyError, TypeError, ValueError):
            break
        if (row["episode"] != len(out) or (run is not None and row["run"] != run)
                or not math.isfinite(row["sim_time_ms"]) or row["length"] < 0):
            break
        out.append(row)
    return out


_QUEUE = None


def _init_worker(q, parent: int):
    global _QUEUE
    _QUEUE = q
    interrupts.worker_setup()  # the main process decides what an interrupt does
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


def stop_workers(pool, grace: float = 5.0) -> None:
    """End every worker process of ``pool`` now and wait until each is gone, so that none writes
    into the folder after the command has ended: SIGTERM (a worker's rows are flushed whole, its
    checkpoints committed by a rename, so nothing it leaves is half-written), then SIGKILL after
    ``grace`` seconds for any that lingers."""
    with interrupts.held():  # an interrupt arriving now is handled once every worker is gone
        _stop(pool, grace)


def quiet_pool_thread(args) -> bool:
    """Whether a thread's failure is a stopped pool's own, not to be printed: an OSError (a broken
    pipe, a closed handle) in a pool's feeder or manager thread, once its workers were stopped
    and the pipes they held are gone."""
    thread = type(args.thread).__name__ if args.thread is not None else ""
    name = getattr(args.thread, "name", "") or ""
    return issubclass(args.exc_type, OSError) and (name.startswith("QueueFeederThread")
                                                  or thread == "_ExecutorManagerThread")


def _silence_stopped_pools() -> None:
    """From now on, :func:`quiet_pool_thread` failures are not printed (the command is stopping;
    it ends in one line, never a traceback); every other thread failure is, as before."""
    previous = threading.excepthook
    if getattr(previous, "quiets_pools", False):
        return

    def hook(args):
        if not quiet_pool_thread(args):
            previous(args)
    hook.quiets_pools = True
    threading.excepthook = hook


def _stop(pool, grace: float) -> None:
    _silence_stopped_pools()
    procs = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)  # the pool forgets it when shut down
    for p in procs:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(grace)
    pool.shutdown(wait=False, cancel_futures=True)
    # The pool's manager thread closes its wake-up pipe as it ends; the interpreter's exit hook for
    # pools writes to that pipe without the pool's lock, so a thread still ending at exit can
    # make that write fail on the closed pipe, printed as a traceback. Wait for it here (the pool
    # drops its reference to the thread in shutdown, so it was taken before).
    if manager is not None and manager is not threading.current_thread():
        manager.join(grace)


def run_experiment(scenario, out, *, workers: int = 1, progress=None, resume: bool = False,
                   checkpoint_seconds: float = 30.0) -> dict:
    """Run every run of the scenario into the folder ``out``; return the summary.

    ``progress(row)`` is called in the main process after each finished episode. SIGINT and
    SIGTERM stop the runs, keep every finished episode and mark the summary incomplete.
    """
    out = check_dir(Path(out))
    stack()  # (the summary's stack, written by this process at the end: the checkout as the runs start)
    with FolderLock(out):
        return _run_locked(scenario, out, workers, progress, resume, checkpoint_seconds)


def _run_locked(scenario, out: Path, workers: int, progress, resume: bool, checkpoint_seconds: float) -> dict:
    runs, episodes = scenario.experiment.runs, scenario.experiment.episodes
    scenario, toml, graph = portable(scenario, out)
    if not resume:
        check_fresh(out, toml, graph)
    subdir(out, EPISODES)
    done_rows = {r: _read_rows(out / EPISODES / f"run-{r}.csv", r) for r in range(runs)} if resume else {}
    finished = {r for r, rows in done_rows.items() if len(rows) >= episodes}
    todo = [r for r in range(runs) if r not in finished]
    jobs = _chunks(scenario, todo, workers) if not resume else _resumed_chunks(scenario, out, todo, workers)
    _check_targets(out, todo, resume)  # a link where a file will be written: refused before one is
    if resume:
        _check_checkpoints(scenario, out, jobs)  # a bad checkpoint is refused before a row moves
    before = _previous_wall(out) if resume else 0.0
    if graph is not None:  # the graph file travels with the run folder
        write_atomic(out / ("graph" + Path(graph).suffix), Path(graph).read_bytes(), binary=True)
    folder = RunFolder(out, toml, live=not resume)
    planned = (runs, episodes)
    record = scenario.record.events
    start = time.perf_counter()
    wall = lambda: before + time.perf_counter() - start  # noqa: E731 - a resumed run's parts add up
    event_chunks: dict = {}
    with interrupts.interruptible():
        status, message = _simulate_all(scenario, out, jobs, folder, workers, progress, resume,
                                        checkpoint_seconds, event_chunks, planned, wall)
    if record:
        write_events(out / "events.csv", [event_chunks[r] for r in sorted(event_chunks)])
    return _finish_from_files(folder, out, runs, status, message, wall(), planned)


def _simulate_all(scenario, out, jobs, folder, workers, progress, resume, checkpoint_seconds,
                  event_chunks, planned, wall):
    """Simulate every job (a run or a chunk of replicas), inline or on a pool of worker
    processes; return (status, message). Interrupted, it stops every worker, writes what the
    finished episodes say, and raises KeyboardInterrupt."""
    runs, record = scenario.experiment.runs, scenario.record.events
    status, message = "complete", ""

    def on_row(row):
        folder.episode(row)
        if progress is not None:
            progress(row)

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
            pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                                       initializer=_init_worker, initargs=(q, os.getpid()))
            try:
                with interrupts.starting_workers():  # every worker starts (and is known) first
                    futures = {pool.submit(_worker, scenario, runs_, record, out, resume,
                                           checkpoint_seconds): runs_[0] for runs_ in jobs}
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
                pool.shutdown(wait=True)
            except BaseException:
                interrupts.ignore()  # a second Ctrl-C must not cut the clean-up short
                stop_workers(pool)
                raise
    except KeyboardInterrupt:
        _finish_from_files(folder, out, runs, "incomplete", "interrupted", wall(), planned)
        raise
    except BaseException as e:
        with contextlib.suppress(Exception):
            _finish_from_files(folder, out, runs, "incomplete", f"failed: {e}", wall(), planned)
        raise
    return status, message


def portable(scenario, out: Path):
    """The scenario a run folder keeps, so that the folder can move: a graph file is copied into
    it (``graph.graphml`` or ``graph.json``) and the resolved scenario names the copy by a path
    relative to the folder. Returns (the scenario to run, reading the copy; its TOML text; the
    graph file to copy in, or None when there is none or it is the copy already). Nothing is
    written here: the folder is checked first."""
    graph = scenario.network.graph
    if graph is None:
        return scenario, to_toml(scenario), None
    copy = out / ("graph" + Path(graph).suffix)
    same = os.path.lexists(copy) and not os.path.islink(copy) and os.path.samefile(graph, copy)
    net = scenario.network
    here = scenario.model_copy(update={"network": net.model_copy(update={"graph": str(copy.resolve())})})
    kept = scenario.model_copy(update={"network": net.model_copy(update={"graph": copy.name})})
    return here, to_toml(kept), None if same else graph


def check_fresh(out: Path, toml: str, graph=None) -> None:
    """Refuse to start a run in a folder that holds another scenario's run (a graph file of other
    content counts as another scenario), or files of the names a run writes that are not a run's:
    nothing there may be overwritten by accident."""
    try:
        held = (out / "scenario.toml").read_text()
    except FileNotFoundError:
        held = None
    except (OSError, UnicodeDecodeError):
        held = ""
    if held is None:
        ours = [n for n in (*OUTPUTS, EPISODES, CHECKPOINTS, "sweep.json") if os.path.lexists(out / n)]
        if ours:
            raise FolderError(f"{out}: holds {ours[0]} but is not a run folder; choose another --out")
        return
    copy = out / ("graph" + Path(graph).suffix) if graph is not None else None
    if held != toml or (copy is not None and os.path.lexists(copy)
                        and (copy.is_symlink() or not copy.is_file()
                             or copy.read_bytes() != Path(graph).read_bytes())):
        raise FolderError(f"{out}: holds the run of another scenario; continue it with "
                          f"asyncneurons run --resume {out}, or choose another --out")


def _check_targets(out: Path, todo: list, resume: bool) -> None:
    """Refuse, before anything is written, a link or a folder where a run's file will be written
    in place (the files replaced through a rename, as metrics.csv is by a resume, replace a link
    and never follow it)."""
    if os.path.lexists(out / CHECKPOINTS):
        subdir(out, CHECKPOINTS)
    for path in [out / EPISODES / f"run-{r}.csv" for r in todo] + ([] if resume else [out / "metrics.csv"]):
        if os.path.islink(path):
            raise FolderError(f"{path}: is a link; links inside a run folder are not followed (remove it)")
        if os.path.isdir(path):
            raise FolderError(f"{path}: is a folder where a file is written (remove it)")


def _check_checkpoints(scenario, out: Path, jobs: list) -> None:
    if scenario.record.events:
        return  # runs that record their events start over
    for runs_ in jobs:
        if len(runs_) > 1:
            checkpoint.load_replicas(out / CHECKPOINTS, runs_, scenario)
        else:
            checkpoint.load(out / CHECKPOINTS, runs_[0], scenario)


def _previous_wall(out: Path) -> float:
    """Wall seconds the earlier parts of a resumed experiment took (0 when unknown)."""
    try:
        wall = json.loads((out / "summary.json").read_text()).get("wall_s", 0.0)
        return float(wall) if isinstance(wall, (int, float)) and math.isfinite(wall) and wall >= 0 else 0.0
    except (OSError, ValueError, AttributeError):
        return 0.0


def _finish_from_files(folder: RunFolder, out: Path, runs: int, status: str, message: str, wall: float,
                       planned=None) -> dict:
    """metrics.csv and summary.json from the runs' own episode files (the durable record).

    A run is reported complete only if every run holds exactly its episodes, numbered from 0
    without a gap; then the checkpoints, no longer needed, are removed."""
    rows = []
    for r in range(runs):
        rows += _read_rows(out / EPISODES / f"run-{r}.csv", r)
    if status == "complete" and planned is not None:
        missing = incomplete_runs(rows, *planned)
        if missing:
            status, message = "incomplete", f"run {missing[0]} lacks episodes; continue with --resume"
    folder.rows = rows
    summary = folder.finish(status, message, wall, runs)
    if status in ("complete", "diverged"):
        remove_checkpoints(out)
    return summary


def incomplete_runs(rows, runs: int, episodes: int) -> list:
    """The runs whose rows are not exactly episodes 0 … episodes-1."""
    per: dict = {r: [] for r in range(runs)}
    for row in rows:
        per.setdefault(row["run"], []).append(row["episode"])
    return [r for r, eps in sorted(per.items()) if eps != list(range(episodes))]


def remove_checkpoints(out: Path) -> None:
    """Remove the checkpoints of a finished experiment (only the files checkpoints are made of)."""
    folder = Path(out) / CHECKPOINTS
    if not folder.is_dir() or folder.is_symlink():
        return
    for f in folder.iterdir():
        if f.name.startswith(("run-", "replicas-")) and f.suffix in (".json", ".npz", ".tmp"):
            with contextlib.suppress(OSError):
                f.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def resume_experiment(out, *, workers: int = 1, progress=None, checkpoint_seconds: float = 30.0):
    """Continue the experiment in the run folder ``out``; return (scenario, summary)."""
    out = Path(out)
    if not (out / "scenario.toml").is_file():
        raise UserInputError(f"{out}: not a run folder (no scenario.toml)")
    scenario = load_scenario(out / "scenario.toml")
    return scenario, run_experiment(scenario, out, workers=workers, progress=progress, resume=True,
                                    checkpoint_seconds=checkpoint_seconds)
