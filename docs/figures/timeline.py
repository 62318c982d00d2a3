"""Draw docs/figures/timeline.png: the events of the tiny graph of tests/test_time.py.

The graph: four inputs in0…in3 → one Bernoulli hidden unit h1_0 → one softmax logit out0 (two
actions), with a skip synapse in0 → out0. Forward delays (ms): in0, in1, in2, in3 → h1_0
1.5, 0.5, 2.0, 1.0; h1_0 → out0 0.25; in0 → out0 3.0. Firing ``on_input``, reward delay
0.75 ms, ``wait`` pacing, λ = 0.8, γ = 0.98, stopped at the third environment step
(``max_ticks = 3``).

Run from the repository root::

    python docs/figures/timeline.py

The script checks the event times against the hand computation of docs/model-of-time.md
before drawing, so the picture cannot drift from the engine silently.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import networkx as nx
from matplotlib.lines import Line2D

from asyncneurons.model.graphio import save_graph
from asyncneurons.model.scenario import parse_scenario
from asyncneurons.engine.simulation import Simulation

HERE = Path(__file__).resolve().parent
INPUT_DELAYS = [1.5, 0.5, 2.0, 1.0]  # in_i → h1_0
HIDDEN_DELAY = 0.25  # h1_0 → out0
SKIP_DELAY = 3.0  # in0 → out0
REWARD_DELAY = 0.75
TICKS = 3


def tiny_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for i in range(4):
        g.add_node(f"in{i}", role="input", kind="input", layer=0, index=i)
    g.add_node("h1_0", role="hidden", kind="bernoulli", layer=1, index=0)
    g.add_node("out0", role="output", kind="softmax", layer=2, index=0)
    for i, d in enumerate(INPUT_DELAYS):
        g.add_edge(f"in{i}", "h1_0", delay=d, retro_delay=0.0)
    g.add_edge("h1_0", "out0", delay=HIDDEN_DELAY, retro_delay=0.0)
    g.add_edge("in0", "out0", delay=SKIP_DELAY, retro_delay=0.0)
    return g


def record_events() -> list:
    """Run the tiny scenario; return its events as (time_ms, unit, kind, value, wave)."""
    log = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiny.json"
        save_graph(tiny_graph(), path)
        scenario = parse_scenario({
            "experiment": {"name": "timeline", "episodes": 1000, "seed": 7},
            "env": {"id": "CartPole-v1", "gamma": 0.98, "pacing": "wait"},
            "network": {"graph": str(path)},
            "learning": {"lambda": 0.8, "lr": 0.01},
            "timing": {"firing": "on_input", "reward_delay": REWARD_DELAY},
        })
        Simulation(scenario, max_ticks=TICKS,
                   on_event=lambda t, u, k, v, w: log.append((t, u, k, v, w))).run()
    return log


def check(log) -> None:
    """The hand computation (tests/test_time.py) that the picture illustrates."""
    def times(unit, kind):
        return [t for t, u, k, _, _ in log if u == unit and k == kind]
    h = [0.5, 1.0, 1.5, 2.0]
    out = [0.75, 1.25, 1.75, 2.25, 3.0]
    assert times("environment", "env_step") == [3.0, 6.0]
    assert times("h1_0", "sample") == [x + 3 * k for k in range(3) for x in h]
    assert times("out0", "sample") == [x + 3 * k for k in range(3) for x in out]
    assert times("h1_0", "reward") == times("out0", "reward") == [3.75, 6.75]


def draw(log, path: Path) -> None:
    rows = ["in0", "in1", "in2", "in3", "h1_0", "out0", "environment"]
    y = {name: len(rows) - 1 - i for i, name in enumerate(rows)}
    wave_colour = {-1: "0.6", 0: "tab:blue", 1: "tab:orange", 2: "tab:green"}
    stop = max(t for t, *_ in log)  # the instant of the third step, where the run stops

    fig, ax = plt.subplots(figsize=(10, 4.8))
    for row in rows:
        ax.axhline(y[row], color="0.92", lw=0.8, zorder=0)

    # deliveries: a thin line from the sender (at the send time) to the receiver (at arrival)
    obs_times = sorted({t for t, u, k, _, _ in log if k == "observation"})
    h_times = [t for t, u, k, _, _ in log if u == "h1_0" and k == "sample"]
    line = {"color": "0.75", "lw": 0.7, "zorder": 1}
    for t0 in obs_times:
        for i, d in enumerate(INPUT_DELAYS):
            ax.plot([t0, t0 + d], [y[f"in{i}"], y["h1_0"]], **line)
        ax.plot([t0, t0 + SKIP_DELAY], [y["in0"], y["out0"]], **line)
    for t0 in h_times:
        ax.plot([t0, t0 + HIDDEN_DELAY], [y["h1_0"], y["out0"]], **line)

    # environment steps (and the third one, where the run stops)
    steps = [t for t, u, k, _, _ in log if k == "env_step"]
    for t in steps + [stop]:
        ax.axvline(t, color="0.3", lw=0.8, ls=":", zorder=1)
    ax.scatter(steps, [y["environment"]] * len(steps), marker="D", s=70, color="black", zorder=3)
    ax.scatter([stop], [y["environment"]], marker="D", s=70, facecolor="white",
               edgecolor="black", zorder=3)
    ax.annotate("3rd step:\nthe run stops", (stop, y["environment"]), xytext=(9, 0),
                textcoords="offset points", va="center", fontsize=9)

    for t, u, k, _, w in log:
        if k == "observation":
            ax.scatter(t, y[u], marker="s", s=55, color=wave_colour[w], edgecolor="black",
                       lw=0.6, zorder=3)
        elif k == "sample":
            ax.scatter(t, y[u], marker="o", s=55, color=wave_colour[min(w, 2)], edgecolor="black",
                       lw=0.6, zorder=3)
        elif k == "reward":  # drawn just above the row: a sample may share the instant
            ax.scatter(t, y[u] + 0.3, marker="*", s=170, color="crimson", edgecolor="black",
                       lw=0.5, zorder=4)

    # the action of each wave: out0's first sample whose every input descends from that wave
    for t in steps + [stop]:
        ax.annotate("", xy=(t, y["environment"] + 0.15), xytext=(t, y["out0"] - 0.15),
                    arrowprops={"arrowstyle": "->", "color": "black", "lw": 1.0}, zorder=2)

    ax.set_yticks([y[r] for r in rows], rows)
    ax.set_xticks([0.5 * i for i in range(int(2 * stop) + 2)], minor=True)
    ax.set_xticks(range(int(stop) + 2))
    ax.set_xlim(-0.3, stop + 1.4)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("simulated time (ms)")
    ax.set_title("on_input firing, wait pacing, reward delay 0.75 ms", fontsize=11)
    ax.grid(axis="x", which="both", color="0.95", lw=0.6, zorder=0)

    kinds = [
        Line2D([], [], ls="", marker="s", color="0.5", mec="black", ms=7, label="observation emitted"),
        Line2D([], [], ls="", marker="o", color="0.5", mec="black", ms=7, label="sample"),
        Line2D([], [], color="0.75", lw=1, label="delivery on a synapse"),
        Line2D([], [], ls="", marker="*", color="crimson", mec="black", ms=12, label="TD error lands"),
        Line2D([], [], ls="", marker=r"$\downarrow$", color="black", ms=10,
               label="action that steps\nthe environment"),
        Line2D([], [], ls="", marker="D", color="black", ms=7, label="environment step"),
    ]
    waves = [Line2D([], [], ls="", marker="o", color=c, mec="black", ms=7,
                    label="no complete wave yet" if w < 0 else f"wave {w}")
             for w, c in wave_colour.items()]
    first = ax.legend(handles=kinds, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9,
                      frameon=False, title="events", title_fontsize=9, alignment="left")
    ax.add_artist(first)
    ax.legend(handles=waves, loc="lower left", bbox_to_anchor=(1.01, 0.0), fontsize=9,
              frameon=False, title="colour: wave tag", title_fontsize=9, alignment="left")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main() -> None:
    log = record_events()
    check(log)
    draw(log, HERE / "timeline.png")
    print(f"wrote {HERE / 'timeline.png'}")


if __name__ == "__main__":
    main()
