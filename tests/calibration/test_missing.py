"""What the scheme misses (segment.calibration.missing): candidates ranked out of time, skipped columns,
the sentence, the best unused ones, and the AUC gained by adding them. AUCs are cross-checked against
segment.calibration.metrics.auc on the same WoE coding."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from segment.calibration.bands import fit_bands
from segment.calibration.metrics import auc
from segment.calibration.missing import (
    BEST_UNUSED_MIN_AUC,
    best_unused,
    gain_from_adding,
    rank_indicators,
    woe_coding,
)
from segment.errors import SegmentError


def _frame(n: int, seed: int):
    """amount_trend drives churn (higher = safer, 10 % missing); tenure is noise; complaints adds a
    little risk; score is a scheme score (higher = better) that knows part of the risk."""
    rng = np.random.default_rng(seed)
    trend = rng.normal(0, 1, n)
    complaints = rng.poisson(1.0, n).astype(float)
    base = rng.normal(0, 1, n)
    y = (rng.random(n) < expit(-1.0 - 1.2 * trend + 0.3 * complaints + 0.8 * base)).astype(int)
    trend_seen = np.where(rng.random(n) < 0.1, np.nan, trend)
    frame = pd.DataFrame({"amount_trend_12m": trend_seen, "tenure_days": rng.integers(0, 2000, n).astype(float),
                          "complaints": complaints, "flat": np.full(n, 3.0), "gone": np.full(n, np.nan),
                          "segment_name": rng.choice(["a", "b"], n), "vip": rng.random(n) < 0.2,
                          "noise": rng.normal(0, 1, n)})
    score = 50 + 10 * -base + rng.normal(0, 2, n)  # a higher score is a better customer
    return frame, y, score


@pytest.fixture(scope="module")
def data():
    train, y_train, s_train = _frame(12_000, 1)
    test, y_test, s_test = _frame(8_000, 2)
    return train, test, y_train, y_test, s_train, s_test


CANDIDATES = ["amount_trend_12m", "tenure_days", "complaints", "flat", "gone", "segment_name", "vip", "noise"]


def test_an_unused_driver_ranks_first_and_the_sentence_says_the_scheme_misses_it(data):
    train, test, y_train, y_test, *_ = data
    r = rank_indicators(train, test, y_train, y_test, CANDIDATES, used={"tenure_days"},
                        labels={"amount_trend_12m": "amount trend (12 months)"})
    first = r.iloc[0]
    assert first["indicator"] == "amount_trend_12m" and not first["used"]
    assert first["direction"] == "higher is safer" and first["test_auc"] > 0.65
    assert first["says"].startswith("amount trend (12 months) predicts churn at out-of-time AUC ")
    assert first["says"].endswith("this scheme does not use it.")
    assert f"AUC {first['test_auc']:.2f} (IV {first['iv']:.2f})" in first["says"]
    assert first["n_missing_share"] == pytest.approx(np.isnan(train["amount_trend_12m"]).mean())
    tenure = r.set_index("indicator").loc["tenure_days"]
    assert tenure["used"] and tenure["says"].endswith("; the scheme uses it.") and abs(tenure["test_auc"] - 0.5) < 0.04
    assert r.set_index("indicator").loc["complaints", "direction"] == "higher is riskier"
    assert list(r["test_auc"]) == sorted(r["test_auc"], reverse=True)
    assert list(r.columns) == ["indicator", "label", "used", "direction", "train_auc", "test_auc", "iv",
                               "n_missing_share", "says"]


def test_constant_missing_and_non_numeric_columns_are_skipped(data):
    train, test, y_train, y_test, *_ = data
    r = rank_indicators(train, test, y_train, y_test, CANDIDATES + ["nowhere"], used=set())
    assert r.attrs["skipped"] == {"flat": "constant in training", "gone": "entirely missing in training",
                                  "nowhere": "absent from the training data"}
    assert "segment_name" not in set(r["indicator"]) and "segment_name" not in r.attrs["skipped"]
    assert "vip" in set(r["indicator"])  # booleans count as 0/1
    assert r.set_index("indicator").loc["noise", "label"] == "noise"
    assert r.set_index("indicator").loc["tenure_days", "label"] == "tenure days"


def test_the_aucs_are_the_woe_coded_risks_auc(data):
    train, test, y_train, y_test, *_ = data
    r = rank_indicators(train, test, y_train, y_test, ["amount_trend_12m"], used=set()).iloc[0]
    x = train["amount_trend_12m"].to_numpy()
    assert auc(y_train, x) < 0.5  # higher is safer: the bands make churn fall as the value rises
    fb = fit_bands(x, y_train, churn_falls=True, points_range=(0, 100))
    assert r["train_auc"] == pytest.approx(auc(y_train, fb.woe_values(x)), abs=1e-12)
    assert r["test_auc"] == pytest.approx(auc(y_test, fb.woe_values(test["amount_trend_12m"].to_numpy())), abs=1e-12)
    # six bands lose little against the raw values on the (non-missing) test rows (seen: 0.735 vs 0.749)
    xs = test["amount_trend_12m"].to_numpy()
    ok = ~np.isnan(xs)
    assert auc(y_test[ok], fb.woe_values(xs[ok])) > auc(y_test[ok], -xs[ok]) - 0.03


def test_woe_coding_gives_missing_values_the_average_risk_when_training_had_none():
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, 2000)
    y = (rng.random(2000) < expit(x)).astype(int)
    fb, riskier = woe_coding(x, y)
    assert riskier and fb.missing["n"] == 0
    assert fb.woe_values([np.nan])[0] == 0.0


def test_best_unused_takes_the_top_unused_above_the_threshold(data):
    train, test, y_train, y_test, *_ = data
    r = rank_indicators(train, test, y_train, y_test, CANDIDATES, used={"complaints"})
    picked = best_unused(r, k=2)
    assert picked[0] == "amount_trend_12m" and "complaints" not in picked
    assert all(r.set_index("indicator").loc[p, "test_auc"] > BEST_UNUSED_MIN_AUC for p in picked)
    assert "noise" not in picked and "tenure_days" not in picked
    assert best_unused(r.assign(used=True)) == []


def test_adding_a_driver_the_scheme_misses_gains_auc(data):
    train, test, y_train, y_test, s_train, s_test = data
    g = gain_from_adding(s_train, s_test, train, test, y_train, y_test, ["amount_trend_12m", "complaints"])
    assert g["indicators"] == ["amount_trend_12m", "complaints"]
    assert g["auc_scheme"] == pytest.approx(auc(y_test, -s_test), abs=1e-12)
    assert g["gain"] == pytest.approx(g["auc_with"] - g["auc_scheme"]) and g["gain"] > 0.02
    c = g["coefficients"]
    assert set(c) == {"intercept", "score", "amount_trend_12m", "complaints"}
    assert c["score"] < 0 and c["amount_trend_12m"] > 0  # WoE is churn-side: higher = riskier
    # the linear predictor's AUC, recomputed from the coefficients
    cols = [s_test]
    for name in ("amount_trend_12m", "complaints"):
        fb, _ = woe_coding(train[name].to_numpy(dtype=float), y_train)
        cols.append(fb.woe_values(test[name].to_numpy(dtype=float)))
    lp = c["intercept"] + np.column_stack(cols) @ np.array([c["score"], c["amount_trend_12m"], c["complaints"]])
    assert g["auc_with"] == pytest.approx(auc(y_test, lp), abs=1e-9)


def test_adding_noise_gains_nothing(data):
    train, test, y_train, y_test, s_train, s_test = data
    g = gain_from_adding(s_train, s_test, train, test, y_train, y_test, ["noise", "tenure_days"])
    assert abs(g["gain"]) < 0.01


def test_bad_input_is_a_segment_error(data):
    train, test, y_train, y_test, s_train, s_test = data
    with pytest.raises(SegmentError, match="one label per row"):
        rank_indicators(train, test, y_train[:-1], y_test, CANDIDATES, used=set())
    with pytest.raises(SegmentError, match="one class only"):
        rank_indicators(train, test, np.zeros(len(train)), y_test, CANDIDATES, used=set())
    with pytest.raises(SegmentError, match="segment_name"):
        gain_from_adding(s_train, s_test, train, test, y_train, y_test, ["segment_name"])
