"""Replicas: independent runs of one scenario simulated together, with a leading batch axis.

In the synchronous limit (every delay zero, ``on_all`` firing, ``wait`` pacing) every run has the
same event structure, so R runs can share it: every array gains a leading axis of length R
(weights, traces, moments, held values, the critic's parameters), each replica keeps its own
keyed random streams, initial weights and gymnasium task, and one NumPy call serves all R.
Every operation is arranged so that replica r computes exactly the bits of run r simulated alone
(row-wise reductions, stacked matrix products, the same elementwise formulas); a test holds each
replica's episodes and weights equal to the single runs'. For the compiled kernels a layer of R
replicas of m units is one group of R·m rows (:class:`_Rows`): it fires and learns through the
single run's kernels, and what the single run computes over a whole group or buffer is its
kernel once per replica (:mod:`asyncneurons.engine.replica_kernels`).

A layered network in that limit is the single run's *chain* (:mod:`asyncneurons.engine.chain`), and the
replicas take the chain's path where the single run takes it (:class:`_Chain`): every layer of
every replica fires in two compiled calls around NumPy's ``exp`` (the inputs held, the
pre-activations, the keyed sample, score and trace, on all R·m rows), and under Weight
Maximization the whole learning cascade, output to first layer, is one kernel for all replicas.
The critic keeps its gradient as its factors (each layer's input and backward term) and learns,
clears and records its trace in one kernel. ``Replicas(..., chain=False)`` keeps the per-layer
path (each layer and learning signal through the rule, as the reference does), the oracle the
chain is tested against; neither changes a result.

The stochastic (MAP) critic keeps a sample index per replica: a replica whose episode ends
without the dummy step samples its critic again on its new first state, and only its index
moves. Replicas serve the layered rules
(``global_reinforce``, ``weight_max``, ``weight_max_exact``, ``backprop``, ``ste_backprop``) and
MAP Propagation (relaxation period 0), with either critic or none.

A replica whose episodes are done keeps stepping (its rows are no longer reported) until every
replica is done: the others do not depend on it.

Replicas checkpoint at the top of their step loop, mid-episode for most of them: each task is
brought back by replaying the actions it was given since the reset that began its episode
(:mod:`asyncneurons.engine.checkpoint`); a resumed chunk gives the numbers of an uninterrupted one.
"""

from __future__ import annotations

import time

import numpy as np

from asyncneurons.engine import replica_kernels
from asyncneurons.engine.environment import task_stepper
from asyncneurons.learning import compiled, streams, traces
from asyncneurons import tasks
from asyncneurons.learning.critic import init_layer
from asyncneurons.errors import DivergenceError, ScenarioError
from asyncneurons.learning.kernels import NO_DECAYS, potential, sum_rows
from asyncneurons.learning.rules.map_prop import map_error, relax_layers
from asyncneurons.learning.optim import AdamConfig, adam_ascent, adam_constants, linear_schedule
from asyncneurons.learning.rules import RULES
from asyncneurons.learning.rules.base import Rule
from asyncneurons.learning.rules.weight_max import WeightMax
from asyncneurons.engine.reference import SyncRelaxation, synchronous_layers
from asyncneurons.engine.simulation import build_graph, run_seed
from asyncneurons.learning.units import FUSED_KINDS, UNIT_KINDS, LayerParams, sample_and_trace

SUPPORTED_RULES = ("global_reinforce", "weight_max", "weight_max_exact", "backprop", "ste_backprop", "map_prop")


def supports(scenario) -> bool:
    """True when the scenario is in the synchronous limit and its rule and critic are supported."""
    t, s = scenario.timing, scenario
    zero = all(isinstance(d, (int, float)) and float(d) == 0.0
               for d in (t.synapse_delay, t.reward_delay, t.retro_delay, t.synapse_jitter,
                                         t.reward_jitter, t.retro_jitter))
    return (zero and t.firing == "on_all" and t.refractory == 0 and s.env.pacing == "wait" and s.learning.batch == 1
            and s.network.graph is None and s.learning.rule in SUPPORTED_RULES
            and (t.relax_period == 0 or s.learning.rule != "map_prop"))


def _plain(*arrays) -> bool:
    """True when every array is C-contiguous (the compiled kernels' layout)."""
    for a in arrays:
        if not a.flags.c_contiguous:
            return False
    return True


def _finite(a: np.ndarray) -> bool:
    """True when every entry of ``a`` is finite (a finite sum says so at once; NaN and ±∞ carry
    into any sum that contains them)."""
    return bool(np.isfinite(a.sum())) or bool(np.isfinite(a).all())


class _Rows:
    """A stacked layer (R replicas × m units) seen by a rule as one group of R·m rows, replica
    after replica: its parameters, trace and moments are views of the layer's, so the rule's
    compiled learning step (one pass over independent rows) serves every replica at once, and
    the signals it is given and sends carry one entry per row."""

    def __init__(self, lay):
        R, m, n = lay.P.shape
        self.lay, self.m, self.layer, self.retro_buckets = lay, m, lay.layer, lay.retro_buckets
        self.P, self.E, self.M, self.V = (a.reshape(R * m, n) for a in (lay.P, lay.E, lay.M, lay.V))
        self.keys1, self.count = lay.keys1.reshape(R * m), lay.count.reshape(R * m)
        self.decay, self.tau = lay.decay, getattr(lay, "tau", None)
        if self.tau is not None:
            self.trace_time = lay.trace_time.reshape(R * m)

    t = property(lambda self: self.lay.t, lambda self, t: setattr(self.lay, "t", t))


