"""The baseline tuning script: its grid scales both ends of each schedule, and it chooses the
best point by the published metric, keeping the published rates on a tie and never a point that
diverged."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tune():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import tune_baselines
        yield tune_baselines
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def test_a_grid_point_scales_the_actor_and_the_critic_rates_at_both_ends(tune):
    from asyncneurons.scenario import load_scenario

    path = ROOT / "scenarios" / "paper" / "baselines" / "backprop-acrobot.toml"
    s = load_scenario(path)
    t = load_scenario(path, tune.point_overrides(s, 0.25, 4.0))
    assert t.learning.lr == pytest.approx([0.25 * x for x in s.learning.lr])
    assert t.learning.lr_end == pytest.approx([0.25 * x for x in s.learning.lr_end])
    assert t.learning.critic_lr == pytest.approx([4 * x for x in s.learning.critic_lr])
    assert t.learning.critic_lr_end == pytest.approx([4 * x for x in s.learning.critic_lr_end])


def _finished(folder: Path, mean, status="complete", episodes=200):
    folder.mkdir(parents=True)
    runs = [{"run": r, "episodes": episodes, "average_return": mean} for r in range(3)]
    (folder / "summary.json").write_text(json.dumps({"status": status, "mean": mean, "std": 0.0, "runs": runs,
                                                     "message": "a weight became non-finite"}))


def test_the_best_point_is_chosen_a_tie_keeps_the_published_rates_and_divergence_loses(tune, tmp_path):
    grid = tmp_path / "backprop-acrobot" / "grid"
    for actor in tune.SCALES:
        for critic in tune.SCALES:
            _finished(grid / tune._label(actor, critic), -150.0)
    assert tune.choose("backprop-acrobot", tmp_path) == (1.0, 1.0)
    (grid / tune._label(4.0, 0.25) / "summary.json").unlink()
    (grid / tune._label(4.0, 0.25)).rmdir()
    _finished(grid / tune._label(4.0, 0.25), 10.0, status="diverged")
    (grid / tune._label(0.25, 4.0) / "summary.json").write_text(json.dumps(
        {"status": "complete", "mean": -90.0, "std": 1.0, "runs": [{"run": r, "episodes": 200, "average_return": -90.0}
                                                                    for r in range(3)]}))
    assert tune.choose("backprop-acrobot", tmp_path) == (0.25, 4.0)


def test_a_point_short_of_its_episodes_is_not_finished(tune, tmp_path):
    _finished(tmp_path / "p", -100.0, episodes=150)
    assert tune._summary(tmp_path / "p", 3, 200) is None
    assert tune._summary(tmp_path / "p", 3, 150)["mean"] == -100.0


def test_the_report_reads_the_tables_cells_and_per_run_averages(tune):
    docs = ROOT / "docs" / "results"
    cell, label = tune._table_cell(docs, "map-prop", "backprop-cartpole")
    assert label == "CartPole-v1, backprop baseline" and cell is not None and "(" in cell
    runs = tune._page_runs(docs, "map-prop", "backprop-cartpole")
    assert len(runs) == 10 and float(cell.split(" ")[0]) == pytest.approx(sum(runs) / 10, abs=0.01)
    assert tune._task_key("ste-backprop-cartpole") == "cartpole"
    assert tune._task_key("backprop-mountaincar-continuous") == "mountaincar-continuous"
