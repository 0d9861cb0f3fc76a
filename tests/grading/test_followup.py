"""Follow-ups (segment.grading.followup): due dates and statuses by hand, per-manager counts, the
managers' workbook read back with openpyxl, its sheet names, and the atomic write."""
from __future__ import annotations

import datetime as dt
import time

import numpy as np
import openpyxl
import pandas as pd
import pytest

from segment.errors import SegmentError
from segment.grading.followup import (
    DUE_SOON,
    NO_CADENCE,
    NO_MANAGER,
    ON_SCHEDULE,
    OVERDUE,
    STATUSES,
    follow_ups,
    overdue_by_manager,
    sheet_titles,
    write_follow_up_sheets,
)

AS_OF = "2026-09-30"
SHARED_31 = "Zhang Wei key accounts East Chi"
LONG_A, LONG_B = SHARED_31 + "na region", SHARED_31 + "na team 2"    # 40 characters, the same first 31


def grading(**extra) -> pd.DataFrame:
    """A grading as the engine gives it (categorical tiers, Int64 cadence) with the snapshot's context."""
    frame = pd.DataFrame({
        "customer_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
        "name": ["Acme", "Beta", "Ceta", "Delta", "Echo", "Fox"],
        "tier": pd.Categorical(["B", "B", "X", "B", "E", "A"], categories=["A", "B", "E", "X"]),
        "tier_label": ["B weekly", "B weekly", "X none", "B weekly", "E yearly", "A daily"],
        "follow_up_days": pd.array([7, 7, pd.NA, 7, 365, 1], dtype="Int64"),
        "days_since_contact": [10.0, np.nan, 4.0, 2.0, 30.0, 0.0],
        "account_manager": ["Li", "Li", "Wang", "", None, "Li"],
    })
    return frame.assign(**extra)


def test_due_dates_and_statuses_by_hand():
    fu = follow_ups(grading(), AS_OF).set_index("customer_id")
    d = pd.Timestamp
    # c1: last contact 10 days ago in a 7-day tier → due 2026-09-27, 3 days overdue
    assert fu.loc["c1", "last_contact"] == d("2026-09-20")
    assert fu.loc["c1", "next_contact"] == d("2026-09-27")
    assert (fu.loc["c1", "days_overdue"], fu.loc["c1", "status"]) == (3, OVERDUE)
    # c2: never contacted → a whole 7-day cadence overdue: due 2026-09-23 (as_of − 7), 7 days overdue
    assert pd.isna(fu.loc["c2", "last_contact"])
    assert fu.loc["c2", "next_contact"] == d("2026-09-23")
    assert (fu.loc["c2", "days_overdue"], fu.loc["c2", "status"]) == (7, OVERDUE)
    # c3: its tier has no cadence
    assert pd.isna(fu.loc["c3", "follow_up_days"]) and pd.isna(fu.loc["c3", "next_contact"])
    assert fu.loc["c3", "last_contact"] == d("2026-09-26")
    assert (fu.loc["c3", "days_overdue"], fu.loc["c3", "status"]) == (0, NO_CADENCE)
    # c4: contacted 2 days ago, weekly → due in 5 days
    assert fu.loc["c4", "next_contact"] == d("2026-10-05")
    assert (fu.loc["c4", "days_overdue"], fu.loc["c4", "status"]) == (0, DUE_SOON)
    # c5: contacted 30 days ago, yearly → due 2027-08-31
    assert fu.loc["c5", "next_contact"] == d("2027-08-31")
    assert fu.loc["c5", "status"] == ON_SCHEDULE
    # c6: contacted today, daily → due tomorrow
    assert fu.loc["c6", "next_contact"] == d("2026-10-01")
    assert fu.loc["c6", "status"] == DUE_SOON


