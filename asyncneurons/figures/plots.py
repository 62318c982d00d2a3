"""Figures of a run folder or of one or several sweep folders, as PNG (200 dpi) and SVG.

``learning-curves``   return per episode, moving average over ``smooth`` episodes, the mean
                      across seeds (or runs) with a band (a sweep: one line per grid point,
                      panels by the other swept keys, or every condition in one panel with
                      ``overlay``; several run folders: one line per folder);
``tolerance-<key>``   sweeps only: the published metric (each seed's average return over all
                      its episodes; their mean across seeds, with error bars) against any one
                      numeric swept key, one line per value of another (e.g. ``learning.rule``);
``raster``            a window of a recorded run (``events.csv``): see :mod:`asyncneurons.figures.raster`;
``diagnostics``       a run folder recorded with ``[record] diagnostics``: mean |δ|, stale actions,
                      weight norms, samples and learning events per layer, against the episode.

**Bands and error bars.** By default the 95 % percentile-bootstrap confidence interval of the
mean across seeds (:func:`bootstrap_ci`: 2,000 resamples of the seeds from a fixed seed, so a
figure is the same every time it is drawn); ``band = "std"`` draws mean ± population standard
deviation instead. One seed: no band. Every figure's title names the experiment, the task, the
rule (unless the legend does), the number of seeds and what the band is.

Figures are 7 inches wide (a two-column paper page) with 9-point text. Nothing here runs a
simulation; everything is read from the tables the recorder and the sweep wrote
(:mod:`asyncneurons.figures.plotdata`); bands come from :mod:`asyncneurons.figures.bands`.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

from asyncneurons.figures.bands import BANDS, N_BOOT, BOOT_SEED, band_text, bootstrap_ci, spread  # noqa: F401
from asyncneurons.errors import UserInputError
from asyncneurons.figures.figure_style import DPI, STYLE, WIDTH, styled  # noqa: F401
from asyncneurons.study.identity import parse_value
from asyncneurons.figures.plotdata import (_context, _is_sweep, _per_seed, _scenario_of, _sweep_context,  # noqa: F401
                                           canonical_value, read_sweeps, shared_value)

NAMES = {"timing.synapse_delay": "synaptic delay", "timing.reward_delay": "reward delay",
         "timing.retro_delay": "retrograde delay", "learning.rule": "rule",
         "env.period": "environment period", "timing.firing_period": "firing period",
         "timing.refractory": "refractory period", "learning.lambda": "λ",
         "timing.firing": "firing", "env.pacing": "pacing", "env.id": "task"}


# ---------------------------------------------------------------------------------------------
# Keys, values and their labels


def key_name(key: str) -> str:
    if "," in key:  # lines drawn per combination of several keys (``--lines a,b``)
        return ", ".join(key_name(k) for k in key.split(","))
    return NAMES.get(key, key)


def key_unit(key: str) -> str:
    """``"ms"`` when the scenario documents the key in milliseconds, else ``""``."""
    from asyncneurons.model.scenario import Scenario

    section, _, name = key.partition(".")
    table = Scenario.model_fields.get(section)
    if table is None:
        return ""
    fields = {(f.alias or n): f for n, f in table.annotation.model_fields.items()}
    info = fields.get(name.split(".")[0])
    return "ms" if info is not None and re.search(r"\bms\b", info.description or "") else ""


def numeric_axis(key: str, values) -> tuple[list[float], str] | None:
    """The numbers to put on an axis for a swept key's values, and the axis label; None when
    the values are not numeric. A delay table family varying one parameter (``{dist =
    "uniform", low = 0, high = d}``) is plotted against that parameter."""
    parsed = [parse_value(v) if isinstance(v, str) else v for v in values]
    unit = key_unit(key)
    suffix = f" ({unit})" if unit else ""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in parsed):
        return [float(v) for v in parsed], f"{key_name(key)}{suffix}"
    if not all(isinstance(v, dict) for v in parsed) or len({tuple(v) for v in parsed}) != 1:
        return None
    varying = [k for k in parsed[0] if len({json.dumps(v[k]) for v in parsed}) > 1]
    if len(varying) != 1 or not all(isinstance(v[varying[0]], (int, float)) for v in parsed):
        return None
    p = varying[0]
    fixed = ", ".join(f"{k} = {_num(v)}" if k != "dist" else str(v)
                      for k, v in parsed[0].items() if k != p)
    return [float(v[p]) for v in parsed], f"{key_name(key)}: {p}{suffix}\n({fixed})"


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def value_text(key: str, value, family=None) -> str:
    """A swept value for a panel title: ``reward delay = 10 ms``; with ``family`` (the key's
    values), a delay table varying one parameter reads ``synaptic delay high = 10 ms``."""
    v = parse_value(value) if isinstance(value, str) else value
    unit = key_unit(key)
    if isinstance(v, dict) and family is not None:
        axis = numeric_axis(key, family)
        if axis is not None:
            p = axis[1].split(":")[1].split()[0]
            return f"{key_name(key)} {p} = {_num(v[p])}{' ' + unit if unit else ''}"
    if isinstance(v, dict):
        return f"{key_name(key)} {_dist_text(v)}{' ' + unit if unit else ''}"
    if isinstance(v, list):  # one value per layer
        inner = ", ".join(_dist_text(x) if isinstance(x, dict) else _num(x) for x in v)
        return f"{key_name(key)} = [{inner}]{' ' + unit if unit else ''}"
    return f"{key_name(key)} = {_num(v)}{' ' + unit if unit else ''}"


def _dist_text(v: dict) -> str:
    """A delay table as ``uniform(low 0, high 10)``."""
    inner = ", ".join(f"{k} {_num(x)}" for k, x in v.items() if k != "dist")
    return f"{v.get('dist', '')}({inner})"


# ---------------------------------------------------------------------------------------------
# Figures


def _figure(n_panels: int, ncols: int | None = None, panel_height: float = 2.3,
            legend_rows: int = 1):
    from matplotlib.figure import Figure

    ncols = ncols or (2 if n_panels == 4 else min(n_panels, 3))  # four panels: two rows of two
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(WIDTH, nrows * panel_height + 0.35 + 0.2 * legend_rows),
                 layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n_panels])


def save(fig, out: Path, name: str) -> list[Path]:
    """Write ``name.png`` and ``name.svg`` into ``out``; return their paths."""
    import matplotlib

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    with matplotlib.rc_context(STYLE):
        fig.savefig(paths[0], dpi=DPI)
        fig.savefig(paths[1], metadata={"Date": None})
    return paths


def _colors(n: int):
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _facets(table, keys: list[str]):
    """Panels: one per combination of values of ``keys`` (numbers in increasing order, other
    values in order of appearance)."""
    values = []
    for k in keys:
        seen = list(dict.fromkeys(table[k]))
        axis = numeric_axis(k, seen)
        values.append([v for _, v in sorted(zip(axis[0], seen), key=lambda p: p[0])] if axis else seen)
    combos = list(itertools.product(*values)) if keys else [()]
    ncols = len(values[1]) if len(keys) == 2 else None
    return combos, ncols


def short_text(key: str, value, family) -> str:
    """A swept value for a legend entry under the key's name: ``10 ms``, ``high = 5 ms``."""
    if "," in key:  # a combination of keys: already text
        return str(value)
    v = parse_value(value) if isinstance(value, str) else value
    unit = key_unit(key)
    text = value_text(key, value, family)
    if isinstance(v, dict) and " = " in text:
        return text[len(key_name(key)) + 1:]
    return f"{_num(v)}{' ' + unit if unit and not isinstance(v, str) else ''}"


