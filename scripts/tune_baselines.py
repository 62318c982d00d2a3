"""Tune the baselines of the published tables on a small documented grid, then run them 10 times.

    nice -n 10 python scripts/tune_baselines.py [--out runs/tuning] [--only NAME,...] [--report-only]
    nice -n 10 python scripts/tune_baselines.py --cost 20        # measure, run nothing else

Each baseline (a scenario of ``scenarios/paper/baselines/``) is tuned over its learning rates:
the actor's per-layer rates (start and end of their schedule) scaled by 0.25, 1 or 4, crossed
with the critic's scaled by 0.25, 1 or 4: nine points (three, the actor's alone, for a baseline
without a critic, the multiplexer's), each run for 3 seeds (runs 0–2 of experiment seed 100, so
no tuning run is one of the final runs) on a shortened run (about 40 % of the published
episodes). The point with the highest mean, across its seeds, of each seed's average return over
all its episodes (the published metric) is chosen; a tie keeps the published rates. The chosen
point is then run 10 times at full length (runs 0–9 of seed 0, as the tables' runs are). Every
stage writes an ordinary run folder (``summary.json`` with the stack) and resumes where it
stopped when run again; the report ``docs/results/baselines.md`` is rewritten from whatever has
finished, saying exactly what has.

Every finished stage is also recorded in the ledger ``docs/results/baselines.json`` (written
atomically, keys sorted): per baseline and stage (``grid/actor-x1-critic-x4``, ``final``) its
overrides, the hash of the resolved scenario, runs, episodes, status, each run's average return,
mean, std, wall time and stack. A stage whose run folder is gone is read from the ledger, by the
report and by the choice alike; an entry whose scenario has changed since (or whose overrides,
runs or episodes are no longer this script's) is ignored and named as stale in the report.
``--report-only`` first records finished folders the ledger lacks.

Cost, measured by ``nice -n 5 python scripts/tune_baselines.py --cost 20`` (the first 20 episodes,
2,000 for the multiplexer, of the published rates' grid point, 3 seeds as replicas, on the shared
2-core machine; the time per step varied by up to 2.2x with its load between two measurements).
Full tuning = every grid point at the shortened length plus the 10 final runs, at the first
episodes' mean length and at the task's cap on an episode's steps:

| baseline | per step (3 seeds) | first episodes' length | points | at that length | cap | at the cap |
|---|---|---|---|---|---|---|
| global-reinforce-cartpole | 1.07 ms | 18 | 9 | 0.0 h | 500 | 1.0 h |
| backprop-acrobot | 1.13 ms | 260 | 9 | 0.3 h | 500 | 0.5 h |
| ste-backprop-acrobot | 1.51 ms | 268 | 9 | 0.8 h | 500 | 1.5 h |
| backprop-cartpole | 0.94 ms | 29 | 9 | 0.1 h | 500 | 0.9 h |
| global-reinforce-acrobot | 1.28 ms | 465 | 9 | 1.2 h | 500 | 1.2 h |
| ste-backprop-cartpole | 1.36 ms | 17 | 9 | 0.0 h | 500 | 1.3 h |
| ste-backprop-multiplexer | 1.30 ms | 1 | 3 | 1.3 h | 1 | 1.3 h |
| global-reinforce-multiplexer | 1.49 ms | 1 | 3 | 1.5 h | 1 | 1.5 h |
| backprop-mountaincar-continuous | 1.79 ms | 990 | 9 | 1.7 h | 999 | 1.7 h |
| global-reinforce-lunarlander | 1.28 ms | 96 | 9 | 0.7 h | 1000 | 7.4 h |
| backprop-lunarlander | 2.06 ms | 96 | 9 | 1.0 h | 1000 | 9.9 h |
| ste-backprop-lunarlander | 2.05 ms | 128 | 9 | 1.5 h | 1000 | 11.8 h |

Episodes lengthen as CartPole and LunarLander are learned (the cost lies between the two
columns) and shorten as Acrobot and MountainCar are (it lies near or below the first). The
order of ``BASELINES`` follows these, corrected by the finished stages of an earlier tuning
(grid + final runs: global-reinforce-cartpole's grid 144 s, backprop-acrobot 1,689 s,
backprop-cartpole 3,108 s; their run folders are lost, so they are not in the ledger).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asyncneurons.study import provenance  # noqa: E402
from asyncneurons import tasks  # noqa: E402
from asyncneurons.study.claims import confidence_interval  # noqa: E402
from asyncneurons.study.folders import write_atomic  # noqa: E402
from asyncneurons.study.runner import run_experiment  # noqa: E402
from asyncneurons.model.scenario import load_scenario, to_toml  # noqa: E402

SCALES = (0.25, 1.0, 4.0)
RULE_OF = {"map-prop": "MAP Propagation", "weight-max": "Weight Max (no traces)"}
TUNING_SEED = 100
TUNING_RUNS = 3
LEDGER = "baselines.json"  # beside the report, in the results folder

# name -> (table it serves, task label, shortened episodes), in the order they are tuned: the
# cheapest first (see the cost table in the docstring)
BASELINES = {
    "global-reinforce-cartpole": ("weight-max", "CartPole-v1", 400),
    "backprop-acrobot": ("map-prop", "Acrobot-v1", 200),
    "ste-backprop-acrobot": ("weight-max", "Acrobot-v1", 400),
    "backprop-cartpole": ("map-prop", "CartPole-v1", 400),
    "global-reinforce-acrobot": ("weight-max", "Acrobot-v1", 400),
    "ste-backprop-cartpole": ("weight-max", "CartPole-v1", 400),
    "ste-backprop-multiplexer": ("weight-max", "Multiplexer (20-bit)", 320000),
    "global-reinforce-multiplexer": ("weight-max", "Multiplexer (20-bit)", 320000),
    "backprop-mountaincar-continuous": ("map-prop", "MountainCarContinuous-v0", 200),
    "global-reinforce-lunarlander": ("weight-max", "LunarLander-v3", 1200),
    "backprop-lunarlander": ("map-prop", "LunarLander-v3", 1000),
    "ste-backprop-lunarlander": ("weight-max", "LunarLander-v3", 1200),
}

# name -> what was found on tracing why its final runs at the scenario as it stands do not give the
# per-run averages its table's row records (replaces "has not been traced" in the report)
TRACED = {
    "backprop-cartpole": (
        "Traced: the matrix-product kernels. NumPy's OpenBLAS picks its kernels by CPU, and those of the "
        "row's runs (made on 30 November, stack not recorded) were its Haswell kernels, where this "
        "machine gets SkylakeX ones that add the critic's products in another order: with "
        "OPENBLAS_CORETYPE=Haswell, commit 1e4afa2, which wrote the row, and today's tree give run 0 443.07 here, as the "
        "row records, and 431.26 without. Neither script nor the engine changed the numbers: the scenario "
        "resolves to the same bits through both scripts, and commits 2e903b1 to 1e4afa2 give today's runs "
        "episode by episode on this machine, alone, as replicas or resumed. Run folders now record the "
        "kernel set (blas_core) and NumPy's CPU features (numpy_simd), which change a run's bits as well "
        "(run 0: 408.71 with NumPy's AVX2 code)."),
}


def _scaled(value, factor):
    if value is None:
        return None
    values = value if isinstance(value, (list, tuple)) else [value]
    return "[" + ", ".join(repr(float(v) * factor) for v in values) + "]"


def has_critic(s) -> bool:
    """Whether the scenario learns from a critic's TD error (single-step tasks learn from the reward)."""
    return s.learning.critic != "none"


