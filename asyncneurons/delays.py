"""Delay distributions and their assignment to edges and units.

A delay is given as a number of ms or as a table naming a distribution. Each edge's delay is
drawn once, when the network is built, by inverting the distribution's CDF at a keyed uniform
``U(seed, DELAY, target, source)``, units keyed by their names: the draw depends on the edge
alone, not on the order in which edges are visited nor on the rest of the graph. Delays are continuous and never rounded to a grid.

======================  ==========================================  ========================
``dist``                parameters (ms)                             inverse CDF at u
======================  ==========================================  ========================
``constant``            ``value``                                   value
``uniform``             ``low``, ``high``                           low + u (high − low)
``truncnormal``         ``mean``, ``std``, ``low`` = 0, ``high`` = ∞  mean + std Φ⁻¹(Φ(a) + u (Φ(b) − Φ(a)))
``exponential``         ``mean``, ``shift`` = 0                     shift − mean log(1 − u)
``lognormal``           ``mu``, ``sigma`` (of the log, in log-ms)   exp(mu + sigma Φ⁻¹(u))
======================  ==========================================  ========================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from . import streams


def _constant(u, value):
    return np.full_like(u, float(value))


def _uniform(u, low, high):
    return low + u * (high - low)


def _truncnormal(u, mean, std, low=0.0, high=math.inf):
    a, b = ndtr((low - mean) / std), ndtr((high - mean) / std)
    x = mean + std * ndtri(a + u * (b - a))
    return np.clip(x, low, high)


def _exponential(u, mean, shift=0.0):
    return shift - mean * np.log1p(-u)


def _lognormal(u, mu, sigma):
    return np.exp(mu + sigma * ndtri(np.clip(u, 1e-300, None)))


@dataclass(frozen=True)
class Distribution:
    """A named delay distribution: its inverse CDF and the parameters it takes."""

    name: str
    inverse_cdf: object
    required: tuple
    optional: tuple = ()


DISTRIBUTIONS = {
    "constant": Distribution("constant", _constant, ("value",)),
    "uniform": Distribution("uniform", _uniform, ("low", "high")),
    "truncnormal": Distribution("truncnormal", _truncnormal, ("mean", "std"), ("low", "high")),
    "exponential": Distribution("exponential", _exponential, ("mean",), ("shift",)),
    "lognormal": Distribution("lognormal", _lognormal, ("mu", "sigma")),
}


def draw(spec, u: np.ndarray) -> np.ndarray:
    """Delays for the uniforms ``u`` under ``spec`` (a number, or a dict with ``dist``)."""
    if not isinstance(spec, dict):
        return np.full(np.shape(u), float(spec))
    params = {k: float(v) for k, v in spec.items() if k != "dist"}
    return DISTRIBUTIONS[spec["dist"]].inverse_cdf(np.asarray(u, dtype=float), **params)


def is_zero(spec) -> bool:
    """True when a spec can only give zero delays."""
    if isinstance(spec, dict):
        if spec["dist"] == "constant":
            return float(spec["value"]) == 0.0
        if spec["dist"] == "uniform":
            return float(spec["low"]) == 0.0 == float(spec["high"])
        return False
    return float(spec) == 0.0


def is_constant(spec) -> bool:
    """True when a spec gives the same value at every draw."""
    if isinstance(spec, dict):
        if spec["dist"] == "constant":
            return True
        if spec["dist"] == "uniform":
            return float(spec["low"]) == float(spec["high"])
        return False
    return True


def smallest(spec) -> float:
    """The smallest value a spec can give (its inverse CDF at u = 0)."""
    return float(draw(spec, np.zeros(1))[0])


def assign_delays(g, synapse_delay, retro_delay, seed: int, *, overwrite: bool = False) -> None:
    """Give every edge a ``delay`` and a ``retro_delay`` drawn from the specs (in place).

    Edges that already carry an attribute (set in a graph file) keep it unless ``overwrite``.
    """
    uid = {n: node_key(n) for n in g.nodes}
    for key, spec, purpose in (("delay", synapse_delay, streams.DELAY),
                               ("retro_delay", retro_delay, streams.RETRO_DELAY)):
        edges = [(u, v) for u, v, a in g.edges(data=True) if overwrite or key not in a]
        if not edges:
            continue
        tgt = np.array([uid[v] for _, v in edges], dtype=np.int64)
        src = np.array([uid[u] for u, _ in edges], dtype=np.int64)
        u = streams.uniforms(streams.unit_keys(seed, purpose, tgt), src)
        values = draw(spec, u)
        for (a, b), d in zip(edges, values):
            g.edges[a, b][key] = float(d)


def node_key(node) -> int:
    """A stable integer key of a node, from its name alone (not from its place in the graph)."""
    return streams.seed_of("node", str(node))


def unit_delays(units, spec, seed: int, purpose: int = streams.REWARD_DELAY) -> dict:
    """One delay per unit (for example the reward delay), keyed by the unit's name."""
    order = sorted(units, key=str)
    uid = np.array([node_key(n) for n in order], dtype=np.int64)
    u = streams.uniforms(streams.unit_keys(seed, purpose, uid), np.zeros_like(uid))
    return {n: float(d) for n, d in zip(order, draw(spec, u))}
