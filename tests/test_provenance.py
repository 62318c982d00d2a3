"""The recorded stack: every run folder's summary names the versions and platform that made it."""

import json
import os
import platform
import subprocess
import sys
from importlib import metadata

import pytest

from asyncneurons.study import provenance
from asyncneurons.study.runner import run_experiment

KEYS = {"python", "asyncneurons", "git_commit", "git_dirty", "numpy", "gymnasium", "simpy", "box2d", "networkx",
        "numba", "platform", "numpy_simd", "blas_core"}


def test_the_stack_names_the_installed_versions():
    s = provenance.stack()
    assert set(s) == KEYS
    assert s["python"] == platform.python_version() and s["platform"] == platform.platform()
    assert s["numpy"] == metadata.version("numpy") and s["gymnasium"] == metadata.version("gymnasium")
    assert s["numba"] == metadata.version("numba") and s["box2d"] is not None


def test_the_stack_names_the_cpu_features_numpy_computes_with():
    """NumPy's exp, log and log1p round differently on AVX2 and AVX-512 code, so the record names
    the dispatched features in use, as NPY_DISABLE_CPU_FEATURES leaves them."""
    import numpy as np

    assert f"NumPy CPU features {provenance.stack()['numpy_simd']}" in provenance.describe(provenance.stack())
    baseline, dispatched = provenance.stack()["numpy_simd"].split(" + ")
    assert baseline.split() == list(np._core._multiarray_umath.__cpu_baseline__)
    if "X86_V4" not in dispatched.split():
        return  # the AVX-512 code is not on this machine: nothing to switch off
    code = "from asyncneurons.study import provenance; print(provenance.numpy_simd())"
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "X86_V4" not in out.stdout.split(" + ")[1].split()


def test_the_stack_names_the_kernels_numpys_openblas_chose():
    """OpenBLAS picks its matrix-product kernels by CPU (OPENBLAS_CORETYPE overrides the choice),
    and they add in different orders: the record names the ones in use."""
    core = provenance.stack()["blas_core"]
    if core is None:
        pytest.skip("NumPy does not ship OpenBLAS here")
    code = "from asyncneurons.study import provenance; print(provenance.blas_core())"
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Haswell"
    assert f"OpenBLAS {core} kernels" in provenance.describe(provenance.stack())


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


def test_a_run_records_the_checkout_it_started_with_not_the_one_it_ended_with(scenario, tmp_path, monkeypatch):
    """A reproduction runs for hours while the checkout it was started from moves on: the record
    names the commit the run's code was loaded from, taken as the run starts."""
    from asyncneurons.study.runner import simulate_run
    checkout = {"commit": "a" * 40}
    monkeypatch.setattr(provenance, "source_revision", lambda root: (checkout["commit"], False))
    provenance.stack.cache_clear()

    def moved_on(row):
        checkout["commit"] = "b" * 40  # a commit lands while the run goes on

    try:
        simulate_run(scenario(experiment={"episodes": 2}), 0, on_episode=moved_on, folder=tmp_path / "run")
        assert checkout["commit"] == "b" * 40
        assert provenance.stack()["git_commit"] == "a" * 40
    finally:
        provenance.stack.cache_clear()
