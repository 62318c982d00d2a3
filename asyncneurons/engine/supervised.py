"""Single-step supervised tasks in batches: the published protocol of MAP Propagation's
multiplexer and regression experiments (algorithms.md §3.6).

Each update draws ``[learning] batch`` independent samples (one gymnasium episode each), samples
the network on all of them with shared weights, computes each sample's reward, relaxes the hidden
units toward their MAP values given the sampled output (``map_prop``; ``map_steps`` synchronous
iterations) and learns from the mean over the batch::

    E_b = c_b · e_b ⊗ h_b             (λ = 0: the trace is the current term)
    W  ← W + Adam( mean_b(E_b · δ_b) )

with δ_b the reward (multiplexer), or, with ``[learning] target_signal``, δ_b = y_b − μ_MAP,b and
the gate c_b = 1/(v_b − μ_MAP,b) (regression); c_b = 1 otherwise. Under ``global_reinforce`` the
scores are taken at the sampled state instead. Each update is one row of ``metrics.csv``: its
``return`` is the batch's mean reward, so the published metric (the average over all rows) is
the paper's. There is no time here: the batch is the synchronous limit of 128 environments
served by one network. Randomness is keyed per (run, sample in the batch, unit, update).
"""

from __future__ import annotations

import time

import numpy as np

from asyncneurons.learning import streams
from asyncneurons import tasks
from asyncneurons.errors import ScenarioError
from asyncneurons.engine.network import _unit_ids, init_weights
from asyncneurons.learning.optim import AdamConfig, adam_ascent, linear_schedule
from asyncneurons.engine.replicas import _sample
from asyncneurons.learning.rules.map_prop import map_error, relax_layers
from asyncneurons.engine.simulation import _per_layer, build_graph, run_seed
from asyncneurons.learning.units import UNIT_KINDS, LayerParams


