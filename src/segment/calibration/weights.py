"""Weights from the fit: effective weights split into dimension weights and weights within each dimension, bootstrap intervals.

Public: WeightCalibrator, split_weights.
Reads: nothing. Writes: nothing.
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from scipy.special import expit

from segment.calibration.fit import (
    LogitProblem,
    prior_penalty,
    row_patterns,
    standardise,
)
from segment.errors import SegmentError
from segment.grading.scheme import Scheme
from segment.plumbing.progress import progress


def scheme_structure(scheme: Scheme) -> tuple[list[str], dict[str, str], dict[str, float]]:
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


def round_simplex(values: dict[str, float], decimals: int) -> dict[str, float]:
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
        """Fit the weights on the training panel's points (``X``), churn (``y``) and customers (``groups``).

        Long because the fit, its fallback, the no-variation check and the bootstrap share the panel's
        arrays; each step is a paragraph."""
        import statsmodels.api as sm

        inds, home, expert = scheme_structure(self.scheme)
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
        m, sd = standardise(Xv)
        pats, inv = row_patterns(Xv)
        self._inv, self._gcodes, self._y = inv, gcodes, y
        n = np.bincount(inv, minlength=len(pats)).astype("float64")
        y1 = np.bincount(inv, weights=y, minlength=len(pats))
        prob = LogitProblem((pats - m) / sd, n, y1, constrained=True)
        e0 = np.array([expert[i] for i in cols])
        if self.prior_strength > 0:
            prob.penalty, prob.Q = prior_penalty(self.prior_strength, y, np.ones(len(y)), e0 * sd)
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
            prob = LogitProblem(self._prob.Z, np.bincount(self._inv, weights=w, minlength=npat),
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
        inds, home, expert = scheme_structure(self.scheme)
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
