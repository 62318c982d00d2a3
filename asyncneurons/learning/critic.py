"""The critic: a deterministic softplus MLP trained by semi-gradient TD(λ) (algorithms.md §2.2).

    V(s) = softplus(softplus(s W¹ + b¹) W² + b²) W³ + b³
    z ← λ_c γ z + ∇_θ V(s_t)          θ ← θ + Adam(δ · z)

The critic lives with the environment: it evaluates V when the environment steps and computes
the TD error δ = r + γ V(s')(1 − terminated) − V(s), which is then broadcast to the units.
Parameters use the same (units, inputs + 1) layout as the actor's groups (bias last).
"""

from __future__ import annotations

import numpy as np

from asyncneurons.learning import compiled, streams
from asyncneurons.learning.kernels import glorot_bound
from asyncneurons.learning.optim import AdamConfig, adam_constants


def init_layer(seed: int, purpose: int, layer: int, n_in: int, n_out: int, fan_out: int | None = None,
               bias_scale: float = 1e-3) -> np.ndarray:
    """Glorot-uniform weights and U(−bias_scale, bias_scale) biases, keyed by (layer, unit, input)."""
    a = glorot_bound(n_in, fan_out if fan_out is not None else n_out)
    rows = np.arange(n_out, dtype=np.int64) + (layer << 32)
    u = streams.uniform_grid(seed, purpose, rows, np.arange(n_in + 1, dtype=np.int64))
    P = (2.0 * u - 1.0) * a
    P[:, -1] = (2.0 * u[:, -1] - 1.0) * bias_scale
    return P


class Gradient(list):
    """∇_θ V as one array per layer (views of one flat buffer, ``flat``, in the parameters' order)."""

    __slots__ = ("flat",)

    @classmethod
    def of(cls, flat: np.ndarray, spans) -> "Gradient":
        """The views of ``flat`` given by ``spans``: (start, end, shape) per layer."""
        g = cls([flat[a:b].reshape(shape) for a, b, shape in spans])
        g.flat = flat
        return g


