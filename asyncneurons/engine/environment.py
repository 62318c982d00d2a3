"""The environment process: observations out, actions in, the TD error broadcast.

At each of its steps k (agent step k, counting every step, the post-terminal one included):

1. it applies the action it holds to the gymnasium task (``env.step``), or, when the previous
   observation ended an episode and ``[env] dummy_step`` is on, resets the task instead: a dummy
   step with reward 0 whose TD error is masked (algorithms.md §1.3);
2. the critic evaluates V(s_k) and computes δ_k = r_k + γ V(s_k)(1 − terminated) − V(s_{k−1}),
   zeroed after a dummy step and on a time-limit end (unless ``bootstrap_truncated``); without a
   critic δ_k = r_k;
3. the critic learns from δ_k (it lives here, so it learns at once), clears its trace on a new
   episode and records ∇V(s_k);
4. δ_k is broadcast: it reaches each unit after that unit's reward delay, marked "new episode"
   when traces must be cleared after learning;
5. the observation s_k goes out to the input units (wave k).

**Pacing.** Under ``wait`` the next step happens at the instant an action of wave ≥ k arrives
(an action computed from the current observation): the synchronous limit. Under ``clock`` a
step happens every ``period`` ms with the latest action held, whatever its wave; such an
action is *stale* when it was computed from an older observation than the last one emitted,
and each episode's count of stale actions is recorded. Before the network's first action has
arrived the environment uses a default action: a uniformly random one from a keyed stream for
discrete actions, the middle of the action box for continuous ones (also counted as stale).

In the synchronous limit (:mod:`asyncneurons.engine.instant`) the process runs the events of the
instant itself, where it would wait for them: the learning signals, deliveries and firings that
follow its step, in SimPy's order. Under ``wait`` pacing it then goes on to the next step without
waiting on an event, unless an interrupt is waiting (:func:`asyncneurons.engine.interrupts.between_events`):
it then waits on one, so that the run stops there, between two steps.

**Stopping.** The run stops at the step that ends its last episode, before any learning from
that step.

**Checkpoints.** When the first step of a new episode is due, the process offers the simulation
a consistent moment to save itself (``sim.checkpoint``, :mod:`asyncneurons.engine.checkpoint`); its own
counters live on the object so that a restored process continues from there.
"""

from __future__ import annotations

import math
import time

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit

from asyncneurons.engine import events, interrupts
from asyncneurons.learning import streams
from asyncneurons import tasks
from asyncneurons.learning.critic import Critic
from asyncneurons.errors import DivergenceError


