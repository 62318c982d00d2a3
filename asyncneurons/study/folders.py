"""Writing a folder safely: one command at a time, never through a link, errors in one line.

A run folder (or a sweep folder) is written by one command at a time: the command holds an OS
lock (``fcntl.flock``) on ``FOLDER/.lock`` while it writes, and the kernel releases it when the
command's last process ends, however it ends (a crash or SIGKILL included). Worker processes
forked by the command inherit the lock, so a folder stays locked until every process that could
write it is gone.

Files are opened with ``O_NOFOLLOW`` and sub-folders are checked with ``lstat``: a link planted
in a folder is refused, never followed (its target is never overwritten). Names that come from
the user (an experiment's name) are reduced to a safe file name before they become a path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
from pathlib import Path

from asyncneurons.errors import UserInputError

LOCK = ".lock"
_WRITE = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class FolderError(UserInputError):
    """A folder cannot be written (locked, a link, not a folder, someone else's files)."""


def describe(e: OSError) -> str:
    """One line for a filesystem error: the path, what happened and, where it helps, the fix."""
    path = e.filename if e.filename is not None else "?"
    hint = {errno.ENOSPC: "the disk is full; free space and resume",
            errno.EDQUOT: "the disk quota is exhausted; free space and resume",
            errno.EROFS: "the file system is read-only; choose another folder",
            errno.EACCES: "permission denied; choose another folder",
            errno.EPERM: "not permitted; choose another folder",
            errno.ENOTDIR: "a part of this path is a file, not a folder",
            errno.EISDIR: "this is a folder, not a file",
            errno.ELOOP: "this is a link; links are not followed when writing",
            errno.ENAMETOOLONG: "the name is too long"}.get(e.errno, "")
    text = e.strerror or type(e).__name__
    return f"{path}: {text}" + (f" ({hint})" if hint and hint not in text else "")


@contextlib.contextmanager
def writing(path):
    """Filesystem errors raised inside the block name ``path`` when they name nothing (a full disk
    is reported by a flush, which knows no file name)."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            e.filename = str(path)
        raise


def safe_name(name: str, limit: int = 100) -> str:
    """``name`` as a single safe path component: letters, digits, ``. _ -`` and nothing that can
    climb out of the folder it is put in (no separators, no leading dot)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip("-.")
    return cleaned[:limit] or "run"


def check_dir(path: Path) -> Path:
    """Create the folder ``path`` (and its parents) if needed; refuse a path that is a file."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        path.mkdir(parents=True, exist_ok=True)
        return path
    if not stat.S_ISDIR(st.st_mode):
        raise FolderError(f"{path}: not a folder (a file of that name exists); choose another --out")
    return path


def subdir(parent: Path, name: str) -> Path:
    """The sub-folder ``parent/name``, created if missing; a link or a file there is refused."""
    path = check_dir(Path(parent)) / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise FolderError(f"{path}: is a link; links inside a run folder are not followed "
                          f"(remove it)")
    if not stat.S_ISDIR(st.st_mode):
        raise FolderError(f"{path}: not a folder (remove the file of that name)")
    return path


def open_write(path: Path, mode: str = "w", **kw):
    """Open ``path`` for writing (``w`` truncates, ``a`` appends) without following a link."""
    flags = _WRITE | (os.O_TRUNC if mode.startswith("w") else os.O_APPEND)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise FolderError(f"{path}: is a link; links inside a run folder are not followed "
                              f"(remove it)") from None
        raise
    return os.fdopen(fd, mode + ("" if "b" in mode else ""), **kw)


def write_atomic(path: Path, data, binary: bool = False) -> None:
    """Write ``path`` through a fresh temporary file and a rename (a link at ``path`` is
    replaced, never followed)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # removes a link itself, not its target
    with writing(path):
        fd = os.open(tmp, _WRITE | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": ""})) as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class FolderLock:
    """An exclusive lock on a folder, held from construction until :meth:`release` (or until the
    last process holding it ends). ``wait``: seconds to wait for another holder to let go (a
    killed command's workers may take a moment to die)."""

    def __init__(self, folder: Path, what: str = "run", wait: float = 3.0):
        import fcntl

        self.folder = Path(folder)
        path = self.folder / LOCK
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise FolderError(f"{path}: is a link; remove it") from None
            raise
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    raise FolderError(f"{self.folder}: another command is writing this {what} "
                                      f"folder; wait for it to end or choose another --out") from None
                time.sleep(0.1)
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
