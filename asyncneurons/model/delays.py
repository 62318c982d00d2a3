"""Delay distributions and their assignment to edges and units.

A delay is given as a number of ms or as a table naming a distribution. Each edge's delay is
drawn once, when the network is built, by inverting the distribution's CDF at a keyed uniform
``U(seed, DELAY, target, source)``, units keyed by their names: the draw depends on the edge
alone, not on the order in which edges are visited nor on the rest of the graph. Delays are continuous and never rounded to a grid.

Every timing key may be given per layer (a list, one value per layer 1 … L): a synapse takes the
value of the layer of its target unit, a unit that of its own layer. Each distinct value is drawn
over all the edges (or units) being assigned and each takes the draw of its layer's value, so a
list whose items are equal gives exactly the draws of its single value. A graph file may set a
unit's own value (node attributes, :data:`asyncneurons.model.graph.TIMING_NODE_ATTRS`), which wins over
the scenario's.

Delays from distance: with ``timing.conduction_velocity`` v, a synapse u → v to which the graph
file gives no delay takes ::

    d = ‖p_v − p_u‖ / v + synaptic_offset      (p = (x, y, z), absent coordinates 0)

and so does its retrograde delay (the signal travels the same path back). A delay the file sets
is kept.

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

from asyncneurons.learning import streams
from asyncneurons.errors import GraphError


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


def law(spec):
    """The inverse CDF u ↦ F⁻¹(u) of ``spec`` (a number, or a dict with ``dist``), its parameters
    read once: a function of an array of uniforms, for a spec drawn from again and again."""
    if not isinstance(spec, dict):
        value = float(spec)
        return lambda u: np.full(np.shape(u), value)
    params = {k: float(v) for k, v in spec.items() if k != "dist"}
    if spec["dist"] == "uniform" and params.keys() == {"low", "high"}:
        low, span = params["low"], params["high"] - params["low"]
        return lambda u: low + np.asarray(u, dtype=float) * span  # _uniform: low + u (high − low)
    inverse_cdf = DISTRIBUTIONS[spec["dist"]].inverse_cdf
    return lambda u: inverse_cdf(np.asarray(u, dtype=float), **params)


def draw(spec, u: np.ndarray) -> np.ndarray:
    """Delays for the uniforms ``u`` under ``spec`` (a number, or a dict with ``dist``)."""
    return law(spec)(u)


def is_zero(spec) -> bool:
    """True when a spec (or every item of a spec per layer) can only give zero delays."""
    if isinstance(spec, list):
        return all(is_zero(x) for x in spec)
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


def of_layer(value, layer: int, key: str):
    """A timing key's value for units of ``layer`` (1 = first hidden layer): the value itself, or
    its item for that layer when it is given per layer (a list)."""
    if not isinstance(value, list):
        return value
    if len(value) == 1:
        return value[0]
    if not 1 <= layer <= len(value):
        raise GraphError(f"layer {layer}: timing.{key} gives {len(value)} values, one per layer 1…{len(value)}")
    return value[layer - 1]


def draw_by_layer(spec, layers, u: np.ndarray, key: str) -> np.ndarray:
    """Delays for the uniforms ``u`` whose items belong to ``layers``: ``draw(spec, u)`` for one
    spec; for a spec per layer, each distinct item drawn over the whole of ``u`` and each element
    taking the draw of its layer's item (so equal items draw exactly as one value does)."""
    if not isinstance(spec, list) or len(spec) == 1:
        return draw(of_layer(spec, 1, key), u)
    out = np.empty(np.shape(u))
    layers = np.asarray(layers, dtype=np.int64)
    drawn: dict = {}
    for layer in np.unique(layers):
        item = of_layer(spec, int(layer), key)
        name = repr(item)
        if name not in drawn:
            drawn[name] = draw(item, u)
        out[layers == layer] = drawn[name][layers == layer]
    return out


def position(g, n):
    """A unit's position (x, y, z) from its node attributes (absent coordinates 0), or None when
    it has none of them."""
    a = g.nodes[n]
    if not any(c in a for c in ("x", "y", "z")):
        return None
    return tuple(float(a.get(c, 0.0)) for c in ("x", "y", "z"))


