"""Errors the user can fix: each names the thing at fault and, where it helps, the fix.

Every error raised for bad input derives from :class:`UserInputError`; the command line
prints its message on one line and exits with status 2.
"""

from __future__ import annotations

import difflib


class UserInputError(Exception):
    """Bad input from the user: a scenario, a graph file or a command-line value."""


class ScenarioError(UserInputError):
    """A scenario file or override is malformed; the message names the dotted key path."""


class GraphError(UserInputError):
    """A connectivity graph is malformed; the message names the node or edge at fault."""


class DivergenceError(RuntimeError):
    """A value or weight became NaN or infinite during a run."""


def did_you_mean(word: str, choices) -> str:
    """Return ' (did you mean "x"?)' for the closest of ``choices``, or '' when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def lookup(registry: dict, name: str, what: str, error=UserInputError):
    """Look ``name`` up in ``registry``; unknown names raise ``error`` with a suggestion."""
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise error(f'unknown {what} "{name}"{did_you_mean(name, registry)}; known: {known}') from None
