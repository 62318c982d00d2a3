"""Tune the baselines of the published tables on a small documented grid, then run them 10 times.

    nice -n 10 python scripts/tune_baselines.py [--out runs/tuning] [--only NAME,...] [--report-only]

Each baseline (a scenario of ``scenarios/paper/baselines/``) is tuned over its learning rates:
the actor's per-layer rates (start and end of their schedule) scaled by 0.25, 1 or 4, crossed
with the critic's scaled by 0.25, 1 or 4: nine points, each run for 3 seeds (runs 0–2 of
experiment seed 100, so no tuning run is one of the final runs) on a shortened run (about 40 %
of the published episodes). The point with the highest mean, across its seeds, of each seed's
average return over all its episodes (the published metric) is chosen; a tie keeps the
published rates. The chosen point is then run 10 times at full length (runs 0–9 of seed 0, as
the tables' runs are). Every stage writes an ordinary run folder (``summary.json`` with the
stack), resumes where it stopped when run again, and the report ``docs/results/baselines.md``
is rewritten from whatever has finished, saying exactly what has.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asyncneurons import provenance  # noqa: E402
from asyncneurons.claims import confidence_interval  # noqa: E402
from asyncneurons.runner import run_experiment  # noqa: E402
from asyncneurons.scenario import load_scenario  # noqa: E402

SCALES = (0.25, 1.0, 4.0)
RULE_OF = {"map-prop": "MAP Propagation", "weight-max": "Weight Max (no traces)"}
TUNING_SEED = 100
TUNING_RUNS = 3

# name -> (table it serves, task label, shortened episodes), in the order they are tuned
BASELINES = {
    "backprop-acrobot": ("map-prop", "Acrobot-v1", 200),
    "backprop-cartpole": ("map-prop", "CartPole-v1", 400),
    "global-reinforce-cartpole": ("weight-max", "CartPole-v1", 400),
    "ste-backprop-cartpole": ("weight-max", "CartPole-v1", 400),
    "backprop-mountaincar-continuous": ("map-prop", "MountainCarContinuous-v0", 200),
    "backprop-lunarlander": ("map-prop", "LunarLander-v3", 1000),
}


def _scaled(value, factor):
    if value is None:
        return None
    values = value if isinstance(value, (list, tuple)) else [value]
    return "[" + ", ".join(repr(float(v) * factor) for v in values) + "]"


def point_overrides(s, actor: float, critic: float) -> list:
    """Overrides scaling the actor's and the critic's learning rates (both ends of a schedule)."""
    L = s.learning
    out = [f"learning.lr={_scaled(L.lr, actor)}", f"learning.critic_lr={_scaled(L.critic_lr, critic)}"]
    if L.lr_end is not None:
        out.append(f"learning.lr_end={_scaled(L.lr_end, actor)}")
    if L.critic_lr_end is not None:
        out.append(f"learning.critic_lr_end={_scaled(L.critic_lr_end, critic)}")
    return out


def _label(actor, critic):
    return f"actor-x{actor:g}-critic-x{critic:g}"


def _summary(folder: Path, runs: int, episodes: int):
    """A finished experiment folder's summary (every run with all its episodes), else None."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    runs_ = summary.get("runs", [])
    if summary.get("status") == "diverged":
        return summary  # finished: it diverges again when rerun
    if summary.get("status") != "complete" or len(runs_) != runs or any(r["episodes"] != episodes for r in runs_):
        return None
    return summary


def _score(summary) -> float:
    """The tuning score: the mean across seeds; −∞ for a point that diverged."""
    return float("-inf") if summary["status"] == "diverged" else float(summary["mean"])


def _text(summary) -> str:
    if summary["status"] == "diverged":
        return f"diverged ({summary.get('message', '')[:80]})"
    return f"{summary['mean']:.2f} ({summary['std']:.2f})"


def _experiment(path, overrides, folder: Path, runs: int, episodes: int):
    done = _summary(folder, runs, episodes)
    if done is not None:
        return done
    s = load_scenario(path, overrides)
    start = time.perf_counter()
    summary = run_experiment(s, folder, resume=(folder / "scenario.toml").exists())
    (folder / "cost.json").write_text(json.dumps({"wall_s": time.perf_counter() - start}) + "\n")
    return _summary(folder, runs, episodes)


