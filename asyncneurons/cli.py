"""The command line: ``asyncneurons run | validate``.

Exit status: 0 on success, 2 on bad input (one line naming the problem, no traceback), 1 when
a run fails otherwise (for example when it diverges; its results so far are kept).
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path

import click

from .errors import UserInputError


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _load(scenario: str, overrides):
    from .scenario import load_scenario
    return load_scenario(scenario, overrides)


def _describe(s) -> str:
    from . import tasks
    from .simulation import build_graph, run_seed
    import numpy as np
    env = tasks.make_env(s.env.id, s.env.max_episode_steps)
    g = build_graph(s, int(np.prod(env.observation_space.shape)), tasks.action_spec(env),
                    run_seed(s.experiment.seed, 0))
    units = sum(1 for _, r in g.nodes(data="role") if r != "input")
    return (f"{s.experiment.name}: {s.env.id}, rule {s.learning.rule}, {units} units, "
            f"{g.number_of_edges()} synapses, {s.experiment.runs} run(s) × {s.experiment.episodes} episodes, "
            f"firing {s.timing.firing}, pacing {s.env.pacing}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="asyncneurons")
def main():
    """Simulate networks of asynchronous, local reinforcement-learning units."""


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key, e.g. --set experiment.episodes=50 (repeatable).")
def validate(scenario, overrides):
    """Check a scenario file (and its graph) without running it."""
    try:
        s = _load(scenario, overrides)
        click.echo(f"ok: {_describe(s)}")
    except UserInputError as e:
        _fail(str(e), 2)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default: runs/NAME-DATE-TIME).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key, e.g. --set timing.reward_delay=10 (repeatable).")
@click.option("--workers", type=click.IntRange(1), default=min(2, os.cpu_count() or 1), show_default=True,
              help="Worker processes for independent runs.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(scenario, out, overrides, workers, quiet):
    """Run one experiment and write its run folder as it goes."""
    from tqdm import tqdm

    from .runner import run_experiment
    try:
        s = _load(scenario, overrides)
        _describe(s)  # graph errors surface before anything is written
    except UserInputError as e:
        _fail(str(e), 2)
    if out is None:
        out = Path("runs") / f"{s.experiment.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    total = s.experiment.runs * s.experiment.episodes
    recent = deque(maxlen=20)
    bar = tqdm(total=total, unit="ep", disable=quiet, dynamic_ncols=True,
               desc=f"{s.experiment.name}", file=sys.stderr)

    def progress(row):
        recent.append(row["return"])
        bar.update(1)
        bar.set_postfix_str(f"recent mean return {sum(recent) / len(recent):.1f}", refresh=False)

    click.echo(f"writing {out}", err=True)
    try:
        summary = run_experiment(s, out, workers=workers, progress=progress)
    except KeyboardInterrupt:
        bar.close()
        _fail(f"interrupted; the episodes finished so far are in {out}", 130)
    except UserInputError as e:
        bar.close()
        _fail(str(e), 2)
    bar.close()
    _print_summary(summary, out)
    if summary["status"] == "diverged":
        _fail(summary["message"] + f" (results so far kept in {out})", 1)


def _print_summary(summary: dict, out) -> None:
    click.echo(f"\n{'run':>5}  {'episodes':>8}  {'average return':>15}")
    for r in summary["runs"]:
        click.echo(f"{r['run']:>5}  {r['episodes']:>8}  {r['average_return']:>15.2f}")
    if summary["mean"] is not None:
        click.echo(f"{'all':>5}  {'':>8}  {summary['mean']:>9.2f} ± {summary['std']:.2f}  "
                   f"(mean ± population std across runs; {summary.get('wall_s', 0):.1f} s)")
    click.echo(f"status: {summary['status']}; results in {out}")


if __name__ == "__main__":  # pragma: no cover
    main()
