"""Churn probabilities that hold: a monotone (isotonic) link from score to churn probability, Murphy's decomposition of the Brier score and monotone churn per tier.

Public: ProbabilityLink, fit_isotonic, brier_decomposition, tier_probabilities.
Reads: nothing. Writes: nothing.

**Why not one logistic curve.** A logistic link ``p = expit(a + b · score)`` forces one S-shape on
the whole score range; when churn is flat over most scores and drops at a few places, the curve is
wrong at both ends (on real data the best-scored tenth was predicted 42% churn, observed 30%). The
isotonic link assumes only that churn does not rise with the score (a higher score is a better
customer) and lets the data say where it falls.

**The isotonic link** (:func:`fit_isotonic`): the training rows are grouped by distinct score (row
count and churners per score, ``np.unique``: a million rows take a fraction of a second), the
weighted isotonic regression of the per-score churn rate on the score is solved with churn
non-increasing in the score (``scipy.optimize.isotonic_regression(rate, weights=count,
increasing=False)``: pool-adjacent-violators, exact). Its solution is a step function made of
*pooled blocks* of consecutive scores sharing one rate. The link keeps one knot per block: at the
block's count-weighted mean score, with the block's churn rate (churners / rows). ``predict``
interpolates linearly between the knots and is flat beyond the first and the last knot
(``np.interp``): fewer ties than the step function, still non-increasing, and equal to the step
function's rate at every block centre. Blocks with fewer than ``min_rows_per_knot`` rows are merged
with their neighbours (left to right; a short last block joins the one before): the pooled rate of
adjacent blocks of a monotone solution lies between theirs, so the link stays monotone. Blocks whose
centres would round to one value at 6 decimals (``to_dict``) are pooled the same way.
Probabilities are clipped into ``clip`` (default 0.001 … 0.999) so that the log loss of a row in a
block with no churner (or only churners) stays finite.

**The reliability diagram** is ``segment.calibration.metrics.decile_table(y, p, confidence, bins)``:
equal-count groups by predicted probability (lowest first) with n, churned, mean predicted, observed
rate and its Wilson interval. There is no second implementation here.

**Murphy's decomposition** (:func:`brier_decomposition`): with the rows in groups ``k`` of ``n_k``
rows, mean prediction ``p̄_k`` and observed rate ``ō_k`` (overall rate ``ō``, ``N`` rows),

    reliability = Σ n_k/N (p̄_k − ō_k)²,  resolution = Σ n_k/N (ō_k − ō)²,  uncertainty = ō(1 − ō),

and ``brier = reliability − resolution + uncertainty`` exactly when the groups are the distinct
values of ``p`` (``bins=None``); with ``bins`` equal-count groups the spread of ``p`` inside a group
leaves a remainder, reported as ``within_bin = brier − (reliability − resolution + uncertainty)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import ValidationError
from scipy.optimize import isotonic_regression

from segment.errors import SegmentError
from segment.grading.scheme import ChurnProbability

#: decimals kept by ProbabilityLink.to_dict
DECIMALS = 6


def _pairs(y, x, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``y`` (0/1 churn) and ``x`` as float arrays of one length, rows with a missing value dropped."""
    try:
        y = np.asarray(y, dtype="float64").ravel()
        x = np.asarray(x, dtype="float64").ravel()
    except (TypeError, ValueError):
        raise SegmentError(f"{what}: the churn labels and the {what.split()[-1]} must be numbers") from None
    if y.shape != x.shape:
        raise SegmentError(f"{what}: {len(y)} churn labels but {len(x)} values; they must have one length")
    ok = ~(np.isnan(y) | np.isnan(x))
    y, x = y[ok], x[ok]
    if len(y) == 0:
        raise SegmentError(f"{what}: no row with both a churn label and a value")
    if np.any((y < 0) | (y > 1)):
        raise SegmentError(f"{what}: churn labels must lie between 0 and 1 (1 = churned, 0 = retained)")
    return y, x


