"""The isotonic probability link, Murphy's Brier decomposition and monotone churn per tier
(segment.calibration.probability).

Tolerances: hand-computed values agree to 1e-12; the decomposition identity holds to 1e-12 with the
distinct values of p as groups.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
from scipy.special import expit

from segment.calibration.fit import logit_fit
from segment.calibration.metrics import brier
from segment.calibration.probability import (
    ProbabilityLink,
    brier_decomposition,
    fit_isotonic,
    tier_probabilities,
)
from segment.errors import SegmentError


def rows(scores, counts, churned):
    """Training rows: ``counts[i]`` rows at ``scores[i]``, the first ``churned[i]`` of them churned."""
    s = np.repeat(np.asarray(scores, dtype="float64"), counts)
    y = np.concatenate([np.r_[np.ones(k), np.zeros(n - k)] for n, k in zip(counts, churned)])
    return s, y


def test_isotonic_link_by_hand():
    # rates 0.5, 0.7, 0.3, 0.1 at scores 1..4 with 10, 30, 10, 10 rows: 1 and 2 violate the order and pool
    # into (5 + 21) / 40 = 0.65 at the weighted mean score (10·1 + 30·2) / 40 = 1.75
    s, y = rows([1, 2, 3, 4], [10, 30, 10, 10], [5, 21, 3, 1])
    link = fit_isotonic(s, y)
    assert link.scores == pytest.approx([1.75, 3.0, 4.0], abs=1e-12)
    assert link.probabilities == pytest.approx([0.65, 0.3, 0.1], abs=1e-12)
    assert (link.method, link.n) == ("isotonic", 60)
    # flat outside the knots, linear between block centres
    got = link.predict([0.0, 1.0, 1.75, 2.0, 3.5, 4.0, 99.0])
    want = [0.65, 0.65, 0.65, 0.65 - 0.35 * 0.25 / 1.25, 0.2, 0.1, 0.1]
    assert got == pytest.approx(want, abs=1e-12)
    # at least 15 rows per knot: the blocks at 3 and 4 (10 rows each) pool into 4 / 20 at 3.5
    merged = fit_isotonic(s, y, min_rows_per_knot=15)
    assert merged.scores == pytest.approx([1.75, 3.5]) and merged.probabilities == pytest.approx([0.65, 0.2])
    # 25 rows: the last run (20 rows) is short and joins the block before: one knot, the overall rate
    one = fit_isotonic(s, y, min_rows_per_knot=25)
    assert one.probabilities == pytest.approx([30 / 60]) and one.scores == pytest.approx([s.mean()])


def test_knots_stay_distinct_at_six_decimals():
    # two blocks (rates 0.9 and 0.5) whose centres differ by 1e-8: pooled into one knot (0.7), so the
    # plain-JSON link (6 decimals) keeps its knots strictly ascending
    s, y = rows([1.0, 1.00000001, 2.0], [10, 10, 10], [9, 5, 1])
    link = fit_isotonic(s, y)
    assert link.probabilities == pytest.approx([0.7, 0.1]) and len(link.scores) == 2
    assert ProbabilityLink.from_dict(link.to_dict()).scores == [1.0, 2.0]


def test_clip_keeps_log_loss_finite():
    s, y = rows([1, 2], [10, 10], [10, 0])
    link = fit_isotonic(s, y)
    assert link.probabilities == [0.999, 0.001]
    assert fit_isotonic(s, y, clip=(0.05, 0.9)).probabilities == [0.9, 0.05]
    with pytest.raises(SegmentError, match="clip"):
        fit_isotonic(s, y, clip=(0.5, 0.2))


def test_monotone_on_random_data():
    rng = np.random.default_rng(3)
    for n in (1, 7, 500, 20_000):
        s = np.round(rng.normal(60, 20, n), 2)
        y = (rng.random(n) < expit(2 - s / 20 + rng.normal(0, 1, n))).astype(float)
        link = fit_isotonic(s, y)
        assert np.all(np.diff(link.scores) > 0)
        assert np.all(np.diff(link.probabilities) <= 0)
        p = link.predict(np.sort(rng.uniform(-50, 200, 1000)))
        assert np.all(np.diff(p) <= 1e-15) and np.all((p >= 0.001) & (p <= 0.999))


def test_a_million_rows_of_distinct_scores_fit_quickly():
    rng = np.random.default_rng(0)
    s = rng.normal(60, 20, 1_000_000)
    y = (rng.random(len(s)) < expit(-s / 20)).astype(float)
    t0 = time.perf_counter()
    link = fit_isotonic(s, y)
    took = time.perf_counter() - t0
    assert link.n == 1_000_000 and np.all(np.diff(link.probabilities) <= 0)
    assert took < 5.0  # ~0.3 s seen on 2 cores; generous for a loaded CI machine


def test_isotonic_beats_the_logistic_curve_when_churn_is_a_step():
    """The issue: churn is 45% below score 40, 30% from 40 to 80 and 30% above (a plateau a logistic
    curve cannot hold: it keeps falling, so it is wrong for the best-scored customers)."""
    rng = np.random.default_rng(11)

    def sample(n):
        s = np.round(rng.uniform(0, 100, n), 1)
        truth = np.where(s < 40, 0.45, np.where(s < 80, 0.30, 0.30))
        truth = np.where(s < 10, 0.70, truth)
        return s, (rng.random(n) < truth).astype(float), truth

    s, y, _ = sample(40_000)
    link = fit_isotonic(s, y)
    a, b = logit_fit(s[:, None], y)
    s2, y2, truth2 = sample(40_000)  # a fresh sample
    p_iso = link.predict(s2)
    p_log = expit(a + b[0] * s2)
    assert brier(y2, p_iso) < brier(y2, p_log)
    # and for the best-scored tenth the isotonic link is near the truth, the logistic curve is not
    top = s2 >= np.quantile(s2, 0.9)
    assert abs(p_iso[top].mean() - truth2[top].mean()) < 0.02
    assert abs(p_log[top].mean() - truth2[top].mean()) > 0.05


def test_round_trip_and_nan_score():
    s, y = rows([1, 2, 3, 4], [10, 30, 10, 10], [5, 21, 3, 1])
    link = fit_isotonic(s, y)
    d = json.loads(json.dumps(link.to_dict()))
    assert d == {"method": "isotonic", "n": 60, "scores": [1.75, 3.0, 4.0], "probabilities": [0.65, 0.3, 0.1]}
    back = ProbabilityLink.from_dict(d)
    assert back == link
    out = back.predict(np.array([np.nan, 2.0]))
    assert np.isnan(out[0]) and out[1] == pytest.approx(0.65 - 0.35 * 0.25 / 1.25)
    assert np.isnan(back.predict(float("nan")))
    # rows with a missing score or label are left out of the fit
    s_nan = np.r_[s, np.nan, 5.0]
    y_nan = np.r_[y, 1.0, np.nan]
    assert fit_isotonic(s_nan, y_nan) == link
    with pytest.raises(SegmentError, match="rise"):
        ProbabilityLink([1.0, 2.0], [0.1, 0.2])
    with pytest.raises(SegmentError, match="scores"):
        ProbabilityLink.from_dict({"probabilities": [0.1]})
    with pytest.raises(SegmentError, match="no row"):
        fit_isotonic([np.nan], [1.0])


def test_decomposition_identity_with_distinct_values():
    rng = np.random.default_rng(5)
    p = np.round(rng.uniform(0, 1, 5000), 2)
    y = (rng.random(5000) < p ** 1.5).astype(float)
    d = brier_decomposition(y, p)
    assert d["brier"] == pytest.approx(d["reliability"] - d["resolution"] + d["uncertainty"], abs=1e-12)
    assert abs(d["within_bin"]) < 1e-12 and d["bins"] == len(np.unique(p))
    assert d["brier"] == pytest.approx(brier(y, p), abs=1e-15)
    # with ten equal-count bins the identity holds up to the spread of p within each bin
    d10 = brier_decomposition(y, p, bins=10)
    assert d10["bins"] == 10 and d10["uncertainty"] == d["uncertainty"] and d10["brier"] == d["brier"]
    assert d10["brier"] == pytest.approx(d10["reliability"] - d10["resolution"] + d10["uncertainty"] + d10["within_bin"])
    assert abs(d10["within_bin"]) < 0.01


def test_decomposition_by_hand():
    y = np.array([1, 0, 0, 1, 1, 0])
    p = np.array([0.2, 0.2, 0.2, 0.8, 0.8, 0.5])
    # groups: p=0.2 (3 rows, 1 churned), 0.8 (2 rows, 2), 0.5 (1 row, 0); overall rate 1/2
    rel = (3 * (0.2 - 1 / 3) ** 2 + 2 * (0.8 - 1.0) ** 2 + 1 * (0.5 - 0.0) ** 2) / 6
    res = (3 * (1 / 3 - 0.5) ** 2 + 2 * (1.0 - 0.5) ** 2 + 1 * (0.0 - 0.5) ** 2) / 6
    bs = np.mean((p - y) ** 2)
    d = brier_decomposition(y, p)
    assert (d["reliability"], d["resolution"], d["uncertainty"]) == pytest.approx((rel, res, 0.25), abs=1e-15)
    assert d["brier"] == pytest.approx(bs, abs=1e-15) and bs == pytest.approx(rel - res + 0.25, abs=1e-15)
    # two equal-count bins by p: {0.2, 0.2, 0.2} and {0.5, 0.8, 0.8}
    d2 = brier_decomposition(y, p, bins=2)
    p2 = (0.5 + 0.8 + 0.8) / 3
    rel2 = (3 * (0.2 - 1 / 3) ** 2 + 3 * (p2 - 2 / 3) ** 2) / 6
    res2 = (3 * (1 / 3 - 0.5) ** 2 + 3 * (2 / 3 - 0.5) ** 2) / 6
    assert (d2["reliability"], d2["resolution"], d2["bins"]) == pytest.approx((rel2, res2, 2), abs=1e-15)
    assert d2["within_bin"] == pytest.approx(bs - (rel2 - res2 + 0.25), abs=1e-15)
    with pytest.raises(SegmentError, match="between 0 and 1"):
        brier_decomposition([1, 0], [0.5, 1.5])


def test_tier_probabilities_pool_a_reversed_pair():
    tiers = ["a"] * 100 + ["b"] * 100 + ["c"] * 300 + ["x"] * 5
    y = np.r_[np.ones(10), np.zeros(90), np.ones(30), np.zeros(70), np.ones(60), np.zeros(240), np.full(5, np.nan)]
    # b (30%) is worse than c (20%): pooled (30 + 60) / 400 = 22.5%; d has no rows
    got = tier_probabilities(tiers, y, ["a", "b", "c", "d"])
    assert got == pytest.approx({"a": 0.1, "b": 0.225, "c": 0.225, "d": None})
    assert got["d"] is None
    # already in order: the raw rates
    assert tier_probabilities(["a", "b", "b"], [0, 1, 0], ["a", "b"]) == {"a": 0.0, "b": 0.5}
