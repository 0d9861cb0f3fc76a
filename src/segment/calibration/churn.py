"""Churn labels and the calibration panel: graded snapshots at past as-of dates × what happened next.

Public: ChurnDefinition, as_day, churn_labels, at_risk, adjustment_multiplier, linear_score, Panel,
build_panel.
Reads: the tables (transactions, customers' status) after each as-of date. Writes: nothing.

A **label** says, for one customer at one as-of date ``D`` and a horizon of ``H`` days, whether the
customer churned in the *horizon* — the days ``D+1 … D+H`` (dates ``[D + 1 day, D + 1 day + H)``).
A customer churned when any enabled criterion holds (:class:`ChurnDefinition`):

* ``no_purchase`` — no purchase (a line with ``amount > 0``) in the horizon;
* ``revenue_drop = X`` — net amount in the horizon ≤ (1 − X) × net amount in the ``H`` days up to
  and including ``D`` (only for customers with a positive amount before; SEEDS churn risk: X = 0.30);
* ``lost_status`` — the CRM marks the customer lost/closed with a ``status_date`` in the horizon.

**Who is labelled** (the population *at risk*): customers graded at ``D`` (the CRM does not mark
them lost on or before ``D``) who bought at least once, whose last purchase is at most
``active_within_days`` before ``D``, and whose tenure is at least ``min_tenure_days``. Prospects that
never bought cannot stop buying, and customers long gone would be "churned" by definition.

**Censoring**: when the horizon runs past the end of the data (``D + H > data_end``) nobody's outcome
is known; those rows are *censored*: kept in the panel with ``censored = True`` and ``churn`` missing,
never counted as retained, left out of every fit and metric.

**Point in time**: the features of a row come from ``segment.features.snapshot.snapshot(tables, D)`` — nothing
dated after ``D``; the label reads only the window ``(D − H, D + H]`` of the transactions and the
customers' status. A transaction after ``D + H`` can change no row of as-of ``D``.

The **panel** (:func:`build_panel`) stacks, for several as-of dates, every graded customer with the
scheme's indicator points (``pts__*``), dimension scores (``dim__*``), score and tier, and its label.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from segment.data.tables import Tables
from segment.errors import SegmentError
from segment.features.snapshot import SUM_DECIMALS, snapshot
from segment.grading.conditions import parse
from segment.grading.published import history_columns, reads_history
from segment.grading.engine import DIM, PTS, grade
from segment.grading.scheme import Scheme
from segment.plumbing.progress import progress
from segment.plumbing.result import Result

DAYS_PER_YEAR = 365.25  # as segment.features.snapshot (tenure_years = days / 365.25)

#: reasons a graded customer is not labelled (column ``excluded``)
EXCLUDED = ("never_bought", "inactive", "too_young")


class ChurnDefinition(BaseModel):
    """What counts as churn, and who is at risk. Plain values; read from ``params/calibration.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    no_purchase: bool = Field(True, description="churned: no purchase (amount > 0) within the horizon")
    revenue_drop: float | None = Field(None, gt=0, le=1, description="churned: net amount in the horizon ≤ "
                                       "(1 − X) × the same-length window before as-of; 0.3 = SEEDS churn risk")
    lost_status: bool = Field(True, description="churned: CRM status lost/closed dated within the horizon")
    min_tenure_days: int = Field(90, ge=0, description="customers younger than this at as-of are left out")
    active_within_days: int | None = Field(365, ge=1, description="only customers who bought within this many "
                                           "days before as-of are at risk; null = anyone who ever bought")

    @model_validator(mode="after")
    def _some_criterion(self) -> "ChurnDefinition":
        if not (self.no_purchase or self.lost_status or self.revenue_drop is not None):
            raise ValueError("churn: every criterion is off; enable no_purchase, lost_status or revenue_drop")
        return self

    def describe(self) -> str:
        parts = []
        if self.no_purchase:
            parts.append("no purchase in the horizon")
        if self.revenue_drop is not None:
            parts.append(f"net amount in the horizon down ≥ {self.revenue_drop:.0%} on the window before")
        if self.lost_status:
            parts.append("CRM status lost/closed dated in the horizon")
        pop = [f"bought within {self.active_within_days} days before as-of" if self.active_within_days
               else "bought at least once", f"tenure ≥ {self.min_tenure_days} days", "not CRM-lost at as-of"]
        return "churned = " + " or ".join(parts) + "; at risk = " + ", ".join(pop)


def as_day(value, what: str = "date") -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise SegmentError(f"{what} {value!r} is not a date; write it as YYYY-MM-DD") from None
    if ts is pd.NaT:
        raise SegmentError(f"{what} is missing")
    if ts.tz is not None:
        ts = ts.tz_localize(None)
    return ts.normalize().as_unit("ns")


