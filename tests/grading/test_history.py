"""Migration, movers, stability and realised churn on hand-made gradings (hand-computed values)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from segment.grading import history

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


# ---------------------------------------------------------------- one grading key, every scheme

@pytest.fixture(scope="module")
def demo_tables(tmp_path_factory):
    from segment.demo.write import write_demo
    from segment.data.validate import load_data

    return load_data(write_demo(tmp_path_factory.mktemp("demo"), customers=1200)).tables


def test_s8_rows_are_customer_and_product_line():
    """Two product lines of one customer are two graded rows: each moves on its own."""
    prev = pd.DataFrame({"customer_id": ["C1", "C1", "C2"], "group": ["hw", "sw", "hw"], "tier": ["a", "c", "b"]})
    cur = pd.DataFrame({"customer_id": ["C1", "C1", "C2"], "group": ["hw", "sw", "sw"], "tier": ["a", "a", "c"]})
    counts, _ = history.migration(prev, cur, TIERS)
    assert counts.loc["a", "a"] == 1 and counts.loc["c", "a"] == 1
    assert counts.loc["b", history.GONE] == 1 and counts.loc[history.NEW, "c"] == 1
    assert counts.to_numpy().sum() == 4
    m = history.movers(prev.assign(score=0.0), cur.assign(score=0.0), TIERS, {})
    assert m[["customer_id", "group", "from", "to"]].values.tolist() == [["C1", "sw", "c", "a"]]


@pytest.mark.parametrize("sid", sorted(p.stem for p in (__import__("segment.paths").paths.schemes_dir()).glob("*.yaml")))
def test_migration_totals_equal_the_graded_rows_of_each_quarter(sid, demo_tables):
    from segment.pipeline import grade_snapshot
    from segment.grading.scheme import load_scheme

    scheme = load_scheme(sid)
    before = grade_snapshot(demo_tables, scheme, "2026-06-30")[0].frame
    after = grade_snapshot(demo_tables, scheme, "2026-09-30")[0].frame
    tiers = [t.id for t in scheme.tiers]
    counts, _ = history.migration(before, after, tiers)
    assert int(counts.drop(index=history.NEW).to_numpy().sum()) == len(before)
    assert int(counts.drop(columns=history.GONE).to_numpy().sum()) == len(after)
    moved = history.movers(before, after, tiers, scheme.weights() if scheme.scored else {})
    key = ["customer_id", "group"] if "group" in after else ["customer_id"]
    assert not moved.duplicated(key).any()


def test_movers_are_ranked_by_the_size_of_the_move():
    prev = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "tier": ["c", "c", "c", "a"], "score": [40.0, 45, 30, 95]})
    cur = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "tier": ["b", "b", "a", "c"], "score": [71.0, 90, 91, 20]})
    m = history.movers(prev, cur, TIERS, {})
    assert m["customer_id"].tolist() == ["C", "B", "A", "D"]  # two tiers up; then +45 before +31; the downgrade last


def test_movers_name_the_failed_gate_and_the_stage_rule():
    prev = pd.DataFrame({"customer_id": ["A", "B"], "tier": ["a", "a"], "score": [93.0, 0.0],
                         "pts__x": [100.0, 0.0], "explanation": ["x", "matched the rule of a"]})
    cur = pd.DataFrame({"customer_id": ["A", "B"], "tier": ["b", "c"], "score": [93.0, 0.0], "pts__x": [100.0, 0.0],
                        "gates_failed": ["a", ""], "explanation": ["x", "no rule above c matched"]})
    m = history.movers(prev, cur, TIERS, {"x": 1.0}, gates={"a": "satisfaction_latest >= 9"}).set_index("customer_id")
    assert m.loc["A", "why"] == "a's gate failed (satisfaction_latest >= 9)"
    assert m.loc["B", "why"] == "matched the rule of a → no rule above c matched"
