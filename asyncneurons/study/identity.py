"""What a sweep is made of: its grid, its points, and the identity of each run.

A grid is given as ``KEY=V1,V2,...`` strings. Values are TOML values, read exactly as a
``--set`` value is (:func:`asyncneurons.model.scenario.apply_override`); the list is split on
*top-level* commas only, so a table or a list is one value::

    timing.synapse_delay={dist="uniform",low=0,high=2},{dist="uniform",low=0,high=5}
    learning.lr=[0.02,2e-4],[0.01,1e-4]

A run of a sweep is one grid point and one seed ``s``: the scenario with the ``--set``
overrides, then the point's overrides, then ``experiment.seed = s`` and ``experiment.runs =
1``. Its identity is the first 8 hex digits of the SHA-256 of its resolved scenario
(:func:`~asyncneurons.model.scenario.to_toml`, every default filled in) and its seed; its folder is
``runs/<key>=<value>,.../seed-<s>-<hash>/``: readable, and unique by the hash.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field

from asyncneurons.errors import UserInputError

#: Keys a sweep sets itself (each run is one seed of one run); not allowed in --grid or --set.
SWEEP_KEYS = ("experiment.seed", "experiment.runs")


def split_top_level(text: str) -> list[str]:
    """Split ``text`` on commas outside brackets, braces and quoted strings."""
    parts, depth, quote, start, i = [], 0, None, 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif text.startswith(quote, i):
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_value(text: str):
    """A value as ``--set`` reads it: a TOML value, or the text itself when it is not one."""
    try:
        parsed = tomllib.loads("v = " + text.strip())
        return parsed["v"] if list(parsed) == ["v"] else text.strip()
    except tomllib.TOMLDecodeError:
        return text.strip()


def parse_grid(specs) -> list[tuple[str, list[str]]]:
    """``["KEY=V1,V2", ...]`` → ``[(KEY, ["V1", "V2"]), ...]`` in the order given."""
    grid: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, eq, values = str(spec).partition("=")
        key = key.strip()
        if not eq or not key:
            raise UserInputError(f'--grid "{spec}": the form is KEY=V1,V2,...')
        if key in SWEEP_KEYS:
            raise UserInputError(f"--grid {key}: set by the sweep itself (each run is one seed: "
                                 f"use --seeds N)")
        if any(k == key for k, _ in grid):
            raise UserInputError(f"--grid {key}: given twice; list all its values in one --grid")
        texts = split_top_level(values)
        if any(not t for t in texts):
            raise UserInputError(f'--grid {key}: empty value in "{values}" (values are '
                                 f"separated by commas)")
        if len(set(texts)) != len(texts):
            raise UserInputError(f'--grid {key}: a value is listed twice in "{values}"')
        grid.append((key, texts))
    return grid


def toml_inline(value) -> str:
    """A parsed value written back as inline TOML (canonical spacing)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_inline(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def table_value(value):
    """A swept value as it appears in the tables: numbers and strings as such, tables and
    lists as inline TOML text."""
    if isinstance(value, (dict, list)):
        return toml_inline(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def slug(value) -> str:
    """A short, file-name-safe rendering of a swept value: ``uniform_low0_high5``."""
    if isinstance(value, dict):
        items = [str(value["dist"])] if "dist" in value else []
        items += [f"{k}{slug(v)}" for k, v in value.items() if k != "dist"]
        text = "_".join(items)
    elif isinstance(value, list):
        text = "_".join(slug(v) for v in value)
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = str(int(value))
    else:
        text = str(value).lower() if isinstance(value, bool) else str(value)
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


def point_label(values: dict) -> str:
    """The folder name of a grid point: ``key=value,...`` (``base`` when nothing is swept)."""
    if not values:
        return "base"
    label = ",".join(f"{k}={slug(v)}" for k, v in values.items())
    return label if len(label) <= 180 else label[:171] + "~" + hashlib.sha256(
        label.encode()).hexdigest()[:8]


def run_hash(scenario_toml: str, seed: int) -> str:
    """The identity of a run: 8 hex digits of SHA-256 over its resolved scenario and seed."""
    return hashlib.sha256(f"{scenario_toml}\n# seed = {seed}\n".encode()).hexdigest()[:8]


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a grid point and a seed, with its resolved scenario."""

    point: int
    """index of the grid point (in grid order: the last --grid key varies fastest)"""
    values: dict = field(hash=False, compare=False)
    """the point's swept values, key → parsed value"""
    seed: int
    toml: str = field(repr=False)
    """the resolved scenario (``to_toml``): what the worker runs and what the hash covers"""
    ident: str
    """8 hex digits naming the run"""
    folder: str
    """the run folder, relative to the sweep folder"""
