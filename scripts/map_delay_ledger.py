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

With ``--figures DIR`` it also draws, from the ledger alone, the line into the study's delay plot
(``DIR/delay-tolerance-map.png``: each run's average return and each point's mean ± std against
d, beside the other rules' means as the page's tables record them, exact backprop on the same
network and timing among them) and the learning curves at each point
(``DIR/delay-tolerance-map-curves.png``).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
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
PAGE = ROOT / "docs" / "studies" / "delay-tolerance.md"
RUNS_PER_POINT = 5


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


def page_lines(page: Path = PAGE) -> dict:
    """The other rules' points on the synaptic axis, as the study page's tables record them:
    {label: (delays, means, stds)}, read from the rows ``| d = D ms | mean (std) | …`` of the table
    headed ``| synapses uniform[0, d] | …`` and the row ``| exact backprop, λ = 0.95 | …`` of the
    table headed by the delays. A table the page no longer has stops with its header named."""
    text = page.read_text(encoding="utf-8").splitlines()
    cell = re.compile(r"^\s*(-?[0-9.]+) \(([0-9.]+)\)\s*$")

    def cells(line):
        return [c.strip() for c in line.strip().strip("|").split("|")]

    lines = {}
    head = next((i for i, t in enumerate(text) if t.startswith("| synapses uniform[0, d] | Weight Max")), None)
    if head is None:
        raise SystemExit(f"{page}: no table headed '| synapses uniform[0, d] | Weight Max …'")
    labels = cells(text[head])[1:]
    for t in text[head + 2:]:
        if not t.startswith("| d = "):
            break
        row = cells(t)
        d = float(row[0].split("=")[1].split()[0])
        for label, c in zip(labels, row[1:]):
            m = cell.match(c)
            if m:
                xs, ms, ss = lines.setdefault(label, ([], [], []))
                xs.append(d), ms.append(float(m.group(1))), ss.append(float(m.group(2)))
    head = next((i for i, t in enumerate(text) if t.startswith("| synapses uniform[0, d] | 0 ms |")), None)
    exact = next((t for t in text[head:] if t.startswith("| exact backprop")), None) if head is not None else None
    if exact is None:
        raise SystemExit(f"{page}: no row '| exact backprop …' under '| synapses uniform[0, d] | 0 ms | …'")
    delays = [float(c.split()[0]) for c in cells(text[head])[1:]]
    pairs = [cell.match(c) for c in cells(exact)[1:]]
    lines[cells(exact)[0]] = (delays, [float(m.group(1)) for m in pairs], [float(m.group(2)) for m in pairs])
    return lines


def points(book: dict) -> dict:
    """{d: [records of its finished runs, by run]} of the MAP line."""
    out = {}
    for d in DELAYS:
        runs = sorted((r for (row, _), r in book.items() if row == f"d-{d}"), key=lambda r: r["run"])
        if runs:
            out[d] = runs
    return out


def draw(book: dict, folder: Path, page: Path = PAGE) -> list[Path]:
    """The MAP line in the delay plot and its learning curves (see the module docstring)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from asyncneurons.figures.figure_style import DPI, WIDTH, styled

    pts = points(book)
    others = page_lines(page)
    folder.mkdir(parents=True, exist_ok=True)

    @styled
    def tolerance(path):
        fig, ax = plt.subplots(figsize=(WIDTH, 3.6), dpi=DPI)
        colors = {"Weight Max": "C0", "STE backprop": "C1", "Global REINFORCE": "C2", "exact backprop": "C3"}
        for label, (xs, ms, ss) in others.items():
            if "λ = 0.8" not in label and "λ = 0.95" not in label:
                continue  # the traced runs, as the study's plot shows them
            exact = label.startswith("exact backprop")
            color = next((c for rule, c in colors.items() if label.startswith(rule)), "0.5")
            ax.errorbar(xs, ms, yerr=ss, color=color, ls="--" if exact else ":", lw=1.4 if exact else 1.0,
                        alpha=1.0 if exact else 0.7, marker="s" if exact else ".", ms=4, capsize=2,
                        label=label + (",\nsame network and timing" if exact else ""))
        done = [d for d in pts if len(pts[d]) >= RUNS_PER_POINT]
        for d, runs in pts.items():
            a = [r["average_return"] for r in runs]
            ax.scatter(np.full(len(a), d) + np.linspace(-0.25, 0.25, len(a)), a, s=9, color="0.35", zorder=3,
                       label="MAP Propagation, each run" if d == min(pts) else None)
            if d not in done:
                ax.annotate(f"{len(a)}/{RUNS_PER_POINT} runs", (d, max(a)), textcoords="offset points",
                            xytext=(4, 4), fontsize=7)
        if done:  # a point still under way breaks the line (NaN) rather than being bridged
            a = {d: np.array([r["average_return"] for r in pts[d]]) for d in done}
            ax.errorbar(list(DELAYS), [a[d].mean() if d in a else np.nan for d in DELAYS],
                        yerr=[a[d].std() if d in a else np.nan for d in DELAYS], color="k", lw=1.8, marker="o",
                        ms=5, capsize=3, zorder=4, label=f"MAP Propagation,\nmean ± std of {RUNS_PER_POINT} runs")
        ax.set_xticks(list(DELAYS))
        ax.set_xlabel("d (ms): synapses uniform[0, d], reward 10 ms late, environment every 20 ms")
        ax.set_ylabel("average return over 1,000 episodes")
        ax.set_ylim(0, 520)
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)

    @styled
    def curves(path):
        done = [d for d in pts if len(pts[d]) >= RUNS_PER_POINT] or list(pts)
        fig, axes = plt.subplots(1, len(done), figsize=(WIDTH, 2.6), dpi=DPI, sharey=True, squeeze=False)
        for ax, d in zip(axes[0], done):
            for r in pts[d]:
                c = r["curve"]
                ax.plot(c["episode"], c["value"], lw=0.8, label=f"run {r['run']}")
            ax.set_title(f"d = {d} ms: {np.mean([r['average_return'] for r in pts[d]]):.1f}")
            ax.set_xlabel("episode")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(f"return ({pts[done[0]][0]['curve']['window']}-episode average)")
        axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)

    out = [folder / "delay-tolerance-map.png", folder / "delay-tolerance-map-curves.png"]
    if pts:
        tolerance(out[0])
        curves(out[1])
    return out if pts else []


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="runs/map-delays", type=Path)
    ap.add_argument("--ledger", default=LEDGER, type=Path)
    ap.add_argument("--figures", type=Path, metavar="DIR", help="also draw the line's figures into DIR")
    args = ap.parse_args(argv)
    book = sync(args.out, args.ledger)
    for line in summary(book) or ["no finished run yet"]:
        print(line)
    if args.figures:
        try:
            paths = draw(book, args.figures)
        except OSError as e:  # a file where the folder should be, no permission, a full disk
            raise SystemExit(f"--figures {args.figures}: cannot write the figures there ({e.strerror or e})") from None
        for path in paths:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
