"""Refuse absurd sizes up front, with an estimate, instead of filling the machine.

Every dimension that allocates is sized before anything is allocated, from bytes measured with
``tracemalloc`` on this code (CartPole, rule weight_max, 50 environment steps; peak over networks
of 2,336 and 133,376 synapses, the difference divided by the difference in synapses):

* an actor synapse, with its graph edge, weights, held inputs, traces, optimizer moments and
  transmission history: 843 bytes (``BYTES_PER_SYNAPSE`` = 850);
* a critic synapse: 66 bytes (``CRITIC_BYTES_PER_SYNAPSE`` = 70);
* reading a graph file: 21 bytes per byte of GraphML, 10.5 per byte of node-link JSON, at the
  peak of parsing (``GRAPH_FILE_FACTOR``);
* replicas simulated together (``[engine] replicas``) each carry a whole network.

An environment step costs at least ``SECONDS_PER_SYNAPSE_STEP`` per synapse on one core
(measured on the 4-64-32-2 network, about 0.25 ms per step for 2,300 synapses, rounded down).
The estimates are orders of magnitude, meant to tell a typo (a billion units) from a big but
real experiment.
"""

from __future__ import annotations

import os

from asyncneurons.errors import ScenarioError, UserInputError

BYTES_PER_SYNAPSE = 850
CRITIC_BYTES_PER_SYNAPSE = 70
GRAPH_FILE_FACTOR = {"graphml": 22, "json": 11}
SECONDS_PER_SYNAPSE_STEP = 5e-8
MAX_MEMORY_FRACTION = 0.8
MAX_RUNS = 100_000
YEAR = 365.25 * 24 * 3600


def machine_memory() -> int:
    """Physical memory of this machine in bytes (0 when unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:,.3g} GiB"


def check_network(sizes, key: str = "network.hidden", memory: int | None = None) -> None:
    """Refuse a layered network (``sizes``: units per layer, inputs first) that cannot fit."""
    units = sum(sizes[1:])
    synapses = sum(a * b for a, b in zip(sizes, sizes[1:]))
    need = synapses * BYTES_PER_SYNAPSE
    memory = machine_memory() if memory is None else memory
    if memory and need > MAX_MEMORY_FRACTION * memory:
        raise ScenarioError(f"{key}: a network of {units:,} units and {synapses:,} synapses needs about "
                            f"{_gib(need)} of memory; this machine has {_gib(memory)}")


def check_sweep(n_runs: int, synapses: int, steps_per_run: float) -> None:
    """Refuse a sweep whose number of runs is absurd, with the time it would take."""
    if n_runs > MAX_RUNS:
        seconds = n_runs * steps_per_run * max(synapses, 1000) * SECONDS_PER_SYNAPSE_STEP
        raise UserInputError(f"--grid/--seeds: {n_runs:,} runs is more than {MAX_RUNS:,}; at the least "
                             f"about {seconds / YEAR:,.3g} CPU-years. Sweep fewer points or seeds")


def _check_memory(need: float, what: str, key: str, memory: int | None = None) -> None:
    memory = machine_memory() if memory is None else memory
    if memory and need > MAX_MEMORY_FRACTION * memory:
        raise ScenarioError(f"{key}: {what} needs about {_gib(need)} of memory; this machine has "
                            f"{_gib(memory)}")


def check_graph_file(path, size: int, fmt: str, memory: int | None = None) -> None:
    """Refuse a graph file too big to read on this machine, before reading it."""
    _check_memory(size * GRAPH_FILE_FACTOR.get(fmt, 22), f"reading the graph file {path} "
                  f"({size:,} bytes)", "network.graph", memory)


def check_scenario(scenario, actor_synapses: int, n_obs: int, memory: int | None = None) -> None:
    """Refuse a run whose networks (actor, critic, and every replica simulated together) cannot
    fit; and an absurd number of runs."""
    runs = scenario.experiment.runs
    if runs > MAX_RUNS:
        raise ScenarioError(f"experiment.runs: {runs:,} runs is more than {MAX_RUNS:,}")
    sizes = [n_obs, *scenario.learning.critic_hidden, 1]
    critic = sum(a * b for a, b in zip(sizes, sizes[1:]))
    together = max(1, min(int(scenario.engine.replicas), runs))
    actor_bytes = actor_synapses * BYTES_PER_SYNAPSE
    critic_bytes = critic * CRITIC_BYTES_PER_SYNAPSE
    need = (actor_bytes + critic_bytes) * together
    memory = machine_memory() if memory is None else memory
    one_fits = not memory or actor_bytes + critic_bytes <= MAX_MEMORY_FRACTION * memory
    key = ("engine.replicas" if together > 1 and one_fits else
           "learning.critic_hidden" if critic_bytes > actor_bytes else
           "network.graph" if scenario.network.graph else "network.hidden")
    _check_memory(need, f"an actor of {actor_synapses:,} synapses and a critic of {critic:,}"
                  + (f", {together} replicas together," if together > 1 else ""), key, memory)