class SupervisedRun:
    """One run of a batched single-step task; ``run()`` like a Simulation."""

    def __init__(self, scenario, run: int = 0, *, on_episode=None, max_ticks: int | None = None):
        s = self.scenario = scenario
        L = s.learning
        if L.critic != "none" or L.rule not in ("map_prop", "global_reinforce"):
            raise ScenarioError("learning.batch: batches serve single-step tasks with critic = none and rule "
                                "map_prop or global_reinforce")
        self.run_index, self.seed = run, run_seed(s.experiment.seed, run)
        B = self.B = L.batch
        self.tasks = [tasks.make_env(s.env.id, s.env.max_episode_steps) for _ in range(B)]
        spec = tasks.action_spec(self.tasks[0])
        n_obs = int(np.prod(self.tasks[0].observation_space.shape))
        g = build_graph(s, n_obs, spec, self.seed)
        uid = _unit_ids(g)
        n_layers = max(a["layer"] for _, a in g.nodes(data=True))
        by_layer = [sorted((n for n, a in g.nodes(data=True) if a["layer"] == l), key=lambda n: g.nodes[n]["index"])
                    for l in range(n_layers + 1)]
        sizes = {l: len(ns) for l, ns in enumerate(by_layer)}
        self.adam = AdamConfig(L.adam_beta1, L.adam_beta2, L.adam_eps, L.bias_correction_steps)
        self.layers = []
        for l in range(1, n_layers + 1):
            names = by_layer[l]
            uids = np.array([uid[n] for n in names])
            P = np.stack([init_weights(g, self.seed, n, by_layer[l - 1], uid, sizes, s.network.bias_init) for n in names])
            batch_seeds = [streams.seed_of(self.seed, "batch", b) for b in range(B)]
            self.layers.append(dict(
                kind=UNIT_KINDS[g.nodes[names[0]]["kind"]], P=P, M=np.zeros_like(P), V=np.zeros_like(P), t=0,
                keys1=np.stack([streams.unit_keys(x, streams.SAMPLE, uids) for x in batch_seeds]),
                keys2=np.stack([streams.unit_keys(x, streams.SAMPLE2, uids) for x in batch_seeds]),
                lp=LayerParams(_per_layer(s.network.temperature, l, "network.temperature"),
                               _per_layer(s.network.variance, l, "network.variance")),
                lr=(_per_layer(L.lr, l, "learning.lr"),
                    _per_layer(L.lr_end if L.lr_end is not None else L.lr, l, "learning.lr_end"))))
        self.on_episode, self.max_ticks = on_episode, max_ticks

    def _lr(self, lay, step):
        return linear_schedule(*lay["lr"], self.scenario.learning.lr_steps, step)

    def _observe(self, update: int):
        obs, targets = [], []
        for b, env in enumerate(self.tasks):
            o, info = env.reset(seed=streams.seed_of(self.seed, "update", update, b) % (2 ** 31))
            obs.append(np.asarray(o, dtype=np.float64).ravel())
            targets.append(float(info.get("target", 0.0)))
        return np.stack(obs), np.array(targets)

    def step(self, update: int) -> float:
        """One batch: sample, reward, (relax), learn; return the batch's mean reward."""
        s, L, B = self.scenario, self.scenario.learning, self.B
        x, targets = self._observe(update)
        obs, values, auxes, Hs, pots = x, [], [], [], []
        counter = np.full(self.layers[0]["P"].shape[0], update, dtype=np.int64)
        for lay in self.layers:
            H = np.empty((B,) + lay["P"].shape)
            H[..., :-1] = x[:, None, :]
            H[..., -1] = 1.0
            pot = x @ lay["P"][:, :-1].T + lay["P"][:, -1]
            counter = np.full(lay["P"].shape[0], update, dtype=np.int64)
            u1 = streams.uniforms(lay["keys1"], counter)
            u2 = streams.uniforms(lay["keys2"], counter) if lay["kind"].gaussian else None
            x, aux, _ = _sample(lay["kind"], pot, lay["lp"], u1, u2)
            values.append(x)
            auxes.append(aux)
            Hs.append(H)
            pots.append(pot)
        out = self.layers[-1]["kind"]
        action = auxes[-1][1] if out.name in ("categorical", "softmax") else values[-1]
        rewards = np.array([float(env.step(tasks.to_env_action(env, action[b], s.env.action_map))[1])
                            for b, env in enumerate(self.tasks)])
        frozen = action if out.name in ("categorical", "softmax") else None
        kinds, lps = [y["kind"] for y in self.layers], [y["lp"] for y in self.layers]
        if L.rule == "map_prop":
            vals, Hs, pots = relax_layers([y["P"] for y in self.layers], kinds, lps, obs, values, frozen,
                                          L.map_steps, L.map_step_size)
        else:
            vals = values
        delta, gate = rewards, np.ones(B)
        if L.target_signal:
            mu = pots[-1][:, 0]
            delta = targets - mu
            gate = 1.0 / (vals[-1][:, 0] - mu)
        last = len(self.layers) - 1
        for l, lay in enumerate(self.layers):
            e = map_error(kinds[l], vals[l], pots[l], lps[l], frozen if l == last else None)
            g = gate[:, None] * e * delta[:, None]  # (B, units): the mean of g ⊗ h over the batch
            U = np.einsum("bu,bi->ui", g, Hs[l][:, 0, :]) / B
            lay["t"] += 1
            adam_ascent(lay["P"], lay["M"], lay["V"], U, lay["t"], self._lr(lay, update), self.adam)
        return float(rewards.mean())

    def run(self):
        n = self.scenario.experiment.episodes
        for update in range(n if self.max_ticks is None else min(n, self.max_ticks)):
            wall = time.perf_counter()
            r = self.step(update)
            if not all(np.isfinite(lay["P"]).all() for lay in self.layers):
                from asyncneurons.errors import DivergenceError
                raise DivergenceError(f"a weight became non-finite at update {update}; the learning rate "
                                      f"learning.lr is the most likely cause")
            if self.on_episode is not None:
                self.on_episode({"run": self.run_index, "episode": update, "return": r, "length": self.B,
                                 "sim_time_ms": 0.0, "wall_s": time.perf_counter() - wall, "stale_actions": 0})
        return self
