"""The k-address-bit multiplexer as a one-step gymnasium environment (algorithms.md §5.1).

Task
    An observation holds ``k`` address bits followed by ``2**k`` data bits, each an independent
    fair coin, encoded ±1 (a bit b is fed as ``2b - 1``). The address is the binary number the
    address bits spell, the first bit being the most significant; the target is the data bit
    at that address, ``y = data[address]``. The agent answers with one action: ``1`` means +1
    and ``0`` means −1. The reward is +1 if the answer equals ``y`` and −1 otherwise, so a
    random policy earns 0 on average and accuracy = (1 + mean reward) / 2.

    Every episode is a single step: ``step`` returns ``terminated=True``; call ``reset`` to draw
    the next, independent sample.

Registered ids (on ``import asyncneurons.tasks``)
    ``asyncneurons/Multiplexer20-v0``  k = 4, 20 inputs (the Weight Maximization task)
    ``asyncneurons/Multiplexer37-v0``  k = 5, 37 inputs (the MAP Propagation task)
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Multiplexer(gym.Env):
    """k-address-bit multiplexer: observe ``k + 2**k`` bits (±1), answer the addressed data bit.

    Parameters
    ----------
    k : int
        Number of address bits (≥ 1). The observation has ``k + 2**k`` components.

    ``info`` from ``reset`` and ``step`` holds ``address`` (int) and ``target`` (±1).
    Seeding goes through ``reset(seed=...)`` and ``self.np_random``; resets without a seed
    continue the same stream.
    """

    metadata = {"render_modes": []}

    def __init__(self, k: int = 4, render_mode=None):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"multiplexer: k must be an integer ≥ 1, got {k!r}")
        if render_mode is not None:
            raise ValueError(f"multiplexer: render_mode {render_mode!r} is not supported")
        self.k = int(k)
        self.n_data = 2 ** self.k
        self.n_inputs = self.k + self.n_data
        self.render_mode = None
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(self.n_inputs,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self._weights = 2 ** np.arange(self.k - 1, -1, -1, dtype=np.int64)  # first bit = MSB
        self._obs = None
        self._address = 0
        self._target = 0
        self._done = True

    @staticmethod
    def target_of(obs, k: int) -> tuple[int, int]:
        """``(address, target)`` of a ±1 (or 0/1) observation vector; the target is ±1."""
        bits = (np.asarray(obs) > 0).astype(np.int64)
        address = int(bits[:k] @ (2 ** np.arange(k - 1, -1, -1, dtype=np.int64)))
        return address, int(2 * bits[k + address] - 1)

    def _info(self) -> dict:
        return {"address": self._address, "target": self._target}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        bits = self.np_random.integers(0, 2, size=self.n_inputs)
        self._obs = (2 * bits - 1).astype(np.float32)
        self._address = int(bits[: self.k] @ self._weights)
        self._target = int(2 * bits[self.k + self._address] - 1)
        self._done = False
        return self._obs.copy(), self._info()

    def step(self, action):
        if self._obs is None:
            raise gym.error.ResetNeeded("multiplexer: call reset() before step()")
        if self._done:
            raise gym.error.ResetNeeded("multiplexer: the one-step episode has ended; call reset()")
        if not self.action_space.contains(action):
            raise ValueError(f"multiplexer: action {action!r} is not 0 or 1")
        answer = 1 if int(action) == 1 else -1
        reward = 1.0 if answer == self._target else -1.0
        self._done = True
        return self._obs.copy(), reward, True, False, self._info()
