"""Connectivity graphs: builders, validation, ranks, delay assignment and graph files."""

from __future__ import annotations

import json
import math
import pickle
import pickletools
import re
from pathlib import Path

import hypothesis.strategies as st
import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from asyncneurons.model.delays import assign_delays
from asyncneurons.errors import GraphError
from asyncneurons.model.graph import layered, ranks, validate
from asyncneurons.model.graphio import graph_from_bytes, load_graph, save_graph

try:
    from asyncneurons.learning.units import UNIT_KINDS
except ImportError:  # units.py not written yet: a stand-in with the same kinds and roles
    from types import SimpleNamespace

    UNIT_KINDS = {name: SimpleNamespace(roles=roles) for name, roles in {
        "input": ("input",), "bernoulli": ("hidden", "output"), "gaussian": ("hidden",),
        "softmax": ("output",), "linear_gaussian": ("output",)}.items()}

HERE = Path(__file__).parent
BAD = HERE / "bad_graphs"
EXAMPLES = HERE.parent / "scenarios" / "graphs"


def check(g, **kw):
    validate(g, UNIT_KINDS, **kw)


def load(path):
    return load_graph(path, unit_kinds=UNIT_KINDS)


def rejects(g, message, **kw):
    """validate(g) fails with exactly ``message``."""
    with pytest.raises(GraphError) as err:
        check(g, **kw)
    assert str(err.value) == message


def small(delay=1.0):
    """in0 -> h0 -> h1 -> out0, every edge with the given delay."""
    g = nx.DiGraph()
    g.add_node("in0", role="input", kind="input", layer=0, index=0)
    g.add_node("h0", role="hidden", kind="bernoulli", layer=1, index=0)
    g.add_node("h1", role="hidden", kind="bernoulli", layer=1, index=1)
    g.add_node("out0", role="output", kind="softmax", layer=2, index=0)
    for u, v in (("in0", "h0"), ("h0", "h1"), ("h1", "out0")):
        g.add_edge(u, v, delay=delay, retro_delay=delay)
    return g


# ---------------------------------------------------------------------------------------------
# Builders


def test_layered_counts_and_attributes():
    g = layered(4, [64, 32], 1)
    assert g.number_of_nodes() == 4 + 64 + 32 + 1
    assert g.number_of_edges() == 4 * 64 + 64 * 32 + 32 * 1
    sizes = {0: 4, 1: 64, 2: 32, 3: 1}
    for layer, size in sizes.items():
        members = [n for n, a in g.nodes(data=True) if a["layer"] == layer]
        assert sorted(g.nodes[n]["index"] for n in members) == list(range(size))
    assert all(a["role"] == "input" and a["kind"] == "input"
               for n, a in g.nodes(data=True) if a["layer"] == 0)
    assert all(a["role"] == "hidden" and a["kind"] == "bernoulli"
               for n, a in g.nodes(data=True) if a["layer"] in (1, 2))
    assert g.nodes["out0"] == {"role": "output", "kind": "softmax", "layer": 3, "index": 0}
    for u, v in g.edges:
        assert g.nodes[v]["layer"] == g.nodes[u]["layer"] + 1
    assert all(not a for _, _, a in g.edges(data=True))   # no delays yet
    with pytest.raises(GraphError, match="no delay"):
        check(g)
    check(g, need_delays=False)
    assign_delays(g, 0.0, 0.0, seed=0)
    assert all(a == {"delay": 0.0, "retro_delay": 0.0} for _, _, a in g.edges(data=True))
    check(g)


# ---------------------------------------------------------------------------------------------
# Rejections: each names the node or the edge


def test_negative_delay():
    g = small()
    g.edges["h0", "h1"]["delay"] = -0.5
    rejects(g, "edge 'h0' -> 'h1' (delay): delay -0.5 ms is negative")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_delay(value):
    g = small()
    g.edges["h1", "out0"]["retro_delay"] = value
    rejects(g, f"edge 'h1' -> 'out0' (retro_delay): delay {value!r} is not finite")