def test_columns_managers_and_types():
    g = grading()
    fu = follow_ups(g, pd.Timestamp("2026-09-30 17:45"))   # a time of day counts as that day
    assert list(fu.columns) == ["customer_id", "name", "tier", "tier_label", "account_manager", "follow_up_days",
                                "last_contact", "next_contact", "days_overdue", "status"]
    assert fu.index.equals(g.index)
    assert list(fu["account_manager"].astype(str)) == ["Li", "Li", "Wang", NO_MANAGER, NO_MANAGER, "Li"]
    assert str(fu["follow_up_days"].dtype) == "Int64"
    assert fu["days_overdue"].dtype == np.int64
    assert list(fu["status"].cat.categories) == list(STATUSES)
    assert fu.loc[0, "next_contact"] == pd.Timestamp("2026-09-27")
    # without the account_manager column, every row is (no manager); a group column is kept
    fu2 = follow_ups(g.drop(columns=["account_manager"]).assign(group="line 1"), AS_OF)
    assert set(fu2["account_manager"].astype(str)) == {NO_MANAGER}
    assert "group" in fu2 and list(fu2.columns)[:2] == ["customer_id", "group"]


def test_missing_days_since_contact_is_a_clear_error():
    with pytest.raises(SegmentError, match="no days_since_contact column") as err:
        follow_ups(grading().drop(columns=["days_since_contact"]), AS_OF)
    assert "join the snapshot's days_since_contact" in str(err.value)
    with pytest.raises(SegmentError, match="no follow_up_days"):
        follow_ups(grading().drop(columns=["follow_up_days"]), AS_OF)
    with pytest.raises(SegmentError, match="as_of is missing"):
        follow_ups(grading(), None)
    with pytest.raises(SegmentError, match="days_since_contact must be numbers"):
        follow_ups(grading(days_since_contact=["ten"] * 6), AS_OF)


def test_overdue_by_manager_counts():
    by = overdue_by_manager(follow_ups(grading(), AS_OF))
    assert list(by.columns) == ["account_manager", "customers", "overdue", "share_overdue", "most_overdue_days"]
    rows = {r.account_manager: r for r in by.itertuples()}
    # Li: c1 (3 days overdue), c2 (never contacted, weekly: 7 days overdue), c6 (due soon)
    assert (rows["Li"].customers, rows["Li"].overdue, rows["Li"].most_overdue_days) == (3, 2, 7)
    assert rows["Li"].share_overdue == pytest.approx(0.6667)
    # (no manager): c4 due soon, c5 on schedule; Wang: c3 no cadence
    assert (rows[NO_MANAGER].customers, rows[NO_MANAGER].overdue, rows[NO_MANAGER].most_overdue_days) == (2, 0, 0)
    assert (rows["Wang"].customers, rows["Wang"].overdue) == (1, 0)
    assert by["account_manager"].iloc[0] == "Li"                      # most overdue first
    assert list(by["overdue"]) == sorted(by["overdue"], reverse=True)


def test_sheet_titles_are_excel_safe_and_unique():
    assert len(SHARED_31) == 31 and len(LONG_A) == len(LONG_B) == 40
    titles = sheet_titles(["a/b", "x[1]:*?\\", LONG_A, LONG_B, "Summary", "li", "LI", "'quoted'", "", "History"])
    assert titles[0] == "a_b"
    assert titles[1] == "x_1_____"
    assert titles[2] == LONG_A[:31] and len(titles[3]) <= 31 and titles[3] != titles[2]
    assert titles[4] != "Summary" and titles[4].casefold() != "summary"
    assert titles[5] == "li" and titles[6].casefold() != "li"
    assert titles[7] == "quoted"
    assert titles[8] == "(blank)"
    assert titles[9].casefold() != "history"
    assert all(0 < len(t) <= 31 and not set(t) & set("[]:*?/\\") for t in titles)
    assert len({t.casefold() for t in titles} | {"summary"}) == len(titles) + 1


