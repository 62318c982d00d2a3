"""Every timing the scenario language offers, against the zero-delay engine: cost per unit sample.

The published Weight Maximization CartPole network with traces (4-64-32-2), every synapse on its
own delay (uniform 0–5 ms), the TD error 10 ms late, environment every 20 ms (clock pacing), as
the common point; each row changes one thing from it. The zero-delay run (every delay zero,
``on_all`` firing, ``wait`` pacing) is measured alternately with each row in the same process,
and the row's cost per unit sample (CPU time / samples drawn by all units) is printed as a
multiple of the zero-delay cost per unit sample. Target: every row ≤ 2×.

    python benchmarks/every_timing.py [--steps 300] [--repeats 3] [--only NAME ...] [--after N] [--against REV]

With ``--after N`` each run is timed late, from its first episode end at or after step N to step
N + STEPS (the steps before simulated untimed, the zero-delay run likewise): what a long run
costs once its units have settled (weights at rest, :mod:`asyncneurons.learning.at_rest`), which
the first few hundred steps do not show.

With ``--against REV`` each row is run on this tree's package and on git revision REV's (exported
with ``git archive`` into a temporary folder), each in its own subprocess, alternately, both timed
by this script, and both ratios are printed side by side. Each row's compiled kernels are loaded
by a short untimed run before it is timed (before 1de0ad2 a row's first timed pass also loaded
them, tens of ms against about 0.1 s of simulation at 600 steps, and ``--against`` timed REV with
REV's own copy of this script).

Columns: env-steps/s of the row, unit samples per env-step, learning steps per env-step (every
unit's optimizer steps: one per unit per env-step at zero delay, one per landing instant under
per-synapse retrograde delays or jitter, which the cost per unit sample does not count), µs per
unit sample, the ratio, and whether the row ran on firing windows (``W``) or on the unit-by-unit
event engine (``E``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from asyncneurons.model.scenario import load_scenario
from asyncneurons.engine.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios/paper/weight-max/cartpole-traces.toml"
BASE = ["experiment.episodes=100000", "engine.replicas=1"]
COMMON = ['timing.synapse_delay={dist="uniform", low=0.0, high=5.0}', "timing.reward_delay=10.0",
          'env.pacing="clock"', "env.period=20.0"]

ROWS = {
    "on_all, clock pacing": [],
    "on_all, wait pacing": ['env.pacing="wait"'],
    "clock firing, period 5 ms": ['timing.firing="clock"', "timing.firing_period=5.0"],
    "on_all, refractory 1 ms": ["timing.refractory=1.0"],
    "on_input, refractory 2 ms": ['timing.firing="on_input"', "timing.refractory=2.0"],
    "reward delay per unit, uniform 5-15 ms": ['timing.reward_delay={dist="uniform", low=5.0, high=15.0}'],
    "global_reinforce, reward delay per unit": ['learning.rule="global_reinforce"',
                                                'timing.reward_delay={dist="uniform", low=5.0, high=15.0}'],
    "ste_backprop, reward delay per unit": ['learning.rule="ste_backprop"',
                                            'timing.reward_delay={dist="uniform", low=5.0, high=15.0}'],
    "on_input, no refractory": ['timing.firing="on_input"'],
    "own clocks: phase 0-5, period 4-6, jitter 0-1 ms": [
        'timing.firing="clock"', 'timing.firing_phase={dist="uniform", low=0.0, high=5.0}',
        'timing.firing_period={dist="uniform", low=4.0, high=6.0}',
        'timing.firing_jitter={dist="uniform", low=0.0, high=1.0}'],
    "poisson firing, 0.2 per ms": ['timing.firing="poisson"', "timing.firing_rate=0.2"],
    "synaptic jitter per send, uniform 0-5 ms": ['timing.synapse_jitter={dist="uniform", low=0.0, high=5.0}'],
    "synaptic jitter, clock firing 5 ms": ['timing.synapse_jitter={dist="uniform", low=0.0, high=5.0}',
                                           'timing.firing="clock"', "timing.firing_period=5.0"],
    "reward jitter per broadcast, uniform 0-5 ms": ['timing.reward_jitter={dist="uniform", low=0.0, high=5.0}'],
    "retrograde delay per synapse, uniform 0-1 ms": ['timing.retro_delay={dist="uniform", low=0.0, high=1.0}'],
    "retrograde jitter per send, uniform 0-1 ms": ['timing.retro_jitter={dist="uniform", low=0.0, high=1.0}'],
    "exponential traces, tau 20 ms": ['learning.trace="exponential"', "learning.trace_tau=20.0"],
    "exponential traces, clock firing 5 ms": ['learning.trace="exponential"', "learning.trace_tau=20.0",
                                              'timing.firing="clock"', "timing.firing_period=5.0"],
}


TARGET = 2.0  # cost per unit sample, ÷ the zero-delay engine's


def samples(sim) -> int:
    """Unit samples drawn so far, by every unit."""
    return int(sum(int(np.sum(g.counters)) for g in sim.groups))


def learning_steps(sim) -> float:
    """Learning (optimizer) steps taken so far, by every unit: a group's count ``t`` is one per
    unit when the units learn alone (under per-synapse retrograde delays each landing instant is
    a step of its own), else one for all its units; NaN where a group keeps no count."""
    n = 0
    for g in sim.groups:
        t = getattr(g, "t", None)
        if t is None:
            return math.nan
        t = np.asarray(t)
        n += int(t.sum()) if t.ndim else int(t) * g.size
    return n


def cost(s, steps: int, after: int = 0) -> tuple:
    """(seconds, unit samples, env-steps, served by windows, learning steps) of ``steps``
    environment steps; with ``after``, of the steps from the first episode end at or after step
    ``after`` to step ``after + steps`` (the steps before it simulated untimed: late in a run)."""
    mark = []

    def at_episode_end(*_):
        if after and not mark and sim.environment.k >= after:
            mark.append((time.process_time(), samples(sim), sim.environment.k, learning_steps(sim)))

    sim = Simulation(s, max_ticks=after + steps, on_episode=at_episode_end)
    t0 = time.process_time()
    sim.run()
    dt = time.process_time() - t0
    if not after:
        return dt, samples(sim), steps, sim.windows is not None, learning_steps(sim)
    if not mark:
        raise SystemExit(f"no episode ended between step {after} and step {after + steps}: raise --steps")
    t1, n1, k1, l1 = mark[0]
    return (time.process_time() - t1, samples(sim) - n1, after + steps - k1, sim.windows is not None,
            learning_steps(sim) - l1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scenario", default=str(SCENARIO))
    ap.add_argument("--only", nargs="*", help="rows whose name contains one of these words")
    ap.add_argument("--skip", nargs="*", default=[], help="rows whose name contains one of these words")
    ap.add_argument("--after", type=int, default=0, metavar="N",
                    help="time each run from its first episode end at or after step N to step N + STEPS: late in a run")
    ap.add_argument("--against", metavar="REV", help="also measure each row with git revision REV, alternately")
    args = ap.parse_args(argv)
    if args.after < 0 or args.steps < 1:
        ap.error("--after must be 0 or more and --steps 1 or more")
    if args.against:
        against(args)
        return
    path = Path(args.scenario)
    zero = load_scenario(path, BASE)
    cost(zero, 50)  # warm up (compiled kernels, imports)
    late = f" after the first {args.after}" if args.after else ""
    print(f"{path.name}: {args.steps} env-steps{late} × {args.repeats}, median; zero delay measured alternately")
    print(f"{'row':42s} {'steps/s':>9s} {'samples/step':>12s} {'learns/step':>11s} {'µs/sample':>10s} "
          f"{'÷ zero':>7s}  path  ≤ 2×")
    for name, over in ROWS.items():
        if (args.only and not any(w in name for w in args.only)) or any(w in name for w in args.skip):
            continue
        s = load_scenario(path, BASE + COMMON + over)
        cost(s, 20)  # the row's own kernels loaded (or compiled) before it is timed
        ratios, per, rates, spp, lpp = [], [], [], [], []
        for _ in range(args.repeats):
            dz, nz, _, _, _ = cost(zero, args.steps, args.after)
            dr, nr, steps, windowed, lr = cost(s, args.steps, args.after)
            ratios.append((dr / nr) / (dz / nz))
            per.append(1e6 * dr / nr)
            rates.append(steps / dr)
            spp.append(nr / steps)
            lpp.append(lr / steps)
        print(f"{name:42s} {statistics.median(rates):9.0f} {statistics.median(spp):12.1f} "
              f"{statistics.median(lpp):11.1f} {statistics.median(per):10.2f} {statistics.median(ratios):7.2f}  "
              f"{'W' if windowed else 'E':4s}  {'met' if statistics.median(ratios) <= TARGET else 'missed'}",
              flush=True)


def _row_in(tree: Path, name: str, args) -> tuple:
    """(µs per unit sample, ratio) of row ``name`` run on the package of ``tree``, measured by this
    script in a subprocess: both trees are timed by the same measurement (the row's kernels loaded
    before it is timed), whatever the revision's own copy of this script did."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--steps", str(args.steps), "--repeats",
           str(args.repeats), "--scenario", str(args.scenario), "--only", name]
    if args.after:
        cmd += ["--after", str(args.after)]
    run = subprocess.run(cmd, env=dict(os.environ, PYTHONPATH=str(tree)), cwd=tree, capture_output=True, text=True)
    if run.returncode != 0:  # a row whose keys the revision does not know
        return math.nan, math.nan
    fields = [line for line in run.stdout.splitlines() if line.startswith(name)][-1][len(name):].split()
    return float(fields[3]), float(fields[4])


def against(args) -> None:
    """Every row by revision ``args.against`` and by this tree, alternately, side by side."""
    rows = [n for n in ROWS if not ((args.only and not any(w in n for w in args.only))
                                    or any(w in n for w in args.skip))]
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.against], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(other)], input=archive.stdout, check=True)
        warm = argparse.Namespace(**{**vars(args), "steps": 20, "repeats": 1})
        for name in rows:  # compile (and cache) the kernels each row uses, in both trees
            _row_in(other, name, warm), _row_in(ROOT, name, warm)
        late = f" after the first {args.after}" if args.after else ""
        print(f"{args.steps} env-steps{late} × {args.repeats} per row, each tree in its own subprocess, alternately")
        print(f"{'row':50s} {args.against[:10]:>10s} {'÷ zero':>7s} {'this tree':>10s} {'÷ zero':>7s}"
              "  (µs per unit sample; target ≤ 2×)")
        for name in rows:
            (pb, rb), (pa, ra) = _row_in(other, name, args), _row_in(ROOT, name, args)
            print(f"{name:50s} {pb:10.2f} {rb:7.2f} {pa:10.2f} {ra:7.2f}  {'met' if ra <= TARGET else 'missed'}",
                  flush=True)


if __name__ == "__main__":
    main()
