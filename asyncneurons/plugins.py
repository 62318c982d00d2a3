"""Plug-ins: learning rules and unit kinds registered by other packages through entry points.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."asyncneurons.rules"]
    node_perturbation = "mypackage.rules:NodePerturbation"

    [project.entry-points."asyncneurons.units"]
    spin = "mypackage.units:SPIN"

An ``asyncneurons.rules`` entry point names a :class:`~asyncneurons.learning.rules.base.Rule` subclass
whose ``name`` is the entry point's name; an ``asyncneurons.units`` entry point names a
:class:`~asyncneurons.learning.units.UnitKind` whose ``name`` is the entry point's name and whose roles
are ``("hidden",)`` (output kinds are chosen from the action space among the built-in ones).
:func:`load` adds them to the registries (``RULES``, ``UNIT_KINDS``) the first time a scenario
or a graph looks a name up, so a scenario names them like any built-in one. A plug-in that
fails to load, or clashes with a name already registered, stops with one line naming it.

Entry points are found by :mod:`importlib.metadata` in every ``*.dist-info`` folder on
``sys.path``: those ``pip install`` writes, or one written by hand (``docs/extending.md``).
"""

from __future__ import annotations

import inspect
from importlib import metadata

from asyncneurons.errors import UserInputError

RULE_GROUP = "asyncneurons.rules"
UNIT_GROUP = "asyncneurons.units"

_loaded = False
_added: set = set()  # (group, name) of the plug-ins registered so far


class PluginError(UserInputError):
    """A plug-in cannot be loaded or does not fit its registry; the message names it."""


def _where(ep) -> str:
    dist = getattr(ep, "dist", None)
    return f'{ep.group} entry point "{ep.name}" ({ep.value}' + (f", package {dist.name})" if dist else ")")


def _rule(ep, obj, registry: dict) -> None:
    from asyncneurons.learning.rules.base import Rule

    if not (inspect.isclass(obj) and issubclass(obj, Rule)):
        raise PluginError(f"{_where(ep)}: not a subclass of asyncneurons.learning.rules.base.Rule")
    if obj.name != ep.name:
        raise PluginError(f'{_where(ep)}: the class\'s name is "{obj.name}"; it must be the entry point\'s name')
    registry[obj.name] = obj


def _unit(ep, obj, registry: dict) -> None:
    from asyncneurons.learning.units import UnitKind

    if not isinstance(obj, UnitKind):
        raise PluginError(f"{_where(ep)}: not an asyncneurons.learning.units.UnitKind")
    if obj.name != ep.name:
        raise PluginError(f'{_where(ep)}: the kind\'s name is "{obj.name}"; it must be the entry point\'s name')
    if tuple(obj.roles) != ("hidden",) or obj.sample is None or obj.score is None:
        raise PluginError(f'{_where(ep)}: a plug-in unit kind has roles ("hidden",), a sample and a score')
    registry[obj.name] = obj


def load(force: bool = False) -> None:
    """Register every installed plug-in (once per process unless ``force``; after an error,
    the next call tries again, so the error is reported every time)."""
    global _loaded
    if _loaded and not force:
        return
    from asyncneurons.learning.rules import RULES
    from asyncneurons.learning.units import UNIT_KINDS

    for group, registry, add in ((RULE_GROUP, RULES, _rule), (UNIT_GROUP, UNIT_KINDS, _unit)):
        for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
            if ep.name in registry and (group, ep.name) not in _added:
                raise PluginError(f'{_where(ep)}: "{ep.name}" is already a built-in name')
            try:
                obj = ep.load()
            except Exception as e:  # the plug-in's own error: one line, no traceback
                raise PluginError(f"{_where(ep)}: cannot be loaded: {type(e).__name__}: {e}") from None
            add(ep, obj, registry)
            _added.add((group, ep.name))
    _loaded = True
