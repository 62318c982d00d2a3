"""The oracle: the plain layer-synchronous algorithm, without SimPy.

This is the published actor-critic loop (algorithms.md §1.1) written as one loop over agent
steps, layer by layer. At zero delay, ``on_all`` firing and ``wait`` pacing the event engine
must reproduce it exactly, sample for sample and weight for weight; the tests hold the two
against each other. Per agent step k:

1. act on the task with a_{k−1} (or reset it after a terminal observation: a dummy step);
2. δ_k from the critic (masked after a dummy step and at a time-limit end);
3. the critic learns, clears its trace on a new episode, records ∇V(s_k);
4. the actor learns from δ_k, deepest layer first, and clears its traces on a new episode;
5. forward pass on s_k: every layer samples in turn and adds its score to its trace; a_k.

One documented difference from the published code: there the actor samples a_k in the forward
pass *before* learning from δ_k (step 1 of §1.1), here after it. Samples therefore see weights
one update fresher. Both orders credit δ_k to the same traces; the event engine's order within an
instant ("learning signals before new inputs") is the one kept here.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from asyncneurons.learning import streams, traces
from asyncneurons import tasks
from asyncneurons.learning.critic_choice import make_critic
from asyncneurons.learning.kernels import potential
from asyncneurons.learning.rules.map_prop import map_error, relax_layers
from asyncneurons.engine.network import _unit_ids, init_weight_rows
from asyncneurons.learning.optim import AdamConfig, linear_schedule
from asyncneurons.learning.rules import RULES
from asyncneurons.engine.simulation import _per_layer, build_graph, run_seed
from asyncneurons.learning.units import UNIT_KINDS, LayerParams


def synchronous_layers(scenario, g, seeds, *, stacked: bool = False) -> list:
    """The layers of a layered network for the synchronous loops: parameters, traces, moments,
    sample counters, keys and per-layer constants. With ``stacked``, one run per seed along a
    leading axis (:mod:`asyncneurons.engine.replicas`); otherwise the single run of ``seeds[0]``."""
    s, L = scenario, scenario.learning
    uid = _unit_ids(g)
    n_layers = max(a["layer"] for _, a in g.nodes(data=True))
    by_layer = [sorted((n for n, a in g.nodes(data=True) if a["layer"] == l), key=lambda n: g.nodes[n]["index"])
                for l in range(n_layers + 1)]
    sizes = {l: len(ns) for l, ns in enumerate(by_layer)}
    join = np.stack if stacked else (lambda xs: xs[0])
    layers = []
    for l in range(1, n_layers + 1):
        names = by_layer[l]
        uids = np.array([uid[n] for n in names])
        P = init_weight_rows(g, seeds, names, by_layer[l - 1], uid, sizes, s.network.bias_init)
        P = P if stacked else P[0]
        layers.append(SimpleNamespace(
            layer=l, names=names, kind=UNIT_KINDS[g.nodes[names[0]]["kind"]], P=P,
            E=np.zeros_like(P), M=np.zeros_like(P), V=np.zeros_like(P), t=0,
            count=np.zeros(len(names), dtype=np.int64), retro_buckets=l > 1,
            role="output" if l == n_layers else "hidden",
            keys1=join([streams.unit_keys(seed, streams.SAMPLE, uids) for seed in seeds]),
            keys2=join([streams.unit_keys(seed, streams.SAMPLE2, uids) for seed in seeds]),
            lp=LayerParams(_per_layer(s.network.temperature, l, "network.temperature"),
                           _per_layer(s.network.variance, l, "network.variance")),
            lr=(_per_layer(L.lr, l, "learning.lr"),
                _per_layer(L.lr_end if L.lr_end is not None else L.lr, l, "learning.lr_end"))))
        traces.configure(layers[-1], L, s.env.gamma)
    return layers


class Reference:
    """Layer-synchronous run of a layered scenario (delays and timing keys are ignored)."""

    now = 0.0  # the synchronous limit is one instant: exponential traces never decay (asyncneurons.learning.traces)

    def __init__(self, scenario, run: int = 0, *, on_episode=None, max_ticks: int | None = None):
        s = self.scenario = scenario
        self.run_index = run
        self.seed = run_seed(s.experiment.seed, run)
        self.task = tasks.make_env(s.env.id, s.env.max_episode_steps)
        self.action_spec = tasks.action_spec(self.task)
        n_obs = int(np.prod(self.task.observation_space.shape))
        g = self.graph = build_graph(s, n_obs, self.action_spec, self.seed)
        L = s.learning
        self.adam = AdamConfig(L.adam_beta1, L.adam_beta2, L.adam_eps, L.bias_correction_steps)
        self.layers = synchronous_layers(s, g, [self.seed])
        self.n_layers = len(self.layers)
        self.decay = L.lambda_ * s.env.gamma
        self.rule = RULES[L.rule](s)
        self.critic = make_critic(s, n_obs, self.seed, self.adam)
        self.relaxation = SyncRelaxation(self)
        self.on_episode = on_episode
        self.max_ticks = max_ticks
        self.actions = []

    def lr(self, layer: int, step: int) -> float:
        return linear_schedule(*self.layers[layer - 1].lr, self.scenario.learning.lr_steps, step)

    def forward(self, obs: np.ndarray):
        """Sample every layer in turn on ``obs``; return the action."""
        self.obs = x = obs
        for lay in self.layers:
            H = np.empty_like(lay.P)
            H[:, :-1] = x
            H[:, -1] = 1.0
            pot = potential(lay.P, H)
            u1 = streams.uniforms(lay.keys1, lay.count)
            u2 = streams.uniforms(lay.keys2, lay.count) if lay.kind.gaussian else None
            values, aux = lay.kind.sample(pot, lay.lp, u1, u2)
            g = lay.kind.score(values, pot, aux, lay.lp)
            lay.H, lay.values, lay.aux = H, values, aux
            self.rule.on_sample(self, lay, values, aux, g)
            lay.count += 1
            x = values
        self._drain(len(self.layers) - 1, len(self.actions), False)
        action = self.layers[-1].kind.action(values, aux)
        self.actions.append(action)
        return action

    def learn(self, delta: float, step: int, new_episode: bool) -> None:
        """Learning, deepest layer first: the output from δ; every hidden layer from δ too, or,
        under rules with retrograde signals, from the summed signals of the layer above."""
        self._retro = None
        if self.rule.broadcast_to_hidden:
            for lay in reversed(self.layers):
                self.rule.on_reward(self, lay, delta, step, new_episode)
        else:
            self.rule.on_reward(self, self.layers[-1], delta, step, new_episode)
            self._drain(len(self.layers) - 1, step, new_episode)
        if new_episode:
            for lay in self.layers:
                lay.E[...] = 0.0

    def send_retro(self, lay, C: np.ndarray, step: int, reset: bool) -> None:
        """The layer below receives, per unit, the sum of ``C`` over this layer's units."""
        self._retro = np.add.accumulate(C, axis=0)[-1]

    def _drain(self, index: int, step: int, reset: bool) -> None:
        """Hand retrograde signals down, layer after layer, from layer ``index`` (0-based)."""
        while getattr(self, "_retro", None) is not None and index > 0:
            index -= 1
            signal, self._retro = self._retro, None
            self.rule.on_retro(self, self.layers[index], signal, step, reset)

    def _reset(self, episode: int):
        seed = streams.seed_of(self.seed, "episode", episode) % (2 ** 31)
        return np.asarray(self.task.reset(seed=seed)[0], dtype=np.float64).ravel()

    def run(self):
        s, critic = self.scenario, self.critic
        gamma, clip = s.env.gamma, s.env.reward_clip
        episode, k, prev_end = 0, 0, False
        obs = self._reset(0)
        ret, length, wall = 0.0, 0, time.perf_counter()
        if critic is not None:
            v_prev, grads = critic.value_and_grad(obs)
            critic.record(grads)
        action = self.forward(obs)
        while True:
            k += 1
            terminated = truncated = False
            if prev_end:
                obs, reward, masked, new_episode, prev_end = self._reset(episode), 0.0, True, True, False
            else:
                obs, reward, terminated, truncated, _ = self.task.step(tasks.to_env_action(self.task, action, s.env.action_map))
                obs, reward = np.asarray(obs, dtype=np.float64).ravel(), float(reward)
                ret, length = ret + reward, length + 1
                masked, new_episode = False, False
            ended = terminated or truncated
            if ended:
                if self.on_episode is not None:
                    self.on_episode({"run": self.run_index, "episode": episode, "return": ret, "length": length,
                                     "sim_time_ms": 0.0, "wall_s": time.perf_counter() - wall, "stale_actions": 0})
                episode, ret, length, wall = episode + 1, 0.0, 0, time.perf_counter()
                if episode >= s.experiment.episodes:
                    break
                if not s.env.dummy_step:
                    new_episode = True
                else:
                    prev_end = True
            if self.max_ticks is not None and k >= self.max_ticks:
                break
            r = reward if clip is None else float(np.clip(reward, -clip, clip))
            if critic is not None:
                value, grads = critic.value_and_grad(obs)
                delta = r + gamma * value * (0.0 if terminated else 1.0) - v_prev
            else:
                delta = r
            if masked or (truncated and not terminated and not s.env.bootstrap_truncated):
                delta = 0.0
            if ended and not s.env.dummy_step:
                obs = self._reset(episode)
                if critic is not None:
                    value, grads = critic.value_and_grad(obs)
            if critic is not None:
                critic.learn(delta, k)
                if new_episode:
                    critic.reset_traces()
                critic.record(grads)
                v_prev = value
            self.learn(delta, k, new_episode)
            action = self.forward(obs)
        return self

    def layer_matrices(self) -> dict:
        return {lay.layer: lay.P for lay in self.layers}


class SyncRelaxation:
    """MAP Propagation in the reference: the published synchronous iterations, run when the
    output has sampled, then every layer records its trace at the relaxed state. Works on layers
    with or without a leading replica axis (:mod:`asyncneurons.engine.replicas`)."""

    def __init__(self, ref):
        self.ref = ref

    def start(self, lay) -> None:
        ref = self.ref
        if lay is not ref.layers[-1]:
            return
        L = ref.scenario.learning
        layers = ref.layers
        values, Hs, pots = relax_layers([y.P for y in layers], [y.kind for y in layers], [y.lp for y in layers],
                                        ref.obs, [y.values for y in layers], lay.frozen_action,
                                        L.map_steps, L.map_step_size)
        for l, y in enumerate(layers):
            e = map_error(y.kind, values[l], pots[l], y.lp, lay.frozen_action if l == len(layers) - 1 else None)
            traces.record(y, e, Hs[l], ref.now)
