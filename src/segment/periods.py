"""Grading periods: months, quarters, half-years and years, spelt once (``2026-09``, ``2026Q3``, ``2026H2``, ``2026``).

Public: Period, parse_period, period_of, latest_complete, is_period, PERIOD_KINDS, PERIOD_FORMS.
Reads: nothing. Writes: nothing.

A period names a report folder (``reports/<period>/``) and is graded at the end of its last day. Only
the canonical spellings are accepted, so one period has one folder. The previous period is of the
same kind (a month's is the month before; a half-year's the half-year before): reports compare
like with like. pandas has no half-year frequency, so a ``Period`` is kept as (kind, year, index).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from segment.errors import SegmentError

#: kind → months per period
PERIOD_KINDS = {"month": 1, "quarter": 3, "half": 6, "year": 12}
#: how each kind is written, for messages
PERIOD_FORMS = "2026-09 (a month), 2026Q3 (a quarter), 2026H2 (a half-year) or 2026 (a year)"
_FORMS = (
    ("month", re.compile(r"(\d{4})-(0[1-9]|1[0-2])")),
    ("quarter", re.compile(r"(\d{4})Q([1-4])")),
    ("half", re.compile(r"(\d{4})H([12])")),
    ("year", re.compile(r"(\d{4})")),
)


@dataclass(frozen=True, order=True)
class Period:
    """One grading period: ``kind`` (month / quarter / half / year), ``year``, ``index`` (1-based
    within the year: month 1–12, quarter 1–4, half 1–2, year 1)."""

    year: int
    kind: str
    index: int = 1

    @property
    def months(self) -> int:
        return PERIOD_KINDS[self.kind]

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.year, (self.index - 1) * self.months + 1, 1)

    @property
    def end(self) -> pd.Timestamp:
        """The period's last day (midnight): the grading date."""
        return (self.start + pd.DateOffset(months=self.months) - pd.Timedelta(days=1)).normalize()

    @property
    def days(self) -> int:
        return int((self.end - self.start).days) + 1

    @property
    def chronological(self) -> tuple[pd.Timestamp, int]:
        """Sort key of periods of any kind: by last day, the longer period first on the same day (2026Q3
        before 2026-09): the latest is the last."""
        return (self.end, -self.months)

    def shift(self, n: int) -> Period:
        """The period ``n`` periods of the same kind later (earlier when negative)."""
        per_year = 12 // self.months
        k = self.year * per_year + (self.index - 1) + n
        return Period(k // per_year, self.kind, k % per_year + 1)

    def previous(self) -> Period:
        return self.shift(-1)

    def __str__(self) -> str:
        if self.kind == "month":
            return f"{self.year}-{self.index:02d}"
        if self.kind == "quarter":
            return f"{self.year}Q{self.index}"
        if self.kind == "half":
            return f"{self.year}H{self.index}"
        return f"{self.year}"

    @property
    def noun(self) -> str:
        return {"half": "half-year"}.get(self.kind, self.kind)


def _match(text: str) -> Period | None:
    for kind, rx in _FORMS:
        m = rx.fullmatch(text)
        if m:
            return Period(int(m.group(1)), kind, int(m.group(2)) if kind != "year" else 1)
    return None


def is_period(name: str) -> bool:
    """``name`` is a period in its canonical spelling (a report folder's name)."""
    return isinstance(name, str) and _match(name) is not None


def parse_period(text, said: str = "--period") -> Period:
    """'2026Q3' → Period; a Period is returned as it is. Anything else is a SegmentError that shows
    the accepted forms (``said``: how the value was given, for the message)."""
    if isinstance(text, Period):
        return text
    p = _match(text.strip()) if isinstance(text, str) else None
    if p is None or not 1900 <= p.year <= 2200:
        raise SegmentError(f"{said} {text!r} is not a period in an accepted form; write {PERIOD_FORMS}")
    return p


def period_of(day, kind: str = "quarter") -> Period:
    """The period of ``kind`` holding ``day``."""
    if kind not in PERIOD_KINDS:
        raise SegmentError(f"{kind!r} is not a kind of period; use one of {', '.join(PERIOD_KINDS)}")
    t = pd.Timestamp(day)
    months = PERIOD_KINDS[kind]
    return Period(t.year, kind, (t.month - 1) // months + 1)


def latest_complete(last_date, kind: str = "quarter") -> Period:
    """The latest period of ``kind`` whose last day is on or before ``last_date``."""
    last = pd.Timestamp(last_date).normalize()
    p = period_of(last, kind)
    return p if p.end <= last else p.previous()
