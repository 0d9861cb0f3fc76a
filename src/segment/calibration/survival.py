"""Churn timing by tier: time to churn from an as-of date, Kaplan–Meier curves per tier and a Cox model on the scheme's indicator points.

Public: churn_times, survival_by_tier, cox_on_points, concordance.
Reads: the transactions (purchase days after the as-of date) and the customers' status (SQL where the
tables are, ``tables.sql``). Writes: nothing.

**Time to churn.** For a customer at risk at the as-of date ``D``, with churn = "no purchase for ``H``
days" (the calibration's horizon, ``segment.calibration.churn``), the *time to churn* ``T`` is the
number of days from ``D`` to the last purchase day before the first gap of more than ``H`` days
without a purchase, counting ``D`` itself as a purchase day. With the purchase days after ``D``
``p_1 < p_2 < …`` and ``p_0 = D``, ``T = p_k − D`` for the first ``k`` whose next purchase day
``p_{k+1}`` is more than ``H`` days later (or never comes). A purchase exactly ``H`` days after the
previous one is no gap. So ``T = 0`` exactly when there is no purchase in the ``H`` days after ``D``
— the customers the horizon label (``no_purchase``) calls churned — hence ``S(0) = 1 −`` the label's
churn rate.

* Purchases are transaction lines with ``amount > 0`` (a return is none); days are calendar days
  (the DATE of the timestamp); only lines dated up to the data end count.
* **Censoring**: a gap starting on day ``p`` is seen complete only when ``p + H ≤ data_end``. A
  customer whose first gap is not complete by then is *censored* at ``c = (data_end − H) − D`` days,
  the same follow-up for every customer of the as-of date (``T ≤ c`` always).
* **Lost status** (``lost_status=True`` and the customers table has ``status`` and
  ``status_date``): a lost/closed status dated after ``D`` (day ``s``) and before the purchase-based
  event ends the customer's time at ``s − D`` days (an event); a status dated after the follow-up
  ``c`` is not counted (every customer is followed for ``c`` days).
* An as-of date with ``D + H > data_end`` has no follow-up at all: refused.

**Kaplan–Meier per tier** (:func:`survival_by_tier`): statsmodels' ``SurvfuncRight``. The curve's
points are its event times (``surv_times``) with the survival just after each (``surv_prob``;
``S = 1`` before the first); the 95% interval is pointwise, on the log(−log S) scale from
statsmodels' Greenwood standard error ``surv_prob_se``: ``S^exp(±1.96 · se / (S |log S|))`` (not the
Hall–Wellner simultaneous band). The median is ``SurvfuncRight.quantile(0.5)``: the first event time
with ``S < 0.5`` (strictly: SAS's and statsmodels' convention), None when the curve never falls
below 0.5 within the follow-up. ``s_90, s_180, s_365`` are ``S`` at 90, 180 and 365 days, NaN past the
tier's follow-up (its largest observed time, unless the curve already reached 0).

**Cox model** (:func:`cox_on_points`): statsmodels' ``PHReg`` (Breslow ties) of the time to churn on
the scheme's indicator points, constant columns dropped (and reported). Points rise for better
customers, so a useful indicator lowers the hazard (β < 0): the *implied weights*
``w_i = max(−β_i, 0) / Σ_j max(−β_j, 0)`` are a horizon-free check of the scheme's weights. Above
200,000 rows the model is fitted on a seeded random sample of 200,000 (``"sample"`` in the result).
The concordance is Harrell's C of the linear predictor on every row, computed in O(n log² n)
(:func:`concordance`).
"""
from __future__ import annotations

import warnings

from collections.abc import Iterable

import numpy as np
import pandas as pd

from segment.calibration.churn import as_day
from segment.data.tables import TableSet
from segment.errors import SegmentError

