"""Calibration of a scheme's weights and cut-offs against the company's own churn history.

The seeds set weights by an "expert method" or a "data-analysis method"; this module is the second,
side by side with the first (method for analysts: ``docs/calibration.md``):

1. **Panel** (``segment.churn``): the scheme grades the customers at each training as-of date; each
   customer at risk gets a churn label for the horizon that follows.
2. **Fit** (:class:`WeightCalibrator`): a logistic regression of churn on the indicator points,
   ``logit P(churn) = b0 + Σ β_i · points_i``, fitted by statsmodels (``Logit``) with standard errors
   clustered by customer (a customer appears at several dates). Points rise for better customers, so
   a useful indicator has β_i < 0.
3. **Weights**: the same likelihood refitted with β_i ≤ 0 (an indicator can only add points for
   better customers) and a ``prior_strength`` that pulls the *direction* of β towards the expert
   weights; effective weights are ``w_i = −β_i / Σ −β_j`` (non-negative, summing to 1), and split
   into dimension weights and weights within each dimension (each level sums to 1). The calibrated
   score Σ w_i · points_i ranks customers exactly as the fitted model does.
4. **Bootstrap** over customers (all of a customer's rows together) gives the weights' intervals.
5. **Cut-offs** (:func:`choose_cutoffs`): the expert tiers' shares, target shares, a maximum number
   of customers in a tier, or target churn rates.
6. **Out-of-time validation**: expert and calibrated schemes graded at the test date, against
   the churn that followed: AUC, Gini, KS, Brier, log loss, deciles, lift, churn per tier with
   Wilson intervals and a monotonicity check.

``run_calibration`` does it all from files and writes ``metrics.json`` and
``<scheme id>.calibrated.yaml`` (never the analysts' scheme).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy.special import expit
from scipy.stats import rankdata

from .atomic import sha256_file, signals_deferred, write_text
from .churn import ChurnDefinition, Panel, _day, build_panel, linear_score
from .errors import SegmentError
from .grading import PTS
from .io import load_params, read_yaml
from .store import Tables
from .progress import progress
from .schemes import Scheme


# ================================================================================================
# params
# ================================================================================================


class FitParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prior_strength: float = Field(0.0, ge=0, description="how many panel rows the expert weights' direction "
                                  "is worth: 0 = data only, very large = the expert weights")
    bootstrap: int = Field(200, ge=0, description="bootstrap replicates over customers (0 = no intervals)")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="level of every interval")
    seed: int = Field(20260930, description="random seed of the bootstrap")


class CutoffParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["expert_shares", "shares", "churn_rates", "keep"] = "expert_shares"
    shares: list[float] | dict[str, float] | None = Field(
        None, description="share of the graded customers in each scored tier (highest first, the floor takes the rest)")
    churn_rates: list[float] | dict[str, float] | None = Field(
        None, description="highest training churn rate tolerated in each scored tier (highest first)")
    max_customers: dict[str, int] = Field(default_factory=dict, description="tier → most customers it may hold")
    min_tier_rows: int = Field(30, ge=1, description="churn_rates: fewest labelled training rows in a tier")

    @model_validator(mode="after")
    def _targets(self) -> "CutoffParams":
        if self.method == "shares" and self.shares is None:
            raise ValueError("shares: method `shares` needs `shares:` (one share per scored tier, highest first)")
        if self.method == "churn_rates" and self.churn_rates is None:
            raise ValueError("churn_rates: method `churn_rates` needs `churn_rates:` (one rate per scored tier)")
        vals = self.shares.values() if isinstance(self.shares, dict) else (self.shares or [])
        if any(not 0 <= v <= 1 for v in vals) or sum(vals) > 1 + 1e-9:
            raise ValueError("shares: every share must be in [0, 1] and together at most 1")
        rates = self.churn_rates.values() if isinstance(self.churn_rates, dict) else (self.churn_rates or [])
        if any(not 0 <= v <= 1 for v in rates):
            raise ValueError("churn_rates: every rate must be in [0, 1]")
        if any(v < 0 for v in self.max_customers.values()):
            raise ValueError("max_customers: counts must be ≥ 0")
        return self


class CalibrationParams(BaseModel):
    """``params/calibration.yaml``: the churn definition, the default horizon, the fit and the cut-offs."""

    model_config = ConfigDict(extra="forbid")
    horizon_days: int = Field(180, ge=1, description="default horizon when the command line gives none")
    churn: ChurnDefinition = Field(default_factory=ChurnDefinition)
    fit: FitParams = Field(default_factory=FitParams)
    cutoffs: CutoffParams = Field(default_factory=CutoffParams)


def load_calibration_params(path: str | Path | None = None) -> CalibrationParams:
    """Read and validate a calibration params file (default: the project's params/calibration.yaml);
    errors name the file and the key."""
    from .paths import params_file

    return load_params(path if path is not None else params_file("calibration.yaml"), CalibrationParams, "expected a mapping (churn:, fit:, cutoffs:)",
                       "see params/calibration.yaml", empty_ok=True)


# ================================================================================================
# metrics
# ================================================================================================


def _xy(y, s) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype="float64")
    s = np.asarray(s, dtype="float64")
    if y.shape != s.shape:
        raise ValueError("labels and scores differ in length")
    ok = ~(np.isnan(y) | np.isnan(s))
    return y[ok], s[ok]


def auc(y, risk) -> float:
    """ROC AUC of ``risk`` (higher = more likely churn) from ranks: the Mann–Whitney U / (n1·n0),
    ties counting one half. NaN when either class is absent."""
    y, s = _xy(y, risk)
    n1 = float(y.sum())
    n0 = float(len(y) - n1)
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(s)  # average ranks for ties
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def gini(y, risk) -> float:
    return 2 * auc(y, risk) - 1


def ks(y, risk) -> float:
    """Kolmogorov–Smirnov statistic: the largest gap between the churners' and the others'
    cumulative distributions of ``risk`` (thresholds between distinct values only)."""
    y, s = _xy(y, risk)
    n1 = y.sum()
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[s[1:] != s[:-1], True]  # last row of each distinct value
    c1 = np.cumsum(y)[last] / n1
    c0 = np.cumsum(1 - y)[last] / n0
    return float(np.max(np.abs(c1 - c0)))


def brier(y, p) -> float:
    y, p = _xy(y, p)
    return float(np.mean((p - y) ** 2))


def log_loss(y, p, eps: float = 1e-15) -> float:
    y, p = _xy(y, p)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def wilson(churned, n, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score intervals (statsmodels ``proportion_confint``) clipped to [0, 1] and around the
    observed rate (floating point leaves 5.6e-17 for a bound that is 0); NaN where n = 0."""
    from statsmodels.stats.proportion import proportion_confint

    k = np.atleast_1d(np.asarray(churned, dtype="float64"))
    m = np.atleast_1d(np.asarray(n, dtype="float64"))
    lo, hi = np.full(len(k), np.nan), np.full(len(k), np.nan)
    ok = m > 0
    if ok.any():
        lo[ok], hi[ok] = proportion_confint(k[ok], m[ok], alpha=1 - confidence, method="wilson")
        rate = k[ok] / m[ok]
        lo[ok] = np.where(k[ok] == 0, 0.0, np.clip(np.minimum(lo[ok], rate), 0.0, 1.0))
        hi[ok] = np.where(k[ok] == m[ok], 1.0, np.clip(np.maximum(hi[ok], rate), 0.0, 1.0))
    return lo, hi


def _groups_table(y: np.ndarray, p: np.ndarray, groups: list[np.ndarray], confidence: float) -> pd.DataFrame:
    n = np.array([len(g) for g in groups])
    k = np.array([y[g].sum() for g in groups])
    lo, hi = wilson(k, n, confidence)
    return pd.DataFrame({"n": n, "churned": k.astype(int),
                         "predicted": [float(p[g].mean()) if len(g) else np.nan for g in groups],
                         "observed": np.where(n > 0, k / np.maximum(n, 1), np.nan), "ci_low": lo, "ci_high": hi})


def decile_table(y, p, confidence: float = 0.95, bins: int = 10) -> pd.DataFrame:
    """Calibration by decile of the predicted probability (lowest first): n, mean predicted, observed
    churn rate and its Wilson interval. Rows are split into near-equal groups by rank (ties in a
    stable order), so deciles stay equal-sized when many customers share a score."""
    y, p = _xy(y, p)
    groups = np.array_split(np.argsort(p, kind="stable"), bins)
    out = _groups_table(y, p, groups, confidence)
    out.insert(0, "decile", np.arange(1, bins + 1))
    return out


def lift_table(y, p, bins: int = 10) -> pd.DataFrame:
    """Lift by decile of risk (riskiest first): churn rate, lift over the overall rate, cumulative
    share of all churners captured and cumulative lift."""
    y, p = _xy(y, p)
    groups = np.array_split(np.argsort(-p, kind="stable"), bins)
    base = y.mean() if len(y) else np.nan
    n = np.array([len(g) for g in groups])
    k = np.array([y[g].sum() for g in groups])
    rate = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    cum_k, cum_n = np.cumsum(k), np.cumsum(n)
    return pd.DataFrame({"decile": np.arange(1, bins + 1), "n": n, "churned": k.astype(int), "churn_rate": rate,
                         "lift": rate / base, "captured": cum_k / max(k.sum(), 1),
                         "cumulative_lift": (cum_k / np.maximum(cum_n, 1)) / base})


def tier_table(tiers, y, tier_ids: list[str], confidence: float = 0.95, labels: dict | None = None) -> pd.DataFrame:
    """Churn per tier (best tier first) with Wilson intervals: tier, label, n, churned, churn_rate,
    ci_low, ci_high."""
    t = np.asarray(pd.Series(tiers).astype("string").fillna("").to_numpy(dtype=object))
    y = np.asarray(y, dtype="float64")
    n = np.array([int(np.sum(t == i)) for i in tier_ids])
    k = np.array([int(np.nansum(y[t == i])) for i in tier_ids])
    lo, hi = wilson(k, n, confidence)
    return pd.DataFrame({"tier": tier_ids, "label": [(labels or {}).get(i, i) for i in tier_ids], "n": n,
                         "churned": k, "churn_rate": np.where(n > 0, k / np.maximum(n, 1), np.nan),
                         "ci_low": lo, "ci_high": hi})


def monotone(table: pd.DataFrame) -> bool:
    """Churn never falls from the best tier to the worst (tiers without customers are skipped)."""
    r = table.loc[table["n"] > 0, "churn_rate"].to_numpy(dtype="float64")
    return bool(np.all(np.diff(r) >= -1e-12))


def monotone_violations(table: pd.DataFrame) -> list[dict]:
    """Adjacent non-empty tiers where churn falls going down, and whether their intervals overlap."""
    t = table[table["n"] > 0].reset_index(drop=True)
    out = []
    for a, b in zip(t.index[:-1], t.index[1:]):
        if t.loc[b, "churn_rate"] < t.loc[a, "churn_rate"] - 1e-12:
            out.append({"better": t.loc[a, "tier"], "worse": t.loc[b, "tier"],
                        "churn_better": float(t.loc[a, "churn_rate"]), "churn_worse": float(t.loc[b, "churn_rate"]),
                        "intervals_overlap": bool(t.loc[b, "ci_high"] >= t.loc[a, "ci_low"])})
    return out


def churn_order_verdict(table: pd.DataFrame) -> tuple[str, str]:
    """Does churn rise from the best tier to the worst? ("rises" | "unclear" | "reversed", a sentence).
    A reversal counts only when the two tiers' Wilson intervals do not overlap; otherwise the data
    has too few customers to tell."""
    bad = monotone_violations(table)
    if not bad:
        return "rises", "Churn rises steadily from the best tier to the worst."
    clear = [v for v in bad if not v["intervals_overlap"]]
    if not clear:
        pairs = "; ".join(f"{v['better']} {v['churn_better']:.1%} vs {v['worse']} {v['churn_worse']:.1%}" for v in bad)
        return "unclear", (f"Churn does not rise at every step ({pairs}), but the confidence intervals overlap: too "
                           "few customers to tell whether the grading orders churn risk there.")
    pairs = "; ".join(f"{v['better']} {v['churn_better']:.1%} vs {v['worse']} {v['churn_worse']:.1%}" for v in clear)
    return "reversed", (f"Churn is clearly lower in a worse tier ({pairs}; the confidence intervals do not overlap): "
                        "the grading does not order churn risk there; see the calibration report.")


def discrimination(y, risk, p=None) -> dict:
    """AUC, Gini and KS of a risk score; Brier and log loss when probabilities ``p`` are given."""
    a = auc(y, risk)
    out = {"auc": a, "gini": 2 * a - 1, "ks": ks(y, risk)}
    if p is not None:
        out.update({"brier": brier(y, p), "log_loss": log_loss(y, p)})
    return out


# ================================================================================================
# the logistic fit: penalised, sign-constrained Newton on compressed patterns
# ================================================================================================


def _patterns(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of X and each row's pattern index. Points come from bands, so a panel of a
    million rows usually has a few thousand patterns: every Newton step and every bootstrap
    replicate then works on the patterns, not the rows."""
    n, p = X.shape
    if p == 0:
        return np.zeros((1 if n else 0, 0)), np.zeros(n, dtype=np.int64)
    codes = np.empty((n, p), dtype=np.int64)
    uniq = []
    for j in range(p):
        u, inv = np.unique(X[:, j], return_inverse=True)
        uniq.append(u)
        codes[:, j] = inv
    card = [len(u) for u in uniq]
    if math.prod(card) < 2**62:
        key = np.zeros(n, dtype=np.int64)
        for j in range(p):
            key = key * card[j] + codes[:, j]
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    else:  # pragma: no cover - only with very many distinct point values
        view = np.ascontiguousarray(codes).view(np.dtype((np.void, codes.dtype.itemsize * p)))
        _, first, inv = np.unique(view.ravel(), return_index=True, return_inverse=True)
    return X[first], inv.ravel()


@dataclass
class _LogitProblem:
    """Weighted logistic likelihood on patterns, in standardised coordinates (z = (x − m) / sd)."""

    Z: np.ndarray         # patterns × p
    n: np.ndarray         # rows per pattern (bootstrap: weighted)
    y1: np.ndarray        # churned rows per pattern
    penalty: float = 0.0  # k · c: prior strength × information per row
    Q: np.ndarray | None = None  # penalty matrix (p × p)
    constrained: bool = False    # β ≤ 0
    A: np.ndarray | None = None  # [1, Z], built once and shared by the bootstrap replicates
    A32: np.ndarray | None = None  # float32 copy for the Hessian of very large problems

    #: above this many patterns the Hessian is accumulated in float32 (half the memory traffic); the
    #: gradient stays float64, so the fixed point is the same, only the steps are approximate
    FLOAT32_HESSIAN = 200_000

    def _A(self) -> np.ndarray:
        if self.A is None:
            self.A = np.column_stack([np.ones(len(self.Z)), self.Z])
        if self.A32 is None and len(self.A) > self.FLOAT32_HESSIAN:
            self.A32 = self.A.astype(np.float32)
        return self.A

    def _hessian(self, A: np.ndarray, w: np.ndarray) -> np.ndarray:
        if self.A32 is not None:
            A32 = self.A32
            return (A32.T @ (A32 * w.astype(np.float32)[:, None])).astype("float64")
        return A.T @ (A * w[:, None])

    def objective(self, theta: np.ndarray, eta: np.ndarray) -> float:
        """The penalised negative log-likelihood at θ, given the linear predictor η = Aθ."""
        f = -(self.y1 @ eta - self.n @ np.logaddexp(0.0, eta))
        if self.penalty and self.Q is not None:
            b = theta[1:]
            f += 0.5 * self.penalty * b @ self.Q @ b
        return float(f)

    def solve(self, theta0: np.ndarray | None = None, tol: float = 1e-10, maxiter: int = 200) -> tuple[np.ndarray, int]:
        """Minimise the penalised negative log-likelihood (projected Newton with an Armijo search
        along the projection arc for β ≤ 0). Returns θ = (intercept, β) and the iterations used."""
        A = self._A()
        p = A.shape[1]
        if theta0 is None:
            rate = np.clip(self.y1.sum() / max(self.n.sum(), 1e-300), 1e-6, 1 - 1e-6)
            theta = np.zeros(p)
            theta[0] = math.log(rate / (1 - rate))
        else:
            theta = np.asarray(theta0, dtype="float64").copy()
            if self.constrained:
                theta[1:] = np.minimum(theta[1:], 0.0)
        scale = max(float(self.n.sum()), 1.0)
        eta = A @ theta
        f = self.objective(theta, eta)
        it = 0
        for it in range(1, maxiter + 1):
            mu = expit(eta)
            g = -(A.T @ (self.y1 - self.n * mu))
            H = self._hessian(A, self.n * mu * (1 - mu))
            if self.penalty and self.Q is not None:
                g[1:] += self.penalty * (self.Q @ theta[1:])
                H[1:, 1:] += self.penalty * self.Q
            free = np.ones(p, dtype=bool)
            if self.constrained:
                free[1:] = ~((theta[1:] >= -1e-12) & (g[1:] < 0))
            d = np.zeros(p)
            Hf = H[np.ix_(free, free)]
            try:
                d[free] = np.linalg.solve(Hf, -g[free])
            except np.linalg.LinAlgError:
                d[free] = np.linalg.lstsq(Hf + 1e-10 * np.trace(Hf) * np.eye(free.sum()), -g[free], rcond=None)[0]
            pg = np.where(free, g, 0.0)
            t = 1.0
            while True:
                new = theta + t * d
                if self.constrained:
                    new[1:] = np.minimum(new[1:], 0.0)
                eta_new = A @ new
                fn = self.objective(new, eta_new)
                if fn <= f + 1e-4 * (g @ (new - theta)) or t < 1e-12:
                    break
                t *= 0.5
            step = np.max(np.abs(new - theta)) if p else 0.0
            if fn > f and t < 1e-12:  # no progress possible: at the optimum within float precision
                break
            theta, eta, f = new, eta_new, fn
            if step < tol * (1 + np.max(np.abs(theta))) and np.max(np.abs(pg)) < 1e-6 * scale:
                break
        return theta, it


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = X.mean(axis=0) if len(X) else np.zeros(X.shape[1])
    sd = X.std(axis=0) if len(X) else np.ones(X.shape[1])
    sd = np.where(sd > 0, sd, 1.0)
    return m, sd


def logit_fit(X, y, weights=None, *, constrained: bool = False, prior_strength: float = 0.0,
              prior_direction=None) -> tuple[float, np.ndarray]:
    """Maximum-likelihood logistic regression of ``y`` on ``X`` (plus an intercept) in numpy.

    ``constrained`` keeps every slope ≤ 0. ``prior_strength`` k > 0 adds the penalty
    ``k/2 · c · |(I − uuᵀ) β_z|²`` that pulls the slopes' direction towards ``−prior_direction``
    (standardised slopes β_z = β · sd, u the unit vector of prior_direction · sd, c = ȳ(1 − ȳ) the
    information of one row): the prior counts as k rows of evidence about the direction and says
    nothing about the overall scale. Returns (intercept, slopes)."""
    X = np.asarray(X, dtype="float64")
    y = np.asarray(y, dtype="float64")
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype="float64")
    m, sd = _standardise(X)
    pats, inv = _patterns(X)
    n = np.bincount(inv, weights=w, minlength=len(pats))
    y1 = np.bincount(inv, weights=w * y, minlength=len(pats))
    prob = _LogitProblem((pats - m) / sd, n, y1, constrained=constrained)
    if prior_strength > 0:
        prob.penalty, prob.Q = _prior_penalty(prior_strength, y, w, np.asarray(prior_direction, dtype="float64") * sd)
    theta, _ = prob.solve()
    beta = theta[1:] / sd
    return float(theta[0] - beta @ m), beta


def _prior_penalty(k: float, y: np.ndarray, w: np.ndarray, direction_z: np.ndarray) -> tuple[float, np.ndarray]:
    rate = float(np.sum(w * y) / max(np.sum(w), 1e-300))
    c = rate * (1 - rate)
    p = len(direction_z)
    norm = float(np.linalg.norm(direction_z))
    Q = np.eye(p) if norm == 0 else np.eye(p) - np.outer(direction_z, direction_z) / norm**2
    return k * c, Q


# ================================================================================================
# the estimator
# ================================================================================================


def _scheme_structure(scheme: Scheme) -> tuple[list[str], dict[str, str], dict[str, float]]:
    """Indicators in score order, each one's dimension, and the expert effective weights. Raises
    ``SegmentError`` for a scheme calibration cannot handle."""
    if not scheme.scored:
        raise SegmentError(f"scheme {scheme.id} has no weighted dimensions (a stage scheme): there are no "
                           "weights or cut-offs to calibrate")
    if scheme.group_by:
        raise SegmentError(f"scheme {scheme.id} grades per {scheme.group_by}; calibration against churn "
                           "needs one grade per customer (calibrate a scheme without `group_by`)")
    home: dict[str, str] = {}
    for d, dim in scheme.dimensions.items():
        for ind in dim.indicators:
            if ind in home:
                raise SegmentError(f"scheme {scheme.id}: indicator {ind!r} is weighted in two dimensions "
                                   f"({home[ind]} and {d}); calibration gives each indicator one weight — "
                                   "keep it in one dimension")
            home[ind] = d
    w = scheme.weights()
    return list(w), home, w


def split_weights(effective: dict[str, float], scheme: Scheme) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Effective indicator weights → (dimension weights, weights within each dimension). A dimension
    whose indicators all get 0 keeps the expert's weights within it (they then do not matter)."""
    dims, within = {}, {}
    for d, dim in scheme.dimensions.items():
        total = sum(effective[i] for i in dim.indicators)
        dims[d] = total
        within[d] = ({i: effective[i] / total for i in dim.indicators} if total > 0 else dict(dim.indicators))
    return dims, within


def _round_simplex(values: dict[str, float], decimals: int) -> dict[str, float]:
    """Round weights that sum to 1 so that they still sum to 1 (largest remainder)."""
    keys = list(values)
    if not keys:
        return {}
    scale = 10**decimals
    raw = np.array([values[k] for k in keys], dtype="float64") * scale
    base = np.floor(raw)
    short = int(round(scale - base.sum()))
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:max(short, 0)]] += 1
    return {k: float(v) / scale for k, v in zip(keys, base)}


