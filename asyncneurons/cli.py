"""The command line: ``asyncneurons run | validate | sweep | plot``.

Exit status: 0 on success, 2 on bad input (one line naming the problem, no traceback), 1 when
a run fails otherwise (for example when it diverges, or the disk is full; its results so far are
kept), 130 when interrupted (Ctrl-C or SIGTERM). See docs/reliability.md.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path

import click

from asyncneurons.errors import UserInputError


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _load(scenario: str, overrides):
    from asyncneurons.model.scenario import load_scenario
    return load_scenario(scenario, overrides)


def _no_empty_paths(**paths) -> None:
    """An empty path would mean the current folder: refuse it rather than write there."""
    for option, value in paths.items():
        if value is not None and not str(value).strip():
            _fail(f"--{option}: an empty path; name a folder", 2)


def _note(texts) -> None:
    for text in texts:
        click.echo(f"note: {text}", err=True)


def _describe(s) -> str:
    """One line on the scenario; builds its graph (so graph errors surface) and prints any advice."""
    from asyncneurons import tasks
    from asyncneurons.model.advice import advice
    from asyncneurons.engine.simulation import build_graph, run_seed
    import numpy as np
    env = tasks.make_env(s.env.id, s.env.max_episode_steps)
    g = build_graph(s, int(np.prod(env.observation_space.shape)), tasks.action_spec(env),
                    run_seed(s.experiment.seed, 0))
    if s.network.graph:  # what a run would refuse later, found now
        from asyncneurons.model.graph import check_task
        check_task(g, s, int(np.prod(env.observation_space.shape)), tasks.action_spec(env))
    from asyncneurons.model.limits import check_scenario
    check_scenario(s, g.number_of_edges(), int(np.prod(env.observation_space.shape)))
    _note(advice(s, g))
    units = sum(1 for _, r in g.nodes(data="role") if r != "input")
    return (f"{s.experiment.name}: {s.env.id}, rule {s.learning.rule}, {units} units, "
            f"{g.number_of_edges()} synapses, {s.experiment.runs} run(s) × {s.experiment.episodes} episodes, "
            f"firing {s.timing.firing}, pacing {s.env.pacing}")


class _Guarded(click.Group):
    """Every command ends in one line, never a traceback: a filesystem error names its path
    (exit 1), memory running out says so (exit 1), an interrupt exits 130."""

    def invoke(self, ctx):
        from asyncneurons.study.folders import describe
        try:
            return super().invoke(ctx)
        except OSError as e:
            _fail(describe(e), 1)
        except MemoryError:
            _fail("out of memory; choose a smaller network, fewer runs or fewer replicas", 1)
        except KeyboardInterrupt:
            _interrupted("interrupted")


def _interrupted(message: str) -> None:
    """Exit 130 with one line, deaf to further interrupts while it says so."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _fail(message, 130)


def _exit_codes(failed: str = "a run failed otherwise (it diverged); the results so far are kept") -> str:
    return ("\b\nExit status:\n  0    success\n"
            f"  1    {failed}\n"
            "  2    bad input: one line naming the key, node or file at fault\n"
            "  130  interrupted (Ctrl-C or SIGTERM); what finished is kept")


EXIT_CODES = _exit_codes()


@click.group(cls=_Guarded, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Documentation: docs/index.md (docs/quickstart.md to begin).\n\n" + EXIT_CODES)
@click.version_option(package_name="asyncneurons")
def main():
    """Simulate networks of asynchronous, local reinforcement-learning units.

    \b
    asyncneurons validate scenarios/quickstart.toml
    asyncneurons run scenarios/quickstart.toml
    asyncneurons sweep scenarios/quickstart.toml --grid timing.reward_delay=0,40 --seeds 5
    asyncneurons plot runs/quickstart-20250101-120000
    """


@main.command(short_help="Check a scenario file (and its graph) without running it.",
              epilog="Exit status: 0 when the scenario is valid, 2 when it is not (one line "
                     "naming the key, node or file at fault).")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key, e.g. --set experiment.episodes=50 (repeatable).")
def validate(scenario, overrides):
    """Check a scenario file, its overrides, its task and its graph without running it; print one
    line describing the network, and notes on settings that may not do what was meant."""
    try:
        s = _load(scenario, overrides)
        click.echo(f"ok: {_describe(s)}")
    except UserInputError as e:
        _fail(str(e), 2)


@main.command(short_help="Run one experiment into a run folder (or continue one with --resume).",
              epilog=EXIT_CODES)
@click.argument("scenario", type=click.Path(dir_okay=False), required=False)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default: runs/NAME-DATE-TIME, NAME being experiment.name).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key, e.g. --set timing.reward_delay=10 (repeatable).")
@click.option("--workers", type=click.IntRange(1), default=min(2, os.cpu_count() or 1), show_default=True,
              help="Worker processes for independent runs (default: 2, or 1 on one core); never "
                   "changes the numbers.")
@click.option("--resume", "resume", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Continue the interrupted experiment in run folder DIR (instead of SCENARIO), "
                   "from its checkpoints, to the numbers an uninterrupted run gives; the folder "
                   "may have moved.")
