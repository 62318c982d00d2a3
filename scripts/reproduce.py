"""Reproduce a published result table: run a named set of scenarios N times and write the report.

    python scripts/reproduce.py weight-max [--runs 10] [--workers 2] [--out runs/reproduce]
                                           [--only cartpole,acrobot] [--episodes N] [--report-only]

Every (scenario, run) is one job on a pool of worker processes, the cheapest first (by episodes
times a rough episode length). A job writes ``OUT/SET/NAME/episodes/run-R.csv`` (a row per
episode, flushed as it goes), a checkpoint every minute, and, when it finishes, ``run-R.json``
(its average return over all episodes and its wall time). Running the command again skips
finished runs and continues unfinished ones from their checkpoints, with the same numbers an
uninterrupted run gives. The report, ``docs/results/SET.md`` with learning-curve figures in
``docs/results/figures/``, is rewritten from whatever has finished.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asyncneurons.replicas import supports  # noqa: E402
from asyncneurons.runner import simulate_replicas, simulate_run  # noqa: E402
from asyncneurons.scenario import load_scenario  # noqa: E402

# name -> (scenario file, task label, published mean, published std, episodes per run, note)
SETS = {
    "weight-max": {
        "title": "Weight Maximization: the published table reproduced",
        "source": "weight_max README (Chung, AAAI 2022): average return over all episodes, mean (std) over 10 runs",
        "rows": [
            ("multiplexer", "scenarios/paper/weight-max/multiplexer.toml", "Multiplexer (20-bit)", 0.81, 0.01,
             "The published figure is rounded to two decimals: a mean in [0.805, 0.815) with a std in "
             "[0.005, 0.015) prints as 0.81 (0.01), so the threshold it implies lies between 0.790 and 0.810"),
            ("cartpole", "scenarios/paper/weight-max/cartpole.toml", "CartPole-v1", 390.38, 43.25, ""),
            ("cartpole-traces", "scenarios/paper/weight-max/cartpole-traces.toml", "CartPole-v1, traces", 373.11, 17.86, ""),
            ("acrobot", "scenarios/paper/weight-max/acrobot.toml", "Acrobot-v1", -97.05, 2.90, ""),
            ("acrobot-traces", "scenarios/paper/weight-max/acrobot-traces.toml", "Acrobot-v1, traces", -105.00, 4.38, ""),
            ("lunarlander", "scenarios/paper/weight-max/lunarlander.toml", "LunarLander", 111.23, 16.58,
             "LunarLander-v3 here, v2 published"),
            ("lunarlander-traces", "scenarios/paper/weight-max/lunarlander-traces.toml", "LunarLander, traces",
             39.04, 14.39, "LunarLander-v3 here, v2 published"),
            ("global-reinforce-cartpole", "scenarios/paper/baselines/global-reinforce-cartpole.toml",
             "CartPole-v1, Global REINFORCE baseline", None, None, "No published figure"),
            ("ste-backprop-cartpole", "scenarios/paper/baselines/ste-backprop-cartpole.toml",
             "CartPole-v1, STE backprop baseline", None, None, "no published figure; the Weight Max learning rates"),
        ],
    },
    "map-prop": {
        "title": "MAP Propagation: the published table reproduced",
        "source": "map_prop README (Chung, NeurIPS 2021): average return over all episodes, mean (std) over 10 runs",
        "rows": [
            ("acrobot", "scenarios/paper/map-prop/acrobot.toml", "Acrobot-v1", -100.29, 5.40, ""),
            ("cartpole", "scenarios/paper/map-prop/cartpole.toml", "CartPole-v1", 459.70, 13.89, ""),
            ("lunarlander", "scenarios/paper/map-prop/lunarlander.toml", "LunarLander", 127.88, 24.57,
             "LunarLander-v3 here, v2 published"),
            ("mountaincar-continuous", "scenarios/paper/map-prop/mountaincar-continuous.toml",
             "MountainCarContinuous-v0", 39.45, 30.48, ""),
            ("multiplexer", "scenarios/paper/map-prop/multiplexer.toml", "Multiplexer (37-bit), batches of 128",
             None, None, "The paper's code publishes no figure for this task; each row is one batch"),
            ("regression", "scenarios/paper/map-prop/regression.toml", "Scalar regression, batches of 128",
             None, None, "The paper's code publishes no figure for this task; reward −(v − y)², each row one batch"),
        ] + [
            (f"backprop-{task}", f"scenarios/paper/baselines/backprop-{task}.toml", f"{label}, backprop baseline",
             None, None, "The paper's baseline figures and settings are not available; ours use the MAP settings")
            for task, label in (("acrobot", "Acrobot-v1"), ("cartpole", "CartPole-v1"), ("lunarlander", "LunarLander"),
                                ("mountaincar-continuous", "MountainCarContinuous-v0"))
        ],
    },
}


def _job(path: str, overrides: list, runs: list, folder: str) -> tuple:
    """One run, or, where the scenario allows it, several runs simulated together as replicas;
    either way checkpointed every minute (a killed job continues where it stopped), and each run's
    numbers are those of the run alone."""
    s = load_scenario(ROOT / path, overrides)
    folder = Path(folder)
    start = time.perf_counter()
    if len(runs) > 1:
        simulate_replicas(s, runs, folder=folder, resume=True, checkpoint_seconds=60.0)
    else:
        simulate_run(s, runs[0], folder=folder, resume=True, checkpoint_seconds=60.0)
    # a resumed job measured only its last stretch here; its episodes' wall times cover it all
    elapsed = max(time.perf_counter() - start, *(sum(float(r["wall_s"]) for r in _rows(folder, run)) for run in runs))
    wall = elapsed / len(runs)
    results = []
    for run in runs:
        returns = [float(r["return"]) for r in _rows(folder, run)]
        result = {"run": run, "episodes": len(returns), "average_return": float(np.mean(returns)),
                  "wall_s": wall, "replicas": len(runs)}
        (folder / f"run-{run}.json").write_text(json.dumps(result) + "\n")
        results.append(result)
    return path, runs, results


def _rows(folder: Path, run: int) -> list:
    """A run's episode rows (``episodes/run-R.csv``; ``run-R.csv`` for runs of earlier versions)."""
    path = folder / "episodes" / f"run-{run}.csv"
    if not path.exists():
        path = folder / f"run-{run}.csv"
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_set(name: str, runs: int, workers: int, out: Path, only=None, episodes=None) -> None:
    rows = [r for r in SETS[name]["rows"] if not only or r[0] in only]
    overrides = [] if episodes is None else [f"experiment.episodes={episodes}"]
    jobs = []
    for key, path, *_ in rows:
        folder = out / name / key
        folder.mkdir(parents=True, exist_ok=True)
        s = load_scenario(ROOT / path, overrides)
        cost = s.experiment.episodes * (300 if "lunar" in key else 1 if "multiplexer" in key else 100)
        cost *= s.learning.batch  # batched supervised tasks: episodes are batches
        todo = [r for r in range(runs) if not (folder / f"run-{r}.json").exists()]
        if supports(s) and len(todo) > 1:  # replicas: as many chunks as workers
            per = -(-len(todo) // workers)
            for i in range(0, len(todo), per):
                jobs.append((cost, path, todo[i:i + per], str(folder)))
        else:
            jobs += [(cost, path, [r], str(folder)) for r in todo]
    jobs.sort(key=lambda j: j[0])  # cheapest first: the report fills up early
    print(f"{sum(len(j[2]) for j in jobs)} runs to do in {len(jobs)} jobs with {workers} workers; "
          f"results in {out / name}", flush=True)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_job, path, overrides, runs_, folder) for _, path, runs_, folder in jobs]
        for i, fut in enumerate(as_completed(futures), 1):
            try:
                path, runs_, results = fut.result()
            except Exception as e:  # noqa: BLE001 - one failed job must not stop the others
                print(f"[{i}/{len(jobs)}] a job failed: {type(e).__name__}: {e}", flush=True)
                continue
            for result in results:
                together = f", {result['replicas']} simulated together" if result["replicas"] > 1 else ""
                print(f"[{i}/{len(jobs)}] {path} run {result['run']}: average return "
                      f"{result['average_return']:.2f} ({result['wall_s']:.0f} s per run{together})", flush=True)


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    c = np.cumsum(np.insert(x, 0, 0.0))
    out = np.empty_like(x)
    for i in range(len(x)):
        lo = max(0, i - window + 1)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def _curve(folder: Path, runs: list, figure: Path, title: str, published) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    curves = []
    for r in runs:
        curves.append(np.array([float(row["return"]) for row in _rows(folder, r)]))
    n = min(len(c) for c in curves)
    window = max(10, n // 100)
    smooth = np.array([_moving_average(c[:n], window) for c in curves])
    mean, std = smooth.mean(axis=0), smooth.std(axis=0)
    x = np.arange(1, n + 1)
    fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=150)
    for i, c in enumerate(smooth):  # each run faintly (full windows only), so a slow run shows as itself
        ax.plot(x[window - 1:], c[window - 1:], color="0.55", lw=0.5, alpha=0.6, label="each run" if i == 0 else None)
    ax.plot(x, mean, color="C0", lw=1.5, label=f"ours, mean of {len(runs)} runs")
    ax.fill_between(x, mean - std, mean + std, color="C0", alpha=0.25, lw=0, label="± 1 std across runs")
    if published is not None:
        ax.axhline(published, color="C3", ls="--", lw=1, label="published average over all episodes")
    ax.set_xlabel("episode")
    ax.set_ylabel(f"return (moving average over {window} episodes)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(figure)
    plt.close(fig)


def report(name: str, out: Path, docs: Path, runs_planned: int) -> Path:
    spec = SETS[name]
    figures = docs / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    lines = [f"# {spec['title']}", "",
             f"Published figures: {spec['source']}. Ours: the same metric (each run's average return over "
             "all its training episodes; mean and population std across runs), from the scenarios named "
             "below, run by `python scripts/reproduce.py " + name + "`. Target: our mean ≥ published mean − 1 "
             "published std.", "",
             "| task | published mean (std) | ours mean (std) | runs | target met | wall time per run | scenario |",
             "|---|---|---|---|---|---|---|"]
    notes = []
    for key, path, label, pub, pub_std, note in spec["rows"]:
        folder = out / name / key
        results = sorted((json.loads(p.read_text()) for p in folder.glob("run-*.json")), key=lambda r: r["run"]) \
            if folder.exists() else []
        pub_text = "n.a." if pub is None else f"{pub:g} ({pub_std:g})"
        if not results:
            lines.append(f"| {label} | {pub_text} | not run yet | 0/{runs_planned} | | | `{path}` |")
            continue
        avgs = np.array([r["average_return"] for r in results])
        mean, std = float(avgs.mean()), float(avgs.std())
        met = "" if pub is None else ("yes" if mean >= pub - pub_std else "**no**")
        wall = np.mean([r["wall_s"] for r in results])
        episodes = results[0]["episodes"]
        digits = 3 if abs(mean) < 10 else 2
        lines.append(f"| {label} | {pub_text} | {mean:.{digits}f} ({std:.{digits}f}) | {len(results)}/{runs_planned} | {met} | "
                     f"{wall:.0f} s | `{path}` |")
        figure = figures / f"{name}-{key}.png"
        _curve(folder, [r["run"] for r in results], figure, f"{label}: {len(results)} runs × {episodes} episodes", pub)
        tails = [np.mean([float(row["return"]) for row in _rows(folder, r["run"])][-max(1, episodes // 10):])
                 for r in results]
        verdict = ""
        if pub is not None and mean < pub - pub_std:
            verdict = (f"**Target missed** by {pub - pub_std - mean:.{digits}f}: our mean {mean:.{digits}f} is below "
                       f"the published mean minus one published std, {pub - pub_std:.{digits}f}. ")
        notes.append(f"### {label}\n\n![{label}](figures/{figure.name})\n\n" + verdict
                     + (f"{note}. " if note else "") + "Per-run averages: "
                     + ", ".join(f"{a:.{digits}f}" for a in avgs)
                     + f". Mean over the last 10 % of episodes, across runs: {np.mean(tails):.{digits}f} "
                       f"({np.std(tails):.{digits}f}).\n")
    lines += ["", "Wall time is per run on a 2-core machine (CPython 3.11): one run per core, or, for runs "
              "simulated together as replicas (each bit-identical to the run alone), the chunk's wall time "
              "divided by its runs.", "",
              "## Learning curves", "", *notes]
    target = docs / f"{name}.md"
    target.write_text("\n".join(lines) + "\n")
    return target


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set", choices=sorted(SETS))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "reproduce")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "results")
    ap.add_argument("--only", type=lambda s: s.split(","), default=None, help="comma-separated row keys")
    ap.add_argument("--episodes", type=int, default=None, help="override episodes (smoke runs)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    if not args.report_only:
        run_set(args.set, args.runs, args.workers, args.out, args.only, args.episodes)
    print(f"report: {report(args.set, args.out, args.docs, args.runs)}")


if __name__ == "__main__":
    main()
