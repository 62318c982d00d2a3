"""Zero-delay LunarLander: how much of a step is the environment, how much the engine.

Runs the published LunarLander Weight Maximization scenario for a number of agent steps and,
side by side, steps the bare gymnasium task (same seeds, random actions) for the same number of
steps. Prints both costs per step and the engine's share of the total.

    python benchmarks/lunarlander.py [--steps 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import gymnasium as gym

from asyncneurons.model.scenario import load_scenario
from asyncneurons.engine.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]


def bare_env(steps: int) -> float:
    env = gym.make("LunarLander-v3")
    env.reset(seed=0)
    env.action_space.seed(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    return (time.perf_counter() - t0) / steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    s = load_scenario(ROOT / "scenarios/paper/weight-max/lunarlander.toml", ["experiment.episodes=100000"])
    full, env_only = [], []
    for _ in range(args.repeats):
        sim = Simulation(s, max_ticks=args.steps)
        t0 = time.perf_counter()
        sim.run()
        full.append((time.perf_counter() - t0) / args.steps)
        env_only.append(bare_env(args.steps))
    f, e = statistics.median(full), statistics.median(env_only)
    print(f"zero-delay LunarLander-v3, Weight Max, {args.steps} steps × {args.repeats} (median)")
    print(f"whole agent step: {f * 1e6:7.0f} µs; bare environment step: {e * 1e6:5.0f} µs")
    print(f"engine (network, critic, learning, events) share of the step: {100 * (f - e) / f:.0f} %")


if __name__ == "__main__":
    main()