#: Characters per line of a panel title: longer ones (a file path, a list of distributions)
#: wrap rather than run into the next panel's title.
TITLE_WIDTH = 32


def _titles(table, keys, combo) -> str:
    import textwrap

    lines = (value_text(k, v, list(dict.fromkeys(table[k]))) for k, v in zip(keys, combo))
    return "\n".join(textwrap.fill(line, TITLE_WIDTH, break_on_hyphens=False) for line in lines)


def _select(table, keys, combo):
    mask = None
    for k, v in zip(keys, combo):
        m = table[k] == v
        mask = m if mask is None else mask & m
    return table if mask is None else table[mask]


def _legend(fig, handles, title=None):
    if handles:
        longest = max(len(h.get_label()) for h in handles)
        fig.legend(handles=handles, loc="outside lower center",
                   ncols=max(1, min(len(handles), 4, 120 // (longest + 6))), title=title, frameon=False)


def default_smooth(n_episodes: int) -> int:
    return max(1, min(100, n_episodes // 10))


def _band(ax, frame, unit_col: str, smooth: int, color, label, band: str = "ci"):
    """Moving average per seed (or run), then the mean across them and its band."""
    wide = frame.pivot_table(index="episode", columns=unit_col, values="return")
    ma = wide.rolling(smooth, min_periods=1).mean()
    x = ma.index.to_numpy() + 1
    mean, low, high = spread(ma.to_numpy().T, band)
    (line,) = ax.plot(x, mean, color=color, lw=1.4, label=label)
    if wide.shape[1] > 1:
        ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0)
    return line


def caption(context: dict | None, n_text: str, band: str, rule_in_legend: bool) -> str:
    """The figure's title: experiment, task, rule (unless the legend names it), seeds, band."""
    context = context or {}
    parts = [context.get("name"), context.get("env")]
    if not rule_in_legend and context.get("rule"):
        parts.append(f"rule {context['rule']}")
    parts += [n_text, band_text(band)]
    lines, line = [], ""
    for part in (p for p in parts if p):  # at most ~90 characters a line: 9-point text, 7 inches
        if line and len(line) + 3 + len(part) > 90:
            lines.append(line)
            line = part
        else:
            line = f"{line} · {part}" if line else part
    return "\n".join([*lines, line])


@styled
def learning_curves(tidy, keys: list[str], unit_col: str, smooth: int, line_key: str | None,
                    what: str, band: str = "ci", context: dict | None = None):
    """Learning curves of a tidy table (columns: keys…, unit_col, episode, return); ``band``:
    ``"ci"`` or ``"std"``; ``context``: name, env and rule for the title."""
    from matplotlib.ticker import MaxNLocator

    line_keys = [line_key] if line_key else []
    facet_keys = [k for k in keys if k not in line_keys]
    combos, ncols = _facets(tidy, facet_keys)
    lines = list(dict.fromkeys(tidy[line_key])) if line_key else [None]
    fig, axes = _figure(len(combos), ncols)
    colors = _colors(len(lines))
    handles = []
    counts = set()  # seeds (or runs) behind each curve: a sweep in progress has fewer for some
    for ax, combo in zip(axes, combos):
        sub = _select(tidy, facet_keys, combo)
        for color, lv in zip(colors, lines):
            part = sub if lv is None else sub[sub[line_key] == lv]
            if len(part):
                counts.add(part[unit_col].nunique())
                label = what if lv is None else short_text(line_key, lv, lines)
                h = _band(ax, part, unit_col, smooth, color, label, band)
                if ax is axes[0]:
                    handles.append(h)
        ax.set_title(_titles(tidy, facet_keys, combo))
        ax.grid(alpha=0.3, lw=0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes:
        if ax.get_subplotspec().is_last_row() or ax is axes[-1]:
            ax.set_xlabel("episode")
            ax.xaxis.set_tick_params(labelbottom=True)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(f"return\n(moving average, {smooth} ep.)")
    lo, hi = (min(counts), max(counts)) if counts else (0, 0)
    n_text = f"{hi} {what}{'s' * (hi != 1)}" if lo == hi else f"{lo}–{hi} {what}s"
    n_text += " per curve" if line_key or len(combos) > 1 else ""
    fig.suptitle(caption(context, n_text, band, _names_rule(line_key, keys)))
    _legend(fig, handles if line_key else [], key_name(line_key) if line_key else None)
    return fig


def _names_rule(line_key, keys) -> bool:
    """Whether the legend or the panel titles name the rule (so the title need not)."""
    return any("learning.rule" in k.split(",") for k in [line_key or "", *keys])


@styled
def tolerance_curve(summary, keys: list[str], x_key: str, line_key: str | None, per_seed=None,
                    band: str = "ci", context: dict | None = None):
    """The published metric against ``x_key``; one line per ``line_key`` value; one panel per
    combination of the other swept keys. ``per_seed`` (columns: the keys, ``seed``,
    ``average``: each seed's average return) gives the error bars: the 95 % bootstrap CI of
    the mean across seeds (``band = "ci"``) or the population std (``"std"``); without it,
    the summary's std."""
    axis = numeric_axis(x_key, list(dict.fromkeys(summary[x_key])))
    if axis is None:
        raise UserInputError(f"--x {x_key}: its values are not numbers (nor a delay table "
                             f"varying one number); it cannot be an axis")
    xs_of = dict(zip(dict.fromkeys(summary[x_key]), axis[0]))
    facet_keys = [k for k in keys if k not in (x_key, line_key)]
    combos, ncols = _facets(summary, facet_keys)
    lines = list(dict.fromkeys(summary[line_key])) if line_key else [None]
    fig, axes = _figure(len(combos), ncols, panel_height=2.4)
    colors = _colors(len(lines))
    span = (max(axis[0]) - min(axis[0])) or 1.0
    handles = []
    for ax, combo in zip(axes, combos):
        sub = _select(summary, facet_keys, combo)
        for i, (color, lv) in enumerate(zip(colors, lines)):
            part = sub if lv is None else sub[sub[line_key] == lv]
            part = part[part["n_seeds"] > 0]
            if not len(part):
                continue
            x = [xs_of[v] for v in part[x_key]]
            order = sorted(range(len(x)), key=x.__getitem__)
            dodge = (i - (len(lines) - 1) / 2) * 0.012 * span
            mean, yerr = _error_bars(part, keys, x_key, line_key, combo, facet_keys, per_seed, band)
            h = ax.errorbar([x[j] + dodge for j in order], mean[order],
                            yerr=yerr[:, order], color=color, marker="o",
                            ms=4, lw=1.4, capsize=3, elinewidth=1,
                            label="all runs" if lv is None else short_text(line_key, lv, lines))
            if ax is axes[0]:
                handles.append(h)
        ax.set_title(_titles(summary, facet_keys, combo))
        ax.grid(alpha=0.3, lw=0.5)
    seeds = sorted({int(n) for n in summary["n_seeds"] if n > 0})
    seeds_text = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}" if seeds else "0"
    for ax in axes:
        if ax.get_subplotspec().is_last_row() or ax is axes[-1]:
            ax.set_xlabel(axis[1])
            ax.xaxis.set_tick_params(labelbottom=True)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("average return per run\n(mean across seeds)")
    if per_seed is None:
        band = "std"
    n_text = f"{seeds_text} seed{'s' * (seeds_text != '1')} per point"
    fig.suptitle(caption(context, n_text, band, _names_rule(line_key, keys)).replace("band:", "error bars:"))
    _legend(fig, handles if line_key else [], key_name(line_key) if line_key else None)
    return fig


def _error_bars(part, keys, x_key, line_key, combo, facet_keys, per_seed, band: str):
    """(means, 2 × n array of lower and upper error-bar lengths) for the rows of ``part``."""
    import numpy as np

    if per_seed is None:
        mean, std = part["mean"].to_numpy(), part["std"].to_numpy()
        return mean, np.vstack([std, std])
    group = [k for k in per_seed.columns if k not in ("seed", "average")]
    means, low, high = [], [], []
    for row in part.to_dict("records"):
        mask = np.ones(len(per_seed), dtype=bool)
        for k in group:
            mask &= (per_seed[k] == row[k]).to_numpy()
        m, lo, hi = spread(per_seed.loc[mask, "average"].to_numpy(), band)
        if mask.sum() < 2:
            lo = hi = m
        means.append(float(m))
        low.append(float(m - lo))
        high.append(float(hi - m))
    return np.asarray(means), np.vstack([low, high])


@styled
def diagnostics_figure(table, smooth: int, context: dict | None = None):
    """A run folder's diagnostics (:mod:`asyncneurons.study.diagnostics`) against the episode: mean |δ|,
    stale actions, and per layer the weight norm, samples and learning events per unit; each a
    moving average over ``smooth`` episodes, then the mean across runs."""
    import re as re_

    layers = sorted({int(m.group(1)) for c in table.columns for m in [re_.fullmatch(r"weight_norm_l(\d+)", c)] if m})
    panels = [("mean |δ| per step", ["mean_abs_delta"]), ("stale actions per episode", ["stale_actions"]),
              ("weight norm ‖W‖", [f"weight_norm_l{l}" for l in layers]),
              ("samples per unit", [f"samples_l{l}" for l in layers]),
              ("learning events per unit", [f"learning_events_l{l}" for l in layers])]
    from matplotlib.figure import Figure
    fig = Figure(figsize=(WIDTH, 2 * 2.1 + 0.55), layout="constrained")
    axes = list(fig.subplots(2, 3, squeeze=False, sharex=True).flat)
    colors = _colors(max(1, len(layers)))
    handles = {}
    for ax, (title, cols) in zip(axes, panels):
        for i, col in enumerate(cols):
            wide = table.pivot_table(index="episode", columns="run", values=col)
            ma = wide.rolling(smooth, min_periods=1).mean().mean(axis=1)
            label = f"layer {layers[i]}" if len(cols) > 1 else None
            (h,) = ax.plot(ma.index.to_numpy() + 1, ma.to_numpy(), lw=1.3, ls=("-", "--", ":", "-.")[i % 4],
                           color=colors[i] if len(cols) > 1 else "0.25", label=label)
            if label:
                handles[label] = h
        ax.set_title(title)
        ax.grid(alpha=0.3, lw=0.5)
    for ax in axes[2:5]:
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel("episode")
    axes[5].set_visible(False)
    n_runs = table["run"].nunique()
    fig.suptitle(caption(context, f"{n_runs} run{'s' * (n_runs != 1)}, mean; moving average over {smooth} ep.",
                         "ci", False).rsplit(" · ", 1)[0])
    _legend(fig, list(handles.values()), "output layer = the highest")
    return fig


# ---------------------------------------------------------------------------------------------
# Folders


def _combine(tables, keys, line_key):
    """``--lines a,b``: one line per combination of the keys ``a`` and ``b``, labelled
    ``rule = weight_max, λ = 0.8``; the combined key replaces them in ``keys``."""
    parts = line_key.split(",")
    for k in parts:
        if k not in keys:
            raise UserInputError(f"--lines {k}: not a swept key; swept: {', '.join(keys) or 'none'}")
    for t in tables:
        families = {k: list(dict.fromkeys(t[k])) for k in parts}
        t[line_key] = [", ".join(value_text(k, v, families[k]) for k, v in zip(parts, row))
                       for row in zip(*(t[k] for k in parts))]
    return [k for k in keys if k not in parts] + [line_key]


def _choose_lines(summary, keys, line_key, x_key=None):
    varied = [k for k in keys if summary[k].nunique() > 1]
    if line_key is not None:
        if line_key not in keys:
            raise UserInputError(f"--lines {line_key}: not a swept key; swept: "
                                 f"{', '.join(keys) or 'none'}")
        return line_key, varied
    categorical = [k for k in varied if k != x_key and
                   numeric_axis(k, list(dict.fromkeys(summary[k]))) is None]
    others = [k for k in varied if k != x_key]
    return (categorical or others or [None])[0], varied


def _condition_labels(folders, scenarios) -> list[str]:
    """A label per run folder: the scenario keys whose values differ between them (seed and name
    aside when others differ), else the folder's name."""
    keys = sorted({k for s in scenarios for k in s})
    differ = [k for k in keys if len({json.dumps(s.get(k), sort_keys=True) for s in scenarios}) > 1]
    shown = [k for k in differ if k not in ("experiment.name",)] or differ
    labels = [", ".join(value_text(k, s.get(k)) for k in shown) if shown else f.name
              for f, s in zip(folders, scenarios)]
    return labels if len(set(labels)) == len(labels) else [f.name for f in folders]


def _run_folders(paths, smooth, band):
    """Several run folders: their learning curves overlaid in one panel, one line per folder."""
    import pandas as pd

    frames, scenarios = [], []
    for p in paths:
        if not (p / "metrics.csv").exists():
            raise UserInputError(f"{p}: not a run folder (metrics.csv); several folders are plotted "
                                 f"together when all are run folders or all are sweep folders")
        m = pd.read_csv(p / "metrics.csv")
        if not len(m):
            raise UserInputError(f"{p}: metrics.csv has no finished episode yet")
        frames.append(m)
        scenarios.append(_scenario_of(p))
    labels = _condition_labels(paths, scenarios)
    for m, label in zip(frames, labels):
        m["condition"] = label
    tidy = pd.concat(frames, ignore_index=True)
    n = smooth or default_smooth(int(tidy["episode"].max()) + 1)
    context = _context(scenarios)
    if "," in (context["rule"] or ""):  # the rules differ: the labels name them
        context["rule"] = None
    return learning_curves(tidy, [], "run", n, "condition", "run", band, context)


def plot_folder(path, out=None, *, smooth=None, x_key=None, line_key=None, window=None,
                where=(), band="ci", overlay=False, say=print) -> list[Path]:
    """Every figure a run folder, a sweep folder or several sweep folders (a list of paths,
    plotted as one sweep: :func:`read_sweeps`) support, or the learning curves of several run
    folders in one panel; return the files written. ``band``: ``"ci"`` (95 % bootstrap
    confidence interval of the mean) or ``"std"``; ``overlay``: a sweep's learning curves of
    every condition in one panel."""
    import pandas as pd

    from asyncneurons.figures.raster import find_events, parse_window, raster

    if band not in BANDS:
        raise UserInputError(f"--band {band}: one of {', '.join(BANDS)}")
    paths = [Path(p) for p in path] if isinstance(path, (list, tuple)) else [Path(path)]
    if len(paths) > 1:
        if out is None:
            raise UserInputError("several folders: say where the figures go with --out")
        if not _is_sweep(paths[0]):
            if where or x_key or line_key or overlay:
                raise UserInputError("--where, --x, --lines and --overlay apply to sweeps; "
                                     "several run folders are drawn one line per folder")
            return save(_run_folders(paths, smooth, band), Path(out), "learning-curves")
        for p in paths:
            if not _is_sweep(p):
                raise UserInputError(f"{p}: not a sweep folder (sweep.csv, sweep.json); several "
                                     f"folders are plotted together when all are run folders or "
                                     f"all are sweep folders")
    path = paths[0]
    out = Path(out) if out is not None else path / "figures"
    win = parse_window(window)
    files: list[Path] = []
    if _is_sweep(path):
        metas, keys, tidy, summary = read_sweeps(paths, where)
        if not len(tidy):
            raise UserInputError(f"{', '.join(map(str, paths))}: no finished run yet")
        if x_key is not None and x_key not in keys:
            raise UserInputError(f"--x {x_key}: not a swept key; swept: {', '.join(keys) or 'none'}")
        context = _sweep_context(paths, metas, summary, keys)
        per_seed = _per_seed(tidy, keys)
        varied_all = [k for k in keys if summary[k].nunique() > 1]
        curve_key = line_key
        if overlay and line_key is None and len(varied_all) > 1:
            curve_key = ",".join(varied_all)  # every condition one line: in one panel
        curve_keys = keys
        if curve_key is not None and "," in curve_key:
            curve_keys = _combine((tidy, summary), keys, curve_key)
            if curve_key == line_key:
                keys = curve_keys
        lk, varied = _choose_lines(summary, curve_keys, curve_key, x_key)
        n = smooth or default_smooth(int(tidy["episode"].max()) + 1)
        fig = learning_curves(tidy, [k for k in varied if k != lk], "seed", n, lk, "seed", band, context)
        files += save(fig, out, "learning-curves")
        varied = [k for k in keys if summary[k].nunique() > 1]
        candidates = [x_key] if x_key else [k for k in varied if k != line_key and
                                            numeric_axis(k, list(dict.fromkeys(summary[k])))]
        for xk in candidates:
            lkx, varied_x = _choose_lines(summary, keys, line_key, xk)
            fig = tolerance_curve(summary, [k for k in varied_x if k != lkx], xk, lkx,
                                  per_seed, band, context)
            files += save(fig, out, f"tolerance-{xk}")
        if not candidates:
            say("no numeric swept key: no tolerance curve")
        events = next((e for e in (find_events(p, [r["folder"] for r in m["runs"]])
                                   for p, m in zip(paths, metas)) if e is not None), None)
    elif where or overlay:
        raise UserInputError("--where and --overlay apply to sweeps; this is a run folder")
    elif (path / "metrics.csv").exists():
        metrics = pd.read_csv(path / "metrics.csv")
        if not len(metrics):
            raise UserInputError(f"{path}: metrics.csv has no finished episode yet")
        n = smooth or default_smooth(int(metrics["episode"].max()) + 1)
        files += save(learning_curves(metrics, [], "run", n, None, "run", band,
                                      _context([_scenario_of(path)])), out, "learning-curves")
        from asyncneurons.study.diagnostics import read as read_diagnostics
        diag = read_diagnostics(path)
        if diag is not None:
            files += save(diagnostics_figure(diag, n, _context([_scenario_of(path)])), out, "diagnostics")
        events = path / "events.csv" if (path / "events.csv").exists() else None
    else:
        raise UserInputError(f"{path}: neither a run folder (metrics.csv) nor a sweep folder "
                             f"(sweep.csv, sweep.json)")
    if events is None:
        say("no events.csv (run with --set record.events=true): no raster")
    else:
        files += save(raster(events, win), out, "raster")
    return files
