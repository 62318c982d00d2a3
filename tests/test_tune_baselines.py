"""The baseline tuning script: its grid scales both ends of each schedule (the actor's alone
without a critic), it chooses the best point by the published metric, keeping the published rates
on a tie and never a point that diverged, and its ledger keeps every finished stage after its run
folder is gone."""

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
    from asyncneurons.model.scenario import load_scenario

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


def _folder_summary(folder: Path, averages, episodes, status="complete", wall=12.5):
    """A run folder as a finished stage leaves it: summary.json (with a stack) and cost.json."""
    folder.mkdir(parents=True)
    runs = [{"run": r, "episodes": episodes, "average_return": a} for r, a in enumerate(averages)]
    mean, std = sum(averages) / len(averages), 0.0
    (folder / "summary.json").write_text(json.dumps({"status": status, "mean": mean, "std": std, "runs": runs,
                                                     "stack": {"python": "3.11.7", "platform": "test"}}))
    (folder / "cost.json").write_text(json.dumps({"wall_s": wall}))
    return json.loads((folder / "summary.json").read_text())


def _record_grid(tune, name, out, ledger, means):
    """Every grid point of ``name`` finished with the given means, each recorded in the ledger."""
    from asyncneurons.model.scenario import load_scenario

    s = load_scenario(tune.scenario_path(name))
    short = tune.BASELINES[name][2]
    digest = tune.scenario_hash(tune.scenario_path(name))
    for (actor, critic), mean in zip(tune.grid_points(s), means):
        stage = f"grid/{tune._label(actor, critic)}"
        summary = _folder_summary(out / name / stage, [mean - 1, mean, mean + 1], short)
        tune.record(ledger, name, stage, tune.ledger_entry(summary, tune._tuning_overrides(s, actor, critic, short),
                                                           digest, 3, short, 12.5))
    return s


def test_a_finished_stage_outlives_its_run_folder_through_the_ledger(tune, tmp_path):
    import shutil

    name, out, docs = "backprop-acrobot", tmp_path / "runs", tmp_path / "docs"
    docs.mkdir()
    ledger = docs / tune.LEDGER
    s = _record_grid(tune, name, out, ledger, [-150.0] * 4 + [-120.0] + [-150.0] * 4)
    best = tune.grid_points(s)[4]
    assert tune.choose(name, out, ledger) == best
    final = _folder_summary(out / name / "final", [-100.0 + r for r in range(10)], s.experiment.episodes)
    tune.record(ledger, name, "final", tune.ledger_entry(final, tune.point_overrides(s, *best),
                                                         tune.scenario_hash(tune.scenario_path(name)), 10,
                                                         s.experiment.episodes, 300.0))
    before = tune.report(out, docs).read_text()
    text = ledger.read_text()
    assert json.loads(text)[name]["final"]["run_averages"] == [-100.0 + r for r in range(10)]
    assert text == json.dumps(json.loads(text), indent=1, sort_keys=True) + "\n"

    shutil.rmtree(out)
    assert tune.choose(name, out, ledger) == best
    after = tune.report(out, docs).read_text()
    assert "9 of them are read from the ledger" in after and "(read from the ledger)" in after
    assert "**10 runs at the chosen rates: -95.50 (2.87)**" in after and "**10 runs at the chosen rates: -95.50" in before
    table = lambda page: [line for line in page.splitlines() if line.startswith("| ")]  # noqa: E731
    assert table(after) == table(before)
    assert ledger.read_text() == text  # reading changes nothing


def test_recording_the_same_stage_twice_writes_the_same_bytes(tune, tmp_path):
    ledger = tmp_path / "ledger.json"
    entry = {"b": 1, "a": [2, 3]}
    tune.record(ledger, "x", "grid/actor-x1", entry)
    tune.record(ledger, "w", "final", entry)
    first = ledger.read_bytes()
    tune.write_ledger(ledger, tune.read_ledger(ledger))
    assert ledger.read_bytes() == first and first.index(b'"w"') < first.index(b'"x"')
    assert not (tmp_path / "ledger.json.tmp").exists()


def test_a_ledger_entry_of_a_changed_scenario_is_stale_and_ignored(tune, tmp_path):
    import shutil

    name, out, docs = "backprop-acrobot", tmp_path / "runs", tmp_path / "docs"
    docs.mkdir()
    ledger = docs / tune.LEDGER
    _record_grid(tune, name, out, ledger, [-150.0] * 9)
    shutil.rmtree(out)
    entries = tune.read_ledger(ledger)
    entries[name]["grid/actor-x4-critic-x4"]["scenario_hash"] = "0" * 16
    entries[name]["grid/actor-x4-critic-x0.25"]["episodes"] = 7
    tune.write_ledger(ledger, entries)
    assert (4.0, 4.0) not in tune.grid_results(name, out, ledger)
    assert len(tune.grid_results(name, out, ledger)) == 7
    assert tune.stale_stages(ledger, name, out) == [
        ("grid/actor-x4-critic-x0.25", "its overrides, runs or episodes are not this script's"),
        ("grid/actor-x4-critic-x4", "the scenario has changed since")]
    page = tune.report(out, docs).read_text()
    assert "Ledger entries ignored as stale: grid/actor-x4-critic-x0.25" in page
    assert "7 of 9 grid points finished" in page and "no choice yet" in page