@click.option("--checkpoint-every", "checkpoint_seconds", type=click.FloatRange(0), default=30.0,
              show_default=True, help="Wall seconds between checkpoints (taken at episode "
                                      "boundaries; 0: at every one).")
@click.option("--quiet", is_flag=True, help="No progress bar (the summary table is still printed).")
def run(scenario, out, overrides, workers, resume, checkpoint_seconds, quiet):
    """Run one experiment and write its run folder as it goes: scenario.toml (resolved),
    metrics.csv (a row per episode), summary.json, episodes/ and checkpoints/; or continue one
    with --resume. Prints the folder, a progress bar and, at the end, each run's average
    return."""
    from tqdm import tqdm

    from asyncneurons.study.runner import run_experiment
    _no_empty_paths(out=out, resume=resume)
    if (scenario is None) == (resume is None):
        _fail("give a SCENARIO to run, or --resume DIR to continue a run folder (not both)", 2)
    if resume is not None:
        if overrides or out:
            _fail("--resume continues a run folder as it was: no --set or --out", 2)
        scenario, out = str(Path(resume) / "scenario.toml"), resume
        if not Path(scenario).is_file():
            _fail(f"{resume}: not a run folder (no scenario.toml)", 2)
    try:
        s = _load(scenario, overrides)
        _describe(s)  # graph errors surface before anything is written
    except UserInputError as e:
        _fail(str(e), 2)
    if out is None:
        from asyncneurons.study.folders import safe_name
        out = Path("runs") / f"{safe_name(s.experiment.name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    click.echo(f"{'continuing' if resume else 'writing'} {out}", err=True)  # before the bar: a line of its own
    total = s.experiment.runs * s.experiment.episodes
    recent = deque(maxlen=20)
    bar = tqdm(total=total, unit="ep", disable=quiet, dynamic_ncols=True,
               desc=f"{s.experiment.name}", file=sys.stderr)

    def progress(row):
        recent.append(row["return"])
        bar.update(1)
        bar.set_postfix_str(f"recent mean return {sum(recent) / len(recent):.1f}", refresh=False)

    try:
        summary = run_experiment(s, out, workers=workers, progress=progress, resume=resume is not None,
                                 checkpoint_seconds=checkpoint_seconds)
    except KeyboardInterrupt:
        bar.close()
        _interrupted(f"interrupted; the episodes finished so far are in {out}; continue with "
                     f"asyncneurons run --resume {out}")
    except UserInputError as e:
        bar.close()
        _fail(str(e), 2)
    except OSError as e:  # one line naming the path (see _Guarded)
        bar.close()
        e.filename = str(out) if e.filename is None else e.filename
        raise
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


@main.command(short_help="Run a scenario across a grid of values × seeds into a sweep folder.",
              epilog=_exit_codes("a run failed (diverged or crashed); the others are kept: rerun the "
                                 "same command to retry it"))
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2,...",
              help="Swept key and its values, TOML values split on top-level commas, e.g. "
                   "--grid learning.rule=global_reinforce,weight_max (repeatable: the grid is "
                   "the product).")
@click.option("--seeds", type=click.IntRange(1), default=1, show_default=True,
              help="Seeds per grid point: runs with experiment.seed = 0 … N-1.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Sweep folder (default: runs/NAME-sweep-DATE-TIME, NAME being "
                   "experiment.name); rerunning into it skips finished runs.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key at every grid point (repeatable).")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Local worker processes (default 2; 1 runs in this process).")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None,
              help="Run on the Dask cluster with this scheduler.")