def test_zero_delay_cycle_lists_the_cycle():
    g = small()
    g.add_edge("h1", "h0", delay=0.0, retro_delay=1.0)
    g.edges["h0", "h1"]["delay"] = 0.0
    rejects(g, "cycle with zero total delay: 'h0' -> 'h1' -> 'h0'")


def test_zero_delay_self_loop():
    g = small()
    g.add_edge("h0", "h0", delay=0.0, retro_delay=0.0)
    rejects(g, "edge 'h0' -> 'h0': a self-loop with zero delay")


def test_positive_delay_cycles_are_accepted():
    g = small()
    g.add_edge("h1", "h0", delay=0.0, retro_delay=0.0)
    g.edges["h0", "h1"]["delay"] = 0.5           # total around the cycle: 0.5 ms
    g.add_edge("h0", "h0", delay=2.0, retro_delay=2.0)
    g.add_edge("out0", "h0", delay=1.0, retro_delay=1.0)
    check(g)


def test_unreachable_output():
    g = small()
    g.remove_edge("in0", "h0")
    g.add_edge("in0", "h2", delay=1.0, retro_delay=1.0)
    g.add_node("h2", role="hidden", kind="gaussian", layer=1, index=2)
    g.add_edge("h1", "h0", delay=1.0, retro_delay=1.0)
    rejects(g, "node 'out0': output unit unreachable from the inputs")


def test_unknown_kind_suggests():
    g = small()
    g.nodes["h1"]["kind"] = "gausian"
    rejects(g, "node 'h1': unknown unit kind 'gausian' (did you mean \"gaussian\"?); known: "
            + ", ".join(sorted(UNIT_KINDS)))


def test_wrong_role():
    g = small()
    g.nodes["out0"]["kind"] = "gaussian"
    rejects(g, "node 'out0': a gaussian unit cannot have role 'output' (allowed: hidden)")
    g = small()
    g.nodes["h0"]["role"] = "hiden"
    rejects(g, "node 'h0': role 'hiden' is not one of input, hidden, output "
            "(did you mean \"hidden\"?)")


def test_input_with_incoming_edge():
    g = small()
    g.add_edge("h1", "in0", delay=1.0, retro_delay=1.0)
    rejects(g, "edge 'h1' -> 'in0': input units receive only the observation")


def test_no_output():
    g = small()
    g.remove_node("out0")
    rejects(g, "the graph has no output unit")


@pytest.mark.parametrize("layer", [1.0, "1", None, -1, True])
def test_non_integer_layer(layer):
    g = small()
    g.nodes["h0"]["layer"] = layer
    rejects(g, f"node 'h0': layer {layer!r} must be an integer ≥ 0")


# ---------------------------------------------------------------------------------------------
# Ranks


def test_ranks_order_zero_delay_edges():
    g = layered(3, [5, 4], 2, output_kind="bernoulli")
    assign_delays(g, 0.0, 0.0, seed=0)
    g.add_edge("h1_0", "h1_1", delay=0.0, retro_delay=0.0)   # lateral, same instant
    g.add_edge("h1_1", "h1_2", delay=0.0, retro_delay=0.0)
    g.add_edge("h2_3", "h1_4", delay=3.0, retro_delay=0.0)   # backward, delayed: no constraint
    g.edges["in0", "h1_3"]["delay"] = 2.0
    check(g)
    r = ranks(g)
    assert set(r) == set(g.nodes)
    zero_edges = [(u, v) for u, v, d in g.edges(data="delay") if d == 0]
    assert len(zero_edges) > 40
    for u, v in zero_edges:
        assert r[u] < r[v], (u, v)
    assert r["h1_2"] >= r["h1_0"] + 2


# ---------------------------------------------------------------------------------------------
# Delay assignment


DISTS = [
    ({"dist": "uniform", "low": 1.0, "high": 3.0}, 2.0),
    ({"dist": "truncnormal", "mean": 2.0, "std": 0.5}, 2.0),
    ({"dist": "truncnormal", "mean": 0.0, "std": 1.0, "low": 0.0}, math.sqrt(2 / math.pi)),
    ({"dist": "exponential", "mean": 2.0}, 2.0),
    ({"dist": "exponential", "mean": 1.0, "shift": 0.5}, 1.5),
    ({"dist": "lognormal", "mu": 0.0, "sigma": 0.5}, math.exp(0.125)),
    ({"dist": "constant", "value": 2.5}, 2.5),
]