@dataclass
class ProbabilityLink:
    """A non-increasing map from score to churn probability, linear between knots.

    ``scores`` are the knots (ascending), ``probabilities`` the churn probability at each
    (non-increasing: a higher score is a better customer), ``method`` how it was fitted and ``n`` the
    training rows."""

    scores: list[float]
    probabilities: list[float]
    method: str = "isotonic"
    n: int = 0

    def __post_init__(self) -> None:
        self._scheme = self.as_scheme()   # the scheme's rule checks the knots and predicts (one implementation)

    def as_scheme(self, horizon_days: int = 180, fitted_on: str = "") -> ChurnProbability:
        """The link as a scheme's ``churn_probability:`` block (what gradings apply)."""
        try:
            return ChurnProbability(scores=[float(v) for v in self.scores],
                                    probabilities=[float(v) for v in self.probabilities], horizon_days=horizon_days,
                                    method=self.method, fitted_on=fitted_on)
        except ValidationError as e:
            raise SegmentError(f"a probability link: {e.errors()[0]['msg'].removeprefix('Value error, ')}") from None

    def predict(self, score) -> np.ndarray:
        """Churn probability at each score: linear between knots, flat outside; NaN for a NaN score."""
        return self._scheme.predict(score)

    def to_dict(self) -> dict:
        """Plain JSON/YAML: lists of floats rounded to 6 decimals."""
        return {"method": self.method, "n": int(self.n),
                "scores": [round(float(v), DECIMALS) for v in self.scores],
                "probabilities": [round(float(v), DECIMALS) for v in self.probabilities]}

    @classmethod
    def from_dict(cls, d: dict) -> ProbabilityLink:
        try:
            return cls([float(v) for v in d["scores"]], [float(v) for v in d["probabilities"]],
                       str(d.get("method", "isotonic")), int(d.get("n", 0)))
        except (KeyError, TypeError, ValueError) as e:
            raise SegmentError(f"a probability link needs lists `scores` and `probabilities` of numbers ({e})") from None


def _merge_small(starts: np.ndarray, counts: np.ndarray, min_rows: int) -> np.ndarray:
    """Block start indices after merging blocks (left to right) until each holds ≥ ``min_rows`` rows;
    a short last block joins the one before. ``starts`` has one more entry than blocks (the end)."""
    if min_rows <= 1:
        return starts
    rows = np.add.reduceat(counts, starts[:-1])
    kept = [0]
    acc = 0
    for b, r in enumerate(rows):
        acc += r
        if acc >= min_rows and b + 1 < len(rows):
            kept.append(int(starts[b + 1]))
            acc = 0
    if acc < min_rows and len(kept) > 1:  # the last block is short: join it to the one before
        kept.pop()
    return np.array(kept + [int(starts[-1])])


