"""Connectivity: a NetworkX ``DiGraph`` whose nodes are units and whose edges are synapses.

Node attributes
    ``role``   ``"input"``, ``"hidden"`` or ``"output"``.
    ``kind``   a unit kind registered in :mod:`asyncneurons.learning.units` (``input``, ``bernoulli``,
               ``gaussian``, ``softplus``, ``softmax``, ``categorical``, ``linear_gaussian``,
               or a plug-in's hidden kind); optional for inputs.
    ``layer``  an int: 0 for inputs, 1 … L-1 for hidden layers, L for the output. Per-layer
               settings (learning rates, temperatures, variances) are indexed by it.
    ``index``  the unit's position within its layer (the observation or action component for
               input and output units).
    ``x``, ``y``, ``z``  the unit's position (numbers; absent coordinates count 0), from which
               ``timing.conduction_velocity`` computes delays.
    ``reward_delay``, ``refractory``, ``firing_period``, ``firing_phase``, ``firing_jitter``,
    ``firing_rate``  the unit's own value of the timing key (a number, ms or per ms), over the
               scenario's (:data:`TIMING_NODE_ATTRS`); not on input units.

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

from asyncneurons.errors import GraphError, did_you_mean

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
    :func:`asyncneurons.model.delays.assign_delays`.
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


def _node_number(value, where: str, bound) -> float:
    """A node's numeric attribute: finite, and ``bound`` (``"≥ 0"``, ``"> 0"`` or None) met."""
    if isinstance(value, bool):
        raise GraphError(f"{where} {value!r} is not a number")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise GraphError(f"{where} {value!r} is not a number") from None
    if not math.isfinite(x):
        raise GraphError(f"{where} {value!r} is not finite")
    if bound == "≥ 0" and x < 0 or bound == "> 0" and x <= 0:
        raise GraphError(f"{where} {x:g} must be {bound}")
    return x


def validate(g: nx.DiGraph, unit_kinds=None, *, need_delays: bool = True) -> None:
    """Check a connectivity graph; raise :class:`GraphError` naming the node or edge at fault.

    Rejected: nodes without a known role, kind or integer layer; inputs with incoming edges;
    negative, non-finite or missing delays; cycles whose total delay is zero; output units that
    no input reaches; a graph with no input or no output.
    """
    if unit_kinds is None:
        from asyncneurons.plugins import load
        from asyncneurons.learning.units import UNIT_KINDS as unit_kinds
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
        for key, bound in TIMING_NODE_ATTRS.items():
            if key in a:
                if role == "input":
                    raise GraphError(f"node {n!r}: {key} is not for an input unit (inputs take the "
                                     f"observation, they do not fire or learn)")
                a[key] = _node_number(a[key], f"node {n!r}: {key}", bound)
        for key in POSITION_ATTRS:
            if key in a:
                a[key] = _node_number(a[key], f"node {n!r}: {key}", None)
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


# ------------------------------------------------------------------------------------------------
# A graph against its task and scenario: what a run would refuse, found before it starts

#: Timing keys a node may set for its unit, with the bound its number must meet.
TIMING_NODE_ATTRS = {"reward_delay": "≥ 0", "refractory": "≥ 0", "firing_period": "> 0",
                     "firing_phase": "≥ 0", "firing_jitter": "≥ 0", "firing_rate": "> 0"}
POSITION_ATTRS = ("x", "y", "z")
NODE_ATTRS = ("role", "kind", "layer", "index", *TIMING_NODE_ATTRS)
EDGE_ATTRS = ("delay", "retro_delay")
PER_LAYER_KEYS = (("learning", "lr"), ("learning", "lr_end"), ("network", "temperature"),
                  ("network", "variance"), ("timing", "synapse_delay"), ("timing", "retro_delay"),
                  ("timing", "reward_delay"), ("timing", "refractory"), ("timing", "firing_period"),
                  ("timing", "firing_phase"), ("timing", "firing_jitter"), ("timing", "firing_rate"))


def check_names(g: nx.DiGraph) -> None:
    """Attributes are checked by name: a missing one is named as missing, and one that is not ours
    but close to one of ours (``dealy``) is a typo with a did-you-mean. Others (a tool's labels,
    colours, coordinates) are left alone."""
    for n, a in g.nodes(data=True):
        for key in a:
            if _typo(key, NODE_ATTRS):
                raise GraphError(f"node {n!r}: unknown attribute {key!r}{did_you_mean(key, NODE_ATTRS)}")
        for key in ("role", "layer") + (("kind",) if a.get("role") != "input" else ()):
            if key not in a:
                raise GraphError(f"node {n!r}: attribute {key!r} is missing")
    for u, v, a in g.edges(data=True):
        for key in a:
            if _typo(key, EDGE_ATTRS):
                raise GraphError(f"edge {u!r} -> {v!r}: unknown attribute {key!r}"
                                 f"{did_you_mean(key, EDGE_ATTRS)}")


