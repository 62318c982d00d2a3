"""The event raster: a window of one recorded run (``events.csv``), time in ms on x.

One row per unit, grouped by layer (inputs at the bottom, the output above them, the
environment on top). Marks: a sample (black when its value is non-zero, a spike of a
Bernoulli unit; grey when zero), an observation reaching an input unit, the TD error landing
on a unit (blue), a retrograde signal landing on a unit (red), and an environment step (a
dashed vertical line across all rows). Only the first run of the file is drawn.
"""

from __future__ import annotations

import re
from pathlib import Path

from asyncneurons.errors import UserInputError

DEFAULT_STEPS = 8  # environment steps shown when no window is given


def parse_window(text) -> tuple[float, float] | None:
    """``"START,END"`` in ms → (start, end); None → None."""
    if text is None:
        return None
    try:
        start, end = (float(x) for x in str(text).split(","))
    except ValueError:
        raise UserInputError(f'--window "{text}": the form is START,END in ms, e.g. 0,200') \
            from None
    if not end > start >= 0:
        raise UserInputError(f'--window "{text}": needs 0 ≤ START < END')
    return start, end


def find_events(sweep_dir: Path, folders) -> Path | None:
    """The events.csv of the first run of a sweep that recorded one."""
    for folder in folders:
        p = Path(sweep_dir) / folder / "events.csv"
        if p.exists():
            return p
    return None


def read_window(path: Path, window):
    """The events of the first run inside ``window`` (default: the first environment steps);
    return (events, (start, end)). Reads the file in chunks and stops past the window."""
    import pandas as pd

    kept, run, end = [], None, None if window is None else window[1]
    for chunk in pd.read_csv(path, chunksize=200_000):
        if run is None and len(chunk):
            run = chunk["run"].iloc[0]
        other = chunk["run"] != run
        part = chunk[~other]
        if end is not None:
            part = part[part["time_ms"] <= end]
        kept.append(part)
        if end is None:
            steps = pd.concat(kept)
            steps = steps.loc[steps["kind"] == "env_step", "time_ms"]
            if len(steps) > DEFAULT_STEPS:
                end = float(steps.iloc[DEFAULT_STEPS])
                kept = [k[k["time_ms"] <= end] for k in kept]
        if other.any() or (end is not None and len(chunk) and
                           chunk.loc[~other, "time_ms"].max() > end):
            break
    events = pd.concat(kept) if kept else pd.DataFrame()
    if not len(events):
        raise UserInputError(f"{path}: no events")
    start = 0.0 if window is None else window[0]
    if end is None:
        end = float(events["time_ms"].max())
    if not end > start:
        raise UserInputError(f"{path}: every event of the window is at t = {start:g} ms (the "
                             f"synchronous limit: nothing happens in simulated time); record a "
                             f"run with delays or clock pacing, or give --window")
    events = events[(events["time_ms"] >= start) & (events["time_ms"] <= end)]
    return events, (start, end)


def unit_layers(events_path: Path, names) -> dict:
    """unit name → layer: from the run folder's graph when it can be built, else from the
    names the layered builder gives (``in3``, ``h2_17``, ``out0``)."""
    folder = Path(events_path).parent
    try:
        import tomllib

        import numpy as np

        from asyncneurons import tasks
        from asyncneurons.model.scenario import parse_scenario
        from asyncneurons.engine.simulation import build_graph, run_seed

        s = parse_scenario(tomllib.loads((folder / "scenario.toml").read_text()),
                           base_dir=str(folder))
        env = tasks.make_env(s.env.id, s.env.max_episode_steps)
        g = build_graph(s, int(np.prod(env.observation_space.shape)), tasks.action_spec(env),
                        run_seed(s.experiment.seed, 0))
        layers = {str(n): int(a["layer"]) for n, a in g.nodes(data=True)}
    except Exception:  # noqa: BLE001 - the names are a good enough fallback
        layers = {}
    if layers and all(n in layers for n in names):
        return layers
    out, top = {}, 0
    for n in names:
        m = re.fullmatch(r"h(\d+)_\d+", n)
        out[n] = 0 if re.fullmatch(r"in\d+", n) else int(m[1]) if m else None
        top = max(top, out[n] or 0)
    return {n: (top + 1 if layer is None else layer) for n, layer in out.items()}