class EnvironmentProcess:
    """Owns the gymnasium task and the critic's place in time."""

    def __init__(self, sim):
        self.sim = sim
        s = sim.scenario
        self.pacing = s.env.pacing
        self.period = s.env.period
        self.gamma = s.env.gamma
        self.clip = s.env.reward_clip
        self.bootstrap = s.env.bootstrap_truncated
        self.dummy_step = s.env.dummy_step
        self.action_map = s.env.action_map
        self.episodes = s.experiment.episodes
        self.action = None
        self.action_wave = -1
        self.waiting = None
        self.wave = 0
        kind = sim.action_spec
        space = sim.task.action_space
        self.n_discrete = int(space.n) if isinstance(space, gym.spaces.Discrete) else 0
        self.discrete_start = int(space.start) if self.n_discrete else 0
        self.step_task = task_stepper(sim.task)
        if kind[0] == "discrete":
            u = streams.uniform_at(sim.seed, streams.ACTION, 0, 0)
            self.default_action = min(int(u * kind[1]), kind[1] - 1)
        else:
            low, high = np.asarray(kind[2]), np.asarray(kind[3])
            bounded = np.isfinite(low) & np.isfinite(high)
            self.default_action = np.where(bounded, (np.where(bounded, low, 0) + np.where(bounded, high, 0)) / 2.0,
                                           np.clip(0.0, low, high))

    def receive_action(self, action, wave: int, at: float | None = None) -> None:
        """The output has sampled (now, or at ``at`` when a firing window computed it at the
        output's own time): hold its action; under wait pacing, step at that instant, after every
        firing of it, if the action is current."""
        self.action, self.action_wave = action, wave
        if self.waiting is not None and wave >= self.wave:
            if at is None:
                events.trigger(self.waiting, events.ENV)
            else:
                events.trigger_at(self.waiting, events.ENV, at)

    def _reset(self, episode: int):
        seed = streams.seed_of(self.sim.seed, "episode", episode) % (2 ** 31)
        obs, _ = self.sim.task.reset(seed=seed)
        return np.asarray(obs, dtype=np.float64).ravel()

    def _emit(self, obs: np.ndarray, wave: int) -> None:
        sim = self.sim
        self.wave = wave
        if sim.on_event is not None:
            for name, v in zip(sim.input_group.names, obs):
                sim.on_event(sim.env.now, name, "observation", float(v), wave)
        sim.send(sim.input_group, obs, wave)

    def run(self, resumed: bool = False):
        """The environment's process. With ``resumed`` it continues a restored checkpoint: the
        state below lives on ``self`` and the step that was due when the checkpoint was taken
        runs at once."""
        sim, env = self.sim, self.sim.env
        critic = sim.critic
        if not resumed:
            self.episode = 0
            obs = self._reset(0)
            self.ep = _new_episode(env.now)
            if critic is not None:
                self.v_prev, self.grads = critic.value_and_grad(obs)
                critic.record(self.grads)
            self._emit(obs, 0)
            self.k = 0
            self.prev_end = False
            self.boundary = False
        instant = sim.instant
        plain_critic = critic is not None and all(getattr(type(critic), f) is getattr(Critic, f)
                                                  for f in ("learn", "reset_traces", "record", "learn_and_record"))
        while True:
            if resumed:
                resumed = False
            elif self.pacing == "wait":
                if instant is not None:  # the synchronous limit: the instant's events, then this step
                    instant.run()
                    if interrupts.pending():  # a boundary between two events for the run to stop at
                        yield events.Signal(env, 0.0, events.ENV)
                if instant is None or self.action_wave < self.wave:
                    self.waiting = events.pending(env)
                    if self.action_wave >= self.wave:
                        events.trigger(self.waiting, events.ENV)
                    yield self.waiting
                    self.waiting = None
            else:
                if instant is not None:
                    instant.run()
                yield events.Signal(env, self.period, events.ENV)
            if self.boundary and sim.checkpoint is not None:
                sim.checkpoint(self)  # the first step of a new episode is due: a consistent state
            self.boundary = False
            self.k += 1
            k, ep = self.k, self.ep
            terminated = truncated = False
            if self.prev_end:
                obs = self._reset(self.episode)
                reward, masked, new_episode = 0.0, True, True
                self.prev_end = False
                ep["start"], ep["wall"] = env.now, time.perf_counter()
            else:
                if self.action is None or self.action_wave < self.wave:
                    ep["stale"] += 1
                action = self.default_action if self.action is None else self.action
                if type(action) is int and 0 <= action < self.n_discrete:  # tasks.to_env_action, at once
                    action = self.discrete_start + action
                else:
                    action = tasks.to_env_action(sim.task, action, self.action_map)
                obs, reward, terminated, truncated, _ = self.step_task(action)
                obs = np.asarray(obs, dtype=np.float64).ravel()
                reward = float(reward)
                ep["return"] += reward
                ep["length"] += 1
                masked, new_episode = False, False
            ended = terminated or truncated
            if ended:
                self._end_episode(self.episode, ep)
                self.episode += 1
                if self.episode >= self.episodes:
                    break
            if self.sim.max_ticks is not None and k >= self.sim.max_ticks:
                break
            r = reward if self.clip is None else float(np.clip(reward, -self.clip, self.clip))
            if ended and not self.dummy_step:
                new_episode = True
            if critic is not None:
                value, grads = critic.value_and_grad(obs)
                delta = r + self.gamma * value * (0.0 if terminated else 1.0) - self.v_prev
            else:
                delta = r
            if masked or (truncated and not terminated and not self.bootstrap):
                delta = 0.0
            else:  # diagnostics: |δ| of the episode's unmasked steps
                ep["abs_delta"] = ep.get("abs_delta", 0.0) + abs(delta)
                ep["n_delta"] = ep.get("n_delta", 0) + 1
            if not math.isfinite(delta):
                raise DivergenceError(f"the TD error became {delta} at t = {env.now:.3f} ms, agent step {k}; "
                                      f"the critic's learning rate learning.critic_lr is the most likely cause")
            if sim.on_event is not None:
                sim.on_event(env.now, "environment", "env_step", float(reward), k)
            if ended and not self.dummy_step:
                obs = self._reset(self.episode)
                if critic is not None:
                    value, grads = critic.value_and_grad(obs)
            if critic is not None:
                if plain_critic:  # the three steps below in one compiled call
                    critic.learn_and_record(delta, k, new_episode, grads)
                else:
                    critic.learn(delta, k)
                    if new_episode:
                        critic.reset_traces()
                    critic.record(grads)
                self.v_prev, self.grads = value, grads
            sim.broadcast(delta, k, new_episode)
            if ended:
                if self.dummy_step:
                    self.prev_end = True
                self.boundary = True
                self.ep = _new_episode(env.now)
            self._emit(obs, k)
        sim.done.succeed()

    def _end_episode(self, episode: int, ep: dict) -> None:
        sim = self.sim
        sim.check_finite(episode)
        if sim.on_episode is not None:
            sim.on_episode({
                "run": sim.run_index, "episode": episode, "return": ep["return"], "length": ep["length"],
                "sim_time_ms": sim.env.now - ep["start"], "wall_s": time.perf_counter() - ep["wall"],
                "stale_actions": ep["stale"], "abs_delta": ep.get("abs_delta", 0.0), "n_delta": ep.get("n_delta", 0),
            })


