"""The stack a run was made with: versions of Python, this package and the libraries whose code
decides its numbers, and the platform.

A run's numbers are a function of its scenario, its seed and this stack: a newer NumPy or
gymnasium may change a sampled bit or a task's physics and with it every figure after. So every
run folder's ``summary.json`` records :func:`stack` under ``"stack"``::

    {"python": "3.11.7", "asyncneurons": "0.1.0", "git_commit": "a80cbc7…", "git_dirty": false,
     "numpy": "2.4.6", "gymnasium": "1.4.0", "simpy": "4.1.2", "box2d": "2.3.10",
     "networkx": "3.6.1", "numba": "0.68.1", "platform": "Linux-…-x86_64-with-glibc2.36"}

``git_commit`` and ``git_dirty`` (tracked files changed since that commit) are null when the
package is not in a git checkout; a library that is not installed is null. The versions are
those of the installed distributions (``importlib.metadata``); ``constraints/reproduce.txt`` pins
the stack the published-table reproductions were run with.
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
    """The versions and platform this process runs on (computed once per process)."""
    from asyncneurons import __file__ as package_file
    commit, dirty = source_revision(Path(package_file).resolve().parent)
    record = {"python": platform.python_version(), "asyncneurons": library_version(("asyncneurons",)),
              "git_commit": commit, "git_dirty": dirty}
    record.update({key: library_version(names) for key, names in LIBRARIES.items()})
    record["platform"] = platform.platform()
    return record


def describe(record: dict) -> str:
    """One line naming a recorded stack, for reports."""
    commit = record.get("git_commit")
    rev = "" if not commit else f" (commit {commit[:10]}{', with uncommitted changes' if record.get('git_dirty') else ''})"
    libs = ", ".join(f"{k} {record.get(k)}" for k in ("numpy", "gymnasium", "simpy", "box2d", "networkx", "numba"))
    return f"Python {record.get('python')}, asyncneurons {record.get('asyncneurons')}{rev}, {libs}; {record.get('platform')}"


__all__ = ["LIBRARIES", "describe", "library_version", "source_revision", "stack"]
