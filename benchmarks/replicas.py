"""Replicas: R runs of one scenario simulated together with a batch axis, against R separate runs.

Zero-delay CartPole Weight Maximization actor-critic (the published settings). Runs R separate
simulations (the event engine) and one set of R replicas for the same number of agent steps,
alternately, and prints the throughput (env-steps/s summed over runs) of each and their ratio, per
wall-clock second and per CPU second of the process (the steadier figure on a shared machine).
Replica r gives exactly run r's numbers (tests/test_replicas.py).

    python benchmarks/replicas.py [--replicas 10] [--steps 1500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from asyncneurons.engine.replicas import Replicas
from asyncneurons.model.scenario import load_scenario
from asyncneurons.engine.simulation import Simulation

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
    separate, together = {"wall": [], "cpu": []}, {"wall": [], "cpu": []}

    def timed(out, simulate):
        t0, c0 = time.perf_counter(), time.process_time()
        simulate()
        out["wall"].append(R * n / (time.perf_counter() - t0))
        out["cpu"].append(R * n / (time.process_time() - c0))

    for _ in range(args.repeats):
        timed(separate, lambda: [Simulation(s, r, max_ticks=n).run() for r in range(R)])
        timed(together, lambda: Replicas(s, range(R), max_ticks=n).run())
    print(f"{s.env.id}, rule {s.learning.rule}, R = {R}, {n} steps per run × {args.repeats} (median)")
    for clock in ("wall", "cpu"):
        a, b = statistics.median(separate[clock]), statistics.median(together[clock])
        unit = "env-steps/s" if clock == "wall" else "env-steps per CPU s"
        print(f"{clock:>4}: {R} separate runs {a:8.0f}, {R} replicas {b:8.0f} {unit} in all; "
              f"ratio replicas / separate {b / a:.2f}  (target ≥ 4 at R = 10)")


if __name__ == "__main__":
    main()
