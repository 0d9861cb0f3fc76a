"""Monotone optimal binning against churn (segment.calibration.bands): monotone bands in the expert's
direction, IV and WoE by hand, round thresholds that move no training row, points, and bands that
mean in the grading engine what they mean here."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import isotonic_regression

from segment.calibration.bands import (
    FittedBands,
    fit_bands,
    information_value,
    round_threshold,
    woe_table,
)
from segment.errors import SegmentError
from segment.grading.engine import indicator_points
from segment.grading.scheme import Indicator


def _digits(v: float) -> int:
    """Significant digits of v as written shortest (40.0 → 1, 0.12 → 2, 1230 → 3)."""
    return next(d for d in range(1, 18) if float(f"{v:.{d}g}") == v)


def _steps(n=20_000, seed=0, whole=True):
    """Churn 0.5 / 0.3 / 0.1 by thirds of x (x in [0, 900)): churn falls in steps at 300 and 600."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 900, n).astype(float) if whole else rng.random(n) * 900
    p = np.where(x < 300, 0.5, np.where(x < 600, 0.3, 0.1))
    return x, (rng.random(n) < p).astype(int)


def _woe(c, s, C, S):
    return math.log((c + 0.5) / (C + 0.5)) - math.log((s + 0.5) / (S + 0.5))


def test_steps_falling_give_few_monotone_round_bands_near_the_true_steps():
    x, y = _steps()
    fb = fit_bands(x, y, churn_falls=True, points_range=(0, 10), indicator="tenure_days")
    t = fb.table
    assert isinstance(fb, FittedBands) and fb.indicator == "tenure_days" and fb.churn_falls
    assert 2 <= len(t) <= 6
    assert np.all(np.diff(t["churn_rate"]) <= 0)
    assert np.all(t["n"] >= 0.05 * len(x)) and t["n"].sum() == len(x)
    cuts = fb.thresholds()
    assert cuts == sorted(set(cuts)) and all(c == int(c) for c in cuts)  # whole days → whole thresholds
    assert all(_digits(c) <= 2 for c in cuts), cuts
    for step in (300, 600):
        assert min(abs(c - step) for c in cuts) <= 0.03 * 900, (step, cuts)
    assert abs(t["churn_rate"].iloc[0] - 0.5) < 0.03 and abs(t["churn_rate"].iloc[-1] - 0.1) < 0.03
    # the table's counts are the rows [from, below) by the final thresholds
    idx = np.searchsorted(cuts, x, side="right")
    assert np.array_equal(np.bincount(idx, minlength=len(t)), t["n"].to_numpy())
    assert np.array_equal(np.bincount(idx, weights=y, minlength=len(t)), t["churned"].to_numpy())


def test_continuous_values_get_round_thresholds():
    x, y = _steps(whole=False, seed=3)
    fb = fit_bands(x, y, churn_falls=True, points_range=(0, 10))
    assert all(_digits(c) <= 3 for c in fb.thresholds()), fb.thresholds()
    assert np.all(np.diff(fb.table["churn_rate"]) <= 0)


def _zigzag():
    """x = 0 … 9, 1000 rows each; churn rises overall but zig-zags from one value to the next."""
    rates = [0.10, 0.20, 0.15, 0.30, 0.25, 0.40, 0.35, 0.50, 0.45, 0.60]
    x = np.repeat(np.arange(10.0), 1000)
    y = np.concatenate([np.r_[np.ones(int(r * 1000)), np.zeros(1000 - int(r * 1000))] for r in rates])
    return x, y, np.array(rates)


def test_churn_rising_is_forced_monotone_by_pooling_adjacent_violators():
    x, y, rates = _zigzag()
    fb = fit_bands(x, y, churn_falls=False, points_range=(0, 10))
    assert fb.thresholds() == [1, 3, 5, 7, 9]
    assert np.allclose(fb.table["churn_rate"], [0.10, 0.175, 0.275, 0.375, 0.475, 0.60])
    # the same pooling as scipy's isotonic regression of the values' rates, weighted by their rows
    iso = isotonic_regression(rates, weights=np.full(10, 1000.0), increasing=True).x
    assert np.allclose(np.unique(iso), fb.table["churn_rate"])
    # churn rises with the value: points fall with it, the riskiest band gets the lowest
    assert fb.table["points"].iloc[0] == 10 and fb.table["points"].iloc[-1] == 0
    assert np.all(np.diff(fb.table["points"]) <= 0)