def _merge_coincident(starts: np.ndarray, count: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Block starts after pooling neighbouring blocks whose centres round to one value at
    ``DECIMALS`` (``to_dict`` must keep the knots strictly ascending); pooled rates stay monotone."""
    while len(starts) > 2:
        centre = np.add.reduceat(count * score, starts[:-1]) / np.add.reduceat(count, starts[:-1])
        dup = np.flatnonzero(np.diff(np.round(centre, DECIMALS)) == 0)
        if len(dup) == 0:
            break
        starts = np.delete(starts, dup + 1)
    return starts


def fit_isotonic(score, y, *, min_rows_per_knot: int = 1, clip: tuple[float, float] = (0.001, 0.999)) -> ProbabilityLink:
    """The isotonic link of churn ``y`` (0/1) on ``score`` (see the module docstring): one knot per
    pooled block at its weighted mean score with its churn rate, clipped into ``clip``. Rows with a
    missing score or label are left out."""
    y, s = _pairs(y, score, "isotonic fit of churn on the score")
    lo, hi = float(clip[0]), float(clip[1])
    if not 0 <= lo < hi <= 1:
        raise SegmentError(f"clip must be two probabilities low < high (got {clip!r})")
    if int(min_rows_per_knot) < 1:
        raise SegmentError(f"min_rows_per_knot must be at least 1 (got {min_rows_per_knot})")
    u, inv = np.unique(s, return_inverse=True)
    count = np.bincount(inv, minlength=len(u)).astype("float64")
    churned = np.bincount(inv, weights=y, minlength=len(u))
    res = isotonic_regression(churned / count, weights=count, increasing=False)
    starts = _merge_small(np.asarray(res.blocks, dtype=np.int64), count, int(min_rows_per_knot))
    starts = _merge_coincident(starts, count, u)
    n_b = np.add.reduceat(count, starts[:-1])
    knots = np.add.reduceat(count * u, starts[:-1]) / n_b
    rate = np.add.reduceat(churned, starts[:-1]) / n_b
    rate = np.minimum.accumulate(rate)  # exact already; guards float noise in the pooled means
    return ProbabilityLink(knots.tolist(), np.clip(rate, lo, hi).tolist(), "isotonic", len(y))


def brier_decomposition(y, p, bins: int | None = None) -> dict:
    """Murphy's decomposition of the Brier score (module docstring): ``brier``, ``reliability``,
    ``resolution``, ``uncertainty``, ``within_bin`` (0 up to float error when ``bins`` is None) and
    ``bins`` (the number of non-empty groups). Groups: the distinct values of ``p`` (``bins=None``)
    or ``bins`` near-equal-count groups by rank of ``p`` (ties in a stable order, as
    ``segment.calibration.metrics.decile_table``)."""
    y, p = _pairs(y, p, "Brier decomposition of the probabilities")
    if np.any((p < 0) | (p > 1)):
        raise SegmentError("Brier decomposition: probabilities must lie between 0 and 1")
    n = len(y)
    if bins is None:
        _, g = np.unique(p, return_inverse=True)
    else:
        if int(bins) < 1:
            raise SegmentError(f"Brier decomposition: bins must be at least 1 (got {bins})")
        g = np.empty(n, dtype=np.int64)
        for b, rows in enumerate(np.array_split(np.argsort(p, kind="stable"), int(bins))):
            g[rows] = b
    nk = np.bincount(g).astype("float64")
    used = nk > 0
    nk = nk[used]
    pk = np.bincount(g, weights=p)[used] / nk
    ok = np.bincount(g, weights=y)[used] / nk
    obar = float(y.mean())
    brier = float(np.mean((p - y) ** 2))
    rel = float(np.sum(nk * (pk - ok) ** 2) / n)
    res = float(np.sum(nk * (ok - obar) ** 2) / n)
    unc = obar * (1 - obar)
    return {"brier": brier, "reliability": rel, "resolution": res, "uncertainty": unc,
            "within_bin": brier - (rel - res + unc), "bins": len(nk)}


def tier_probabilities(tiers, y, tier_ids: list[str]) -> dict[str, float | None]:
    """Churn probability per tier from the training rows (``tiers`` and ``y`` row by row; rows with
    a missing label left out), made non-decreasing from the best tier (``tier_ids[0]``) to the worst
    by weighted isotonic regression of the tiers' churn rates on their order (weights: rows per
    tier). A reversed pair is pooled into their common rate. Tiers without rows get None."""
    t = pd.Series(tiers).astype("string").fillna("").to_numpy(dtype=object)
    y = np.asarray(y, dtype="float64").ravel()
    if len(t) != len(y):
        raise SegmentError(f"tier probabilities: {len(t)} tiers but {len(y)} churn labels")
    ok = ~np.isnan(y)
    t, y = t[ok], y[ok]
    n = np.array([np.sum(t == i) for i in tier_ids], dtype="float64")
    k = np.array([np.sum(y[t == i]) for i in tier_ids], dtype="float64")
    out: dict[str, float | None] = {i: None for i in tier_ids}
    full = n > 0
    if full.any():
        fitted = isotonic_regression(k[full] / n[full], weights=n[full], increasing=True).x
        for i, v in zip(np.asarray(tier_ids, dtype=object)[full], fitted):
            out[str(i)] = float(v)
    return out