def grid_points(s) -> list:
    """The grid: (actor scale, critic scale) pairs; the critic scale is None without a critic."""
    critics = SCALES if has_critic(s) else (None,)
    return [(actor, critic) for actor in SCALES for critic in critics]


def point_overrides(s, actor: float, critic: float | None) -> list:
    """Overrides scaling the actor's and the critic's learning rates (both ends of a schedule); a
    scenario without a critic has only the actor's (``critic`` is then None)."""
    L = s.learning
    out = [f"learning.lr={_scaled(L.lr, actor)}"]
    if L.lr_end is not None:
        out.append(f"learning.lr_end={_scaled(L.lr_end, actor)}")
    if has_critic(s):
        if critic is None:
            raise ValueError("a scenario with a critic needs a critic scale")
        out.append(f"learning.critic_lr={_scaled(L.critic_lr, critic)}")
        if L.critic_lr_end is not None:
            out.append(f"learning.critic_lr_end={_scaled(L.critic_lr_end, critic)}")
    elif critic is not None:
        raise ValueError("a scenario without a critic (learning.critic = \"none\") has no critic scale")
    return out


def _label(actor, critic=None):
    return f"actor-x{actor:g}" + ("" if critic is None else f"-critic-x{critic:g}")


def scenario_path(name: str) -> Path:
    return ROOT / "scenarios" / "paper" / "baselines" / f"{name}.toml"


