"""Reproduce a published result table: run a named set of scenarios N times and write the report.

    pip install -e . -c constraints/reproduce.txt      # the pinned stack the reports were made with
    python scripts/reproduce.py weight-max [--runs 10] [--workers 2] [--out runs/reproduce]
                                           [--only cartpole,acrobot] [--episodes N] [--report-only]
                                           [--constraints FILE] [--any-stack] [--restate]
                                           [--ledger FILE] [--chunk N]

Before it runs anything, the script compares the installed versions with the pins of
``constraints/reproduce.txt`` and refuses (exit status 2) to run on another stack unless given
``--any-stack``. Every (scenario, run) is one job on a pool of worker processes, the cheapest
first (by episodes times a rough episode length). A job writes ``OUT/SET/NAME/episodes/run-R.csv``
(a row per episode, flushed as it goes), a checkpoint every minute, and, when it finishes,
``run-R.json`` (its episode count, average return over all episodes, wall time and the stack that
made it, :mod:`asyncneurons.study.provenance`). A run is finished when its ``run-R.json`` and its
episode file both hold the planned number of episodes; a shorter one is neither skipped nor
reported, it is run again (from its checkpoint when there is one).

Every finished run is also recorded in the ledger ``docs/results/SET-runs.jsonl``, one line per
run: its row, run index, episode count, average return over all episodes, mean over the last 10 %
of episodes, wall time, stack, the hash of its resolved scenario
(:func:`asyncneurons.engine.checkpoint.scenario_hash`) and its learning curve (the moving average
of the figures at no more than 500 episodes). The ledger is committed with the report, so a run
finished on one machine is never run again on another: a run is done when its folder or the
ledger holds it with the planned episodes and the scenario's present hash (a scenario whose
settings changed runs again). The report, ``docs/results/SET.md`` with learning-curve figures in
``docs/results/figures/``, is rewritten from the ledger (finished folders it lacks are recorded
first): for each published cell our mean, std and 95 % confidence interval, and a two-sided
Welch test against the published mean and std (:mod:`asyncneurons.study.claims`).

``--restate`` rewrites the tables of an existing report from the per-run averages its notes
record (for a report whose run folders are not at hand), keeping its figures and notes.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asyncneurons.engine.checkpoint import scenario_hash  # noqa: E402
from asyncneurons.study import provenance  # noqa: E402
from asyncneurons.study.folders import write_atomic  # noqa: E402
from asyncneurons.study.claims import ALPHA, PUBLISHED_RUNS, confidence_interval, judge  # noqa: E402
from asyncneurons.engine.replicas import supports  # noqa: E402
from asyncneurons.study.runner import simulate_replicas, simulate_run  # noqa: E402
from asyncneurons.model.scenario import load_scenario  # noqa: E402

# name -> (scenario file, task label, published mean, published std, episodes per run, note)
SETS = {
    "weight-max": {
        "title": "Weight Maximization: the published table reproduced",
        "source": "weight_max README (Chung, AAAI 2022): average return over all episodes, mean (std) over 10 runs",
        "rows": [
            ("multiplexer", "scenarios/paper/weight-max/multiplexer.toml", "Multiplexer (20-bit)", 0.81, 0.01, ""),
            ("cartpole", "scenarios/paper/weight-max/cartpole.toml", "CartPole-v1", 390.38, 43.25, ""),
            ("cartpole-traces", "scenarios/paper/weight-max/cartpole-traces.toml", "CartPole-v1, traces", 373.11, 17.86, ""),
            ("acrobot", "scenarios/paper/weight-max/acrobot.toml", "Acrobot-v1", -97.05, 2.90, ""),
            ("acrobot-traces", "scenarios/paper/weight-max/acrobot-traces.toml", "Acrobot-v1, traces", -105.00, 4.38, ""),
            ("lunarlander", "scenarios/paper/weight-max/lunarlander.toml", "LunarLander", 111.23, 16.58,
             "LunarLander-v3 here, v2 published"),
            ("lunarlander-traces", "scenarios/paper/weight-max/lunarlander-traces.toml", "LunarLander, traces",
             39.04, 14.39, "LunarLander-v3 here, v2 published"),
            ("global-reinforce-multiplexer", "scenarios/paper/baselines/global-reinforce-multiplexer.toml",
             "Multiplexer (20-bit), Global REINFORCE baseline", None, None, "No published figure"),
            ("ste-backprop-multiplexer", "scenarios/paper/baselines/ste-backprop-multiplexer.toml",
             "Multiplexer (20-bit), STE backprop baseline", None, None,
             "no published figure; the Weight Max learning rates"),
            ("global-reinforce-cartpole", "scenarios/paper/baselines/global-reinforce-cartpole.toml",
             "CartPole-v1, Global REINFORCE baseline", None, None, "No published figure"),
            ("ste-backprop-cartpole", "scenarios/paper/baselines/ste-backprop-cartpole.toml",
             "CartPole-v1, STE backprop baseline", None, None, "no published figure; the Weight Max learning rates"),
            ("global-reinforce-acrobot", "scenarios/paper/baselines/global-reinforce-acrobot.toml",
             "Acrobot-v1, Global REINFORCE baseline", None, None, "No published figure"),
            ("ste-backprop-acrobot", "scenarios/paper/baselines/ste-backprop-acrobot.toml",
             "Acrobot-v1, STE backprop baseline", None, None, "no published figure; the Weight Max learning rates"),
            ("global-reinforce-lunarlander", "scenarios/paper/baselines/global-reinforce-lunarlander.toml",
             "LunarLander, Global REINFORCE baseline", None, None,
             "No published figure; LunarLander-v3"),
            ("ste-backprop-lunarlander", "scenarios/paper/baselines/ste-backprop-lunarlander.toml",
             "LunarLander, STE backprop baseline", None, None,
             "no published figure; the Weight Max learning rates; LunarLander-v3"),
        ],
    },
    "map-prop": {
        "title": "MAP Propagation: the published table reproduced",
        "source": "map_prop README (Chung, NeurIPS 2021): average return over all episodes, mean (std) over 10 runs",
        "rows": [
            ("acrobot", "scenarios/paper/map-prop/acrobot.toml", "Acrobot-v1", -100.29, 5.40, ""),
            ("cartpole", "scenarios/paper/map-prop/cartpole.toml", "CartPole-v1", 459.70, 13.89, ""),
            ("lunarlander", "scenarios/paper/map-prop/lunarlander.toml", "LunarLander", 127.88, 24.57, ""),
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
        result = {"run": run, "episodes": len(returns), "episodes_planned": s.experiment.episodes,
                  "average_return": float(np.mean(returns)), "wall_s": wall, "replicas": len(runs),
                  "stack": provenance.stack()}
        (folder / f"run-{run}.json").write_text(json.dumps(result) + "\n")
        results.append(result)
    return path, runs, results


def finished_result(folder: Path, run: int, planned: int) -> dict | None:
    """The result of a finished run: ``run-R.json`` and ``episodes/run-R.csv`` both hold the
    ``planned`` number of episodes. None for a run not finished (missing, short or unreadable)."""
    meta = folder / f"run-{run}.json"
    if not meta.exists():
        return None
    try:
        result = json.loads(meta.read_text())
        episodes = len(_rows(folder, run))
    except (OSError, ValueError):
        return None
    if result.get("episodes") != planned or episodes != planned:
        return None
    return result


def _rows(folder: Path, run: int) -> list:
    """A run's episode rows (``episodes/run-R.csv``; ``run-R.csv`` for runs of earlier versions)."""
    path = folder / "episodes" / f"run-{run}.csv"
    if not path.exists():
        path = folder / f"run-{run}.csv"
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _planned(path: str, overrides: list) -> int:
    return load_scenario(ROOT / path, overrides).experiment.episodes


