"""What the scheme misses: candidate indicators ranked by how well they predict churn out of time, and the AUC the scheme would gain by adding the best unused ones.

Public: BEST_UNUSED_MIN_AUC, REDUNDANT_CORRELATION, woe_coding, rank_indicators, best_unused, repeats,
gain_from_adding.
Reads: nothing. Writes: nothing.

Every candidate is coded the same way on training and test rows (:func:`woe_coding`): monotone
bands fitted on the training rows in the direction the training data shows
(:func:`segment.calibration.bands.fit_bands`), each value replaced by its band's churn-side WoE
(higher = riskier). That handles missing values (their own bin; WoE 0 = the average risk when
training had none) and a non-linear but monotone effect, and nothing is fitted on the test rows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from segment.calibration.bands import FittedBands, fit_bands, information_value
from segment.calibration.fit import logit_fit
from segment.calibration.metrics import auc
from segment.errors import SegmentError

#: an unused indicator is worth proposing when its out-of-time AUC exceeds this (0.5 = chance)
BEST_UNUSED_MIN_AUC = 0.55


def _labels(y, n: int, which: str) -> np.ndarray:
    yv = np.asarray(y, dtype="float64").ravel()
    if len(yv) != n:
        raise SegmentError(f"{which}: {len(yv)} churn labels for {n} rows; give one label per row")
    if not np.all((yv == 0) | (yv == 1)):
        raise SegmentError(f"{which}: churn labels must be 0 or 1 (no missing labels)")
    return yv


def _numeric(col: pd.Series) -> np.ndarray | None:
    """A column as float (booleans → 0/1, missing → NaN); None when it is not numeric."""
    if pd.api.types.is_bool_dtype(col.dtype) or (col.dtype == object and col.dropna().map(type).eq(bool).all()
                                                 and col.notna().any()):
        return np.asarray(col.astype("float64"), dtype="float64")
    if pd.api.types.is_numeric_dtype(col.dtype):
        v = np.asarray(pd.to_numeric(col, errors="coerce"), dtype="float64")
        return np.where(np.isinf(v), np.nan, v)
    return None


def woe_coding(x_train, y_train, *, indicator: str = "") -> tuple[FittedBands, bool]:
    """Bands of one candidate fitted on the training rows, in the direction the training data shows
    (higher is riskier when the raw values' training AUC ≥ 0.5), and that direction. Code any rows
    with ``bands.woe_values(x)``: the risk score, the same on training and test rows."""
    x = np.asarray(x_train, dtype="float64")
    a = auc(y_train, x)
    riskier = not (a < 0.5)  # NaN (no variation, one class): higher is riskier, by convention
    return fit_bands(x, y_train, churn_falls=not riskier, points_range=(0, 100), indicator=indicator), riskier


def _says(label: str, test_auc: float, iv: float, used: bool) -> str:
    a = "n/a" if np.isnan(test_auc) else f"{test_auc:.2f}"
    tail = "the scheme uses it." if used else "this scheme does not use it."
    return f"{label} predicts churn at out-of-time AUC {a} (IV {iv:.2f}); {tail}"


def _check(train: pd.DataFrame, test: pd.DataFrame, y_train, y_test) -> tuple[np.ndarray, np.ndarray]:
    yt = _labels(y_train, len(train), "training")
    ys = _labels(y_test, len(test), "test")
    if yt.min(initial=1) == yt.max(initial=0):
        raise SegmentError("training: the churn labels hold one class only (all churned or none); nothing can be "
                           "ranked against churn: use a longer training period")
    return yt, ys


def rank_indicators(train: pd.DataFrame, test: pd.DataFrame, y_train, y_test, candidates: list[str], used: set[str],
                    labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Candidate indicators ranked by out-of-time AUC (best first): indicator, label, used, direction,
    train_auc, test_auc (both of the WoE-coded risk, see :func:`woe_coding`), iv (training,
    :func:`segment.calibration.bands.information_value`), n_missing_share (training), says (a sentence).

    Non-numeric columns are skipped silently; columns absent from either frame, entirely missing or
    constant in training are skipped and listed in ``attrs["skipped"]`` (column → reason)."""
    yt, ys = _check(train, test, y_train, y_test)
    labels = labels or {}
    rows, skipped = [], {}
    for c in candidates:
        if c not in train.columns or c not in test.columns:
            skipped[c] = f"absent from the {'training' if c not in train.columns else 'test'} data"
            continue
        xt, xs = _numeric(train[c]), _numeric(test[c])
        if xt is None or xs is None:
            continue
        known = xt[~np.isnan(xt)]
        if len(known) == 0:
            skipped[c] = "entirely missing in training"
            continue
        if np.all(known == known[0]):
            skipped[c] = "constant in training"
            continue
        fb, riskier = woe_coding(xt, yt, indicator=c)
        label = labels.get(c, c.replace("_", " "))
        test_auc = auc(ys, fb.woe_values(xs))
        iv = information_value(xt, yt)
        rows.append({"indicator": c, "label": label, "used": c in used,
                     "direction": "higher is riskier" if riskier else "higher is safer",
                     "train_auc": auc(yt, fb.woe_values(xt)), "test_auc": test_auc, "iv": iv,
                     "n_missing_share": float(np.isnan(xt).mean()), "says": _says(label, test_auc, iv, c in used)})
    cols = ["indicator", "label", "used", "direction", "train_auc", "test_auc", "iv", "n_missing_share", "says"]
    out = pd.DataFrame(rows, columns=cols)
    out = out.sort_values("test_auc", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    out["used"] = out["used"].astype(bool)
    out.attrs["skipped"] = skipped
    return out


#: an unused indicator whose training values' rank correlation with a used (or an already chosen) one
#: reaches this is the same information (months since the last order vs days since it): not proposed
REDUNDANT_CORRELATION = 0.9


def best_unused(ranking: pd.DataFrame, k: int = 2) -> list[str]:
    """The top-``k`` unused indicators by out-of-time AUC whose AUC exceeds
    :data:`BEST_UNUSED_MIN_AUC` (0.55), passing over those that repeat another (column ``same_as``,
    :func:`repeats`, when the ranking has it)."""
    r = ranking[~ranking["used"].astype(bool) & (ranking["test_auc"] > BEST_UNUSED_MIN_AUC)]
    if "same_as" in r:
        r = r[r["same_as"].fillna("").eq("")]
    return list(r.sort_values("test_auc", ascending=False, kind="stable")["indicator"].head(k))


def repeats(ranking: pd.DataFrame, train: pd.DataFrame, used_columns: list[str]) -> list[str]:
    """For each indicator of ``ranking`` (best first), the one it repeats when the scheme does not read
    it: Spearman correlation ≥ :data:`REDUNDANT_CORRELATION` on the training rows with a column the
    scheme reads, else with a better-ranked unused one; "" when it tells something of its own (and for
    the ones the scheme reads). Constant columns repeat nothing. At most 50,000 training rows."""
    x = train.sample(n=50_000, random_state=0) if len(train) > 50_000 else train
    ranks = {c: pd.to_numeric(x[c], errors="coerce").rank() for c in sorted(set(ranking["indicator"]) | set(used_columns))
             if c in x}
    ranks = {c: r for c, r in ranks.items() if r.nunique() > 1}
    used = [c for c in used_columns if c in ranks]
    out, seen = [], []
    for name, is_used in zip(ranking["indicator"], ranking["used"].astype(bool)):
        same = ""
        if not is_used and name in ranks:
            same = next((o for o in used + seen
                         if o != name and abs(ranks[name].corr(ranks[o])) >= REDUNDANT_CORRELATION), "")
            if not same:
                seen.append(name)
        out.append(same)
    return out


def gain_from_adding(train_score, test_score, train: pd.DataFrame, test: pd.DataFrame, y_train, y_test,
                     add: list[str]) -> dict:
    """The out-of-time AUC the scheme would gain by adding the indicators ``add``: a logistic fit
    (:func:`segment.calibration.fit.logit_fit`) of churn on the score and the WoE-coded indicators
    (:func:`woe_coding`) on the training rows, its linear predictor's AUC on the test rows against
    the scheme's own (risk = −score: a higher score is a better customer). Training rows without a
    score are left out of the fit; test rows without one out of both AUCs.

    Returns {"indicators", "auc_scheme", "auc_with", "gain", "coefficients"} (coefficients: intercept,
    score and each indicator's, on the WoE scale)."""
    yt, ys = _check(train, test, y_train, y_test)
    st = np.asarray(train_score, dtype="float64").ravel()
    ss = np.asarray(test_score, dtype="float64").ravel()
    if len(st) != len(train) or len(ss) != len(test):
        raise SegmentError("gain_from_adding: give one score per row of the training and the test data")
    cols_t, cols_s = [st], [ss]
    for c in add:
        xt = _numeric(train[c]) if c in train.columns else None
        xs = _numeric(test[c]) if c in test.columns else None
        if xt is None or xs is None:
            raise SegmentError(f"gain_from_adding: {c!r} is not a numeric column of both the training and the test "
                               "data; add only indicators that rank_indicators ranked")
        fb, _ = woe_coding(xt, yt, indicator=c)
        cols_t.append(fb.woe_values(xt))
        cols_s.append(fb.woe_values(xs))
    Xt, Xs = np.column_stack(cols_t), np.column_stack(cols_s)
    ok = ~np.isnan(st)
    b0, b = logit_fit(Xt[ok], yt[ok])
    test_ok = ~np.isnan(ss)
    lp = np.where(test_ok, b0 + np.nan_to_num(Xs) @ b, np.nan)
    auc_scheme, auc_with = auc(ys, -ss), auc(ys, lp)
    return {"indicators": list(add), "auc_scheme": auc_scheme, "auc_with": auc_with, "gain": auc_with - auc_scheme,
            "coefficients": {"intercept": float(b0), "score": float(b[0]),
                             **{c: float(v) for c, v in zip(add, b[1:])}}}
