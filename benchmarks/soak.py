"""Soak: a million environment steps with event recording off; resident memory must not grow.

    python benchmarks/soak.py [--steps 1000000] [--scenario scenarios/paper/weight-max/cartpole-traces.toml]
                              [--set KEY=VALUE ...]

Prints the resident set size (RSS) after the network is built, after a warm-up of 1 % of the
steps (caches, optimizer state and the first episodes in place), and at the end, and the growth
from the warm-up to the end (target: under 10 %), with the steps per second for context.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from asyncneurons import load_scenario
from asyncneurons.engine.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    """Current resident set size of this process in MiB (from /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios/paper/weight-max/cartpole-traces.toml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    s = load_scenario(args.scenario, ["experiment.episodes=100000000", "record.events=false", *args.overrides])
    episodes = []
    sim = Simulation(s, on_episode=lambda row: episodes.append(row["return"]), max_ticks=args.steps)
    built = rss_mib()
    warm = max(1, args.steps // 100)
    marks = {}

    def checkpoint_rss(proc):
        if "warm" not in marks and proc.k >= warm:
            marks["warm"] = rss_mib()
    sim.checkpoint = checkpoint_rss  # called at every episode boundary; nothing is written
    start = time.perf_counter()
    sim.run()
    wall = time.perf_counter() - start
    end = rss_mib()
    warm_rss = marks.get("warm", built)
    print(f"soak: {args.steps:,} environment steps of {Path(args.scenario).name}, {len(episodes):,} episodes, "
          f"{args.steps / wall:,.0f} steps/s ({wall:,.0f} s)")
    print(f"resident memory: {built:.1f} MiB built, {warm_rss:.1f} MiB after warm-up ({warm:,} steps), "
          f"{end:.1f} MiB at the end")
    print(f"growth from warm-up to end: {100 * (end - warm_rss) / warm_rss:+.1f} % (target: under 10 %)")


if __name__ == "__main__":
    main()
