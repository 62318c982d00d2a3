"""Unit kinds: how a unit samples its value from its pre-activation, and the score of that sample.

Each kind is a pair of small pure functions over a whole group (vectors over its units):

``sample(pot, params, u1, u2) -> (values, aux)``
    ``pot`` are the pre-activations, ``u1`` and ``u2`` keyed uniforms in [0, 1) (one per unit),
    ``params`` the layer's temperature T and variance σ².
``score(values, pot, aux, params) -> g``
    the gradient of log Pr(value) with respect to the pre-activation, so that the eligibility
    of weight w_ij is ``g_j · h_i`` (algorithms.md §2.1 and §3.1).

======================  ===================================================  =================================
kind                    sample                                               score g
======================  ===================================================  =================================
``bernoulli``           p = σ(pot/T), h = 1[u < p] ∈ {0, 1}                   (h − p) / T
``gaussian``            μ = softplus(pot), h = μ + σ z                       (h − μ) σ(pot) / σ²
``softmax``             z = [pot/T, 0] (n−1 free logits), a ~ softmax(z)      (onehot(a) − π)/T, first n−1
``categorical``         a ~ softmax(pot/T) over all n logits (MAP Prop)      (onehot(a) − π)/T
``linear_gaussian``     μ = pot, h = μ + σ z                                 (h − μ) / σ²
``softplus``            h = softplus(pot), deterministic (backprop baseline)  none (0)
======================  ===================================================  =================================

with z = sqrt(−2 ln(1 − u₁)) cos(2π u₂) (Box–Muller). The softmax subtracts the largest logit
and clamps what is below −30 to −30 before exponentiating, as published. The units of a softmax,
categorical or linear-Gaussian output are one population: they sample one action together (a
softmax draws its action with the first unit's uniform).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asyncneurons.learning import compiled
from asyncneurons.learning.kernels import NO_DECAYS, sigmoid, softplus


@dataclass(frozen=True)
class LayerParams:
    """Per-layer constants a unit kind may use."""

    temperature: float = 1.0
    variance: float = 1.0


def _normal(u1, u2):
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def _bernoulli_sample(pot, lp, u1, u2):
    p = sigmoid(pot / lp.temperature)
    return (u1 < p).astype(np.float64), p


def _bernoulli_score(h, pot, p, lp):
    return (h - p) / lp.temperature


def _gaussian_sample(pot, lp, u1, u2):
    mu = softplus(pot)
    return mu + np.sqrt(lp.variance) * _normal(u1, u2), mu


def _gaussian_score(h, pot, mu, lp):
    return (h - mu) * sigmoid(pot) / lp.variance


def _linear_gaussian_sample(pot, lp, u1, u2):
    return pot + np.sqrt(lp.variance) * _normal(u1, u2), pot


def _linear_gaussian_score(h, pot, mu, lp):
    return (h - mu) / lp.variance


def _softplus_sample(pot, lp, u1, u2):
    return softplus(pot), pot


def _softplus_score(h, pot, aux, lp):
    return np.zeros_like(pot)  # deterministic: no sampling, no score


def categorical_policy(pot: np.ndarray, temperature: float) -> np.ndarray:
    """π = softmax(pot / T) over all n logits (largest subtracted, clamped at −30), along the
    last axis (leading axes are replicas)."""
    z = pot / temperature
    z = z - z.max(axis=-1, keepdims=True)
    z[z < -30.0] = -30.0
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_policy(pot: np.ndarray, temperature: float) -> np.ndarray:
    """π over n actions from n−1 free logits (the last logit fixed at 0)."""
    return categorical_policy(np.concatenate([pot, np.zeros(pot.shape[:-1] + (1,))], axis=-1), temperature)


def _draw(pi: np.ndarray, u: float) -> tuple:
    """The action whose cumulative probability first exceeds u, and its one-hot vector."""
    a = min(int(np.searchsorted(np.cumsum(pi), u, side="right")), pi.size - 1)
    onehot = np.zeros(pi.size)
    onehot[a] = 1.0
    return onehot, a


def _softmax_sample(pot, lp, u1, u2):
    pi = softmax_policy(pot, lp.temperature)
    onehot, a = _draw(pi, u1[0])
    return onehot[:-1], (pi, a)


def _softmax_score(h, pot, aux, lp):
    return _categorical_score(h, pot, aux, lp)[:-1]


def _categorical_sample(pot, lp, u1, u2):
    pi = categorical_policy(pot, lp.temperature)
    onehot, a = _draw(pi, u1[0])
    return onehot, (pi, a)


def _categorical_score(h, pot, aux, lp):
    pi, a = aux
    onehot = np.zeros(pi.size)
    onehot[a] = 1.0
    return (onehot - pi) / lp.temperature


@dataclass(frozen=True)
class UnitKind:
    """A registered unit kind: its sampler, its score and the roles it may take."""

    name: str
    roles: tuple
    sample: object = None
    score: object = None
    population: bool = False  # True: the group samples jointly (softmax)
    gaussian: bool = False  # needs a second uniform per sample
    derivative: object = None  # d value / d pot from the sample's aux, for backprop (STE for Bernoulli)
    deterministic: bool = False  # no sampling: the value is a function of the pre-activation

    def action(self, values, aux):
        """The environment action encoded by an output group's sample."""
        if self.name in ("softmax", "categorical"):
            return aux[1]
        if self.name == "bernoulli":
            return int(values[0])
        return np.asarray(values, dtype=np.float64)


