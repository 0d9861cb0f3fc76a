"""What the grading report shows, computed from the data at `segment report` time: the quarter's grading, the previous one, realised churn, movers' context, the tiers over time — kept as a bundle the notebook reads.

Public: prepare_grading_report, grading_report (the notebook's entry: the bundle, or computed by hand in JupyterLab), CONTEXT.
Reads: the data config, the scheme, earlier manifests under reports/. Writes: the bundle (through GradingReport.save).
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from segment.calibration.churn import at_risk, churn_labels
from segment.calibration.params import load_calibration_params
from segment.data.validate import load_data
from segment.errors import MissingOptional
from segment.grading import history
from segment.grading.published import Published, score_falls
from segment.grading.scheme import Scheme, load_scheme, resolve
from segment.paths import AUDIT_LOG, QuarterFiles, project_path
from segment.paths import reports_dir as project_reports
from segment.periods import is_period, parse_period
from segment.pipeline import check_period, data_end, grade_snapshot
from segment.plumbing.atomic import sha256_file
from segment.reports.grading import GradingReport, per_tier
from segment.review.decisions import carry_decisions
from segment.review.audit import reviewer_changes


def prepare_grading_report(loaded, scheme_path: str | Path, quarter: str, *, reports_dir: str | Path | None = None,
                           calibration_params: str | Path | None = None, meta: dict | None = None) -> GradingReport:
    """Grade the period (``quarter``: any kind of period, 2026Q3, 2026-09, 2026H2, 2026), the previous
    period of the same kind and an earlier one for realised churn (one data load); carry the reviewers'
    decisions in force; read the published history.

    Long because it gathers every part of the report from one data load: this period, the previous one
    as published, the decisions carried, realised churn of an earlier grading, the logged changes."""

    scheme = load_scheme(scheme_path)
    period = parse_period(quarter)
    quarter = str(period)
    as_of = period.end
    tables = loaded.tables
    first = tables.date_range()[0]
    check_period(quarter, first, data_end(loaded))
    if reports_dir is None:
        reports_dir = project_reports()
    reports_dir = Path(reports_dir)
    published = Published(reports_dir, Path(loaded.path))   # the history the scheme's conditions may read
    grading, snap, n_lost = grade_snapshot(tables, scheme, as_of, str(scheme_path), published=published)

    prev = period.previous()
    prev_q = str(prev)
    previous, reviewed, decisions = None, False, None
    prev_files = QuarterFiles(reports_dir / prev_q)
    prev_published = _published(prev_files, scheme, loaded.path)   # the previous period as it was published
    if prev.end >= first:
        # revenue and breakdowns come from the snapshot, whatever the scheme reads (like this period's)
        with _quiet():   # its warnings are this period's (same optional inputs, same history)
            prev_grading, prev_snap, _ = grade_snapshot(tables, scheme, prev.end, str(scheme_path), published=published)
        previous = _with_context(prev_published if prev_published is not None else prev_grading.frame, prev_snap, scheme)
    elif prev_published is not None:
        previous = prev_published
    if prev_published is not None:
        reviewed = prev_files.approved.is_file()
        computed = pd.read_parquet(prev_files.grading) if reviewed and prev_files.grading.is_file() else None
        # reviewers' moves hold until they expire, the data catches up with them, or a review replaces them
        carried = carry_decisions(grading.frame, prev_published, computed, prev, as_of, scheme)
        grading.frame = carried.frame
        decisions = carried.decisions if len(carried.decisions) else None

    churn = None
    churn_q, churn_text = None, ""
    definition, horizon = _churn_settings(calibration_params)
    horizon = max(horizon, period.days)   # a year's grading is judged on at least a year (a month's on the horizon)
    back = period  # the latest period of the same kind whose churn horizon has passed
    while back.end + pd.Timedelta(days=horizon) > as_of:
        back = back.previous()
    if not scheme.group_by and back.end - pd.Timedelta(days=365) >= first:
        churn_q = str(back)
        with _quiet():
            then = grade_snapshot(tables, scheme, back.end, str(scheme_path), published=published)
        graded = then[1]["customer_id"].isin(then[0].frame["customer_id"])  # CRM-lost are not graded
        at = (at_risk(then[1], definition) == "").to_numpy(dtype=bool) & graded.to_numpy(dtype=bool)
        ids = then[1].loc[at, "customer_id"]
        labels = churn_labels(tables, back.end, horizon, definition, as_of, customers=ids)
        labels_text = {t.id: t.label or t.id for t in scheme.tiers}
        churn = history.realised_churn(then[0].frame, labels, [t.id for t in scheme.tiers], labels_text)
        crit = [c for c, on in (("no purchase", definition.no_purchase), ("CRM status lost", definition.lost_status),
                                (f"revenue down ≥ {definition.revenue_drop:.0%}" if definition.revenue_drop else "",
                                 bool(definition.revenue_drop))) if on]
        churn_text = f"{horizon} days; churn = {' or '.join(crit)}; customers active in the year before"
    elif scheme.group_by:
        churn_text = (f"Churn is a customer's, and {scheme.name or scheme.id} grades each {scheme.group_by.replace('_', ' ')} "
                      "of a customer on its own (a customer has several tiers): realised churn by tier is not shown.")

    changes = None
    log = reports_dir / AUDIT_LOG
    if log.is_file():

        # decisions applied to the previous quarter's grading (its file or its approved version)
        shas = {sha256_file(f) for f in (prev_files.grading, prev_files.approved) if f.is_file()}
        ch = reviewer_changes(log)
        ch = ch[ch["grading_sha256"].isin(shas)] if len(ch) else ch
        changes = ch.drop(columns=["grading_sha256", "period", "scheme"], errors="ignore").reset_index(drop=True) \
            if len(ch) else None
        if changes is not None and "group" in changes and not (changes["group"].fillna("") != "").any():
            changes = changes.drop(columns=["group"])   # a scheme graded per customer has no groups

    current = _with_names(_with_context(grading.frame, snap, scheme), tables)
    falls = score_falls(current, scheme, as_of, published)
    trend = _trend(reports_dir, loaded.path, scheme, [(prev_q, previous), (quarter, current)])
    return GradingReport(quarter=quarter, scheme=scheme, scheme_path=str(Path(scheme_path).resolve()),
                         grading=current, previous=previous, previous_quarter=prev_q, trend=trend,
                         previous_reviewed=reviewed, churn=churn, churn_quarter=churn_q, churn_text=churn_text,
                         data_report=loaded.report, changes=changes, decisions=decisions, lost_before=n_lost, falls=falls,
                         meta={"as_of": str(as_of.date()), "band_warnings": grading.warnings(),
                               "currency": loaded.config.currency, **(meta or {})})


@contextmanager
def _quiet():
    """The gradings a report computes for context (the previous period, the churn period) warn about
    the same optional inputs and history as this period's grading, which already said it once."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingOptional)
        yield


