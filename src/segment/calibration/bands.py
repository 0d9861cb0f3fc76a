"""Monotone optimal binning of one indicator against churn: readable bands, their churn WoE, IV and points.

Public: FittedBands, fit_bands, points_step, readable_cuts, yaml_number,
information_value, woe_table, round_threshold, prebin_cuts, MISSING_MIN_ROWS,
MISSING_MIN_SHARE.
Reads: nothing. Writes: nothing.

A lean replacement for optbinning: optbinning pulls OR-Tools (~100 MB) for a mixed-integer program we
do not need at ≤ 6 bands. Here pre-binning at quantiles + pool-adjacent-violators (monotone churn
rate in the direction the expert gave) + greedy merges that lose the least information value +
rounded thresholds give readable monotone bands.

Conventions:

* bands are ``[from, below)``, as in a scheme's ``bands:`` (``segment.grading.scheme.Band``);
* WoE is churn-side: ``WoE = ln((churned + ½)/(C + ½)) − ln((stayed + ½)/(S + ½))`` with C, S the
  churned and stayed rows of the whole column (missing included): **higher WoE = riskier**; an empty
  bin (no rows) has WoE 0 (the column's average risk);
* IV = Σ (churn share − stay share) · WoE over the bands plus the missing bin (plain shares, the
  smoothed WoE), never below 0; 0 when the labels hold one class only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segment.errors import SegmentError

#: the missing bin's own points come from its WoE only when it holds at least this many rows …
MISSING_MIN_ROWS = 30
#: … and at least this share of all rows; otherwise the expert's missing points
MISSING_MIN_SHARE = 0.01


# -- small pieces ------------------------------------------------------------------------------------
def _xy(x, y) -> tuple[np.ndarray, np.ndarray]:
    try:
        xv = np.asarray(pd.to_numeric(pd.Series(np.asarray(x).ravel()), errors="raise"), dtype="float64")
    except (TypeError, ValueError):
        raise SegmentError("the indicator's values must be numbers (NaN for missing)") from None
    if np.isinf(xv).any():
        raise SegmentError("the indicator has infinite values; replace them by a number or leave them missing")
    yv = np.asarray(y, dtype="float64").ravel()
    if xv.shape != yv.shape:
        raise SegmentError(f"values and churn labels differ in length ({len(xv)} vs {len(yv)})")
    if not np.all((yv == 0) | (yv == 1)):
        raise SegmentError("churn labels must be 0 or 1 (no missing labels)")
    return xv, yv


def _woe(k, n, C: float, S: float) -> np.ndarray:
    """Churn-side WoE per bin (higher = riskier); 0 for an empty bin."""
    k, n = np.asarray(k, dtype="float64"), np.asarray(n, dtype="float64")
    w = np.log((k + 0.5) / (C + 0.5)) - np.log((n - k + 0.5) / (S + 0.5))
    return np.where(n > 0, w, 0.0)


def _iv_terms(k, n, C: float, S: float) -> np.ndarray:
    k, n = np.asarray(k, dtype="float64"), np.asarray(n, dtype="float64")
    if C <= 0 or S <= 0:
        return np.zeros(len(k))
    return (k / C - (n - k) / S) * _woe(k, n, C, S)


def yaml_number(v):
    """A number as YAML shows it best: int when integral."""
    v = float(v)
    return int(v) if v.is_integer() else v


def prebin_cuts(xs: np.ndarray, prebins: int) -> np.ndarray:
    """Cut points of the non-missing values ``xs``: every distinct value but the smallest when there
    are at most ``prebins`` of them; else, near each quantile k/prebins, the roundest number between
    the quantiles (k ∓ ¼)/prebins (:func:`round_threshold`), moved up to the first data value at or
    above it. Cuts are data values and a cut c sends c and above to the upper bin, so ties are never
    split; the final rounding finds the round number again (it lies between the data values either
    side of the cut), which is how the bands get readable thresholds."""
    u = np.unique(xs)
    if len(u) <= 1:
        return np.empty(0)
    if len(u) <= prebins:
        return u[1:]
    whole = bool(np.all(u == np.round(u)))
    k = np.arange(1, prebins)
    mid, lo, hi = (np.quantile(xs, (k + s) / prebins, method="higher") for s in (0.0, -0.25, 0.25))
    cuts = []
    for m, a, b in zip(mid, lo, hi):
        r = round_threshold(m, a, b, integer=whole) if a < b else m
        cuts.append(u[np.searchsorted(u, r, side="left")])
    cuts = np.unique(cuts)
    return cuts[cuts > u[0]]


def woe_table(codes, y) -> pd.DataFrame:
    """Churn per bin of integer ``codes`` (0 … m−1; −1 = missing): one row per bin present, by code
    (missing first when present): n, churned, churn_rate, woe (churn-side), iv (the bin's term)."""
    codes = np.asarray(codes, dtype=np.int64).ravel()
    y = np.asarray(y, dtype="float64").ravel()
    if codes.shape != y.shape:
        raise SegmentError(f"codes and churn labels differ in length ({len(codes)} vs {len(y)})")
    present, inv = np.unique(codes, return_inverse=True)
    n = np.bincount(inv, minlength=len(present)).astype("float64")
    k = np.bincount(inv, weights=y, minlength=len(present))
    C, S = float(y.sum()), float(len(y) - y.sum())
    return pd.DataFrame({"code": present, "n": n.astype(int), "churned": k.astype(int),
                         "churn_rate": k / np.maximum(n, 1), "woe": _woe(k, n, C, S),
                         "iv": _iv_terms(k, n, C, S)})


def information_value(x, y, bins: int = 10) -> float:
    """IV of ``x`` against churn ``y``: quantile bins of the non-missing values (ties kept together,
    see :func:`prebin_cuts`) plus a missing bin, WoE smoothed by ½. ≥ 0; 0.0 for a constant column
    or labels of one class."""
    xv, yv = _xy(x, y)
    miss = np.isnan(xv)
    codes = np.full(len(xv), -1, dtype=np.int64)
    if (~miss).any():
        codes[~miss] = np.searchsorted(prebin_cuts(xv[~miss], bins), xv[~miss], side="right")
    if len(xv) == 0:
        return 0.0
    return float(max(woe_table(codes, yv)["iv"].sum(), 0.0))


def _has_digits(c: float, d: int) -> bool:
    return float(f"{c:.{d}g}") == c


def _scaled(m: float, k: int) -> float:
    """m · 10^k, exact where the decimal is (division for negative k: 12/100 is the float 0.12)."""
    return m * 10.0**k if k >= 0 else m / 10.0**(-k)


def round_threshold(value: float, lo: float, hi: float, *, integer: bool = False) -> float:
    """The roundest number in (lo, hi]: the fewest significant digits (1, then 2, 3 …), and among
    those the one closest to ``value`` (a tie: the larger). 0 when the interval holds it. With
    ``integer`` only whole numbers are considered (data of counts or days). ``lo``/``hi`` are the
    training values either side of a cut, so a threshold anywhere in (lo, hi] puts every training
    row in the same band. Examples: (37.4, 31, 41) → 40; (0.1234, 0.11, 0.13) → 0.12;
    (1234, 1200, 1250) → 1230 (3 digits: 1210 … 1250; 1230 is closest)."""
    lo, hi, value = float(lo), float(hi), float(value)
    if not lo < hi:
        raise SegmentError(f"round_threshold: the interval ({lo:g}, {hi:g}] is empty")
    if lo < 0.0 <= hi:
        return 0.0
    mags = [abs(v) for v in (lo, hi, value) if v != 0 and math.isfinite(v)]
    decades = sorted({math.floor(math.log10(m)) + s for m in mags for s in (-1, 0, 1)})
    for d in range(1, 18):
        found = []
        for e in decades:
            k = e - d + 1
            if integer and k < 0:
                continue
            step = _scaled(1.0, k)
            ms = {math.floor(value / step), math.floor(value / step) + 1, math.floor(hi / step),
                  math.floor(lo / step) + 1, math.floor(lo / step) + 2}
            for m in ms:
                c = _scaled(float(m), k)
                if lo < c <= hi and _has_digits(c, d):
                    found.append(c)
        if found:
            return float(min(found, key=lambda c: (abs(c - value), -c)))
    return hi


#: share of the training rows a threshold may move into the next band to become a round number
READABLE_MOVE = 0.01


def readable_cuts(cuts: list[float], xs: np.ndarray, ys: np.ndarray | None = None, churn_falls: bool = True,
                  max_moved: float = READABLE_MOVE) -> list[float]:
    """``cuts`` made rounder where the data are dense: each threshold in turn becomes its value at 1,
    else 2 significant digits when that stays between its neighbours, moves at most ``max_moved`` of
    the rows ``xs`` to the next band and (with churn ``ys``) keeps churn running one way
    (2.13 → 2.1; 0.2605 stays when every rounder value moves too many rows)."""
    out = [float(c) for c in cuts]
    srt = np.sort(xs)
    for i, c in enumerate(out):
        prev = out[i - 1] if i else -np.inf
        nxt = out[i + 1] if i + 1 < len(out) else np.inf
        for d in (1, 2):
            cand = float(f"{c:.{d}g}")
            if cand == c:
                break
            lo, hi = min(c, cand), max(c, cand)
            moved = np.searchsorted(srt, hi, side="left") - np.searchsorted(srt, lo, side="left")
            if not (prev < cand < nxt and moved <= max_moved * len(srt)):
                continue
            trial = out[:i] + [cand] + out[i + 1:]
            if ys is not None:
                n, k = _counts(trial, xs, ys)
                if not (np.all(n > 0) and _monotone(n, k, churn_falls)):
                    continue
            out = trial
            break
    return out


def _counts(cuts: list[float], xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.searchsorted(np.asarray(cuts, dtype="float64"), xs, side="right")
    return (np.bincount(idx, minlength=len(cuts) + 1).astype("float64"),
            np.bincount(idx, weights=ys, minlength=len(cuts) + 1))


def _monotone(n: np.ndarray, k: np.ndarray, churn_falls: bool) -> bool:
    r = (k / np.maximum(n, 1))[n > 0]
    d = np.diff(r)
    return bool(np.all(d <= 1e-12) if churn_falls else np.all(d >= -1e-12))


# -- the fitted bands --------------------------------------------------------------------------------
@dataclass
class FittedBands:
    """Bands of one indicator fitted against churn (see :func:`fit_bands`)."""

    indicator: str
    churn_falls: bool            # True: churn falls as the value rises (the expert's points rise with the value)
    table: pd.DataFrame          # one row per band, ascending: from, below, n, churned, churn_rate, woe, points
    missing: dict                # {"n", "churned", "churn_rate", "woe", "points"} of the missing values
    iv: float                    # information value of the bands (missing bin included)

    def thresholds(self) -> list[float]:
        """The cut points (one fewer than the bands)."""
        return [float(v) for v in self.table["from"].iloc[1:]]

    def bands_yaml(self) -> list[dict]:
        """The bands as a scheme's ``bands:`` list (first band without ``from``, last without ``below``)."""
        out = []
        for _, r in self.table.iterrows():
            b = {}
            if r["from"] is not None and not pd.isna(r["from"]):
                b["from"] = yaml_number(r["from"])
            if r["below"] is not None and not pd.isna(r["below"]):
                b["below"] = yaml_number(r["below"])
            b["points"] = yaml_number(r["points"])
            out.append(b)
        return out

    def _index(self, x) -> tuple[np.ndarray, np.ndarray]:
        xv = np.asarray(pd.to_numeric(pd.Series(np.asarray(x).ravel()), errors="coerce"), dtype="float64")
        return np.searchsorted(np.asarray(self.thresholds()), xv, side="right"), np.isnan(xv)

    def apply(self, x) -> np.ndarray:
        """Points for values ``x`` (band i = [from, below); missing → the missing points)."""
        i, miss = self._index(x)
        pts = self.table["points"].to_numpy(dtype="float64")[np.minimum(i, len(self.table) - 1)]
        return np.where(miss, float(self.missing["points"]), pts)

    def woe_values(self, x) -> np.ndarray:
        """The churn-side WoE of each value's band (higher = riskier; missing → the missing bin's WoE,
        0 when training had no missing value): a risk score coded the same on any rows."""
        i, miss = self._index(x)
        w = self.table["woe"].to_numpy(dtype="float64")[np.minimum(i, len(self.table) - 1)]
        return np.where(miss, float(self.missing["woe"]), w)


# -- fitting -----------------------------------------------------------------------------------------
def _pool_violators(cuts: list, n: list, k: list, churn_falls: bool) -> None:
    """Pool adjacent bins (in place) until the churn rate is monotone in the required direction."""
    i = 0
    while i < len(n) - 1:
        a, b = k[i] * n[i + 1], k[i + 1] * n[i]   # rate_i vs rate_{i+1}, cross-multiplied
        if (a < b) if churn_falls else (a > b):
            _merge(cuts, n, k, i)
            i = max(i - 1, 0)
        else:
            i += 1


def _merge(cuts: list, n: list, k: list, i: int) -> None:
    n[i] += n.pop(i + 1)
    k[i] += k.pop(i + 1)
    cuts.pop(i)


def _merge_small_and_many(cuts: list, n: list, k: list, C: float, S: float, max_bands: int, min_n: float) -> None:
    """Merge adjacent bins while there are more than ``max_bands`` or one holds fewer than ``min_n``
    rows: the pair whose merge loses the least IV (ties: the closest churn rates). While a bin is too
    small only pairs with a too-small bin are candidates, so a merge always fixes what triggered it."""
    while len(n) > 1:
        small = [j for j in range(len(n)) if n[j] < min_n]
        if not small and len(n) <= max_bands:
            return
        pairs = range(len(n) - 1)
        if small:
            pairs = sorted({p for j in small for p in (j - 1, j) if 0 <= p < len(n) - 1})
        best, key = None, None
        for p in pairs:
            terms = _iv_terms([k[p], k[p + 1], k[p] + k[p + 1]], [n[p], n[p + 1], n[p] + n[p + 1]], C, S)
            loss = terms[0] + terms[1] - terms[2]
            gap = abs(k[p] / max(n[p], 1) - k[p + 1] / max(n[p + 1], 1))
            kp = (round(loss, 12), gap)
            if key is None or kp < key:
                best, key = p, kp
        _merge(cuts, n, k, best)


def points_step(lo_pts: float, hi_pts: float) -> float:
    """The step fitted points are rounded to: about a twentieth of the point range, a power of ten
    (40–100 → 1, 1–5 → 0.1), so a scale of five points still tells twenty levels of risk apart."""
    span = float(hi_pts) - float(lo_pts)
    return 10.0 ** math.floor(math.log10(span / 20)) if span > 0 else 1.0


def _points(woe: np.ndarray, lo_pts: float, hi_pts: float) -> tuple[np.ndarray, object]:
    """Points linear in WoE: the lowest WoE gets hi_pts, the highest lo_pts (rounded to ``points_step``);
    and the map itself for other WoE values (None when all WoE are equal)."""
    wmin, wmax = float(np.min(woe)), float(np.max(woe))
    if not wmax > wmin:
        return np.full(len(woe), float(math.floor(hi_pts + 0.5))), None

    step = points_step(lo_pts, hi_pts)

    def to_points(w):
        p = hi_pts - (np.asarray(w, dtype="float64") - wmin) / (wmax - wmin) * (hi_pts - lo_pts)
        return np.round(np.floor(np.clip(p, lo_pts, hi_pts) / step + 0.5) * step, 6)

    return to_points(woe), to_points


def fit_bands(x, y, *, churn_falls: bool, points_range: tuple[float, float], missing_points: float | None = None,
              max_bands: int = 6, min_share: float = 0.05, prebins: int = 20, indicator: str = "") -> FittedBands:
    """Monotone bands of ``x`` (NaN = missing) against churn ``y`` (0/1).

    1. pre-bins at ``prebins`` quantiles (:func:`prebin_cuts`: cuts are data values, ties never split);
    2. pool adjacent violators until churn falls (``churn_falls``) or rises, weakly, with the value;
    3. merge adjacent bands while more than ``max_bands``, or one holds < ``min_share`` of the
       non-missing rows: the merge losing the least IV first (ties: the closest churn rates);
    4. thresholds rounded by :func:`round_threshold` between the training values either side (no
       training row changes band; whole numbers when every value is whole), then by
       :func:`readable_cuts` to 1 or 2 significant digits where that moves at most 1% of the rows and
       churn still runs one way;
    5. points linear in WoE on ``points_range`` = (lowest, highest): the safest band gets the highest,
       the riskiest the lowest, rounded to :func:`points_step` (kept monotone in the expert's direction); one band
       gets the highest. The missing bin gets points from its WoE (clipped to the range) when it holds
       ≥ 30 rows and ≥ 1 % of all rows, else ``missing_points`` (the lowest when None).

    Degenerate input (all missing, one distinct value, labels of one class) gives a single band (or
    bands whose WoE all agree) and a FittedBands all the same."""
    xv, yv = _xy(x, y)
    lo_pts, hi_pts = (float(v) for v in points_range)
    if not lo_pts <= hi_pts:
        raise SegmentError(f"points_range must be (lowest, highest), got {points_range}")
    if max_bands < 1 or prebins < 1 or not 0 <= min_share < 1:
        raise SegmentError("fit_bands needs max_bands ≥ 1, prebins ≥ 1 and 0 ≤ min_share < 1")
    miss = np.isnan(xv)
    xs, ys = xv[~miss], yv[~miss]
    C, S = float(yv.sum()), float(len(yv) - yv.sum())
    cuts = list(prebin_cuts(xs, prebins))
    idx = np.searchsorted(np.asarray(cuts), xs, side="right")
    n = list(np.bincount(idx, minlength=len(cuts) + 1).astype("float64"))
    k = list(np.bincount(idx, weights=ys, minlength=len(cuts) + 1))
    _pool_violators(cuts, n, k, churn_falls)
    _merge_small_and_many(cuts, n, k, C, S, max_bands, min_share * len(xs))
    u = np.unique(xs)
    whole = bool(len(u)) and bool(np.all(np.isfinite(u) & (u == np.round(u))))
    cuts = [round_threshold((u[np.searchsorted(u, c) - 1] + c) / 2, u[np.searchsorted(u, c) - 1], c, integer=whole)
            for c in cuts]
    n, k = np.asarray(n), np.asarray(k)
    rounder = readable_cuts(cuts, xs, ys, churn_falls)
    if rounder != cuts:   # rounder still, moving a few rows, churn still running one way
        cuts = rounder
        n, k = _counts(cuts, xs, ys)
    return _assemble(indicator, churn_falls, cuts, n, k, yv[miss], C, S, (lo_pts, hi_pts), missing_points)


def _assemble(indicator: str, churn_falls: bool, cuts: list, n: np.ndarray, k: np.ndarray, y_miss: np.ndarray,
              C: float, S: float, points_range: tuple[float, float], missing_points) -> FittedBands:
    lo_pts, hi_pts = points_range
    woe = _woe(k, n, C, S)
    pts, to_points = _points(woe, lo_pts, hi_pts)
    pts = np.maximum.accumulate(pts) if churn_falls else np.minimum.accumulate(pts)
    table = pd.DataFrame({"from": pd.Series([None] + [float(c) for c in cuts], dtype=object),
                          "below": pd.Series([float(c) for c in cuts] + [None], dtype=object),
                          "n": n.astype(int), "churned": k.astype(int),
                          "churn_rate": np.where(n > 0, k / np.maximum(n, 1), np.nan), "woe": woe,
                          "points": pts})
    nm, km = float(len(y_miss)), float(y_miss.sum())
    wm = float(_woe([km], [nm], C, S)[0])
    total = n.sum() + nm
    if to_points is not None and nm >= MISSING_MIN_ROWS and nm >= MISSING_MIN_SHARE * total:
        mp = float(to_points(wm))
    else:
        mp = lo_pts if missing_points is None else float(missing_points)
    missing = {"n": int(nm), "churned": int(km), "churn_rate": km / nm if nm else float("nan"), "woe": wm,
               "points": yaml_number(mp)}
    iv = float(max(_iv_terms(np.r_[k, km], np.r_[n, nm], C, S).sum(), 0.0))
    return FittedBands(indicator, churn_falls, table, missing, iv)
