"""Refuse absurd sizes up front, with an estimate, instead of filling the machine.

A network's arrays take about ``BYTES_PER_SYNAPSE`` bytes per synapse (weights, held inputs,
traces, two optimizer moments, wave tags, temporaries), and an environment step costs at least
``SECONDS_PER_SYNAPSE_STEP`` per synapse on one core (measured on the 4-64-32-2 network, about
0.25 ms per step for 2,300 synapses, rounded down). The estimates are orders of magnitude,
meant to tell a typo (a billion units) from a big but real experiment.
"""

from __future__ import annotations

import os

from .errors import ScenarioError, UserInputError

BYTES_PER_SYNAPSE = 8 * 8
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