def _policy(pot: np.ndarray, temperature: float, fixed_last: bool) -> np.ndarray:
    """Row-wise softmax, the same operations as :func:`units.categorical_policy` on each row."""
    z = pot / temperature
    if fixed_last:
        z = np.concatenate([z, np.zeros((z.shape[0], 1))], axis=1)
    z = z - z.max(axis=-1, keepdims=True)
    z[z < -30.0] = -30.0
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _sample(kind, pot, lp, u1, u2):
    """A layer's samples for every replica (rows)."""
    if kind.name in ("softmax", "categorical"):
        pi = _policy(pot, lp.temperature, kind.name == "softmax")
        a = np.minimum((np.cumsum(pi, axis=-1) <= u1[:, :1]).sum(axis=-1), pi.shape[1] - 1)
        onehot = np.zeros_like(pi)
        onehot[np.arange(len(a)), a] = 1.0
        g = (onehot - pi) / lp.temperature
        if kind.name == "softmax":
            return onehot[:, :-1], (pi, a), g[:, :-1]
        return onehot, (pi, a), g
    values, aux = kind.sample(pot, lp, u1, u2)
    return values, aux, kind.score(values, pot, aux, lp)



class _Chain:
    """Replicas on the single run's chain path (:mod:`asyncneurons.engine.chain`): every layer fires in
    compiled kernels over its R·m rows (the inputs of each replica held by its rows, the
    pre-activations, NumPy's ``exp``, the keyed sample, score and trace), and under Weight
    Maximization the TD errors' cascade down the layers is one kernel
    (:func:`asyncneurons.engine.replica_kernels.weight_max_chain_rows`, the single run's
    :func:`asyncneurons.learning.compiled.weight_max_chain` on each replica's rows). Built on the
    layers as they are (:meth:`Replicas._prepare`); :func:`_chain_of` says when it applies."""

    def __init__(self, rep, learns: bool):
        R = rep.R
        self.rep, self.R, self.learns = rep, R, learns
        self.layers = []
        for lay, rows in zip(rep.layers, rep._rows):
            m, n = rows.m, lay.P.shape[2]
            name = lay.kind.name
            H = getattr(lay, "H", None)
            if not (isinstance(H, np.ndarray) and H.shape == lay.P.shape and H.dtype == np.float64 and _plain(H)):
                lay.H = H = np.empty_like(lay.P)
            self.layers.append((lay, rows, H.reshape(R * m, n), m, float(lay.lp.temperature), name == "bernoulli",
                                m + 1 if name == "softmax" else m))
        if learns:
            gs = rep._rows
            L = len(gs)
            self.Ps, self.Ms, self.Vs, self.Es = (tuple(getattr(g, a) for g in gs) for a in ("P", "M", "V", "E"))
            self.Cs = tuple(np.empty((R * g.m, g.P.shape[1] - (0 if i == 0 else 1))) for i, g in enumerate(gs))
            self.Rs = tuple(np.empty(R * g.m) for g in gs)
            self.lrs, self.bc1s, self.bc2s = np.empty(L), np.empty(L), np.empty(L)
            self.corrects = np.empty(L, dtype=np.bool_)
            self.lr_steps = rep.scenario.learning.lr_steps

    def fire(self, x: np.ndarray):
        """Every layer of every replica samples in turn on the observations ``x`` (R × n);
        returns each replica's action."""
        R, empty, exp = self.R, np.empty, np.exp
        for lay, rows, H, m, T, bernoulli, n in self.layers:
            decay, decays = lay.decay, NO_DECAYS
            if lay.tau is not None:
                decays = np.ascontiguousarray(traces.record_decay(lay, Replicas.now), dtype=np.float64).reshape(R * m)
                decay = 0.0
            if bernoulli:
                pot, xs, p, out, g = empty((5, R * m))
                replica_kernels.deliver_bernoulli_pre_rows(x, rows.P, H, T, pot, xs, p)
                exp(p, out=p)
                compiled.bernoulli_post(xs, p, rows.keys1, rows.count, T, float(decay), decays, H, rows.E, out, g)
                x = out.reshape(R, m)
                lay.values, lay.aux = x, p.reshape(R, m)
            else:
                pot, z = empty(R * m), empty((R, n))
                replica_kernels.deliver_logits_rows(x, rows.P, H, T, n, pot, z)
                exp(z, out=z)
                out, g, actions = empty(R * m), empty(R * m), empty(R, dtype=np.int64)
                replica_kernels.categorical_rows(z, rows.keys1, rows.count, T, float(decay), decays, H, rows.E, out,
                                                 g, actions)
                x = out.reshape(R, m)
                lay.values, lay.aux = x, (z, actions)
        if bernoulli:
            return x[:, 0].astype(int)
        return actions

    def learn(self, delta: np.ndarray, step: int, reset: np.ndarray) -> None:
        """Weight Maximization's cascade for every replica (δ per replica; ``reset``: per replica,
        traces cleared), with the learning rates and Adam constants of each layer's step."""
        lrs, bc1s, bc2s, corrects, n = self.lrs, self.bc1s, self.bc2s, self.corrects, self.lr_steps
        adam = self.rep.adam
        t_prev = consts = None
        for i, lay in enumerate(self.rep.layers):
            t = lay.t = lay.t + 1
            lo, hi = lay.lr
            lrs[i] = lo + (hi - lo) * min(step, n) / n  # Replicas.lr (optim.linear_schedule)
            if t != t_prev:
                consts, t_prev = adam_constants(adam, t), t
            bc1s[i], bc2s[i], corrects[i] = consts[4], consts[5], consts[6]
        b1, c1, b2, c2, _, _, _, eps = consts
        replica_kernels.weight_max_chain_rows(self.Ps, self.Ms, self.Vs, self.Es, self.Cs, self.Rs, delta, lrs,
                                              b1, c1, b2, c2, bc1s, bc2s, corrects, eps, reset)


