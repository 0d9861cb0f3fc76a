"""Follow-ups: when each graded customer is next due for contact under its tier's cadence, who is overdue, per account manager, and the managers' follow-up workbook.

Public: follow_ups, overdue_by_manager, write_follow_up_sheets, sheet_titles, STATUSES, OVERDUE, DUE_SOON, ON_SCHEDULE,
NO_CADENCE, DUE_SOON_DAYS, NO_MANAGER.
Reads: a grading frame carrying the snapshot's ``days_since_contact`` (and ``account_manager``).
Writes: the follow-up workbook (.xlsx: a summary sheet, one sheet per account manager), atomically.

Each tier's strategy says how often its customers are followed up (``follow_up_days``: S6's A daily =
1, B weekly = 7, … E yearly = 365). A customer's last contact is ``as_of − days_since_contact``; the
next contact is due ``follow_up_days`` after it; a customer never contacted is a whole cadence
overdue (it ranks with the longest overdue). A follow-up due before ``as_of`` is ``overdue``
(``days_overdue`` counts the days past due); one due today or within :data:`DUE_SOON_DAYS` days is
``due in 7 days``; later ones are ``on schedule``; a tier without a cadence gives ``no cadence``.

The grading from :func:`segment.grade` does not carry the snapshot's contact data: join it on, as the
grading report does (``segment.reports.grading_data.CONTEXT``)::

    g = segment.grade(snap, "s6_time_to_close")
    frame = g.frame.join(snap.set_index("customer_id")[["days_since_contact", "account_manager"]], on="customer_id")
    fu = follow_ups(frame, g.as_of)
    write_follow_up_sheets(fu, Path("reports/follow_ups.xlsx"))
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from segment.errors import SegmentError
from segment.plumbing.atomic import atomic_path

OVERDUE, DUE_SOON, ON_SCHEDULE, NO_CADENCE = "overdue", "due in 7 days", "on schedule", "no cadence"
#: the follow-up statuses, most urgent first (the ``status`` column's categories, in this order)
STATUSES = (OVERDUE, DUE_SOON, ON_SCHEDULE, NO_CADENCE)
#: a follow-up due within this many days after as_of is ``due in 7 days``
DUE_SOON_DAYS = 7
#: the account manager shown for customers without one (column absent, missing or empty)
NO_MANAGER = "(no manager)"

_REQUIRED = ("customer_id", "tier", "tier_label", "follow_up_days")
_NS_PER_DAY = 86_400 * 10**9
# datetime64[ns] reaches 1677-09-22 … 2262-04-11: day numbers (since 1970-01-01) kept inside it
_FIRST_DAY, _LAST_DAY = -106_740, 106_740
_SUMMARY = "summary"
_SHEET_CHARS = 31
_BAD_TITLE = re.compile(r"[\[\]:*?/\\\x00-\x1f\x7f]")
_SHEET_COLUMNS = {"customer_id": "customer", "group": "group", "name": "name", "tier_label": "tier label",
                  "last_contact": "last contact", "next_contact": "next contact", "days_overdue": "days overdue",
                  "status": "status"}
_WIDTHS = {"customer": 16, "group": 16, "name": 32, "tier label": 20, "last contact": 13, "next contact": 13,
           "days overdue": 13, "status": 14, "account manager": 28, "sheet": 32}


def _day_numbers(values: np.ndarray) -> np.ndarray:
    """Day numbers since 1970-01-01 (float, NaN = none) as datetime64[ns] dates (NaT for NaN)."""
    known = ~np.isnan(values)
    ns = np.zeros(len(values), dtype="int64")
    ns[known] = np.clip(values[known], _FIRST_DAY, _LAST_DAY).astype("int64") * _NS_PER_DAY
    out = ns.view("datetime64[ns]").copy()
    out[~known] = np.datetime64("NaT")
    return out


def _as_of_day(as_of) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(as_of)
    except (TypeError, ValueError):
        raise SegmentError(f"as_of {as_of!r} is not a date; give one like 2026-09-30") from None
    if pd.isna(ts):
        raise SegmentError("as_of is missing: follow-ups are counted at a date; give one like 2026-09-30")
    if ts.tz is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def _numbers(frame: pd.DataFrame, column: str, what: str) -> np.ndarray:
    """A numeric column as float64 (NaN = missing); a column of anything else is a SegmentError."""
    col = frame[column]
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(col.cat.categories.dtype if len(col.cat.categories) else "float64")
    try:
        return pd.to_numeric(col).to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        example = next((v for v in col.dropna() if not isinstance(v, (int, float))), None)
        raise SegmentError(f"the grading's {column} must be {what}; it holds e.g. {example!r}") from None


def _managers(frame: pd.DataFrame) -> pd.Categorical:
    """The account manager of each row, stripped; :data:`NO_MANAGER` when absent, missing or empty.
    Cleaned once per distinct name, not per row."""
    n = len(frame)
    if "account_manager" not in frame:
        return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [NO_MANAGER])
    codes, uniques = pd.factorize(frame["account_manager"], use_na_sentinel=True)
    cleaned = [str(u).strip() if not pd.isna(u) else "" for u in uniques]
    cleaned = [c or NO_MANAGER for c in cleaned]
    if (codes < 0).any():
        cleaned.append(NO_MANAGER)                                    # the last: missing (code -1)
    cats, inverse = np.unique(np.array(cleaned, dtype=object), return_inverse=True)
    return pd.Categorical.from_codes(inverse[codes] if len(cats) else codes, list(cats), validate=False)


def follow_ups(grading: pd.DataFrame, as_of) -> pd.DataFrame:
    """One row per graded row: who it is, its tier and cadence, and when its follow-up is due at ``as_of``.

    ``grading``: a grading frame (``segment.grade(...).frame``; a Grading is taken for its frame) with
    the snapshot's ``days_since_contact`` joined on (and ``account_manager``, when the data has one).
    Columns: customer_id, group and name (when the grading has them), tier, tier_label,
    account_manager (:data:`NO_MANAGER` when none), follow_up_days, last_contact (NaT: never contacted),
    next_contact (last contact + cadence; ``as_of`` − cadence when never contacted; NaT without a cadence),
    days_overdue (days past due, ≥ 0) and status (:data:`STATUSES`). Rows keep the grading's order and
    index. Vectorised: a million rows take a fraction of a second."""
    if not isinstance(grading, pd.DataFrame) and isinstance(getattr(grading, "frame", None), pd.DataFrame):
        grading = grading.frame
    if not isinstance(grading, pd.DataFrame):
        raise SegmentError(f"follow_ups takes a grading frame (segment.grade(...).frame), not {type(grading).__name__}")
    missing = [c for c in _REQUIRED if c not in grading]
    if missing:
        raise SegmentError(f"the grading has no {', '.join(missing)} column(s): follow_ups takes the frame "
                           "segment.grade returns (its tiers carry the follow-up cadence)")
    if "days_since_contact" not in grading:
        raise SegmentError("the grading has no days_since_contact column: follow-ups are counted from each "
                           "customer's last contact; join the snapshot's days_since_contact (and account_manager) "
                           "onto the grading by customer_id first, e.g. grading.join(snap.set_index('customer_id')"
                           "[['days_since_contact', 'account_manager']], on='customer_id')")
    day = _as_of_day(as_of)
    today = float(day.value // _NS_PER_DAY)
    since = np.rint(_numbers(grading, "days_since_contact", "numbers of days"))
    cadence = _numbers(grading, "follow_up_days", "whole numbers of days")
    has_cadence = ~np.isnan(cadence)
    contacted = ~np.isnan(since)
    last = today - since                                             # NaN: never contacted
    nxt = np.where(contacted, last + cadence, today - cadence)      # never contacted: a whole cadence overdue
    with np.errstate(invalid="ignore"):
        late = today - nxt
        due_now = late > 0
        soon = late >= -DUE_SOON_DAYS
    overdue_days = np.where(has_cadence & due_now, np.clip(np.nan_to_num(late), 0, None), 0).astype("int64")
    code = np.select([~has_cadence, due_now, soon], [3, 0, 1], 2).astype(np.int8)

    keep = [c for c in ("customer_id", "group", "name", "tier", "tier_label") if c in grading]
    out: dict[str, object] = {c: grading[c].array for c in keep}
    out["account_manager"] = _managers(grading)
    try:
        out["follow_up_days"] = pd.array(np.where(has_cadence, cadence, np.nan), dtype="Float64").astype("Int64")
    except (TypeError, ValueError):
        raise SegmentError("the grading's follow_up_days must be whole numbers of days") from None
    out["last_contact"] = _day_numbers(last)
    out["next_contact"] = _day_numbers(nxt)
    out["days_overdue"] = overdue_days
    out["status"] = pd.Categorical.from_codes(code, list(STATUSES), validate=False)
    return pd.DataFrame(out, index=grading.index)


def _check_follow_ups(fu: pd.DataFrame, wanted: tuple[str, ...]) -> None:
    missing = [c for c in wanted if c not in fu]
    if missing:
        raise SegmentError(f"the follow-up frame has no {', '.join(missing)} column(s): pass the frame "
                           "follow_ups(grading, as_of) returns")


def overdue_by_manager(fu: pd.DataFrame) -> pd.DataFrame:
    """Per account manager: customers (rows of ``fu``: a customer's group for grouped schemes), overdue
    (how many), share_overdue (overdue / customers) and most_overdue_days (0 when none is overdue);
    the managers with most overdue first (then the longest overdue, then by name)."""
    _check_follow_ups(fu, ("account_manager", "status", "days_overdue"))
    managers = _managers(fu)
    codes, names = managers.codes.astype(np.intp), managers.categories
    k = len(names)
    late = (fu["status"] == OVERDUE).to_numpy(dtype=bool)
    days = np.where(late, fu["days_overdue"].to_numpy(dtype="int64", na_value=0), 0)
    most = np.zeros(k, dtype="int64")
    np.maximum.at(most, codes, days)
    customers = np.bincount(codes, minlength=k).astype("int64")
    overdue = np.bincount(codes, weights=late, minlength=k).astype("int64")
    out = pd.DataFrame({"account_manager": [str(m) for m in names], "customers": customers, "overdue": overdue,
                        "share_overdue": np.round(overdue / np.maximum(customers, 1), 4), "most_overdue_days": most})
    out = out.sort_values(["overdue", "most_overdue_days", "account_manager"], ascending=[False, False, True],
                          kind="stable")
    return out.reset_index(drop=True)


def sheet_titles(names, reserved=(_SUMMARY, "history")) -> list[str]:
    """Excel-safe, unique sheet titles for ``names``, in order: []:*?/\\ and control characters become
    ``_``, no leading or trailing apostrophe, at most 31 characters, and unique as Excel compares them
    (ignoring case; also against ``reserved``): a clash gets `` (2)``, `` (3)``, … within the 31."""
    used = {r.casefold() for r in reserved}
    titles = []
    for text in names:
        base = _BAD_TITLE.sub("_", str(text)).strip().strip("'").strip() or "(blank)"
        k = 1
        while True:
            suffix = "" if k == 1 else f" ({k})"
            title = base[:_SHEET_CHARS - len(suffix)].rstrip("' ") + suffix
            if title.casefold() not in used:
                break
            k += 1
        used.add(title.casefold())
        titles.append(title)
    return titles


def _cell(ws, value, number_format: str | None = None, bold: bool = False):
    """A write-only cell: text kept text (``=…`` is no formula), characters XML cannot hold dropped."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    text = isinstance(value, str)
    if text:
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell = WriteOnlyCell(ws, value=value)
    if text and value.startswith("="):
        cell.data_type = "s"
    if number_format:
        cell.number_format = number_format
    if bold:
        cell.font = Font(bold=True)
    return cell


def _python_values(col: pd.Series) -> list:
    """A column as Python values for openpyxl: dates as dates, missing as None, texts as str."""
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return [None if pd.isna(v) else v for v in col.dt.date.tolist()]
    if pd.api.types.is_integer_dtype(col.dtype) or pd.api.types.is_float_dtype(col.dtype):
        return [None if pd.isna(v) else v for v in col.astype(object).tolist()]
    return [None if (not isinstance(v, str) and pd.isna(v)) else (v if isinstance(v, str) else str(v))
            for v in col.astype(object).tolist()]


def _write_table(ws, frame: pd.DataFrame, formats: dict[str, str]) -> None:
    """``frame`` onto a write-only sheet: a bold header row, widths, frozen header, a filter."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.utils import get_column_letter

    cols = list(frame.columns)
    for j, c in enumerate(cols, start=1):
        ws.column_dimensions[get_column_letter(j)].width = _WIDTHS.get(c, 14)
    ws.freeze_panes = "A2"
    if len(frame) and cols:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{len(frame) + 1}"
    ws.append([_cell(ws, c, bold=True) for c in cols])
    columns = [_python_values(frame[c]) for c in cols]
    special = [j for j, c in enumerate(cols) if c in formats or not pd.api.types.is_numeric_dtype(frame[c].dtype)]
    for row in zip(*columns):
        values = list(row)
        for j in special:
            v = values[j]
            if v is not None and (cols[j] in formats or (isinstance(v, str) and (
                    v.startswith("=") or ILLEGAL_CHARACTERS_RE.search(v)))):
                values[j] = _cell(ws, v, formats.get(cols[j]))
        ws.append(values)


def write_follow_up_sheets(fu: pd.DataFrame, path: Path) -> Path:
    """The follow-up workbook at ``path`` (.xlsx), written whole or not at all (``atomic_path``).

    First sheet ``summary``: :func:`overdue_by_manager` with each manager's sheet name. Then one sheet per
    account manager (in the summary's order) listing their overdue and due-soon customers, most overdue
    first (then the earliest due): customer, group and name when present, tier label, last contact,
    next contact, days overdue, status. Sheet names are Excel-safe and unique (:func:`sheet_titles`)."""
    from openpyxl import Workbook

    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise SegmentError(f"{path}: the follow-up workbook is an .xlsx file; name one like follow_ups.xlsx")
    _check_follow_ups(fu, ("customer_id", "tier_label", "account_manager", "last_contact", "next_contact",
                           "days_overdue", "status"))
    summary = overdue_by_manager(fu)
    titles = sheet_titles(summary["account_manager"])
    summary = summary.assign(sheet=titles)

    due = fu["status"].isin([OVERDUE, DUE_SOON]).to_numpy(dtype=bool)
    cols = [c for c in _SHEET_COLUMNS if c in fu]
    listed = fu.loc[due, cols].assign(account_manager=_managers(fu)[due])
    listed = listed.sort_values(["days_overdue", "next_contact", "customer_id"], ascending=[False, True, True],
                                kind="stable", na_position="last")
    rows = listed.groupby("account_manager", sort=False, observed=True).indices
    listed = listed[cols].rename(columns=_SHEET_COLUMNS)
    if "status" in listed:
        listed["status"] = listed["status"].astype(str)

    wb = Workbook(write_only=True)
    try:
        ws = wb.create_sheet(_SUMMARY)
        _write_table(ws, summary.rename(columns=lambda c: c.replace("_", " ")), {"share overdue": "0.0%"})
        for manager, title in zip(summary["account_manager"], titles):
            ws = wb.create_sheet(title)
            at = rows.get(manager)
            _write_table(ws, listed.iloc[at] if at is not None else listed.iloc[:0], {})  # dates get yyyy-mm-dd
        with atomic_path(path) as tmp:
            wb.save(tmp)
    except BaseException:
        _discard(wb)
        raise
    return path


def _discard(wb) -> None:
    """After a failed write: end each write-only sheet's stream and remove its temporary file (openpyxl
    removes them when the workbook is saved, or at exit)."""
    for ws in wb.worksheets:
        try:
            if not ws.closed:
                ws.close()
        except Exception:  # a stream a failed save left half-closed: nothing more to end
            pass
        writer = getattr(ws, "_writer", None)
        try:
            if writer is not None and isinstance(writer.out, str) and os.path.exists(writer.out):
                writer.cleanup()
        except (OSError, ValueError):
            pass