def _cost(folder: Path) -> float:
    try:
        return float(json.loads((folder / "cost.json").read_text())["wall_s"])
    except (OSError, ValueError, KeyError):
        return float("nan")


def tune(name: str, out: Path) -> None:
    table, label, short = BASELINES[name]
    path = ROOT / "scenarios" / "paper" / "baselines" / f"{name}.toml"
    s = load_scenario(path)
    for actor in SCALES:
        for critic in SCALES:
            over = point_overrides(s, actor, critic) + [f"experiment.episodes={short}", f"experiment.seed={TUNING_SEED}",
                                                        f"experiment.runs={TUNING_RUNS}", f"engine.replicas={TUNING_RUNS}"]
            summary = _experiment(path, over, out / name / "grid" / _label(actor, critic), TUNING_RUNS, short)
            print(f"{name} {_label(actor, critic)}: {_text(summary)}", flush=True)
    actor, critic = choose(name, out)
    final = point_overrides(s, actor, critic)
    summary = _experiment(path, final, out / name / "final", s.experiment.runs, s.experiment.episodes)
    print(f"{name} final at {_label(actor, critic)}: {_text(summary)}", flush=True)


def grid_results(name: str, out: Path) -> dict:
    short = BASELINES[name][2]
    results = {}
    for actor in SCALES:
        for critic in SCALES:
            folder = out / name / "grid" / _label(actor, critic)
            summary = _summary(folder, TUNING_RUNS, short)
            if summary is not None:
                results[(actor, critic)] = (summary, _cost(folder))
    return results


def choose(name: str, out: Path):
    """The grid point with the highest mean; the published rates on a tie."""
    results = grid_results(name, out)
    best = max(results, key=lambda k: (_score(results[k][0]), k == (1.0, 1.0)))
    return best


def _table_cell(docs: Path, table: str, key: str):
    """Our "mean (std)" of row ``key`` of a results page, and its label (None when absent)."""
    import re

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from reproduce import SETS
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    label = next((row[2] for row in SETS[table]["rows"] if row[0] == key), None)
    try:
        page = (docs / f"{table}.md").read_text()
    except OSError:
        return None, label
    line = re.search(rf"^\| {re.escape(label)} \| [^|]* \| ([^|]*) \|", page, re.M) if label else None
    return (line.group(1).strip() if line else None), label


def _page_runs(docs: Path, table: str, key: str):
    """The per-run averages a results page records for row ``key`` (None when absent)."""
    import re

    _, label = _table_cell(docs, table, key)
    try:
        page = (docs / f"{table}.md").read_text()
    except OSError:
        return None
    section = re.search(rf"^### {re.escape(label)}\n(.*?)(?=^### |\Z)", page, re.M | re.S) if label else None
    values = re.search(r"Per-run averages: (.*?)\. Mean", section.group(1), re.S) if section else None
    return [float(v) for v in values.group(1).split(", ")] if values else None


