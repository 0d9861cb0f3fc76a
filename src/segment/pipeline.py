"""The steps that commands share: load + validate → snapshot → grade.

Public: period_end, check_as_of, check_period, data_end, Graded,
group_snapshots, grade_snapshot, grade_customers, grade_current, grade_data.
Reads: the data config, the scheme. Writes: nothing (the CLI writes the grading).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segment.data.validate import Loaded, load_data
from segment.errors import SegmentError
from segment.grading.designations import apply_designations, read_designations
from segment.grading.engine import Grading, grade
from segment.grading.published import Published, reads_history, with_history
from segment.grading.scheme import Scheme, load_scheme, resolve
from segment.periods import latest_complete, parse_period
from segment.paths import reports_dir
from segment.plumbing.result import Result

def period_end(period) -> pd.Timestamp:
    """'2026Q3' → 2026-09-30, '2026-09' → 2026-09-30, '2026H2' → 2026-12-31, '2026' → 2026-12-31: the
    period's last day, when it is graded. Only the canonical spellings are accepted (they name the
    report folder); anything else is an error that shows them."""
    return parse_period(period).end


def check_as_of(day, first, end, said: str, latest: str, grace_days: int = 0) -> None:
    """Refuse a grading date the data cannot support: after the data's end (the population would be
    frozen there and churn windows would run past what is known) or before its first transaction
    (nothing to grade). ``said``: how the date was given; ``latest``: the latest acceptable value;
    ``grace_days``: how far after the data's end a date is still accepted."""
    day, first, end = (pd.Timestamp(x).normalize() for x in (day, first, end))
    where = f"the data covers {first.date()} … {end.date()}"
    if day > end + pd.Timedelta(days=grace_days):
        raise SegmentError(f"{said} after the data's end: {where}; the latest is {latest}")
    if day < first:
        raise SegmentError(f"{said} before the data's first transaction: {where}")


#: `segment grade --as-of` may lie this far after the data's end (a small export whose last sale was
#: months ago); further, every 12-month window would be empty: a frozen population. A date after the
#: end is graded with a warning (``Graded.after_data_end``).
AS_OF_GRACE_DAYS = 365


def check_period(period, first, end) -> None:
    """:func:`check_as_of` for a period (any kind): graded at its last day."""
    p = parse_period(period)
    check_as_of(p.end, first, end, f"{p} ends on {p.end.date()},",
                f"{latest_complete(end, p.kind)} (the latest complete {p.noun})")


def data_end(loaded: Loaded) -> pd.Timestamp:
    if loaded.config.as_of is not None:
        return pd.Timestamp(loaded.config.as_of)
    return loaded.tables.date_range()[1].normalize()


@dataclass
class Graded(Result):
    grading: Grading
    loaded: Loaded  # with engine: spark its tables are closed (they stayed on the cluster)
    snapshot: pd.DataFrame | None  # every customer known at as_of, lost ones included; None on Spark
    lost_before: int = 0  # customers the CRM marks lost/closed on or before as_of: not graded
    data_end: pd.Timestamp | None = None  # the data's end (config as_of or last transaction date)

    # convenience for the CLI
    @property
    def frame(self) -> pd.DataFrame:
        return self.grading.frame

    @property
    def scheme(self) -> Scheme:
        return self.grading.scheme

    @property
    def as_of(self) -> pd.Timestamp:
        return self.grading.as_of

    def tier_counts(self) -> pd.DataFrame:
        return self.grading.tier_counts()

    def table(self) -> pd.DataFrame:
        return self.grading.table()

    def lost_note(self) -> str:
        """What the grading left out because the CRM marks them lost ("" when none): the CLI's note."""
        return (f"{self.lost_before:,} customers marked lost before the as-of date were not graded"
                if self.lost_before else "")

    def summary(self) -> str:
        return self.grading.summary() + (f"; {self.lost_note()}" if self.lost_before else "")


def group_snapshots(tables, as_of, group_by: str) -> pd.DataFrame:
    """One snapshot per group (S8: per product line), stacked with a ``group`` column.

    Each group's snapshot sees only that group's transactions and opportunities (and the facts of the
    measures table whose ``group`` is that group, or empty: a fact for every group); its population is
    the customers with a transaction or an opportunity in the group. Each is the same SQL over the
    tables filtered to the group (nothing fetched but the per-customer results)."""
    if group_by not in tables.columns("transactions"):
        raise SegmentError(f"the scheme grades per {group_by}, but the transactions table has no "
                           f"`{group_by}` column; map one in the data config or remove `group_by`")
    with_opp = "opportunities" in tables.present() and group_by in tables.columns("opportunities")
    with_facts = "measures" in tables.present() and "group" in tables.columns("measures")
    d = tables.d  # the engine's SQL (DuckDB or Spark)
    col = d.q(group_by)
    union = f"SELECT {col} AS g, customer_id FROM tx" + (f" UNION ALL SELECT {col}, customer_id FROM op" if with_opp else "")
    pairs = tables.sql(f"SELECT DISTINCT g, customer_id FROM ({union}) AS u WHERE g IS NOT NULL "
                       "AND customer_id IS NOT NULL")
    members = pairs.astype({"g": "string", "customer_id": "string"}).groupby("g", sort=True)["customer_id"]
    parts = []
    for g, ids in members:
        lit = d.text(str(g))
        filters = {"transactions": f"{col} = {lit}"}
        if with_opp:
            filters["opportunities"] = f"{col} = {lit}"
        if with_facts:  # a fact of the group, or one that holds for every group (no group)
            filters["measures"] = f"({d.q('group')} = {lit} OR {d.q('group')} IS NULL)"
        snap = tables.where(**filters).snapshot(as_of, customers=sorted(ids))
        snap.insert(1, "group", pd.array([g] * len(snap), dtype="string"))
        parts.append(snap)
    if not parts:
        raise SegmentError(f"no {group_by} values in the data: nothing to grade per {group_by}")
    return pd.concat(parts, ignore_index=True)


