"""Tested claims: Welch's test and the confidence interval agree with SciPy's; verdicts by sign."""

import math

import numpy as np
import pytest
from scipy import stats

from asyncneurons.study.claims import confidence_interval, judge, sample_std, welch


@pytest.mark.parametrize("m1,s1,n1,m2,s2,n2", [
    (0.7969, 0.0083, 10, 0.81, 0.0105, 10),
    (105.0, 33.1, 10, 127.88, 25.9, 10),
    (56.35, 11.7, 10, 39.45, 32.1, 10),
    (-96.88, 3.3, 10, -97.05, 3.06, 10),
    (1.0, 2.0, 5, 0.0, 0.5, 30),
])
def test_welch_equals_scipy_from_summary_statistics(m1, s1, n1, m2, s2, n2):
    t, df, p = welch(m1, s1, n1, m2, s2, n2)
    ref = stats.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False)
    assert t == pytest.approx(ref.statistic, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-9)  # the same p at the same t: the same degrees of freedom
    assert min(n1, n2) - 1 <= df <= n1 + n2 - 2


def test_the_confidence_interval_is_scipys_t_interval():
    x = np.array([0.807, 0.803, 0.789, 0.806, 0.790, 0.782, 0.803, 0.796, 0.793, 0.800])
    lo, hi = confidence_interval(x)
    ref = stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=stats.sem(x))
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)


def test_a_published_population_std_becomes_a_sample_std():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    assert sample_std(x.std(), x.size) == pytest.approx(x.std(ddof=1), rel=1e-14)


def test_verdicts_follow_the_two_sided_test():
    rng = np.random.default_rng(3)
    base = rng.normal(0.0, 1.0, 10)
    assert judge(base, float(base.mean()), float(base.std())).verdict == "consistent"
    assert judge(base - 5.0, float(base.mean()), float(base.std())).verdict == "significantly below"
    assert judge(base + 5.0, float(base.mean()), float(base.std())).verdict == "significantly above"


def test_a_judged_cell_reports_the_published_metric_and_the_welch_numbers():
    x = np.array([0.807, 0.803, 0.789, 0.806, 0.790, 0.782, 0.803, 0.796, 0.793, 0.800])
    c = judge(x, 0.81, 0.01)
    assert c.mean == pytest.approx(0.7969) and c.std == pytest.approx(x.std()) and c.n == 10
    ref = stats.ttest_ind_from_stats(x.mean(), x.std(ddof=1), 10, 0.81, 0.01 * math.sqrt(10 / 9), 10,
                                     equal_var=False)
    assert c.p == pytest.approx(ref.pvalue, rel=1e-9) and c.p < 0.05 and c.verdict == "significantly below"
