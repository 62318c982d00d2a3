"""The scalar regression task of MAP Propagation as a one-step gymnasium environment
(algorithms.md §5.2).

Task
    An observation is ``x ~ N(0, I_8)``. The target comes from a fixed two-layer ReLU teacher
    without biases, ``y = relu(relu(x W0) W1)`` (row vector ``x``; ``W0`` is 8×8, ``W1`` is 8×1),
    so ``y ≥ 0``. The agent answers with one real number ``a`` (a float32 array of shape
    ``(1,)``); the reward is ``-(a - y)²``.

    Every episode is a single step: ``step`` returns ``terminated=True``; call ``reset`` to draw
    the next, independent sample.

Teacher weights
    The published code's ``reg.npy`` (a pickled dict), converted to plain JSON and shipped as
    ``asyncneurons/tasks/data/regression_teacher.json``. It is read with :mod:`json` through
    :mod:`importlib.resources`, never unpickled.

Registered id (on ``import asyncneurons.tasks``)
    ``asyncneurons/Regression-v0``
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import gymnasium as gym
import numpy as np
from gymnasium import spaces

N_INPUTS = 8
TEACHER_FILE = "data/regression_teacher.json"


@functools.cache
def _teacher_weights() -> tuple[np.ndarray, np.ndarray]:
    """``(W0, W1)`` as read-only float64 arrays of shapes (8, 8) and (8, 1)."""
    text = resources.files("asyncneurons.tasks").joinpath(TEACHER_FILE).read_text("utf-8")
    data = json.loads(text)
    w0 = np.array(data["W0"], dtype=np.float64)
    w1 = np.array(data["W1"], dtype=np.float64)
    if w0.shape != (N_INPUTS, N_INPUTS) or w1.shape != (N_INPUTS, 1):
        raise ValueError(f"regression teacher: expected W0 (8, 8) and W1 (8, 1), "
                         f"got {w0.shape} and {w1.shape}")
    w0.flags.writeable = False
    w1.flags.writeable = False
    return w0, w1


class Regression(gym.Env):
    """Scalar regression against a fixed ReLU teacher: observe 8 Gaussian inputs, answer ``y``.

    ``info`` from ``reset`` and ``step`` holds ``target`` (``y``, a float). The target is the
    teacher's output on the float32 observation, rounded to float32 (the action space's
    precision), so the perfect action ``a = y`` exists in the action space and earns exactly 0.
    Seeding goes through ``reset(seed=...)`` and ``self.np_random``; resets without a seed
    continue the same stream.
    """

    metadata = {"render_modes": []}

    def __init__(self, render_mode=None):
        if render_mode is not None:
            raise ValueError(f"regression: render_mode {render_mode!r} is not supported")
        self.render_mode = None
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(N_INPUTS,), dtype=np.float32)
        self.action_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        self._obs = None
        self._target = 0.0
        self._done = True

    @staticmethod
    def weights() -> tuple[np.ndarray, np.ndarray]:
        """The teacher's ``(W0, W1)`` (read-only float64 arrays)."""
        return _teacher_weights()

    @staticmethod
    def teacher(x):
        """The teacher's ``y = relu(relu(x W0) W1)`` in float64.

        ``x`` is one observation of shape (8,) (returns a float) or a batch of shape (n, 8)
        (returns an array of shape (n,)).
        """
        w0, w1 = _teacher_weights()
        arr = np.asarray(x, dtype=np.float64)
        if arr.shape[-1:] != (N_INPUTS,) or arr.ndim > 2:
            raise ValueError(f"regression: teacher input must have shape (8,) or (n, 8), "
                             f"got {arr.shape}")
        y = np.maximum(np.maximum(arr @ w0, 0.0) @ w1, 0.0)[..., 0]
        return float(y) if arr.ndim == 1 else y

    def _info(self) -> dict:
        return {"target": self._target}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._obs = self.np_random.standard_normal(N_INPUTS).astype(np.float32)
        self._target = float(np.float32(self.teacher(self._obs)))
        self._done = False
        return self._obs.copy(), self._info()

    def step(self, action):
        if self._obs is None:
            raise gym.error.ResetNeeded("regression: call reset() before step()")
        if self._done:
            raise gym.error.ResetNeeded("regression: the one-step episode has ended; call reset()")
        arr = np.asarray(action, dtype=np.float64)
        if arr.size != 1:
            raise ValueError(f"regression: action must be one number, got shape {arr.shape}")
        a = float(arr.reshape(-1)[0])
        if not np.isfinite(a):
            raise ValueError(f"regression: action {a!r} is not finite")
        error = a - self._target
        reward = 0.0 - error * error   # 0.0, not -0.0, for a perfect answer
        self._done = True
        return self._obs.copy(), reward, True, False, self._info()