def test_the_wrong_direction_pools_into_one_band():
    x, y, _ = _zigzag()
    fb = fit_bands(x, y, churn_falls=True, points_range=(1, 5))
    assert len(fb.table) == 1 and fb.thresholds() == [] and fb.bands_yaml() == [{"points": 5}]
    assert fb.iv == 0.0


def test_max_bands_and_min_share_merge_the_least_informative_pairs():
    x, y, _ = _zigzag()
    fb = fit_bands(x, y, churn_falls=False, points_range=(0, 10), max_bands=3)
    assert len(fb.table) == 3 and np.all(np.diff(fb.table["churn_rate"]) >= 0)
    fb = fit_bands(x, y, churn_falls=False, points_range=(0, 10), min_share=0.25)
    assert np.all(fb.table["n"] >= 0.25 * len(x))


def test_iv_and_woe_by_hand_on_two_bins():
    x = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], dtype=float)
    y = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])
    C, S = 4, 6
    w0, w1 = _woe(3, 1, C, S), _woe(1, 5, C, S)
    expected = (3 / 4 - 1 / 6) * w0 + (1 / 4 - 5 / 6) * w1
    assert information_value(x, y) == pytest.approx(expected, rel=1e-12)
    fb = fit_bands(x, y, churn_falls=True, points_range=(0, 10), min_share=0.0)
    assert fb.thresholds() == [1] and fb.iv == pytest.approx(expected, rel=1e-12)
    assert np.allclose(fb.table["woe"], [w0, w1]) and w0 > w1  # churn-side: the riskier bin's WoE is higher
    assert list(fb.table["points"]) == [0, 10]
    tab = woe_table((x > 0).astype(int), y)
    assert np.allclose(tab["woe"], [w0, w1]) and tab["iv"].sum() == pytest.approx(expected)


def test_iv_counts_the_missing_bin():
    x = np.array([0, 0, 1, 1, np.nan, np.nan, np.nan, np.nan])
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    C, S = 4, 4
    terms = [(1 / 4 - 1 / 4) * _woe(1, 1, C, S), (0 - 2 / 4) * _woe(0, 2, C, S), (3 / 4 - 1 / 4) * _woe(3, 1, C, S)]
    assert information_value(x, y) == pytest.approx(sum(terms), rel=1e-12)


def test_information_value_is_zero_for_a_constant_column_or_one_class():
    assert information_value(np.ones(50), np.r_[np.ones(10), np.zeros(40)]) == 0.0
    assert information_value(np.arange(50.0), np.zeros(50)) == 0.0
    rng = np.random.default_rng(5)
    assert information_value(rng.random(500), rng.integers(0, 2, 500)) >= 0.0


@pytest.mark.parametrize("value, lo, hi, expected", [
    (37.4, 31.0, 41.0, 40.0),
    (0.1234, 0.11, 0.13, 0.12),
    (1234.0, 1200.0, 1250.0, 1230.0),   # 3 digits needed (1210 … 1250); 1230 is closest to 1234
    (9.5, 8.5, 10.5, 10.0),             # 9 and 10 are equally close: the larger
    (0.3, -1.0, 2.0, 0.0),              # 0 is the roundest of all
    (-37.4, -41.0, -31.0, -40.0),
    (0.5, 0.0, 1.0, 0.5),
    (7.0, 6.0, 7.0, 7.0),               # (lo, hi] includes hi
])
def test_round_threshold(value, lo, hi, expected):
    assert round_threshold(value, lo, hi) == expected


def test_round_threshold_for_whole_numbers_and_empty_intervals():
    assert round_threshold(0.5, 0.0, 1.0, integer=True) == 1.0
    assert round_threshold(0.5, 0.0, 1.0) == 0.5
    assert round_threshold(149.5, 100.0, 199.0, integer=True) == 150.0  # 2 digits: 110 … 190
    with pytest.raises(SegmentError):
        round_threshold(1.0, 2.0, 2.0)