class WeightCalibrator:
    """Churn → scheme weights, following the scikit-learn contract (``fit`` returns self, learned
    state ends in ``_``).

    ``fit(X, y, groups)``: ``X`` the indicator points (columns named by indicator, as the scheme's
    ``pts__<indicator>`` without the prefix), ``y`` churn 0/1, ``groups`` the customer of each row.

    Learned: ``result_`` (the statsmodels Logit results, clustered by customer), ``coef_`` / ``bse_``
    (its coefficients and standard errors), ``beta_`` / ``intercept_`` (the sign-constrained,
    prior-penalised refit that makes the weights), ``weights_`` (effective indicator weights),
    ``dimension_weights_``, ``within_weights_``, ``weights_boot_`` (one row per bootstrap
    replicate), ``weights_ci_`` and ``dimension_weights_ci_`` (low, high), ``no_variation_``
    (indicators with one point value in the panel: weight 0), ``fallback_`` (no indicator had a
    useful sign: the expert weights were kept), ``n_patterns_`` (distinct point patterns the fit
    works on) and ``timings_`` (seconds: statsmodels, refit, bootstrap)."""

    def __init__(self, scheme: Scheme, prior_strength: float = 0.0, n_bootstrap: int = 200,
                 confidence: float = 0.95, random_state: int | None = None):
        self.scheme = scheme
        self.prior_strength = prior_strength
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.random_state = random_state

    # -- fit ------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y, groups=None) -> "WeightCalibrator":
        import statsmodels.api as sm

        inds, home, expert = _scheme_structure(self.scheme)
        missing = [i for i in inds if i not in X.columns]
        if missing:
            raise ValueError(f"X lacks points of {missing}")
        Xa = X[inds].to_numpy(dtype="float64")
        y = np.asarray(y, dtype="float64")
        if len(y) == 0:
            raise SegmentError("no labelled rows to calibrate on (see the panel table for who was left out)")
        if np.isnan(y).any() or np.isnan(Xa).any():
            raise ValueError("X and y must not contain missing values (censored rows are excluded before fitting)")
        churned = int(y.sum())
        if churned == 0 or churned == len(y):
            raise SegmentError(f"the training panel has {churned} churned of {len(y)} labelled rows; a fit "
                               "needs both churned and retained customers (choose other dates or a longer horizon)")
        groups = np.arange(len(y)) if groups is None else np.asarray(pd.Series(groups).astype("string").to_numpy(dtype=object))
        gcodes, guniq = pd.factorize(pd.Series(groups, dtype="object"))
        if len(guniq) < 2:  # one cluster: statsmodels divides by zero in the cluster-robust covariance
            raise SegmentError(f"the training panel holds {len(guniq)} customer; weights cannot be fitted on "
                               "one customer — calibrate on data with many customers (churned and retained)")
        self.n_rows_, self.n_customers_, self.churned_ = len(y), len(guniq), churned

        varies = Xa.std(axis=0) > 0
        self.no_variation_ = [i for i, v in zip(inds, varies) if not v]
        cols = [i for i, v in zip(inds, varies) if v]
        Xv = Xa[:, varies]
        if cols:
            rank = np.linalg.matrix_rank(Xv - Xv.mean(axis=0))
            if rank < len(cols):
                raise SegmentError(self._collinear_message(Xv, cols))

        # 1. the statsmodels fit: coefficients and cluster-robust standard errors
        clock = time.perf_counter()
        self.timings_ = {}
        exog = sm.add_constant(pd.DataFrame(Xv, columns=cols), has_constant="add")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sm.Logit(y, exog).fit(disp=0, method="newton", maxiter=100, cov_type="cluster",
                                            cov_kwds={"groups": gcodes})
        except Exception as e:  # perfect separation, singular matrix
            raise SegmentError(f"the logistic fit failed ({type(e).__name__}: {str(e).splitlines()[0]}); "
                               "an indicator may separate churners perfectly — check its bands") from None
        self.result_ = res
        self.coef_ = res.params
        self.bse_ = res.bse
        self.columns_ = cols
        self.timings_["statsmodels"] = time.perf_counter() - clock

        # 2. sign-constrained, prior-penalised refit → weights
        clock = time.perf_counter()
        m, sd = _standardise(Xv)
        pats, inv = _patterns(Xv)
        self._inv, self._gcodes, self._y = inv, gcodes, y
        n = np.bincount(inv, minlength=len(pats)).astype("float64")
        y1 = np.bincount(inv, weights=y, minlength=len(pats))
        prob = _LogitProblem((pats - m) / sd, n, y1, constrained=True)
        e0 = np.array([expert[i] for i in cols])
        if self.prior_strength > 0:
            prob.penalty, prob.Q = _prior_penalty(self.prior_strength, y, np.ones(len(y)), e0 * sd)
        theta, self.n_iter_ = prob.solve()
        self._prob, self._theta, self._m, self._sd = prob, theta, m, sd
        beta_v = theta[1:] / sd
        beta = pd.Series(0.0, index=inds)
        beta[cols] = beta_v
        self.beta_ = beta
        self.intercept_ = float(theta[0] - beta_v @ m)
        self.weights_ = pd.Series(self._to_weights(beta_v, cols, inds, expert), index=inds)
        self.fallback_ = bool(not np.any(beta_v < 0))
        dims, within = split_weights(self.weights_.to_dict(), self.scheme)
        self.dimension_weights_ = pd.Series(dims)
        self.within_weights_ = within

        self.n_patterns_ = len(pats)
        self.timings_["refit"] = time.perf_counter() - clock

        # 3. bootstrap over customers
        clock = time.perf_counter()
        self._bootstrap(inds, cols, expert)
        self.timings_["bootstrap"] = time.perf_counter() - clock
        return self

    def _collinear_message(self, Xv: np.ndarray, cols: list[str]) -> str:
        corr = np.corrcoef(Xv, rowvar=False)
        pairs = [(cols[a], cols[b]) for a in range(len(cols)) for b in range(a + 1, len(cols))
                 if abs(corr[a, b]) > 0.999999]
        which = f" ({', '.join(f'{a} ~ {b}' for a, b in pairs)})" if pairs else ""
        return (f"scheme {self.scheme.id}: the indicators' points are collinear in the training panel{which}; "
                "the data cannot tell their weights apart — drop one of them or give them different bands")

    @staticmethod
    def _to_weights(beta_v: np.ndarray, cols: list[str], inds: list[str], expert: dict[str, float]) -> list[float]:
        mag = np.maximum(-beta_v, 0.0) + 0.0  # no negative zeros
        total = mag.sum()
        out = dict.fromkeys(inds, 0.0)
        if total > 0:
            out.update(dict(zip(cols, mag / total)))
        else:  # the data gives no indicator a useful sign: keep the expert weights
            out.update(expert)
        return [out[i] for i in inds]

    def _bootstrap(self, inds, cols, expert) -> None:
        B = int(self.n_bootstrap)
        self.weights_boot_ = pd.DataFrame(columns=inds, dtype="float64")
        lo_q, hi_q = (1 - self.confidence) / 2, 1 - (1 - self.confidence) / 2
        nan = pd.DataFrame({"low": np.nan, "high": np.nan}, index=inds)
        self.weights_ci_ = nan
        self.dimension_weights_ci_ = pd.DataFrame({"low": np.nan, "high": np.nan}, index=list(self.scheme.dimensions))
        self.boot_degenerate_ = 0
        if B <= 0:
            return
        rng = np.random.default_rng(self.random_state)
        ncust = self.n_customers_
        npat = len(self._prob.n)
        rows = np.empty((B, len(inds)))
        degenerate = 0
        for b in progress(range(B), desc="bootstrap", unit="rep"):
            counts = np.bincount(rng.integers(0, ncust, ncust), minlength=ncust).astype("float64")
            w = counts[self._gcodes]
            prob = _LogitProblem(self._prob.Z, np.bincount(self._inv, weights=w, minlength=npat),
                                 np.bincount(self._inv, weights=w * self._y, minlength=npat),
                                 self._prob.penalty, self._prob.Q, constrained=True, A=self._prob.A, A32=self._prob.A32)
            theta, _ = prob.solve(self._theta, tol=1e-8)
            beta_v = theta[1:] / self._sd
            if not np.any(beta_v < 0):
                degenerate += 1
            rows[b] = self._to_weights(beta_v, cols, inds, expert)
        self.boot_degenerate_ = degenerate
        self.weights_boot_ = pd.DataFrame(rows, columns=inds)
        self.weights_ci_ = pd.DataFrame({"low": np.quantile(rows, lo_q, axis=0), "high": np.quantile(rows, hi_q, axis=0)},
                                        index=inds)
        dim_rows = np.column_stack([rows[:, [inds.index(i) for i in dim.indicators]].sum(axis=1)
                                    for dim in self.scheme.dimensions.values()])
        self.dimension_weights_boot_ = pd.DataFrame(dim_rows, columns=list(self.scheme.dimensions))
        self.dimension_weights_ci_ = pd.DataFrame({"low": np.quantile(dim_rows, lo_q, axis=0),
                                                   "high": np.quantile(dim_rows, hi_q, axis=0)},
                                                  index=list(self.scheme.dimensions))

    # -- use ------------------------------------------------------------------------------------
    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """The refit's log-odds of churn for points ``X``."""
        return self.intercept_ + X[list(self.beta_.index)].to_numpy(dtype="float64") @ self.beta_.to_numpy()

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(churn) from the refit (the calibrated weights at their fitted scale)."""
        return expit(self.decision_function(X))

    def coefficients(self) -> pd.DataFrame:
        """The statsmodels fit: coefficient, clustered standard error, z, p, interval, and the refit."""
        res = self.result_
        ci = res.conf_int(alpha=1 - self.confidence)
        out = pd.DataFrame({"term": res.params.index, "coef": res.params.to_numpy(), "se": res.bse.to_numpy(),
                            "z": res.tvalues.to_numpy(), "p": res.pvalues.to_numpy(),
                            "ci_low": ci.iloc[:, 0].to_numpy(), "ci_high": ci.iloc[:, 1].to_numpy()})
        refit = {"const": self.intercept_, **self.beta_.to_dict()}
        out["refit"] = out["term"].map(refit)
        return out.reset_index(drop=True)

    def table(self) -> pd.DataFrame:
        """One row per indicator: dimension, expert and calibrated weights, interval, coefficient."""
        inds, home, expert = _scheme_structure(self.scheme)
        coef = self.coef_.reindex(inds)
        se = self.bse_.reindex(inds)
        return pd.DataFrame({
            "indicator": inds, "dimension": [home[i] for i in inds],
            "expert_weight": [expert[i] for i in inds], "weight": self.weights_.reindex(inds).to_numpy(),
            "ci_low": self.weights_ci_["low"].reindex(inds).to_numpy(),
            "ci_high": self.weights_ci_["high"].reindex(inds).to_numpy(),
            "coef": coef.to_numpy(), "se": se.to_numpy(), "refit": self.beta_.reindex(inds).to_numpy(),
            "note": ["no variation in the panel: weight 0" if i in self.no_variation_ else
                     ("churn rises with its points: weight 0" if coef[i] > 0 and self.beta_[i] == 0 else "")
                     for i in inds],
        })

    def _repr_html_(self) -> str:
        head = (f"<p><b>Weight calibration</b> of {self.scheme.id}: {self.n_rows_:,} rows, {self.n_customers_:,} customers, "
                f"{self.churned_:,} churned; prior strength {self.prior_strength:g}; {self.n_bootstrap} bootstrap "
                f"replicates, {self.confidence:.0%} intervals.</p>")
        return head + self.table().to_html(index=False, float_format="{:.4f}".format)


# ================================================================================================
# cut-offs
# ================================================================================================


def scored_tiers(scheme: Scheme) -> list[str]:
    """Tiers that have a score cut-off (``min_score``), highest first; the floor has none."""
    return [t.id for t in scheme.tiers if t.min_score is not None]


def _targets(value, tiers: list[str], key: str) -> list[float]:
    if isinstance(value, dict):
        unknown = [t for t in value if t not in tiers]
        missing = [t for t in tiers if t not in value]
        if unknown or missing:
            raise SegmentError(f"cutoffs.{key}: " + (f"unknown tier(s) {unknown}; " if unknown else "")
                               + (f"no target for {missing}; " if missing else "")
                               + f"give one per scored tier: {', '.join(tiers)}")
        return [float(value[t]) for t in tiers]
    if len(value) != len(tiers):
        raise SegmentError(f"cutoffs.{key}: {len(value)} value(s) for {len(tiers)} scored tier(s) "
                           f"({', '.join(tiers)}); give one per scored tier, highest first")
    return [float(v) for v in value]


def _nice_numbers(lo: float, hi: float, k: int) -> list[float]:
    """k distinct numbers in (lo, hi], decreasing, with as few decimals as possible, near the middle."""
    mid = (lo + hi) / 2 if math.isfinite(lo) else hi
    for d in range(0, 10):
        step = 10.0**-d
        top = math.floor(hi / step + 1e-9)
        cands = []
        m = top
        while len(cands) < 2000:
            v = round(m * step, d)
            if v <= lo:
                break
            if v <= hi:
                cands.append(v)
            m -= 1
        if len(cands) >= k:
            cands.sort(key=lambda v: (abs(v - mid), -v))
            return sorted(cands[:k], reverse=True)
    return list(np.linspace(hi, lo, k + 1)[:k])


def choose_cutoffs(scores: np.ndarray, tiers: list[str], *, method: str = "shares", shares=None,
                   churn_rates=None, max_customers: dict | None = None, labelled_scores=None, labelled_y=None,
                   min_tier_rows: int = 30, max_score: float | None = None) -> dict[str, float]:
    """Cut-offs (``min_score``) for the scored ``tiers`` (highest first; the floor is not listed).

    * ``shares``: target share of ``scores`` in each tier's score band; the cut-off that comes closest
      to the cumulative target is chosen (ties among scores make exact shares impossible);
    * ``churn_rates``: top down, the lowest cut-off whose band keeps the churn rate of
      ``labelled_scores`` / ``labelled_y`` at or below the target, with at least ``min_tier_rows`` rows;
    * ``max_customers``: afterwards, a tier's band holds at most this many of ``scores`` (its cut-off is
      raised until it does; the customers move down).

    Cut-offs are placed between distinct scores, as round as possible, so the same customers are
    split the same way on ``scores``."""
    s = np.sort(np.asarray(scores, dtype="float64"))[::-1]
    s = s[~np.isnan(s)]
    if len(s) == 0:
        raise SegmentError("no scores to place cut-offs on")
    u = np.unique(s)[::-1]  # distinct scores, highest first
    n = len(s)

    def count_ge(v):  # customers with score ≥ v
        return int(np.searchsorted(-s, -v, side="right"))

    # thresholds as indices into u: tier j holds scores ≥ u[idx_j]; idx = -1 means "nobody"
    if method == "shares":
        target = np.cumsum(_targets(shares, tiers, "shares"))
        counts = np.array([count_ge(v) for v in u]) / n
        idx = []
        for tgt in target:
            cand = np.r_[0.0, counts]  # position 0 = nobody (threshold above max)
            best = int(np.argmin(np.abs(cand - tgt) + 1e-12 * np.arange(len(cand))))
            idx.append(best - 1)
        idx = list(np.maximum.accumulate(idx))
    elif method == "churn_rates":
        if labelled_scores is None or labelled_y is None:
            raise ValueError("churn_rates needs labelled_scores and labelled_y")
        rates = _targets(churn_rates, tiers, "churn_rates")
        ls = np.asarray(labelled_scores, dtype="float64")
        ly = np.asarray(labelled_y, dtype="float64")
        order = np.argsort(-ls, kind="stable")
        ls_desc, cum_y = ls[order], np.r_[0.0, np.cumsum(ly[order])]
        n_ge = np.searchsorted(-ls_desc, -u, side="right")  # labelled rows with score ≥ u[i]
        y_ge = cum_y[n_ge]
        idx = []
        upper_n, upper_y, upper = 0, 0.0, np.inf
        for tier, rate in zip(tiers, rates):
            below = u < upper
            m = n_ge - upper_n
            r = np.where(m > 0, (y_ge - upper_y) / np.maximum(m, 1), np.inf)
            ok = below & (m >= min_tier_rows)
            hit = np.flatnonzero(ok & (r <= rate + 1e-12))
            if not len(hit):
                got = (f"the lowest it reaches with ≥ {min_tier_rows} rows is {r[ok].min():.1%} "
                       f"({int(m[ok][np.argmin(r[ok])])} rows)" if ok.any()
                       else f"no band below the tier above holds {min_tier_rows} rows")
                raise SegmentError(f"cutoffs.churn_rates: tier {tier!r} cannot keep its training churn rate at "
                                   f"or below {rate:.1%}; {got}. Raise the target or lower min_tier_rows")
            best = int(hit[-1])  # the lowest cut-off (widest tier) that keeps the rate
            idx.append(best)
            upper, upper_n, upper_y = u[best], n_ge[best], y_ge[best]
    else:
        raise ValueError(f"unknown method {method!r}")

    for j, tier in enumerate(tiers):
        cap = (max_customers or {}).get(tier)
        if cap is None:
            continue
        above = count_ge(u[idx[j - 1]]) if j > 0 and idx[j - 1] >= 0 else 0
        while idx[j] >= 0 and count_ge(u[idx[j]]) - above > cap:
            idx[j] -= 1
        if j > 0:
            idx[j] = max(idx[j], idx[j - 1])
        for k in range(j + 1, len(idx)):
            idx[k] = max(idx[k], idx[j])

    # numbers: tiers sharing a threshold index share an interval and get distinct numbers in it
    out: dict[str, float] = {}
    j = 0
    while j < len(tiers):
        k = j
        while k + 1 < len(tiers) and idx[k + 1] == idx[j]:
            k += 1
        i = idx[j]
        if i < 0:  # nobody: above the highest score, within the highest possible score
            lo, hi = float(u[0]), float(max_score if max_score is not None else u[0] + 1)
            if hi <= lo:
                raise SegmentError(f"cutoffs: tier {tiers[j]!r} would be empty, but the best customers already "
                                   f"reach the highest possible score {hi:g}; lower its target share")
        else:
            hi = float(u[i])
            lo = float(u[i + 1]) if i + 1 < len(u) else hi - 1.0
        for t, v in zip(tiers[j:k + 1], _nice_numbers(lo, hi, k - j + 1)):
            out[t] = v
        j = k + 1
    return out


# ================================================================================================
# the whole calibration
# ================================================================================================


def check_dates(train_as_of, test_as_of, horizon_days: int, data_end, data_start=None) -> tuple[list[pd.Timestamp], pd.Timestamp, list[str]]:
    """Validate the dates. Rules (errors): at least one train date, none listed twice; the test date
    after every train date; **no leakage** — every train date + horizon ≤ test date, so the training
    labels end before the test period starts (the calibration could have been made on the test date);
    **no censoring** — test date + horizon ≤ data end. Warnings: a date less than a year after the
    first transaction (its 12-month indicators see a partial year)."""
    if isinstance(train_as_of, (str, pd.Timestamp)) or not hasattr(train_as_of, "__iter__"):
        train_as_of = [train_as_of]
    train = [_day(d, "--train-as-of") for d in train_as_of]
    if not train:
        raise SegmentError("--train-as-of: give at least one training date (YYYY-MM-DD[,YYYY-MM-DD…])")
    dup = sorted({d for d in train if train.count(d) > 1})
    if dup:
        raise SegmentError(f"--train-as-of lists {dup[0].date()} twice; give each date once")
    train = sorted(train)
    test = _day(test_as_of, "--test-as-of")
    h = horizon_days
    if not isinstance(h, (int, np.integer)) or isinstance(h, bool) or h < 1:
        raise SegmentError(f"--horizon-days must be a whole number of days ≥ 1 (got {h!r})")
    hd = pd.Timedelta(days=int(h))
    end = _day(data_end, "data end")
    if test <= train[-1]:
        raise SegmentError(f"--test-as-of {test.date()} must come after every --train-as-of date "
                           f"(latest: {train[-1].date()}); out-of-time validation tests on a later date")
    late = [d for d in train if d + hd > test]
    if late:
        raise SegmentError(
            f"--train-as-of {late[-1].date()} + {h} days ends {(late[-1] + hd).date()}, after --test-as-of "
            f"{test.date()}: its churn labels would overlap the test period (leakage). Use train dates on or before "
            f"{(test - hd).date()}, a later test date or a shorter --horizon-days")
    if test + hd > end:
        raise SegmentError(
            f"--test-as-of {test.date()} + {h} days ends {(test + hd).date()}, after the data end {end.date()}: "
            f"the outcome is not observed yet (censored). Use a test date on or before {(end - hd).date()} or a "
            f"shorter --horizon-days")
    warn = []
    if data_start is not None:
        start = _day(data_start, "data start")
        early = [d for d in train if d < start]
        if early:
            raise SegmentError(f"--train-as-of {early[0].date()} is before the first transaction "
                               f"({start.date()}): there is no history to grade; use later dates")
        young = [d for d in train + [test] if d < start + pd.Timedelta(days=365)]
        if young:
            warn.append(f"as-of {', '.join(str(d.date()) for d in young)}: less than a year after the first transaction "
                        f"({start.date()}); 12-month indicators see a partial year there")
    return train, test, warn


@dataclass
class CalibrationResult:
    """Everything a calibration produced. ``table()`` is the weights table; ``metrics`` the content of
    metrics.json; ``scheme`` the calibrated scheme as written; ``tiers()`` churn by tier at the test
    date; ``deciles``, ``lift``; ``model`` the fitted :class:`WeightCalibrator`; ``train`` and ``test``
    the panels."""

    metrics: dict
    scheme: dict
    calibrated: Scheme
    expert: Scheme
    model: WeightCalibrator
    train: Panel
    test: Panel
    deciles: pd.DataFrame
    lift: pd.DataFrame
    tiers_calibrated: pd.DataFrame
    tiers_expert: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        return self.model.table()

    def tiers(self) -> pd.DataFrame:
        e = self.tiers_expert.add_prefix("expert_").rename(columns={"expert_tier": "tier"}).drop(columns=["expert_label"])
        c = self.tiers_calibrated.add_prefix("calibrated_").rename(columns={"calibrated_tier": "tier",
                                                                             "calibrated_label": "label"})
        return c.merge(e, on="tier", how="left", sort=False)

    def comparison(self) -> pd.DataFrame:
        """Expert vs calibrated: AUC, Gini, KS, Brier, log loss on the training and test panels."""
        rows = []
        for who in ("expert", "calibrated"):
            for part in ("train", "test"):
                rows.append({"scheme": who, "panel": part, **self.metrics[who][part]})
        return pd.DataFrame(rows)

    def summary(self) -> str:
        m = self.metrics
        e, c = m["expert"]["test"], m["calibrated"]["test"]
        lines = [f"calibrated {m['scheme']['id']} on {m['n_train']:,} rows ({', '.join(m['train_as_of'])}), tested on "
                 f"{m['n_test']:,} customers at {m['test_as_of']} (horizon {m['horizon_days']} days, churn "
                 f"{m['churn_rate_test']:.1%})",
                 f"test AUC expert {e['auc']:.3f} → calibrated {c['auc']:.3f}; KS {e['ks']:.3f} → {c['ks']:.3f}; "
                 f"Brier {e['brier']:.4f} → {c['brier']:.4f}",
                 f"churn by calibrated tier monotone: {'yes' if m['tiers']['monotone'] else 'NO'}"]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"wrote {p}" for p in self.paths.values()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        fmt = "{:.4f}".format
        return (f"<h4>Calibration of {self.expert.id}</h4><pre>{self.summary()}</pre>"
                f"<h5>Weights</h5>{self.table().to_html(index=False, float_format=fmt)}"
                f"<h5>Expert vs calibrated</h5>{self.comparison().to_html(index=False, float_format=fmt)}"
                f"<h5>Churn by tier (test)</h5>{self.tiers().to_html(index=False, float_format=fmt)}"
                f"<h5>Calibration by decile (test)</h5>{self.deciles.to_html(index=False, float_format=fmt)}"
                f"<h5>Lift (test)</h5>{self.lift.to_html(index=False, float_format=fmt)}")


def _plain(obj):
    """Plain JSON/YAML values (numpy scalars → Python, NaN → None)."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, (pd.Timestamp, Path)):
            return str(o)
        raise TypeError(f"cannot serialise {type(o).__name__}")

    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return o

    return clean(json.loads(json.dumps(obj, default=default)))


