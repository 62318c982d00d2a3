"""Figures: the plot command writes PNG and SVG files of the expected size."""

import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

import pandas as pd

from asyncneurons.errors import UserInputError
from asyncneurons.figures.plots import DPI, WIDTH, numeric_axis, read_sweeps, value_text
from asyncneurons.study.runner import run_experiment
from asyncneurons.model.scenario import parse_scenario
from asyncneurons.study.sweep import plan, run_sweep

SMALL = """
[experiment]
name = "small"
episodes = 6

[env]
pacing = "clock"

[network]
hidden = [8]

[learning]
lambda = 0.8
lr = [0.01, 0.001]
"""


def cli(*args):
    return subprocess.run([sys.executable, "-m", "asyncneurons.cli", *args], check=False,
                          capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    (root / "small.toml").write_text(SMALL)
    sweep = plan(root / "small.toml", ["learning.rule=global_reinforce,weight_max",
                                       "timing.reward_delay=0,5"], 2,
                 ["record.events=true", 'timing.synapse_delay={dist="uniform",low=0,high=3}'],
                 root / "sweep")
    run_sweep(sweep, workers=1, progress=False, say=lambda text: None)
    return root / "sweep"


@pytest.fixture(scope="module")
def later_sweep_dir(tmp_path_factory, sweep_dir):
    """A second sweep of the same scenario: Weight Max at a reward delay the first one lacks."""
    root = sweep_dir.parent
    sweep = plan(root / "small.toml", ["timing.reward_delay=10"], 1,
                 ["learning.rule=weight_max", 'timing.synapse_delay={dist="uniform",low=0.0,high=3.0}'],
                 root / "later")
    run_sweep(sweep, workers=1, progress=False, say=lambda text: None)
    return root / "later"


def test_several_sweeps_are_read_as_one(sweep_dir, later_sweep_dir):
    """Every row stands on every swept key: the later sweep did not sweep the rule, so its rows
    carry the rule all its runs share; values written differently (0 and 0.0) compare equal."""
    _, keys, tidy, summary = read_sweeps([sweep_dir, later_sweep_dir])
    assert keys == ["learning.rule", "timing.reward_delay"]
    rows = {(r["learning.rule"], r["timing.reward_delay"]): r["n_seeds"] for r in summary.to_dict("records")}
    assert rows == {("global_reinforce", 0.0): 2, ("global_reinforce", 5.0): 2, ("weight_max", 0.0): 2,
                    ("weight_max", 5.0): 2, ("weight_max", 10.0): 1}
    later = pd.read_csv(later_sweep_dir / "sweep.csv")
    merged = tidy[tidy["timing.reward_delay"] == 10.0]
    assert merged["return"].tolist() == later["return"].tolist()
    assert set(merged["learning.rule"]) == {"weight_max"}

    _, _, _, kept = read_sweeps([sweep_dir, later_sweep_dir], ["learning.rule=weight_max", "timing.reward_delay=10"])
    assert len(kept) == 1 and kept["n_seeds"].tolist() == [1]
    _, _, _, kept = read_sweeps([sweep_dir, later_sweep_dir], ["timing.reward_delay=0,10.0"])
    assert sorted(kept["timing.reward_delay"]) == [0.0, 0.0, 10.0]


def test_a_point_in_two_sweeps_or_a_where_that_matches_nothing_is_an_error(sweep_dir, tmp_path):
    with pytest.raises(UserInputError, match="learning.rule=global_reinforce, timing.reward_delay=0 is in"):
        read_sweeps([sweep_dir, sweep_dir])
    r = cli("plot", str(sweep_dir), "--where", "timing.reward_delay=7", "--out", str(tmp_path))
    assert r.returncode == 2 and "no finished point there; timing.reward_delay takes 0, 5" in r.stderr
    r = cli("plot", str(sweep_dir), str(sweep_dir))
    assert r.returncode == 2 and "--out" in r.stderr


def test_the_plot_of_several_sweeps_draws_their_points_on_one_axis(sweep_dir, later_sweep_dir, tmp_path):
    r = cli("plot", str(sweep_dir), str(later_sweep_dir), "--out", str(tmp_path),
            "--x", "timing.reward_delay", "--lines", "learning.rule")
    assert r.returncode == 0, r.stderr
    check(tmp_path / "tolerance-timing.reward_delay.png", 2.4 + 0.55)
    check(tmp_path / "learning-curves.png", 2.3 + 0.55)  # reward delays 0, 5, 10: one row of three panels
    svg = (tmp_path / "learning-curves.svg").read_text()
    assert svg.index("reward delay = 0 ms") < svg.index("reward delay = 5 ms") < svg.index("reward delay = 10 ms")


def test_a_study_table_joins_the_point_another_sweep_holds(sweep_dir, later_sweep_dir):
    """scripts/study_table.py: one row per rule, one column per reward delay in increasing order,
    the later sweep's point in its place, with its seed count."""
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(root / "scripts" / "study_table.py"), str(sweep_dir),
                        str(later_sweep_dir), "--rows", "learning.rule", "--where", "learning.rule=weight_max"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "| rule | reward delay = 0 ms | reward delay = 5 ms | reward delay = 10 ms |"
    summary = read_sweeps([sweep_dir, later_sweep_dir])[3].set_index("timing.reward_delay")
    cells = lines[2].strip("| ").split(" | ")
    assert cells[0] == "weight_max" and cells[3].endswith("[1 seed]")
    for cell, delay in zip(cells[1:], (0.0, 5.0, 10.0)):
        row = summary[summary["learning.rule"] == "weight_max"].loc[delay]
        assert cell.startswith(f"{row['mean']:.1f} ({row['std']:.1f})")
    assert "Runs finished: 5;" in r.stdout
    one = subprocess.run([sys.executable, str(root / "scripts" / "study_table.py"), str(later_sweep_dir)],
                         capture_output=True, text=True, timeout=300, check=False)  # one swept key: one column
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines()[0] == "| reward delay | mean (std) |"
    assert one.stdout.splitlines()[2].startswith("| 10 ms | ")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    import tomllib

    out = tmp_path_factory.mktemp("plots") / "run"
    s = parse_scenario(tomllib.loads(SMALL), ["experiment.runs=2", "record.events=true",
                                              "timing.synapse_delay=2", "timing.reward_delay=5",
                                              "learning.rule=weight_max"])
    run_experiment(s, out)
    return out


def check(path, height=None):
    assert path.stat().st_size > 1000
    image = matplotlib.image.imread(path)
    assert image.shape[1] == round(WIDTH * DPI)
    if height is not None:
        assert image.shape[0] == round(height * DPI)
    svg = path.with_suffix(".svg")
    assert svg.stat().st_size > 1000 and "<svg" in svg.read_text()[:2000]


def test_plot_of_a_sweep_writes_curves_tolerance_and_raster(sweep_dir, tmp_path):
    r = cli("plot", str(sweep_dir), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"{n}.{e}" for n in ("learning-curves", "raster",
                                                "tolerance-timing.reward_delay")
                           for e in ("png", "svg"))
    check(tmp_path / "learning-curves.png", 2.3 + 0.55)  # 2 panels in one row
    check(tmp_path / "tolerance-timing.reward_delay.png", 2.4 + 0.55)
    check(tmp_path / "raster.png")


def test_lines_may_combine_two_swept_keys(sweep_dir, tmp_path):
    """``--lines a,b``: one line per combination, everything in one panel."""
    r = cli("plot", str(sweep_dir), "--out", str(tmp_path), "--x", "timing.reward_delay",
            "--lines", "learning.rule,timing.reward_delay")
    assert r.returncode == 0, r.stderr
    check(tmp_path / "tolerance-timing.reward_delay.png", 2.4 + 0.55)  # one panel
    svg = (tmp_path / "tolerance-timing.reward_delay.svg").read_text()
    assert "rule = weight_max, reward delay = 5 ms" in svg
    r = cli("plot", str(sweep_dir), "--out", str(tmp_path), "--lines", "learning.rule,env.period")
    assert r.returncode == 2 and "--lines env.period: not a swept key" in r.stderr


def test_plot_of_a_run_folder_writes_its_curves_and_raster(run_dir):
    r = cli("plot", str(run_dir), "--window", "10,150")
    assert r.returncode == 0, r.stderr
    check(run_dir / "figures" / "learning-curves.png", 2.3 + 0.55)
    check(run_dir / "figures" / "raster.png")
    assert f"{run_dir / 'figures' / 'raster.svg'}" in r.stdout


def test_plot_of_something_else_is_a_one_line_error(tmp_path):
    r = cli("plot", str(tmp_path))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "neither a run folder" in r.stderr


def test_a_delay_family_is_plotted_against_the_parameter_that_varies():
    values = ['{ dist = "uniform", low = 0, high = 0 }', '{ dist = "uniform", low = 0, high = 5 }']
    xs, label = numeric_axis("timing.synapse_delay", values)
    assert xs == [0.0, 5.0] and label.startswith("synaptic delay: high (ms)")
    assert numeric_axis("learning.rule", ["weight_max", "global_reinforce"]) is None
    assert numeric_axis("timing.reward_delay", [0, 2.5])[1] == "reward delay (ms)"
    assert value_text("timing.synapse_delay", values[1], values) == "synaptic delay high = 5 ms"


# --- figures for a paper: one-key tolerance, bootstrap bands, overlays, titles -------------------


def test_the_bootstrap_interval_is_deterministic_and_has_the_textbook_width():
    import numpy as np

    from asyncneurons.figures.plots import bootstrap_ci

    x = np.random.default_rng(1).normal(10.0, 2.0, size=60)
    lo, hi = bootstrap_ci(x)
    assert (lo, hi) == bootstrap_ci(x)  # a fixed seed: the same figure every time
    half = 1.96 * x.std() / np.sqrt(len(x))  # the normal approximation of the 95 % interval
    assert lo < x.mean() < hi
    assert abs((hi - lo) / 2 - half) < 0.15 * half
    same = bootstrap_ci(np.full((5, 3), 7.0))
    assert same[0].tolist() == [7.0] * 3 and same[1].tolist() == [7.0] * 3
    # a seed missing an episode (NaN) is left out of that episode's means only
    rows = np.array([[1.0, 1.0], [3.0, np.nan], [5.0, 5.0]])
    lo, hi = bootstrap_ci(rows)
    assert 1.0 <= lo[0] < hi[0] <= 5.0 and 1.0 <= lo[1] <= hi[1] <= 5.0


@pytest.fixture(scope="module")
def one_key_sweep(tmp_path_factory):
    """The simplest delay study: one numeric key, reward delay 0 and 40 ms."""
    root = tmp_path_factory.mktemp("onekey")
    (root / "small.toml").write_text(SMALL)
    sweep = plan(root / "small.toml", ["timing.reward_delay=0,40"], 3, [], root / "sweep")
    run_sweep(sweep, workers=1, progress=False, say=lambda text: None)
    return root / "sweep"


def _bars(ax):
    """(x, low, high) of each error bar of the first line on ``ax``."""
    segments = ax.containers[0].lines[2][0].get_segments()
    return [(float(s[0][0]), float(s[0][1]), float(s[1][1])) for s in segments]


def test_a_sweep_of_one_numeric_key_gets_its_tolerance_curve(one_key_sweep, tmp_path):
    r = cli("plot", str(one_key_sweep), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "no tolerance curve" not in r.stderr
    check(tmp_path / "tolerance-timing.reward_delay.png", 2.4 + 0.55)
    svg = (tmp_path / "tolerance-timing.reward_delay.svg").read_text()
    assert "small · CartPole-v1 · rule global_reinforce · 3 seeds per point" in svg
    assert "error bars: 95 % bootstrap CI of the mean" in svg


def test_error_bars_are_the_bootstrap_interval_of_the_seeds_averages(one_key_sweep):
    import numpy as np

    from asyncneurons.figures.plots import bootstrap_ci, tolerance_curve, _per_seed

    _, keys, tidy, summary = read_sweeps([one_key_sweep])
    per_seed = _per_seed(tidy, keys)
    for band in ("ci", "std"):
        fig = tolerance_curve(summary, [], "timing.reward_delay", None, per_seed, band,
                              {"name": "small", "env": "CartPole-v1", "rule": "global_reinforce"})
        bars = _bars(fig.axes[0])
        for (x, low, high), delay in zip(bars, (0.0, 40.0)):
            averages = np.array([tidy[(tidy["timing.reward_delay"] == delay) & (tidy["seed"] == s)]["return"].mean()
                                 for s in range(3)])
            if band == "ci":
                expected = bootstrap_ci(averages)
            else:
                expected = (averages.mean() - averages.std(), averages.mean() + averages.std())
            assert abs(x - delay) < 1 and np.allclose([low, high], expected)
        want = "95 % bootstrap CI of the mean" if band == "ci" else "mean ± std"
        assert fig._suptitle.get_text().endswith(want)


def test_overlay_draws_every_condition_in_one_panel(sweep_dir, tmp_path):
    r = cli("plot", str(sweep_dir), "--out", str(tmp_path), "--overlay")
    assert r.returncode == 0, r.stderr
    check(tmp_path / "learning-curves.png", 2.3 + 0.55)  # one panel, though two keys were swept
    svg = (tmp_path / "learning-curves.svg").read_text()
    for rule in ("global_reinforce", "weight_max"):
        for delay in (0, 5):
            assert f"rule = {rule}, reward delay = {delay} ms" in svg
    assert (tmp_path / "tolerance-timing.reward_delay.png").exists()


def test_several_run_folders_are_overlaid_with_their_differences_as_labels(tmp_path):
    import tomllib

    folders = []
    for delay in (0, 20):
        s = parse_scenario(tomllib.loads(SMALL), ["experiment.runs=2", f"timing.reward_delay={delay}"])
        run_experiment(s, tmp_path / f"delay-{delay}")
        folders.append(str(tmp_path / f"delay-{delay}"))
    r = cli("plot", *folders, "--out", str(tmp_path / "figs"), "--band", "std")
    assert r.returncode == 0, r.stderr
    check(tmp_path / "figs" / "learning-curves.png", 2.3 + 0.55)
    svg = (tmp_path / "figs" / "learning-curves.svg").read_text()
    assert "reward delay = 0 ms" in svg and "reward delay = 20 ms" in svg
    assert "small · CartPole-v1 · rule global_reinforce · 2 runs per curve · band: mean ± std" in svg
    r = cli("plot", folders[0], str(tmp_path), "--out", str(tmp_path / "figs"))
    assert r.returncode == 2 and "not a run folder" in r.stderr


def test_a_per_layer_list_of_distributions_reads_as_one_value_per_layer_and_long_titles_wrap():
    import pandas as pd

    from asyncneurons.figures.plots import TITLE_WIDTH, _titles, value_text

    text = value_text("timing.firing_phase", '[{dist="uniform",low=0.0,high=10.0}, 15.0]')
    assert text == "timing.firing_phase = [uniform(low 0, high 10), 15] ms"
    table = pd.DataFrame({"network.graph": ["graphs/a-very-long-graph-file-name.json"]})
    title = _titles(table, ["network.graph"], ["graphs/a-very-long-graph-file-name.json"])
    assert "\n" in title and all(len(line) <= TITLE_WIDTH for line in title.splitlines())
