"""The steps that commands share: load + validate → snapshot → grade."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import SegmentError
from .grading import Grading, grade
from .schemes import Scheme, load_scheme, resolve
from .validate import Loaded, load_data


def quarter_end(quarter: str) -> pd.Timestamp:
    """'2026Q3' → 2026-09-30."""
    try:
        p = pd.Period(quarter.upper(), freq="Q")
    except (ValueError, TypeError):
        raise SegmentError(f"error: --quarter {quarter!r} is not a quarter; write it like 2026Q3") from None
    return p.end_time.normalize()


def quarter_of(ts) -> str:
    return str(pd.Period(pd.Timestamp(ts), freq="Q"))


def latest_complete_quarter(last_date) -> str:
    """The latest quarter whose last day is on or before ``last_date``."""
    last = pd.Timestamp(last_date).normalize()
    p = pd.Period(last, freq="Q")
    if p.end_time.normalize() > last:
        p -= 1
    return str(p)


def data_end(loaded: Loaded) -> pd.Timestamp:
    if loaded.config.as_of is not None:
        return pd.Timestamp(loaded.config.as_of)
    return pd.Timestamp(loaded.tables.transactions["date"].max()).normalize()


@dataclass
class Graded:
    grading: Grading
    loaded: Loaded
    snapshot: pd.DataFrame  # every customer known at as_of, lost ones included
    lost_before: int = 0  # customers the CRM marks lost/closed on or before as_of: not graded

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


def grade_data(data: str | Path, scheme: str | Path, as_of=None) -> Graded:
    """Load and validate the data, take the snapshot at ``as_of`` and grade it.

    Customers whose CRM status is lost/closed on or before ``as_of`` are not graded (they are counted
    in ``lost_before``); customers who simply stopped buying are graded like everyone else."""
    from .features import snapshot

    scheme_obj = load_scheme(scheme)  # params errors first: they are cheaper to find than data errors
    loaded = load_data(data, as_of=as_of)
    when = pd.Timestamp(as_of) if as_of is not None else data_end(loaded)
    snap = snapshot(loaded.tables, when)
    lost = snap["status"].eq("lost").to_numpy(dtype=bool) if "status" in snap else None
    current = snap[~lost].reset_index(drop=True) if lost is not None and lost.any() else snap
    source = str(resolve(scheme))
    graded = Graded(grade(current, scheme_obj, as_of=when, source=source), loaded, snap)
    graded.lost_before = int(lost.sum()) if lost is not None else 0
    return graded
