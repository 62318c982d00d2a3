"""Run an experiment: its independent runs, on one process or a pool, into a run folder.

Runs are independent simulations seeded from ``[experiment] seed`` and the run index, so the
numbers do not depend on how many worker processes share them.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .errors import DivergenceError
from .recorder import RunFolder, write_events
from .scenario import to_toml
from .simulation import Simulation


def simulate_run(scenario, run: int, on_episode=None, record_events: bool = False):
    """Simulate one run; return its event rows when recording (else an empty list)."""
    events: list = []
    on_event = None
    if record_events:
        def on_event(t, unit, kind, value, wave):
            events.append((run, repr(float(t)), unit, kind, repr(float(value)), wave))
    Simulation(scenario, run, on_episode=on_episode, on_event=on_event).run()
    return events


_QUEUE = None


def _init_worker(q):
    global _QUEUE
    _QUEUE = q


def _worker(scenario, run: int, record_events: bool):
    try:
        return "ok", simulate_run(scenario, run, _QUEUE.put, record_events), ""
    except DivergenceError as e:
        return "diverged", [], str(e)


def run_experiment(scenario, out: str | Path, *, workers: int = 1, progress=None) -> dict:
    """Run every run of the scenario into the folder ``out``; return the summary.

    ``progress(row)`` is called in the main process after each finished episode.
    """
    folder = RunFolder(out, to_toml(scenario))
    runs = scenario.experiment.runs
    record = scenario.record.events
    start = time.perf_counter()
    status, message, event_chunks = "complete", "", {}

    def on_row(row):
        folder.episode(row)
        if progress is not None:
            progress(row)

    try:
        if workers <= 1 or runs == 1:
            for r in range(runs):
                try:
                    event_chunks[r] = simulate_run(scenario, r, on_row, record)
                except DivergenceError as e:
                    status, message = "diverged", str(e)
                    break
        else:
            ctx = mp.get_context("fork")
            q = ctx.Queue()
            with ProcessPoolExecutor(max_workers=min(workers, runs), mp_context=ctx,
                                     initializer=_init_worker, initargs=(q,)) as pool:
                futures = {pool.submit(_worker, scenario, r, record): r for r in range(runs)}
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
        folder.finish("incomplete", "interrupted", time.perf_counter() - start, runs)
        raise
    if record:
        write_events(Path(out) / "events.csv", [event_chunks[r] for r in sorted(event_chunks)])
    return folder.finish(status, message, time.perf_counter() - start, runs)
