"""Event engine against the layer-synchronous reference on zero-delay CartPole.

Both run the same scenario (by default the published CartPole Weight Maximization actor-critic:
a 4-64-32-2 Bernoulli network and a 64-32 critic) for the same number of agent steps,
alternately, several times; the script prints
environment steps per second of each and the ratio engine / reference (median over the
repetitions), measured side by side in one run. The two produce identical samples and weights
(tests/test_oracle.py), so they do the same work.

    python benchmarks/engine.py [--steps 3000] [--repeats 5] [--unfused] [--scenario FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from asyncneurons.engine.reference import Reference
from asyncneurons.model.scenario import load_scenario
from asyncneurons.engine.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]


def steps_per_second(make, steps: int) -> float:
    runner = make(steps)
    t0 = time.perf_counter()
    runner.run()
    return steps / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--unfused", action="store_true", help="one process per unit")
    ap.add_argument("--scenario", default=str(ROOT / "scenarios/paper/weight-max/cartpole.toml"))
    args = ap.parse_args(argv)
    s = load_scenario(args.scenario, ["experiment.episodes=100000"])
    fuse = not args.unfused
    engine, reference = [], []
    for _ in range(args.repeats):
        engine.append(steps_per_second(lambda n: Simulation(s, fuse=fuse, max_ticks=n), args.steps))
        reference.append(steps_per_second(lambda n: Reference(s, max_ticks=n), args.steps))
    e, r = statistics.median(engine), statistics.median(reference)
    print(f"zero-delay {s.env.id}, rule {s.learning.rule}, {args.steps} steps × {args.repeats} (median)")
    print(f"event engine ({'fused' if fuse else 'unfused'}): {e:8.0f} env-steps/s  ({1e6 / e:6.1f} µs/step)")
    print(f"synchronous reference:      {r:8.0f} env-steps/s  ({1e6 / r:6.1f} µs/step)")
    print(f"ratio engine / reference: {e / r:.2f}  (target ≥ 0.7)")


if __name__ == "__main__":
    main()
