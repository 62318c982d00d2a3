"""The MAP delay line's ledger (scripts/map_delay_ledger.py): finished runs recorded once, in order."""

import csv
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ledger_script():
    scripts = str(ROOT / "scripts")
    sys.path.insert(0, scripts)
    try:
        import map_delay_ledger  # (which puts scripts/ on the path again, for reproduce.py)
    finally:
        sys.path[:] = [p for p in sys.path if p != scripts]
    return map_delay_ledger


def _point(out: Path, d: int, episodes: dict) -> None:
    """A delay point's folder: the study's scenario at 4 episodes and 2 runs, and the episodes
    each run has written so far (``{run: returns}``)."""
    folder = out / f"d-{d}"
    (folder / "episodes").mkdir(parents=True)
    text = (ROOT / "scenarios/studies/map-delays.toml").read_text()
    text = text.replace("runs = 1", "runs = 2").replace("episodes = 1000", "episodes = 4")
    (folder / "scenario.toml").write_text(text)
    for run, returns in episodes.items():
        with open(folder / "episodes" / f"run-{run}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["run", "episode", "return", "length", "sim_time_ms", "wall_s", "stale_actions"])
            for k, r in enumerate(returns):
                w.writerow([run, k, r, int(r), 0.0, 0.1, 0])


def test_only_runs_with_every_planned_episode_are_recorded(tmp_path, ledger_script):
    _point(tmp_path / "runs", 0, {0: [10.0, 20.0, 30.0, 40.0], 1: [500.0, 500.0]})
    _point(tmp_path / "runs", 5, {0: [9.0, 11.0, 13.0, 15.0]})
    ledger = tmp_path / "ledger.jsonl"
    book = ledger_script.sync(tmp_path / "runs", ledger)
    assert sorted(book) == [("d-0", 0), ("d-5", 0)]  # run 1 of d = 0 has 2 of its 4 episodes
    records = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [(r["row"], r["delay_ms"], r["run"], r["episodes"]) for r in records] == [("d-0", 0, 0, 4), ("d-5", 5, 0, 4)]
    assert records[0]["average_return"] == 25.0 and records[0]["tail_return"] == 40.0
    assert records[1]["average_return"] == 12.0
    assert records[0]["recorded_with"]["numpy"] and "stack" not in records[0]  # the folder has no summary yet
    assert ledger_script.summary(book) == ["d =  0 ms: 1 run(s) 25.00; mean 25.00 (std 0.00)",
                                           "d =  5 ms: 1 run(s) 12.00; mean 12.00 (std 0.00)"]


def test_a_recorded_run_outlives_its_folder_and_the_ledger_is_rewritten_to_the_same_bytes(tmp_path, ledger_script):
    out, ledger = tmp_path / "runs", tmp_path / "ledger.jsonl"
    _point(out, 2, {0: [1.0, 2.0, 3.0, 4.0], 1: [5.0, 6.0, 7.0, 8.0]})
    ledger_script.sync(out, ledger)
    first = ledger.read_bytes()
    (out / "d-2" / "episodes" / "run-0.csv").unlink()  # the folder lost (a replaced machine)
    book = ledger_script.sync(out, ledger)
    assert ledger.read_bytes() == first
    assert [book[("d-2", r)]["average_return"] for r in (0, 1)] == [2.5, 6.5]


def test_the_other_rules_points_are_read_from_the_study_page(ledger_script):
    lines = ledger_script.page_lines()
    assert lines["exact backprop, λ = 0.95"] == ([0.0, 2.0, 5.0, 10.0, 20.0], [444.3, 444.3, 456.2, 450.4, 442.2],
                                                 [15.5, 15.5, 10.8, 13.6, 17.3])
    xs, means, stds = lines["Weight Max, λ = 0.8"]
    assert xs == [0.0, 2.0, 5.0, 10.0, 20.0] and means[0] == 306.8 and stds[0] == 12.1


def test_a_page_without_its_table_is_named(tmp_path, ledger_script):
    page = tmp_path / "page.md"
    page.write_text("# a study\n\nno tables here\n")
    with pytest.raises(SystemExit, match="synapses uniform"):
        ledger_script.page_lines(page)


def test_the_line_is_drawn_from_the_ledger_alone(tmp_path, ledger_script, monkeypatch):
    """Complete points as mean ± std, a point under way as its runs with how many there are; the
    learning curves of the complete points. Both images open, at the package's width."""
    import matplotlib.image

    from asyncneurons.figures.figure_style import DPI, WIDTH
    out, ledger = tmp_path / "runs", tmp_path / "ledger.jsonl"
    _point(out, 0, {0: [10.0, 20.0, 30.0, 40.0], 1: [500.0, 400.0, 450.0, 480.0]})
    _point(out, 5, {0: [9.0, 11.0, 13.0, 15.0]})
    book = ledger_script.sync(out, ledger)
    monkeypatch.setattr(ledger_script, "RUNS_PER_POINT", 2)  # d = 0 complete, d = 5 under way
    paths = ledger_script.draw(book, tmp_path / "figures")
    assert [p.name for p in paths] == ["delay-tolerance-map.png", "delay-tolerance-map-curves.png"]
    for p in paths:
        image = matplotlib.image.imread(p)
        assert image.shape[1] == round(WIDTH * DPI) and image[..., :3].std() > 0.05
    assert ledger_script.draw({}, tmp_path / "none") == []


def test_figures_asked_into_a_file_stop_with_one_line(tmp_path, ledger_script, capsys):
    not_a_folder = tmp_path / "figures"
    not_a_folder.write_text("a file")
    with pytest.raises(SystemExit, match="--figures .*cannot write the figures there"):
        ledger_script.main([str(tmp_path / "runs"), "--ledger", str(tmp_path / "ledger.jsonl"),
                            "--figures", str(not_a_folder)])
    assert not_a_folder.read_text() == "a file"
