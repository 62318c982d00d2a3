"""The recorded stack: every run folder's summary names the versions and platform that made it."""

import json
import platform
import subprocess
from importlib import metadata

from asyncneurons.study import provenance
from asyncneurons.study.runner import run_experiment

KEYS = {"python", "asyncneurons", "git_commit", "git_dirty", "numpy", "gymnasium", "simpy", "box2d", "networkx",
        "numba", "platform"}


def test_the_stack_names_the_installed_versions():
    s = provenance.stack()
    assert set(s) == KEYS
    assert s["python"] == platform.python_version() and s["platform"] == platform.platform()
    assert s["numpy"] == metadata.version("numpy") and s["gymnasium"] == metadata.version("gymnasium")
    assert s["numba"] == metadata.version("numba") and s["box2d"] is not None


def test_a_missing_library_is_null():
    assert provenance.library_version(("no-such-distribution-xyz",)) is None


def test_outside_a_git_checkout_there_is_no_commit(tmp_path):
    assert provenance.source_revision(tmp_path) == (None, None)


def test_inside_a_git_checkout_the_commit_and_dirtiness_are_read(tmp_path):
    def git(*a):
        subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "f.txt").write_text("one\n")
    git("add", "f.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    commit, dirty = provenance.source_revision(tmp_path)
    assert len(commit) == 40 and dirty is False
    (tmp_path / "f.txt").write_text("two\n")
    assert provenance.source_revision(tmp_path) == (commit, True)


def test_every_run_folder_records_its_stack(scenario, tmp_path):
    run_experiment(scenario(experiment={"runs": 1, "episodes": 2}), tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stack"] == provenance.stack()
    assert "numpy" in provenance.describe(summary["stack"])
