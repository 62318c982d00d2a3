"""Record the finished runs of the MAP Propagation delay line in a ledger the repository keeps.

The line of ``docs/studies/delay-tolerance.md`` runs as one experiment folder per delay
(``scripts/map_delay_study.sh``: ``OUT/d-0``, ``OUT/d-2`` …, five runs each), hours per run. The
folders live outside the repository and may not outlast the machine; a finished run is recorded
here as soon as it is seen, so its result does not depend on the folder any more:

    python scripts/map_delay_ledger.py [OUT] [--ledger docs/studies/map-delays-runs.jsonl]

A run is finished when its ``episodes/run-R.csv`` holds the planned episodes. Each record: the
point (``row`` = ``d-D``, ``delay_ms``), the run, its average return over its episodes, the mean
over its last 10 %, its learning curve (the moving average of ``scripts/reproduce.py``), the hash
of the folder's resolved scenario, and the stack: ``stack``, the one the folder's ``summary.json``
records (the process that ran the folder writes it when it finishes or is interrupted); without
one, ``recorded_with``, the stack of the process recording it (the checkout that runs the line,
which may be newer than the one that ran it). A record
already in the ledger for the same scenario is kept as it is; the ledger is written sorted, so the
same runs give the same bytes. Prints the point's runs so far, mean and population std.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import reproduce  # noqa: E402  (its ledger: read_ledger, write_ledger, the learning curve)
from asyncneurons.engine.checkpoint import scenario_hash  # noqa: E402
from asyncneurons.model.scenario import load_scenario  # noqa: E402
from asyncneurons.study import provenance  # noqa: E402

DELAYS = (0, 2, 5, 10, 20)  # ms: the upper end d of uniform[0, d] (scripts/map_delay_study.sh)
LEDGER = ROOT / "docs" / "studies" / "map-delays-runs.jsonl"


def returns_of(folder: Path, run: int) -> np.ndarray:
    """The returns of run ``run``'s episodes written so far (empty when none)."""
    path = folder / "episodes" / f"run-{run}.csv"
    if not path.exists():
        return np.zeros(0)
    with open(path, newline="") as f:
        return np.array([float(row["return"]) for row in csv.DictReader(f)])


def run_record(delay: int, run: int, returns: np.ndarray, planned: int, digest: str, stack: dict) -> dict:
    """The ledger's record of a finished run (``returns``: its ``planned`` episodes' returns;
    ``stack``: ``{"stack": …}`` or ``{"recorded_with": …}``, :func:`folder_stack`)."""
    return {"row": f"d-{delay}", "delay_ms": delay, "run": run, "episodes": int(returns.size),
            "average_return": round(float(returns.mean()), 4),
            "tail_return": round(float(returns[-max(1, planned // 10):].mean()), 4),
            "curve": reproduce.learning_curve(returns, planned), "scenario_hash": digest, **stack}


def folder_stack(folder: Path) -> dict:
    """``{"stack": …}`` as the folder's ``summary.json`` records it, else ``{"recorded_with": …}``,
    this process's."""
    try:
        stack = json.loads((folder / "summary.json").read_text()).get("stack")
    except (OSError, ValueError):
        stack = None
    return {"stack": stack} if isinstance(stack, dict) else {"recorded_with": provenance.stack()}


def sync(out: Path, ledger: Path) -> dict:
    """Record every finished run under ``out`` the ledger lacks; the ledger as it then stands."""
    book = reproduce.read_ledger(ledger)
    fresh = {}
    for d in DELAYS:
        folder = out / f"d-{d}"
        if not (folder / "scenario.toml").exists():
            continue
        s = load_scenario(folder / "scenario.toml")
        planned, digest = s.experiment.episodes, scenario_hash(s)
        for run in range(s.experiment.runs):
            if reproduce.ledgered(book, f"d-{d}", run, planned, digest) is not None:
                continue
            returns = returns_of(folder, run)
            if returns.size == planned:
                fresh[(f"d-{d}", run)] = run_record(d, run, returns, planned, digest, folder_stack(folder))
    if fresh:
        book = {**book, **fresh}
        reproduce.write_ledger(ledger, book)
    return book


def summary(book: dict) -> list[str]:
    """One line per point: its runs' average returns, their mean and population std."""
    lines = []
    for d in DELAYS:
        runs = sorted((r for (row, _), r in book.items() if row == f"d-{d}"), key=lambda r: r["run"])
        if runs:
            a = np.array([r["average_return"] for r in runs])
            lines.append(f"d = {d:>2} ms: {len(a)} run(s) {', '.join(f'{x:.2f}' for x in a)}; "
                         f"mean {a.mean():.2f} (std {a.std():.2f})")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="runs/map-delays", type=Path)
    ap.add_argument("--ledger", default=LEDGER, type=Path)
    args = ap.parse_args(argv)
    for line in summary(sync(args.out, args.ledger)) or ["no finished run yet"]:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
