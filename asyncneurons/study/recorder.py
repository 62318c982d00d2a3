"""The run folder: what a run writes, as it goes.

``scenario.toml``  the resolved scenario (every default filled in), written first.
``metrics.csv``    one row per finished episode, appended and flushed as episodes end; rewritten
                   in (run, episode) order when the experiment ends. Columns:

                   ==============  ====================================================
                   run             index of the independent run (0-based)
                   episode         index of the episode within its run (0-based)
                   return          undiscounted sum of the task's rewards
                   length          environment steps of the episode
                   sim_time_ms     simulated time the episode lasted, in ms
                   wall_s          wall-clock seconds the episode took
                   stale_actions   steps that used an action computed from an older
                                   observation than the last one emitted (clock pacing)
                   ==============  ====================================================

``summary.json``   each run's average return over all its episodes, and the mean and
                   population standard deviation (ddof = 0) of those averages across runs: the
                   published metric (algorithms.md §1.2); plus ``status`` (``complete``,
                   ``incomplete`` or ``diverged``), a ``message``, and the ``stack`` that made
                   it (versions and platform, :mod:`asyncneurons.study.provenance`).
``episodes/``      each run's own record of its episodes (``run-R.csv``), written by the process
                   that simulates it; ``metrics.csv`` is rebuilt from these when a run ends.
``checkpoints/``   the latest checkpoint of each unfinished run (``asyncneurons run --resume``).
``events.csv``     with ``[record] events = true``: one row per event (run, time_ms, unit, kind,
                   value, wave), kinds ``observation``, ``sample``, ``reward``, ``retro``,
                   ``env_step``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from asyncneurons.study.folders import check_dir, open_write, write_atomic, writing
from asyncneurons.study.provenance import stack

OUTPUTS = ("scenario.toml", "metrics.csv", "summary.json", "events.csv")
METRIC_COLUMNS = ["run", "episode", "return", "length", "sim_time_ms", "wall_s", "stale_actions"]
EVENT_COLUMNS = ["run", "time_ms", "unit", "kind", "value", "wave"]


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (links never followed)."""
    write_atomic(path, text)


class RunFolder:
    """Writes one experiment's folder."""

    def __init__(self, path, scenario_toml: str, live: bool = True):
        """``live``: start metrics.csv afresh and append each row as it comes; otherwise (a
        resumed run) metrics.csv is left as it is until :meth:`finish` replaces it whole."""
        self.path = check_dir(Path(path))
        atomic_write(self.path / "scenario.toml", scenario_toml)
        self._metrics = open_write(self.path / "metrics.csv", newline="") if live else None
        if live:
            self._writer = csv.DictWriter(self._metrics, fieldnames=METRIC_COLUMNS)
            self._writer.writeheader()
            self._metrics.flush()
        self.rows: list = []

    def episode(self, row: dict) -> None:
        """Append one episode's row and flush it to disk."""
        self.rows.append(row)
        if self._metrics is not None:
            with writing(self.path / "metrics.csv"):
                self._writer.writerow({k: row[k] for k in METRIC_COLUMNS})
                self._metrics.flush()

    def finish(self, status: str, message: str = "", wall_s: float | None = None, runs: int | None = None) -> dict:
        """Rewrite metrics.csv in (run, episode) order and write summary.json."""
        if self._metrics is not None:
            with writing(self.path / "metrics.csv"):
                self._metrics.close()
        rows = sorted(self.rows, key=lambda r: (r["run"], r["episode"]))
        text = io.StringIO()
        w = csv.DictWriter(text, fieldnames=METRIC_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in METRIC_COLUMNS})
        write_atomic(self.path / "metrics.csv", text.getvalue())
        summary = summarize(rows, status, message)
        if wall_s is not None:
            summary["wall_s"] = wall_s
        if runs is not None:
            summary["runs_planned"] = runs
        summary["stack"] = stack()
        atomic_write(self.path / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary


def summarize(rows, status: str = "complete", message: str = "") -> dict:
    """Per-run average return over all episodes; mean and population std across runs."""
    per_run: dict = {}
    for r in rows:
        per_run.setdefault(r["run"], []).append(r["return"])
    runs = [{"run": k, "episodes": len(v), "average_return": float(np.mean(v))} for k, v in sorted(per_run.items())]
    averages = [r["average_return"] for r in runs]
    return {
        "status": status,
        "message": message,
        "metric": "average return over all episodes of a run; mean and population std (ddof=0) across runs",
        "mean": float(np.mean(averages)) if averages else None,
        "std": float(np.std(averages)) if averages else None,
        "runs": runs,
    }


def write_events(path: Path, chunks) -> None:
    """Write events.csv from per-run lists of event rows (already in time order per run)."""
    with writing(path), open_write(path, newline="") as f:
        w = csv.writer(f)
        w.writerow(EVENT_COLUMNS)
        for rows in chunks:
            w.writerows(rows)
