"""Cost per synapse per step as the hidden layers widen (64, 256, 1,024 units), side by side.

The zero-delay CartPole Weight Maximization actor-critic with hidden layers [W, W/2] (critic
unchanged). Prints µs per step (CPU time of the process), synapses, and ns per synapse per step
for each width, and the ratio of the largest to the smallest cost per synapse (target: within
2×). Each width first runs once untimed, so that loading the compiled kernels from the disk
cache and their first calls are not counted as the cost of a step.

    python benchmarks/scaling.py [--steps 400] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from asyncneurons.model.scenario import load_scenario
from asyncneurons.engine.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--widths", type=lambda s: [int(x) for x in s.split(",")], default=[64, 256, 1024])
    args = ap.parse_args(argv)
    per = {w: [] for w in args.widths}
    synapses = {}

    def scenario(w):
        return load_scenario(ROOT / "scenarios/paper/weight-max/cartpole.toml",
                             ["experiment.episodes=100000", f"network.hidden=[{w}, {w // 2}]"])

    for w in args.widths:  # warm-up, untimed
        Simulation(scenario(w), max_ticks=min(args.steps, 50)).run()
    for _ in range(args.repeats):
        for w in args.widths:
            sim = Simulation(scenario(w), max_ticks=args.steps)
            synapses[w] = sim.graph.number_of_edges()
            t0 = time.process_time()
            sim.run()
            per[w].append((time.process_time() - t0) / args.steps)
    print(f"zero-delay CartPole Weight Max, hidden [W, W/2], {args.steps} steps × {args.repeats} (median, CPU time)")
    cost = {}
    for w in args.widths:
        step = statistics.median(per[w])
        cost[w] = step / synapses[w]
        print(f"W = {w:5d}: {synapses[w]:8,d} synapses  {step * 1e6:9.0f} µs/step  {cost[w] * 1e9:8.1f} ns/synapse/step")
    print(f"largest / smallest cost per synapse: {max(cost.values()) / min(cost.values()):.2f}  (target ≤ 2)")


if __name__ == "__main__":
    main()