#: Attributes drawing tools write (yEd, Gephi, NetworkX): never taken for a typo of ours.
TOOL_ATTRS = frozenset({"label", "name", "id", "x", "y", "z", "r", "g", "b", "size", "color",
                        "colour", "shape", "weight", "description", "url", "width", "height"})


def _typo(key, ours) -> bool:
    """``key`` is not ours but so close to one of ours that it is surely a misspelling."""
    import difflib
    key = str(key)
    return (key not in ours and key.lower() not in TOOL_ATTRS
            and bool(difflib.get_close_matches(key, ours, n=1, cutoff=0.75)))


def check_task(g: nx.DiGraph, scenario, n_obs: int, action) -> None:
    """Check a graph file's network against the task and the scenario, as a run would need it:
    inputs indexed 0 … n_obs-1 once each, outputs of one kind that encode the task's actions and
    are indexed 0 … n-1 once each, layers 0 … L without a gap (inputs alone at 0, outputs alone at
    L), no recurrent cycle, and per-layer lists of one value per layer."""
    check_names(g)
    role = dict(g.nodes(data="role"))
    layers: dict = {}
    for n, a in g.nodes(data=True):
        layers.setdefault(a["layer"], []).append(n)
    top = max(layers)
    for n, a in g.nodes(data=True):
        if a["role"] == "input" and a["layer"] != 0:
            raise GraphError(f"node {n!r}: an input unit must be in layer 0 (it is in layer {a['layer']})")
        if a["role"] != "input" and a["layer"] == 0:
            raise GraphError(f"node {n!r}: layer 0 holds the input units only")
        if a["role"] == "output" and a["layer"] != top:
            raise GraphError(f"node {n!r}: an output unit must be in the last layer, {top} "
                             f"(it is in layer {a['layer']})")
        if a["role"] == "hidden" and a["layer"] == top:
            raise GraphError(f"node {n!r}: a hidden unit in layer {top}, the output layer")
    gaps = [layer for layer in range(top + 1) if layer not in layers]
    if gaps:
        raise GraphError(f"layer {gaps[0]} has no unit: layers must be numbered 0 … {top} without a gap")
    _check_indices(g, "input", n_obs, "observations have")
    outputs = [n for n in g if role[n] == "output"]
    kinds = sorted({g.nodes[n]["kind"] for n in outputs})
    if len(kinds) > 1:
        raise GraphError(f"output units of different kinds ({', '.join(kinds)}): the output is one "
                         f"population of one kind")
    kind, task = kinds[0], scenario.env.id
    if action[0] == "discrete":
        n = action[1]
        need = {"softmax": n - 1, "categorical": n, "bernoulli": 1}.get(kind)
        if need is None:
            raise GraphError(f"output units of kind {kind}: {task} has {n} discrete actions; "
                             f"use softmax, categorical or bernoulli outputs")
        if kind == "bernoulli" and n != 2:
            raise GraphError(f"a bernoulli output encodes two actions; {task} has {n}")
        what = {"softmax": f"{n} actions need {n - 1} softmax output units (the last logit is fixed)",
                "categorical": f"{n} actions need {n} categorical output units",
                "bernoulli": "two actions need one bernoulli output unit"}[kind]
    else:
        need = action[1]
        if kind != "linear_gaussian":
            raise GraphError(f"output units of kind {kind}: {task} has continuous actions; "
                             f"use linear_gaussian outputs")
        what = f"an action of {need} components needs {need} linear_gaussian output units"
    if len(outputs) != need:
        raise GraphError(f"the graph has {len(outputs)} output unit(s) but {task}: {what}")
    _check_indices(g, "output", need, "actions need")
    cycle = _a_cycle(g)
    if cycle:
        raise GraphError(f"recurrent cycle {cycle}: graphs with cycles are not supported yet "
                         f"(every synapse must lead to a deeper layer or a unit not upstream)")
    _check_per_layer(scenario, top)


def _check_indices(g, which: str, count: int, what: str) -> None:
    units = sorted((a.get("index", 0), n) for n, a in g.nodes(data=True) if a["role"] == which)
    if len(units) != count:
        raise GraphError(f"the graph has {len(units)} {which} units but the task's {what} "
                         f"{count} components")
    seen: dict = {}
    for index, n in units:
        if index >= count:
            raise GraphError(f"node {n!r}: {which} index {index} is out of range 0 … {count - 1}")
        if index in seen:
            raise GraphError(f"nodes {seen[index]!r} and {n!r}: both are {which} index {index}")
        seen[index] = n


def _a_cycle(g) -> str:
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return ""
    return " -> ".join(repr(u) for u, _ in cycle) + f" -> {cycle[0][0]!r}"


def _check_per_layer(scenario, n_layers: int) -> None:
    for section, key in PER_LAYER_KEYS:
        value = getattr(getattr(scenario, section), key, None)
        if isinstance(value, (list, tuple)) and len(value) not in (1, n_layers):
            raise GraphError(f"{section}.{key}: {len(value)} values given but the graph has "
                             f"{n_layers} layers with weights (give one value, or one per layer)")
