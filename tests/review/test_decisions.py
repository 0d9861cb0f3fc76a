"""Decisions that persist (issue 16, deliverable 2) and sign-offs, approval and the spot check
(deliverables 3 and 6), on small hand-made gradings: every status and expiry computed by hand."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from segment.errors import SegmentError
from segment.grading.scheme import load_scheme
from segment.periods import parse_period
from segment.review.apply import apply_review
from segment.review.approval import apply_spot_check, decide, period_status, sign_off, spot_check_sample, spot_checks
from segment.review.audit import audit_events, verify_audit
from segment.review.decisions import carry_decisions, default_expiry
from segment.review.params import ReviewParams

S1 = load_scheme("s1_four_tier")
Q2, Q3 = parse_period("2026Q2"), parse_period("2026Q3")


def grading(rows) -> pd.DataFrame:
    """customer_id, tier (and whatever else a row gives) as a grading frame."""
    return pd.DataFrame(rows).assign(tier_label=lambda d: d["tier"])


def test_the_default_expiry_is_the_next_regular_review():
    assert default_expiry(Q2) == pd.Timestamp("2026-09-30")
    assert default_expiry(parse_period("2026-09")) == pd.Timestamp("2026-10-31")


@pytest.fixture
def carried():
    # 2026Q2 before its review, then approved: A and C moved up (default expiry), B moved down until
    # 2026-12-31 (set on the sheet), D held from 2026Q1 and expiring 2026-06-30, E held from 2026Q1 and confirmed
    held = dict(decision_tier="important", decision_from="ordinary", decision_by="Li", decision_reason="old",
                decision_period="2026Q1", decision_expires="2026-06-30")
    computed = grading([{"customer_id": c, "tier": t} for c, t in
                        [("A", "ordinary"), ("B", "important"), ("C", "ordinary"), ("D", "important"), ("E", "important")]])
    approved = grading([
        dict(customer_id="A", tier="important", review_decision="changed", reviewed_by="Wang", review_reason="partner"),
        dict(customer_id="B", tier="ordinary", review_decision="changed", reviewed_by="Zhao", review_reason="complaints",
             review_expires="2026-12-31"),
        dict(customer_id="C", tier="important", review_decision="changed", reviewed_by="Wang", review_reason="growing"),
        dict(customer_id="D", tier="important", review_decision="not reviewed", **held),
        dict(customer_id="E", tier="important", review_decision="confirmed", reviewed_by="Zhao", **held),
    ]).fillna("")
    # 2026Q3 as the scheme computes it
    now = grading([{"customer_id": c, "tier": t} for c, t in
                   [("A", "ordinary"), ("B", "important"), ("C", "important"), ("D", "ordinary"), ("E", "ordinary"),
                    ("F", "core")]])
    return carry_decisions(now, approved, computed, Q2, Q3.end, S1)


def test_decisions_hold_expire_and_are_released_by_hand(carried):
    d = carried.decisions.set_index("customer_id")
    assert d["status"].to_dict() == {"A": "held", "B": "held", "E": "held", "D": "expired", "C": "released"}
    assert list(carried.decisions["status"]) == ["held", "held", "held", "expired", "released"]   # in force first
    assert d.loc["A", "expires"] == "2026-09-30" and "the default: until the next regular review" in d.loc["A", "why"]
    assert d.loc["B", "expires"] == "2026-12-31" and "set on the review sheet" in d.loc["B", "why"]
    assert d.loc["D", "why"].startswith("expired on 2026-06-30 (as decided); a reviewer renews a decision")
    assert d.loc["E", "expires"] == "2026-09-30" and d.loc["E", "reviewer"] == "Li (renewed by Zhao)"
    assert d.loc["C", "why"] == "the data now places the customer there or beyond"
    g = carried.frame.set_index("customer_id")
    assert g["tier"].to_dict() == {"A": "important", "B": "ordinary", "C": "important", "D": "ordinary",
                                   "E": "important", "F": "core"}
    assert g["computed_tier"].to_dict() == {"A": "ordinary", "B": "important", "C": "important", "D": "ordinary",
                                            "E": "ordinary", "F": "core"}
    assert g.loc["B", "decision_expires"] == "2026-12-31" and g.loc["B", "decision_period"] == "2026Q2"
    assert g.loc["B", "held_decision"] == "Zhao: important → ordinary (complaints); held until 2026-12-31"
    assert g.loc["F", "decision_tier"] == "" and g.loc["C", "held_decision"] == ""


def test_a_held_decision_carries_on_through_an_unreviewed_period_until_its_expiry(carried):
    now = grading([{"customer_id": c, "tier": t} for c, t in [("A", "ordinary"), ("B", "important"), ("E", "ordinary")]])
    q4 = carry_decisions(now, carried.frame, None, Q3, parse_period("2026Q4").end, S1)
    d = q4.decisions.set_index("customer_id")
    # A and E held until 2026-09-30: expired in 2026Q4; B until 2026-12-31: held in the grading of that day
    assert d["status"].to_dict() == {"B": "held", "A": "expired", "E": "expired"}
    assert q4.frame.set_index("customer_id")["tier"].to_dict() == {"A": "ordinary", "B": "ordinary", "E": "ordinary"}


def test_a_customer_no_longer_graded_releases_its_decision(carried):
    q4 = carry_decisions(grading([{"customer_id": "Z", "tier": "core"}]), carried.frame, None, Q3,
                         parse_period("2026Q4").end, S1)
    assert set(q4.decisions["why"]) == {"no longer graded"}


# -- the sheet's expires column -------------------------------------------------------------------

@pytest.fixture
def folder(tmp_path):
    """reports/2026Q3 with a computed grading and its manifest, as `segment report` leaves it."""
    q = tmp_path / "reports" / "2026Q3"
    q.mkdir(parents=True)
    g = grading([{"customer_id": c, "tier": t, "score": s} for c, t, s in
                 [("A", "ordinary", 50.0), ("B", "important", 70.0), ("C", "potential", 20.0)]])
    g.to_parquet(q / "grading.parquet", index=False)
    (q / "manifest.json").write_text(json.dumps({"scheme": "s1_four_tier", "data": "/srv/d.yaml"}))
    return q


def sheet(folder, rows) -> object:
    path = folder / "review_sheet.csv"
    pd.DataFrame(rows, columns=["customer_id", "tier", "confirm", "new_tier", "reason", "reviewer", "expires"]) \
        .to_csv(path, index=False, encoding="utf-8-sig")
    return path


def apply(folder, path):
    return apply_review(path, folder / "grading.parquet", "s1_four_tier", folder / "grading.approved.parquet",
                        folder.parent / "audit_log.csv", when="2026-10-05T09:00:00Z", period="2026Q3")


def test_expires_on_the_sheet_is_kept_with_the_decision_and_logged_with_the_period(folder):
    path = sheet(folder, [("A", "ordinary", "no", "important", "partner", "Wang", "2027Q1"),
                          ("B", "important", "no", "ordinary", "complaints", "Zhao", "2027-06-30"),
                          ("C", "potential", "yes", "", "", "Zhao", "")])
    apply(folder, path)
    out = pd.read_parquet(folder / "grading.approved.parquet").set_index("customer_id")
    assert out["review_expires"].to_dict() == {"A": "2027-03-31", "B": "2027-06-30", "C": ""}
    ev = audit_events(folder.parent / "audit_log.csv")
    assert ev[["period", "scheme", "action", "actor", "customer_id"]].values.tolist() == [
        ["2026Q3", "s1_four_tier", "decision", "Wang", "A"], ["2026Q3", "s1_four_tier", "decision", "Zhao", "B"],
        ["2026Q3", "s1_four_tier", "decision", "Zhao", "C"]]


@pytest.mark.parametrize("row, words", [
    (("A", "ordinary", "no", "important", "partner", "Wang", "next year"),
     "row 2: expires 'next year' is not a date (2027-03-31) or a period (2027Q1, 2027-03, 2027H1, 2027)"),
    (("A", "ordinary", "no", "important", "partner", "Wang", "2026-09-30"),
     "row 2: expires '2026-09-30' is not after the end of 2026Q3 (2026-09-30)"),
    (("A", "ordinary", "", "", "", "", "2027Q1"),
     "row 2: expires is filled but confirm and new_tier are empty"),
    (("A", "ordinary", "yes", "", "", "Wang", "2027Q1"),
     "row 2: expires is filled on a confirmed tier no reviewer set"),
])
def test_a_bad_expiry_names_the_row_and_nothing_is_applied(folder, row, words):
    with pytest.raises(SegmentError, match="nothing was applied or logged") as e:
        apply(folder, sheet(folder, [row]))
    assert words in str(e.value)
    assert not (folder / "grading.approved.parquet").exists() and not (folder.parent / "audit_log.csv").exists()


# -- sign-offs, approval, spot check ----------------------------------------------------------------

PARAMS = ReviewParams()


def test_approval_needs_both_sign_offs_and_a_later_decision_voids_it(folder):
    with pytest.raises(SegmentError, match=r"--role 'ceo' does not sign off reviews; the roles are sales_head, "
                                           r"service_head"):
        sign_off(folder, "ceo", "X", PARAMS)
    assert period_status(folder, PARAMS).state == "draft"
    sign_off(folder, "sales_head", "Wang Li", PARAMS, when="2026-10-06T09:00:00Z")
    with pytest.raises(SegmentError, match=r"cannot be approved yet: DRAFT — not approved: the review is signed off by "
                                           r"sales_head \(Wang Li\) and waits for service_head.*waiting: service_head"):
        decide(folder, "Chen Jie", PARAMS)
    with pytest.raises(SegmentError, match="a rejection says why"):
        decide(folder, "Chen Jie", PARAMS, reject=True)
    sign_off(folder, "service_head", "Zhao Min", PARAMS, when="2026-10-06T10:00:00Z")
    assert period_status(folder, PARAMS).state == "signed_off"
    state = decide(folder, "Chen Jie", PARAMS, reject=True, reason="too many upgrades", when="2026-10-07T09:00:00Z")
    assert state.text() == "REJECTED by Chen Jie (leadership) on 2026-10-07: too many upgrades"
    state = decide(folder, "Chen Jie", PARAMS, when="2026-10-08T09:00:00Z")
    assert state.state == "approved" and state.text() == "Approved by Chen Jie (leadership) on 2026-10-08"
    # a reviewer's decision applied afterwards changes the grading: back to draft, saying why
    apply(folder, sheet(folder, [("A", "ordinary", "no", "important", "partner", "Wang", "")]))
    state = period_status(folder, PARAMS)
    assert state.text() == ("DRAFT — not approved: the approval by Chen Jie on 2026-10-08 was of an earlier version "
                            "of the grading, which has changed since; no sign-off yet (waits for sales_head and "
                            "service_head)")
    ev = audit_events(folder.parent / "audit_log.csv").sort_values("line")   # in the order written
    assert ev["action"].tolist() == ["signoff", "signoff", "rejected", "approved", "decision"]
    assert ev["role"].tolist()[:4] == ["sales_head", "service_head", "leadership", "leadership"]
    assert verify_audit(folder.parent / "audit_log.csv").ok


def test_the_spot_check_draws_a_seeded_sample_and_logs_each_outcome(folder):
    path = spot_check_sample(folder, PARAMS, size=2)
    first = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(first) == 2 and list(first.columns)[-3:] == ["result", "note", "checker"]
    path.unlink()
    assert pd.read_csv(spot_check_sample(folder, PARAMS, size=2), dtype=str, keep_default_na=False,
                       encoding="utf-8-sig")["customer_id"].tolist() == first["customer_id"].tolist()
    s = first.assign(result=["ok", "wrong"], note=["", ""], checker=["Sun Yu", ""])
    s.to_csv(path, index=False, encoding="utf-8-sig")
    with pytest.raises(SegmentError, match=r"2 problem\(s\); nothing was logged:\n  row 3: result is wrong but note is "
                                           r"empty; write what is wrong\n  row 3: checker is empty"):
        apply_spot_check(path, folder)
    s.loc[1, ["note", "checker"]] = ["closed its account", "Sun Yu"]
    s.to_csv(path, index=False, encoding="utf-8-sig")
    assert apply_spot_check(path, folder) == {"checked": 2, "ok": 1, "wrong": 1}
    with pytest.raises(SegmentError, match="already holds results"):
        spot_check_sample(folder, PARAMS)
    n = spot_checks(folder.parent / "audit_log.csv", "2026Q3")
    assert (n["checked"], n["ok"], n["wrong"]) == (2, 1, 1)
    ev = audit_events(folder.parent / "audit_log.csv", actions=["spot_check"])
    assert ev["reason"].tolist() == ["ok", "wrong: closed its account"]


def test_the_next_review_re_checks_every_held_decision(carried):
    """A held tier is on the next regular review's sheet (reason "held decision (until …)"), whatever the
    sample draws, so that the reviewers can renew it by confirming it."""
    from segment.review.select import select_for_review

    g = carried.frame.assign(score=50.0, tier_rank=carried.frame["tier"].map({t.id: i for i, t in enumerate(S1.tiers)}))
    sel = select_for_review(g, S1, ReviewParams(), salt="2026Q3")
    why = sel.frame.set_index("customer_id")["why"]
    assert {c for c in why.index if "held decision" in why[c]} == {"A", "B", "E"}
    assert "held decision (until 2026-12-31)" in why["B"] and "held decision (until 2026-09-30)" in why["A"]
    assert sel.counts().loc["held decision", "total"] == 3