def grade_snapshot(tables, scheme: Scheme, as_of, source: str = "the scheme", *,
                   keep_snapshot: bool = True, published: Published | None = None) -> tuple[Grading, pd.DataFrame | None, int]:
    """Snapshot (per group when the scheme says so) → drop CRM-lost customers → grade.

    A scheme that reads the history indicators (``previous_tier`` …) gets them from ``published``, the
    gradings published before ``as_of`` (None: missing, with a warning). Returns the grading, the full
    snapshot (lost customers included; None when not ``keep_snapshot`` and the engine need not fetch it —
    Spark) and the number not graded because the CRM marks them lost/closed on or before ``as_of``."""
    history = reads_history(scheme)
    if not scheme.group_by and not history:  # where the tables are (DuckDB, or Spark: on the cluster)
        return tables.graded(scheme, as_of, source, keep_snapshot=keep_snapshot)
    # one snapshot per group (on Spark: run there), stacked; history is joined on the driver
    snap = group_snapshots(tables, as_of, scheme.group_by) if scheme.group_by else tables.snapshot(as_of)
    if history:
        snap = with_history(snap, scheme, as_of, published, source)
    grading, n_lost = grade_current(snap, scheme, as_of, source)
    return grading, snap, n_lost


def grade_customers(snapshot: pd.DataFrame, scheme: Scheme | str | Path, as_of=None) -> Grading:
    """Grade a snapshot as the commands do (``segment.grade``): customers the CRM marks lost at
    ``as_of`` are not graded (their number is ``Grading.lost``); ``scheme``: a Scheme, an id under
    params/schemes/ or a path. ``as_of`` defaults to the snapshot's."""
    scheme_obj = scheme if isinstance(scheme, Scheme) else load_scheme(scheme)
    if as_of is None and "as_of" in snapshot and len(snapshot):
        as_of = snapshot["as_of"].iloc[0]
    grading, n_lost = grade_current(snapshot, scheme_obj, as_of)
    grading.lost = n_lost
    return grading


def grade_current(snap: pd.DataFrame, scheme: Scheme, as_of, source: str = "the scheme") -> tuple[Grading, int]:
    """Grade the customers of a snapshot the CRM does not mark lost; returns the grading and how many
    were left out as lost."""
    lost = snap["status"].eq("lost").fillna(False).to_numpy(dtype=bool) if "status" in snap else np.zeros(len(snap), bool)
    current = snap[~lost].reset_index(drop=True)
    # group_by schemes: each group graded on its own (quantile bands within the group), by group
    grading = grade(current, scheme, as_of=as_of, source=source)
    n_lost = int(snap.loc[lost, "customer_id"].nunique()) if lost.any() else 0
    return grading, n_lost


def grade_data(data: str | Path, scheme: str | Path, as_of=None, designations: str | Path | None = None) -> Graded:
    """Load and validate the data, take the snapshot at ``as_of`` and grade it.

    Customers whose CRM status is lost/closed on or before ``as_of`` are not graded (they are counted
    in ``lost_before``); customers who simply stopped buying are graded like everyone else. A
    designation file, when given, is applied last. With ``engine: spark`` in the data config every
    step runs on Spark — validation (the same checks and report), the snapshot and the grading's SQL —
    and only the report, counts and the graded rows' codes and indicator values reach the driver
    (docs/scale.md); ``snapshot`` is then None."""
    scheme_obj = load_scheme(scheme)  # params errors first: they are cheaper to find than data errors
    designated = read_designations(designations) if designations else None
    source = str(resolve(scheme))
    loaded = load_data(data, as_of=as_of)  # engine: spark → validated there, and the tables stay there
    try:
        when = pd.Timestamp(as_of) if as_of is not None else data_end(loaded)
        end = data_end(loaded)
        if as_of is not None:
            check_as_of(when, loaded.tables.date_range()[0], end, f"--as-of {when.date()} is",
                        str((end + pd.Timedelta(days=AS_OF_GRACE_DAYS)).date()), AS_OF_GRACE_DAYS)
        # on Spark the snapshot is not fetched: only the graded rows
        grading, snap, n_lost = grade_snapshot(loaded.tables, scheme_obj, when, source, keep_snapshot=False,
                                               published=Published(reports_dir(), Path(data)))
    finally:
        loaded.tables.release()  # Spark: what the tables persisted on the executors
    if designated is not None:
        grading = apply_designations(grading, designated)
    return Graded(grading, loaded, snap, n_lost, end)