def _records(df: pd.DataFrame) -> list[dict]:
    return json.loads(df.to_json(orient="records", double_precision=10))


def _fnum(x, nd: int = 6):
    if x is None:
        return None
    x = float(x)
    return None if not math.isfinite(x) else round(x, nd)


def _scheme_dict(scheme: Scheme, raw: dict | None) -> dict:
    return copy.deepcopy(raw) if raw is not None else scheme.model_dump(by_alias=True, exclude_none=True)


def scheme_yaml(scheme: dict, header: str = "") -> str:
    """A scheme dict as YAML the way analysts write it: small mappings of plain values (a band, a
    dimension's indicator weights) on one line, everything else in blocks, keys in their order."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def mapping(dumper, data):
        flow = 0 < len(data) <= 6 and all(isinstance(v, (int, float, str, bool)) or v is None for v in data.values()) \
            and sum(len(str(k)) + len(str(v)) for k, v in data.items()) < 80
        return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)

    def seq(dumper, data):
        flow = all(isinstance(v, (int, float, str, bool)) or v is None for v in data) and len(data) <= 12
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    Dumper.add_representer(dict, mapping)
    Dumper.add_representer(list, seq)
    return header + yaml.dump(scheme, Dumper=Dumper, allow_unicode=True, sort_keys=False, width=110)


def calibrate(tables: Tables, scheme: Scheme, train_as_of, test_as_of, horizon_days: int,
              params: CalibrationParams | None = None, data_end=None, *, scheme_raw: dict | None = None,
              provenance: dict | None = None) -> CalibrationResult:
    """The whole calibration in memory (no files): panels, fit, weights, cut-offs, validation.

    ``scheme_raw`` is the scheme as read from its YAML (kept as written, weights and cut-offs
    replaced); ``provenance`` is merged into the calibrated scheme's provenance block."""
    params = params or CalibrationParams()
    start, last = tables.date_range()
    if data_end is None:
        data_end = last.normalize()
    train_dates, test_date, warn = check_dates(train_as_of, test_as_of, horizon_days, data_end,
                                               None if pd.isna(start) else start)
    inds, home, expert = _scheme_structure(scheme)
    h = int(horizon_days)
    conf = params.fit.confidence

    train = build_panel(tables, scheme, train_dates, h, params.churn, data_end)
    test = build_panel(tables, scheme, [test_date], h, params.churn, data_end)
    tr, te = train.labelled(), test.labelled()
    for panel, what in ((train, "training"), (test, "test")):
        empty = panel.counts[panel.counts["labelled"] == 0]
        if len(empty):
            raise SegmentError(f"no customer at risk at the {what} date(s) {', '.join(empty['as_of'])} "
                               f"({params.churn.describe()}); choose dates inside the data")
    pcols = [PTS + i for i in inds]
    model = WeightCalibrator(scheme, params.fit.prior_strength, params.fit.bootstrap, conf, params.fit.seed)
    model.fit(tr[pcols].set_axis(inds, axis=1), tr["churn"].to_numpy(), tr["customer_id"].to_numpy())
    if model.fallback_:
        warn.append("no indicator's points fall with churn in the training panel: the expert weights are kept")
    if model.no_variation_:
        warn.append(f"no variation in the training panel (weight 0): {', '.join(model.no_variation_)}")

    # weights as written (rounded, each level summing to 1) and the scores they give
    dims, within = split_weights(model.weights_.to_dict(), scheme)
    dims_r = _round_simplex(dims, 4)
    within_r = {d: _round_simplex(w, 4) for d, w in within.items()}
    eff = {i: dims_r[home[i]] * within_r[home[i]][i] for i in inds}
    e_vec = np.array([eff[i] for i in inds])

    # cut-offs, on the latest training date's graded population (customers at risk or not)
    tiers = scored_tiers(scheme)
    raw = _scheme_dict(scheme, scheme_raw)
    for d, dim in raw["dimensions"].items():
        dim["weight"] = dims_r[d]
        dim["indicators"] = {i: within_r[d][i] for i in dim["indicators"]}
    probe = Scheme.model_validate({**raw, "tiers": [raw["tiers"][-1]], "overrides": []})
    latest = train.rows[train.rows["as_of"] == train_dates[-1]]
    ref_cal = linear_score(latest[pcols].to_numpy(dtype="float64"), e_vec, scheme, latest["adj_mult"].to_numpy())
    ref_exp = latest["score"].to_numpy(dtype="float64")
    cut_params = params.cutoffs
    cutoffs: dict[str, float] = {}
    cut_targets: dict = {"method": cut_params.method}
    if tiers:
        if cut_params.method == "keep":
            cutoffs = {t.id: float(t.min_score) for t in scheme.tiers if t.min_score is not None}
            if any(c > probe.max_score() + 1e-9 for c in cutoffs.values()):
                raise SegmentError(f"cutoffs.method keep: the expert cut-off {max(cutoffs.values()):g} is above the "
                                   f"calibrated scheme's highest possible score {probe.max_score():g}; use expert_shares")
        else:
            kw = {"max_customers": cut_params.max_customers, "max_score": probe.max_score()}
            unknown = [t for t in cut_params.max_customers if t not in tiers]
            if unknown:
                raise SegmentError(f"cutoffs.max_customers: unknown or floor tier(s) {unknown}; "
                                   f"scored tiers are {', '.join(tiers)}")
            if cut_params.method == "expert_shares":
                cum = [float(np.mean(ref_exp >= t.min_score)) for t in scheme.tiers if t.min_score is not None]
                target = list(np.diff(np.r_[0.0, cum]))
                cut_targets["shares"] = dict(zip(tiers, [round(x, 6) for x in target]))
                cutoffs = choose_cutoffs(ref_cal, tiers, method="shares", shares=target, **kw)
            elif cut_params.method == "shares":
                cut_targets["shares"] = cut_params.shares
                cutoffs = choose_cutoffs(ref_cal, tiers, method="shares", shares=cut_params.shares, **kw)
            else:
                cut_targets["churn_rates"] = cut_params.churn_rates
                tr_cal = linear_score(tr[pcols].to_numpy(dtype="float64"), e_vec, scheme, tr["adj_mult"].to_numpy())
                cutoffs = choose_cutoffs(ref_cal, tiers, method="churn_rates", churn_rates=cut_params.churn_rates,
                                         labelled_scores=tr_cal, labelled_y=tr["churn"].to_numpy(),
                                         min_tier_rows=cut_params.min_tier_rows, **kw)
            if cut_params.max_customers:
                cut_targets["max_customers"] = cut_params.max_customers
    for t in raw["tiers"]:
        if t.get("id") in cutoffs:
            c = float(cutoffs[t["id"]])
            t["min_score"] = int(c) if c.is_integer() else c
    raw["id"] = f"{scheme.id}.calibrated"
    raw["name"] = (raw.get("name") or scheme.id) + " — calibrated"
    try:
        calibrated = Scheme.model_validate({**raw, "provenance": None})
    except ValidationError as e:  # pragma: no cover - the weights and cut-offs above are valid by construction
        raise SegmentError(f"the calibrated scheme is invalid: {e.errors()[0]['msg']}") from None

    # out-of-time validation: both schemes graded at the test date, the link fitted on training rows
    test_cal_panel = build_panel(tables, calibrated, [test_date], h, params.churn, data_end)
    test_cal_rows, test_cal = test_cal_panel.rows, test_cal_panel.labelled()
    if not test_cal["customer_id"].equals(te["customer_id"]):  # pragma: no cover - same data, same population
        raise AssertionError("calibrated and expert test panels differ")
    y_tr, y_te = tr["churn"].to_numpy(), te["churn"].to_numpy()
    s_tr_exp, s_te_exp = tr["score"].to_numpy(dtype="float64"), te["score"].to_numpy(dtype="float64")
    s_tr_cal = linear_score(tr[pcols].to_numpy(dtype="float64"), e_vec, scheme, tr["adj_mult"].to_numpy())
    s_te_cal = test_cal["score"].to_numpy(dtype="float64")
    a_e, b_e = logit_fit(s_tr_exp[:, None], y_tr)
    a_c, b_c = logit_fit(s_tr_cal[:, None], y_tr)
    p = {"expert": (expit(a_e + b_e[0] * s_tr_exp), expit(a_e + b_e[0] * s_te_exp)),
         "calibrated": (expit(a_c + b_c[0] * s_tr_cal), expit(a_c + b_c[0] * s_te_cal))}
    scores = {"expert": (s_tr_exp, s_te_exp), "calibrated": (s_tr_cal, s_te_cal)}
    perf = {who: {"train": discrimination(y_tr, -scores[who][0], p[who][0]),
                  "test": discrimination(y_te, -scores[who][1], p[who][1])} for who in scores}
    deciles = decile_table(y_te, p["calibrated"][1], conf)
    lift = lift_table(y_te, p["calibrated"][1])
    tier_ids = [t.id for t in scheme.tiers]
    labels = {t.id: t.label or t.id for t in scheme.tiers}
    tiers_cal = tier_table(test_cal["tier"], y_te, tier_ids, conf, labels)
    tiers_exp = tier_table(te["tier"], y_te, tier_ids, conf, labels)
    for t, rows in ((tiers_cal, test_cal_rows), (tiers_exp, test.rows)):
        counts = rows["tier"].astype("string").value_counts()
        t["graded"] = [int(counts.get(i, 0)) for i in tier_ids]
        t["share_graded"] = t["graded"] / max(len(rows), 1)

    # what adopting the proposal would do: the test date's graded customers, expert tier → calibrated tier
    both = test.rows[["customer_id", "tier"]].merge(test_cal_rows[["customer_id", "tier"]], on="customer_id",
                                                    suffixes=("_e", "_c"))
    rank = {t: i for i, t in enumerate(tier_ids)}  # best tier first
    r_e = both["tier_e"].astype(str).map(rank).to_numpy(dtype=np.intp)
    r_c = both["tier_c"].astype(str).map(rank).to_numpy(dtype=np.intp)
    adopted = np.zeros((len(tier_ids), len(tier_ids)), dtype=np.int64)
    np.add.at(adopted, (r_e, r_c), 1)

    # metrics.json
    ci = model.weights_ci_
    dci = model.dimension_weights_ci_
    exp_dims = {d: dim.weight for d, dim in scheme.dimensions.items()}

    def _perf(d):
        return {k: _fnum(v) for k, v in d.items()}

    def _tiers(t):
        return [{"tier": r.tier, "label": r.label, "n": int(r.n), "churned": int(r.churned),
                 "churn_rate": _fnum(r.churn_rate), "ci_low": _fnum(r.ci_low), "ci_high": _fnum(r.ci_high),
                 "graded": int(r.graded), "share_graded": _fnum(r.share_graded)}
                for r in t.itertuples()]

    metrics = {
        "scheme": {"id": scheme.id, "calibrated_id": calibrated.id,
                   "dimensions": {i: d for d, dim in scheme.dimensions.items() for i in dim.indicators}},
        "horizon_days": h,
        "train_as_of": [str(d.date()) for d in train_dates],
        "test_as_of": str(test_date.date()),
        "data_end": str(pd.Timestamp(data_end).date()),
        "churn_definition": {**params.churn.model_dump(), "text": params.churn.describe()},
        "n_train": int(len(tr)),
        "n_train_customers": int(model.n_customers_),
        "n_test": int(len(te)),
        "churn_rate_train": _fnum(y_tr.mean()),
        "churn_rate_test": _fnum(y_te.mean()),
        "population": _records(pd.concat([train.counts.assign(panel="train"), test.counts.assign(panel="test")])),
        "expert": {
            "weights": {i: _fnum(expert[i]) for i in inds},
            "dimension_weights": {d: _fnum(w) for d, w in exp_dims.items()},
            "cutoffs": {t.id: t.min_score for t in scheme.tiers if t.min_score is not None},
            "train": _perf(perf["expert"]["train"]), "test": _perf(perf["expert"]["test"]),
            "link": {"intercept": _fnum(a_e), "slope": _fnum(b_e[0])},
        },
        "calibrated": {
            "weights": {i: _fnum(eff[i], 10) for i in inds},
            "weights_unrounded": {i: _fnum(model.weights_[i]) for i in inds},
            "weights_ci": {i: [_fnum(ci.loc[i, "low"]), _fnum(ci.loc[i, "high"])] for i in inds},
            "dimension_weights": {d: _fnum(w) for d, w in dims_r.items()},
            "dimension_weights_ci": {d: [_fnum(dci.loc[d, "low"]), _fnum(dci.loc[d, "high"])] for d in dims_r},
            "within_weights": {d: {i: _fnum(w) for i, w in ws.items()} for d, ws in within_r.items()},
            "cutoffs": cutoffs,
            "cutoff_targets": cut_targets,
            "coefficients": _records(model.coefficients()),
            "prior_strength": params.fit.prior_strength,
            "bootstrap": {"replicates": int(params.fit.bootstrap), "confidence": conf, "seed": params.fit.seed,
                          "degenerate": int(model.boot_degenerate_)},
            "no_variation": model.no_variation_,
            "train": _perf(perf["calibrated"]["train"]), "test": _perf(perf["calibrated"]["test"]),
            "link": {"intercept": _fnum(a_c), "slope": _fnum(b_c[0])},
            "calibration_table": _records(deciles),
            "lift": _records(lift),
            "distinct_scores_test": int(np.unique(s_te_cal[np.isfinite(s_te_cal)]).size),
        },
        "tiers": {
            "calibrated": _tiers(tiers_cal),
            "expert": _tiers(tiers_exp),
            "monotone": monotone(tiers_cal),
            "monotone_within_ci": all(v["intervals_overlap"] for v in monotone_violations(tiers_cal)),
            "monotone_expert": monotone(tiers_exp),
            "violations": monotone_violations(tiers_cal),
            "violations_expert": monotone_violations(tiers_exp),
            "adopted": {"tiers": tier_ids, "counts": adopted.tolist(), "graded": int(len(both)),
                        "changed": int(len(both) - np.trace(adopted)), "up": int((r_c < r_e).sum()),
                        "down": int((r_c > r_e).sum())},
        },
        "warnings": warn,
    }
    prov = {
        "generated_by": "segment calibrate",
        "input_scheme": scheme.id,
        **(provenance or {}),
        "train_as_of": metrics["train_as_of"],
        "test_as_of": metrics["test_as_of"],
        "horizon_days": h,
        "churn_definition": metrics["churn_definition"],
        "fit": {"model": "logit on indicator points, weights = −β / Σ −β with β ≤ 0", "prior_strength":
                params.fit.prior_strength, "bootstrap": int(params.fit.bootstrap), "seed": params.fit.seed,
                "n_train": metrics["n_train"], "n_train_customers": metrics["n_train_customers"]},
        "cutoffs": {**cut_targets, "reference": f"graded customers at {metrics['train_as_of'][-1]}"},
        "weights_ci": metrics["calibrated"]["weights_ci"],
        "metrics": {
            "n_test": metrics["n_test"], "churn_rate_test": metrics["churn_rate_test"],
            "expert_test_auc": metrics["expert"]["test"]["auc"], "calibrated_test_auc": metrics["calibrated"]["test"]["auc"],
            "expert_test_ks": metrics["expert"]["test"]["ks"], "calibrated_test_ks": metrics["calibrated"]["test"]["ks"],
            "calibrated_test_brier": metrics["calibrated"]["test"]["brier"],
            "calibrated_test_log_loss": metrics["calibrated"]["test"]["log_loss"],
            "tiers_monotone": metrics["tiers"]["monotone"],
        },
    }
    raw["provenance"] = _plain(prov)
    metrics = _plain(metrics)
    return CalibrationResult(metrics, raw, Scheme.model_validate(raw), scheme, model, train, test, deciles, lift,
                             tiers_cal, tiers_exp, warn)


