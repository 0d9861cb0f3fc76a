"""Designations: customers whose tier a manager sets by hand (S4's "may be designated"), with a reason, an approver and an expiry, applied over a grading.

Public: read_designations, apply_designations, DESIGNATION_COLUMNS.
Reads: a designations file (CSV or Excel). Writes: nothing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from segment.errors import SegmentError
from segment.grading.engine import Grading

DESIGNATION_COLUMNS = ("customer_id", "tier", "reason", "approver", "expires")


def read_designations(path) -> pd.DataFrame:
    """A designation file (.csv or .xlsx): customer_id, tier, reason, approver, expires (YYYY-MM-DD)."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise SegmentError(f"designation file {path} not found; check the path")
    try:
        df = (pd.read_excel(path, dtype=str) if path.suffix.lower() in (".xlsx", ".xls")
              else pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]))
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SegmentError(f"{path}: cannot read the designation file: {str(e).splitlines()[0]}") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in DESIGNATION_COLUMNS if c not in df.columns]
    if missing:
        raise SegmentError(f"{path}: missing column(s) {', '.join(missing)}; a designation file has the "
                           f"columns {', '.join(DESIGNATION_COLUMNS)}")
    df.attrs["path"] = str(path)
    return df


def apply_designations(grading: Grading, designations: pd.DataFrame) -> Grading:
    """Set the tier of designated customers (unexpired at the grading's as-of), recording who and why.

    Every row is checked first — unknown customer, unknown tier, missing reason or approver, a bad
    expiry date, a customer designated twice: exit 2 naming the rows, nothing applied."""
    path = designations.attrs.get("path", "the designation file")
    scheme = grading.scheme
    ids = [t.id for t in scheme.tiers]
    d = designations.copy()
    for c in DESIGNATION_COLUMNS:
        d[c] = d[c].astype("string").str.strip()
    expires = pd.to_datetime(d["expires"], errors="coerce", format="ISO8601")
    known = set(grading.frame["customer_id"])
    problems = []

    def rows(mask) -> str:
        return ", ".join(str(i + 2) for i in np.flatnonzero(np.asarray(mask)))  # +2: header line, 1-based

    checks = [
        (d["customer_id"].isna() | ~d["customer_id"].isin(known), "customer not in this grading"),
        (~d["tier"].isin(ids), f"unknown tier (write one of {', '.join(ids)})"),
        (d["reason"].isna() | (d["reason"] == ""), "reason is empty (every designation needs one)"),
        (d["approver"].isna() | (d["approver"] == ""), "approver is empty"),
        (expires.isna(), "expires is not a date (YYYY-MM-DD)"),
        (d["customer_id"].duplicated(keep=False) & d["customer_id"].notna(), "customer designated more than once"),
    ]
    for mask, what in checks:
        mask = mask.fillna(True).to_numpy(dtype=bool)
        if mask.any():
            problems.append(f"  lines {rows(mask)}: {what}")
    if problems:
        raise SegmentError(f"{path}: {len(problems)} problem(s); nothing was applied:\n" + "\n".join(problems))
    live = d[expires >= grading.as_of.normalize()]
    frame = grading.frame.copy()
    frame["designation"] = pd.array([""] * len(frame), dtype="string")
    if len(live):
        # every row of a designated customer (one per group for grouped schemes)
        by_id = live.set_index("customer_id")
        hit = frame["customer_id"].isin(by_id.index).to_numpy(dtype=bool)
        cid = frame.loc[hit, "customer_id"]
        new = cid.map(by_id["tier"]).to_numpy(dtype=object)
        before = frame.loc[hit, "tier"].to_numpy(dtype=object)
        frame.loc[hit, "designation"] = ("designated " + new + " (was " + before + "; "
                                         + cid.map(by_id["reason"]).to_numpy(dtype=object) + "; approved by "
                                         + cid.map(by_id["approver"]).to_numpy(dtype=object) + ", until "
                                         + cid.map(by_id["expires"]).to_numpy(dtype=object) + ")")
        info = {t.id: (i, t.label or t.id, "; ".join(t.strategy.actions), t.strategy.follow_up_days, t.strategy.owner)
                for i, t in enumerate(scheme.tiers)}
        for col, k in (("tier", None), ("tier_rank", 0), ("tier_label", 1), ("strategy", 2), ("follow_up_days", 3),
                       ("owner", 4)):
            values = list(new) if k is None else [info[x][k] for x in new]
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                extra = sorted(set(values) - set(frame[col].cat.categories))
                if extra:
                    frame[col] = frame[col].cat.add_categories(extra)
            frame.loc[hit, col] = pd.array(values, dtype="Int64") if col == "follow_up_days" else values
    return Grading(frame, scheme, grading.as_of, grading.ineligible, grading.lost, grading.band_counts)
