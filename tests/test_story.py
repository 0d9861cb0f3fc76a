"""The two-year story (issue 16's "done means"): eight quarters of the demo, two reviews whose decisions
persist and expire, an approval refused then given, a spot check, the audit log verified — run through
the command line by ``tests/story.py`` (``make story``) and checked here, report by report."""
from __future__ import annotations

import re

import openpyxl
import pandas as pd
import pytest

from segment.review.audit import audit_events, verify_audit

from .story import QUARTERS, run_story

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def story(demo, tmp_path_factory):
    return run_story(tmp_path_factory.mktemp("story") / "reports", demo)


def _section_rows(story, quarter: str) -> dict[str, str]:
    """customer → status of each decision the quarter's grading report lists (from its HTML)."""
    page = (story.out / quarter / "grading.html").read_text(encoding="utf-8")
    section = page.split('id="Reviewer-decisions"')[1]
    out = {}
    for title, status in (("Decisions in force", "held"), ("Decisions expired", "expired"),
                          ("Decisions released", "released")):
        if title in section:
            part = section.split(title)[1].split("</table>")[0]
            for cid in re.findall(r"<td>(C\d+)</td>", part):
                out[cid] = status
    return out


def banner(story, quarter: str, nb: str = "grading") -> str:
    page = (story.out / quarter / f"{nb}.html").read_text(encoding="utf-8")
    m = re.search(r'<div class="approval approval-(\w+)" role="status">([^<]*)</div>', page)
    return f"{m.group(1)}: {m.group(2)}" if m else ""


def test_eight_quarters_each_with_its_reports_and_state(story):
    assert QUARTERS == ["2024Q4", "2025Q1", "2025Q2", "2025Q3", "2025Q4", "2026Q1", "2026Q2", "2026Q3"]
    for q in QUARTERS:
        assert all((story.out / q / f"{nb}.html").is_file() for nb in ("grading", "review", "calibration")), q
        assert (story.out / q / "follow_ups.xlsx").is_file(), q
    assert banner(story, "2025Q3").startswith("approved: Approved by Chen Jie (leadership) on ")
    assert banner(story, "2026Q1", "review").startswith("approved: Approved by Chen Jie")
    assert banner(story, "2025Q4") == "draft: DRAFT — not approved: no sign-off yet (waits for sales_head and service_head)"
    index = (story.out / "index.html").read_text(encoding="utf-8")
    assert index.count("DRAFT — not approved") == 6 and index.count("Approved by Chen Jie") == 2
    assert "spot-checked" in index and "9 of 10 right" in index


def test_the_approval_was_refused_then_given_and_the_log_holds(story):
    log = story.out / "audit_log.csv"
    ev = audit_events(log, period="2025Q3").sort_values("line")
    steps = [a for a in ev["action"] if a != "decision"]
    assert steps == ["signoff", "signoff", "rejected", "signoff", "approved"]
    assert ev.loc[ev["action"] == "rejected", "reason"].tolist() == ["the complaint demotion needs the complaint records attached"]
    assert any("cannot be approved yet" in line and "waiting: service_head" in line for line in story.log)
    check = verify_audit(log)
    assert check.ok and "the chain holds" in check.summary()


def test_decisions_persist_and_expire(story):
    # 2025Q4: both 2025Q3 decisions hold (the up one until 2025-12-31, the down one until 2026Q2's end)
    assert _section_rows(story, "2025Q4") == {story.up: "held", story.down: "held"}
    g4 = pd.read_parquet(story.out / "2025Q4" / "grading.parquet").set_index("customer_id")
    assert g4.loc[story.up, "tier"] == "important" and g4.loc[story.up, "computed_tier"] == "ordinary"
    assert g4.loc[story.down, "tier"] == "ordinary" and g4.loc[story.down, "decision_expires"] == "2026-06-30"
    # a held decision is not a move: the movers of 2025Q4 leave both out
    page = (story.out / "2025Q4" / "grading.html").read_text(encoding="utf-8")
    movers = page.split('id="Who-moved-since-the-previous-period,-and-why"')[1].split('id="Scores-falling')[0]
    assert story.up not in movers and story.down not in movers
    # 2026Q1: the default expiry has passed for the up decision; the down one still holds
    assert _section_rows(story, "2026Q1") == {story.down: "held", story.up: "expired"}
    g1 = pd.read_parquet(story.out / "2026Q1" / "grading.parquet").set_index("customer_id")
    assert g1.loc[story.up, "tier"] == "ordinary" and g1.loc[story.down, "tier"] == "ordinary"
    # 2026Q2: the down decision and the second review's decision hold; 2026Q3: both expired
    assert _section_rows(story, "2026Q2") == {story.down: "held", story.second: "held"}
    assert _section_rows(story, "2026Q3") == {story.down: "expired", story.second: "expired"}
    g3 = pd.read_parquet(story.out / "2026Q3" / "grading.parquet").set_index("customer_id")
    assert (g3.loc[[story.down, story.second], "tier"] == g3.loc[[story.down, story.second], "computed_tier"]).all()


def test_follow_up_lists_and_the_score_trend(story):
    book = openpyxl.load_workbook(story.out / "2026Q3" / "follow_ups.xlsx", read_only=True)
    assert book.sheetnames[0] == "summary" and len(book.sheetnames) >= 3
    page = (story.out / "2026Q3" / "grading.html").read_text(encoding="utf-8")
    assert "Follow-ups overdue, by account manager" in page and "follow_ups.xlsx" in page
    falls = page.split('id="Scores-falling-over-the-last-periods"')[1][:6000]
    assert "largest score falls since 2025Q4" in falls
