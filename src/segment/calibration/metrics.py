"""How well a score predicts churn: AUC, Gini, KS, Brier, log loss, Wilson intervals, deciles, lift, churn per tier and its order.

Public: auc, gini, ks, brier, log_loss, wilson, decile_table, lift_table, tier_table, monotone,
monotone_violations, churn_order_verdict, discrimination.
Reads: nothing. Writes: nothing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata


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
    groups = np.array_split(np.argsort(p, kind="stable"), bins)[::-1]   # decile_table's tenths, riskiest first
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
