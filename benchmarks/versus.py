"""This tree against another git revision on one scenario, side by side: the guard against
speed regressions.

    python benchmarks/versus.py REV [--scenario FILE] [--steps 3000] [--rounds 5] [--set KEY=VALUE ...]

REV is checked out with ``git worktree add --detach`` into a temporary folder (removed at the
end). Each round runs the scenario once with this tree and once with REV, alternately, each in
its own fresh Python subprocess whose ``PYTHONPATH`` points at its tree, and times only the
simulation (building it and compiling kernels excluded; an untimed warm-up run first). It
prints environment steps per second of each side (median of the rounds) and the ratio
this tree / REV, per second of the process's CPU time (the steadier figure on a shared machine)
and per second of wall-clock time. Default scenario: the published Weight Maximization CartPole with actor traces
(``scenarios/paper/weight-max/cartpole-traces.toml``) at zero delay, unfused settings as given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = "scenarios/paper/weight-max/cartpole-traces.toml"

# Run inside each subprocess: only the public Simulation API, which every revision offers (from
# the package's folders, or from its flat modules in revisions before them).
CHILD = r"""
import json, sys, time
import os
import asyncneurons
# asked by folder, not by trying an import: an installed editable asyncneurons elsewhere would
# answer for a module this revision lacks
if os.path.isdir(os.path.join(os.path.dirname(asyncneurons.__file__), "model")):
    from asyncneurons.model.scenario import load_scenario
    from asyncneurons.engine.simulation import Simulation
else:
    from asyncneurons.scenario import load_scenario
    from asyncneurons.simulation import Simulation
scenario, steps, overrides = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
s = load_scenario(scenario, ["experiment.episodes=1000000", *overrides])
Simulation(s, max_ticks=2).run()  # warm-up: imports, caches and compiled kernels loaded
sim = Simulation(s, max_ticks=steps)
t0, c0 = time.perf_counter(), time.process_time()
sim.run()
print(json.dumps({"wall": steps / (time.perf_counter() - t0), "cpu": steps / (time.process_time() - c0)}))
"""


def measure(tree: Path, scenario: Path, steps: int, overrides: list) -> dict:
    """Environment steps per second of ``tree`` on ``scenario`` in a fresh subprocess, per second
    of CPU time (``cpu``) and of wall-clock time (``wall``)."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", CHILD, str(scenario), str(steps), json.dumps(overrides)],
                         cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"versus: the run in {tree} failed:\n{out.stderr.strip().splitlines()[-1] if out.stderr else ''}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rev", help="the git revision to compare against (commit, branch or tag)")
    ap.add_argument("--scenario", default=DEFAULT, help="scenario file, relative to the repository root")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="scenario override applied to both sides")
    args = ap.parse_args(argv)
    check = subprocess.run(["git", "rev-parse", "--verify", f"{args.rev}^{{commit}}"], cwd=ROOT,
                           capture_output=True, text=True)
    if check.returncode != 0:
        sys.exit(f"versus: {args.rev!r} is not a git revision of {ROOT}")
    commit = check.stdout.strip()
    with tempfile.TemporaryDirectory(prefix="versus-") as tmp:
        other = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(other), commit], cwd=ROOT, check=True)
        try:
            scenario_here, scenario_there = ROOT / args.scenario, other / args.scenario
            if not scenario_there.exists():  # a scenario added since REV: both sides run this tree's file
                scenario_there = scenario_here
            here, there = [], []
            for r in range(args.rounds):
                here.append(measure(ROOT, scenario_here, args.steps, args.overrides))
                there.append(measure(other, scenario_there, args.steps, args.overrides))
                print(f"round {r + 1}: this tree {here[-1]['cpu']:8.0f}  {args.rev} {there[-1]['cpu']:8.0f} "
                      f"env-steps per CPU second", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
    label = " ".join([args.scenario, *args.overrides])
    print(f"{label}: {args.steps} steps × {args.rounds} rounds (median)")
    for clock in ("cpu", "wall"):
        a = statistics.median(x[clock] for x in here)
        b = statistics.median(x[clock] for x in there)
        print(f"{clock:>4}: this tree {a:8.0f} env-steps/s ({1e6 / a:6.1f} µs/step)   "
              f"{args.rev} {b:8.0f} ({1e6 / b:6.1f} µs/step)   ratio {a / b:.2f}"
              + ("  (target ≥ 4 against bbc214d)" if args.rev.startswith("bbc214d") else ""))


if __name__ == "__main__":
    main()