def _order(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def raster(events_path, window=None):
    """The raster figure of a window of ``events_path``."""
    from asyncneurons.figures.figure_style import styled

    return styled(_raster)(events_path, window)


def _raster(events_path, window):
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from asyncneurons.figures.figure_style import WIDTH

    events, (start, end) = read_window(Path(events_path), window)
    units = sorted(set(events["unit"]) - {"environment"}, key=_order)
    layers = unit_layers(Path(events_path), units)
    top_layer = max(layers.values(), default=0)
    rows, y, ticks = {}, 0, []
    gap = max(1.5, 0.05 * len(units))  # between layers, in rows
    for layer in range(top_layer + 1):
        members = sorted((u for u in units if layers.get(u) == layer), key=_order)
        if not members:
            continue
        for u in members:
            rows[u] = y
            y += 1
        name = "input" if layer == 0 else "output" if layer == top_layer else f"hidden {layer}"
        ticks.append(((y - len(members) + y - 1) / 2, f"{name} ({len(members)})", y))
        y += gap
    env_row = y + gap / 2
    fig = Figure(figsize=(WIDTH, min(8.0, 2.2 + 0.035 * y)), layout="constrained")
    ax = fig.subplots()
    ms = max(3.5, min(6.0, 300 / max(y, 1)))

    def mark(kind, cond, **style):
        part = events[(events["kind"] == kind) & cond]
        if len(part):
            ax.plot(part["time_ms"], [rows.get(u, env_row) for u in part["unit"]],
                    ls="none", **style)

    nonzero = events["value"] != 0
    every = events["value"].notna()
    mark("observation", every, marker="|", ms=ms, color="0.55", mew=0.8)
    mark("sample", ~nonzero, marker="|", ms=ms, color="0.75", mew=0.8)
    mark("sample", nonzero, marker="|", ms=ms, color="black", mew=1.0)
    mark("reward", every, marker="v", ms=ms * 0.8, color="tab:blue", mew=0, alpha=0.8)
    mark("retro", every, marker="<", ms=ms * 0.8, color="tab:red", mew=0, alpha=0.8)
    steps = events.loc[events["kind"] == "env_step", "time_ms"]
    for t in steps:
        ax.axvline(t, color="tab:green", lw=0.6, ls="--", alpha=0.5, zorder=0)
    ax.plot(steps, [env_row] * len(steps), ls="none", marker="D", ms=4, color="tab:green")
    for _, _, boundary in ticks[:-1]:
        ax.axhline(boundary - 0.5 + gap / 2, color="0.85", lw=0.6, zorder=0)
    ax.set_yticks([t for t, _, _ in ticks] + [env_row],
                  [label for _, label, _ in ticks] + ["environment"])
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(-1, env_row + 1)
    pad = 0.01 * (end - start)
    ax.set_xlim(start - pad, end + pad)
    ax.set_xlabel("simulated time (ms)")
    run = events["run"].iloc[0] if len(events) else 0
    ax.set_title(f"events of run {run}, {start:g}–{end:g} ms (one row per unit)")
    legend = [
        Line2D([], [], ls="none", marker="|", color="black", ms=7, mew=1.2,
               label="sample ≠ 0 (spike)"),
        Line2D([], [], ls="none", marker="|", color="0.7", ms=7, mew=1.2,
               label="sample = 0 / observation"),
        Line2D([], [], ls="none", marker="v", color="tab:blue", ms=5, label="TD error lands"),
        Line2D([], [], ls="none", marker="<", color="tab:red", ms=5,
               label="retrograde signal lands"),
        Line2D([], [], ls="--", marker="D", ms=4, color="tab:green", lw=0.8,
               label="environment step"),
    ]
    fig.legend(handles=legend, loc="outside lower center", ncols=3, frameon=False)
    return fig