def _published(files: QuarterFiles, scheme: Scheme, data: Path) -> pd.DataFrame | None:
    """A period's grading as published in ``files`` (the approved one after its review, else the one
    computed), when that folder holds this scheme on this data; else None."""
    found = Published(files.folder.parent, Path(data)).file(scheme, files.folder.name)
    return pd.read_parquet(found) if found is not None else None


def _trend(reports_dir: Path, data: Path, scheme: Scheme, computed: list[tuple[str, pd.DataFrame | None]]) -> pd.DataFrame:
    """Graded rows per tier and 12-month revenue per period, oldest first: the periods reported earlier
    in ``reports_dir`` with this scheme on this data (their manifest's headline), then ``computed``
    (the previous and this period's gradings)."""
    ids = [t.id for t in scheme.tiers]
    shown = [parse_period(q) for q, f in computed if f is not None]
    if not shown:
        return pd.DataFrame(columns=["period", *ids, "graded", "revenue_12m"])
    first, kind = min(shown), shown[0].kind  # earlier periods of the same kind only
    rows = []
    published = Published(reports_dir, Path(data))
    for folder in sorted(reports_dir.glob("*/manifest.json")) if reports_dir.is_dir() else []:
        period = folder.parent.name
        if not is_period(period) or parse_period(period).kind != kind or parse_period(period) >= first:
            continue
        m = published.manifest(scheme, period)   # this scheme on this data, else not part of the trend
        try:
            head = m["headline"]
            counts = {t["tier"]: int(t["customers"]) for t in head["tiers"]}
            rows.append({"period": period, **{t: counts.get(t, 0) for t in ids}, "graded": sum(counts.values()),
                         "revenue_12m": float(head["revenue_12m"])})
        except (KeyError, TypeError, ValueError):
            continue  # another scheme or data, a manifest of another format or a half-written folder
    for period, frame in computed:
        if frame is None:
            continue
        t = per_tier(frame, ids)
        rows.append({"period": period, **dict(zip(ids, t["customers"])), "graded": len(frame),
                     "revenue_12m": float(t["revenue_12m"].sum())})
    return pd.DataFrame(rows, columns=["period", *ids, "graded", "revenue_12m"])


#: snapshot columns kept beside the grading for breakdowns and the review rules (anomalies)
CONTEXT = ("industry", "region", "account_manager", "annual_amount", "complaints_12m", "major_complaints_12m",
           "days_since_contact")


def _with_names(frame: pd.DataFrame, tables) -> pd.DataFrame:
    """Add the customers' names (the customers table's ``name``, not personal contact data) for the
    review list; the frame as it is when the data has none."""
    if "name" in frame or "customers" not in tables.present() or "name" not in tables.columns("customers"):
        return frame
    names = tables.sql("SELECT customer_id, min(name) AS name FROM cu WHERE customer_id IN "
                       "(SELECT customer_id FROM wanted) GROUP BY customer_id", wanted=frame["customer_id"].astype(str))
    names["customer_id"] = names["customer_id"].astype(str)
    return frame.merge(names, on="customer_id", how="left", validate="many_to_one")


def _with_context(frame: pd.DataFrame, snap: pd.DataFrame, scheme: Scheme | None = None) -> pd.DataFrame:
    """Add the breakdown attributes, revenue and the scheme's condition inputs from the snapshot."""
    wanted = list(CONTEXT) + sorted(scheme.inputs() if scheme is not None else [])
    cols = [c for c in dict.fromkeys(wanted) if c in snap and c not in frame]
    if not cols:
        return frame
    keys = ["customer_id", "group"] if "group" in frame and "group" in snap else ["customer_id"]
    extra = snap.drop_duplicates(keys).set_index(keys)[cols]
    return frame.join(extra, on=keys)


def _churn_settings(path):

    params = load_calibration_params(path) if path else load_calibration_params()
    return params.churn, params.horizon_days


def grading_report(quarter: str, data: str, scheme: str, bundle: str = ""):
    """What the grading notebook shows: the bundle `segment report` prepared, or (run by hand in
    JupyterLab with bundle "") computed here from the data config."""

    if bundle:
        return GradingReport.load(str(project_path(bundle)))
    return prepare_grading_report(load_data(project_path(data)), resolve(scheme), quarter)
