"""Periods beyond quarters: months, half-years and years, their ends, the previous period of the same kind."""
import pandas as pd
import pytest

from segment.errors import SegmentError
from segment.periods import Period, is_period, latest_complete, parse_period, period_of


@pytest.mark.parametrize("text, kind, end, previous", [
    ("2026-09", "month", "2026-09-30", "2026-08"),
    ("2026-01", "month", "2026-01-31", "2025-12"),
    ("2024-02", "month", "2024-02-29", "2024-01"),   # a leap year's February
    ("2026Q3", "quarter", "2026-09-30", "2026Q2"),
    ("2026Q1", "quarter", "2026-03-31", "2025Q4"),
    ("2026H2", "half", "2026-12-31", "2026H1"),
    ("2026H1", "half", "2026-06-30", "2025H2"),
    ("2026", "year", "2026-12-31", "2025"),
])
def test_each_kind_ends_on_its_last_day_and_steps_back_by_its_own_kind(text, kind, end, previous):
    p = parse_period(text)
    assert p.kind == kind and str(p) == text and is_period(text)
    assert p.end == pd.Timestamp(end)
    assert str(p.previous()) == previous and p.previous().kind == kind
    assert p.previous().end < p.start <= p.end
    assert p.days == (p.end - p.start).days + 1


def test_the_period_of_a_day_and_the_latest_complete_one():
    assert str(period_of("2026-09-15", "month")) == "2026-09"
    assert str(period_of("2026-09-15", "half")) == "2026H2"
    assert str(latest_complete("2026-09-30", "month")) == "2026-09"
    assert str(latest_complete("2026-09-29", "month")) == "2026-08"
    assert str(latest_complete("2026-09-30", "half")) == "2026H1"
    assert str(latest_complete("2026-09-30", "year")) == "2025"
    assert str(latest_complete("2026-12-31", "year")) == "2026"
    assert parse_period("2026Q4").shift(5) == Period(2028, "quarter", 1)
    with pytest.raises(SegmentError, match="'week' is not a kind of period"):
        period_of("2026-01-01", "week")


def test_a_wrong_spelling_names_how_it_was_given():
    with pytest.raises(SegmentError, match=r"^--period '2026-9' is not a period"):
        parse_period("2026-9")
    assert not is_period("2026Q3 ") and not is_period("index.html") and not is_period("failed")
