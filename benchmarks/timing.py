"""Fully heterogeneous timing against the zero-delay engine, side by side.

Every synapse gets its own delay, drawn from a continuous distribution (uniform on [0, 5] ms),
so no two units fire at the same instant and nothing can be fused; the TD error reaches every
unit after 10 ms and the environment steps every 20 ms (clock pacing). The same scenario with
every delay zero is run alternately. Prints environment steps per second of each and the ratio
heterogeneous / zero-delay (median over repetitions). The heterogeneous run is served by firing
windows (``[engine] windows``, the default); the same run with the event engine firing unit by
unit is measured too, for context.

    python benchmarks/timing.py [--steps 600] [--repeats 3] [--rule weight_max]
    python benchmarks/timing.py --scenario scenarios/paper/map-prop/cartpole.toml --rule map_prop --steps 20
    python benchmarks/timing.py --map [--steps 40] [--repeats 3]

``--map`` measures the MAP Propagation row: the published CartPole MAP network with every synapse
on its own delay both ways (uniform on [0, 5] ms forward and back), relaxing every 0.25 ms,
against the same network at zero delay on the event engine (no replicas), CPU time per
environment step, alternately in one process (target: at most 5× the zero-delay cost).

The default network is the published CartPole Weight Maximization one; ``--scenario`` measures
another (MAP Propagation relaxes after every sample, so windows do not serve it and its
heterogeneous run is unit by unit already).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from asyncneurons.model.scenario import load_scenario
from asyncneurons.engine.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]
HETEROGENEOUS = ['timing.synapse_delay={dist="uniform", low=0.0, high=5.0}', "timing.reward_delay=10.0",
                 'env.pacing="clock"', "env.period=20.0"]


def steps_per_second(s, steps: int) -> tuple:
    sim = Simulation(s, max_ticks=steps)
    t0 = time.perf_counter()
    sim.run()
    return steps / (time.perf_counter() - t0), len(sim.groups)


MAP_SCENARIO = ROOT / "scenarios/paper/map-prop/cartpole.toml"
MAP_DELAYS = ['timing.synapse_delay={dist="uniform", low=0.0, high=5.0}',
              'timing.retro_delay={dist="uniform", low=0.0, high=5.0}', "timing.reward_delay=10.0",
              'env.pacing="clock"', "env.period=20.0", "timing.relax_period=0.25"]


def cpu_per_step(s, steps: int) -> float:
    """CPU seconds per environment step of ``steps`` steps (after one warm-up step, which compiles)."""
    Simulation(s, max_ticks=1).run()
    sim = Simulation(s, max_ticks=steps)
    t0 = time.process_time()
    sim.run()
    return (time.process_time() - t0) / steps


def map_row(steps: int, repeats: int) -> None:
    """MAP Propagation under per-synapse delays both ways against the zero-delay MAP engine."""
    base = ["experiment.episodes=100000", "engine.replicas=1"]
    zero, delayed = load_scenario(MAP_SCENARIO, base), load_scenario(MAP_SCENARIO, base + MAP_DELAYS)
    z, d = [], []
    for _ in range(repeats):
        z.append(cpu_per_step(zero, steps))
        d.append(cpu_per_step(delayed, steps))
    zm, dm = statistics.median(z), statistics.median(d)
    print(f"MAP Propagation, {MAP_SCENARIO.name}, {steps} steps × {repeats} (median CPU time per environment step)")
    print(f"zero delay, event engine:                                       {zm * 1e3:9.2f} ms/step")
    print(f"per-synapse delays uniform[0, 5] ms both ways, relax every 0.25 ms: {dm * 1e3:9.2f} ms/step")
    print(f"ratio delayed / zero delay: {dm / zm:.1f}x  (target ≤ 5x)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rule", default="weight_max")
    ap.add_argument("--scenario", default=str(ROOT / "scenarios/paper/weight-max/cartpole-traces.toml"))
    ap.add_argument("--map", action="store_true", help="the MAP Propagation row (see above)")
    args = ap.parse_args(argv)
    if args.map:
        return map_row(args.steps if args.steps != 600 else 40, args.repeats)
    # one run of the scenario, as the event engine simulates it (no replicas)
    base = ["experiment.episodes=100000", f'learning.rule="{args.rule}"', "engine.replicas=1"]
    path = Path(args.scenario)
    zero, hetero = load_scenario(path, base), load_scenario(path, base + HETEROGENEOUS)
    unit_by_unit = load_scenario(path, base + HETEROGENEOUS + ["engine.windows=false"])
    z, h, u = [], [], []
    for _ in range(args.repeats):
        rate, zero_groups = steps_per_second(zero, args.steps)
        z.append(rate)
        rate, hetero_groups = steps_per_second(hetero, args.steps)
        h.append(rate)
        if Simulation(hetero, max_ticks=1).windows is not None:  # else the same run as above
            rate, unit_groups = steps_per_second(unit_by_unit, args.steps)
            u.append(rate)
    zm, hm = statistics.median(z), statistics.median(h)
    print(f"{path.name}, {args.rule}, {args.steps} steps × {args.repeats} (median)")
    print(f"zero delay ({zero_groups} fused groups):                         {zm:8.0f} env-steps/s ({1e6 / zm:8.0f} µs/step)")
    if u:
        um = statistics.median(u)
        print(f"every synapse its own delay, firing windows ({hetero_groups} groups): {hm:8.0f} env-steps/s "
              f"({1e6 / hm:8.0f} µs/step)")
        print(f"the same, windows off, unit by unit ({unit_groups} groups):       {um:8.0f} env-steps/s "
              f"({1e6 / um:8.0f} µs/step)")
        print(f"ratio heterogeneous / zero delay: {hm / zm:.3f}  (target ≥ 0.1); windows off: {um / zm:.3f}")
    else:
        print(f"every synapse its own delay, unit by unit ({hetero_groups} groups): {hm:8.2f} env-steps/s "
              f"({1e6 / hm:8.0f} µs/step; firing windows do not serve this rule)")
        print(f"ratio heterogeneous / zero delay: {hm / zm:.4f}  (target ≥ 0.1)")


if __name__ == "__main__":
    main()