def conduction_delay(p, q, velocity: float, offset: float = 0.0) -> float:
    """The delay between positions ``p`` and ``q``: d = ‖q − p‖ / velocity + offset (ms)."""
    return math.dist(p, q) / velocity + offset


def _placed(g, u, v):
    """Both ends' positions, or a GraphError naming the unit that has none."""
    ends = []
    for n in (u, v):
        p = position(g, n)
        if p is None:
            raise GraphError(f"node {n!r}: no position (x, y or z) for timing.conduction_velocity to give "
                             f"edge {u!r} -> {v!r} its delay; give the node a position or the edge a delay")
        ends.append(p)
    return ends


def assign_delays(g, synapse_delay, retro_delay, seed: int, *, overwrite: bool = False,
                  velocity: float | None = None, offset: float = 0.0) -> None:
    """Give every edge a ``delay`` and a ``retro_delay`` (in place): from the distance between its
    units when ``velocity`` is given, else drawn from the specs (per layer of the target unit
    when they are lists).

    Edges that already carry an attribute (set in a graph file) keep it unless ``overwrite``.
    """
    uid = {n: node_key(n) for n in g.nodes}
    for key, spec, purpose, name in (("delay", synapse_delay, streams.DELAY, "synapse_delay"),
                                     ("retro_delay", retro_delay, streams.RETRO_DELAY, "retro_delay")):
        edges = [(u, v) for u, v, a in g.edges(data=True) if overwrite or key not in a]
        if not edges:
            continue
        if velocity is not None:
            for a, b in edges:
                g.edges[a, b][key] = conduction_delay(*_placed(g, a, b), velocity, offset)
            continue
        tgt = np.array([uid[v] for _, v in edges], dtype=np.int64)
        src = np.array([uid[u] for u, _ in edges], dtype=np.int64)
        u = streams.uniforms(streams.unit_keys(seed, purpose, tgt), src)
        values = draw_by_layer(spec, [g.nodes[v]["layer"] for _, v in edges], u, name)
        for (a, b), d in zip(edges, values):
            g.edges[a, b][key] = float(d)


def node_key(node) -> int:
    """A stable integer key of a node, from its name alone (not from its place in the graph)."""
    return streams.seed_of("node", str(node))


def unit_delays(units, spec, seed: int, purpose: int = streams.REWARD_DELAY, layer_of: dict | None = None,
                key: str = "reward_delay") -> dict:
    """One delay per unit (for example the reward delay), keyed by the unit's name; ``layer_of``
    gives each unit's layer when ``spec`` is given per layer."""
    order = sorted(units, key=str)
    uid = np.array([node_key(n) for n in order], dtype=np.int64)
    u = streams.uniforms(streams.unit_keys(seed, purpose, uid), np.zeros_like(uid))
    layers = [layer_of[n] for n in order] if layer_of is not None else np.ones(len(order))
    return {n: float(d) for n, d in zip(order, draw_by_layer(spec, layers, u, key))}


def own_value(g, n, key: str, value):
    """A unit's value of a timing key: its node attribute ``key`` when the graph sets one, else
    ``value`` (the scenario's, already resolved for the unit)."""
    own = g.nodes[n].get(key) if g is not None and n in g else None
    return value if own is None else float(own)


def reward_delays(g, spec, seed: int) -> dict:
    """Each non-input unit's reward delay: its node's ``reward_delay``, else drawn from ``spec``
    (per layer of the unit)."""
    units = [n for n, r in g.nodes(data="role") if r != "input"]
    drawn = unit_delays(units, spec, seed, streams.REWARD_DELAY, {n: g.nodes[n]["layer"] for n in units})
    return {n: own_value(g, n, "reward_delay", d) for n, d in drawn.items()}


def refractory_periods(g, value) -> dict:
    """Each non-input unit's refractory period (ms): its node's ``refractory``, else ``value``
    (per layer of the unit)."""
    return {n: own_value(g, n, "refractory", float(of_layer(value, a["layer"], "refractory")))
            for n, a in g.nodes(data=True) if a["role"] != "input"}