def test_round_threshold_stays_inside_the_interval_on_random_intervals():
    rng = np.random.default_rng(11)
    for _ in range(500):
        a, b = np.sort(rng.normal(0, 1, 2) * 10.0 ** rng.integers(-4, 6))
        v = rng.uniform(a, b)
        r = round_threshold(v, a, b)
        assert a < r <= b
        assert _digits(r) <= _digits(b)


@pytest.mark.parametrize("kind", ["normal", "lognormal", "counts", "ties"])
def test_rounding_never_moves_a_training_row_to_another_band(kind):
    rng = np.random.default_rng(7)
    n = 3000
    x = {"normal": rng.normal(0, 1, n), "lognormal": np.exp(rng.normal(5, 2, n)),
         "counts": rng.poisson(3, n).astype(float), "ties": rng.choice([0.0, 0.5, 0.51, 2.0, 7.25], n)}[kind]
    y = (rng.random(n) < 1 / (1 + np.exp(np.argsort(np.argsort(x)) / n * 4 - 2))).astype(int)
    fb = fit_bands(x, y, churn_falls=True, points_range=(0, 10))
    idx = np.searchsorted(fb.thresholds(), x, side="right")
    # the table's counts were taken before rounding; the rounded thresholds give the same rows
    assert np.array_equal(np.bincount(idx, minlength=len(fb.table)), fb.table["n"].to_numpy())
    assert np.array_equal(np.bincount(idx, weights=y, minlength=len(fb.table)), fb.table["churned"].to_numpy())
    assert np.all(np.diff(fb.thresholds()) > 0)


def _with_missing(n_missing, missing_rate, seed=2):
    x, y = _steps(seed=seed)
    rng = np.random.default_rng(seed)
    xm = np.r_[x, np.full(n_missing, np.nan)]
    ym = np.r_[y, (rng.random(n_missing) < missing_rate).astype(int)]
    return xm, ym


def test_points_best_band_highest_worst_lowest_and_missing_from_its_woe():
    x, y = _with_missing(2000, 0.5)
    fb = fit_bands(x, y, churn_falls=True, points_range=(2, 8), missing_points=5)
    t = fb.table
    assert t.loc[t["woe"].idxmin(), "points"] == 8 and t.loc[t["woe"].idxmax(), "points"] == 2
    assert np.all(np.diff(t["points"]) >= 0)  # churn falls as the value rises: points rise
    assert fb.missing["n"] == 2000 and fb.missing["churned"] == y[np.isnan(x)].sum()
    wmin, wmax = t["woe"].min(), t["woe"].max()
    step = 0.1  # a range of 6 points: a twentieth is 0.3, rounded down to a power of ten
    expected = round(np.floor(np.clip(8 - (fb.missing["woe"] - wmin) / (wmax - wmin) * 6, 2, 8) / step + 0.5) * step, 6)
    assert fb.missing["points"] == expected
    assert fb.apply([np.nan])[0] == expected


def test_a_small_missing_bin_gets_the_experts_missing_points():
    x, y = _with_missing(25, 1.0)  # < 30 rows
    assert fit_bands(x, y, churn_falls=True, points_range=(2, 8), missing_points=5).missing["points"] == 5
    assert fit_bands(x, y, churn_falls=True, points_range=(2, 8)).missing["points"] == 2
    x, y = _with_missing(150, 1.0)  # ≥ 30 rows but < 1 % of 20 150
    assert fit_bands(x, y, churn_falls=True, points_range=(2, 8), missing_points=4).missing["points"] == 4
    x, y = _steps()
    fb = fit_bands(x, y, churn_falls=True, points_range=(2, 8), missing_points=3)
    assert fb.missing["n"] == 0 and fb.missing["points"] == 3 and fb.missing["woe"] == 0.0