@click.option("--dask-local", type=click.IntRange(1), default=None, metavar="K",
              help="Start a local Dask cluster of K worker processes for the sweep.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep(scenario, grid, seeds, out, overrides, workers, scheduler, dask_local, quiet):
    """Run a scenario across a grid of values × seeds, seed by seed, on local processes or a Dask
    cluster; write each run's folder under runs/ and the tables sweep.csv (every episode) and
    summary.csv (each point's mean and std across seeds) as runs finish. An interrupted sweep
    resumes when the command is run again with the same --out."""
    from asyncneurons.study.sweep import plan, run_sweep
    _no_empty_paths(out=out)
    if out is None:
        from asyncneurons.study.folders import safe_name
        out = str(Path("runs") / f"{safe_name(_experiment_name(scenario, overrides))}-sweep-"
                                 f"{time.strftime('%Y%m%d-%H%M%S')}")
    chosen = [name for name, v in (("--workers", workers), ("--scheduler", scheduler),
                                   ("--dask-local", dask_local)) if v is not None]
    if len(chosen) > 1:
        _fail(f"{' and '.join(chosen)}: choose one way to run the sweep", 2)
    try:
        if scheduler is not None:
            from asyncneurons.study.sweep import check_scheduler
            check_scheduler(scheduler)
        plan_ = plan(scenario, grid, seeds, overrides, out)
    except UserInputError as e:
        _fail(str(e), 2)
    _note(plan_.advice)
    try:
        result = run_sweep(plan_, workers=workers or 2, scheduler=scheduler,
                           dask_local=dask_local, progress=not quiet)
    except KeyboardInterrupt:
        _interrupted(f"interrupted; finished runs are kept in {out}: run the same command with "
                     f"--out {out} to resume")
    except UserInputError as e:
        _fail(str(e), 2)
    _print_sweep(result, out)
    if result.failed:
        _fail(f"{len(result.failed)} run(s) failed, first: {result.failed[0][0].folder}: "
              f"{result.failed[0][1]} (rerun the same command to retry them)", 1)


def _experiment_name(scenario, overrides) -> str:
    """``experiment.name`` as the file and overrides give it, read without validation (a bad
    file is reported by the sweep's own checks); ``experiment`` when unreadable."""
    import tomllib

    from asyncneurons.model.scenario import apply_override
    try:
        data = tomllib.loads(Path(scenario).read_text(encoding="utf-8-sig"))
        for o in overrides:
            if o.partition("=")[0].strip() == "experiment.name":
                apply_override(data, o)
        name = data.get("experiment", {}).get("name", "experiment")
    except (OSError, ValueError, UserInputError, AttributeError):
        return "experiment"
    return name if isinstance(name, str) and name and "/" not in name else "experiment"


def _print_sweep(result, out) -> None:
    table = result.summary
    keys = result.sweep.keys
    width = {k: max(len(k), *(len(str(v)) for v in table[k])) for k in keys}
    click.echo("\n" + "  ".join(f"{k:>{width[k]}}" for k in keys) + ("  " if keys else "")
               + f"{'seeds':>5}  {'average return':>21}")
    for row in table.to_dict("records"):
        cells = "  ".join(f"{str(row[k]):>{width[k]}}" for k in keys) + ("  " if keys else "")
        click.echo(cells + f"{row['n_seeds']:>5}  {row['mean']:>9.2f} ± {row['std']:.2f}")
    click.echo(f"(mean ± population std across seeds of each seed's average return)\n"
               f"{result.ran} run(s) done now, {result.skipped} already finished; "
               f"tables: {Path(out) / 'sweep.csv'}, {Path(out) / 'summary.csv'}")


@main.command(short_help="Plot run or sweep folders: learning curves, tolerance curves, rasters.",
              epilog="Exit status: 0 on success, 2 on bad input (one line naming the folder or "
                     "option at fault). Figures are written as PNG (200 dpi) and SVG; their paths "
                     "are printed. See docs/plotting.md.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the figures (default: PATH/figures; required with several "
                   "folders).")
@click.option("--smooth", type=click.IntRange(1), default=None,
              help="Moving-average window of the learning curves, in episodes (default: a tenth "
                   "of the episodes, at most 100).")
@click.option("--x", "x_key", default=None, metavar="KEY",
              help="Swept key on the x axis of the tolerance curve (default: each numeric one).")
@click.option("--lines", "line_key", default=None, metavar="KEY",
              help="Swept key drawn as one line per value (default: a non-numeric one, "
                   "e.g. learning.rule); KEY1,KEY2 draws one line per combination.")
@click.option("--window", default=None, metavar="START,END",
              help="Time window of the event raster, in ms (default: the first environment "
                   "steps).")
@click.option("--where", multiple=True, metavar="KEY=VALUE",
              help="Plot only the points of the sweep(s) where KEY has this value, or one of "
                   "the values V1,V2,... (repeatable).")
@click.option("--band", type=click.Choice(["ci", "std"]), default="ci", show_default=True,
              help="Bands and error bars: ci, the 95 % bootstrap confidence interval of the mean "
                   "across seeds (deterministic); std, mean ± population standard deviation.")
@click.option("--overlay", is_flag=True,
              help="A sweep's learning curves of every condition (every combination of the swept "
                   "keys) in one panel.")
def plot(paths, out, smooth, x_key, line_key, window, where, band, overlay):
    """Plot a run folder, sweep folders or several run folders: learning curves (mean across
    seeds with a band), tolerance curves against each numeric swept key, and an event raster
    when events were recorded. Titles name the experiment, task, rule and seeds.

    Several sweep folders are plotted as one sweep: each row stands on every key any of them
    swept (a sweep that did not sweep a key contributes the value its runs share), so rules
    that need different scenarios, or a study's axes, meet in one figure. Several run folders
    are drawn in one panel, one line per folder, labelled by the keys their scenarios differ
    in."""
    from asyncneurons.figures.plots import plot_folder
    _no_empty_paths(out=out)
    try:
        files = plot_folder(list(paths), out, smooth=smooth, x_key=x_key, line_key=line_key,
                            window=window, where=where, band=band, overlay=overlay,
                            say=lambda t: click.echo(t, err=True))
    except UserInputError as e:
        _fail(str(e), 2)
    except (ValueError, KeyError, TypeError, IndexError) as e:  # a damaged table (pandas' errors too)
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        _fail(f"{', '.join(paths)}: cannot plot: a table is damaged or not one of asyncneurons "
              f"({text})", 2)
    for f in files:
        click.echo(f)


if __name__ == "__main__":  # pragma: no cover
    main()