#: survival reported at these days (columns s_90, s_180, s_365)
SURVIVAL_AT = (90, 180, 365)
#: the Cox model is fitted on a seeded sample above this many rows
COX_MAX_ROWS = 200_000
Z95 = 1.959963984540054


def _date(t: pd.Timestamp) -> str:
    return f"DATE '{t.strftime('%Y-%m-%d')}'"


def _ts(t: pd.Timestamp) -> str:
    return f"TIMESTAMP '{t.strftime('%Y-%m-%d %H:%M:%S')}'"


def churn_times(tables: TableSet, customers: Iterable[str] | None, as_of, horizon_days: int, data_end, *,
                lost_status: bool = True) -> pd.DataFrame:
    """Time to churn at ``as_of`` (see the module docstring) for ``customers`` (None: every customer
    with a transaction): columns ``customer_id`` (string), ``time`` (days, float ≥ 0) and ``event``
    (bool; False = censored at ``(data_end − horizon) − as_of``). One SQL query finds the purchase
    gaps where the tables are (one row per customer returns); one more reads the lost statuses."""
    day = as_day(as_of, "as-of")
    end = as_day(data_end, "data end")
    h = int(horizon_days)
    if h < 1:
        raise SegmentError(f"the horizon must be at least 1 day (got {horizon_days})")
    last = end - pd.Timedelta(days=h)  # the last day a gap of H days can start and be seen complete
    if day > last:
        raise SegmentError(f"as-of {day.date()} + {h} days runs past the data end {end.date()}: no customer's "
                           "time to churn can be seen; choose an earlier as-of date or a shorter horizon")
    c = float((last - day).days)
    if customers is None:
        ids = pd.Index(tables.sql("SELECT DISTINCT customer_id FROM tx WHERE customer_id IS NOT NULL")["customer_id"],
                       dtype="string").sort_values()
    else:
        ids = pd.Index([str(x) for x in customers], dtype="string").drop_duplicates()
    if len(ids) == 0:
        return pd.DataFrame({"customer_id": pd.array([], dtype="string"), "time": np.array([], dtype="float64"),
                             "event": np.array([], dtype=bool)})
    d = tables.d
    gap = d.days_between("day", "next_day")
    query = (
        "WITH days AS ("
        f"SELECT customer_id, CAST(date AS DATE) AS day FROM tx WHERE amount > 0 "
        f"AND date >= {_ts(day + pd.Timedelta(days=1))} AND date < {_ts(end + pd.Timedelta(days=1))} "
        "AND customer_id IN (SELECT customer_id FROM wanted) "
        f"UNION SELECT customer_id, {_date(day)} AS day FROM wanted), "
        "gaps AS (SELECT customer_id, day, LEAD(day) OVER (PARTITION BY customer_id ORDER BY day) AS next_day FROM days) "
        f"SELECT customer_id, min(CASE WHEN day <= {_date(last)} AND (next_day IS NULL OR {gap} > {h}) "
        f"THEN {d.days_between(_date(day), 'day')} END) AS t_event FROM gaps GROUP BY customer_id")
    got = tables.sql(query, wanted=ids)
    got["customer_id"] = got["customer_id"].astype("string")
    t_event = got.set_index("customer_id")["t_event"].astype("float64").reindex(ids).to_numpy(dtype="float64")
    event = ~np.isnan(t_event)
    time = np.where(event, t_event, c)
    if lost_status and "customers" in tables.present() and {"status", "status_date"} <= set(tables.columns("customers")):
        lost = tables.sql(
            f"SELECT customer_id, min({d.days_between(_date(day), 'CAST(status_date AS DATE)')}) AS t_lost FROM cu "
            f"WHERE lower(status) IN ('lost', 'closed') AND status_date >= {_ts(day + pd.Timedelta(days=1))} "
            "AND customer_id IN (SELECT customer_id FROM wanted) GROUP BY customer_id", wanted=ids)
        lost["customer_id"] = lost["customer_id"].astype("string")
        t_lost = lost.set_index("customer_id")["t_lost"].astype("float64").reindex(ids).to_numpy(dtype="float64")
        ends = (t_lost <= c) & (~event | (t_lost < time))  # NaN compares False
        time = np.where(ends, t_lost, time)
        event = event | ends
    return pd.DataFrame({"customer_id": pd.array(ids, dtype="string"), "time": time.astype("float64"),
                         "event": event.astype(bool)})