def scenario_hash(path) -> str:
    """The first 16 hex digits of the SHA-256 of the resolved scenario (every default filled in),
    so an edited comment keeps a ledger entry and a changed setting or default makes it stale."""
    return hashlib.sha256(to_toml(load_scenario(path)).encode()).hexdigest()[:16]


def _tuning_overrides(s, actor, critic, short: int) -> list:
    return point_overrides(s, actor, critic) + [f"experiment.episodes={short}", f"experiment.seed={TUNING_SEED}",
                                                f"experiment.runs={TUNING_RUNS}", f"engine.replicas={TUNING_RUNS}"]


# ---------------------------------------------------------------- the ledger of finished stages

def read_ledger(path: Path) -> dict:
    """``{baseline: {stage: entry}}``; empty when the file does not exist."""
    try:
        ledger = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise SystemExit(f"{path}: not a ledger of baseline stages ({e})") from None
    if not isinstance(ledger, dict):
        raise SystemExit(f"{path}: not a ledger of baseline stages (a JSON object is expected)")
    return ledger


def write_ledger(path: Path, ledger: dict) -> None:
    """Atomically, with sorted keys: the same stages give the same bytes."""
    write_atomic(Path(path), json.dumps(ledger, indent=1, sort_keys=True) + "\n")


def ledger_entry(summary: dict, overrides: list, digest: str, runs: int, episodes: int, wall_s: float) -> dict:
    """What a finished stage leaves in the ledger: enough to report it and choose from it."""
    entry = {"overrides": list(overrides), "scenario_hash": digest, "runs": runs, "episodes": episodes,
             "status": summary["status"], "run_averages": [r["average_return"] for r in summary.get("runs", [])],
             "mean": summary.get("mean"), "std": summary.get("std"),
             "wall_s": wall_s if np.isfinite(wall_s) else None, "stack": summary.get("stack")}
    if summary["status"] == "diverged":
        entry["message"] = summary.get("message", "")
    return entry


def record(ledger_path: Path | None, name: str, stage: str, entry: dict) -> None:
    if ledger_path is None:
        return
    ledger = read_ledger(ledger_path)
    if ledger.get(name, {}).get(stage) == entry:
        return
    ledger.setdefault(name, {})[stage] = entry
    write_ledger(ledger_path, ledger)


def _from_ledger(entry: dict):
    """A ledger entry as (summary, wall time), the summary shaped like ``summary.json``."""
    summary = {"status": entry["status"], "mean": entry["mean"], "std": entry["std"], "stack": entry.get("stack"),
               "runs": [{"run": r, "episodes": entry["episodes"], "average_return": a}
                        for r, a in enumerate(entry["run_averages"])], "from_ledger": True}
    if "message" in entry:
        summary["message"] = entry["message"]
    wall = entry.get("wall_s")
    return summary, float("nan") if wall is None else float(wall)


def ledger_stage(ledger: dict, name: str, stage: str, overrides: list, digest: str, runs: int, episodes: int):
    """The ledger's (summary, wall time) of a stage, or None; and why an entry is stale, or None."""
    entry = ledger.get(name, {}).get(stage)
    if entry is None:
        return None, None
    if entry.get("scenario_hash") != digest:
        return None, "the scenario has changed since"
    if entry.get("overrides") != list(overrides) or entry.get("runs") != runs or entry.get("episodes") != episodes:
        return None, "its overrides, runs or episodes are not this script's"
    return _from_ledger(entry), None


