"""History in the rules (issue 16, deliverable 1): the published gradings read back as previous tier,
previous score, periods in that tier, score change and best tier ever — by hand on a small reports
folder — and the seed rules that use them (S4's growth promotion against the previous level, S9's D)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from segment.grading.engine import grade
from segment.grading.published import Published, history_columns, score_falls, score_history
from segment.grading.scheme import load_scheme
from segment.errors import MissingOptional

S1 = load_scheme("s1_four_tier")


def _publish(reports, period, rows, scheme="s1_four_tier", data="/srv/data.yaml", approved=None):
    folder = reports / period
    folder.mkdir(parents=True)
    pd.DataFrame(rows, columns=["customer_id", "tier", "score"]).to_parquet(folder / "grading.parquet")
    if approved is not None:
        pd.DataFrame(approved, columns=["customer_id", "tier", "score"]).to_parquet(folder / "grading.approved.parquet")
    (folder / "manifest.json").write_text(json.dumps({"scheme": scheme, "data": data}))


@pytest.fixture
def reports(tmp_path):
    r = tmp_path / "reports"
    # A: ordinary, ordinary, important (approved: a reviewer's move), important → 2 periods in important
    # B: core, then ordinary twice → best tier core; C: only in 2026Q1 (a gap in 2026Q2); D: never
    _publish(r, "2025Q4", [("A", "ordinary", 50.0), ("B", "core", 90.0)])
    _publish(r, "2026Q1", [("A", "ordinary", 55.0), ("B", "ordinary", 60.0), ("C", "potential", 30.0)])
    _publish(r, "2026Q2", [("A", "ordinary", 58.0), ("B", "ordinary", 52.0)],
             approved=[("A", "important", 58.0), ("B", "ordinary", 52.0)])
    _publish(r, "2026Q3", [("A", "important", 70.0), ("B", "ordinary", 40.0)])
    _publish(r, "2026-09", [("A", "core", 99.0)])                       # a month: not S1's cadence
    _publish(r, "2025Q3", [("A", "core", 99.0)], scheme="s4_key_account_levels")  # another scheme
    _publish(r, "2025Q2", [("A", "core", 99.0)], data="/srv/other.yaml")          # another data config
    return r


def test_history_by_hand(reports):
    snap = pd.DataFrame({"customer_id": ["A", "B", "C", "D"]})
    cols, warn = history_columns(snap, S1, "2026-12-31", Published(reports, "/srv/data.yaml"))
    assert warn == ""
    h = cols.set_index(snap["customer_id"])
    assert h["previous_tier"].tolist()[:2] == ["important", "ordinary"] and h["previous_tier"].isna().tolist()[2:] == [True, True]
    assert h.loc["A", "previous_score"] == 70.0 and h.loc["B", "previous_score"] == 40.0
    # A: important in 2026Q3 and (approved) 2026Q2 → 2; B: ordinary in 2026Q3, Q2, Q1 → 3; not graded → 0
    assert h["tier_periods"].tolist() == [2, 3, 0, 0]
    assert h.loc["A", "score_change"] == 70.0 - 58.0 and h.loc["B", "score_change"] == 40.0 - 52.0
    assert np.isnan(h.loc["C", "score_change"])
    assert h["best_tier"].tolist()[:3] == ["important", "core", "potential"] and pd.isna(h.loc["D", "best_tier"])


def test_history_sees_only_periods_before_the_date_and_a_gap_ends_a_run(reports):
    snap = pd.DataFrame({"customer_id": ["A", "B"]})
    h, _ = history_columns(snap, S1, "2026-06-30", Published(reports, "/srv/data.yaml"))   # 2026Q2's own date
    assert h["previous_tier"].tolist() == ["ordinary", "ordinary"] and h["tier_periods"].tolist() == [2, 1]
    (reports / "2026Q1" / "grading.parquet").unlink()   # 2026Q1 no longer published: 2025Q4 is not "just before"
    h, _ = history_columns(snap, S1, "2026-12-31", Published(reports, "/srv/data.yaml"))
    assert h["tier_periods"].tolist() == [2, 2] and h["score_change"].tolist() == [12.0, -12.0]


def test_without_published_gradings_history_is_missing_with_a_warning_that_says_what_to_do(tmp_path):
    snap = pd.DataFrame({"customer_id": ["A"]})
    h, warn = history_columns(snap, load_scheme("s9_property_buyers"), "2026-09-30", Published(tmp_path, "/srv/d.yaml"))
    assert h["previous_tier"].isna().all() and h["tier_periods"].tolist() == [0]
    assert f"it reads best_tier from the gradings it published, and none was published in {tmp_path} before " \
           "2026-09-30: it is missing for every customer" in warn
    assert "make report PERIOD=… SCHEME=s9_property_buyers" in warn


S4 = load_scheme("s4_key_account_levels")


@pytest.mark.parametrize("amount, previous, growth, tier", [
    (3_000_000, "silver", 0.30, "gold"),       # the seed: a silver customer growing 30% becomes gold
    (3_000_000, "copper", 0.30, "silver"),     # one level above the previous level, not above this one
    (6_000_000, "silver", 0.30, "gold"),       # the amount alone gives gold: it stands
    (6_000_000, "gold", 0.30, "diamond"),
    (3_000_000, None, 0.30, "gold"),           # nothing published: one level above this period's
    (3_000_000, "silver", 0.10, "silver"),     # growth ≤ 20%: no promotion
])
def test_s4_growth_promotes_against_the_previous_level(amount, previous, growth, tier):
    snap = pd.DataFrame([dict(customer_id="C1", annual_amount=amount, tenure_years=6, amount_growth=growth,
                              market_share=np.nan, referrals_12m=0, strong_brand=False)])
    snap["previous_tier"] = pd.array([previous], dtype="string")
    assert grade(snap, S4, as_of="2026-09-30").frame["tier"].astype(str).tolist() == [tier]


S9 = load_scheme("s9_property_buyers")


@pytest.mark.parametrize("best, visits, tier", [
    ("B", 0, "D"),       # paid a deposit, was B, silent for a year: gave up
    (None, 0, "B"),      # no published history: the deposit still makes a strong B
    ("B", 1, "B"),       # visited this year: not given up
])
def test_s9_d_is_was_a_b_or_c_and_gave_up(best, visits, tier):
    snap = pd.DataFrame([dict(customer_id="C1", latest_stage="A03", won_12m=0, complaints_6m=0, visits_12m=visits,
                              consultations_6m=0, open_opportunities=0, deposit_paid=50_000.0, registered=0.0,
                              price_agreed=np.nan, visit_minutes_90d=np.nan, dm_response=np.nan)])
    snap["best_tier"] = pd.array([best], dtype="string")
    g = grade(snap, S9, as_of="2026-09-30").frame
    assert g["tier"].astype(str).tolist() == [tier]
    assert ("gave_up" in str(g["overrides"].iloc[0])) == (tier == "D")


def test_a_bare_snapshot_grades_with_history_missing_and_a_warning():
    snap = pd.DataFrame([dict(customer_id="C1", annual_amount=3_000_000, tenure_years=6, amount_growth=0.3,
                              market_share=np.nan, referrals_12m=0, strong_brand=False)])
    with pytest.warns(MissingOptional, match="which a grading of a bare snapshot does not see"):
        g = grade(snap, S4, as_of="2026-09-30")
    assert g.frame["tier"].astype(str).tolist() == ["gold"]


def test_score_history_and_the_largest_falls(reports, tmp_path):
    h = score_history(S1, ["B"], data="/srv/data.yaml", reports_dir=reports)
    assert h["period"].tolist() == ["2025Q4", "2026Q1", "2026Q2", "2026Q3"] and h["score"].tolist() == [90, 60, 52, 40]
    assert h["tier_label"].tolist()[0] == "核心客户"
    now = pd.DataFrame({"customer_id": ["A", "B"], "score": [71.0, 35.0]})
    f = score_falls(now, S1, "2026-12-31", Published(reports, "/srv/data.yaml"), periods=3)
    assert f.columns.tolist() == ["customer_id", "2026Q1", "2026Q2", "2026Q3", "score now", "change"]
    assert f["customer_id"].tolist() == ["B"] and f["change"].tolist() == [35.0 - 60.0]