def delays_of(g, key="delay"):
    return np.array([a[key] for _, _, a in sorted(g.edges(data=True), key=lambda e: e[:2])])


@pytest.mark.parametrize("spec,mean", DISTS, ids=lambda x: x["dist"] if isinstance(x, dict) else "")
def test_assign_delays_distributions(spec, mean):
    g = layered(10, [100], 1)                              # 1,100 edges
    assign_delays(g, spec, spec, seed=1)
    for key in ("delay", "retro_delay"):
        d = delays_of(g, key)
        assert len(d) == 1100
        assert np.all(np.isfinite(d)) and np.all(d >= 0)
        assert d.mean() == pytest.approx(mean, rel=0.06)
        if spec["dist"] != "constant":
            assert len(np.unique(d)) == len(d)             # continuous: no two alike
            tenths = d * 10
            assert np.any(np.abs(tenths - np.round(tenths)) > 1e-6)   # not on a 0.1 grid
    assert not np.array_equal(delays_of(g), delays_of(g, "retro_delay")) or \
        spec["dist"] == "constant"


def test_assign_delays_independent_of_insertion_order():
    a = layered(4, [16], 2)
    b = nx.DiGraph()
    nodes = list(a.nodes(data=True))
    for n, attrs in reversed(nodes):
        b.add_node(n, **attrs)
    for u, v in reversed(list(a.edges)):
        b.add_edge(u, v)
    assert list(a.edges) != list(b.edges)
    spec = {"dist": "lognormal", "mu": 0.5, "sigma": 0.3}
    assign_delays(a, spec, {"dist": "uniform", "low": 0.0, "high": 1.0}, seed=3)
    assign_delays(b, spec, {"dist": "uniform", "low": 0.0, "high": 1.0}, seed=3)
    for u, v in a.edges:
        assert a.edges[u, v] == b.edges[u, v]
    c = layered(4, [16], 2)
    assign_delays(c, spec, 0.0, seed=4)
    assert any(a.edges[e]["delay"] != c.edges[e]["delay"] for e in a.edges)


def test_assign_delays_keeps_file_delays():
    g = small(delay=7.25)
    g.add_edge("in0", "h1")
    assign_delays(g, 1.0, 2.0, seed=0)
    assert g.edges["in0", "h0"]["delay"] == 7.25
    assert g.edges["in0", "h1"] == {"delay": 1.0, "retro_delay": 2.0}


# ---------------------------------------------------------------------------------------------
# Graph files