def stale_stages(ledger_path: Path, name: str, out: Path) -> list:
    """(stage, reason) of each ledger entry of ``name`` that no longer describes its stage."""
    ledger = read_ledger(ledger_path)
    s = load_scenario(scenario_path(name))
    digest, short = scenario_hash(scenario_path(name)), BASELINES[name][2]
    expected = {f"grid/{_label(a, c)}": (_tuning_overrides(s, a, c, short), TUNING_RUNS, short)
                for a, c in grid_points(s)}
    stale = []
    for stage in sorted(ledger.get(name, {})):
        if stage == "final":
            continue  # its overrides follow the choice; checked where it is read
        if stage not in expected:
            stale.append((stage, "no such grid point"))
            continue
        _, why = ledger_stage(ledger, name, stage, expected[stage][0], digest, *expected[stage][1:])
        if why:
            stale.append((stage, why))
    if "final" in ledger.get(name, {}):
        entry = ledger[name]["final"]
        if entry.get("scenario_hash") != digest:
            stale.append(("final", "the scenario has changed since"))
        elif _final_point(name, out, ledger_path) is not None:
            actor, critic = _final_point(name, out, ledger_path)
            _, why = ledger_stage(ledger, name, "final", point_overrides(s, actor, critic), digest,
                                  s.experiment.runs, s.experiment.episodes)
            if why:
                stale.append(("final", why))
    return stale


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


def _places(scale: float) -> int:
    """Decimals that show a figure of this size: three below 1 (a multiplexer's mean reward lies
    in [-1, 1]), two otherwise (returns)."""
    return 3 if abs(scale) < 1 else 2


def _text(summary) -> str:
    if summary["status"] == "diverged":
        return f"diverged ({summary.get('message', '')[:80]})"
    p = _places(max(abs(summary["mean"]), summary["std"]))
    return f"{summary['mean']:.{p}f} ({summary['std']:.{p}f})"


def _experiment(path, overrides, folder: Path, runs: int, episodes: int, *, ledger_path=None, name=None,
                stage=None):
    """A stage's summary: from its finished folder, else from a fresh ledger entry, else run now.
    A finished stage is recorded in the ledger."""
    digest = scenario_hash(path)
    done = _summary(folder, runs, episodes)
    if done is None and ledger_path is not None:
        found, _ = ledger_stage(read_ledger(ledger_path), name, stage, overrides, digest, runs, episodes)
        if found is not None:
            return found[0]
    if done is None:
        s = load_scenario(path, overrides)
        start = time.perf_counter()
        run_experiment(s, folder, resume=(folder / "scenario.toml").exists())
        (folder / "cost.json").write_text(json.dumps({"wall_s": time.perf_counter() - start}) + "\n")
        done = _summary(folder, runs, episodes)
    if done is not None:
        record(ledger_path, name, stage, ledger_entry(done, overrides, digest, runs, episodes, _cost(folder)))
    return done


def _cost(folder: Path) -> float:
    try:
        return float(json.loads((folder / "cost.json").read_text())["wall_s"])
    except (OSError, ValueError, KeyError):
        return float("nan")


def tune(name: str, out: Path, ledger_path: Path | None = None) -> None:
    table, label, short = BASELINES[name]
    path = scenario_path(name)
    s = load_scenario(path)
    for actor, critic in grid_points(s):
        stage = f"grid/{_label(actor, critic)}"
        summary = _experiment(path, _tuning_overrides(s, actor, critic, short), out / name / stage, TUNING_RUNS,
                              short, ledger_path=ledger_path, name=name, stage=stage)
        print(f"{name} {_label(actor, critic)}: {_text(summary)}", flush=True)
    actor, critic = choose(name, out, ledger_path)
    summary = _experiment(path, point_overrides(s, actor, critic), out / name / "final", s.experiment.runs,
                          s.experiment.episodes, ledger_path=ledger_path, name=name, stage="final")
    print(f"{name} final at {_label(actor, critic)}: {_text(summary)}", flush=True)


