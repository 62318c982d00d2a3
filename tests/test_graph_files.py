"""Graphs as users write them: GraphML from yEd, Gephi and NetworkX's own writer is read; a
graph that does not fit its task, or has a typo, a gap or a cycle, is refused by ``validate`` in
one line, before any run."""

import subprocess
import sys

import networkx as nx
import pytest

from asyncneurons.errors import GraphError
from asyncneurons.model.graphio import load_graph

# CartPole: 4 observation components, 2 actions (one softmax output unit).
UNITS = [("in0", "input", "input", 0, 0), ("in1", "input", "input", 0, 1),
         ("in2", "input", "input", 0, 2), ("in3", "input", "input", 0, 3),
         ("h0", "hidden", "bernoulli", 1, 0), ("h1", "hidden", "bernoulli", 1, 1),
         ("out0", "output", "softmax", 2, 0)]
SYNAPSES = [(f"in{i}", f"h{j}") for i in range(4) for j in range(2)] + [("h0", "out0"), ("h1", "out0")]


def yed(units=UNITS, synapses=SYNAPSES):
    """GraphML as yEd writes it: y: namespaced graphics keys (port, graphml resources), custom
    properties under named keys d4 …, structured data blocks, ids n0 … and e0 …"""
    ids = {u[0]: f"n{i}" for i, u in enumerate(units)}
    nodes = "\n".join(f"""    <node id="{ids[n]}">
      <data key="d4">{role}</data><data key="d5">{kind}</data>
      <data key="d11">{layer}</data><data key="d12">{index}</data>
      <data key="d6">
        <y:ShapeNode>
          <y:Geometry height="30.0" width="30.0" x="{40 * i}.0" y="{80 * layer}.0"/>
          <y:Fill color="#FFCC00" transparent="false"/>
          <y:NodeLabel alignment="center" autoSizePolicy="content">{n}</y:NodeLabel>
          <y:Shape type="ellipse"/>
        </y:ShapeNode>
      </data>
    </node>""" for i, (n, role, kind, layer, index) in enumerate(units))
    edges = "\n".join(f"""    <edge id="e{k}" source="{ids[u]}" target="{ids[v]}">
      <data key="d9">1.5</data>
      <data key="d10">
        <y:PolyLineEdge><y:LineStyle color="#000000" type="line" width="1.0"/>
          <y:Arrows source="none" target="standard"/></y:PolyLineEdge>
      </data>
    </edge>""" for k, (u, v) in enumerate(synapses))
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns" xmlns:java="http://www.yworks.com/xml/yfiles-common/1.0/java" xmlns:sys="http://www.yworks.com/xml/yfiles-common/markup/primitives/2.0" xmlns:x="http://www.yworks.com/xml/yfiles-common/markup/2.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:y="http://www.yworks.com/xml/graphml" xmlns:yed="http://www.yworks.com/xml/yed/3" xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns http://www.yworks.com/xml/schema/graphml/1.1/ygraphml.xsd">
  <!--Created by yEd 3.23.2-->
  <key attr.name="Description" attr.type="string" for="graph" id="d0"/>
  <key for="port" id="d1" yfiles.type="portgraphics"/>
  <key for="port" id="d2" yfiles.type="portgeometry"/>
  <key for="port" id="d3" yfiles.type="portuserdata"/>
  <key attr.name="role" attr.type="string" for="node" id="d4"/>
  <key attr.name="kind" attr.type="string" for="node" id="d5"/>
  <key for="node" id="d6" yfiles.type="nodegraphics"/>
  <key for="graphml" id="d7" yfiles.type="resources"/>
  <key attr.name="url" attr.type="string" for="edge" id="d8"/>
  <key attr.name="delay" attr.type="double" for="edge" id="d9"/>
  <key for="edge" id="d10" yfiles.type="edgegraphics"/>
  <key attr.name="layer" attr.type="int" for="node" id="d11"/>
  <key attr.name="index" attr.type="int" for="node" id="d12"/>
  <graph edgedefault="directed" id="G">
    <data key="d0"/>
{nodes}
{edges}
  </graph>
  <data key="d7">
    <y:Resources/>
  </data>
</graphml>
"""


def gephi(units=UNITS, synapses=SYNAPSES, delay_key="delay"):
    """GraphML as Gephi exports it: keys named by their attribute, viz attributes (label, r, g, b,
    x, y, size), a weight on every edge, numeric node and edge ids."""
    ids = {u[0]: str(i) for i, u in enumerate(units)}
    nodes = "\n".join(f"""<node id="{ids[n]}">