def _windows(tables: Tables, customers, lo, cut, hi):
    """The customers, their net amounts in [lo, cut) and [cut, hi), who bought in [cut, hi), and who
    the CRM marks lost/closed within [cut, hi) (None without those columns): SQL where the tables are
    (DuckDB or Spark, ``tables.sql``); only per-customer sums return."""

    def ts(t) -> str:
        return f"TIMESTAMP '{pd.Timestamp(t).strftime('%Y-%m-%d %H:%M:%S')}'"

    if customers is None:
        ids = pd.Index(tables.sql("SELECT DISTINCT customer_id FROM tx WHERE customer_id IS NOT NULL")["customer_id"],
                       dtype="string").sort_values()
    else:
        ids = pd.Index([str(c) for c in customers], dtype="string").drop_duplicates()
    fsum = tables.d.sum_fn
    sums = tables.sql(
        f"SELECT customer_id, round({fsum}(amount) FILTER (WHERE date < {ts(cut)}), {SUM_DECIMALS}) AS before, "
        f"round({fsum}(amount) FILTER (WHERE date >= {ts(cut)}), {SUM_DECIMALS}) AS after, "
        f"bool_or(date >= {ts(cut)} AND amount > 0) AS bought FROM tx "
        f"WHERE date >= {ts(lo)} AND date < {ts(hi)} AND customer_id IN (SELECT customer_id FROM wanted) "
        "GROUP BY customer_id", wanted=ids)
    lost_ids = None
    if "customers" in tables.present() and {"status", "status_date"} <= set(tables.columns("customers")):
        lost_ids = pd.Index(tables.sql(
            f"SELECT DISTINCT customer_id FROM cu WHERE lower(status) IN ('lost', 'closed') AND status_date >= "
            f"{ts(cut)} AND status_date < {ts(hi)} AND customer_id IS NOT NULL")["customer_id"], dtype="string")
    sums["customer_id"] = sums["customer_id"].astype("string")
    sums = sums.set_index("customer_id")
    before = sums["before"].astype("float64").fillna(0.0).reindex(ids, fill_value=0.0).to_numpy(dtype="float64")
    aft = sums["after"].astype("float64").fillna(0.0).reindex(ids, fill_value=0.0).to_numpy(dtype="float64")
    bought = pd.Index(sums.index[sums["bought"].fillna(False).astype(bool).to_numpy()])
    return ids, before, aft, bought, lost_ids


