"""Connectivity: a NetworkX ``DiGraph`` whose nodes are units and whose edges are synapses.

Node attributes
    ``role``   ``"input"``, ``"hidden"`` or ``"output"``.
    ``kind``   a unit kind registered in :mod:`asyncneurons.units` (``input``, ``bernoulli``,
               ``gaussian``, ``softplus``, ``softmax``, ``categorical``, ``linear_gaussian``,
               or a plug-in's hidden kind); optional for inputs.
    ``layer``  an int: 0 for inputs, 1 … L-1 for hidden layers, L for the output. Per-layer
               settings (learning rates, temperatures, variances) are indexed by it.
    ``index``  the unit's position within its layer (the observation or action component for
               input and output units).

Edge attributes
    ``delay``        forward conduction delay in ms (a finite number ≥ 0).
    ``retro_delay``  delay in ms of signals flowing back along the synapse (retrograde).

The file formats and every attribute are described in ``docs/graph-files.md``. Builders are
free functions returning a fresh graph; :func:`validate` checks any graph, built
or loaded, and raises :class:`~asyncneurons.errors.GraphError` naming the node or edge at fault.
"""

from __future__ import annotations

import math

import networkx as nx

from .errors import GraphError, did_you_mean

ROLES = ("input", "hidden", "output")


def node_name(layer: int, index: int, n_layers: int) -> str:
    """Readable node ids: ``in0`` …, ``h1_0`` …, ``out0`` …"""
    if layer == 0:
        return f"in{index}"
    if layer == n_layers:
        return f"out{index}"
    return f"h{layer}_{index}"


def layered(n_inputs: int, hidden, n_outputs: int, *, hidden_kind: str = "bernoulli",
            output_kind: str = "softmax") -> nx.DiGraph:
    """A fully connected layered network ``n_inputs → hidden[0] → … → n_outputs``.

    For a softmax output over n actions pass ``n_outputs = n - 1``: the last action's logit is
    fixed at 0, as published (algorithms.md §2.1). Edges carry no delays yet; see
    :func:`asyncneurons.delays.assign_delays`.
    """
    sizes = [int(n_inputs), *[int(h) for h in hidden], int(n_outputs)]
    n_layers = len(sizes) - 1
    g = nx.DiGraph()
    for layer, size in enumerate(sizes):
        role = "input" if layer == 0 else "output" if layer == n_layers else "hidden"
        kind = "input" if layer == 0 else output_kind if layer == n_layers else hidden_kind
        for i in range(size):
            g.add_node(node_name(layer, i, n_layers), role=role, kind=kind, layer=layer, index=i)
    for layer in range(n_layers):
        for i in range(sizes[layer]):
            for j in range(sizes[layer + 1]):
                g.add_edge(node_name(layer, i, n_layers), node_name(layer + 1, j, n_layers))
    return g


def _finite_delay(value, where: str) -> float:
    try:
        d = float(value)
    except (TypeError, ValueError):
        raise GraphError(f"{where}: delay {value!r} is not a number") from None
    if not math.isfinite(d):
        raise GraphError(f"{where}: delay {value!r} is not finite")
    if d < 0:
        raise GraphError(f"{where}: delay {d:g} ms is negative")
    return d


def validate(g: nx.DiGraph, unit_kinds=None, *, need_delays: bool = True) -> None:
    """Check a connectivity graph; raise :class:`GraphError` naming the node or edge at fault.

    Rejected: nodes without a known role, kind or integer layer; inputs with incoming edges;
    negative, non-finite or missing delays; cycles whose total delay is zero; output units that
    no input reaches; a graph with no input or no output.
    """
    if unit_kinds is None:
        from .plugins import load
        from .units import UNIT_KINDS as unit_kinds
        load()
    if not isinstance(g, nx.DiGraph) or g.is_multigraph():
        raise GraphError("the connectivity must be a directed graph without parallel edges")
    if g.number_of_nodes() == 0:
        raise GraphError("the graph has no nodes")
    for n, a in g.nodes(data=True):
        role = a.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise GraphError(f"node {n!r}: role {role!r} is not one of input, hidden, output"
                             f"{did_you_mean(role, ROLES) if isinstance(role, str) else ''}")
        kind = a.get("kind", "input" if role == "input" else None)
        if not isinstance(kind, str) or kind not in unit_kinds:
            raise GraphError(f"node {n!r}: unknown unit kind {kind!r}{did_you_mean(kind, unit_kinds)}; "
                             f"known: {', '.join(sorted(unit_kinds))}")
        spec = unit_kinds[kind]
        if role not in spec.roles:
            raise GraphError(f"node {n!r}: a {kind} unit cannot have role {role!r} "
                             f"(allowed: {', '.join(spec.roles)})")
        layer = a.get("layer")
        if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
            raise GraphError(f"node {n!r}: layer {layer!r} must be an integer ≥ 0")
        index = a.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise GraphError(f"node {n!r}: index {index!r} must be an integer ≥ 0")
        if role == "input" and g.in_degree(n):
            src = next(iter(g.predecessors(n)))
            raise GraphError(f"edge {src!r} -> {n!r}: input units receive only the observation")
        if role != "input" and g.in_degree(n) == 0:
            raise GraphError(f"node {n!r}: a {role} unit has no incoming synapse")
    for u, v, a in g.edges(data=True):
        if u == v:
            if "delay" in a and _finite_delay(a["delay"], f"edge {u!r} -> {v!r}") == 0:
                raise GraphError(f"edge {u!r} -> {v!r}: a self-loop with zero delay")
        for key in ("delay", "retro_delay"):
            if key in a:
                a[key] = _finite_delay(a[key], f"edge {u!r} -> {v!r} ({key})")
            elif need_delays:
                raise GraphError(f"edge {u!r} -> {v!r}: no {key}")
    inputs = [n for n, r in g.nodes(data="role") if r == "input"]
    outputs = [n for n, r in g.nodes(data="role") if r == "output"]
    if not inputs:
        raise GraphError("the graph has no input unit")
    if not outputs:
        raise GraphError("the graph has no output unit")
    zero = nx.DiGraph((u, v) for u, v, d in g.edges(data="delay") if d is not None and d == 0)
    if zero.number_of_edges() and not nx.is_directed_acyclic_graph(zero):
        cycle = nx.find_cycle(zero)
        path = " -> ".join(repr(u) for u, _ in cycle) + f" -> {cycle[0][0]!r}"
        raise GraphError(f"cycle with zero total delay: {path}")
    reached = set(inputs)
    for n in inputs:
        reached |= nx.descendants(g, n)
    for n in outputs:
        if n not in reached:
            raise GraphError(f"node {n!r}: output unit unreachable from the inputs")


def ranks(g: nx.DiGraph) -> dict:
    """Each unit's rank: its position in the order of firing within one instant.

    Along every zero-delay edge u → v, rank(u) < rank(v) (the zero-delay subgraph is acyclic),
    so a unit fires only after every unit that can reach it at the same instant. Ranks are the
    longest zero-delay path from a unit with no zero-delay input, offset by the layer so that
    layered networks rank by layer.
    """
    zero = nx.DiGraph()
    zero.add_nodes_from(g.nodes)
    zero.add_edges_from((u, v) for u, v, d in g.edges(data="delay") if d == 0)
    rank = {}
    for n in nx.topological_sort(zero):
        preds = list(zero.predecessors(n))
        rank[n] = max([g.nodes[n]["layer"]] + [rank[p] + 1 for p in preds])
    return rank
