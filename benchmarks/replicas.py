"""Replicas: R runs of one scenario simulated together with a batch axis, against R separate runs.

Zero-delay CartPole Weight Maximization actor-critic (the published settings). Runs R separate
simulations (the event engine) and one set of R replicas for the same number of agent steps,
alternately, and prints the throughput (env-steps/s summed over runs) of each and their ratio.
Replica r gives exactly run r's numbers (tests/test_replicas.py).

    python benchmarks/replicas.py [--replicas 10] [--steps 1500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from asyncneurons.replicas import Replicas
from asyncneurons.scenario import load_scenario
from asyncneurons.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios/paper/weight-max/cartpole.toml"))
    args = ap.parse_args(argv)
    s = load_scenario(args.scenario, ["experiment.episodes=100000"])
    R, n = args.replicas, args.steps
    separate, together = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for r in range(R):
            Simulation(s, r, max_ticks=n).run()
        separate.append(R * n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        Replicas(s, range(R), max_ticks=n).run()
        together.append(R * n / (time.perf_counter() - t0))
    a, b = statistics.median(separate), statistics.median(together)
    print(f"{s.env.id}, rule {s.learning.rule}, R = {R}, {n} steps per run × {args.repeats} (median)")
    print(f"{R} separate runs: {a:8.0f} env-steps/s in all")
    print(f"{R} replicas:      {b:8.0f} env-steps/s in all")
    print(f"throughput ratio replicas / separate: {b / a:.2f}  (target ≥ 4 at R = 10)")


if __name__ == "__main__":
    main()