def test_workbook_sheets_and_rows(tmp_path):
    g = grading(account_manager=["Li", "Li", "Wang/Sales", LONG_A, LONG_B, "Li"])
    fu = follow_ups(g, AS_OF)
    path = write_follow_up_sheets(fu, tmp_path / "out" / "follow_ups.xlsx")
    assert path == tmp_path / "out" / "follow_ups.xlsx"
    wb = openpyxl.load_workbook(path)
    names = wb.sheetnames
    assert names[0] == "summary"
    assert "Wang_Sales" in names and "Li" in names
    assert SHARED_31 in names and SHARED_31[:27] + " (2)" in names
    assert len(names) == 5 and len({n.casefold() for n in names}) == 5
    assert all(len(n) <= 31 for n in names)

    summary = list(wb["summary"].values)
    assert summary[0] == ("account manager", "customers", "overdue", "share overdue", "most overdue days", "sheet")
    by_name = {r[0]: r for r in summary[1:]}
    assert by_name["Li"][1:5] == (3, 2, pytest.approx(0.6667), 7)   # most overdue: c2, never contacted (7)
    assert {r[5] for r in summary[1:]} == set(names[1:])               # each manager's sheet is named
    assert wb["summary"]["D2"].number_format == "0.0%"

    li = list(wb["Li"].values)
    assert li[0] == ("customer", "name", "tier label", "last contact", "next contact", "days overdue", "status")
    # most overdue first: c2 (never contacted, weekly: due 2026-09-23, 7 days), c1 (3 days), then c6 (due tomorrow)
    assert [r[0] for r in li[1:]] == ["c2", "c1", "c6"]
    assert li[1][3] is None and li[1][4] == dt.datetime(2026, 9, 23) and li[1][5:] == (7, OVERDUE)
    assert li[2] == ("c1", "Acme", "B weekly", dt.datetime(2026, 9, 20), dt.datetime(2026, 9, 27), 3, OVERDUE)
    assert li[3][6] == DUE_SOON
    # dates as dates: c1's last contact (D3) and c2's next contact (E2); c2 was never contacted, so D2 is empty
    assert wb["Li"]["D3"].number_format == "yyyy-mm-dd" and wb["Li"]["E2"].number_format == "yyyy-mm-dd"
    # Wang's only customer has no cadence: the sheet has just its header; the formula-like name stays text
    assert list(wb["Wang_Sales"].values) == [li[0]]
    long_sheets = [by_name[m][5] for m in (LONG_A, LONG_B)]
    a, b = (list(wb[s].values) for s in long_sheets)
    assert [r[0] for r in a[1:]] == ["c4"] and [r[0] for r in b[1:]] == []   # c5 (yearly) is on schedule


def test_formula_like_text_stays_text(tmp_path):
    names = ["=HYPERLINK(\"http://x\")", "B\x07eta", "C", "D", "E", "F"]            # a formula, a control character
    fu = follow_ups(grading(name=names, account_manager=["=cmd"] * 3 + ["", None, "=cmd"]), AS_OF)
    wb = openpyxl.load_workbook(write_follow_up_sheets(fu, tmp_path / "f.xlsx"))
    assert "=cmd" in wb.sheetnames
    ws = wb["=cmd"]
    # most overdue first: c2 (never contacted: 7 days), c1 (3 days), c6 (due soon)
    assert [r[:2] for r in ws.iter_rows(min_row=2, values_only=True)] == [
        ("c2", "Beta"), ("c1", "=HYPERLINK(\"http://x\")"), ("c6", "F")]
    assert ws["B3"].value == "=HYPERLINK(\"http://x\")" and ws["B3"].data_type == "s"   # c1's name: text
    assert wb["summary"]["A2"].value == "=cmd" and wb["summary"]["A2"].data_type == "s"


def test_a_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    from openpyxl.workbook.workbook import Workbook

    fu = follow_ups(grading(), AS_OF)

    def broken(self, filename):
        with open(filename, "wb") as f:
            f.write(b"PK half a workbook")
        raise OSError("disk full")

    monkeypatch.setattr(Workbook, "save", broken)
    target = tmp_path / "follow_ups.xlsx"
    with pytest.raises(OSError, match="disk full"):
        write_follow_up_sheets(fu, target)
    assert list(tmp_path.iterdir()) == []                              # no file, no temporary left
    target.write_bytes(b"the old workbook")
    with pytest.raises(OSError):
        write_follow_up_sheets(fu, target)
    assert target.read_bytes() == b"the old workbook"
    assert [p.name for p in tmp_path.iterdir()] == ["follow_ups.xlsx"]


