"""Write the graph files of the depth sub-study of docs/studies/autonomous-units.md.

    python scripts/depth_graphs.py

Four CartPole networks in node-link JSON under ``scenarios/studies/graphs/``: two hidden layers
(64, 32) or four (64, 32, 32, 32) of Bernoulli units and one softmax output unit, each plain
(layer to layer) or with skip edges, from every input unit to every unit of the deeper layers
(hidden layers 2 onward and the output). The files set no delays: the scenario gives every
synapse, skip edges included, the same delay.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asyncneurons.model.graph import layered  # noqa: E402
from asyncneurons.model.graphio import save_graph  # noqa: E402

DEPTHS = {2: [64, 32], 4: [64, 32, 32, 32]}


def depth_graph(hidden, skips: bool):
    """A layered 4-hidden-1 network; with ``skips``, every input also feeds every unit of layer ≥ 2."""
    g = layered(4, hidden, 1, hidden_kind="bernoulli", output_kind="softmax")
    if skips:
        inputs = [n for n, a in g.nodes(data=True) if a["layer"] == 0]
        deep = [n for n, a in g.nodes(data=True) if a["layer"] >= 2]
        g.add_edges_from((i, n) for i in inputs for n in deep)
    return g


def main():
    out = ROOT / "scenarios" / "studies" / "graphs"
    out.mkdir(parents=True, exist_ok=True)
    for depth, hidden in DEPTHS.items():
        for skips in (False, True):
            path = out / f"depth-{depth}{'-skip' if skips else ''}.json"
            save_graph(depth_graph(hidden, skips), path)
            print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