def _new_episode(now: float) -> dict:
    return {"return": 0.0, "length": 0, "start": now, "wall": time.perf_counter(), "stale": 0,
            "abs_delta": 0.0, "n_delta": 0}


def task_stepper(task):
    """``task.step``, without the calls through wrappers that have nothing left to do.

    A task made by :func:`asyncneurons.tasks.make_env` is usually gymnasium's ``TimeLimit``
    around ``OrderEnforcing`` around ``PassiveEnvChecker`` around the environment. Once the task
    has been reset and the checker has checked its first step and the reuse of its data, those
    two only pass the step on; ``TimeLimit`` counts it and truncates the episode at its limit.
    In that state the stepper calls the environment's own step and does ``TimeLimit``'s count
    itself (on the wrapper, so that its reset finds the count as it would); in any other state,
    for any other stack of wrappers, or when a wrapper has been given a ``step`` of its own, it
    calls ``task.step``. The results are the same."""
    limit = task
    order = getattr(limit, "env", None)
    checker = getattr(order, "env", None)
    if not (type(limit) is TimeLimit and type(order) is OrderEnforcing and type(checker) is PassiveEnvChecker):
        return task.step
    inner = checker.env

    def step(action):
        if not (order._has_reset and checker.checked_step and checker.checked_data_reuse) or \
                "step" in limit.__dict__ or "step" in order.__dict__ or "step" in checker.__dict__:
            return limit.step(action)  # (a step given to one of the wrappers themselves is theirs to run)
        obs, reward, terminated, truncated, info = inner.step(action)
        limit._elapsed_steps += 1
        if limit._elapsed_steps >= limit._max_episode_steps:
            truncated = True
        return obs, reward, terminated, truncated, info

    return step
