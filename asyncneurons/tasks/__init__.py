"""Tasks: the gymnasium environments a scenario may name, and how observations and actions
cross between them and the network.

A scenario's ``env.id`` may be any id registered with gymnasium whose observation and action
spaces are ``Discrete`` or ``Box``; ``env.import`` names modules to import first, so that a
user's own tasks can register themselves (:func:`import_modules`). ``SUPPORTED`` lists the ids
the project ships and tests: five gymnasium classics and our own multiplexers and scalar
regression task (registered under the ``asyncneurons/`` namespace when this package is
imported). Environments are plain (not vectorized): the simulator handles resets itself.

**Observations.** A ``Box`` observation of any shape is flattened (row-major): one input unit
per component, the value as given. A ``Discrete(n)`` observation is one-hot encoded: ``n``
input units, the one of the observed state is 1, the others 0 (gymnasium's
``FlattenObservation``).

**Actions.** A ``Discrete(n)`` action is sampled by a softmax (n − 1 free logits), categorical
(n logits) or, for n = 2, Bernoulli output; the category index is offset by the space's
``start``. A ``Box`` action of any shape is one linear-Gaussian output unit per component
(flattened), whose sample is clipped to the box (``env.action_map``).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import os
import sys

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from asyncneurons.errors import ScenarioError, did_you_mean
from asyncneurons.tasks.multiplexer import Multiplexer
from asyncneurons.tasks.regression import Regression

# Our own environments: id -> (entry point, kwargs).
OWN_ENVS = {
    "asyncneurons/Multiplexer20-v0": ("asyncneurons.tasks.multiplexer:Multiplexer", {"k": 4}),
    "asyncneurons/Multiplexer37-v0": ("asyncneurons.tasks.multiplexer:Multiplexer", {"k": 5}),
    "asyncneurons/Regression-v0": ("asyncneurons.tasks.regression:Regression", {}),
}

GYM_ENVS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
            "LunarLander-v3")

SUPPORTED = tuple(sorted((*GYM_ENVS, *OWN_ENVS)))


def register() -> None:
    """Register our environments with gymnasium (idempotent: safe to call again)."""
    for env_id, (entry_point, kwargs) in OWN_ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, kwargs=dict(kwargs))


register()


def known_env_ids() -> list[str]:
    """The ids the project ships and tests, sorted (any registered id is accepted)."""
    return list(SUPPORTED)


def import_modules(names, base_dir=None) -> None:
    """Import each module of ``names`` (``env.import``) so that its tasks register themselves.

    A module is looked up on Python's path first, then in ``base_dir`` (the scenario's folder),
    which is then added to the end of ``sys.path`` (worker processes inherit it). A module that
    cannot be found or fails to import raises :class:`ScenarioError` naming ``env.import``.
    """
    for name in names:
        try:
            importlib.import_module(name)
            continue
        except ModuleNotFoundError as e:
            if e.name is None or not (name == e.name or name.startswith(e.name + ".")):
                raise ScenarioError(f'env.import: importing "{name}" failed: {e}') from None
            missing = e
        except Exception as e:  # the user's module raised: one line, no traceback
            raise ScenarioError(f'env.import: importing "{name}" failed: {type(e).__name__}: {e}') from None
        top = name.split(".", 1)[0]
        here = os.path.abspath(base_dir) if base_dir is not None else None
        if here is None or not (os.path.isfile(os.path.join(here, top + ".py"))
                                or os.path.isdir(os.path.join(here, top))):
            where = f" or in {here}" if here is not None else ""
            raise ScenarioError(f'env.import: no module named "{missing.name}" on Python\'s path{where}')
        if here not in sys.path:
            sys.path.append(here)
        importlib.invalidate_caches()
        try:
            importlib.import_module(name)
        except Exception as e:
            raise ScenarioError(f'env.import: importing "{name}" failed: {type(e).__name__}: {e}') from None


def check_registered(env_id: str) -> str:
    """``env_id`` when gymnasium knows it; else a :class:`ScenarioError` with a suggestion."""
    register()
    if env_id in gym.registry:
        return env_id
    shipped = ", ".join(known_env_ids())
    short = env_id if len(env_id) <= 60 else env_id[:59] + "…"
    shown = '"' + "".join(c if c.isprintable() and c not in '"\\' else json.dumps(c)[1:-1] if c in '"\\'
                          else f"\\u{ord(c):04x}" for c in short) + '"'
    raise ScenarioError(f'env.id: unknown environment {shown}{did_you_mean(env_id, list(gym.registry))}; '
                        f"shipped: {shipped}; a task of your own: register it in a module named by env.import")


def _space_name(space) -> str:
    return type(space).__name__


def check_spaces(env: gym.Env, env_id: str) -> None:
    """Refuse observation or action spaces other than ``Discrete`` and ``Box``, naming the space."""
    for what, space in (("observation", env.observation_space), ("action", env.action_space)):
        if not isinstance(space, (spaces.Discrete, spaces.Box)):
            raise ScenarioError(f"env.id: {env_id} has a {_space_name(space)} {what} space ({space}); "
                                "only Discrete and Box spaces are supported")


def make_env(env_id: str, max_episode_steps: int | None = None) -> gym.Env:
    """A fresh gymnasium environment for ``env_id``: any registered id with Discrete or Box spaces.

    ``max_episode_steps`` overrides the registered time limit. An unknown id raises
    :class:`~asyncneurons.errors.ScenarioError` naming ``env.id`` with a suggestion; so does a
    task that cannot be made (a missing dependency) or whose spaces are not supported. A
    ``Discrete`` observation comes out one-hot encoded (a ``Box`` of n components).
    """
    check_registered(env_id)
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": int(max_episode_steps)}
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as e:
        spec = _box2d_fallback(env_id)
        if spec is None:
            raise ScenarioError(f"env.id: {env_id} cannot be made: {_one_line(e)}") from None
        env = gym.make(spec, **kwargs)
    except ScenarioError:
        raise
    except Exception as e:  # a user's task that fails to construct: one line, no traceback
        raise ScenarioError(f"env.id: {env_id} cannot be made: {type(e).__name__}: {_one_line(e)}") from None
    check_spaces(env, env_id)
    if isinstance(env.observation_space, spaces.Discrete):
        env = gym.wrappers.FlattenObservation(env)
    return env


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def _box2d_fallback(env_id: str):
    """LunarLander without pygame: its spec with the class loaded straight from its file.

    ``gymnasium.envs.box2d`` imports CarRacing, which needs pygame, before LunarLander can be
    reached; LunarLander itself needs pygame only to render. When pygame is missing, load
    ``lunar_lander.py`` on its own (it has absolute imports only) and make the registered spec
    (same time limit) with that class. Returns None when this does not apply.
    """
    spec = gym.spec(env_id)
    entry = spec.entry_point
    if not (isinstance(entry, str) and entry.startswith("gymnasium.envs.box2d.lunar_lander:")):
        return None
    if importlib.util.find_spec("Box2D") is None:
        return None
    name = "asyncneurons.tasks._gym_lunar_lander"
    module = _LOADED.get(name)
    if module is None:
        path = os.path.join(os.path.dirname(gym.__file__), "envs", "box2d", "lunar_lander.py")
        loader_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
        _LOADED[name] = module
    return dataclasses.replace(spec, entry_point=getattr(module, entry.split(":", 1)[1]))


_LOADED: dict = {}


def action_spec(env: gym.Env) -> tuple:
    """``("discrete", n)`` or ``("continuous", dim, low, high)`` (low, high: float arrays)."""
    space = env.action_space
    if isinstance(space, spaces.Discrete):
        return ("discrete", int(space.n))
    if isinstance(space, spaces.Box):
        return ("continuous", int(np.prod(space.shape)), np.asarray(space.low, dtype=float).ravel().copy(),
                np.asarray(space.high, dtype=float).ravel().copy())
    raise ScenarioError(f"env.id: the {_space_name(space)} action space {space} is not supported "
                        "(need Discrete or Box)")


def to_env_action(env: gym.Env, raw, action_map: str = "clip"):
    """The environment action for a network output ``raw``.

    Discrete: ``raw`` is a category index 0 … n-1 (a scalar or one-element array); the result
    is a Python int, offset by the space's ``start``. Continuous: ``raw`` holds ``dim`` values,
    clipped to the bounds and returned as a float32 array of the space's shape; with
    ``action_map = "affine"`` first mapped to ``a·(high − low) − low`` (the published MAP
    Propagation code's map; it needs finite bounds). With infinite bounds, as in
    ``asyncneurons/Regression-v0``, clipping leaves the value unchanged.
    """
    space = env.action_space
    if isinstance(space, spaces.Discrete):
        arr = np.asarray(raw).reshape(-1)
        if arr.size != 1:
            raise ValueError(f"a discrete action needs one value, got {arr.size}")
        idx = int(arr[0])
        if not 0 <= idx < int(space.n):
            raise ValueError(f"action index {idx} is outside 0 … {int(space.n) - 1}")
        return int(space.start) + idx
    if isinstance(space, spaces.Box):
        arr = np.asarray(raw, dtype=np.float64).reshape(space.shape)
        if action_map == "affine":
            if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
                raise ValueError(f'action_map "affine" needs a bounded action box, got {space}')
            arr = arr * (space.high - space.low) - space.low
        return np.clip(arr, space.low, space.high).astype(np.float32)
    raise ScenarioError(f"env.id: action space {space} is not supported")


__all__ = ["SUPPORTED", "GYM_ENVS", "OWN_ENVS", "Multiplexer", "Regression", "register",
           "known_env_ids", "import_modules", "check_registered", "check_spaces", "make_env",
           "action_spec", "to_env_action"]