def read_expected():
    out = {}
    for line in (BAD / "expected.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, message = line.split("\t")
            out[name] = message
    return out


EXPECTED = read_expected()
CORPUS = sorted(p.name for p in BAD.iterdir() if p.suffix in (".json", ".graphml"))


def test_corpus_is_complete():
    assert CORPUS == sorted(EXPECTED)
    assert len(CORPUS) >= 12
    assert any(n.startswith("pickle") and n.endswith(".json") for n in CORPUS)
    assert any(n.startswith("pickle") and n.endswith(".graphml") for n in CORPUS)


@pytest.fixture
def no_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle a graph file")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


@pytest.mark.parametrize("name", CORPUS)
def test_bad_graph_corpus(name, no_unpickling, capsys):
    path = BAD / name
    with pytest.raises(GraphError) as err:  # the billion laughs are refused before expansion
        load(path)
    assert str(err.value) == f"{path}: {EXPECTED[name]}"
    assert "\n" not in str(err.value)
    assert "PWNED" not in capsys.readouterr().out


def test_pickle_payloads_are_real_pickles():
    """The corpus payloads would run code if unpickled (they print PWNED): keep them honest."""
    for name in CORPUS:
        if name.startswith("pickle"):
            data = (BAD / name).read_bytes()
            ops = [op.name for op, _, _ in pickletools.genops(data)]   # parses, runs nothing
            assert "REDUCE" in ops and b"print" in data and b"PWNED" in data


def test_file_level_errors(tmp_path):
    with pytest.raises(GraphError) as err:
        load(tmp_path / "missing.json")
    assert str(err.value) == f"{tmp_path / 'missing.json'}: cannot read the graph file " \
        "(No such file or directory)"
    folder = tmp_path / "folder.graphml"
    folder.mkdir()
    with pytest.raises(GraphError, match=r"folder\.graphml: cannot read the graph file"):
        load(folder)
    with pytest.raises(GraphError) as err:
        load(tmp_path / "net.jsn")
    assert str(err.value) == (f"{tmp_path / 'net.jsn'}: unknown graph file extension '.jsn' "
                              '(did you mean ".json"?); use .graphml or .json')
    with pytest.raises(GraphError, match=r"extension '\.pkl'; use \.graphml or \.json$"):
        load(tmp_path / "net.pkl")
    with pytest.raises(GraphError, match="extension '.yaml'"):
        save_graph(small(), tmp_path / "net.yaml")


def test_examples_load_and_agree():
    a = load(EXAMPLES / "cartpole-small.json")
    b = load(EXAMPLES / "cartpole-small.graphml")
    assert list(a.nodes(data=True)) == list(b.nodes(data=True))
    assert list(a.edges(data=True)) == list(b.edges(data=True))
    assert a.number_of_nodes() == 4 + 8 + 1 and a.number_of_edges() == 4 * 8 + 8
    assert [n for n, r in a.nodes(data="role") if r == "output"] == ["out0"]
    assert a.nodes["out0"]["kind"] == "softmax"
    for _, _, attrs in a.edges(data=True):
        assert set(attrs) == {"delay", "retro_delay"}
        assert 1.0 <= attrs["delay"] <= 5.0 and 0.5 <= attrs["retro_delay"] <= 2.0
    check(a)


@pytest.mark.parametrize("ext", ["json", "graphml"])
def test_save_load_round_trip_is_exact(tmp_path, ext):
    g = layered(3, [5], 2, output_kind="bernoulli")
    assign_delays(g, {"dist": "exponential", "mean": 1.7}, {"dist": "lognormal", "mu": 0.0,
                                                            "sigma": 1.0}, seed=9)
    g.add_edge("h1_0", "h1_1", delay=np.float64(0.1) + 0.2, retro_delay=0)   # 0.30000000000000004
    g.nodes["h1_0"]["label"] = 'a <"&\'> label'
    g.nodes["h1_1"]["frozen"] = True
    g.graph["note"] = "made by a test"
    path = tmp_path / f"net.{ext}"
    save_graph(g, path)
    h = load(path)
    assert list(h.nodes(data=True)) == list(g.nodes(data=True))
    assert list(h.edges(data=True)) == list(g.edges(data=True))
    assert h.edges["h1_0", "h1_1"]["delay"] == 0.1 + 0.2
    assert type(h.edges["h1_0", "h1_1"]["retro_delay"]) is float
    assert h.graph == g.graph
    save_graph(h, path)   # overwrite in place
    assert list(load(path).edges(data=True)) == list(g.edges(data=True))


def test_reads_networkx_writers(tmp_path):
    g = layered(2, [3], 1)
    assign_delays(g, 1.5, 0.25, seed=0)
    nx.write_graphml(g, tmp_path / "nx.graphml")
    (tmp_path / "nx.json").write_text(json.dumps(nx.node_link_data(g, edges="links")))
    for name in ("nx.graphml", "nx.json"):
        h = load(tmp_path / name)
        assert list(h.nodes(data=True)) == list(g.nodes(data=True)), name
        assert list(h.edges(data=True)) == list(g.edges(data=True)), name


def json_doc(nodes, links, **top):
    return json.dumps({"directed": True, "multigraph": False, "graph": {}, **top,
                       "nodes": nodes, "links": links}).encode()


NODES = [{"id": 0, "role": "input", "kind": "input", "layer": "0", "index": 0},
         {"id": 1, "role": "output", "kind": "bernoulli", "layer": 1}]


def test_coercion():
    g = graph_from_bytes(json_doc(NODES, [{"source": 0, "target": 1, "delay": "2.5"}]), "json",
                         unit_kinds=UNIT_KINDS)
    assert list(g.nodes) == ["0", "1"]                       # ids become strings
    assert g.nodes["0"]["layer"] == 0 and g.nodes["1"]["layer"] == 1
    assert g.edges["0", "1"] == {"delay": 2.5}               # no retro_delay: filled later
    g = graph_from_bytes(json_doc(NODES, [{"source": "0", "target": "1", "delay": 3}]), "json",
                         unit_kinds=UNIT_KINDS)
    assert type(g.edges["0", "1"]["delay"]) is float
    # "edges" (NetworkX's newer key) is read too; a UTF-8 byte-order mark is fine.
    doc = b"\xef\xbb\xbf" + json.dumps({"nodes": NODES, "edges": [{"source": 0, "target": 1}]}
                                      ).encode()
    assert graph_from_bytes(doc, "json", unit_kinds=UNIT_KINDS).number_of_edges() == 1


@pytest.mark.parametrize("node,message", [
    ({"id": 1, "role": "output", "kind": "bernoulli", "layer": 1.0},
     "node '1': layer 1.0 is not an integer"),
    ({"id": 1, "role": "output", "kind": "bernoulli", "layer": 1, "index": "two"},
     "node '1': index 'two' is not an integer"),
    ({"id": 1, "role": "output", "kind": ["bernoulli"], "layer": 1},
     "node '1': kind ['bernoulli'] is not a string"),
    ({"id": True, "role": "output", "kind": "bernoulli", "layer": 1},
     "nodes[1]: id True must be a string or an integer"),
    ({"id": 0, "role": "output", "kind": "bernoulli", "layer": 1},
     "node '0' is declared twice"),
])
def test_node_coercion_errors(node, message):
    with pytest.raises(GraphError) as err:
        graph_from_bytes(json_doc([NODES[0], node], []), "json", name="g.json",
                         unit_kinds=UNIT_KINDS)
    assert str(err.value) == f"g.json: {message}"


@pytest.mark.parametrize("delay,message", [
    ("x", "edge '0' -> '1': delay 'x' is not a number"),
    (None, "edge '0' -> '1': delay None is not a number"),
    (True, "edge '0' -> '1': delay True is not a number"),
    ([1], "edge '0' -> '1': delay [1] is not a number"),
    (10 ** 400, f"edge '0' -> '1': delay {10 ** 400!r} is out of range"),
    ("-1", "edge '0' -> '1' (delay): delay -1 ms is negative"),
    ("inf", "edge '0' -> '1' (delay): delay inf is not finite"),
])
def test_delay_coercion_errors(delay, message):
    doc = json_doc(NODES, [{"source": 0, "target": 1, "delay": delay}])
    with pytest.raises(GraphError) as err:
        graph_from_bytes(doc, "json", name="g.json", unit_kinds=UNIT_KINDS)
    assert str(err.value) == f"g.json: {message}"


GRAPHML = """<?xml version="1.0"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key id="r" for="node" attr.name="role" attr.type="string"/>
  <key id="k" for="node" attr.name="kind" attr.type="string"><default>bernoulli</default></key>
  <key id="l" for="node" attr.name="layer" attr.type="{ltype}"/>
  <key id="w" for="node" attr.name="weight" attr.type="double"/>
  <key id="d" for="edge" attr.name="delay" attr.type="double"><default>0.5</default></key>
  <graph edgedefault="directed">
    <node id="a"><data key="r">input</data><data key="k">input</data><data key="l">0</data></node>
    <node id="b"><data key="r">output</data><data key="l">{layer}</data><data key="w">{w}</data></node>
    <edge source="a" target="b"/>
  </graph>
</graphml>
"""


def graphml(**kw):
    fields = {"ltype": "long", "layer": "1", "w": "0.5", **kw}
    return GRAPHML.format(**fields).encode()


@pytest.mark.parametrize("ltype", ["long", "int", "string", "double"])
def test_graphml_layer_types(ltype):
    g = graph_from_bytes(graphml(ltype=ltype), "graphml", unit_kinds=UNIT_KINDS)
    assert g.nodes["b"] == {"role": "output", "kind": "bernoulli", "layer": 1, "weight": 0.5}
    assert g.edges["a", "b"] == {"delay": 0.5}               # key defaults apply


@pytest.mark.parametrize("kw,message", [
    ({"layer": "1.0"}, "node 'b': layer '1.0' is not an integer"),
    ({"layer": "one"}, "node 'b': layer 'one' is not an integer"),
    ({"w": "heavy"}, "node 'b': weight 'heavy' is not a valid double"),
])
def test_graphml_value_errors(kw, message):
    with pytest.raises(GraphError) as err:
        graph_from_bytes(graphml(**kw), "graphml", name="g.graphml", unit_kinds=UNIT_KINDS)
    assert str(err.value) == f"g.graphml: {message}"


def test_validate_runs_on_load():
    doc = json_doc(NODES + [{"id": 2, "role": "hidden", "kind": "gaussian", "layer": 1}],
                   [{"source": 0, "target": 1}, {"source": 2, "target": 2, "delay": 0}])
    with pytest.raises(GraphError) as err:
        graph_from_bytes(doc, "json", name="g.json", unit_kinds=UNIT_KINDS)
    assert str(err.value) == "g.json: edge '2' -> '2': a self-loop with zero delay"


# ---------------------------------------------------------------------------------------------
# Fuzzing: a graph or a GraphError, never anything else

IDS = st.one_of(st.sampled_from(["in0", "h0", "h1", "out0", "x"]), st.integers(-2, 3))
ODD = st.one_of(st.none(), st.booleans(), st.lists(st.integers(0, 2), max_size=2),
                st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 1), max_size=1),
                st.text(max_size=4))