def test_a_baseline_without_a_critic_tunes_the_actor_alone_on_three_points(tune, tmp_path):
    from asyncneurons.model.scenario import load_scenario

    path = tune.scenario_path("global-reinforce-multiplexer")
    s = load_scenario(path)
    assert s.learning.critic == "none"
    assert tune.grid_points(s) == [(0.25, None), (1.0, None), (4.0, None)]
    over = tune.point_overrides(s, 4.0, None)
    assert not any("critic" in o for o in over)
    assert load_scenario(path, over).learning.lr == pytest.approx([4 * x for x in s.learning.lr])
    with pytest.raises(ValueError, match="no critic scale"):
        tune.point_overrides(s, 1.0, 1.0)
    with pytest.raises(ValueError, match="needs a critic scale"):
        tune.point_overrides(load_scenario(tune.scenario_path("backprop-acrobot")), 1.0, None)

    name, out, docs = "ste-backprop-multiplexer", tmp_path / "runs", tmp_path / "docs"
    docs.mkdir()
    _record_grid(tune, name, out, docs / tune.LEDGER, [0.6, 0.6, 0.7])
    assert tune.choose(name, out, docs / tune.LEDGER) == (4.0, None)
    page = tune.report(out, docs).read_text()
    assert "| 4 | — | 0.700 (0.000) | 12 s |" in page and "3 of 3 grid points finished" in page
    assert "Chosen: actor × 4. The actor scale lies at the edge" in page


def test_a_tie_without_a_critic_keeps_the_published_rates(tune, tmp_path):
    _record_grid(tune, "global-reinforce-multiplexer", tmp_path, None, [0.5, 0.5, 0.5])
    assert tune.choose("global-reinforce-multiplexer", tmp_path) == (1.0, None)


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "scenarios" / "paper" / "baselines").glob("*.toml")))
def test_the_published_point_is_the_scenario_as_it_stands(tune, name):
    """Scaling every rate by 1 leaves each bit of the resolved scenario as it is, so the final runs
    at the published rates are the runs the runner and reproduce.py make of the scenario alone."""
    from asyncneurons.model.scenario import load_scenario, to_toml

    s = load_scenario(tune.scenario_path(name))
    point = (1.0, 1.0 if tune.has_critic(s) else None)
    scaled = load_scenario(tune.scenario_path(name), tune.point_overrides(s, *point))
    assert to_toml(scaled) == to_toml(s)
    assert scaled.experiment.seed == 0 and scaled.experiment.runs == 10


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "scenarios" / "paper" / "baselines").glob("*.toml")))
def test_every_baseline_scenario_validates_and_is_tuned(tune, name):
    from click.testing import CliRunner

    from asyncneurons.cli import main

    result = CliRunner().invoke(main, ["validate", str(tune.scenario_path(name))])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"ok: {name}:")
    assert name in tune.BASELINES


def test_the_weight_max_baselines_are_derived_from_the_rules_scenarios(tune):
    from asyncneurons.model.scenario import load_scenario

    for name, (table, _, short) in tune.BASELINES.items():
        s = load_scenario(tune.scenario_path(name))
        assert 0.35 * s.experiment.episodes <= short <= 0.45 * s.experiment.episodes
        if table != "weight-max":
            continue
        rule = load_scenario(ROOT / "scenarios" / "paper" / "weight-max" / f"{tune._task_key(name)}.toml")
        assert s.learning.rule in ("global_reinforce", "ste_backprop") and s.learning.lambda_ == 0.0
        for key in ("lr", "lr_end", "critic", "critic_lr", "critic_lr_end"):
            assert getattr(s.learning, key) == getattr(rule.learning, key), (name, key)
        assert s.network == rule.network and s.env == rule.env
        assert s.experiment.episodes == rule.experiment.episodes


def test_the_report_records_finished_folders_the_ledger_lacks(tune, tmp_path):
    name, out, docs = "global-reinforce-multiplexer", tmp_path / "runs", tmp_path / "docs"
    docs.mkdir()
    _record_grid(tune, name, out, None, [0.5, 0.6, 0.55])
    assert not (docs / tune.LEDGER).exists()
    tune.main(["--report-only", "--out", str(out), "--docs", str(docs)])
    entries = tune.read_ledger(docs / tune.LEDGER)[name]
    assert sorted(entries) == ["grid/actor-x0.25", "grid/actor-x1", "grid/actor-x4"]
    assert entries["grid/actor-x1"]["run_averages"] == pytest.approx([-0.4, 0.6, 1.6])
    assert entries["grid/actor-x1"]["stack"] == {"python": "3.11.7", "platform": "test"}
    assert entries["grid/actor-x1"]["wall_s"] == 12.5 and entries["grid/actor-x1"]["status"] == "complete"
    assert "Chosen: actor × 1." in (docs / "baselines.md").read_text()


def test_the_committed_ledger_is_as_the_script_writes_it(tune, tmp_path):
    committed = ROOT / "docs" / "results" / tune.LEDGER
    copy = tmp_path / tune.LEDGER
    tune.write_ledger(copy, tune.read_ledger(committed))
    assert copy.read_text() == committed.read_text()


def test_a_damaged_ledger_is_named_in_one_line(tune, tmp_path):
    ledger = tmp_path / "baselines.json"
    ledger.write_text('{"backprop-acrobot": ')
    with pytest.raises(SystemExit, match=r"baselines.json: not a ledger of baseline stages"):
        tune.read_ledger(ledger)