def _task_key(name: str) -> str:
    for prefix in ("global-reinforce-", "ste-backprop-", "backprop-"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def report(out: Path, docs: Path) -> Path:
    lines = ["# Baselines tuned on a small grid", "",
             "The baselines beside the published tables ([weight-max.md](weight-max.md), "
             "[map-prop.md](map-prop.md)) first reused the learning rates of the rule they are compared with. "
             "Here each is tuned: the actor's per-layer learning rates (both ends of their schedule) scaled by "
             f"{', '.join(f'{x:g}' for x in SCALES)}, crossed with the critic's scaled the same way (nine points), "
             f"{TUNING_RUNS} seeds each (runs 0–{TUNING_RUNS - 1} of experiment seed {TUNING_SEED}, none of them a "
             "final run), on shortened runs. The point with the highest mean across seeds of each seed's average "
             "return over all its episodes is chosen (the published rates on a tie), then run 10 times at full "
             "length (runs 0–9 of seed 0, as the tables' runs). Generated by `python scripts/tune_baselines.py`; "
             "it resumes where it stopped, and this page says exactly what has finished. Wall times are those of one "
             "nice'd process on a 2-core machine shared with other work, so they vary with its load; the 3 seeds "
             "of a grid point (and 5 of the final runs at a time) are simulated together as replicas.", ""]
    stacks = []
    for name, (table, label, short) in BASELINES.items():
        path = ROOT / "scenarios" / "paper" / "baselines" / f"{name}.toml"
        s = load_scenario(path)
        results = grid_results(name, out)
        lines += [f"## {name} ({label}, for the {table} table)", "",
                  f"Scenario `scenarios/paper/baselines/{name}.toml`; tuning runs of {short} episodes "
                  f"(published length {s.experiment.episodes})."]
        if not results:
            lines += ["", "Not run yet.", ""]
            continue
        lines += ["", "| actor lr × | critic lr × | mean (std) over seeds | wall time |", "|---|---|---|---|"]
        for (actor, critic), (summary, cost) in sorted(results.items()):
            lines.append(f"| {actor:g} | {critic:g} | {_text(summary)} | {cost:.0f} s |")
            stacks += [summary.get("stack")]
        total = sum(c for _, c in results.values() if np.isfinite(c))
        lines += ["", f"{len(results)} of {len(SCALES) ** 2} grid points finished, {total:.0f} s of wall time."]
        if len(results) < len(SCALES) ** 2:
            lines += ["", "The grid is not complete: no choice yet.", ""]
            continue
        actor, critic = choose(name, out)
        final = _summary(out / name / "final", s.experiment.runs, s.experiment.episodes)
        edge = [who for who, x in (("actor", actor), ("critic", critic)) if x in (SCALES[0], SCALES[-1])]
        lines += ["", f"Chosen: actor × {actor:g}, critic × {critic:g}."
                  + (f" The {' and '.join(edge)} scale lies at the edge of the grid: a wider grid may do better."
                     if edge else "")]
        if final is None or final["status"] != "complete":
            lines += ["", "The 10 final runs have not finished." if final is None else f"The final runs: {_text(final)}.", ""]
            continue
        avgs = np.array([r["average_return"] for r in final["runs"]])
        lo, hi = confidence_interval(avgs)
        stacks += [final.get("stack")]
        lines += ["", f"**10 runs at the chosen rates: {avgs.mean():.2f} ({avgs.std():.2f})**, 95 % interval "
                  f"[{lo:.2f}, {hi:.2f}], {_cost(out / name / 'final'):.0f} s of wall time. Per-run averages: "
                  + ", ".join(f"{a:.2f}" for a in avgs) + "."]
        untuned, _ = _table_cell(docs, table, name)
        rule, rule_label = _table_cell(docs, table, _task_key(name))
        if untuned or rule:
            lines += ["", "Beside it, from [" + f"{table}.md]({table}.md), 10 runs each: "
                      + "; ".join(x for x in (f"the untuned baseline {untuned}" if untuned else "",
                                              f"{RULE_OF[table]} on {rule_label}, {rule}" if rule else "")
                                  if x) + "."]
        if (actor, critic) == (1.0, 1.0):
            page_runs = _page_runs(docs, table, name)
            if page_runs is not None:
                same = len(page_runs) == len(avgs) and all(f"{a:.2f}" == f"{b:.2f}" for a, b in zip(avgs, page_runs))
                lines += ["", "The chosen point is the scenario as it stands, so these runs repeat the table's row: "
                          + ("they give its per-run averages exactly." if same else
                             "they do **not** give the per-run averages it records (" + ", ".join(
                                 f"run {r}: {a:.2f} here, {b:.2f} there" for r, (a, b) in enumerate(zip(avgs, page_runs))
                                 if f"{a:.2f}" != f"{b:.2f}")[:400] + "). Those runs record no stack or "
                             "commit; what changed between them and these has not been traced.")]
        lines.append("")
    known = sorted({provenance.describe(x) for x in stacks if x})
    lines[1:1] = ["", f"Stack: {'; or '.join(known) if known else 'no finished runs'}."]
    target = docs / "baselines.md"
    target.write_text("\n".join(lines) + "\n")
    return target


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "tuning")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "results")
    ap.add_argument("--only", type=lambda s: s.split(","), default=None)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    if not args.report_only:
        for name in BASELINES:
            if args.only and name not in args.only:
                continue
            tune(name, args.out)
            report(args.out, args.docs)
    print(f"report: {report(args.out, args.docs)}")


if __name__ == "__main__":
    main()