class Critic:
    """A deterministic MLP value function with TD(λ) traces and per-layer Adam.

    Parameters, traces and moments of all layers live in one flat buffer each (``P``, ``Z``,
    ``M`` and ``V`` are lists of per-layer views), so that learning is one compiled pass."""

    def __init__(self, n_inputs: int, hidden, seed: int, *, lambda_: float, gamma: float,
                 lr_start, lr_end, lr_steps: int, adam: AdamConfig, bias_scale: float = 1e-3):
        sizes = [n_inputs, *hidden, 1]
        self.P = [init_layer(seed, streams.CRITIC_INIT, l, sizes[l], sizes[l + 1], bias_scale=bias_scale)
                  for l in range(len(sizes) - 1)]
        self.Z = [np.zeros_like(p) for p in self.P]
        self.M = [np.zeros_like(p) for p in self.P]
        self.V = [np.zeros_like(p) for p in self.P]
        self.t = 0
        self.decay = lambda_ * gamma
        n = len(sizes) - 1
        per_layer = lambda r: [float(x) for x in (r if isinstance(r, (list, tuple)) else [r])]  # noqa: E731
        self.lr_start, self.lr_end = per_layer(lr_start), per_layer(lr_end)
        if len(self.lr_start) == 1:
            self.lr_start *= n
        if len(self.lr_end) == 1:
            self.lr_end *= n
        self.lr_steps = lr_steps
        self.adam = adam

    # one flat buffer per kind of array; assigning a list of arrays copies them into a new one
    def _views(self, name):
        return self.__dict__["_" + name][1]

    def _store(self, name, arrays):
        arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
        flat = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0)
        views, k = [], 0
        for a in arrays:
            views.append(flat[k:k + a.size].reshape(a.shape))
            k += a.size
        self.__dict__["_" + name] = (flat, views)
        if name == "P":
            self._ends = np.cumsum([a.size for a in arrays]).astype(np.int64)
            self._shapes = [a.shape for a in arrays]

    P = property(lambda self: self._views("P"), lambda self, a: self._store("P", a))
    Z = property(lambda self: self._views("Z"), lambda self, a: self._store("Z", a))
    M = property(lambda self: self._views("M"), lambda self, a: self._store("M", a))
    V = property(lambda self: self._views("V"), lambda self, a: self._store("V", a))

    def _flat(self, name):
        return self.__dict__["_" + name][0]

    def value_and_grad(self, s: np.ndarray):
        """V(s) and ∇_θ V(s) (one array per layer, same layout as the parameters).

        Matrix-vector products are NumPy's (BLAS); the softplus, its derivative σ, the backward products
        ``d^l = (W^{l+1ᵀ} d^{l+1}) σ'`` and the outer products are compiled, with NumPy's ``exp``
        and ``log1p`` between the kernels."""
        w = self.__dict__.get("_work")
        if w is None or w[0] is not self._flat("P"):
            w = self._scratch()
        _, xs, bufs, heads, slopes, backT, ds, starts, size, spans = w
        xs[0][:-1] = np.asarray(s, dtype=np.float64).ravel()
        Ps = self.P
        last = len(Ps) - 1
        exp, log1p = np.exp, np.log1p
        for l in range(last):
            pot = Ps[l] @ xs[l]
            compiled.critic_hidden_pre(pot, bufs[l])
            exp(bufs[l], out=bufs[l])
            log1p(heads[l], out=heads[l])
            compiled.critic_hidden_post(pot, bufs[l], xs[l + 1])
        value = float((Ps[last] @ xs[last])[0])
        G = np.empty(size)
        compiled.outer_into(ds[last], xs[last], G, starts[last])
        for l in range(last, 0, -1):  # d^{l-1} = (W^l[:, :-1]ᵀ d^l) · σ(pot^{l-1}), then its outer product
            compiled.scaled_outer_into(backT[l] @ ds[l], slopes[l - 1], ds[l - 1], xs[l - 1], G, starts[l - 1])
        return value, Gradient.of(G, spans)

    def _scratch(self):
        """Buffers for :meth:`value_and_grad`, tied to the current parameter buffer: each layer's
        input [x, 1], softplus/σ buffer (and its halves), the transposed weights without bias, the
        backward terms (the output's ∂V/∂pot = 1) and each layer's offset in the gradient."""
        Ps = self.P
        xs = [np.empty(P.shape[1]) for P in Ps]
        for x in xs:
            x[-1] = 1.0
        bufs = [np.empty(2 * P.shape[0]) for P in Ps[:-1]]
        heads = [b[:b.size // 2] for b in bufs]
        slopes = [b[b.size // 2:] for b in bufs]
        backT = [P[:, :-1].T for P in Ps]
        ds = [np.empty(P.shape[0]) for P in Ps[:-1]] + [np.ones(Ps[-1].shape[0])]
        starts = [0] + [int(e) for e in self._ends[:-1]]
        spans = [(a, int(b), shape) for a, b, shape in zip(starts, self._ends, self._shapes)]
        w = self._work = (self._flat("P"), xs, bufs, heads, slopes, backT, ds, starts, int(self._ends[-1]), spans)
        return w

    def value(self, s: np.ndarray) -> float:
        return self.value_and_grad(s)[0]

    def learn(self, delta: float, step: int) -> None:
        """θ ← θ + Adam(δ · z) at the learning rates of agent step ``step``."""
        self.t += 1
        compiled.adam_scaled_flat(self._flat("P"), self._flat("M"), self._flat("V"), self._flat("Z"), float(delta),
                                  self._rates(step), self._ends, *adam_constants(self.adam, self.t))

    def _rates(self, step: int) -> np.ndarray:
        """Each layer's learning rate at agent step ``step`` (linear schedules)."""
        lrs = self.__dict__.get("_lrs")
        if lrs is None or lrs.size != len(self._shapes):
            lrs = self._lrs = np.empty(len(self._shapes))
        for l in range(lrs.size):
            lrs[l] = self.lr_start[l] + (self.lr_end[l] - self.lr_start[l]) * min(step, self.lr_steps) / self.lr_steps
        return lrs

    def learn_and_record(self, delta: float, step: int, reset: bool, grads) -> None:
        """:meth:`learn`, :meth:`reset_traces` when ``reset``, then :meth:`record` of ``grads``:
        one compiled call when ``grads`` is :meth:`value_and_grad`'s."""
        if type(grads) is not Gradient or grads.flat.size != self._flat("Z").size:
            self.learn(delta, step)
            if reset:
                self.reset_traces()
            self.record(grads)
            return
        self.t += 1
        compiled.adam_scaled_flat_record(self._flat("P"), self._flat("M"), self._flat("V"), self._flat("Z"),
                                         float(delta), self._rates(step), self._ends,
                                         *adam_constants(self.adam, self.t), bool(reset), float(self.decay),
                                         grads.flat)

    def reset_traces(self) -> None:
        self._flat("Z")[:] = 0.0

    def record(self, grads) -> None:
        """z ← λ_c γ z + ∇V."""
        if type(grads) is Gradient and grads.flat.size == self._flat("Z").size:
            compiled.decay_add(self._flat("Z"), float(self.decay), grads.flat)
            return
        base = grads[0].base if grads else None
        if base is not None and base.ndim == 1 and base.size == self._flat("Z").size and \
                all(g.base is base for g in grads):  # the flat gradient of value_and_grad
            compiled.decay_add(self._flat("Z"), float(self.decay), base)
            return
        for z, g in zip(self.Z, grads):
            z *= self.decay
            z += g

    def state(self) -> dict:
        return {"P": self.P, "Z": self.Z, "M": self.M, "V": self.V, "t": self.t}
