"""Print a sweep's summary as a Markdown table, for a study's page.

    python scripts/study_table.py SWEEP_DIR [SWEEP_DIR ...] [--rows KEY] [--cols KEY[,KEY]]
                                  [--where KEY=VALUE ...]

One row per value of ``--rows`` (default: the first swept key), one column per combination of the
``--cols`` keys (default: the others); each cell is the published metric's mean (population std)
across seeds, with the number of seeds when it differs from the most common one. Below the table:
the share of stale environment steps per row (mean over its columns), and the CPU time the runs took (the sum of their
wall times, each run on one core). Several sweep folders and ``--where`` work as for
``asyncneurons plot`` (:func:`asyncneurons.figures.plots.read_sweeps`): the points of one study's axis that
live in another sweep join its table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asyncneurons.errors import UserInputError  # noqa: E402
from asyncneurons.figures.plots import (canonical_value, numeric_axis, read_sweeps,  # noqa: E402
                                        shared_value, value_text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweeps", nargs="+")
    ap.add_argument("--rows", default=None)
    ap.add_argument("--cols", default=None)
    ap.add_argument("--where", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    folders = [Path(p) for p in args.sweeps]
    try:
        metas, keys, tidy, summary = read_sweeps(folders, args.where)
    except UserInputError as e:
        sys.exit(f"error: {e}")
    row_key = args.rows or keys[0]
    col_keys = args.cols.split(",") if args.cols else [k for k in keys if k != row_key]
    fam = {k: list(dict.fromkeys(summary[k])) for k in keys}
    axis = numeric_axis(row_key, fam[row_key])
    if axis is not None:  # numbers in increasing order
        fam[row_key] = [v for _, v in sorted(zip(axis[0], fam[row_key]), key=lambda p: p[0])]

    def label(k, v):
        return value_text(k, v, fam[k])

    cols = list(dict.fromkeys(tuple(r) for r in summary[col_keys].itertuples(index=False)))
    order = {k: numeric_axis(k, fam[k]) for k in col_keys}  # numbers in increasing order
    rank = {k: dict(zip(fam[k], order[k][0])) for k in col_keys if order[k] is not None}
    cols.sort(key=lambda c: tuple(rank[k][v] if k in rank else fam[k].index(v) for k, v in zip(col_keys, c)))
    usual = Counter(summary["n_seeds"]).most_common(1)[0][0]
    head = [label(row_key, "x").split(" = ")[0].split(" high")[0]] + [
        ", ".join(label(k, v) for k, v in zip(col_keys, c)) or "mean (std)" for c in cols]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for rv in fam[row_key]:
        cells = [label(row_key, rv).removeprefix(head[0]).strip().removeprefix("= ")]
        for c in cols:
            sel = summary[summary[row_key] == rv]
            for k, v in zip(col_keys, c):  # one swept key only: no column keys, one column
                sel = sel[sel[k] == v]
            if not len(sel) or int(sel["n_seeds"].iloc[0]) == 0:
                cells.append("—")
                continue
            r = sel.iloc[0]
            n = int(r["n_seeds"])
            extra = f" [{n} seed{'s' if n > 1 else ''}]" if n != usual else ""
            cells.append(f"{r['mean']:.1f} ({r['std']:.1f}){extra}")
        print("| " + " | ".join(cells) + " |")
    stale = tidy.groupby([row_key, *col_keys])[["stale_actions", "length"]].sum()
    share = (stale["stale_actions"] / stale["length"]).groupby(level=0, sort=False).mean()
    print()
    print("Stale steps (share of all environment steps, mean over columns): " +
          ", ".join(f"{label(row_key, v)}: {share.get(v, float('nan')):.0%}" for v in fam[row_key]))
    done = {tuple(r) for r in tidy[[*keys, "seed"]].drop_duplicates().itertuples(index=False)}
    wall = 0.0
    for folder, meta in zip(folders, metas):
        shared = {k: canonical_value(shared_value(folder, meta, k)) for k in keys if k not in meta["grid"]}
        for run in meta["runs"]:
            point = tuple(canonical_value(run["values"][k]) if k in run["values"] else shared[k] for k in keys)
            path = folder / run["folder"] / "summary.json"
            if (*point, run["seed"]) in done and path.exists():
                wall += json.loads(path.read_text()).get("wall_s", 0.0)
    print(f"Runs finished: {len(tidy.groupby([*keys, 'seed']))}; CPU time: {wall / 3600:.2f} h "
          f"(sum of the runs' wall times, one core each)")


if __name__ == "__main__":
    main()
