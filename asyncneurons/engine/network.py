"""Compile a connectivity graph into groups: the units that the engine serves together.

A *group* is a set of units of one layer and kind whose events always coincide: same firing
policy and clock, same reward delay, and, from every presynaptic unit, the same forward and retrograde
delays. Such units receive every value at the same instant, so one vectorized process can serve
them all (fusion). With fusion off every unit is its own group; a softmax output is always one
group, since its units sample one action together. Fusion changes no result: randomness is
keyed per unit (:mod:`asyncneurons.learning.streams`) and every reduction runs along a unit's own row
(:mod:`asyncneurons.learning.kernels`).

Deliveries are batched per (source group, target group, delay): one event carries every value
that a firing group sends with that delay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asyncneurons.learning import streams
from asyncneurons.model.graph import ranks
from asyncneurons.learning.kernels import glorot_bound
from asyncneurons.learning.units import UNIT_KINDS, LayerParams

NEVER = np.iinfo(np.int64).max  # wave tag of entries that never receive a value (bias, non-edges)
BIAS_KEY = 1 << 40  # keyed-stream counter of a unit's bias draw


@dataclass(eq=False)
class Bucket:
    """Values one firing group sends to one target group with one delay."""

    target: "Group"
    delay: float
    cols: np.ndarray  # columns of the target's inputs that receive a value
    pos: np.ndarray  # positions, in the source group's values, of what each column receives
    rows: object = None  # None: every row of the target; else an index array (np.ix_ with cols)
    pairs: tuple | None = None  # (rows, cols, pos) when the edges form no rectangle
    whole: bool = False  # every row and every input column, in the sender's order
    span: slice | None = None  # the columns as a slice, when they are consecutive


@dataclass(eq=False)
class Group:
    """Units served together, with their parameters, held inputs, traces and optimizer state.

    Arrays have one row per unit and one column per presynaptic source plus a bias column:
    ``P`` weights, ``H`` held input values, ``E`` eligibility traces, ``M``/``V`` Adam moments,
    ``T`` the wave tag of each held value.
    """

    gid: int
    kind: object
    role: str
    layer: int
    rank: int
    names: list
    uids: np.ndarray
    sources: list
    P: np.ndarray
    reward_delay: float
    lp: LayerParams = field(default_factory=LayerParams)
    buckets: list = field(default_factory=list)
    t: int = 0
    last_wave: int = -1
    refractory: float = 0.0  # ms after a sample during which the group does not sample

    def __post_init__(self):
        m, n1 = self.P.shape
        self.H = np.zeros((m, n1))
        self.H[:, -1] = 1.0
        self.E = np.zeros((m, n1))
        self.M = np.zeros((m, n1))
        self.V = np.zeros((m, n1))
        self.T = np.full((m, n1), NEVER, dtype=np.int64)
        self.counters = np.zeros(m, dtype=np.int64)
        self.values = np.zeros(m)
        self.aux = None
        self.decay = 0.0
        self.wake = None
        self.last_fire = -np.inf
        self.retro_in = []  # retrograde blocks landed this instant: (sender uids, positions, block)
        self.retro_reset = False
        self.td_store = {}  # MAP Propagation: latest top-down message block from each sender bucket
        self.relax_gen = 0
        self.frozen_action = None
        self.error_pending = False

    @property
    def size(self) -> int:
        return len(self.names)


def _unit_ids(g) -> dict:
    order = sorted(g.nodes, key=lambda n: (g.nodes[n]["layer"], g.nodes[n].get("index", 0), str(n)))
    return {n: i for i, n in enumerate(order)}


def init_weights(g, seed: int, unit, sources, uid, layer_size: dict, bias_init: float = 1e-3) -> np.ndarray:
    """Glorot-uniform incoming weights (0 where there is no synapse) and a U(±bias_init) bias.

    Each weight is keyed by (target unit, source unit): the same whatever the grouping. For a
    softmax output the Glorot fan-out counts the fixed last logit too (algorithms.md §1).
    """
    return init_weight_rows(g, [seed], [unit], sources, uid, layer_size, bias_init)[0, 0]


def init_weight_rows(g, seeds, units, sources, uid, layer_size: dict, bias_init: float = 1e-3) -> np.ndarray:
    """:func:`init_weights` of every unit in ``units`` (all with inputs from ``sources``) for
    every seed: an array seeds × units × (sources + 1), each entry the bits of that unit's own
    draw (the same keyed uniforms and the same operations per entry)."""
    bounds, mask = [], np.zeros((len(units), len(sources)), dtype=bool)
    for j, unit in enumerate(units):
        a = g.nodes[unit]
        bounds.append(glorot_bound(g.in_degree(unit), layer_size[a["layer"]] + (1 if a["kind"] == "softmax" else 0)))
        preds = set(g.predecessors(unit))
        mask[j] = [s not in preds for s in sources]
    bound = np.array(bounds, dtype=np.float64)[:, None]
    cols = np.array([uid[s] for s in sources] + [BIAS_KEY], dtype=np.int64)
    uids = np.array([uid[u] for u in units], dtype=np.int64)
    out = np.empty((len(seeds), len(units), len(sources) + 1))
    for i, seed in enumerate(seeds):
        u = streams.uniforms(streams.unit_keys(seed, streams.INIT, uids)[:, None], cols[None, :])
        P = (2.0 * u - 1.0) * bound
        P[:, -1] = (2.0 * u[:, -1] - 1.0) * bias_init
        P[:, :-1][mask] = 0.0
        out[i] = P
    return out


def compile_groups(g, *, seed: int, fuse: bool, reward_delays: dict, layer_params, retro: bool = False,
                   bias_init: float = 1e-3, across_delays: bool = False, clocks: dict | None = None,
                   refractory: dict | None = None, alone=frozenset()) -> tuple:
    """Turn a validated graph with delays into (input group, groups in firing order).

    ``layer_params(layer) -> LayerParams`` gives each layer's temperature and variance. With
    ``retro`` (rules that send signals back along synapses) units fuse only when their outgoing
    retrograde delays coincide too, and each group gets ``retro_buckets``: the signals it sends
    back, batched per (presynaptic group, retrograde delay). With ``across_delays`` (firing
    windows, :mod:`asyncneurons.engine.windows`) forward delays do not split a group. ``clocks`` maps a
    unit to its clock (:func:`asyncneurons.engine.clocks.fusing_key`): units on different clocks tick at
    different instants, so they share a group only under firing windows, which time each unit
    on its own; a population ticks on the clock of its first unit. ``refractory`` maps a unit
    to its refractory period (ms; 0 when absent): units with different ones never share a group,
    and a population keeps that of its first unit. Units in ``alone`` (each hearing the TD error
    or retrograde signals at their own instants, :mod:`asyncneurons.engine.jitter`) share no group.
    """
    refractory = refractory or {}
    uid = _unit_ids(g)
    rank = ranks(g)
    layer_size: dict = {}
    for n, a in g.nodes(data=True):
        layer_size[a["layer"]] = layer_size.get(a["layer"], 0) + 1

    inputs = sorted((n for n, r in g.nodes(data="role") if r == "input"),
                    key=lambda n: g.nodes[n].get("index", 0))
    input_group = Group(0, UNIT_KINDS["input"], "input", 0, -1, inputs,
                        np.array([uid[n] for n in inputs]), [], np.zeros((len(inputs), 1)), 0.0)

    keyed: dict = {}
    for n in sorted((n for n, r in g.nodes(data="role") if r != "input"), key=uid.get):
        a = g.nodes[n]
        kind = UNIT_KINDS[a["kind"]]
        if kind.population:
            key = (a["layer"], a["kind"], a["role"], "population")
        elif fuse and n not in alone:
            inc = tuple(sorted((uid[p], None if across_delays else g.edges[p, n]["delay"],
                                g.edges[p, n]["retro_delay"]) for p in g.predecessors(n)))
            out = tuple(sorted((uid[c], g.edges[n, c]["retro_delay"]) for c in g.successors(n))) if retro else ()
            clock = None if across_delays or clocks is None else clocks[n]
            key = (a["layer"], a["kind"], a["role"], rank[n], reward_delays[n], inc, out, clock,
                   refractory.get(n, 0.0))
        else:
            key = (n,)
        keyed.setdefault(key, []).append(n)

    groups = []
    for members in sorted(keyed.values(), key=lambda ms: (max(rank[m] for m in ms), uid[ms[0]])):
        first = g.nodes[members[0]]
        sources = sorted({p for m in members for p in g.predecessors(m)}, key=uid.get)
        P = np.stack([init_weights(g, seed, m, sources, uid, layer_size, bias_init) for m in members])
        grp = Group(len(groups) + 1, UNIT_KINDS[first["kind"]], first["role"], first["layer"],
                    max(rank[m] for m in members), members, np.array([uid[m] for m in members]),
                    sources, P, reward_delays[members[0]], layer_params(first["layer"]))
        grp.refractory = float(refractory.get(members[0], 0.0))
        col = grp.col = {s: i for i, s in enumerate(sources)}
        for r, m in enumerate(members):
            for p in g.predecessors(m):
                grp.T[r, col[p]] = -1
        grp.keys1 = streams.unit_keys(seed, streams.SAMPLE, grp.uids)
        grp.keys2 = streams.unit_keys(seed, streams.SAMPLE2, grp.uids)
        groups.append(grp)

    group_of = {n: input_group for n in inputs}
    position = {n: i for i, n in enumerate(inputs)}
    for grp in groups:
        for i, n in enumerate(grp.names):
            group_of[n], position[n] = grp, i

    edges: dict = {}
    for u, v, d in g.edges(data="delay"):
        tg = group_of[v]
        key = (group_of[u].gid, tg.gid, d)
        edges.setdefault(key, (group_of[u], tg, d, []))[3].append(
            (position[v], tg.col[u], position[u]))
    for (sg_id, tg_id, d), (sg, tg, delay, triples) in sorted(edges.items(), key=lambda kv: kv[0]):
        rows = np.array([t[0] for t in triples])
        cols = np.array([t[1] for t in triples])
        pos = np.array([t[2] for t in triples])
        urows, ucols = np.unique(rows), np.unique(cols)
        col_pos = dict(zip(cols.tolist(), pos.tolist()))
        bucket = Bucket(tg, float(delay), ucols, np.array([col_pos[c] for c in ucols]))
        if len(triples) != len(urows) * len(ucols):
            bucket.pairs = (rows, cols, pos)
        elif len(urows) != tg.size:
            bucket.rows = urows
        n_in = tg.P.shape[1] - 1
        bucket.whole = (bucket.pairs is None and bucket.rows is None and len(ucols) == n_in
                        and np.array_equal(bucket.cols, np.arange(n_in))
                        and np.array_equal(bucket.pos, np.arange(n_in)) and sg.size == n_in)
        sg.buckets.append(bucket)

    for grp in groups:
        grp.retro_buckets = []
    if retro:
        back: dict = {}
        for u, v, d in g.edges(data="retro_delay"):
            sg, tg = group_of[u], group_of[v]
            if sg is input_group:
                continue
            back.setdefault((tg.gid, sg.gid, d), (tg, sg, d, []))[3].append((position[v], tg.col[u], position[u]))
        for _, (tg, sg, delay, triples) in sorted(back.items(), key=lambda kv: kv[0]):
            urows = np.unique([t[0] for t in triples])
            col_pos = {t[1]: t[2] for t in triples}
            ucols = np.array(sorted(col_pos))
            bucket = Bucket(sg, float(delay), ucols, np.array([col_pos[c] for c in ucols]),
                            None if len(urows) == tg.size else urows)
            if np.array_equal(ucols, np.arange(ucols[0], ucols[0] + len(ucols))):
                bucket.span = slice(int(ucols[0]), int(ucols[0]) + len(ucols))
            tg.retro_buckets.append(bucket)
    return input_group, groups