def test_a_missing_bin_riskier_than_every_band_is_clipped_to_the_lowest_points():
    x, y = _with_missing(2000, 0.95)
    fb = fit_bands(x, y, churn_falls=True, points_range=(0, 10))
    assert fb.missing["woe"] > fb.table["woe"].max() and fb.missing["points"] == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bands_yaml_means_in_the_grading_engine_what_it_means_here(seed):
    rng = np.random.default_rng(seed)
    n = 4000
    x = np.round(rng.normal(50, 20, n), 2)
    y = (rng.random(n) < 1 / (1 + np.exp((x - 50) / 10))).astype(int)
    x[rng.random(n) < 0.05] = np.nan
    fb = fit_bands(x, y, churn_falls=True, points_range=(1, 5), missing_points=2)
    yaml = fb.bands_yaml()
    assert "from" not in yaml[0] and "below" not in yaml[-1]
    assert all(isinstance(b["points"], (int, float)) and round(b["points"], 6) == b["points"] for b in yaml)
    spec = Indicator.model_validate({"bands": yaml, "missing_points": fb.missing["points"]})
    probe = np.r_[rng.normal(50, 30, 2000), fb.thresholds(), np.nextafter(fb.thresholds(), -np.inf),
                  [np.nan] * 20, -1e12, 1e12]
    assert np.array_equal(indicator_points(pd.Series(probe), spec), fb.apply(probe))


@pytest.mark.parametrize("x, y", [
    (np.full(100, np.nan), np.r_[np.ones(30), np.zeros(70)]),        # all missing
    (np.full(100, 3.0), np.r_[np.ones(30), np.zeros(70)]),           # no variation
    (np.arange(100.0), np.zeros(100)),                               # one class only
    (np.arange(100.0), np.ones(100)),
    (np.array([]), np.array([])),                                    # no rows
    (np.array([1.0, np.nan]), np.array([1, 0])),
])
def test_degenerate_input_gives_one_band_without_crashing(x, y):
    fb = fit_bands(x, y, churn_falls=True, points_range=(0, 10), missing_points=4)
    assert len(fb.table) >= 1 and fb.iv >= 0.0
    assert fb.table["points"].iloc[-1] == 10
    Indicator.model_validate({"bands": fb.bands_yaml(), "missing_points": fb.missing["points"]})
    assert len(fb.apply(x)) == len(x)


def test_bad_input_is_a_segment_error():
    with pytest.raises(SegmentError, match="length"):
        fit_bands([1.0, 2.0], [1], churn_falls=True, points_range=(0, 10))
    with pytest.raises(SegmentError, match="0 or 1"):
        fit_bands([1.0, 2.0], [1, 2], churn_falls=True, points_range=(0, 10))
    with pytest.raises(SegmentError, match="points_range"):
        fit_bands([1.0, 2.0], [1, 0], churn_falls=True, points_range=(10, 0))
    with pytest.raises(SegmentError, match="numbers"):
        fit_bands(["a", "b"], [1, 0], churn_falls=True, points_range=(0, 10))
    with pytest.raises(SegmentError, match="infinite"):
        information_value([1.0, np.inf], [1, 0])


def test_points_are_rounded_to_a_twentieth_of_the_range_as_a_power_of_ten():
    from segment.calibration.bands import points_step
    assert points_step(40, 100) == 1.0 and points_step(1, 5) == 0.1 and points_step(0, 1000) == 10.0
    x, y = _steps(seed=4)
    fb = fit_bands(x, y, churn_falls=True, points_range=(1, 5))
    pts = fb.table["points"].to_numpy()
    assert np.allclose(pts * 10, np.round(pts * 10)) and pts.max() == 5 and pts.min() == 1


def test_readable_cuts_round_dense_thresholds_moving_at_most_one_percent_of_rows():
    from segment.calibration.bands import readable_cuts
    x = np.linspace(0, 5, 100_001)   # dense: every exact threshold has data on both sides
    assert readable_cuts([2.13, 2.44, 2.72], x) == [2.1, 2.4, 2.7]
    # a threshold whose round values would move more than 1% of the rows stays as it is
    assert readable_cuts([0.2605], np.linspace(0.259, 0.262, 10_001)) == [0.2605]
    # rounding never crosses a neighbour
    assert readable_cuts([1.04, 1.06], x)[0] < readable_cuts([1.04, 1.06], x)[1]
