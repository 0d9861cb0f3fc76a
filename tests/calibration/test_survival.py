"""Churn timing by tier (segment.calibration.survival): time to churn from the transactions, Kaplan–Meier
per tier, the Cox model on points and Harrell's C.

Tolerances: hand-computed survival and intervals agree to 1e-12; the Cox coefficients are those of
statsmodels' PHReg called directly (the same call: equal to 1e-12); the concordance equals a direct
O(n²) count to 1e-12.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg

from segment.calibration.churn import ChurnDefinition, churn_labels
from segment.calibration.result import json_records
from segment.calibration.survival import (
    churn_times,
    concordance,
    cox_on_points,
    survival_by_tier,
)
from segment.data.tables import Tables
from segment.data.validate import load_data
from segment.demo.world import END_DATE
from segment.errors import SegmentError

AS_OF, H, END = "2024-01-31", 30, "2024-06-30"
C = 121  # (2024-06-30 − 30 days = 2024-05-31) − 2024-01-31: 29 + 31 + 30 + 31 days


def timing_tables() -> Tables:
    """As-of 2024-01-31, horizon 30 days, data end 2024-06-30: gaps can be seen when they start by 05-31."""
    every_20 = [str(d.date()) for d in pd.date_range("2024-02-10", "2024-06-29", freq="20D")]
    tx = (
        [("A", "2023-12-01", 100.0), ("A", "2024-01-10", 100.0)]                         # nothing after D: T = 0
        + [("B", "2023-12-01", 100.0)] + [("B", d, 50.0) for d in every_20]              # buys to the end: censored
        + [("C", "2024-02-10", 80.0), ("C", "2024-02-25 17:45", 80.0)]                   # stops: T = 25
        + [("E", "2024-03-01", 60.0), ("E", "2024-03-31", 60.0), ("E", "2024-05-15", 60.0)]  # exactly 30 days: no gap
        + [("F", d, 50.0) for d in every_20]                                             # lost 03-05: T = 34
        + [("F2", "2024-02-05", 50.0)]                                                   # stops (T = 5) before lost 03-20
        + [("F3", d, 50.0) for d in every_20]                                            # lost after the follow-up
        + [("G", "2024-02-10", 90.0), ("G", "2024-03-05", -50.0), ("G", "2024-05-01", 90.0)]  # a return is no purchase
        + [("H", "2024-01-31 10:00", 70.0)]                                              # bought on D only: T = 0
        + [("K", d, 40.0) for d in ("2024-02-20", "2024-03-15", "2024-04-10", "2024-05-05", "2024-05-25")]
        + [("L", d, 40.0) for d in ("2024-02-20", "2024-03-15", "2024-04-10", "2024-05-05", "2024-05-25", "2024-06-05")]
        + [("M", d, 40.0) for d in ("2024-02-20", "2024-03-15", "2024-04-10", "2024-05-05", "2024-05-31", "2024-07-15")]
    )
    t = pd.DataFrame(tx, columns=["customer_id", "date", "amount"])
    t["customer_id"] = t["customer_id"].astype("string")
    t["date"] = pd.to_datetime(t["date"], format="ISO8601").astype("datetime64[ns]")
    ids = ["A", "B", "C", "E", "F", "F2", "F3", "G", "H", "K", "L", "M", "P"]
    status = {"F": ("lost", "2024-03-05"), "F2": ("closed", "2024-03-20"), "F3": ("lost", "2024-06-15")}
    cu = pd.DataFrame({
        "customer_id": pd.array(ids, dtype="string"),
        "created_date": pd.to_datetime(["2023-01-01"] * len(ids)).astype("datetime64[ns]"),
        "status": pd.array([status.get(i, ("active",))[0] for i in ids], dtype="string"),
        "status_date": pd.to_datetime([status.get(i, (None, "2023-01-01"))[1] for i in ids]).astype("datetime64[ns]"),
    })
    return Tables(transactions=t, customers=cu)


def test_churn_times_by_hand():
    tables = timing_tables()
    got = churn_times(tables, ["A", "B", "C", "E", "F", "F2", "F3", "G", "H", "K", "L", "M", "P"], AS_OF, H, END)
    assert list(got.columns) == ["customer_id", "time", "event"]
    assert str(got["customer_id"].dtype) == "string" and got["time"].dtype == "float64" and got["event"].dtype == bool
    expected = {
        "A": (0, True),     # no purchase after D
        "B": (C, False),    # buys every 20 days to the data end: censored at c
        "C": (25, True),    # last purchase 02-25 (a time of day counts as its calendar day)
        "E": (60, True),    # 03-01 and 03-31 are exactly 30 days apart: no gap; 03-31 → 05-15 is one
        "F": (34, True),    # CRM lost on 03-05, before any purchase gap
        "F2": (5, True),    # stopped after 02-05; the later lost status changes nothing
        "F3": (C, False),   # lost on 06-15, after the follow-up ends (05-31): still censored
        "G": (10, True),    # 02-10 → 05-01 is a gap; the return on 03-05 is not a purchase
        "H": (0, True),     # the purchase on D is D itself
        "K": (115, True),   # last purchase 05-25, and 05-25 + 30 days ≤ the data end: the gap is seen
        "L": (C, False),    # 06-05 follows 05-25; after 06-05 a gap could not be completed by 06-30
        "M": (C, True),     # 05-31 is the last day a gap can start; 07-15 is after the data end
        "P": (0, True),     # a customer without transactions
    }
    assert {r.customer_id: (r.time, r.event) for r in got.itertuples()} == expected
    # without the CRM criterion F is the regular buyer it is, F2 unchanged
    off = churn_times(tables, ["F", "F2"], AS_OF, H, END, lost_status=False).set_index("customer_id")
    assert off.loc["F"].tolist() == [C, False] and off.loc["F2"].tolist() == [5, True]
    # the same ids in the order given, each once; None: every customer with a transaction
    assert churn_times(tables, ["H", "A", "H"], AS_OF, H, END)["customer_id"].tolist() == ["H", "A"]
    assert set(churn_times(tables, None, AS_OF, H, END)["customer_id"]) == set(expected) - {"P"}
    # transactions only (no CRM table): purchases alone
    tx_only = churn_times(Tables(transactions=tables.transactions), ["F", "K"], AS_OF, H, END).set_index("customer_id")
    assert tx_only.loc["F"].tolist() == [C, False] and tx_only.loc["K"].tolist() == [115, True]


def test_churn_times_needs_a_follow_up():
    tables = timing_tables()
    # as-of + horizon on the data end: follow-up 0, the horizon label itself
    edge = churn_times(tables, ["A", "B"], "2024-05-31", H, END).set_index("customer_id")
    assert edge.loc["A"].tolist() == [0, True] and edge.loc["B"].tolist() == [0, False]
    with pytest.raises(SegmentError, match="runs past the data end"):
        churn_times(tables, ["A"], "2024-06-01", H, END)
    with pytest.raises(SegmentError, match="at least 1 day"):
        churn_times(tables, ["A"], AS_OF, 0, END)


def test_survival_at_zero_is_one_minus_the_horizon_churn_rate(demo):
    """On the 400-customer demo: T = 0 exactly for the customers the horizon label calls churned."""
    tables = load_data(demo).tables
    as_of, horizon = "2025-09-30", 90
    times = churn_times(tables, None, as_of, horizon, END_DATE, lost_status=False)
    labels = churn_labels(tables, as_of, horizon, ChurnDefinition(lost_status=False), END_DATE,
                          customers=times["customer_id"])
    assert ChurnDefinition(lost_status=False).revenue_drop is None
    assert labels["customer_id"].tolist() == times["customer_id"].tolist()
    churned = labels["churn"].to_numpy() == 1
    assert np.array_equal(churned, (times["time"].to_numpy() == 0) & times["event"].to_numpy())
    assert 0 < churned.mean() < 1
    _, curves = survival_by_tier(times, ["all"] * len(times), ["all"])
    first = curves["all"].iloc[0]
    assert first["time"] == 0 and first["survival"] == pytest.approx(1 - churned.mean(), abs=1e-12)
    c = (pd.Timestamp(END_DATE) - pd.Timedelta(days=horizon) - pd.Timestamp(as_of)).days
    assert times["time"].max() <= c and (times.loc[~times["event"], "time"] == c).all()


# ------------------------------------------------------------------------------------------------
# Kaplan–Meier per tier
# ------------------------------------------------------------------------------------------------

KM_TIMES = pd.DataFrame({
    "customer_id": [f"c{i}" for i in range(18)],
    "time": [0, 0, 2, 3, 3, 5, 7, 9] + [50, 100, 200, 400] + [10, 20] + [1, 2, 3, 4],
    "event": [1, 0, 1, 1, 0, 1, 0, 1] + [1, 0, 0, 0] + [0, 0] + [1, 1, 0, 0],
}).astype({"event": bool, "time": float})
KM_TIERS = ["a"] * 8 + ["b"] * 4 + ["c"] * 2 + ["e"] * 4


def test_kaplan_meier_by_hand():
    by_tier, curves = survival_by_tier(KM_TIMES, KM_TIERS, ["a", "b", "c", "d", "e"], labels={"a": "best"})
    a = curves["a"]
    # at risk 8, 6, 5, 3, 1 at the event times 0, 2, 3, 5, 9 (a censoring at 0 is still at risk at 0)
    s = np.cumprod([7 / 8, 5 / 6, 4 / 5, 2 / 3, 0 / 1])
    assert a["time"].tolist() == [0, 2, 3, 5, 9]
    assert a["survival"].to_numpy() == pytest.approx(s, abs=1e-12)
    # pointwise log-log interval from Greenwood's variance, at t = 3
    var = s[2] ** 2 * (1 / (8 * 7) + 1 / (6 * 5) + 1 / (5 * 4))
    v = np.sqrt(var) / (s[2] * abs(np.log(s[2])))
    assert a.loc[2, "ci_low"] == pytest.approx(s[2] ** np.exp(1.959963984540054 * v), abs=1e-12)
    assert a.loc[2, "ci_high"] == pytest.approx(s[2] ** np.exp(-1.959963984540054 * v), abs=1e-12)
    assert (a["ci_low"] <= a["survival"]).all() and (a["survival"] <= a["ci_high"]).all()
    t = by_tier.set_index("tier")
    assert t.loc["a", ["label", "n", "events"]].tolist() == ["best", 8, 5] and t.loc["b", "label"] == "b"
    assert t.loc["a", "median_days"] == 5  # the first time S < 0.5: 0.389 at day 5
    assert t.loc["a", "s_90"] == 0.0       # the curve reached 0 at day 9: known after
    # b never falls below 0.5: no median; S known up to its follow-up (400 days)
    assert t.loc["b", "median_days"] is None
    assert t.loc["b", ["s_90", "s_180", "s_365"]].tolist() == [0.75, 0.75, 0.75]
    # c: no event, followed 20 days: S = 1 is known to day 20, not at 90
    assert curves["c"].empty and t.loc["c", "median_days"] is None and np.isnan(t.loc["c", "s_90"])
    # d: no customer
    assert t.loc["d", "n"] == 0 and np.isnan(t.loc["d", "follow_up_days"]) and curves["d"].empty
    # e: S stops at exactly 0.5 (days 2 … 4): statsmodels' (SAS's) strict rule gives no median
    assert curves["e"]["survival"].tolist() == pytest.approx([0.75, 0.5]) and t.loc["e", "median_days"] is None


def test_tiers_by_customer_id_and_json():
    shuffled = pd.Series(KM_TIERS, index=KM_TIMES["customer_id"]).iloc[::-1]
    by_id, _ = survival_by_tier(KM_TIMES, shuffled, ["a", "b"])
    by_row, _ = survival_by_tier(KM_TIMES, KM_TIERS, ["a", "b"])
    pd.testing.assert_frame_equal(by_id, by_row)
    with pytest.raises(SegmentError, match="one tier per row"):
        survival_by_tier(KM_TIMES, ["a"] * 3, ["a"])
    # what metrics.json keeps (proposal.churn_timing writes these tables through json_records)
    by_tier, curves = survival_by_tier(KM_TIMES, KM_TIERS, ["a", "b", "c", "d"])
    j = json.loads(json.dumps({"by_tier": json_records(by_tier), "curves": {t: json_records(c) for t, c in curves.items()}},
                              allow_nan=False))
    assert j["by_tier"][2]["s_90"] is None and j["by_tier"][1]["median_days"] is None
    assert [r["time"] for r in j["curves"]["a"]] == [0, 2, 3, 5, 9] and j["by_tier"][0]["median_days"] == 5


# ------------------------------------------------------------------------------------------------
# Cox model and concordance
# ------------------------------------------------------------------------------------------------

def cox_data(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    pts = pd.DataFrame({"recency": rng.choice([0, 50, 100], n), "complaints": rng.choice([0, 60, 100], n),
                        "noise": rng.choice([0, 100], n), "constant": np.full(n, 70.0)}).astype(float)
    hazard = np.exp(-0.015 * pts["recency"] - 0.008 * pts["complaints"])
    t = np.floor(rng.exponential(60 / hazard))
    c = 365.0
    times = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "time": np.minimum(t, c), "event": t <= c})
    return times, pts


def test_cox_is_phreg_and_weights_are_shares():
    times, pts = cox_data(3000)
    cox = cox_on_points(times, pts)
    assert cox["indicators"] == ["recency", "complaints", "noise"] and cox["dropped"] == ["constant"]
    direct = PHReg(times["time"].to_numpy(), pts[["recency", "complaints", "noise"]].to_numpy(),
                   status=times["event"].to_numpy(dtype=float), ties="breslow").fit()
    for i, name in enumerate(cox["indicators"]):
        assert cox["coef"][name] == pytest.approx(direct.params[i], rel=1e-12, abs=1e-15)
        assert cox["se"][name] == pytest.approx(direct.bse[i], rel=1e-12)
        assert cox["p"][name] == pytest.approx(direct.pvalues[i], rel=1e-9, abs=1e-300)
        assert cox["hazard_ratio_per_10_points"][name] == pytest.approx(np.exp(10 * direct.params[i]))
    w = cox["implied_weights"]
    assert sum(w.values()) == pytest.approx(1.0) and all(v >= 0 for v in w.values())
    assert w["recency"] > w["complaints"] > w["noise"]  # the true hazard: −0.015, −0.008, 0
    assert (cox["n"], cox["rows"], cox["events"]) == (3000, 3000, int(times["event"].sum())) and "sample" not in cox
    lp = pts[["recency", "complaints", "noise"]].to_numpy() @ direct.params
    assert cox["concordance"] == pytest.approx(concordance(times["time"], times["event"], lp))
    assert 0.6 < cox["concordance"] < 0.9
    with pytest.raises(SegmentError, match="the same for all customers"):
        cox_on_points(times, pts[["constant"]])
    with pytest.raises(SegmentError, match="no customer churned"):
        cox_on_points(times.assign(event=False), pts)


def test_cox_samples_large_data_with_a_seed():
    times, pts = cox_data(1000, seed=2)
    cox = cox_on_points(times, pts, max_rows=300, seed=5)
    assert (cox["sample"], cox["n"], cox["rows"]) == (300, 300, 1000)
    rows = np.sort(np.random.default_rng(5).choice(1000, 300, replace=False))
    direct = PHReg(times["time"].to_numpy()[rows], pts[["recency", "complaints", "noise"]].to_numpy()[rows],
                   status=times["event"].to_numpy(dtype=float)[rows], ties="breslow").fit()
    assert list(cox["coef"].values()) == pytest.approx(direct.params, rel=1e-12)
    assert cox_on_points(times, pts, max_rows=300, seed=5)["coef"] == cox["coef"]


def brute_c(t, e, r):
    num = den = 0.0
    for i in range(len(t)):
        if e[i]:
            for j in range(len(t)):
                if j != i and (t[j] > t[i] or (t[j] == t[i] and not e[j])):
                    den += 1
                    num += 1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0
    return num / den if den else float("nan")


def test_concordance_is_harrells_c():
    rng = np.random.default_rng(4)
    for _ in range(150):  # small integer times and risks: many ties of every kind
        n = int(rng.integers(1, 30))
        t, e, r = rng.integers(0, 5, n).astype(float), rng.random(n) < 0.6, rng.integers(0, 4, n).astype(float)
        want = brute_c(t, e, r)
        got = concordance(t, e, r)
        assert (np.isnan(want) and np.isnan(got)) or got == pytest.approx(want, abs=1e-12)
    t = rng.exponential(10, 400)
    assert concordance(t, np.ones(400, bool), -t) == 1.0 and concordance(t, np.ones(400, bool), t) == 0.0