def run_set(name: str, runs: int, workers: int, out: Path, only=None, episodes=None, ledger: Path | None = None,
            chunk: int | None = None) -> None:
    """Run every (row, run) of set ``name`` not yet finished in its folder or in the ``ledger``,
    recording each finished run in the ledger as its job ends. Runs simulated together as replicas
    are split into as many chunks as workers, of at most ``chunk`` runs each."""
    rows = [r for r in SETS[name]["rows"] if not only or r[0] in only]
    overrides = [] if episodes is None else [f"experiment.episodes={episodes}"]
    book = read_ledger(ledger) if ledger is not None else {}
    jobs = []
    for key, path, *_ in rows:
        folder = out / name / key
        folder.mkdir(parents=True, exist_ok=True)
        s = load_scenario(ROOT / path, overrides)
        digest = scenario_hash(s)
        if ledger is not None:
            book = sync_ledger(ledger, book, key, folder, runs, s.experiment.episodes, digest)
        cost = s.experiment.episodes * (300 if "lunar" in key else 1 if "multiplexer" in key else 100)
        cost *= s.learning.batch  # batched supervised tasks: episodes are batches
        todo = [r for r in range(runs) if finished_result(folder, r, s.experiment.episodes) is None
                and ledgered(book, key, r, s.experiment.episodes, digest) is None]
        for r in todo:
            if (folder / f"run-{r}.json").exists():
                print(f"{folder / f'run-{r}.json'}: fewer than the {s.experiment.episodes} planned episodes; "
                      "not finished, run again", flush=True)
        if supports(s) and len(todo) > 1:  # replicas: as many chunks as workers
            per = min(-(-len(todo) // workers), chunk or len(todo))
            for i in range(0, len(todo), per):
                jobs.append((cost, path, todo[i:i + per], str(folder), key, s.experiment.episodes, digest))
        else:
            jobs += [(cost, path, [r], str(folder), key, s.experiment.episodes, digest) for r in todo]
    jobs.sort(key=lambda j: j[0])  # cheapest first: the report fills up early
    print(f"{sum(len(j[2]) for j in jobs)} runs to do in {len(jobs)} jobs with {workers} workers; "
          f"results in {out / name}", flush=True)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_job, path, overrides, runs_, folder): (key, folder, planned, digest)
                   for _, path, runs_, folder, key, planned, digest in jobs}
        for i, fut in enumerate(as_completed(futures), 1):
            try:
                path, runs_, results = fut.result()
            except Exception as e:  # noqa: BLE001 - one failed job must not stop the others
                print(f"[{i}/{len(jobs)}] a job failed: {type(e).__name__}: {e}", flush=True)
                continue
            if ledger is not None:
                key, folder, planned, digest = futures[fut]
                book = sync_ledger(ledger, read_ledger(ledger), key, Path(folder), runs, planned, digest)
            for result in results:
                together = f", {result['replicas']} simulated together" if result["replicas"] > 1 else ""
                print(f"[{i}/{len(jobs)}] {path} run {result['run']}: average return "
                      f"{result['average_return']:.2f} ({result['wall_s']:.0f} s per run{together})", flush=True)


