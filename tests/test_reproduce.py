"""The reproduction script: runs a published set (tiny here), resumes, writes the report; runs
only on the pinned stack; a short run is not finished; published cells are tested."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg

from asyncneurons.study import provenance

ROOT = Path(__file__).resolve().parents[1]


def _reproduce(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce.py"), *args], capture_output=True,
                          text=True, timeout=600)


def test_a_tiny_reproduction_writes_the_table_and_the_curves(tmp_path):
    out, docs = tmp_path / "runs", tmp_path / "docs"
    args = ["weight-max", "--only", "cartpole,acrobot", "--runs", "3", "--episodes", "4", "--workers", "2",
            "--out", str(out), "--docs", str(docs)]
    r = _reproduce(*args)
    assert r.returncode == 0, r.stderr
    report = (docs / "weight-max.md").read_text()
    assert "| CartPole-v1 | 390.38 (43.25) |" in report and "| 3/3 |" in report
    assert "| LunarLander | 111.23 (16.58) | not run yet | | | | 0/3 |" in report
    cartpole = next(line for line in report.splitlines() if line.startswith("| CartPole-v1 |"))
    assert "significantly below" in cartpole  # four episodes of random play against 390
    assert f"Stack: {provenance.describe(provenance.stack())}." in report
    result = json.loads((out / "weight-max" / "cartpole" / "run-0.json").read_text())
    assert result["episodes"] == 4 and result["stack"] == provenance.stack()
    image = mpimg.imread(docs / "figures" / "weight-max-cartpole.png")
    assert image.shape[0] > 300 and image.shape[1] > 500
    first = (docs / "weight-max.md").read_text()
    again = _reproduce(*args)  # everything is finished: nothing runs again, the same report
    assert again.returncode == 0 and "0 runs to do" in again.stdout
    assert (docs / "weight-max.md").read_text() == first


def test_a_run_short_of_its_episodes_is_not_taken_as_finished(tmp_path):
    out, docs = tmp_path / "runs", tmp_path / "docs"
    args = ["weight-max", "--only", "acrobot", "--runs", "2", "--episodes", "3", "--workers", "1",
            "--out", str(out), "--docs", str(docs)]
    assert _reproduce(*args).returncode == 0
    folder = out / "weight-max" / "acrobot"
    csv_lines = (folder / "episodes" / "run-1.csv").read_text().splitlines()
    (folder / "episodes" / "run-1.csv").write_text("\n".join(csv_lines[:-1]) + "\n")  # one episode lost
    meta = json.loads((folder / "run-1.json").read_text())
    (folder / "run-1.json").write_text(json.dumps({**meta, "episodes": 2}))
    ledger = docs / "weight-max-runs.jsonl"  # as if the job had been killed before it was recorded
    ledger.write_text("".join(line + "\n" for line in ledger.read_text().splitlines() if '"run":1,' not in line))
    report = _reproduce(*args[:-4], "--docs", str(docs), "--out", str(out), "--report-only").stdout
    assert "report:" in report and "| 1/2 |" in (docs / "weight-max.md").read_text()
    again = _reproduce(*args)
    assert "fewer than the 3 planned episodes" in again.stdout and "1 runs to do" in again.stdout
    assert json.loads((folder / "run-1.json").read_text())["episodes"] == 3
    assert "| 2/2 |" in (docs / "weight-max.md").read_text()


def test_finished_runs_live_in_the_ledger_when_their_folders_are_gone(tmp_path):
    out, docs = tmp_path / "runs", tmp_path / "docs"
    args = ["weight-max", "--only", "acrobot", "--runs", "2", "--episodes", "3", "--workers", "1",
            "--out", str(out), "--docs", str(docs)]
    assert _reproduce(*args).returncode == 0
    first = (docs / "weight-max.md").read_text()
    records = [json.loads(line) for line in (docs / "weight-max-runs.jsonl").read_text().splitlines()]
    assert [(r["row"], r["run"], r["episodes"]) for r in records] == [("acrobot", 0, 3), ("acrobot", 1, 3)]
    assert all(r["stack"] == provenance.stack() and len(r["curve"]["value"]) == 3 for r in records)
    shutil.rmtree(out)  # another machine: only the committed ledger and page are there
    again = _reproduce(*args)
    assert again.returncode == 0 and "0 runs to do" in again.stdout
    assert (docs / "weight-max.md").read_text() == first
    changed = _reproduce(*args[:6], "4", *args[7:])  # another scenario (4 episodes): its runs are not in the ledger
    assert "2 runs to do" in changed.stdout and "| 2/2 |" in (docs / "weight-max.md").read_text()


def test_a_malformed_ledger_names_its_line(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "weight-max-runs.jsonl").write_text('{"row": "acrobot", "run": 0}\nnot json\n')
    r = _reproduce("weight-max", "--only", "acrobot", "--runs", "1", "--episodes", "2", "--out",
                   str(tmp_path / "runs"), "--docs", str(docs))
    assert r.returncode != 0 and "weight-max-runs.jsonl:2: not a record of a finished run" in r.stderr
    assert "Traceback" not in r.stderr


def test_another_stack_is_refused_unless_asked(tmp_path):
    pins = tmp_path / "pins.txt"
    pins.write_text("# a stack from elsewhere\nnumpy==0.0.1\n")
    args = ["weight-max", "--only", "acrobot", "--runs", "1", "--episodes", "2", "--out", str(tmp_path / "runs"),
            "--docs", str(tmp_path / "docs"), "--constraints", str(pins)]
    r = _reproduce(*args)
    assert r.returncode == 2 and "numpy 0.0.1 pinned" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs" / "weight-max" / "acrobot" / "run-0.json").exists()
    assert _reproduce(*args, "--any-stack").returncode == 0


def test_the_committed_constraints_pin_the_stack_the_tests_run_on():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import reproduce
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    pins = reproduce.read_constraints(ROOT / "constraints" / "reproduce.txt")
    assert {"numpy", "gymnasium", "simpy", "Box2D", "networkx", "numba"} <= set(pins)
    assert reproduce.stack_differences(pins) == []


def test_a_page_is_restated_from_the_per_run_averages_it_records(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "baselines.json").write_bytes((ROOT / "docs" / "results" / "baselines.json").read_bytes())
    page = (ROOT / "docs" / "results" / "weight-max.md").read_text()
    (docs / "weight-max.md").write_text(page)
    assert _reproduce("weight-max", "--restate", "--docs", str(docs)).returncode == 0
    assert (docs / "weight-max.md").read_text() == page  # the committed page is what the generator writes
    page = (docs / "weight-max.md").read_text()
    assert "| Multiplexer (20-bit) | 0.81 (0.01) | 0.797 (0.008) | [0.791, 0.803] | -3.09 (17.0), 0.007 | " \
           "**significantly below** |" in page


def test_the_map_page_is_what_its_ledger_and_its_earlier_rows_give(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("baselines.json", "map-prop-runs.jsonl", "map-prop.md"):
        (docs / name).write_bytes((ROOT / "docs" / "results" / name).read_bytes())
    r = _reproduce("map-prop", "--report-only", "--out", str(tmp_path / "no-runs"), "--docs", str(docs))
    assert r.returncode == 0, r.stderr
    assert (docs / "map-prop.md").read_text() == (ROOT / "docs" / "results" / "map-prop.md").read_text()


def test_tuned_baselines_stand_beside_the_rule_with_a_welch_test(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "weight-max.md").write_text((ROOT / "docs" / "results" / "weight-max.md").read_text())
    ledger = {"global-reinforce-cartpole": {
        "grid/actor-x4-critic-x1": {"overrides": ["learning.lr=[1]", "experiment.episodes=400"], "status": "complete"},
        "grid/actor-x1-critic-x1": {"overrides": ["learning.lr=[2]", "experiment.episodes=400"], "status": "complete"},
        "final": {"overrides": ["learning.lr=[1]"], "status": "complete",
                  "run_averages": [300.0, 310.0, 290.0, 305.0, 295.0, 300.0, 310.0, 290.0, 305.0, 295.0]}},
        "ste-backprop-cartpole": {"final": {"overrides": [], "status": "incomplete", "run_averages": [1.0]}}}
    (docs / "baselines.json").write_text(json.dumps(ledger))
    assert _reproduce("weight-max", "--restate", "--docs", str(docs)).returncode == 0
    page = (docs / "weight-max.md").read_text()
    tuned = page.split("## Tuned baselines")[1].split("## Learning curves")[0]
    rows = [line for line in tuned.splitlines() if line.startswith("| CartPole")]
    # the rule's CartPole row (378.57 (25.84), ten runs; sample std 27.24) against a baseline of 300
    # (7.07; sample std 7.45, half-width 2.262 · 7.45 / √10 = 5.33): t = 78.57 / √(27.24² / 10 +
    # 7.45² / 10) = 8.80 on 10.3 degrees of freedom, clearly above; the unfinished one is not listed
    assert rows == ["| CartPole-v1, Global REINFORCE baseline | actor × 4, critic × 1 | 300.00 (7.07) | "
                    "[294.67, 305.33] | 378.57 (25.84) | 8.80 (10.3), < 0.001 | **significantly above** |"]


KEPT = "Rows not yet run on the stack above are kept as this page recorded them before: "


def _page_keeping(label: str) -> str:
    """The committed MAP page with the row ``label`` named among those it keeps from before its
    ledger (the rows still to run on the pinned stack change as their runs come in)."""
    page = (ROOT / "docs" / "results" / "map-prop.md").read_text()
    if KEPT in page:
        return page.replace(KEPT, KEPT + label + "; ")
    stack = next(p for p in page.split("\n\n") if p.startswith("Stack: "))
    return page.replace(stack, f"{stack}\n\n{KEPT}{label}. Their run folders are not in the repository.")


def test_rows_not_yet_in_the_ledger_keep_what_the_page_recorded(tmp_path):
    # the committed page and ledger, less MountainCarContinuous's runs and with that row named as one
    # the page recorded before its ledger: it must stay as the page has it while Acrobot runs again
    out, docs = tmp_path / "runs", tmp_path / "docs"
    docs.mkdir()
    before = _page_keeping("MountainCarContinuous-v0")
    (docs / "map-prop.md").write_text(before)
    lines = (ROOT / "docs" / "results" / "map-prop-runs.jsonl").read_text().splitlines()
    (docs / "map-prop-runs.jsonl").write_text(
        "".join(line + "\n" for line in lines if json.loads(line)["row"] != "mountaincar-continuous"))
    r = _reproduce("map-prop", "--only", "acrobot", "--runs", "10", "--episodes", "2", "--workers", "1",
                   "--out", str(out), "--docs", str(docs))
    assert r.returncode == 0, r.stderr
    page = (docs / "map-prop.md").read_text()
    acrobot = next(line for line in page.splitlines() if line.startswith("| Acrobot-v1 |"))
    assert "| 10/10 |" in acrobot and "-101.44" not in acrobot  # two episodes of these runs, not the page's
    mountaincar = next(line for line in page.splitlines() if line.startswith("| MountainCarContinuous-v0 |"))
    assert mountaincar.startswith("| MountainCarContinuous-v0 | 39.45 (30.48) | 56.35 (11.08) |")  # as recorded
    assert "| consistent | 10/10 |" in mountaincar
    paragraph = next(p for p in page.split("\n\n") if p.startswith(KEPT))
    assert "MountainCarContinuous-v0" in paragraph.split(". ")[0]
    found = re.search(r"(\d+) run\(s\) made before the stack was recorded", before)
    runs_before = int(found.group(1)) if found else 0  # (none once every row is in the ledger)
    assert f"{runs_before + 10} run(s) made before the stack was recorded" in page  # ten more, MountainCar's


def test_a_row_half_run_again_keeps_the_pages_full_row_until_the_ledger_holds_it_all(tmp_path):
    out, docs = tmp_path / "runs", tmp_path / "docs"
    docs.mkdir()
    (docs / "map-prop.md").write_text(_page_keeping("CartPole-v1"))
    elsewhere = tmp_path / "elsewhere"
    assert _reproduce("map-prop", "--only", "cartpole", "--episodes", "2", "--workers", "1", "--runs", "3",
                      "--out", str(out), "--docs", str(elsewhere)).returncode == 0  # 3 of the 10 runs of a kept row
    (docs / "map-prop-runs.jsonl").write_bytes((elsewhere / "map-prop-runs.jsonl").read_bytes())
    report = _reproduce("map-prop", "--report-only", "--runs", "10", "--episodes", "2", "--out", str(out),
                        "--docs", str(docs))
    assert report.returncode == 0, report.stderr
    page = (docs / "map-prop.md").read_text()
    cartpole = next(line for line in page.splitlines() if line.startswith("| CartPole-v1 |"))
    assert "| 439.86 (40.79) |" in cartpole and "| 10/10 |" in cartpole  # the page's ten, not the ledger's three
