"""Unit kinds: samples follow the stated distribution and scores are ∇ log Pr(sample)."""

import numpy as np
import pytest

from asyncneurons.learning.units import UNIT_KINDS, LayerParams, categorical_policy, softmax_policy

LP = LayerParams(temperature=1.5, variance=0.3)


def _log_prob(kind, h, pot, lp):
    if kind == "bernoulli":
        p = 1 / (1 + np.exp(-pot / lp.temperature))
        return np.sum(h * np.log(p) + (1 - h) * np.log(1 - p))
    if kind == "gaussian":
        mu = np.log1p(np.exp(pot))
        return np.sum(-(h - mu) ** 2 / (2 * lp.variance))
    if kind == "linear_gaussian":
        return np.sum(-(h - pot) ** 2 / (2 * lp.variance))
    if kind == "categorical":
        return np.log(categorical_policy(pot, lp.temperature)[int(np.argmax(h))])
    if kind == "softmax":
        pi = softmax_policy(pot, lp.temperature)
        a = int(np.argmax(np.append(h, 1 - h.sum())))
        return np.log(pi[a])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [k for k, v in UNIT_KINDS.items() if k != "input" and not v.deterministic])
def test_score_is_the_gradient_of_the_log_probability(kind):
    rng = np.random.default_rng(1)
    spec = UNIT_KINDS[kind]
    for _ in range(20):
        pot = rng.normal(size=3)
        h, aux = spec.sample(pot, LP, rng.random(3), rng.random(3))
        g = spec.score(h, pot, aux, LP)
        for j in range(3):
            e = np.zeros(3)
            e[j] = 1e-6
            numeric = (_log_prob(kind, h, pot + e, LP) - _log_prob(kind, h, pot - e, LP)) / 2e-6
            assert g[j] == pytest.approx(numeric, rel=1e-4, abs=1e-6)


def test_bernoulli_frequency_matches_its_probability():
    pot = np.full(20000, 0.7)
    u = np.random.default_rng(2).random(20000)
    h, p = UNIT_KINDS["bernoulli"].sample(pot, LayerParams(), u, None)
    assert h.mean() == pytest.approx(p[0], abs=0.01)


def test_softmax_samples_follow_the_policy_with_the_last_logit_fixed_at_zero():
    pot = np.array([0.5, -1.0])
    pi = softmax_policy(pot, 1.0)
    assert pi == pytest.approx(np.exp([0.5, -1.0, 0.0]) / np.exp([0.5, -1.0, 0.0]).sum())
    rng = np.random.default_rng(3)
    counts = np.zeros(3)
    for u in rng.random(20000):
        _, (_, a) = UNIT_KINDS["softmax"].sample(pot, LayerParams(), np.array([u]), None)
        counts[a] += 1
    assert counts / counts.sum() == pytest.approx(pi, abs=0.01)


def test_gaussian_noise_has_the_layer_variance():
    rng = np.random.default_rng(4)
    pot = np.zeros(50000)
    h, mu = UNIT_KINDS["gaussian"].sample(pot, LP, rng.random(50000), rng.random(50000))
    assert np.var(h - mu) == pytest.approx(LP.variance, rel=0.03)
