"""What figures are drawn from: a run folder's or sweep folders' tables and resolved scenarios,
read into pandas tables, with the context a title names (experiment, task, rule)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from asyncneurons.errors import UserInputError
from asyncneurons.study.identity import parse_value, split_top_level, table_value

def _read_sweep(path: Path):
    import pandas as pd

    meta = json.loads((path / "sweep.json").read_text())
    keys = list(meta["grid"])
    tidy = pd.read_csv(path / "sweep.csv")
    summary = pd.read_csv(path / "summary.csv")
    return meta, keys, tidy, summary


def canonical_value(value):
    """A swept value in one form whatever way it was written (``10``, ``10.0``, ``{ dist =
    "uniform", low = 0, high = 5 }`` or ``{dist="uniform",low=0.0,high=5.0}``): whole numbers as
    integers, other numbers as floats, tables and lists as inline TOML."""
    def norm(v):
        if isinstance(v, bool) or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            return int(v) if float(v).is_integer() and abs(v) < 2 ** 53 else float(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    return table_value(norm(parse_value(value) if isinstance(value, str) else value))


def shared_value(path: Path, meta, key: str):
    """The value of ``key`` that every run of a sweep shares (read from the resolved scenario
    of one finished run); None when the scenario leaves it unset."""
    import tomllib

    for run in meta["runs"]:
        f = path / run["folder"] / "scenario.toml"
        if f.exists():
            node = tomllib.loads(f.read_text())
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    return None
                node = node[part]
            return node
    raise UserInputError(f"{path}: no finished run to read {key} from")


def _parse_where(where) -> list[tuple[str, str]]:
    out = []
    for w in where or ():
        key, eq, value = w.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise UserInputError(f"--where {w}: expected KEY=VALUE")
        out.append((key.strip(), value))
    return out


def read_sweeps(paths, where=()):
    """One sweep's tables, or several sweeps' tables as one (for one figure of, e.g., rules that
    need different scenarios, or one axis of a study whose point lives in another sweep).

    The keys are every sweep's swept keys; a sweep that did not sweep a key takes the value all
    its runs share (from their resolved scenario), so every row says where it stands on every
    key. ``where`` (``KEY=VALUE`` or ``KEY=V1,V2`` strings, values split as a grid's are) keeps
    only the rows at those values. A grid point found in two sweeps is an error (narrow with
    ``where``). Returns (metas, keys, tidy, summary).
    """
    import pandas as pd

    read = [(Path(p), *_read_sweep(Path(p))) for p in paths]
    keys = list(dict.fromkeys(k for _, _, ks, _, _ in read for k in ks))
    tidies, summaries = [], []
    for path, meta, ks, tidy, summary in read:
        for k in keys:
            if k not in ks:
                v = canonical_value(shared_value(path, meta, k))
                tidy[k], summary[k] = v, v
            else:
                forms = {v: canonical_value(v) for v in set(summary[k]) | set(tidy[k])}
                tidy[k], summary[k] = tidy[k].map(forms), summary[k].map(forms)
        summary["_sweep"] = str(path)
        tidies.append(tidy)
        summaries.append(summary)
    tidy = pd.concat(tidies, ignore_index=True)
    summary = pd.concat(summaries, ignore_index=True)
    for key, value in _parse_where(where):
        if key not in keys:
            raise UserInputError(f"--where {key}: not a swept key; swept: {', '.join(keys) or 'none'}")
        wanted = {canonical_value(v) for v in split_top_level(value)}
        if not summary[key].isin(wanted).any():
            found = ", ".join(str(x) for x in dict.fromkeys(summary[key]))
            raise UserInputError(f"--where {key}={value}: no finished point there; {key} takes {found}")
        tidy, summary = tidy[tidy[key].isin(wanted)], summary[summary[key].isin(wanted)]
    twice = summary[summary.duplicated(keys, keep=False)] if keys else summary.iloc[:0]
    if len(twice):
        row = twice.iloc[0]
        point = ", ".join(f"{k}={row[k]}" for k in keys)
        where_ = " and ".join(dict.fromkeys(twice[(twice[keys] == row[keys]).all(axis=1)]["_sweep"]))
        raise UserInputError(f"the point {point} is in {where_}: keep one with --where")
    summary = summary.drop(columns="_sweep").reset_index(drop=True)
    return [m for _, m, *_ in read], keys, tidy.reset_index(drop=True), summary


def _is_sweep(path: Path) -> bool:
    return (path / "sweep.csv").exists() and (path / "sweep.json").exists()


def _flat(table: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in table.items():
        if isinstance(v, dict) and not (prefix and "dist" in v):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _scenario_of(folder: Path) -> dict:
    """A run folder's resolved scenario as ``{dotted key: value}`` (empty when it has none)."""
    import tomllib

    f = folder / "scenario.toml"
    return _flat(tomllib.loads(f.read_text())) if f.exists() else {}


def _context(scenarios) -> dict:
    """Name, task and rule for a title, from resolved scenarios (``_scenario_of``); a key that
    differs between them is listed with each of its values."""
    def joined(key):
        values = list(dict.fromkeys(str(s[key]) for s in scenarios if key in s))
        return ", ".join(values) or None
    return {"name": joined("experiment.name"), "env": joined("env.id"), "rule": joined("learning.rule")}


_CONTEXT_KEYS = {"name": "experiment.name", "env": "env.id", "rule": "learning.rule"}


def _sweep_context(paths, metas, summary, keys) -> dict:
    """The title's context of a sweep: from one finished run's scenario per sweep, except for
    swept keys, whose values are those of the points plotted (after ``--where``)."""
    scenarios = []
    for path, meta in zip(paths, metas):
        run = next((r for r in meta["runs"] if (path / r["folder"] / "scenario.toml").exists()), None)
        if run is not None:
            scenarios.append(_scenario_of(path / run["folder"]))
    context = _context(scenarios)
    for name, key in _CONTEXT_KEYS.items():
        if key in keys:
            context[name] = ", ".join(str(v) for v in dict.fromkeys(summary[key]))
    return context


def _per_seed(tidy, keys):
    """Each seed's average return over its episodes, per point (the published metric's samples)."""
    return tidy.groupby([*keys, "seed"], dropna=False)["return"].mean().rename("average").reset_index()