def sync_ledger(out: Path, ledger_path: Path) -> None:
    """Record every finished stage under ``out`` that the ledger lacks (stages finished before it
    existed, or by a run interrupted between finishing and recording)."""
    for name, (_, _, short) in BASELINES.items():
        path = scenario_path(name)
        s = load_scenario(path)
        stages = [(f"grid/{_label(a, c)}", _tuning_overrides(s, a, c, short), TUNING_RUNS, short)
                  for a, c in grid_points(s)]
        point = _final_point(name, out)
        if point is not None:
            stages.append(("final", point_overrides(s, *point), s.experiment.runs, s.experiment.episodes))
        for stage, over, runs, episodes in stages:
            folder = out / name / stage
            done = _summary(folder, runs, episodes)
            if done is not None:
                record(ledger_path, name, stage, ledger_entry(done, over, scenario_hash(path), runs, episodes,
                                                              _cost(folder)))


def grid_results(name: str, out: Path, ledger_path: Path | None = None) -> dict:
    """{(actor, critic): (summary, wall time)} of every finished grid point: from its run folder,
    else from a fresh ledger entry."""
    short = BASELINES[name][2]
    path = scenario_path(name)
    s = load_scenario(path)
    ledger = read_ledger(ledger_path) if ledger_path is not None else {}
    digest = scenario_hash(path) if ledger else None
    results = {}
    for actor, critic in grid_points(s):
        stage = f"grid/{_label(actor, critic)}"
        folder = out / name / stage
        summary = _summary(folder, TUNING_RUNS, short)
        if summary is not None:
            results[(actor, critic)] = (summary, _cost(folder))
        elif ledger:
            found, _ = ledger_stage(ledger, name, stage, _tuning_overrides(s, actor, critic, short), digest,
                                    TUNING_RUNS, short)
            if found is not None:
                results[(actor, critic)] = found
    return results


def choose(name: str, out: Path, ledger_path: Path | None = None):
    """The grid point with the highest mean; the published rates on a tie."""
    results = grid_results(name, out, ledger_path)
    return max(results, key=lambda k: (_score(results[k][0]), k[0] == 1.0 and k[1] in (1.0, None)))


def _final_point(name: str, out: Path, ledger_path: Path | None = None):
    """The chosen point once the grid is complete, else None."""
    s = load_scenario(scenario_path(name))
    results = grid_results(name, out, ledger_path)
    return choose(name, out, ledger_path) if len(results) == len(grid_points(s)) else None


def final_result(name: str, out: Path, ledger_path: Path | None = None):
    """The final runs' (summary, wall time) at the chosen point: from the run folder, else from a
    fresh ledger entry; None while unfinished."""
    path = scenario_path(name)
    s = load_scenario(path)
    point = _final_point(name, out, ledger_path)
    if point is None:
        return None
    folder = out / name / "final"
    summary = _summary(folder, s.experiment.runs, s.experiment.episodes)
    if summary is not None:
        return summary, _cost(folder)
    if ledger_path is None:
        return None
    found, _ = ledger_stage(read_ledger(ledger_path), name, "final", point_overrides(s, *point), scenario_hash(path),
                            s.experiment.runs, s.experiment.episodes)
    return found


def measure_cost(name: str, episodes: int) -> dict:
    """Wall time of the first ``episodes`` episodes of one grid point (the published rates, its
    3 seeds simulated together as replicas, in a temporary folder), and the full tuning cost it
    suggests: the grid's points at the shortened length, then the 10 final runs at full length
    (counted as 10/3 of a grid point's cost per episode), at the mean length of these first
    episodes and at the task's cap on an episode's steps (a task learned towards long episodes,
    CartPole, lies between the two; one learned towards short ones, Acrobot, below the first)."""
    table, label, short = BASELINES[name]
    path = scenario_path(name)
    s = load_scenario(path)
    point = (1.0, 1.0 if has_critic(s) else None)
    over = _tuning_overrides(s, *point, episodes)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_experiment(load_scenario(path, over), Path(tmp) / "run",
                       progress=lambda row: rows.append((time.perf_counter(), row["length"])))
        wall = time.perf_counter() - start
    # from the first finished episode on: the start (imports, compilation, building) is left out
    later = rows[1:]
    per_step = (rows[-1][0] - rows[0][0]) / (sum(n for _, n in later) / TUNING_RUNS)
    length = float(np.mean([n for _, n in rows]))
    per_episode = per_step * length
    episodes_all = len(grid_points(s)) * short + s.experiment.runs / TUNING_RUNS * s.experiment.episodes
    env = tasks.make_env(s.env.id, s.env.max_episode_steps)
    cap = env.spec.max_episode_steps if env.spec is not None and env.spec.max_episode_steps else 1
    env.close()
    return {"name": name, "episodes": episodes, "wall_s": wall, "s_per_step": per_step, "mean_length": length,
            "s_per_episode": per_episode, "points": len(grid_points(s)), "cap": cap,
            "estimate_h": episodes_all * per_episode / 3600, "cap_h": episodes_all * per_step * cap / 3600}


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