UNIT_KINDS = {
    "input": UnitKind("input", ("input",)),
    "bernoulli": UnitKind("bernoulli", ("hidden", "output"), _bernoulli_sample, _bernoulli_score,
                          derivative=lambda p: p * (1.0 - p)),
    "gaussian": UnitKind("gaussian", ("hidden",), _gaussian_sample, _gaussian_score, gaussian=True),
    "softplus": UnitKind("softplus", ("hidden",), _softplus_sample, _softplus_score, derivative=sigmoid,
                         deterministic=True),
    "softmax": UnitKind("softmax", ("output",), _softmax_sample, _softmax_score, population=True),
    "categorical": UnitKind("categorical", ("output",), _categorical_sample, _categorical_score, population=True),
    "linear_gaussian": UnitKind("linear_gaussian", ("output",), _linear_gaussian_sample,
                                _linear_gaussian_score, population=True, gaussian=True),
}


FUSED_KINDS = ("bernoulli", "softmax", "categorical")


def sample_and_trace(kind: UnitKind, P, H, E, keys, counters, lp: LayerParams, decay):
    """A group's whole firing in compiled kernels, for the kinds in :data:`FUSED_KINDS`: the
    pre-activations, the keyed uniforms at each unit's counter, the sample, its score g and the
    trace ``E ← decay · E + g ⊗ H``; the counters advance by one. Returns (values, aux, g), the
    same bits as ``kind.sample`` and ``kind.score`` followed by
    :func:`~asyncneurons.learning.kernels.accumulate_trace` (NumPy's ``exp`` between the kernels).
    P, H and E are C-contiguous (units × inputs + 1); ``decay`` is one number (λγ) or one
    factor per unit (exponential traces, :mod:`asyncneurons.learning.traces`)."""
    m = P.shape[0]
    T = float(lp.temperature)
    if isinstance(decay, np.ndarray):
        decays, decay = np.ascontiguousarray(decay, dtype=np.float64).reshape(m), 0.0
    else:
        decays = NO_DECAYS
    if kind.name == "bernoulli":
        pot, x, p, values, g = np.empty((5, m))  # fresh rows: values and p outlive the call
        compiled.bernoulli_pre(P, H, T, pot, x, p)
        np.exp(p, out=p)
        compiled.bernoulli_post(x, p, keys, counters, T, float(decay), decays, H, E, values, g)
        return values, p, g
    values, g = np.empty(m), np.empty(m)
    n = m + 1 if kind.name == "softmax" else m
    pot, z = np.empty(m), np.empty(n)
    compiled.potential_rows(P, H, pot)
    compiled.logits_shifted(pot, T, n, z)
    np.exp(z, out=z)
    u = np.empty(1)
    compiled.uniforms_into(keys[:1], counters[:1], u)
    a = compiled.categorical_post(z, u[0], T, float(decay), decays, H, E, values, g)
    counters += 1
    return values, (z, int(a)), g