CURVE_POINTS = 500  # a ledgered learning curve keeps its moving average at no more episodes than this


def _window(planned: int) -> int:
    """The moving-average window of a run's learning curve: 1 % of its episodes, at least 10."""
    return max(10, planned // 100)


def read_ledger(path: Path) -> dict:
    """``{(row, run): record}`` from a ledger of finished runs (JSON Lines); empty when it does not
    exist. A line that is not a run's record stops the script with the file and line at fault."""
    book = {}
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return book
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            book[(str(record["row"]), int(record["run"]))] = record
        except (ValueError, KeyError, TypeError) as e:
            raise SystemExit(f"{path}:{number}: not a record of a finished run ({type(e).__name__}: {e})") from None
    return book


def write_ledger(path: Path, book: dict) -> None:
    """One line per run, sorted by row and run, written atomically: the same runs give the same bytes."""
    lines = [json.dumps(book[k], sort_keys=True, separators=(",", ":")) for k in sorted(book)]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(path), "".join(line + "\n" for line in lines))


def ledgered(book: dict, key: str, run: int, planned: int, digest: str) -> dict | None:
    """The ledger's record of run ``run`` of row ``key`` when it is of the scenario with hash ``digest``
    and holds the ``planned`` episodes; None otherwise."""
    record = book.get((key, run))
    if record is None or record.get("episodes") != planned or record.get("scenario_hash") != digest:
        return None
    return record