def test_workbook_needs_an_xlsx_name_and_a_follow_up_frame(tmp_path):
    fu = follow_ups(grading(), AS_OF)
    with pytest.raises(SegmentError, match=r"\.xlsx file"):
        write_follow_up_sheets(fu, tmp_path / "f.csv")
    with pytest.raises(SegmentError, match="pass the frame follow_ups"):
        write_follow_up_sheets(grading(), tmp_path / "f.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_a_million_rows_in_well_under_a_second():
    n = 1_000_000
    rng = np.random.default_rng(16)
    big = pd.DataFrame({
        "customer_id": pd.array([f"C{i:07d}" for i in range(n)], dtype="str"),
        "tier": pd.Categorical.from_codes(rng.integers(0, 5, n), list("ABCDE")),
        "tier_label": pd.Categorical.from_codes(rng.integers(0, 5, n), list("ABCDE")),
        "follow_up_days": pd.array([1, 7, 15, 30, None], dtype="Int64")[rng.integers(0, 5, n)],
        "days_since_contact": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 400, n).astype(float)),
        "account_manager": np.array([f"m{i}" for i in range(300)] + [None], dtype=object)[rng.integers(0, 301, n)],
    })
    follow_ups(big.head(10), AS_OF)                                    # imports warm
    t = time.perf_counter()
    fu = follow_ups(big, AS_OF)
    took = time.perf_counter() - t
    assert len(fu) == n
    assert took < 1.0, f"{took:.2f} s"
    # spot-check against the rule, row by row, on a sample
    day = pd.Timestamp(AS_OF)
    for i in rng.integers(0, n, 200):
        r, f = big.iloc[i], fu.iloc[i]
        if pd.isna(r.follow_up_days):
            assert f.status == NO_CADENCE
            continue
        # never contacted: a whole cadence overdue (due as_of − cadence); overdue only when due strictly before as_of
        cadence = pd.Timedelta(days=int(r.follow_up_days))
        due = day - cadence if pd.isna(r.days_since_contact) else day - pd.Timedelta(days=r.days_since_contact) \
            + cadence
        assert f.next_contact == due
        assert f.days_overdue == max((day - due).days, 0)
        if pd.isna(r.days_since_contact):
            assert f.days_overdue == int(r.follow_up_days) and f.status == OVERDUE
        assert f.status == (OVERDUE if due < day else DUE_SOON if (due - day).days <= 7 else ON_SCHEDULE)
    assert overdue_by_manager(fu)["customers"].sum() == n


def test_on_a_grading_from_the_engine():
    import segment

    snap = pd.DataFrame({
        "customer_id": ["c1", "c2", "c3", "c4"], "as_of": pd.Timestamp(AS_OF), "status": "active",
        "open_opportunities": [1.0, 1.0, 0.0, 0.0], "days_to_close": [10.0, 60.0, np.nan, np.nan],
        "consultations_6m": [0.0, 0.0, 2.0, 0.0],
        "days_since_contact": [2.0, 3.0, 40.0, np.nan], "account_manager": ["Li", "Li", "Wang", None]})
    g = segment.grade(snap, "s6_time_to_close")
    with pytest.raises(SegmentError, match="days_since_contact"):
        follow_ups(g, g.as_of)                                        # the grading alone has no contact data
    frame = g.frame.join(snap.set_index("customer_id")[["days_since_contact", "account_manager"]], on="customer_id")
    fu = follow_ups(frame, g.as_of).set_index("customer_id")
    assert list(fu["tier"]) == ["A", "B", "D", "E"]
    assert list(fu["follow_up_days"]) == [1, 7, 30, 365]
    # c1: 2 days ago, daily → 1 day overdue; c2: 3 days ago, weekly → due in 4 days; c3: 40 days ago, monthly
    # → 10 days overdue; c4: never contacted, yearly → a whole cadence (365 days) overdue
    assert list(fu["status"]) == [OVERDUE, DUE_SOON, OVERDUE, OVERDUE]
    assert list(fu["days_overdue"]) == [1, 0, 10, 365]
    by = overdue_by_manager(fu.reset_index())
    # one overdue each, so the longest overdue first: (no manager) 365, Wang 10, Li 1
    assert list(by["account_manager"]) == [NO_MANAGER, "Wang", "Li"]