NUMBERS = st.one_of(st.integers(-3, 5), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["1", "1.0", " 2 ", "-1", "x", "nan", "1e999", 10 ** 400]))
NODE = st.fixed_dictionaries(
    {"id": st.one_of(IDS, ODD)},
    optional={
        "role": st.one_of(st.sampled_from(["input", "hidden", "output", "hiden"]), ODD),
        "kind": st.one_of(st.sampled_from(sorted(UNIT_KINDS) + ["bernouli"]), ODD),
        "layer": st.one_of(NUMBERS, ODD),
        "index": st.one_of(NUMBERS, ODD),
        "extra": ODD,
    })
LINK = st.fixed_dictionaries(
    {"source": st.one_of(IDS, IDS, ODD), "target": st.one_of(IDS, IDS, ODD)},
    optional={"delay": st.one_of(NUMBERS, ODD), "retro_delay": st.one_of(NUMBERS, ODD),
              "key": st.integers(0, 1)})
NODE_KEYS = st.sampled_from(["role", "kind", "layer", "index", "extra"])
EDGE_KEYS = st.sampled_from(["delay", "retro_delay", "key", "extra"])
VALUES = st.one_of(NUMBERS, ODD, st.sampled_from(["input", "hidden", "output"] + sorted(UNIT_KINDS)))
DELAYS = st.one_of(st.floats(0, 5), st.just(0.0), NUMBERS, ODD)