def report(out: Path, docs: Path, ledger_path: Path | None = None) -> Path:
    ledger_path = docs / LEDGER if ledger_path is None else ledger_path
    lines = ["# Baselines tuned on a small grid", "",
             "The baselines beside the published tables ([weight-max.md](weight-max.md), "
             "[map-prop.md](map-prop.md)) first reused the learning rates of the rule they are compared with. "
             "Here each is tuned: the actor's per-layer learning rates (both ends of their schedule) scaled by "
             f"{', '.join(f'{x:g}' for x in SCALES)}, crossed with the critic's scaled the same way (nine points; "
             "a baseline without a critic, such as the multiplexer's, whose learning signal is the reward itself, "
             f"has the actor's {len(SCALES)} only), "
             f"{TUNING_RUNS} seeds each (runs 0–{TUNING_RUNS - 1} of experiment seed {TUNING_SEED}, none of them a "
             "final run), on shortened runs. The point with the highest mean across seeds of each seed's average "
             "return over all its episodes is chosen (the published rates on a tie), then run 10 times at full "
             "length (runs 0–9 of seed 0, as the tables' runs). Generated by `python scripts/tune_baselines.py`; "
             "it resumes where it stopped, and this page says exactly what has finished. Every finished stage is "
             f"recorded in [{LEDGER}]({LEDGER}) (its overrides, the scenario's hash, each run's average, the wall "
             "time and the stack), and a stage whose run folder is gone is read from there. Wall times are those of "
             "one nice'd process on a 2-core machine shared with other work, so they vary with its load; the 3 "
             "seeds of a grid point (and 5 of the final runs at a time) are simulated together as replicas.", ""]
    stacks = []
    for name, (table, label, short) in BASELINES.items():
        s = load_scenario(scenario_path(name))
        points = grid_points(s)
        results = grid_results(name, out, ledger_path)
        lines += [f"## {name} ({label}, for the {table} table)", "",
                  f"Scenario `scenarios/paper/baselines/{name}.toml`; tuning runs of {short} episodes "
                  f"(published length {s.experiment.episodes})."
                  + ("" if has_critic(s) else " It has no critic: only the actor's rates are tuned.")]
        stale = stale_stages(ledger_path, name, out)
        if stale:
            lines += ["", "Ledger entries ignored as stale: " + "; ".join(f"{st} ({why})" for st, why in stale) + "."]
        if not results:
            lines += ["", "Not run yet.", ""]
            continue
        lines += ["", "| actor lr × | critic lr × | mean (std) over seeds | wall time |", "|---|---|---|---|"]
        for (actor, critic), (summary, cost) in sorted(results.items()):
            critic_text = "—" if critic is None else f"{critic:g}"
            cost_text = f"{cost:.0f} s" if np.isfinite(cost) else "not recorded"
            lines.append(f"| {actor:g} | {critic_text} | {_text(summary)} | {cost_text} |")
            stacks += [summary.get("stack")]
        total = sum(c for _, c in results.values() if np.isfinite(c))
        read = sum(1 for summary, _ in results.values() if summary.get("from_ledger"))
        lines += ["", f"{len(results)} of {len(points)} grid points finished, {total:.0f} s of wall time."
                  + (f" {read} of them are read from the ledger (their run folders are gone)." if read else "")]
        if len(results) < len(points):
            lines += ["", "The grid is not complete: no choice yet.", ""]
            continue
        actor, critic = choose(name, out, ledger_path)
        found = final_result(name, out, ledger_path)
        final, final_cost = found if found is not None else (None, float("nan"))
        edge = [who for who, x in (("actor", actor), ("critic", critic)) if x in (SCALES[0], SCALES[-1])]
        lines += ["", f"Chosen: actor × {actor:g}" + ("" if critic is None else f", critic × {critic:g}") + "."
                  + (f" The {' and '.join(edge)} scale{'s lie' if len(edge) > 1 else ' lies'} at the edge of the grid: "
                     "a wider grid may do better."
                     if edge else "")]
        if final is None or final["status"] != "complete":
            lines += ["", "The 10 final runs have not finished." if final is None else f"The final runs: {_text(final)}.", ""]
            continue
        avgs = np.array([r["average_return"] for r in final["runs"]])
        lo, hi = confidence_interval(avgs)
        stacks += [final.get("stack")]
        cost_text = f"{final_cost:.0f} s of wall time" if np.isfinite(final_cost) else "wall time not recorded"
        p = _places(max(abs(avgs.mean()), avgs.std()))
        lines += ["", f"**10 runs at the chosen rates: {avgs.mean():.{p}f} ({avgs.std():.{p}f})**, 95 % interval "
                  f"[{lo:.{p}f}, {hi:.{p}f}], {cost_text}"
                  + (" (read from the ledger)" if final.get("from_ledger") else "") + ". Per-run averages: "
                  + ", ".join(f"{a:.{p}f}" for a in avgs) + "."]
        untuned, _ = _table_cell(docs, table, name)
        rule, rule_label = _table_cell(docs, table, _task_key(name))
        if untuned or rule:
            lines += ["", "Beside it, from [" + f"{table}.md]({table}.md), 10 runs each: "
                      + "; ".join(x for x in (f"the untuned baseline {untuned}" if untuned else "",
                                              f"{RULE_OF[table]} on {rule_label}, {rule}" if rule else "")
                                  if x) + "."]
        if actor == 1.0 and critic in (1.0, None):
            page_runs = _page_runs(docs, table, name)
            if page_runs is not None:
                same = len(page_runs) == len(avgs) and all(f"{a:.2f}" == f"{b:.2f}" for a, b in zip(avgs, page_runs))
                lines += ["", "The chosen point is the scenario as it stands, so these runs repeat the table's row: "
                          + ("they give its per-run averages exactly." if same else
                             "they do **not** give the per-run averages it records (" + ", ".join(
                                 f"run {r}: {a:.2f} here, {b:.2f} there" for r, (a, b) in enumerate(zip(avgs, page_runs))
                                 if f"{a:.2f}" != f"{b:.2f}")[:400] + "). " + TRACED.get(name, "Those runs record no stack or commit; what changed between "
                                                 "them and these has not been traced."))]
        lines.append("")
    known = sorted({provenance.describe(x) for x in stacks if x})
    lines[1:1] = ["", f"Stack: {'; or '.join(known) if known else 'no finished runs'}."]
    docs.mkdir(parents=True, exist_ok=True)
    target = docs / "baselines.md"
    target.write_text("\n".join(lines) + "\n")
    return target


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "tuning")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "results")
    ap.add_argument("--ledger", type=Path, default=None, help=f"default: DOCS/{LEDGER}")
    ap.add_argument("--only", type=lambda s: s.split(","), default=None)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--cost", type=int, metavar="EPISODES", default=None,
                    help="measure the first EPISODES episodes of each baseline (x100 for the multiplexer, whose "
                         "episodes are one step) and print the full tuning cost they suggest; runs nothing else")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.only or ()) - set(BASELINES))
    if unknown:
        ap.error(f"--only: no baseline {', '.join(unknown)} (known: {', '.join(BASELINES)})")
    ledger = args.docs / LEDGER if args.ledger is None else args.ledger
    if args.cost is not None:
        for name in BASELINES:
            if args.only and name not in args.only:
                continue
            c = measure_cost(name, args.cost * (100 if "multiplexer" in name else 1))
            print(f"| {name} | {c['s_per_step'] * 1e3:.2f} ms | {c['mean_length']:.0f} | {c['points']} | "
                  f"{c['estimate_h']:.1f} h | {c['cap']} | {c['cap_h']:.1f} h |", flush=True)
        return
    if not args.report_only:
        for name in BASELINES:
            if args.only and name not in args.only:
                continue
            tune(name, args.out, ledger)
            report(args.out, args.docs, ledger)
    sync_ledger(args.out, ledger)
    print(f"report: {report(args.out, args.docs, ledger)}")


if __name__ == "__main__":
    main()
