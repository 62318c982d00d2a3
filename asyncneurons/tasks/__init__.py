"""Tasks: the gymnasium environments a scenario may name, and how actions reach them.

``SUPPORTED`` lists the ids a scenario's ``env.id`` may take: five gymnasium classics and our
own multiplexers and scalar regression task (registered under the ``asyncneurons/``
namespace when this package is imported). Environments are plain (not vectorized): the
simulator handles resets itself.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..errors import ScenarioError, did_you_mean
from .multiplexer import Multiplexer
from .regression import Regression

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
    """Every id :func:`make_env` accepts, sorted."""
    return list(SUPPORTED)


def make_env(env_id: str, max_episode_steps: int | None = None) -> gym.Env:
    """A fresh gymnasium environment for ``env_id`` (one of :data:`SUPPORTED`).

    ``max_episode_steps`` overrides the registered time limit. An unknown id raises
    :class:`~asyncneurons.errors.ScenarioError` naming ``env.id`` with a suggestion.
    """
    if env_id not in SUPPORTED:
        known = ", ".join(known_env_ids())
        raise ScenarioError(f'env.id: unknown environment "{env_id}"'
                            f"{did_you_mean(env_id, SUPPORTED)}; known: {known}")
    register()
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": int(max_episode_steps)}
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled:
        spec = _box2d_fallback(env_id)
        if spec is None:
            raise
        return gym.make(spec, **kwargs)


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
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return ("continuous", int(space.shape[0]), np.asarray(space.low, dtype=float).copy(),
                np.asarray(space.high, dtype=float).copy())
    raise ScenarioError(f"env.id: action space {space} is not supported "
                        "(need Discrete or a one-dimensional Box)")


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
           "known_env_ids", "make_env", "action_spec", "to_env_action"]