<data key="label">{n}</data>
<data key="role">{role}</data>
<data key="kind">{kind}</data>
<data key="layer">{layer}</data>
<data key="index">{index}</data>
<data key="size">10.0</data>
<data key="r">153</data>
<data key="g">153</data>
<data key="b">153</data>
<data key="x">{-50.5 + i}</data>
<data key="y">{12.25 * layer}</data>
</node>""" for i, (n, role, kind, layer, index) in enumerate(units))
    edges = "\n".join(f"""<edge id="{k}" source="{ids[u]}" target="{ids[v]}">
<data key="weight">1.0</data>
<data key="{delay_key}">2.0</data>
</edge>""" for k, (u, v) in enumerate(synapses))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">
<key attr.name="label" attr.type="string" for="node" id="label"/>
<key attr.name="Edge Label" attr.type="string" for="edge" id="edgelabel"/>
<key attr.name="weight" attr.type="double" for="edge" id="weight"/>
<key attr.name="{delay_key}" attr.type="double" for="edge" id="{delay_key}"/>
<key attr.name="role" attr.type="string" for="node" id="role"/>
<key attr.name="kind" attr.type="string" for="node" id="kind"/>
<key attr.name="layer" attr.type="integer" for="node" id="layer"/>
<key attr.name="index" attr.type="integer" for="node" id="index"/>
<key attr.name="r" attr.type="int" for="node" id="r"/>
<key attr.name="g" attr.type="int" for="node" id="g"/>
<key attr.name="b" attr.type="int" for="node" id="b"/>
<key attr.name="x" attr.type="float" for="node" id="x"/>
<key attr.name="y" attr.type="float" for="node" id="y"/>
<key attr.name="size" attr.type="float" for="node" id="size"/>
<graph edgedefault="directed">
{nodes}
{edges}
</graph>
</graphml>
"""


def networkx_graph(units=UNITS, synapses=SYNAPSES):
    g = nx.DiGraph()
    for n, role, kind, layer, index in units:
        g.add_node(n, role=role, kind=kind, layer=layer, index=index, label=f"unit {n} – Zürich")
    for u, v in synapses:
        g.add_edge(u, v, delay=0.75, retro_delay=0.25)
    return g