# ================================================================================================
# from files
# ================================================================================================




def data_fingerprint(config_path: str | Path) -> dict:
    """sha256 over the data config and every file it names (SQL sources: their URL template and query,
    never credentials). Same bytes → same fingerprint."""
    from .io import read_data_config

    path = Path(config_path)
    config = read_data_config(path)
    h = hashlib.sha256()
    conf_hash = sha256_file(path)
    h.update(b"config\0" + conf_hash.encode())
    files = {}
    for name in sorted(config.tables):
        src = config.tables[name]
        if src.path is not None:
            f = (path.parent / src.path).resolve()
            digest = sha256_file(f)
            files[name] = {"path": src.path, "sha256": digest}
        else:
            digest = hashlib.sha256((src.sql.url + "\0" + src.sql.query).encode()).hexdigest()
            files[name] = {"sql": True, "sha256": digest}
        h.update(f"{name}\0{digest}".encode())
    return {"sha256": h.hexdigest(), "config": str(path), "config_sha256": conf_hash, "tables": files}


def run_calibration(data, scheme, train_as_of: list, test_as_of, horizon_days: int | None, out_dir,
                    params_path=None, *, params: CalibrationParams | None = None,
                    loaded=None) -> CalibrationResult:
    """Calibrate ``scheme`` (a path or an id under params/schemes/) on the data config ``data`` and write
    ``out_dir/metrics.json`` and ``out_dir/<scheme id>.calibrated.yaml``.

    ``horizon_days`` None takes the params file's. Every input is checked before anything is written
    (``SegmentError`` otherwise); the analysts' scheme is never overwritten. ``loaded``: the data config's
    tables already loaded and validated by the caller (``segment report``), so they are not read twice."""
    from .pipeline import data_end as _data_end
    from .schemes import load_scheme, resolve
    from .validate import load_data

    from .paths import params_file

    from_file = params is None
    params_path = params_path if params_path is not None else params_file("calibration.yaml")
    params = params or load_calibration_params(params_path)
    scheme_path = resolve(scheme)
    scheme_obj = load_scheme(scheme)
    _scheme_structure(scheme_obj)  # a scheme calibration cannot handle fails before the data is read
    raw = read_yaml(scheme_path)
    out_dir = Path(out_dir)
    target = out_dir / f"{scheme_obj.id}.calibrated.yaml"
    metrics_path = out_dir / "metrics.json"
    if target.resolve() == scheme_path.resolve() or metrics_path.resolve() == scheme_path.resolve():
        raise SegmentError(f"--out {out_dir} would overwrite the scheme {scheme_path}; the analysts' scheme is "
                           "never replaced — write the calibration to another folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise SegmentError(f"--out {out_dir} is a file; give a folder")
    h = params.horizon_days if horizon_days is None else horizon_days
    if isinstance(train_as_of, str):
        train_as_of = [d for d in train_as_of.split(",") if d.strip()]
    # cheap checks first (data end comes with the data)
    check_dates(train_as_of, test_as_of, h, pd.Timestamp.max.normalize())
    loaded = loaded if loaded is not None else load_data(data)
    end = _data_end(loaded)
    fp = data_fingerprint(data)
    prov = {"input_scheme": scheme_obj.id, "input_scheme_path": str(scheme_path),
            "input_scheme_sha256": sha256_file(scheme_path),
            "data": {"config": str(data), "fingerprint": "sha256:" + fp["sha256"], "data_end": str(end.date()),
                     "tables": fp["tables"]},
            "params": str(params_path) if from_file else "given in code"}
    try:
        result = calibrate(loaded.tables, scheme_obj, train_as_of, test_as_of, h, params, end, scheme_raw=raw,
                           provenance=prov)
    except SegmentError as e:  # name the inputs: "the training panel has 0 churned" alone does not say of what
        msg = str(e)
        raise SegmentError(f"{data} with {scheme_path.name}: {msg}") from None
    result.metrics["data"] = _plain(prov["data"])
    result.metrics["scheme"]["path"] = str(scheme_path)
    header = (f"# {scheme_obj.id} calibrated against churn by `segment calibrate` — a proposal, not the analysts' scheme.\n"
              f"# Trained on {', '.join(result.metrics['train_as_of'])}, tested on {result.metrics['test_as_of']}, "
              f"horizon {h} days. See metrics.json beside this file and docs/calibration.md.\n")
    scheme_text = scheme_yaml(result.scheme, header)
    metrics_text = json.dumps(result.metrics, indent=2, ensure_ascii=False, default=str) + "\n"
    with signals_deferred():  # the proposed scheme and its metrics are replaced together or not at all
        write_text(target, scheme_text)
        write_text(metrics_path, metrics_text)
    result.paths = {"scheme": target, "metrics": metrics_path}
    return result