def churn_labels(tables: Tables, as_of, horizon_days: int, definition: ChurnDefinition, data_end,
                 customers: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per customer (``customers``, or every customer with a transaction): the label at ``as_of``.

    Columns: ``customer_id``, ``as_of``, ``censored``, ``no_purchase``, ``revenue_drop``,
    ``lost_status`` (each criterion as measured, whether enabled or not; missing when censored),
    ``amount_before``, ``amount_after`` (net amounts in the H days up to as-of and in the horizon) and
    ``churn`` (1.0 / 0.0 from the enabled criteria; NaN when censored). Who is *at risk* is decided
    by :func:`at_risk`, not here."""
    day = as_day(as_of, "as-of")
    end = as_day(data_end, "data end")
    h = int(horizon_days)
    if h < 1:
        raise SegmentError(f"the horizon must be at least 1 day (got {horizon_days})")
    cut = day + pd.Timedelta(days=1)
    lo, hi = cut - pd.Timedelta(days=h), cut + pd.Timedelta(days=h)
    ids, before, aft, bought, lost_ids = _windows(tables, customers, lo, cut, hi)
    n = len(ids)
    censored = day + pd.Timedelta(days=h) > end
    no_purchase = ~ids.isin(bought)
    drop = definition.revenue_drop if definition.revenue_drop is not None else 0.30
    revenue_drop = (before > 0) & (aft <= (1.0 - drop) * before + 1e-9)
    lost = ids.isin(lost_ids) if lost_ids is not None else np.zeros(n, dtype=bool)

    churn = np.zeros(n, dtype=bool)
    if definition.no_purchase:
        churn |= no_purchase
    if definition.revenue_drop is not None:
        churn |= revenue_drop
    if definition.lost_status:
        churn |= lost
    out = pd.DataFrame({
        "customer_id": pd.array(ids, dtype="string"),
        "as_of": np.full(n, day.to_datetime64(), dtype="datetime64[ns]"),
        "censored": np.full(n, censored, dtype=bool),
        "no_purchase": pd.array(no_purchase, dtype="boolean"),
        "revenue_drop": pd.array(revenue_drop, dtype="boolean"),
        "lost_status": pd.array(lost, dtype="boolean"),
        "amount_before": before,
        "amount_after": aft,
        "churn": churn.astype("float64"),
    })
    if censored:
        for c in ("no_purchase", "revenue_drop", "lost_status"):
            out[c] = pd.array([pd.NA] * n, dtype="boolean")
        out["amount_after"] = np.nan
        out["churn"] = np.nan
    return out


def at_risk(snapshot: pd.DataFrame, definition: ChurnDefinition) -> pd.Series:
    """Why each snapshot row is *not* at risk (``""`` when it is): never_bought, inactive, too_young.

    The snapshot is taken at the as-of date; CRM-lost customers are expected to be removed already
    (they are not graded)."""
    rec = pd.to_numeric(snapshot["recency_days"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    ten = pd.to_numeric(snapshot["tenure_years"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    reason = np.full(len(snapshot), "", dtype=object)
    too_young = ~(ten * DAYS_PER_YEAR >= definition.min_tenure_days - 1e-9)  # NaN tenure: too young
    reason[too_young] = "too_young"
    if definition.active_within_days is not None:
        reason[rec > definition.active_within_days] = "inactive"
    reason[np.isnan(rec)] = "never_bought"
    return pd.Series(reason, index=snapshot.index, dtype="string")

#: graded columns a panel keeps (besides pts__*, dim__* and the scheme's indicator values)
_KEEP = ("customer_id", "group", "score", "raw_tier", "tier", "tier_rank")


def adjustment_multiplier(scheme: Scheme, frame: pd.DataFrame) -> np.ndarray:
    """The product of the scheme's score adjustments (``adjustments:``) that hold on each row of
    ``frame`` (a snapshot with the scheme's axes as columns); 1 without adjustments."""

    mult = np.ones(len(frame))
    for a in scheme.adjustments:
        hit = parse(a.when).evaluate(frame)
        mult = np.where(hit, mult * a.multiply, mult)
    return mult


def linear_score(points: np.ndarray, weights: np.ndarray, scheme: Scheme, multiplier: np.ndarray | None = None) -> np.ndarray:
    """The scheme's score for effective indicator weights: score_factor × points·weights × adjustments,
    rounded as ``segment.grading.engine`` rounds it."""
    s = (points @ weights) * scheme.score_factor
    if multiplier is not None:
        s = s * multiplier
    return np.round(s, 9)


@dataclass
class Panel(Result):
    """Graded snapshots at several as-of dates with their churn labels.

    ``rows`` has one row per graded customer and as-of date: ``customer_id``, ``as_of``, the
    scheme's indicator values, ``pts__<indicator>``, ``dim__<dimension>``, ``score``, ``raw_tier``,
    ``tier``, ``tier_rank``, ``adj_mult`` (score adjustments), ``excluded`` (why not at risk, "" if at
    risk), the label columns of :func:`churn_labels` (missing for rows not at risk) and ``labelled``
    (at risk and not censored). ``counts`` has one row per as-of date (``table()``)."""

    rows: pd.DataFrame
    counts: pd.DataFrame
    scheme: Scheme
    horizon_days: int
    definition: ChurnDefinition
    data_end: pd.Timestamp
    as_of: list[pd.Timestamp] = field(default_factory=list)

    @property
    def indicators(self) -> list[str]:
        return list(self.scheme.weights())

    def labelled(self) -> pd.DataFrame:
        """The rows a fit or a metric may use: at risk, not censored."""
        return self.rows[self.rows["labelled"].to_numpy(dtype=bool)].reset_index(drop=True)

    def points(self, rows: pd.DataFrame | None = None) -> np.ndarray:
        rows = self.labelled() if rows is None else rows
        return rows[[PTS + i for i in self.indicators]].to_numpy(dtype="float64")

    def table(self) -> pd.DataFrame:
        return self.counts

    def summary(self) -> str:
        c = self.counts
        return (f"panel of {len(self.rows):,} graded rows at {len(c)} as-of date(s), horizon {self.horizon_days} days: "
                f"{int(c['labelled'].sum()):,} labelled, {int(c['churned'].sum()):,} churned")

    def _repr_html_(self) -> str:
        return (f"<p><b>Churn panel</b>: {self.scheme.id}, horizon {self.horizon_days} days, data end "
                f"{self.data_end.date()}<br>{self.definition.describe()}</p>" + self.counts.to_html(index=False))


def build_panel(tables: Tables, scheme: Scheme, as_of_dates: Iterable, horizon_days: int,
                definition: ChurnDefinition, data_end, snapshots: dict | None = None) -> Panel:
    """Grade the customers at each as-of date with ``scheme`` and label them (see the module docstring).

    Each date is graded as ``segment grade`` grades it: the snapshot at that date, CRM-lost customers
    left out, quantile bands over that date's graded population. ``snapshots`` (as-of day → snapshot)
    keeps each date's snapshot, so a second scheme graded on the same dates (fitted bands) and the
    indicators the scheme does not read are taken from the same features without recomputing them."""

    if scheme.group_by:
        raise SegmentError(f"scheme {scheme.id} grades per {scheme.group_by}; calibration against churn "
                           "needs one grade per customer (calibrate a scheme without `group_by`)")
    if not scheme.scored:
        raise SegmentError(f"scheme {scheme.id} has no weighted dimensions (a stage scheme): there are no "
                           "weights or cut-offs to calibrate")
    dates = sorted({as_day(d, "as-of") for d in as_of_dates})
    if not dates:
        raise SegmentError("no as-of date given for the panel")
    end = as_day(data_end, "data end")
    inds = list(scheme.weights())
    parts, counts = [], []
    for day in progress(dates, desc="panel snapshots", unit="date"):
        if snapshots is not None and day in snapshots:
            snap = snapshots[day]
        else:
            snap = snapshot(tables, day)
            if snapshots is not None:
                snapshots[day] = snap
        if reads_history(scheme):   # overrides on past gradings are not part of the fit: their inputs missing
            snap = pd.concat([snap, history_columns(snap, scheme, day, None)[0]], axis=1)
        lost = snap["status"].eq("lost").fillna(False).to_numpy(dtype=bool) if "status" in snap else np.zeros(len(snap), bool)
        current = snap[~lost].reset_index(drop=True)
        g = grade(current, scheme, as_of=day)
        f = g.core  # the panel reads codes and scores, never the explanations
        cols = [c for c in _KEEP if c in f] + [c for c in inds if c in f] + \
               [c for c in f.columns if c.startswith(PTS) or c.startswith(DIM)]
        rows = f[cols].copy()
        rows.insert(1, "as_of", np.full(len(rows), day.to_datetime64(), dtype="datetime64[ns]"))
        # graded rows in the snapshot's order (ineligible customers dropped by grade)
        snap_g = current.set_index("customer_id").loc[rows["customer_id"]].reset_index()
        if scheme.adjustments:
            frame = snap_g.copy()
            for name in scheme.axes:
                frame[name] = f[name].to_numpy()
            rows["adj_mult"] = adjustment_multiplier(scheme, frame)
        else:
            rows["adj_mult"] = 1.0
        check = linear_score(rows[[PTS + i for i in inds]].to_numpy(dtype="float64"),
                             np.array([scheme.weights()[i] for i in inds]), scheme, rows["adj_mult"].to_numpy())
        if len(rows) and not np.allclose(check, rows["score"].to_numpy(dtype="float64"), rtol=1e-9, atol=1e-6):
            raise AssertionError("segment.calibration.churn: the grading engine's score is not score_factor × weighted points × "
                                 "adjustments; calibration would mis-state the calibrated scores")
        rows["excluded"] = at_risk(snap_g, definition).to_numpy()
        risk = rows["excluded"].eq("").to_numpy(dtype=bool)
        lab = churn_labels(tables, day, horizon_days, definition, end, customers=rows.loc[risk, "customer_id"])
        lab = lab.drop(columns=["as_of"]).set_index("customer_id")
        joined = lab.reindex(rows["customer_id"])
        for c in lab.columns:
            rows[c] = joined[c].to_numpy() if c != "censored" else joined[c].fillna(False).to_numpy(dtype=bool)
        rows.loc[~risk, "churn"] = np.nan
        rows["labelled"] = risk & ~rows["censored"].to_numpy(dtype=bool)
        parts.append(rows)
        ex = rows["excluded"].value_counts()
        labelled = rows["labelled"].to_numpy(dtype=bool)
        y = rows.loc[labelled, "churn"].to_numpy(dtype="float64")
        counts.append({
            "as_of": day.date().isoformat(), "graded": len(rows), "lost_before": int(lost.sum()),
            **{f"excluded_{r}": int(ex.get(r, 0)) for r in EXCLUDED},
            "at_risk": int(risk.sum()), "censored": int((risk & rows["censored"].to_numpy(dtype=bool)).sum()),
            "labelled": int(labelled.sum()), "churned": int(y.sum()),
            "churn_rate": round(float(y.mean()), 4) if len(y) else np.nan,
        })
    allrows = pd.concat(parts, ignore_index=True)
    return Panel(allrows, pd.DataFrame(counts), scheme, int(horizon_days), definition, end, dates)
