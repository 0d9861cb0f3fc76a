"""Migration, movers, stability and realised churn on hand-made gradings (hand-computed values)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from segment import history

TIERS = ["a", "b", "c"]


def grading(rows):
    return pd.DataFrame(rows, columns=["customer_id", "tier", "score", "annual_amount", "pts__x", "pts__y"])


PREV = grading([("C1", "a", 90, 100.0, 100, 80), ("C2", "b", 70, 50.0, 60, 80), ("C3", "c", 40, 10.0, 40, 40),
                ("C4", "b", 75, 20.0, 80, 60)])
CUR = grading([("C1", "b", 75, 90.0, 70, 80), ("C2", "a", 92, 60.0, 100, 80), ("C3", "c", 41, 12.0, 40, 42),
               ("C5", "c", 30, 5.0, 40, 20)])


def test_migration_counts_and_revenue():
    counts, revenue = history.migration(PREV, CUR, TIERS)
    assert counts.loc["a", "b"] == 1 and counts.loc["b", "a"] == 1 and counts.loc["c", "c"] == 1
    assert counts.loc["b", history.GONE] == 1 and counts.loc[history.NEW, "c"] == 1
    assert counts.to_numpy().sum() == 5
    assert revenue.loc["a", "b"] == 90.0 and revenue.loc["b", history.GONE] == 20.0  # previous revenue for C4
    assert revenue.loc[history.NEW, "c"] == 5.0


def test_movers_explain_with_weighted_point_changes():
    m = history.movers(PREV, CUR, TIERS, {"x": 0.5, "y": 0.5}).set_index("customer_id")
    assert list(m.index) == ["C2", "C1"]  # the upgrade first
    assert (m.loc["C2", "move"], m.loc["C2", "from"], m.loc["C2", "to"]) == ("up", "b", "a")
    assert m.loc["C2", "why"] == "x +20.0"                 # 0.5 × (100 − 60); y did not move
    assert m.loc["C1", "why"] == "x -15.0"                 # 0.5 × (70 − 100)


def test_psi_against_hand_computation():
    e, a = np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.4, 0.2])
    expected = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.4 - 0.3) * math.log(0.4 / 0.3)
    assert history.psi(e, a) == pytest.approx(expected)
    assert history.psi(e, e) == 0
    assert history.verdict(0.05) == "stable" and history.verdict(0.1).startswith("moderate")
    assert history.verdict(0.25).startswith("major")


def test_stability_by_count_and_revenue():
    s = history.stability(PREV, CUR, TIERS).set_index("basis")
    # counts: prev a1 b2 c1 → .25/.5/.25; now a1 b1 c2 → .25/.25/.5
    exp = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.5 - 0.25) * math.log(0.5 / 0.25)
    assert s.loc["customers", "psi"] == pytest.approx(round(exp, 4))


def test_realised_churn_by_tier_with_wilson_intervals():
    from statsmodels.stats.proportion import proportion_confint

    g = pd.DataFrame({"customer_id": [f"C{i}" for i in range(10)], "tier": ["a"] * 4 + ["b"] * 6})
    labels = pd.DataFrame({"customer_id": [f"C{i}" for i in range(10)],
                           "churn": [0, 0, 0, 1, 1, 1, 0, 1, np.nan, 0]})
    t = history.realised_churn(g, labels, TIERS).set_index("tier")
    assert (t.loc["a", "n"], t.loc["a", "churned"]) == (4, 1) and t.loc["a", "churn_rate"] == 0.25
    assert (t.loc["b", "n"], t.loc["b", "churned"]) == (5, 3)  # the censored row is left out
    lo, hi = proportion_confint(3, 5, method="wilson")
    assert (t.loc["b", "ci_low"], t.loc["b", "ci_high"]) == pytest.approx((lo, hi))
    assert t.loc["c", "n"] == 0 and np.isnan(t.loc["c", "churn_rate"])