def _times(times: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if not {"time", "event"} <= set(times.columns):
        raise SegmentError("times must have the columns `time` and `event` (see churn_times)")
    t = pd.to_numeric(times["time"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    e = times["event"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    if np.any(np.isnan(t)) or np.any(t < 0):
        raise SegmentError("times: every time to churn must be a number of days ≥ 0")
    return t, e


def _tier_of_rows(times: pd.DataFrame, tiers) -> np.ndarray:
    """One tier id per row of ``times``: ``tiers`` row by row, or looked up by ``customer_id`` when
    ``tiers`` is a Series indexed by customer id."""
    s = pd.Series(tiers)
    if "customer_id" in times and not isinstance(s.index, pd.RangeIndex) and \
            pd.Index(times["customer_id"].astype(str)).isin(s.index.astype(str)).all():
        s = pd.Series(s.to_numpy(), index=s.index.astype(str)).reindex(times["customer_id"].astype(str))
    elif len(s) != len(times):
        raise SegmentError(f"{len(s)} tiers for {len(times)} times: give one tier per row (or a Series by customer_id)")
    return s.astype("string").fillna("").to_numpy(dtype=object)


def _km(t: np.ndarray, e: np.ndarray) -> pd.DataFrame:
    """Kaplan–Meier step points of statsmodels' SurvfuncRight with the pointwise log-log interval."""
    from statsmodels.duration.survfunc import SurvfuncRight

    sf = SurvfuncRight(t, e.astype("float64"))
    s = np.asarray(sf.surv_prob, dtype="float64")
    se = np.asarray(sf.surv_prob_se, dtype="float64")
    lo, hi = s.copy(), s.copy()
    ok = (s > 0) & (s < 1) & np.isfinite(se) & (se > 0)
    v = se[ok] / (s[ok] * np.abs(np.log(s[ok])))
    lo[ok] = s[ok] ** np.exp(Z95 * v)
    hi[ok] = s[ok] ** np.exp(-Z95 * v)
    curve = pd.DataFrame({"time": np.asarray(sf.surv_times, dtype="float64"), "survival": s, "ci_low": lo, "ci_high": hi})
    med = sf.quantile(0.5) if len(s) else np.nan
    curve.attrs["median"] = None if med is None or not np.isfinite(med) else float(med)
    return curve


def _at(curve: pd.DataFrame, follow_up: float, day: float) -> float:
    """S(day) from the step points; NaN past the follow-up unless the curve already reached 0."""
    s = curve["survival"].to_numpy()
    if day > follow_up and not (len(s) and s[-1] == 0):
        return float("nan")
    i = np.searchsorted(curve["time"].to_numpy(), day, side="right")
    return 1.0 if i == 0 else float(s[i - 1])


def survival_by_tier(times: pd.DataFrame, tiers, tier_ids: list[str], labels: dict | None = None,
                     at: Iterable[int] = SURVIVAL_AT) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Kaplan–Meier per tier (module docstring). ``tiers``: one tier id per row of ``times`` (or a
    Series indexed by customer_id). Returns ``by_tier`` (tier, label, n, events, median_days,
    follow_up_days, s_<day> for each day of ``at``; best tier first) and the curves by tier (time,
    survival, ci_low, ci_high; empty for a tier without rows)."""
    t, e = _times(times)
    tier = _tier_of_rows(times, tiers)
    at = [int(a) for a in at]
    rows, curves = [], {}
    for tid in tier_ids:
        m = tier == tid
        row = {"tier": tid, "label": (labels or {}).get(tid, tid), "n": int(m.sum()), "events": int(e[m].sum()),
               "median_days": None, "follow_up_days": float(t[m].max()) if m.any() else float("nan")}
        if m.any():
            curve = _km(t[m], e[m])
            row["median_days"] = curve.attrs["median"]
            for a in at:
                row[f"s_{a}"] = _at(curve, row["follow_up_days"], a)
        else:
            curve = pd.DataFrame({"time": [], "survival": [], "ci_low": [], "ci_high": []}, dtype="float64")
            for a in at:
                row[f"s_{a}"] = float("nan")
        curves[tid] = curve
        rows.append(row)
    by_tier = pd.DataFrame(rows, columns=["tier", "label", "n", "events", "median_days", "follow_up_days"]
                           + [f"s_{a}" for a in at])
    by_tier["median_days"] = by_tier["median_days"].astype(object).where(by_tier["median_days"].notna(), None)
    return by_tier, curves


def _pairs_after(rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position i: how many later positions j hold a smaller rank, and how many an equal
    one. Merge levels: at the level where i and j fall in one block but different halves, the right
    half's keys (block, rank) are sorted once and the left half's looked up: O(n log² n)."""
    n = len(rank)
    less = np.zeros(n, dtype=np.int64)
    same = np.zeros(n, dtype=np.int64)
    width = np.int64(rank.max() + 1) if n else np.int64(1)
    pos = np.arange(n, dtype=np.int64)
    h = 1
    while h < n:
        block = pos // (2 * h)
        right = (pos // h) % 2 == 1
        keys = np.sort(block[right] * width + rank[right])
        left = ~right
        base = block[left] * width
        k = base + rank[left]
        a = np.searchsorted(keys, k, side="left")
        less[left] += a - np.searchsorted(keys, base, side="left")
        same[left] += np.searchsorted(keys, k, side="right") - a
        h *= 2
    return less, same


def concordance(time, event, risk) -> float:
    """Harrell's C of ``risk`` (higher = churns sooner; for the Cox model the linear predictor, i.e.
    the C of −lp as a prediction of the time): over the comparable pairs — ``i`` an event and ``j``
    with a later time, or censored at the same time — the share where ``risk_i > risk_j``, ties in
    risk counting one half; pairs of events at the same time are not comparable (R's survival,
    lifelines). NaN without a comparable pair. O(n log² n): rows ordered by (time, events first,
    risk descending), so within a group of events at one time every pair is counted, and taken out."""
    t = np.asarray(time, dtype="float64")
    e = np.asarray(event, dtype=bool)
    r = np.asarray(risk, dtype="float64")
    if len(t) == 0:
        return float("nan")
    rank = np.unique(r, return_inverse=True)[1].astype(np.int64).ravel()
    order = np.lexsort((-rank, ~e, t))
    t, e, rank = t[order], e[order], rank[order]
    less, same = _pairs_after(rank)
    # j after i in the order: a later time, or the same time and censored (after the events there),
    # or an event of the same time later in the group (not comparable: taken out below)
    later = len(t) - np.searchsorted(t, t, side="right")
    n_cens_same = np.searchsorted(t, t, side="right") - np.searchsorted(t, t, side="left") - _events_at_same_time(t, e)
    comparable = float(np.sum((later + n_cens_same)[e]))
    if comparable == 0:
        return float("nan")
    # pairs of events at one time were counted in less/same: take them out (within such a group the
    # order is by risk descending, so every pair of different risk counted once as "less")
    ev_pairs, ev_ties = _event_group_pairs(t[e], rank[e])
    conc = float(less[e].sum()) - ev_pairs
    ties = float(same[e].sum()) - ev_ties
    return (conc + 0.5 * ties) / comparable


def _events_at_same_time(t: np.ndarray, e: np.ndarray) -> np.ndarray:
    """For each row (sorted by time): the number of events at its time."""
    _, inv, cnt = np.unique(t, return_inverse=True, return_counts=True)
    ev = np.bincount(inv.ravel(), weights=e.astype("float64"), minlength=len(cnt))
    return ev[inv.ravel()].astype(np.int64)


def _event_group_pairs(t: np.ndarray, rank: np.ndarray) -> tuple[float, float]:
    """Among events sharing a time: pairs with different risk, pairs with equal risk."""
    if len(t) == 0:
        return 0.0, 0.0
    _, g, n_g = np.unique(t, return_inverse=True, return_counts=True)
    key = g.ravel().astype(np.int64) * np.int64(rank.max() + 1) + rank
    _, m = np.unique(key, return_counts=True)
    ties = float(np.sum(m * (m - 1) / 2))
    return float(np.sum(n_g * (n_g - 1) / 2)) - ties, ties


def cox_on_points(times: pd.DataFrame, points: pd.DataFrame, *, max_rows: int = COX_MAX_ROWS, seed: int = 0) -> dict:
    """The Cox model of the time to churn on the indicator points (module docstring). ``points``:
    one column per indicator, row by row with ``times``. Returns indicators (kept), dropped
    (constant columns), coef, se, p, hazard_ratio_per_10_points (exp(10 β)), implied_weights (None
    each when no β is negative), n and events (of the rows fitted), rows (all rows), sample (the
    sample size, only when sampled) and concordance (Harrell's C on every row)."""
    from statsmodels.duration.hazard_regression import PHReg

    t, e = _times(times)
    if len(points) != len(t):
        raise SegmentError(f"{len(points)} rows of points for {len(t)} times: give one row per time")
    X = points.apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    if np.isnan(X).any():
        raise SegmentError("the indicator points have missing values: a Cox model needs every point")
    names = [str(c) for c in points.columns]
    const = [j for j in range(X.shape[1]) if len(X) == 0 or np.ptp(X[:, j]) == 0]
    keep = [j for j in range(X.shape[1]) if j not in const]
    if not keep:
        raise SegmentError("every indicator's points are the same for all customers: nothing for a Cox model to fit")
    if not e.any():
        raise SegmentError("no customer churned within the follow-up: a Cox model needs events")
    Xk = X[:, keep]
    out: dict = {"indicators": [names[j] for j in keep], "dropped": [names[j] for j in const], "rows": len(t)}
    fit_rows = np.arange(len(t))
    if len(t) > max_rows:
        fit_rows = np.sort(np.random.default_rng(seed).choice(len(t), max_rows, replace=False))
        out["sample"] = int(max_rows)
    with warnings.catch_warnings(record=True) as caught:   # non-convergence is said in the result, not printed
        warnings.simplefilter("always")
        res = PHReg(t[fit_rows], Xk[fit_rows], status=e[fit_rows].astype("float64"), ties="breslow").fit()
    out["converged"] = bool(getattr(res, "mle_retvals", {}).get("converged", True)) and not any(
        "converge" in str(w.message).lower() for w in caught)
    beta = np.asarray(res.params, dtype="float64")
    se = np.asarray(res.bse, dtype="float64")
    pv = np.asarray(res.pvalues, dtype="float64")
    ind = out["indicators"]
    good = np.maximum(-beta, 0.0)
    total = float(good.sum())
    out.update({
        "coef": dict(zip(ind, beta.tolist())), "se": dict(zip(ind, se.tolist())), "p": dict(zip(ind, pv.tolist())),
        "hazard_ratio_per_10_points": dict(zip(ind, np.exp(10 * beta).tolist())),
        "implied_weights": dict(zip(ind, (good / total).tolist() if total > 0 else [None] * len(ind))),
        "n": len(fit_rows), "events": int(e[fit_rows].sum()),
        "concordance": concordance(t, e, Xk @ beta),
    })
    return out
