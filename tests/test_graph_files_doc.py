"""docs/graph-files.md: its example loads, and it names every built-in unit kind with its roles."""

import json
import re
from pathlib import Path

from asyncneurons.model.graphio import graph_from_bytes
from asyncneurons.learning.units import UNIT_KINDS

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "graph-files.md").read_text()


def test_the_example_graph_loads_and_is_valid():
    text = re.findall(r"```json\n(.*?)```", PAGE, re.S)[0]
    g = graph_from_bytes(text.encode(), "json", name="example.json")
    assert sorted(g.nodes) == ["a", "b", "in0", "in1", "out"]
    assert g.nodes["in0"].get("kind", "input") == "input" and g.nodes["out"]["kind"] == "softmax"
    assert g.edges["in1", "a"]["delay"] == 2.5 and "delay" not in g.edges["in1", "b"]
    assert json.loads(text)["links"][3]["retro_delay"] == 0.5


def test_every_unit_kind_is_documented_with_its_roles():
    rows = {m[0]: m[1] for m in re.findall(r"^\| `(\w+)` \| ([a-z, ]+) \|", PAGE, re.M)}
    for name, kind in UNIT_KINDS.items():
        assert name in rows, f"unit kind {name} missing from docs/graph-files.md"
        assert rows[name].split(", ") == list(kind.roles)