# Mostly well-formed documents (so that validation is reached), then shallow random ones.
DOC = st.fixed_dictionaries(
    {"nodes": st.one_of(st.lists(st.one_of(NODE, NODE, NODE, ODD), max_size=6), ODD),
     "links": st.one_of(st.lists(st.one_of(LINK, LINK, LINK, ODD), max_size=8), ODD)},
    optional={"directed": st.one_of(st.just(True), st.just(True), ODD),
              "multigraph": st.one_of(st.just(False), st.just(False), ODD),
              "graph": st.one_of(st.just({}), ODD)})
SHALLOW = st.one_of(ODD, st.dictionaries(st.sampled_from(["nodes", "links", "edges", "graph",
                                                         "directed"]), ODD, max_size=3))
MUTATION = st.one_of(
    st.tuples(st.just("set_node"), st.integers(0, 9), NODE_KEYS, VALUES),
    st.tuples(st.just("del_node_attr"), st.integers(0, 9), NODE_KEYS),
    st.tuples(st.just("set_edge"), st.integers(0, 9), EDGE_KEYS, DELAYS),
    st.tuples(st.just("add_edge"), IDS, IDS, DELAYS),
    st.tuples(st.just("del_edge"), st.integers(0, 9)),
    st.tuples(st.just("dup_node"), st.integers(0, 9)),
    st.tuples(st.just("del_node"), st.integers(0, 9)),
)