def run_record(key: str, folder: Path, result: dict, planned: int, digest: str) -> dict:
    """What a finished run leaves in the ledger: its ``run-R.json``, the row, the scenario's hash, the
    mean over its last 10 % of episodes and its learning curve (the moving average over
    :func:`_window` episodes, at no more than :data:`CURVE_POINTS` evenly spaced episodes)."""
    returns = np.array([float(row["return"]) for row in _rows(folder, result["run"])])
    return {**result, "row": key, "scenario_hash": digest,
            "tail_return": float(np.mean(returns[-max(1, planned // 10):])), "curve": learning_curve(returns, planned)}


def learning_curve(returns: np.ndarray, planned: int) -> dict:
    """A run's learning curve as a ledger keeps it: the moving average of its returns over
    :func:`_window` episodes, at no more than :data:`CURVE_POINTS` evenly spaced episodes."""
    window = _window(planned)
    at = np.unique(np.linspace(0, returns.size - 1, min(CURVE_POINTS, returns.size)).round().astype(int))
    smooth = _moving_average(returns, window)
    return {"window": window, "episode": (at + 1).tolist(), "value": [round(float(v), 4) for v in smooth[at]]}


def sync_ledger(ledger: Path, book: dict, key: str, folder: Path, runs: int, planned: int, digest: str) -> dict:
    """Record in the ledger every run of row ``key`` finished in ``folder`` that it lacks (or holds
    for another scenario); the ledger as it then stands."""
    fresh = {}
    for run in range(runs):
        if ledgered(book, key, run, planned, digest) is not None or not folder.exists():
            continue
        result = finished_result(folder, run, planned)
        if result is not None:
            fresh[(key, run)] = run_record(key, folder, result, planned, digest)
    if fresh:
        book = {**book, **fresh}
        write_ledger(ledger, book)
    return book


def read_constraints(path: Path) -> dict:
    """``name==version`` pins of a constraints file (comments and blank lines skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip()] = version.strip()
    return pins


def stack_differences(pins: dict) -> list:
    """One line per pinned distribution whose installed version differs (or is missing)."""
    out = []
    for name, version in pins.items():
        installed = provenance.library_version((name,))
        if installed != version:
            out.append(f"{name} {version} pinned, {installed or 'not installed'} installed")
    return out


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    c = np.cumsum(np.insert(x, 0, 0.0))
    out = np.empty_like(x)
    for i in range(len(x)):
        lo = max(0, i - window + 1)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def _curve(records: list, figure: Path, title: str, published) -> None:
    """The learning curves of a row's finished runs (their ledger records): each run faintly, the
    mean across runs and ± 1 std around it, and the published average as a dashed line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = min(len(r["curve"]["episode"]) for r in records)
    x = np.asarray(records[0]["curve"]["episode"][:n])
    window = records[0]["curve"]["window"]
    smooth = np.array([r["curve"]["value"][:n] for r in records], dtype=np.float64)
    mean, std = smooth.mean(axis=0), smooth.std(axis=0)
    full = x >= window
    fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=150)
    for i, c in enumerate(smooth):  # each run faintly (full windows only), so a slow run shows as itself
        ax.plot(x[full], c[full], color="0.55", lw=0.5, alpha=0.6, label="each run" if i == 0 else None)
    ax.plot(x, mean, color="C0", lw=1.5, label=f"ours, mean of {len(records)} runs")
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


FINDINGS = {
    ("weight-max", "multiplexer"): (
        "Why below. The scenario matches config_mp.ini in every setting algorithms.md states (20 → 64 → 32 → 1 "
        "Bernoulli units, temperatures 1, λ = 0, constant learning rates [0.01, 1e-3, 1e-4], Adam ε 1e-8 with "
        "bias correction while t < 1,000, biases U(±1e-3), inputs ±1 with the first address bit most "
        "significant, the ±1 reward used directly as δ, one update per sample, 800,000 samples); no departure "
        "from the published algorithm was found. The gap is 0.013 in mean reward, 0.66 percentage points of "
        "accuracy averaged over training (89.8 % against 90.5 %); over the last 10 % of episodes our runs are "
        "99.0 % correct. The verdict rests on digits the README does not print: 0.81 (0.01) stands for a mean in "
        "[0.805, 0.815) and a std in [0.005, 0.015). At a published mean of 0.805 with a std of 0.010 or more the "
        "test is consistent (p = 0.07 at std 0.010, p = 0.17 at 0.015); at 0.805 with std 0.005 (p = 0.02) and "
        "at every published mean of 0.81 or above it is significantly below. The published runs were not "
        "seeded, so nothing finer can be compared."),
    ("weight-max", "lunarlander"): (
        "STE backprop on the same network, at the learning rates its grid chose (actor × 1, critic × 4), "
        "averages 124.46 (17.53) over 10 runs, significantly above this row (Tuned baselines above, p = 0.032): "
        "on LunarLander, Weight Max as published trails a tuned STE backprop. This row's runs on the earlier, "
        "unrecorded stack averaged 107.56 (24.99), and the same test gave p = 0.116; the two sets differ because "
        "NumPy's CPU loops and OpenBLAS's kernels change a run's numbers "
        "([reliability.md](../reliability.md#same-numbers-on-another-machine)), so the verdict sits near the "
        "test's threshold."),
    ("map-prop", "lunarlander"): (
        "Our mean is 22.9 below the published one, but with 10 runs on each side and stds of 25 to 31 the "
        "two-sided test does not separate them (the one-sided criterion this page used before, mean ≥ published "
        "mean − one std, was met too). The scenario matches config_ll.ini in every setting algorithms.md states "
        "(temperatures [1, 1, 8], variances actor [0.06, 0.2, 0.2] and critic [0.003, 0.01, 0.01], λ 0.97, "
        "constant learning rates, Adam ε 1e-9, 20 relaxation steps of 0.5 σ², biases 0, 2,500 episodes). The "
        "task differs: LunarLander-v3 here, v2 published. With the wind off, as here, gymnasium's version "
        "history lists two changes from v2 to v3: wider declared observation bounds (not the observations "
        "themselves) and a fix of a non-deterministic world reset; what these do to learning was not measured. Backprop on the same network, at the learning rates its "
        "grid chose (critic × 4), averages 142.55 (31.43) over 10 runs, significantly above this row (Tuned "
        "baselines above): on LunarLander, MAP Propagation as published trails a tuned backprop. These 10 runs, "
        "made again on the pinned stack (2026-12-06, commit 18b541f), give the per-run averages the earlier, "
        "unrecorded stack gave (recorded by 7507bda) to the last printed digit. Runs 5-9 name commit fd2beea in "
        "their stack, the checkout when they ended: a run then took the commit at its end; it now takes it as it "
        "starts."),
    ("map-prop", "multiplexer"): (
        "Its runs on the earlier, unrecorded stack (recorded by c20f901) printed 0.924, 0.929, 0.917, 0.924, "
        "0.925, 0.923, 0.930, 0.923, 0.926, 0.924; on the pinned stack runs 2, 3, 4, 7, 8 and 9 differ from "
        "those in the third printed decimal, and the row's mean and std are the same to three decimals. Not "
        "traced: the batch-128 products go through OpenBLAS, whose kernels are part of the stack "
        "([reliability.md](../reliability.md#same-numbers-on-another-machine)), but c20f901 was not run again "
        "on the pinned stack, as the backprop rows' recording commits were."),
    ("map-prop", "regression"): (
        "Its runs on the earlier, unrecorded stack (recorded by c20f901) printed -0.384 for run 0 and runs 1-9 "
        "as here to the last printed digit. Run 0 on the pinned stack averages -0.3144, here and with c20f901 "
        "itself run again on it (one run alone, `asyncneurons run`): all 7,812 batch rewards equal, so the "
        "engine has not changed this run since; how the earlier run 0 came out otherwise (its stack, or a "
        "resume or replica path of that time) was not recorded and is not known. The row's mean moves from "
        "-0.380 to -0.373."),
    ("map-prop", "backprop-cartpole"): (
        "Its runs on the earlier, unrecorded stack (2026-11-30) averaged 444.59 (18.43); these, from the same "
        "scenario file on the pinned stack, differ run by run. The commit that recorded those runs (1e4afa2), "
        "run again on the pinned stack, gives these runs' episodes to the last digit (runs 0-4, all 1,000 "
        "episodes), so what changed in between is the stack, not the engine; the two sets' means are 0.2 "
        "standard deviations apart."),
    ("map-prop", "backprop-lunarlander"): (
        "Its runs on the earlier, unrecorded stack (recorded by 7507bda, 2026-11-30) averaged 84.52 (28.13); these, "
        "from the same scenario file on the pinned stack, differ run by run. 7507bda itself, run again on the pinned "
        "stack (run 0 alone, `asyncneurons run`), gives run 0's 2,500 episodes here to the last digit (returns and "
        "lengths), so what changed in between is the stack, not the engine, as for the CartPole and "
        "MountainCarContinuous baselines; the two sets' means are 0.2 standard deviations apart."),
    ("map-prop", "backprop-mountaincar-continuous"): (
        "Its runs on the earlier, unrecorded stack (2026-11-30) averaged -0.13 (55.68); these, from the same "
        "scenario file on the pinned stack, differ run by run, where the other MAP rows run again on this "
        "stack gave their earlier per-run averages to the last printed digit (but for six multiplexer runs, in the "
        "third decimal, and regression run 0). The commit that recorded those "
        "runs (5d44f0c), run again on the pinned stack, gives these runs' episodes to the last digit (runs "
        "0-4, all 500 episodes), so what changed in between is the stack, not the engine; with a std of about "
        "50 across runs, the two sets' means are 0.4 standard deviations apart."),
}


def _stack_text(stacks: list) -> str:
    """The stack(s) the finished runs record, in one sentence."""
    if not stacks:
        return "no finished runs"
    known = [s for s in stacks if s]
    lines = sorted({provenance.describe(s) for s in known})
    missing = len(stacks) - len(known)
    text = "; or ".join(lines) if lines else ""
    if missing:
        text += ("; " if text else "") + f"{missing} run(s) made before the stack was recorded"
    return text


PARTLY = "Rows not yet run on the stack above are kept as this page recorded them before: "


def _kept_labels(page: str) -> set:
    """The rows a report page keeps from before its ledger: every row of a page restated whole,
    or those its :func:`_partly_restated` sentence names."""
    if RESTATED in page:
        return {label for _, _, label, *_ in (row for spec in SETS.values() for row in spec["rows"])}
    found = re.search(rf"^{re.escape(PARTLY)}(.*?)\. Their run folders", page, re.M)
    return set(found.group(1).split("; ")) if found else set()


def _partly_restated(cells: list) -> str:
    labels = [c["label"] for c in cells if c.get("restated")]
    return (f"{PARTLY}"
            f"{'; '.join(labels)}. Their run folders are not in the repository, so their means and stds "
            "are computed from the per-run averages printed in the notes below (2 or 3 decimals), and their "
            "figures are those drawn then.")


RESTATED = ("The run folders behind these figures are not in the repository: the table is computed from the "
            "per-run averages printed in the notes below (rounded to 2 or 3 decimals), so a mean or std may "
            "differ from the unrounded one in its last digit.")


BASELINE_PREFIXES = ("global-reinforce-", "ste-backprop-", "backprop-")


def tuned_baselines(docs: Path) -> dict:
    """``{baseline row key: (per-run averages, grid point)}`` for every baseline whose 10 final runs
    at its tuned rates are recorded in ``docs/baselines.json`` (written by
    ``scripts/tune_baselines.py``); the grid point names the scales chosen, e.g. ``actor-x4-critic-x1``."""
    try:
        ledger = json.loads((docs / "baselines.json").read_text())
    except (OSError, ValueError):
        return {}
    found = {}
    for key, stages in ledger.items() if isinstance(ledger, dict) else ():
        final = stages.get("final") if isinstance(stages, dict) else None
        if not final or final.get("status") != "complete" or not final.get("run_averages"):
            continue
        chosen = set(final.get("overrides", []))
        point = next((st[len("grid/"):] for st, e in sorted(stages.items())
                      if st.startswith("grid/") and chosen <= set(e.get("overrides", []))), None)
        found[key] = ([float(a) for a in final["run_averages"]], point)
    return found


def _p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _rule_key(key: str):
    """The rule's row a baseline row stands beside (``ste-backprop-cartpole`` -> ``cartpole``)."""
    return next((key[len(p):] for p in BASELINE_PREFIXES if key.startswith(p)), None)


def _tuned_lines(cells: list, tuned: dict) -> list:
    """The tuned baselines beside the rule they are compared with: each baseline's 10 runs at its
    tuned rates, and a two-sided Welch test of the rule's per-run averages against them."""
    by_key = {c["key"]: c for c in cells}
    rows = []
    for c in cells:
        if c["key"] not in tuned:
            continue
        base, point = tuned[c["key"]]
        base = np.asarray(base)
        rule = by_key.get(_rule_key(c["key"]))
        digits = 3 if max(abs(base.mean()), base.std()) < 10 else 2
        lo, hi = confidence_interval(base)
        rates = "" if point is None else point.replace("actor-x", "actor × ").replace("-critic-x", ", critic × ")
        test = verdict = ours = ""
        if rule is not None and rule["avgs"] is not None and len(rule["avgs"]) >= 2:
            claim = judge(rule["avgs"], float(base.mean()), float(base.std()), base.size)
            ours = f"{claim.mean:.{digits}f} ({claim.std:.{digits}f})"
            test = f"{claim.t:.2f} ({claim.df:.1f}), {_p_text(claim.p)}"
            verdict = claim.verdict if claim.verdict == "consistent" else f"**{claim.verdict}**"
        rows.append(f"| {c['label']} | {rates} | {base.mean():.{digits}f} ({base.std():.{digits}f}) | "
                    f"[{lo:.{digits}f}, {hi:.{digits}f}] | {ours} | {test} | {verdict} |")
    if not rows:
        return []
    return ["## Tuned baselines", "",
            "Each baseline at the learning rates its grid chose ([baselines.md](baselines.md)), 10 runs of full "
            "length, beside our row of the rule on the same task (for Weight Max, the row without traces). The test is a two-sided Welch "
            f"test of the rule's per-run averages against the baseline's, at level {ALPHA:g}: the verdict reads "
            "as the rule against the baseline. Baselines whose final runs have not finished are not listed.", "",
            "| baseline | tuned rates | baseline mean (std) | 95 % CI | rule mean (std) | Welch t (df), p | "
            "rule against baseline |", "|---|---|---|---|---|---|---|", *rows, ""]


def _render(name: str, cells: list, runs_planned: int, stacks_text: str, restated: bool = False,
            tuned: dict | None = None) -> str:
    """The report page from its cells (one dict per row of the set, in order) and the tuned
    baselines (:func:`tuned_baselines`)."""
    tuned = {} if tuned is None else tuned
    spec = SETS[name]
    lines = [f"# {spec['title']}", "",
             f"Published figures: {spec['source']}. Ours: the same metric (each run's average return over "
             "all its training episodes; mean and population std across runs), from the scenarios named "
             "below, run by `python scripts/reproduce.py " + name + "`.", "",
             f"Each published cell is tested by a two-sided Welch t-test of our {runs_planned} per-run averages "
             f"against the published mean and std ({PUBLISHED_RUNS} runs; the published std is a population std "
             f"and is converted to a sample std), at level {ALPHA:g}: *consistent*, *significantly below* or "
             "*significantly above*. The interval is the 95 % t-interval of our mean. "
             "([asyncneurons/study/claims.py](../../asyncneurons/study/claims.py))", "",
             f"Stack: {stacks_text}.", "", *([RESTATED, ""] if restated else []),
             *([_partly_restated(cells), ""] if not restated and any(c.get("restated") for c in cells) else []),
             "| task | published mean (std) | ours mean (std) | 95 % CI of our mean | Welch t (df), p | verdict | runs "
             "| wall time per run | scenario |",
             "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for c in cells:
        label, pub, pub_std, path = c["label"], c["pub"], c["pub_std"], c["path"]
        pub_text = "n.a." if pub is None else f"{pub:g} ({pub_std:g})"
        avgs = c["avgs"]
        if avgs is None or len(avgs) == 0:
            lines.append(f"| {label} | {pub_text} | not run yet | | | | 0/{runs_planned} | | `{path}` |")
            continue
        avgs = np.asarray(avgs, dtype=np.float64)
        mean, std = float(avgs.mean()), float(avgs.std())
        digits = 3 if abs(mean) < 10 else 2
        ci = test = verdict_cell = ""
        claim = None
        if len(avgs) >= 2:
            claim = judge(avgs, pub, pub_std) if pub is not None else None
            lo, hi = confidence_interval(avgs)
            ci = f"[{lo:.{digits}f}, {hi:.{digits}f}]"
        if claim is not None:
            test = f"{claim.t:.2f} ({claim.df:.1f}), {claim.p:.3f}"
            verdict_cell = claim.verdict if claim.verdict == "consistent" else f"**{claim.verdict}**"
        lines.append(f"| {label} | {pub_text} | {mean:.{digits}f} ({std:.{digits}f}) | {ci} | {test} | {verdict_cell} "
                     f"| {len(avgs)}/{runs_planned} | {c['wall']} | `{path}` |")
        verdict = ""
        if claim is not None and claim.verdict != "consistent":
            verdict = (f"**{claim.verdict.capitalize()}** the published {pub:g} ({pub_std:g}): our mean "
                       f"{mean:.{digits}f}, 95 % interval {ci}, Welch t = {claim.t:.2f}, p = {claim.p:.3f}. ")
        elif claim is not None:
            verdict = f"Consistent with the published {pub:g} ({pub_std:g}) (Welch p = {claim.p:.3f}). "
        finding = FINDINGS.get((name, c["key"]), "")
        note = c["note"]
        notes.append(f"### {label}\n\n![{label}](figures/{name}-{c['key']}.png)\n\n" + verdict
                     + (f"{finding} " if finding else "") + (f"{note}. " if note else "") + "Per-run averages: "
                     + ", ".join(f"{a:.{digits}f}" for a in avgs) + f". {c['tails']}\n")
    lines += ["", "Wall time is per run on a 2-core machine (CPython 3.11): one run per core, or, for runs "
              "simulated together as replicas (each bit-identical to the run alone), the chunk's wall time "
              "divided by its runs.", "",
              "The baseline rows use the settings their scenario files name; [baselines.md](baselines.md) tunes "
              "each baseline's learning rates on a small grid and runs it 10 times at the chosen ones.", "",
              *_tuned_lines(cells, tuned), "## Learning curves", "", *notes]
    return "\n".join(lines) + "\n"


def report(name: str, out: Path, docs: Path, runs_planned: int, episodes=None, ledger: Path | None = None) -> Path:
    """Rewrite ``docs/NAME.md`` and its figures from the ledger (``docs/NAME-runs.jsonl`` unless
    given), after recording in it the finished runs of ``out`` it lacks. A row the page keeps from
    before its ledger (:func:`_kept_labels`) stays as the page records it until the ledger holds
    as many of its runs, or all of them."""
    spec = SETS[name]
    figures = docs / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    ledger = docs / f"{name}-runs.jsonl" if ledger is None else ledger
    book = read_ledger(ledger)
    target = docs / f"{name}.md"
    page = target.read_text() if target.exists() else ""
    kept = _kept_labels(page)
    overrides = [] if episodes is None else [f"experiment.episodes={episodes}"]
    cells, stacks = [], []
    for key, path, label, pub, pub_std, note in spec["rows"]:
        cell = {"key": key, "path": path, "label": label, "pub": pub, "pub_std": pub_std, "note": note,
                "avgs": None, "wall": "", "tails": ""}
        cells.append(cell)
        s = load_scenario(ROOT / path, overrides)
        planned, digest = s.experiment.episodes, scenario_hash(s)
        book = sync_ledger(ledger, book, key, out / name / key, runs_planned, planned, digest)
        records = [r for r in (ledgered(book, key, run, planned, digest) for run in range(runs_planned)) if r]
        before = _recorded(page, label) if len(records) < runs_planned and label in kept else None
        if before is not None and len(before["avgs"]) >= len(records):
            # a row run before the ledger kept it, and not yet run again in full: as the page
            # records it, figure and all
            cell.update(before, restated=True)
            stacks += [None] * len(before["avgs"])
            continue
        if not records:
            continue
        cell["avgs"] = [r["average_return"] for r in records]
        cell["wall"] = f"{np.mean([r['wall_s'] for r in records]):.0f} s"
        stacks += [r.get("stack") for r in records]
        digits = 3 if abs(np.mean(cell["avgs"])) < 10 else 2
        _curve(records, figures / f"{name}-{key}.png", f"{label}: {len(records)} runs × {planned} episodes", pub)
        tails = [r["tail_return"] for r in records]
        cell["tails"] = (f"Mean over the last 10 % of episodes, across runs: {np.mean(tails):.{digits}f} "
                         f"({np.std(tails):.{digits}f}).")
    target.write_text(_render(name, cells, runs_planned, _stack_text(stacks), tuned=tuned_baselines(docs)))
    return target


def _recorded(page: str, label: str) -> dict | None:
    """A row's per-run averages, tail sentence and wall time as report ``page`` prints them (2 or 3
    decimals); None when the page has no runs of the row."""
    section = re.search(rf"^### {re.escape(label)}\n(.*?)(?=^### |\Z)", page, re.M | re.S)
    if section is None or "Per-run averages: " not in section.group(1):
        return None
    row = re.search(rf"^\| {re.escape(label)} \|.*\| (\d+ s) \| `", page, re.M)
    values = re.search(r"Per-run averages: (.*?)\. (Mean over the last.*?\(.*?\)\.)", section.group(1), re.S)
    return {"avgs": [float(v) for v in values.group(1).split(", ")], "tails": values.group(2),
            "wall": row.group(1) if row else ""}


def restate(name: str, docs: Path, runs_planned: int) -> Path:
    """Rewrite an existing report from the per-run averages, wall times and tail sentences it
    records (as printed there: 2 or 3 decimals), when its run folders are not at hand."""
    target = docs / f"{name}.md"
    page = target.read_text()
    stack = re.search(r"^Stack: (.*)\.$", page, re.M)
    cells = []
    for key, path, label, pub, pub_std, note in SETS[name]["rows"]:
        cell = {"key": key, "path": path, "label": label, "pub": pub, "pub_std": pub_std, "note": note,
                "avgs": None, "wall": "", "tails": ""}
        cell.update(_recorded(page, label) or {})
        cells.append(cell)
    stacks_text = stack.group(1) if stack else "not recorded for these runs (they were made before run folders recorded it)"
    target.write_text(_render(name, cells, runs_planned, stacks_text, restated=True, tuned=tuned_baselines(docs)))
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
    ap.add_argument("--restate", action="store_true",
                    help="rewrite the report's tables from the per-run averages it records")
    ap.add_argument("--constraints", type=Path, default=ROOT / "constraints" / "reproduce.txt",
                    help="the pinned stack to run on")
    ap.add_argument("--any-stack", action="store_true", help="run even where the installed versions differ")
    ap.add_argument("--ledger", type=Path, default=None,
                    help="the ledger of finished runs (default: DOCS/SET-runs.jsonl)")
    ap.add_argument("--chunk", type=int, default=None, help="at most this many runs simulated together as replicas")
    args = ap.parse_args(argv)
    ledger = args.docs / f"{args.set}-runs.jsonl" if args.ledger is None else args.ledger
    if args.restate:
        print(f"report: {restate(args.set, args.docs, args.runs)}")
        return
    if not args.report_only:
        try:
            pins = read_constraints(args.constraints)
        except OSError as e:
            print(f"{args.constraints}: cannot read the constraints file ({e.strerror})", file=sys.stderr)
            sys.exit(2)
        differ = stack_differences(pins)
        for line in differ:
            print(f"{args.constraints}: {line}", file=sys.stderr)
        if differ and not args.any_stack:
            print(f"{args.constraints}: the installed stack differs from the pinned one; install it with "
                  f"`pip install -e . -c {args.constraints}` or pass --any-stack", file=sys.stderr)
            sys.exit(2)
        run_set(args.set, args.runs, args.workers, args.out, args.only, args.episodes, ledger, args.chunk)
    print(f"report: {report(args.set, args.out, args.docs, args.runs, args.episodes, ledger)}")


if __name__ == "__main__":
    main()
