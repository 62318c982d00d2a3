"""Print a sweep's summary as a Markdown table, for a study's page.

    python scripts/study_table.py SWEEP_DIR [--rows KEY] [--cols KEY[,KEY]]

One row per value of ``--rows`` (default: the first swept key), one column per combination of the
``--cols`` keys (default: the others); each cell is the published metric's mean (population std)
across seeds, with the number of seeds when it differs from the most common one. Below the table:
the share of stale environment steps per column, and the CPU time the runs took (the sum of their
wall times, each run on one core).
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

from asyncneurons.plots import value_text  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep")
    ap.add_argument("--rows", default=None)
    ap.add_argument("--cols", default=None)
    args = ap.parse_args(argv)
    folder = Path(args.sweep)
    meta = json.loads((folder / "sweep.json").read_text())
    keys = list(meta["grid"])
    summary = pd.read_csv(folder / "summary.csv")
    tidy = pd.read_csv(folder / "sweep.csv")
    row_key = args.rows or keys[0]
    col_keys = args.cols.split(",") if args.cols else [k for k in keys if k != row_key]
    fam = {k: list(dict.fromkeys(summary[k])) for k in keys}

    def label(k, v):
        return value_text(k, v, fam[k])

    cols = list(dict.fromkeys(tuple(r) for r in summary[col_keys].itertuples(index=False)))
    usual = Counter(summary["n_seeds"]).most_common(1)[0][0]
    head = [label(row_key, "x").split(" = ")[0].split(" high")[0]] + [
        ", ".join(label(k, v) for k, v in zip(col_keys, c)) for c in cols]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for rv in fam[row_key]:
        cells = [label(row_key, rv).removeprefix(head[0]).strip()]
        for c in cols:
            sel = summary[(summary[row_key] == rv) & (summary[col_keys].apply(tuple, axis=1) == c)]
            if not len(sel) or int(sel["n_seeds"].iloc[0]) == 0:
                cells.append("—")
                continue
            r = sel.iloc[0]
            extra = f" [{int(r['n_seeds'])} seeds]" if int(r["n_seeds"]) != usual else ""
            cells.append(f"{r['mean']:.1f} ({r['std']:.1f}){extra}")
        print("| " + " | ".join(cells) + " |")
    stale = tidy.groupby([row_key, *col_keys])[["stale_actions", "length"]].sum()
    share = (stale["stale_actions"] / stale["length"]).groupby(level=0, sort=False).mean()
    print()
    print("Stale steps (share of all environment steps, mean over columns): " +
          ", ".join(f"{label(row_key, v)}: {share.get(v, float('nan')):.0%}" for v in fam[row_key]))
    wall = 0.0
    for run in meta["runs"]:
        path = folder / run["folder"] / "summary.json"
        if path.exists():
            wall += json.loads(path.read_text()).get("wall_s", 0.0)
    print(f"Runs finished: {len(tidy.groupby([*keys, 'seed']))}; CPU time: {wall / 3600:.2f} h "
          f"(sum of the runs' wall times, one core each)")


if __name__ == "__main__":
    main()
