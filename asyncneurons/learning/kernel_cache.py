"""The on-disk cache of compiled kernels, kept fresh across every kernel module of the package.

numba caches a compiled function under its own source file and checks only that file's stamp
when it loads the cache. A kernel that calls a kernel of another module (the replicas' cascade
calls the single run's, a window's pass calls the shared sampling) would then keep the machine
code compiled from the callee's old source after the callee changed, and a run would give the
old bits. Here every kernel of the package is stamped with one digest over the sources of all
its modules that use numba, so a change to any of them recompiles every kernel on first use.

Importing this module registers the stamp with numba (in-tree ``__pycache__``, or the per-user
cache when the package's folder is not writable); every module that compiles kernels
imports it before its first ``@njit(cache=True)``. Functions outside the package keep numba's
own locators.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from numba.core import caching

PACKAGE = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def kernel_sources_digest(package: Path = PACKAGE) -> bytes:
    """SHA-256 over (relative path, contents) of every module under ``package`` that uses numba,
    in sorted path order: the stamp of every cached kernel of the package."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        text = path.read_bytes()
        if b"numba" in text:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + text + b"\0")
    return digest.digest()


class _PackageStamp:
    """A locator of the package's kernels: stamped with the digest of all the package's kernel
    sources instead of the one file's modification time and size."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if not Path(py_file).resolve().is_relative_to(PACKAGE):
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return kernel_sources_digest()


class PackageKernelLocator(_PackageStamp, caching.InTreeCacheLocator):
    """numba's in-tree cache (``__pycache__`` beside the module), with the package's stamp."""


class PackageKernelUserLocator(_PackageStamp, caching.UserWideCacheLocator):
    """numba's per-user cache, for an installed package whose folder is not writable."""


def register() -> None:
    """Put the package's locators first among numba's cache locators (once)."""
    locators = caching.CacheImpl._locator_classes
    for position, locator in enumerate((PackageKernelLocator, PackageKernelUserLocator)):
        if locator not in locators:
            locators.insert(position, locator)


register()