def _chain_of(rep):
    """The chain of the replicas ``rep`` (:class:`_Chain`), or None: every layer fires in
    compiled kernels when sampling records the plain trace and every layer is of a kind the
    kernels serve (Bernoulli hidden layers; a Bernoulli, softmax or categorical output); the
    learning cascade is one kernel under first-order Weight Maximization with p = 2 and traces
    per sample."""
    if not rep._fused or any(lay.kind.name not in FUSED_KINDS for lay in rep.layers):
        return None
    if any(lay.kind.name != "bernoulli" for lay in rep.layers[:-1]):
        return None
    for lay in rep.layers:
        if not _plain(lay.P, lay.E, lay.M, lay.V, lay.keys1, lay.count) or lay.count.shape != lay.keys1.shape:
            return None
    rule = rep.rule
    learns = type(rule) is WeightMax and rule.p == 2.0 and all(getattr(lay, "tau", None) is None for lay in rep.layers)
    return _Chain(rep, learns)


class _Factors(tuple):
    """∇V of every replica as its factors ``(xs, ds)`` per layer (:meth:`_BatchCritic.evaluate`):
    the gradient of layer l is ``ds[l][r] ⊗ xs[l][r]`` for replica r."""

    __slots__ = ()


class _BatchCritic:
    """The deterministic critic for R replicas (stacked matrix products, same bits as alone)."""

    def __init__(self, n_obs, hidden, seeds, *, lambda_, gamma, lr_start, lr_end, lr_steps, adam, bias_scale):
        sizes = [n_obs, *hidden, 1]
        self.P = [np.stack([init_layer(s, streams.CRITIC_INIT, l, sizes[l], sizes[l + 1], bias_scale=bias_scale)
                            for s in seeds]) for l in range(len(sizes) - 1)]
        self.Z = [np.zeros_like(p) for p in self.P]
        self.M = [np.zeros_like(p) for p in self.P]
        self.V = [np.zeros_like(p) for p in self.P]
        self.t, self.decay, self.adam, self.lr_steps = 0, lambda_ * gamma, adam, lr_steps
        n = len(self.P)
        per = lambda r: [float(x) for x in (r if isinstance(r, (list, tuple)) else [r])]  # noqa: E731
        self.lr_start, self.lr_end = per(lr_start), per(lr_end)
        self.lr_start *= n if len(self.lr_start) == 1 else 1
        self.lr_end *= n if len(self.lr_end) == 1 else 1

    def evaluate(self, S, rows=None):
        """V(s) of every replica and ∇V(s) as its factors ``(xs, ds)``: per layer l the input
        [x, 1] and the backward term d (∂V/∂pot), the gradient being ``d ⊗ x`` per replica
        (``rows``: which replicas this evaluation is for; a deterministic critic gives the others
        the same bits again, so it evaluates them all). Matrix products are NumPy's, stacked; the
        softplus and σ are the single critic's kernels per replica
        (:mod:`asyncneurons.engine.replica_kernels`)."""
        R = S.shape[0]
        w = self.__dict__.get("_work")
        if w is None or w[0] != R or len(w[1]) != len(self.P) or any(a is not b for a, b in zip(w[1], self.P)):
            w = self._scratch(R)
        _, Ps, pots, bufs, logs, slopes, backT, ones = w
        x = np.empty((R, S.shape[1] + 1))
        x[:, :-1] = S
        x[:, -1] = 1.0
        xs = [x]
        last = len(Ps) - 1
        matmul, exp, log1p, empty = np.matmul, np.exp, np.log1p, np.empty
        for l in range(last):
            pot, buf = pots[l], bufs[l]
            matmul(Ps[l], x[..., None], out=pot[..., None])
            replica_kernels.critic_hidden_pre_rows(pot, buf)
            exp(buf, out=buf)
            log1p(buf, out=logs[l])  # on every entry (contiguous): the first m of each row are kept
            x = empty((R, pot.shape[1] + 1))
            replica_kernels.critic_hidden_post_rows(pot, buf, logs[l], x)
            xs.append(x)
        value = matmul(Ps[last], x[..., None])[:, 0, 0].copy()
        ds = [ones] * len(Ps)
        for l in range(last, 0, -1):  # d^{l-1} = (W^l[:, :-1]ᵀ d^l) · σ(pot^{l-1})
            d = empty(slopes[l - 1].shape)
            np.multiply(matmul(backT[l], ds[l][..., None])[..., 0], slopes[l - 1], out=d)
            ds[l - 1] = d
        return value, _Factors((xs, ds))

    def value_and_grad(self, S, rows=None):
        """V(s) and ∇V(s) of every replica, one array per layer (:meth:`evaluate` and the outer
        products ``d ⊗ x``, the single critic's kernel per replica)."""
        value, (xs, ds) = self.evaluate(S, rows)
        grads = [np.empty(P.shape) for P in self.P]
        for g, d, x in zip(grads, ds, xs):
            replica_kernels.outer_rows(d, x, g)
        return value, grads

    def _scratch(self, R):
        """Buffers for :meth:`evaluate` with R replicas, tied to the current parameters: each
        hidden layer's pre-activations, softplus/σ buffer and its ``log1p``, the transposed
        weights without bias, the output's ∂V/∂pot = 1."""
        Ps = list(self.P)
        pots = [np.empty((R, P.shape[1])) for P in Ps[:-1]]
        bufs = [np.empty((R, 2 * P.shape[1])) for P in Ps[:-1]]
        logs = [np.empty_like(b) for b in bufs]
        slopes = [b[:, b.shape[1] // 2:] for b in bufs]
        backT = [P[:, :, :-1].transpose(0, 2, 1) for P in Ps]
        w = self._work = (R, Ps, pots, bufs, logs, slopes, backT, np.ones((R, 1)))
        return w

    def reevaluate(self, S, rows, value, state):
        """After the replicas in ``rows`` reset their tasks: their V(s) and state evaluated again
        (:meth:`evaluate`), the other replicas' kept as they are (each replica sees what its run
        alone sees)."""
        v2, state2 = self.evaluate(S, rows)
        value = np.where(rows, v2, value)
        return value, self._merge(rows, state, state2)

    @staticmethod
    def _merge(rows, old, new):
        if isinstance(old, tuple):  # gradient factors (xs, ds)
            return type(new)(_BatchCritic._merge(rows, a, b) for a, b in zip(old, new))
        out = []
        for a, b in zip(old, new):
            c = a.copy()
            c[rows] = b[rows]
            out.append(c)
        return out

    def learn(self, delta, step):
        """θ ← θ + Adam(δ · z) for every replica, each at its own δ."""
        self.t += 1
        R, consts = len(delta), adam_constants(self.adam, self.t)
        delta = np.ascontiguousarray(delta, dtype=np.float64)
        for l, P in enumerate(self.P):
            lr = self.lr_start[l] + (self.lr_end[l] - self.lr_start[l]) * min(step, self.lr_steps) / self.lr_steps
            if _plain(P, self.M[l], self.V[l], self.Z[l]):
                replica_kernels.adam_scaled_rows(P.reshape(R, -1), self.M[l].reshape(R, -1), self.V[l].reshape(R, -1),
                                                 self.Z[l].reshape(R, -1), delta, float(lr), *consts)
            else:
                adam_ascent(P, self.M[l], self.V[l], self.Z[l] * delta[:, None, None], self.t, lr, self.adam)

    def record(self, grads, reset):
        """z ← λ_c γ z + ∇V, each replica's z cleared first where ``reset``."""
        reset = np.ascontiguousarray(reset, dtype=np.bool_)
        for z, g in zip(self.Z, grads):
            if _plain(z, g) and z.shape == g.shape:
                R = z.shape[0]
                replica_kernels.record_rows(z.reshape(R, -1), reset, float(self.decay), g.reshape(R, -1))
                continue
            z[reset] = 0.0
            z *= self.decay
            z += g

    def learn_and_record(self, delta, step, reset, grads) -> None:
        """:meth:`learn`, then :meth:`record` of ``grads`` (one array per layer, or the factors
        of :meth:`evaluate`) with the traces of ``reset`` cleared first: one compiled call
        (:mod:`asyncneurons.engine.replica_kernels`) when every array is contiguous."""
        R = len(delta)
        flats = self._flat_views(R)
        fits = flats is not None and (type(grads) is _Factors or (
            type(grads) is list and len(grads) == len(self.P) and _plain(*grads)
            and all(g.shape == P.shape for g, P in zip(grads, self.P))))
        if not fits:
            if isinstance(grads, tuple):  # factors: d ⊗ x, one product per entry
                grads = [d[:, :, None] * x[:, None, :] for x, d in zip(*grads)]
            self.learn(delta, step)
            self.record(grads, reset)
            return
        self.t += 1
        n = self.lr_steps
        lrs = np.array([lo + (hi - lo) * min(step, n) / n for lo, hi in zip(self.lr_start, self.lr_end)])
        _, fP, fM, fV, fZ = flats
        delta = np.ascontiguousarray(delta, dtype=np.float64)
        reset = np.ascontiguousarray(reset, dtype=np.bool_)
        consts = adam_constants(self.adam, self.t)
        if type(grads) is _Factors:
            xs, ds = grads
            replica_kernels.adam_record_outer_rows(fP, fM, fV, fZ, tuple(ds), tuple(xs), delta, lrs, *consts, reset,
                                                   float(self.decay))
        else:
            replica_kernels.adam_record_rows(fP, fM, fV, fZ, tuple(g.reshape(R, -1) for g in grads), delta, lrs,
                                             *consts, reset, float(self.decay))

    def _flat_views(self, R):
        """The parameters, moments and traces as R × k views per layer, of the arrays as they
        are (a checkpoint's restore gives new ones), or None when an array is not contiguous."""
        lists = (self.P, self.M, self.V, self.Z)
        arrays = (*self.P, *self.M, *self.V, *self.Z)
        f = self.__dict__.get("_flats")
        if f is None or f[0] != R or len(f[1]) != len(arrays) or any(a is not b for a, b in zip(f[1], arrays)):
            ok = all(len(x) == len(self.P) and _plain(*x) for x in lists)
            f = self._flats = (R, arrays, *(tuple(a.reshape(R, -1) for a in x) for x in lists)) if ok else \
                (R, arrays, None)
        return f[1:] if f[2] is not None else None


class _BatchMapCritic(_BatchCritic):
    """The MAP Propagation critic for R replicas (:mod:`asyncneurons.learning.map_critic`, batched)."""

    def __init__(self, n_obs, hidden, seeds, *, variance, steps, step_size, **kwargs):
        super().__init__(n_obs, hidden, seeds, **kwargs)
        n = len(self.P)
        self.kinds = [UNIT_KINDS["gaussian"]] * (n - 1) + [UNIT_KINDS["linear_gaussian"]]
        self.lps = [LayerParams(1.0, float(v)) for v in variance]
        self.steps, self.step_size = steps, step_size
        self.count = np.zeros(len(seeds), dtype=np.int64)  # each replica's own sample index
        self.keys = [(np.stack([streams.unit_keys(s, streams.SAMPLE, np.arange(P.shape[1]) + (l << 32)) for s in seeds]),
                      np.stack([streams.unit_keys(s, streams.SAMPLE2, np.arange(P.shape[1]) + (l << 32)) for s in seeds]))
                     for l, P in enumerate(self.P)]

    def value_and_grad(self, S, rows=None):
        """Sample every replica's critic on its row of ``S``, each at its own sample index; only
        the replicas in ``rows`` (all when None) advance theirs, as only they sampled alone."""
        self.count = np.zeros(S.shape[0], dtype=np.int64) + self.count  # a scalar from an old checkpoint
        x, values = S, []
        for l, P in enumerate(self.P):
            H = np.empty_like(P)
            H[..., :-1] = x[:, None, :]
            H[..., -1] = 1.0
            pot = potential(P, H)
            counters = np.broadcast_to(self.count[:, None], P.shape[:2])
            u1, u2 = streams.uniforms(self.keys[l][0], counters), streams.uniforms(self.keys[l][1], counters)
            x, aux = self.kinds[l].sample(pot, self.lps[l], u1, u2)
            values.append(x)
        self.count = self.count + (1 if rows is None else np.asarray(rows, dtype=np.int64))
        return aux[:, 0].copy(), (S.copy(), values)

    @staticmethod
    def _merge(rows, old, new):
        (s_old, v_old), (s_new, v_new) = old, new
        s = s_old.copy()
        s[rows] = s_new[rows]
        return s, _BatchCritic._merge(rows, v_old, v_new)

    def evaluate(self, S, rows=None):
        return self.value_and_grad(S, rows)

    def learn_and_record(self, delta, step, reset, state) -> None:
        self.learn(delta, step)
        self.record(state, reset)

    def record(self, state, reset):
        s, values = state
        vals, Hs, pots = relax_layers(self.P, self.kinds, self.lps, s, values, None, self.steps, self.step_size)
        gate = 1.0 / (vals[-1][:, 0] - pots[-1][:, 0])
        for l, (z, H) in enumerate(zip(self.Z, Hs)):
            e = map_error(self.kinds[l], vals[l], pots[l], self.lps[l])
            z[reset] = 0.0
            z *= self.decay
            z += (gate[:, None] * e)[..., None] * H


class Replicas:
    """R runs of a synchronous-limit scenario, simulated together; ``run()`` like a Simulation.

    ``on_episode(row)`` receives each replica's episodes with ``row["run"]`` its run index.
    ``chain`` (default) fires and learns on the chain path where it applies (:class:`_Chain`);
    False keeps every layer's firing and every learning signal on the per-layer path, the
    oracle the chain is tested against. Neither changes a result.
    """

    now = 0.0  # the synchronous limit is one instant: exponential traces never decay (asyncneurons.learning.traces)

    def __init__(self, scenario, runs, *, on_episode=None, max_ticks: int | None = None, chain: bool = True):
        if not supports(scenario):
            raise ScenarioError("replicas need the synchronous limit (zero delays, on_all firing, wait pacing, "
                                f"a layered network) and one of the rules {', '.join(SUPPORTED_RULES)}")
        s = self.scenario = scenario
        self.runs = list(runs)
        R = len(self.runs)
        self.seeds = [run_seed(s.experiment.seed, r) for r in self.runs]
        self.tasks = [tasks.make_env(s.env.id, s.env.max_episode_steps) for _ in self.runs]
        spec = tasks.action_spec(self.tasks[0])
        n_obs = int(np.prod(self.tasks[0].observation_space.shape))
        g = build_graph(s, n_obs, spec, self.seeds[0])
        L = s.learning
        self.adam = AdamConfig(L.adam_beta1, L.adam_beta2, L.adam_eps, L.bias_correction_steps)
        self.layers = synchronous_layers(s, g, self.seeds, stacked=True)
        for lay in self.layers:
            lay.count = np.zeros(lay.keys1.shape, dtype=np.int64)  # each replica's counters, in lockstep
        self.n_layers = len(self.layers)
        self.rule = RULES[L.rule](s)
        self._fused = type(self.rule).on_sample is Rule.on_sample  # sampling records the plain trace only
        self.relaxation = SyncRelaxation(self)  # the reference's, on arrays with a replica axis
        self.critic = None
        if L.critic == "map_prop":
            self.critic = _BatchMapCritic(n_obs, L.critic_hidden, [streams.seed_of(x, "critic") for x in self.seeds],
                                          lambda_=L.critic_lambda, gamma=s.env.gamma, lr_start=L.critic_lr,
                                          lr_end=L.critic_lr_end if L.critic_lr_end is not None else L.critic_lr,
                                          lr_steps=L.lr_steps, adam=self.adam, bias_scale=s.network.bias_init,
                                          variance=L.critic_variance, steps=L.map_steps, step_size=L.map_step_size)
        elif L.critic == "mlp":
            self.critic = _BatchCritic(n_obs, L.critic_hidden, [streams.seed_of(x, "critic") for x in self.seeds],
                                       lambda_=L.critic_lambda, gamma=s.env.gamma, lr_start=L.critic_lr,
                                       lr_end=L.critic_lr_end if L.critic_lr_end is not None else L.critic_lr,
                                       lr_steps=L.lr_steps, adam=self.adam, bias_scale=s.network.bias_init)
        self.on_episode, self.max_ticks, self.R = on_episode, max_ticks, R
        self._action_map = s.env.action_map
        self.checkpoint = None  # called with the step loop's variables at the top of every step
        self.replay: list = [[] for _ in range(R)]
        self.use_chain, self._chain = chain, None
        self._steppers = [task_stepper(t) for t in self.tasks]
        space = self.tasks[0].action_space
        self._n_discrete = int(space.n) if spec[0] == "discrete" else 0
        self._discrete_start = int(space.start) if spec[0] == "discrete" else 0

    # the interface rules use (as the event engine and the reference offer it)
    def lr(self, layer: int, step: int) -> float:
        return linear_schedule(*self.layers[layer - 1].lr, self.scenario.learning.lr_steps, step)

    def send_retro(self, lay, C, step, reset) -> None:
        """The layer below receives, per replica and unit, the sum of ``C`` over this layer's
        units (rows of a :class:`_Rows` group: one entry per row of the layer below)."""
        if isinstance(lay, _Rows) and _plain(C):
            out = np.empty((self.R, C.shape[1]))
            replica_kernels.sum_blocks(C, lay.m, out)
            self._retro = out.reshape(-1)
        elif isinstance(lay, _Rows):
            self._retro = sum_rows(C.reshape(self.R, lay.m, -1)).reshape(-1)
        else:
            self._retro = sum_rows(C)

    def _drain(self, index: int, step: int, groups) -> None:
        while getattr(self, "_retro", None) is not None and index > 0:
            index -= 1
            signal, self._retro = self._retro, None
            self.rule.on_retro(self, groups[index], signal, step, False)

    def forward(self, obs: np.ndarray) -> np.ndarray:
        self.obs = x = obs
        if self._chain is not None:
            return self._chain.fire(obs)
        for lay, rows in zip(self.layers, self._rows):
            H = np.empty_like(lay.P)
            replica_kernels.hold_inputs(np.ascontiguousarray(x, dtype=np.float64), H)
            lay.H = H
            if self._fused and lay.kind.name in FUSED_KINDS:
                values, aux, g = self._fire(lay, rows)
                lay.values, lay.aux = values, aux
            else:
                pot = potential(lay.P, H)
                u1 = streams.uniforms(lay.keys1, lay.count)
                u2 = streams.uniforms(lay.keys2, lay.count) if lay.kind.gaussian else None
                values, aux, g = _sample(lay.kind, pot, lay.lp, u1, u2)
                lay.values, lay.aux = values, aux
                self.rule.on_sample(self, lay, values, aux, g)
                lay.count += 1
            x = values
        self._drain(len(self.layers) - 1, -1, self.layers)
        kind = self.layers[-1].kind
        if kind.name in ("softmax", "categorical"):
            return aux[1]
        if kind.name == "bernoulli":
            return values[:, 0].astype(int)
        return values

    def _fire(self, lay, rows):
        """A layer's sample, score and trace for every replica in compiled kernels, on its R·m
        rows (the single run's firing, :func:`asyncneurons.learning.units.sample_and_trace`, per row;
        a softmax or categorical output per replica): the same bits as sampling and then
        recording the trace (``Rule.on_sample``)."""
        R, m, n = lay.P.shape
        P, H, E, keys, counters = rows.P, lay.H.reshape(R * m, n), rows.E, rows.keys1, rows.count
        decay = traces.record_decay(lay, self.now)
        per_row = isinstance(decay, np.ndarray)
        if per_row:
            decay = np.ascontiguousarray(decay, dtype=np.float64).reshape(R * m)
        if lay.kind.name == "bernoulli":
            values, p, g = sample_and_trace(lay.kind, P, H, E, keys, counters, lay.lp, decay)
            return values.reshape(R, m), p.reshape(R, m), g.reshape(R, m)
        T = float(lay.lp.temperature)
        n_logits = m + 1 if lay.kind.name == "softmax" else m
        pot, z = np.empty(R * m), np.empty((R, n_logits))
        replica_kernels.logits_rows(P, H, T, m, n_logits, pot, z)
        np.exp(z, out=z)
        values, g, actions = np.empty(R * m), np.empty(R * m), np.empty(R, dtype=np.int64)
        replica_kernels.categorical_rows(z, keys, counters, T, 0.0 if per_row else float(decay),
                                         decay if per_row else NO_DECAYS, H, E, values, g, actions)
        return values.reshape(R, m), (z, actions), g.reshape(R, m)

    def learn(self, delta: np.ndarray, step: int, reset: np.ndarray) -> None:
        """Learning, deepest layer first, each layer seen as one group of R·m rows (:class:`_Rows`):
        δ is given to every row of its replica."""
        if self._chain is not None and self._chain.learns:
            self._chain.learn(np.ascontiguousarray(delta, dtype=np.float64), step,
                              np.ascontiguousarray(reset, dtype=np.bool_))
            return
        self._retro = None
        rows = self._rows
        if self.rule.broadcast_to_hidden:
            for g in reversed(rows):
                self.rule.on_reward(self, g, np.repeat(delta, g.m), step, False)
        else:
            self.rule.on_reward(self, rows[-1], np.repeat(delta, rows[-1].m), step, False)
            self._drain(len(self.layers) - 1, step, rows)
        for lay in self.layers:
            lay.E[reset] = 0.0

    def _prepare(self) -> None:
        """Per-replica sample counters (a checkpoint taken before they were kept per replica
        holds one per unit), contiguous arrays, and the layers' row views on them as they now are
        (a checkpoint's restore replaces the arrays; the views must write into the layer's own)."""
        for lay in self.layers:
            if lay.count.shape != lay.keys1.shape:
                lay.count = np.broadcast_to(lay.count, lay.keys1.shape).copy()
            for name in ("P", "E", "M", "V", "count", "keys1", "trace_time"):
                a = getattr(lay, name, None)
                if a is not None and not a.flags.c_contiguous:
                    setattr(lay, name, np.ascontiguousarray(a))
        self._rows = [_Rows(lay) for lay in self.layers]
        self._chain = _chain_of(self) if self.use_chain else None

    def _reset(self, r: int, episode: int) -> np.ndarray:
        seed = streams.seed_of(self.seeds[r], "episode", episode) % (2 ** 31)
        self.replay[r] = []  # the actions given since this reset (what a checkpoint replays)
        return np.asarray(self.tasks[r].reset(seed=seed)[0], dtype=np.float64).ravel()

    def _step(self, r: int, action):
        self.replay[r].append(action)
        if type(action) is int and 0 <= action < self._n_discrete:  # tasks.to_env_action, at once
            return self._steppers[r](self._discrete_start + action)
        return self._steppers[r](tasks.to_env_action(self.tasks[r], action, self._action_map))

    def _replay(self, episode: np.ndarray, prev_end: np.ndarray, obs: np.ndarray) -> None:
        """Bring every task back to where a checkpoint left it: reset it as its episode began and
        give it the same actions again (the tasks are deterministic given their reset seed)."""
        from asyncneurons.engine.checkpoint import CheckpointError
        for r in range(self.R):
            if prev_end[r]:
                continue  # its episode has ended: the task is reset before it steps again
            actions, o = self.replay[r], self._reset(r, int(episode[r]))
            for a in actions:
                o = np.asarray(self._step(r, a)[0], dtype=np.float64).ravel()
            if not np.array_equal(o, obs[r]):
                raise CheckpointError(f"run {self.runs[r]}: replaying its episode's {len(actions)} actions does "
                                      f"not bring the task back to the checkpoint's observation")

    def run(self, resume: dict | None = None):
        """Simulate until every replica has done its episodes; ``resume``: the step loop's
        variables from a checkpoint (:func:`asyncneurons.engine.checkpoint.restore_replicas`). With
        ``self.checkpoint`` set, it is called with those variables at the top of every step."""
        s, critic, R = self.scenario, self.critic, self.R
        gamma, clip, dummy = s.env.gamma, s.env.reward_clip, s.env.dummy_step
        episodes = s.experiment.episodes
        v_prev = grads = None
        self._prepare()
        if resume is None:
            self.replay = [[] for _ in range(R)]
            episode = np.zeros(R, dtype=int)
            prev_end = np.zeros(R, dtype=bool)
            obs = np.stack([self._reset(r, 0) for r in range(R)])
            ret, length = np.zeros(R), np.zeros(R, dtype=int)
            if critic is not None:
                v_prev, grads = critic.value_and_grad(obs)
                critic.record(grads, np.zeros(R, dtype=bool))
            action = self.forward(obs)
            k = 0
        else:
            k, episode, prev_end, obs, ret, length, v_prev, grads, action = (
                resume[name] for name in ("k", "episode", "prev_end", "obs", "ret", "length", "v_prev", "grads",
                                          "action"))
            self._replay(episode, prev_end, obs)
        wall = [time.perf_counter()] * R
        steppers, replay, task_list = self._steppers, self.replay, self.tasks
        n_discrete, start, action_map = self._n_discrete, self._discrete_start, self._action_map
        boot = s.env.bootstrap_truncated
        perf_counter = time.perf_counter
        while True:
            if self.checkpoint is not None:
                self.checkpoint({"k": k, "episode": episode, "prev_end": prev_end, "obs": obs, "ret": ret,
                                 "length": length, "v_prev": v_prev, "grads": grads, "action": action})
            k += 1
            # the tasks step one by one (their flags as Python values); the rest is per array
            acts = action.tolist() if n_discrete else action  # Python ints for discrete tasks
            resets = prev_end.tolist()
            rew, term, trunc = [0.0] * R, [False] * R, [False] * R
            for r in range(R):
                if resets[r]:
                    obs[r] = self._reset(r, episode[r])
                    wall[r] = perf_counter()
                    continue
                a = acts[r]
                replay[r].append(a)
                if type(a) is int and 0 <= a < n_discrete:  # tasks.to_env_action, at once
                    o, rw, term[r], trunc[r], _ = steppers[r](start + a)
                else:
                    o, rw, term[r], trunc[r], _ = steppers[r](tasks.to_env_action(task_list[r], a, action_map))
                obs[r] = o if type(o) is np.ndarray and o.ndim == 1 else np.asarray(o).reshape(-1)
                rew[r] = float(rw)
            rewards = np.array(rew)
            ret += rewards  # a task that was reset has the reward 0.0, which leaves its return as it is
            masked = prev_end.copy()
            length += ~masked
            ended = [bool(te or tr) for te, tr in zip(term, trunc)]
            any_ended, any_masked = True in ended, True in resets
            new_episode = masked.copy()
            prev_end[:] = False
            if any_ended:
                self._check_finite(k, [r for r in range(R) if ended[r]])
                for r in range(R):
                    if not ended[r]:
                        continue
                    if episode[r] < episodes and self.on_episode is not None:
                        self.on_episode({"run": self.runs[r], "episode": int(episode[r]), "return": float(ret[r]),
                                         "length": int(length[r]), "sim_time_ms": 0.0,
                                         "wall_s": perf_counter() - wall[r], "stale_actions": 0})
                    episode[r] += 1
                    ret[r], length[r], wall[r] = 0.0, 0, perf_counter()
                if (episode >= episodes).all():
                    break
            if self.max_ticks is not None and k >= self.max_ticks:
                break
            rr = rewards if clip is None else np.clip(rewards, -clip, clip)
            if critic is not None:
                value, grads = critic.evaluate(obs)
                if True in term:
                    delta = rr + gamma * value * np.where(term, 0.0, 1.0) - v_prev
                else:  # value · 1.0 is value, bit for bit
                    delta = rr + gamma * value - v_prev
            else:
                delta = rr.copy()
            if any_masked or (not boot and True in trunc):
                delta[masked | (np.array(trunc) & ~np.array(term) & (not boot))] = 0.0
            if any_ended:
                ended = np.array(ended)
                if dummy:
                    prev_end |= ended
                else:
                    new_episode |= ended
                    for r in np.flatnonzero(ended):
                        obs[r] = self._reset(r, episode[r])
                    if critic is not None:
                        value, grads = critic.reevaluate(obs, ended, value, grads)
            if critic is not None:
                critic.learn_and_record(delta, k, new_episode, grads)
                v_prev = value
            self.learn(delta, k, new_episode)
            action = self.forward(obs)
        return self

    def _check_finite(self, step: int, replicas) -> None:
        """Raise :class:`DivergenceError` when a weight of one of ``replicas`` (those whose episode
        has just ended: a run alone checks at its episode ends) is not finite."""
        for r in replicas:
            for lay in self.layers:
                if not _finite(lay.P[r]):
                    row = int(np.argwhere(~np.isfinite(lay.P[r]))[0][0])
                    raise DivergenceError(f"run {self.runs[r]}: a unit of layer {lay.layer} (index {row}) has a "
                                          f"non-finite weight at agent step {step}; the learning rate learning.lr "
                                          f"is the most likely cause")
            if self.critic is not None and not all(_finite(p[r]) for p in self.critic.P):
                raise DivergenceError(f"run {self.runs[r]}: the critic has a non-finite weight at agent step {step}; "
                                      f"the learning rate learning.critic_lr is the most likely cause")

    def layer_matrices(self, replica: int) -> dict:
        return {lay.layer: lay.P[replica] for lay in self.layers}
