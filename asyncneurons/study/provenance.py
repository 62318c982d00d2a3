"""The stack a run was made with: versions of Python, this package and the libraries whose code
decides its numbers, the platform and the CPU features NumPy computes with.

A run's numbers are a function of its scenario, its seed and this stack: a newer NumPy or
gymnasium may change a sampled bit or a task's physics and with it every figure after. So every
run folder's ``summary.json`` records :func:`stack` under ``"stack"``::

    {"python": "3.11.7", "asyncneurons": "0.1.0", "git_commit": "a80cbc7…", "git_dirty": false,
     "numpy": "2.4.6", "gymnasium": "1.4.0", "simpy": "4.1.2", "box2d": "2.3.10",
     "networkx": "3.6.1", "numba": "0.68.1", "platform": "Linux-…-x86_64-with-glibc2.36",
     "numpy_simd": "X86_V2 + X86_V3 X86_V4 AVX512_ICL", "blas_core": "SkylakeX"}

``git_commit`` and ``git_dirty`` (tracked files changed since that commit) are null when the
package is not in a git checkout; a library that is not installed is null. The versions are
those of the installed distributions (``importlib.metadata``); ``constraints/reproduce.txt`` pins
the stack the published-table reproductions were run with.

``numpy_simd`` is NumPy's baseline CPU features, then the dispatched ones this machine offers (and
``NPY_DISABLE_CPU_FEATURES`` leaves on): NumPy picks the code of ``exp``, ``log`` and ``log1p`` by
them, and the AVX2 (``X86_V3``) and AVX-512 (``X86_V4``) variants round differently in the last
bit. The same versions on a CPU with other features therefore give other numbers: run 0 of
``scenarios/paper/baselines/backprop-cartpole.toml`` averages 431.26 with ``X86_V4`` and 408.71
with ``NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL"``, on one machine, commit and stack.
``blas_core`` is the kernel set NumPy's OpenBLAS chose for this CPU (``OPENBLAS_CORETYPE``
overrides it; null when NumPy does not ship OpenBLAS): its matrix products (the critic's, for
one) add in another order on ``Haswell`` than on ``SkylakeX``. Run 0 of that scenario at commit
1e4afa2 averages 431.26 with ``SkylakeX`` kernels and 443.07 with ``Haswell`` ones, the figure
``docs/results/map-prop.md`` records from a machine whose CPU was not recorded.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# key in the record -> distribution names to try (the first installed one counts)
LIBRARIES = {
    "numpy": ("numpy",),
    "gymnasium": ("gymnasium",),
    "simpy": ("simpy",),
    "box2d": ("Box2D", "box2d", "box2d-py"),
    "networkx": ("networkx",),
    "numba": ("numba",),
}


def library_version(names) -> str | None:
    """The version of the first installed distribution among ``names``, or None."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def numpy_simd() -> str | None:
    """``"BASELINE + DISPATCHED"``: the CPU features NumPy was built to assume, then those of its
    dispatch targets it found on this CPU and uses (None when NumPy does not say)."""
    try:
        from numpy._core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__, __cpu_features__
    except ImportError:
        return None
    found = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
    return " ".join(__cpu_baseline__) + " + " + (" ".join(found) if found else "none")


def blas_core() -> str | None:
    """The kernel set (``"SkylakeX"``, ``"Haswell"``, …) of the OpenBLAS that NumPy ships, as that
    library reports it for this CPU; None for another BLAS."""
    import ctypes
    import glob
    import os

    import numpy as np
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "lib*openblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename64_",
                     "openblas_get_corename"):
            corename = getattr(lib, name, None)
            if corename is not None:
                corename.restype = ctypes.c_char_p
                return corename().decode()
    return None


def _git(root: Path, *args) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def source_revision(root: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout holding ``root``; (None, None) outside one."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return commit.strip(), None if status is None else bool(status.strip())


@functools.lru_cache(maxsize=1)
def stack() -> dict:
    """The versions and platform this process runs on, computed once per process: a run takes
    it as it starts (:func:`asyncneurons.study.runner.simulate_run`), so that its record names the
    checkout its code was loaded from even when the checkout moves on during a run of hours."""
    from asyncneurons import __file__ as package_file
    commit, dirty = source_revision(Path(package_file).resolve().parent)
    record = {"python": platform.python_version(), "asyncneurons": library_version(("asyncneurons",)),
              "git_commit": commit, "git_dirty": dirty}
    record.update({key: library_version(names) for key, names in LIBRARIES.items()})
    record["platform"] = platform.platform()
    record["numpy_simd"] = numpy_simd()
    record["blas_core"] = blas_core()
    return record


def describe(record: dict) -> str:
    """One line naming a recorded stack, for reports."""
    commit = record.get("git_commit")
    rev = "" if not commit else f" (commit {commit[:10]}{', with uncommitted changes' if record.get('git_dirty') else ''})"
    libs = ", ".join(f"{k} {record.get(k)}" for k in ("numpy", "gymnasium", "simpy", "box2d", "networkx", "numba"))
    simd = f", NumPy CPU features {record['numpy_simd']}" if record.get("numpy_simd") else ""
    simd += f", OpenBLAS {record['blas_core']} kernels" if record.get("blas_core") else ""
    return (f"Python {record.get('python')}, asyncneurons {record.get('asyncneurons')}{rev}, {libs}; "
            f"{record.get('platform')}{simd}")


__all__ = ["LIBRARIES", "blas_core", "describe", "library_version", "numpy_simd", "source_revision", "stack"]