def valid_doc():
    g = layered(2, [2], 1, output_kind="bernoulli")
    g = nx.relabel_nodes(g, {"h1_0": "h0", "h1_1": "h1"})
    assign_delays(g, {"dist": "uniform", "low": 0.0, "high": 2.0}, 1.0, seed=0)
    return nx.node_link_data(g, edges="links")


def mutate(doc, mutations):
    nodes, links = doc["nodes"], doc["links"]
    for op, *args in mutations:
        if op == "set_node" and nodes:
            nodes[args[0] % len(nodes)][args[1]] = args[2]
        elif op == "del_node_attr" and nodes:
            nodes[args[0] % len(nodes)].pop(args[1], None)
        elif op == "set_edge" and links:
            links[args[0] % len(links)][args[1]] = args[2]
        elif op == "add_edge":
            links.append({"source": args[0], "target": args[1], "delay": args[2]})
        elif op == "del_edge" and links:
            links.pop(args[0] % len(links))
        elif op == "dup_node" and nodes:
            nodes.append(dict(nodes[args[0] % len(nodes)]))
        elif op == "del_node" and nodes:
            nodes.pop(args[0] % len(nodes))
    return doc


MUTATED = st.lists(MUTATION, max_size=4).map(lambda ms: mutate(valid_doc(), ms))


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.one_of(MUTATED, DOC, SHALLOW))
def test_fuzz_node_link_json(fuzz_dir, doc):
    path = fuzz_dir / "g.json"
    path.write_text(json.dumps(doc))
    try:
        g = load(path)
    except GraphError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
        return
    assert isinstance(g, nx.DiGraph) and not g.is_multigraph()
    assert all(isinstance(n, str) for n in g.nodes)
    assert all(type(a["layer"]) is int for _, a in g.nodes(data=True))
    for _, _, a in g.edges(data=True):
        assert all(type(a[k]) is float and math.isfinite(a[k]) and a[k] >= 0
                   for k in ("delay", "retro_delay") if k in a)


EXAMPLE_GRAPHML = (EXAMPLES / "cartpole-small.graphml").read_bytes()[:3000]


@settings(max_examples=300, deadline=None)
@given(cut=st.integers(0, 3000),
       edits=st.lists(st.tuples(st.integers(0, 2999), st.binary(min_size=0, max_size=3)),
                      max_size=4))
def test_fuzz_graphml_bytes(cut, edits):
    data = bytearray(EXAMPLE_GRAPHML)
    for pos, chunk in edits:
        data[pos:pos + 1] = chunk
    data = bytes(data[:cut]) + b"\n  </graph>\n</graphml>\n"
    try:
        g = graph_from_bytes(data, "graphml", name="f.graphml", unit_kinds=UNIT_KINDS)
    except GraphError as e:
        assert str(e).startswith("f.graphml: ") and "\n" not in str(e)
        return
    assert isinstance(g, nx.DiGraph)


def test_fuzz_messages_have_one_line():
    """Messages quote ids with repr, so even an id with a newline stays on one line."""
    doc = json_doc([{"id": "a\nb", "role": "input"}, {"id": "c", "role": "output",
                                                       "kind": "softmax", "layer": 1}], [])
    with pytest.raises(GraphError) as err:
        graph_from_bytes(doc, "json", name="g.json", unit_kinds=UNIT_KINDS)
    assert "\n" not in str(err.value)
    assert re.search(r"'a\\nb'", str(err.value))