def scenario_for(tmp_path, graph_file, **extra):
    text = f"""
[experiment]
name = "graph-file"
episodes = 2

[network]
graph = "{graph_file}"

[learning]
lambda = 0.8
lr = {extra.get("lr", 0.01)}
"""
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def validate(path):
    return subprocess.run([sys.executable, "-m", "asyncneurons.cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=120)


def run(path, out):
    return subprocess.run([sys.executable, "-m", "asyncneurons.cli", "run", str(path), "--out", str(out),
                           "--quiet", "--workers", "1"], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("tool", ["yed", "gephi"])
def test_graphml_from_yed_and_gephi_is_read_and_runs(tmp_path, tool):
    f = tmp_path / f"{tool}.graphml"
    f.write_text(yed() if tool == "yed" else gephi())
    g = load_graph(f)
    assert g.number_of_nodes() == 7 and g.number_of_edges() == 10
    out0 = next(n for n, a in g.nodes(data=True) if a["role"] == "output")
    assert g.nodes[out0]["layer"] == 2 and g.nodes[out0]["kind"] == "softmax"
    assert {d for _, _, d in g.edges(data="delay")} == {1.5 if tool == "yed" else 2.0}
    s = scenario_for(tmp_path, f)
    assert validate(s).returncode == 0, validate(s).stderr
    r = run(s, tmp_path / "out")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("options", [{}, {"named_key_ids": True}, {"encoding": "iso-8859-1"},
                                     {"encoding": "utf-16"}])
def test_graphml_from_the_networkx_writer_is_read(tmp_path, options):
    f = tmp_path / "nx.graphml"
    nx.write_graphml(networkx_graph(), f, **options)
    g = load_graph(f)
    assert g.nodes["in2"]["index"] == 2 and g.edges["h1", "out0"]["delay"] == 0.75
    assert g.nodes["h0"]["label"] == "unit h0 – Zürich" or options.get("encoding") == "iso-8859-1"
    assert validate(scenario_for(tmp_path, f)).returncode == 0


def _refused(tmp_path, g=None, text=None, **scenario):
    f = tmp_path / "bad.graphml"
    if text is not None:
        f.write_text(text)
    else:
        nx.write_graphml(g, f)
    r = validate(scenario_for(tmp_path, f, **scenario))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


def test_outputs_that_do_not_encode_the_tasks_actions_are_refused_by_validate(tmp_path):
    g = networkx_graph()
    g.add_node("out1", role="output", kind="softmax", layer=2, index=1)
    g.add_edge("h0", "out1", delay=1.0, retro_delay=0.0)
    err = _refused(tmp_path, g)
    assert "2 output unit(s)" in err and "CartPole-v1" in err and "softmax" in err
    g = networkx_graph()
    g.nodes["out0"]["kind"] = "linear_gaussian"
    assert "discrete actions" in _refused(tmp_path, g)


@pytest.mark.parametrize("change, words", [
    (lambda g: g.nodes["in3"].update(index=7), "'in3': input index 7 is out of range 0 … 3"),
    (lambda g: g.nodes["in3"].update(index=2), "both are input index 2"),
    (lambda g: g.nodes["out0"].update(layer=3), "layer 2 has no unit"),
    (lambda g: g.add_edge("out0", "h0", delay=2.0, retro_delay=0.0), "recurrent cycle"),
    (lambda g: g.add_edge("h1", "h0", delay=2.0, retro_delay=0.0) or g.add_edge("h0", "h1", delay=1.0),
     "recurrent cycle"),
])
def test_indices_layer_gaps_and_cycles_are_refused_by_validate(tmp_path, change, words):
    g = networkx_graph()
    change(g)
    assert words in _refused(tmp_path, g)


def test_per_layer_lists_must_have_one_value_per_layer(tmp_path):
    err = _refused(tmp_path, networkx_graph(), lr="[0.1, 0.01, 0.001]")
    assert "learning.lr: 3 values given but the graph has 2 layers" in err


def test_a_typo_in_an_attribute_has_a_did_you_mean_and_a_missing_one_is_named(tmp_path):
    err = _refused(tmp_path, text=gephi(delay_key="dealy"))
    assert "unknown attribute 'dealy'" in err and 'did you mean "delay"' in err
    g = networkx_graph()
    del g.nodes["h1"]["layer"]
    assert "'h1'" in _refused(tmp_path, g) and "missing" in _refused(tmp_path, g)


def test_load_graph_names_the_file_and_the_key(tmp_path):
    f = tmp_path / "enc.graphml"
    f.write_bytes(b'<?xml version="1.0" encoding="klingon-8"?><graphml/>')
    with pytest.raises(GraphError, match="enc.graphml: .*unknown encoding 'klingon-8'"):
        load_graph(f)


def test_a_graph_file_edited_between_a_kill_and_resume_is_refused(tmp_path):
    from asyncneurons.engine.checkpoint import CheckpointError
    from asyncneurons.study.runner import resume_experiment, run_experiment
    from asyncneurons.model.scenario import load_scenario

    f = tmp_path / "nx.graphml"
    nx.write_graphml(networkx_graph(), f)
    s_path = scenario_for(tmp_path, f)
    s_path.write_text(s_path.read_text().replace("episodes = 2", "episodes = 6"))
    rows = []

    def stop(row):
        rows.append(row)
        if len(rows) == 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_experiment(load_scenario(s_path), tmp_path / "out", progress=stop, checkpoint_seconds=0.0)
    copy = tmp_path / "out" / "graph.graphml"  # the run folder's own copy, which a resume reads
    assert copy.read_bytes() == f.read_bytes()
    copy.write_text(copy.read_text().replace(">0.75<", ">0.5<", 1))
    before = (tmp_path / "out" / "metrics.csv").read_bytes()
    with pytest.raises(CheckpointError, match=r"run-0.json: the graph file .*graph.graphml changed since this checkpoint"):
        resume_experiment(tmp_path / "out")
    assert (tmp_path / "out" / "metrics.csv").read_bytes() == before
    copy.write_text(copy.read_text().replace(">0.5<", ">0.75<", 1))  # put back: the run continues
    _, summary = resume_experiment(tmp_path / "out")
    assert summary["status"] == "complete" and summary["runs"][0]["episodes"] == 6
