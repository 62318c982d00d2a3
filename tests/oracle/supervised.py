"""MAP Propagation's single-step supervised tasks in batches (algorithms.md §3.6), from the
equations: the 37-bit multiplexer and the scalar regression.

Per update u: draw B samples (sample b of update u resets its task with
``seed_of(run_seed, "update", u, b) mod 2³¹``; its units are keyed by ``seed_of(run_seed, "batch",
b)`` at counter u), sample the network on each, take each sample's reward, relax the hidden
values toward their MAP values with the output frozen, and learn from the batch mean
``W ← W + Adam(mean_b(c_b δ_b x_bᵀ e_b))`` (λ = 0). The multiplexer learns from δ_b = r_b with
c_b = 1; the regression from δ_b = y_b − μ_MAP,b with the gate c_b = 1/(v_b − μ_MAP,b).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from asyncneurons.learning import streams

from .algorithms import Adam, Layer, _per_layer, map_relax, schedule


class SupervisedOracle:
    def __init__(self, scenario, init: dict, run: int = 0, *, max_ticks: int | None = None):
        s, L = scenario, scenario.learning
        self.s, self.max_ticks, self.B = s, max_ticks, L.batch
        self.seed = streams.seed_of(s.experiment.seed, "run", run)
        import asyncneurons.tasks
        asyncneurons.tasks.register()
        self.tasks = [gym.make(s.env.id) for _ in range(self.B)]
        n_obs = int(np.prod(self.tasks[0].observation_space.shape))
        Ps, n = init["actor"], len(init["actor"])
        kinds = [s.network.unit] * (n - 1) + [s.network.output]
        temps, variances = _per_layer(s.network.temperature, n), _per_layer(s.network.variance, n)
        self.W = [P[:, :-1].T.copy() for P in Ps]
        self.b = [P[:, -1].copy() for P in Ps]
        adam = (L.adam_beta1, L.adam_beta2, L.adam_eps, L.bias_correction_steps)
        self.adam = [(Adam(*adam), Adam(*adam)) for _ in Ps]
        self.lr = list(zip(_per_layer(L.lr, n), _per_layer(L.lr_end if L.lr_end is not None else L.lr, n)))
        self.nets = []  # per sample of the batch: its layers (shared weights, its own keys)
        for b in range(self.B):
            seed, first, layers = streams.seed_of(self.seed, "batch", b), n_obs, []
            for l, P in enumerate(Ps):
                uid = np.arange(first, first + P.shape[0], dtype=np.int64)
                first += P.shape[0]
                layers.append(Layer(self.W[l], self.b[l], kinds[l], temps[l], variances[l],
                                    streams.unit_keys(seed, streams.SAMPLE, uid),
                                    streams.unit_keys(seed, streams.SAMPLE2, uid), self.lr[l], None, None))
            self.nets.append(layers)
        self.episodes = []

    def step(self, u: int) -> float:
        L = self.s.learning
        UW = [np.zeros_like(W) for W in self.W]
        Ub = [np.zeros_like(b) for b in self.b]
        rewards = []
        for task, layers, b in zip(self.tasks, self.nets, range(self.B)):
            obs, info = task.reset(seed=streams.seed_of(self.seed, "update", u, b) % (2 ** 31))
            x = s0 = np.asarray(obs, dtype=np.float64).ravel()
            for lay in layers:
                lay.count = u
                lay.sample(x)
                x = lay.h
            out = layers[-1]
            if out.kind == "categorical":
                action, frozen = int(task.action_space.start) + out.a, out.a
            else:
                space = task.action_space
                action, frozen = np.clip(out.h.reshape(space.shape), space.low, space.high).astype(np.float32), None
            reward = float(task.step(action)[1])
            rewards.append(reward)
            vals, pots, errors = map_relax(layers, s0, frozen, L.map_steps, L.map_step_size)
            delta, gate = reward, 1.0
            if L.target_signal:
                mu = pots[-1][0]
                delta, gate = float(info["target"]) - mu, 1.0 / (vals[-1][0] - mu)
            for l, (x_in, e) in enumerate(zip([s0] + vals[:-1], errors)):
                UW[l] += np.outer(x_in, gate * e * delta)
                Ub[l] += gate * e * delta
        for l in range(len(self.W)):
            lr = schedule(*self.lr[l], L.lr_steps, u)
            self.adam[l][0].step(self.W[l], UW[l] / self.B, lr)
            self.adam[l][1].step(self.b[l], Ub[l] / self.B, lr)
        return float(np.mean(rewards))

    def run(self):
        n = self.s.experiment.episodes
        for u in range(n if self.max_ticks is None else min(n, self.max_ticks)):
            self.episodes.append((u, self.step(u)))
        return self

    def layer_matrices(self) -> dict:
        return {l + 1: np.concatenate([W.T, b[:, None]], axis=1) for l, (W, b) in enumerate(zip(self.W, self.b))}
