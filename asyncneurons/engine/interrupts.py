"""How a command stops: SIGINT (Ctrl-C) and SIGTERM both raise ``KeyboardInterrupt`` in the main
thread, except inside a critical section (:func:`held`), where they wait until it ends.

A critical section is a step that must not be cut in two: starting worker processes (a worker
cut off while it reads its start-up data would print a traceback) or stopping them (every
worker must be gone before the command says it has stopped). Blocking the signals with
``pthread_sigmask`` is not enough: Python runs its handlers in the main thread whatever thread
the kernel delivers the signal to, so the handler itself defers.

A simulation is stopped between two events (:func:`between_events`), never inside one: SimPy
turns an exception raised inside a process into a failed event and goes on running the other
processes of that instant, which would then see a unit stopped half-way through its update (and
could write a checkpoint holding the failed event). A second interrupt stops at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys

_depth = 0
_between = 0
_pending = False


def _handler(signum, frame):
    global _pending
    if _depth or (_between and not _pending):
        _pending = True
        return
    raise KeyboardInterrupt


def pending() -> bool:
    """Whether an interrupt is waiting to be taken (inside :func:`held` or :func:`between_events`)."""
    return _pending


@contextlib.contextmanager
def between_events():
    """While the block runs, a first interrupt waits until the block asks for it at a boundary of
    its own (:func:`pending`, then leaving the block), a second one is raised at once. Leaving the
    block with an interrupt waiting raises it."""
    global _between, _pending
    _between += 1
    try:
        yield
    finally:
        _between -= 1
        if not _between and not _depth and _pending:
            _pending = False
            if sys.exc_info()[0] is None:
                raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible():
    """While the block runs, SIGINT and SIGTERM raise KeyboardInterrupt (explicitly installed: a
    process started in the background may inherit SIGINT ignored); the old handlers are put back
    after."""
    old = signal.signal(signal.SIGTERM, _handler), signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old[0])
        signal.signal(signal.SIGINT, old[1])


@contextlib.contextmanager
def held():
    """A critical section: an interrupt arriving inside it is raised when it ends."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _pending:
            _pending = False
            if sys.exc_info()[0] is None:  # (an exception on its way out already stops the command)
                raise KeyboardInterrupt


@contextlib.contextmanager
def starting_workers():
    """A critical section that starts worker processes: they are born with SIGINT and SIGTERM
    blocked (a signal mask survives fork and exec), so that a Ctrl-C reaching the whole process
    group cannot cut one short before it has set itself up (:func:`worker_setup`). An interrupt
    of this process meanwhile is delivered to another of its threads, deferred, and raised when
    the workers have started."""
    with held():
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def worker_setup() -> None:
    """In a worker process, first: interrupts are the command's to handle (SIGINT ignored); the
    command stops a worker with SIGTERM, which simply ends it. Then the signals are unblocked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def ignore() -> None:
    """Ignore further interrupts: the command is already stopping."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
