"""The seed systems as schemes, checked against each seed's own numbers (SEEDS.md S2–S10, S12, S13),
plus the properties every scheme must have. S1 is in test_grading.py."""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from segment.cli import main
from segment.errors import MissingInputs, SegmentError
from segment.grading.designations import apply_designations
from segment.grading.engine import grade, indicator_points
from segment.data.tables import Tables
from segment.pipeline import grade_snapshot
from segment.grading.scheme import SCHEMES_DIR, Scheme, load_scheme

from ..conftest import ROOT, write

SCHEME_IDS = sorted(p.stem for p in (ROOT / SCHEMES_DIR).glob("*.yaml"))


def frame(rows: list[dict], **common) -> pd.DataFrame:
    return pd.DataFrame([{"customer_id": f"C{i}", **common, **r} for i, r in enumerate(rows)])


def test_ten_seed_schemes_ship_with_a_header_citing_seeds():
    seeds = [s for s in SCHEME_IDS if s.startswith("s")]
    # S1–S10, S12, S13 (S11 lists known problems, not a system)
    assert sorted(s.split("_")[0] for s in seeds) == sorted([f"s{i}" for i in range(1, 11)] + ["s12", "s13"])
    for sid in SCHEME_IDS:
        text = (ROOT / SCHEMES_DIR / f"{sid}.yaml").read_text(encoding="utf-8")
        assert text.startswith("# ") and "SEEDS.md §" in text.splitlines()[0] or "SEEDS.md" in text[:600]
        assert "what was chosen" in text or "Choices:" in text, sid
        assert load_scheme(sid).id == sid


# ---------------------------------------------------------------- S2

S2 = load_scheme("s2_rfm_lifecycle")


@pytest.mark.parametrize("recency, per_quarter, amount, total, tier, growth", [
    (10, 5, 600_000, 15, "core", 0.0),        # 5 + 5 + 5, mature
    (10, 5, 200_000, 13, "core", 0.0),        # 5 + 5 + 3, mature
    (10, 5, 50_000, 11, "potential", 0.25),   # 5 + 5 + 1, growing
    (60, 2, 200_000, 9, "potential", 0.25),   # 3 + 3 + 3, growing
    (60, 2, 50_000, 7, "general", 0.0),       # 3 + 3 + 1, mature
    (150, 0, 200_000, 5, "general", 0.0),     # 1 + 1 + 3, mature (bought 150 days ago: not lost)
    (200, 0, 0, 3, "churn_risk", 0.0),        # 1 + 1 + 1
    (None, 0, 0, 3, "churn_risk", 0.0),       # never bought
])
def test_s2_rfm_totals_3_to_15_and_four_tiers(recency, per_quarter, amount, total, tier, growth):
    f = frame([dict(recency_days=recency, orders_90d=per_quarter, annual_amount=amount,
                    tenure_years=3.0, amount_growth=growth)])
    g = grade(f, S2).frame.iloc[0]
    assert g["score"] == pytest.approx(total) and g["tier"] == tier


def test_s2_lifecycle_axis():
    f = frame([dict(recency_days=400, tenure_years=3, amount_growth=0.0),
               dict(recency_days=10, tenure_years=0.5, amount_growth=np.nan),
               dict(recency_days=10, tenure_years=3, amount_growth=-0.4),
               dict(recency_days=10, tenure_years=3, amount_growth=0.25),
               dict(recency_days=10, tenure_years=3, amount_growth=0.05)], orders_90d=1, annual_amount=1)
    assert grade(f, S2).frame["lifecycle"].tolist() == ["lost", "new", "declining", "growing", "mature"]


# ---------------------------------------------------------------- S3

S3 = load_scheme("s3_relationship_score")


def test_s3_weights_and_cutoffs():
    assert S3.dimensions["relationship"].indicators == {"interaction": 0.20, "depth": 0.30, "satisfaction": 0.25,
                                                        "referral": 0.15, "growth": 0.10}
    assert [t.min_score for t in S3.tiers] == [4.5, 3.5, 2.5, None]


S3_BASE = dict(days_since_contact=10, contacts_per_month=5, contacts_12m=60, visits_12m=2, strategic=True,
               buys_core_product=True, tenure_years=3, orders_12m=10, orders_total=30, complaints_12m=0,
               praise_12m=1, satisfaction_latest=9, referrals_12m=2, nps_latest=100, open_opportunities=1,
               consultations_6m=1, amount_growth=0.3)


@pytest.mark.parametrize("changes, points, score, tier", [
    ({}, (5, 5, 5, 5, 5), 5.0, "high_potential"),
    # depth 3 (no strategic, no core), referral 3: 0.2·5 + 0.3·3 + 0.25·5 + 0.15·3 + 0.1·5 = 4.1
    (dict(strategic=False, buys_core_product=False, referrals_12m=1), (5, 3, 5, 3, 5), 4.1, "stable"),
    # interaction 3, depth 3, satisfaction 3, referral 1, growth 3 → 0.6 + 0.9 + 0.75 + 0.15 + 0.3 = 2.7
    (dict(contacts_per_month=1.5, visits_12m=0, strategic=False, buys_core_product=False, praise_12m=0,
          satisfaction_latest=8, referrals_12m=0, nps_latest=0, open_opportunities=0), (3, 3, 3, 1, 3), 2.7, "watch"),
    # no contact in the quarter, one-off buyer, 2 complaints, refuses, nothing new → 1.0
    (dict(days_since_contact=200, strategic=False, buys_core_product=False, tenure_years=0.2, orders_12m=1,
          orders_total=1, complaints_12m=2, referrals_12m=0, nps_latest=-100, open_opportunities=0,
          consultations_6m=0, amount_growth=-0.5), (1, 1, 1, 1, 1), 1.0, "risk"),
])
def test_s3_rubrics_and_tiers(changes, points, score, tier):
    g = grade(frame([{**S3_BASE, **changes}]), S3).frame.iloc[0]
    got = tuple(g[f"pts__{i}"] for i in ("interaction", "depth", "satisfaction", "referral", "growth"))
    assert got == points
    assert g["score"] == pytest.approx(score) and g["tier"] == tier


# ---------------------------------------------------------------- S4

S4 = load_scheme("s4_key_account_levels")
S4_BASE = dict(amount_growth=0.0, market_share=np.nan, referrals_12m=0)


def test_s4_four_year_customer_with_30pct_growth_goes_silver_to_gold():
    g = grade(frame([dict(annual_amount=3_000_000, tenure_years=4, **{**S4_BASE, "amount_growth": 0.30})]),
              S4).frame.iloc[0]
    assert g["raw_tier"] == "silver" and g["tier"] == "gold"
    assert g["overrides"].startswith("growth_over_20pct: silver → gold")


def test_s4_two_year_diamond_sized_customer_is_held_back_by_the_years_gates():
    g = grade(frame([dict(annual_amount=12_000_000, tenure_years=2, **S4_BASE)]), S4).frame.iloc[0]
    assert g["raw_tier"] == "diamond" and g["gates_failed"] == "diamond;gold" and g["tier"] == "silver"
    g = grade(frame([dict(annual_amount=12_000_000, tenure_years=5, **S4_BASE)]), S4).frame.iloc[0]
    assert g["tier"] == "diamond" and g["gates_failed"] == ""


@pytest.mark.parametrize("amount, tier", [(10_000_001, "diamond"), (10_000_000, "diamond"), (9_999_999, "gold"),
                                          (5_000_000, "gold"), (2_000_000, "silver"), (1_999_999, "copper")])
def test_s4_purchase_bands(amount, tier):
    assert grade(frame([dict(annual_amount=amount, tenure_years=10, **S4_BASE)]), S4).frame["tier"].iloc[0] == tier


def test_s4_market_share_lifts_to_gold_but_not_beyond():
    """"可被特别认定为金钻级" (may be designated gold): a proposal below gold, never a move (test_seed_readings)."""
    f = frame([dict(annual_amount=500_000, tenure_years=1, market_share=0.2),
               dict(annual_amount=20_000_000, tenure_years=9, market_share=0.2)], amount_growth=0.0, referrals_12m=0)
    g = grade(f, S4).frame
    assert g["tier"].tolist() == ["copper", "diamond"]
    assert g["proposal"].tolist()[0].startswith("proposed for designation as gold") and g["proposal"].iloc[1] == ""


# ---------------------------------------------------------------- S5, S6, S7

S5 = load_scheme("s5_order_count_grades")


def test_s5_a_b_c():
    f = frame([dict(orders_total=6, volume_total=150_000), dict(orders_total=5, volume_total=150_000),
               dict(orders_total=6, volume_total=100_000), dict(orders_total=4, volume_total=10_000),
               dict(orders_total=3, volume_total=50_000), dict(orders_total=4, volume_total=9_999),
               dict(orders_total=0, volume_total=0)], orders_12m=1, open_opportunities=0)
    assert grade(f, S5).frame["tier"].tolist() == ["A", "B", "B", "B", "C", "C", "C"]


def test_s5_trading_state():
    f = frame([dict(orders_12m=2, orders_total=9, open_opportunities=0),
               dict(orders_12m=0, orders_total=9, open_opportunities=1),
               dict(orders_12m=0, orders_total=0, open_opportunities=1),
               dict(orders_12m=0, orders_total=0, open_opportunities=0)], volume_total=0)
    assert grade(f, S5).frame["trading_state"].tolist() == ["trading_now", "traded_before", "about_to_trade",
                                                             "prospect"]


S6 = load_scheme("s6_time_to_close")


def test_s6_grades_and_cadence_daily_weekly_15_days_monthly_yearly():
    assert [t.strategy.follow_up_days for t in S6.tiers] == [1, 7, 15, 30, 365]
    f = frame([dict(open_opportunities=1, days_to_close=20), dict(open_opportunities=2, days_to_close=-5),
               dict(open_opportunities=1, days_to_close=80), dict(open_opportunities=1, days_to_close=150),
               dict(open_opportunities=1, days_to_close=400), dict(open_opportunities=1, days_to_close=np.nan),
               dict(open_opportunities=0, days_to_close=np.nan, consultations_6m=2),
               dict(open_opportunities=0, days_to_close=np.nan)], consultations_6m=0)
    f.loc[6, "consultations_6m"] = 2
    g = grade(f, S6).frame
    assert g["tier"].tolist() == ["A", "A", "B", "C", "D", "D", "D", "E"]
    assert g["follow_up_days"].tolist() == [1, 1, 7, 15, 30, 30, 30, 365]


S7 = load_scheme("s7_sales_stages")
S7_BASE = dict(latest_stage=None, open_complaints=0, won_12m=0, open_opportunities=0, days_to_close=np.nan,
               consultations_6m=0, industry="Machinery", size_employees=50, annual_revenue=1e7)


@pytest.mark.parametrize("changes, tier", [
    (dict(latest_stage="A01"), "A01"),
    (dict(latest_stage="A01", open_complaints=1), "A02"),            # open promise: not closed yet
    (dict(latest_stage="A05", won_12m=1), "A02"),                     # first match: the deal outranks intent
    (dict(latest_stage="A05", open_opportunities=1, days_to_close=30), "A03"),
    (dict(latest_stage="A05", consultations_6m=1), "A05"),            # A05 is listed before A06
    (dict(latest_stage="A31", consultations_6m=1), "A06"),            # asked again after a refusal
    (dict(latest_stage="A31"), "A31"),
    (dict(latest_stage="A07"), "A07"),
    (dict(), "A08"),
    (dict(industry="Public Sector"), "A21"),                          # government is out of scope
    (dict(annual_revenue=1e6), "A21"),                                # below the size floor
])
def test_s7_first_matching_stage(changes, tier):
    g = grade(frame([{**S7_BASE, "orders_12m": 0, **changes}]), S7).frame.iloc[0]
    assert g["tier"] == tier
    expected = "no rule above A21 matched" if tier == "A21" else f"matched the rule of {tier}"
    assert g["explanation"].startswith(expected)


# ---------------------------------------------------------------- S8

S8 = load_scheme("s8_government_product_line")
S8_ROW = dict(industry="Public Sector", annual_amount=1_500_000, pipeline_amount=4_000_000,
              prev_annual_amount=1_000_000, margin_rate_12m=0.3, open_opportunities=1)


def test_s8_worked_example_84():
    """History 150万 → 90, forecast 400万 → 70, margin 10 points or more below the requirement, bonus 1.05 →
    (90×50% + 70×50%) × 1.05 = 84; the same customer meeting the margin gets the whole bonus (×1.10)."""
    g = grade(frame([{**S8_ROW, "margin_rate_12m": 0.1}]), S8).frame.iloc[0]
    assert (g["pts__history"], g["pts__forecast"]) == (90, 70)
    assert g["score"] == pytest.approx(84.0) and g["tier"] == "B" and g["adjustments"] == "two_year_bonus_low_margin ×1.05"
    good_margin = grade(frame([S8_ROW]), S8).frame.iloc[0]
    assert good_margin["score"] == pytest.approx(88.0)
    no_bonus = grade(frame([{**S8_ROW, "prev_annual_amount": 0}]), S8).frame.iloc[0]
    assert no_bonus["score"] == pytest.approx(80.0)


def test_s8_grades_each_product_line_separately_and_only_government():
    d = pd.Timestamp
    tx = pd.DataFrame({
        "customer_id": ["G1", "G1", "G1", "M1"],
        "date": [d("2026-03-01"), d("2026-05-01"), d("2025-06-01"), d("2026-04-01")],
        "amount": [1_500_000.0, 300_000.0, 1_000_000.0, 5_000_000.0],
        "product_line": ["hardware", "software", "hardware", "hardware"],
        "margin": [150_000.0, 90_000.0, 300_000.0, 1_000_000.0],  # hardware 10%: the seed's low margin
    })
    customers = pd.DataFrame({"customer_id": ["G1", "M1"], "industry": ["Public Sector", "Machinery"]})
    opp = pd.DataFrame({"opportunity_id": ["O1"], "customer_id": ["G1"], "created_date": [d("2026-08-01")],
                        "stage": ["A05"], "expected_close_date": [d("2026-12-01")], "amount": [4_000_000.0],
                        "product_line": ["hardware"], "status": ["open"], "closed_date": [pd.NaT]})
    for df in (tx, customers, opp):
        for c in df.columns:
            if df[c].dtype == object:
                df[c] = df[c].astype("string")
    g, snap, _ = grade_snapshot(Tables(transactions=tx, customers=customers, opportunities=opp), S8,
                                pd.Timestamp("2026-09-30"))
    f = g.frame.set_index("group")
    assert list(g.frame["customer_id"]) == ["G1", "G1"] and set(g.ineligible["customer_id"]) == {"M1"}
    # hardware: 150万 history, 400万 pipeline, 250万 over two years (≥ 200万: bonus), margin 10% (low) → ×1.05 → 84;
    # software: 30万 → 60, no pipeline → 40, 30万 over two years (no bonus) → 50
    assert f.loc["hardware", "score"] == pytest.approx(84.0)
    assert f.loc["software", "score"] == pytest.approx(50.0)
    assert (f.loc["hardware", "tier"], f.loc["software", "tier"]) == ("B", "D")


# ---------------------------------------------------------------- S9, S10

S9 = load_scheme("s9_property_buyers")
S9_BASE = dict(latest_stage=None, won_12m=0, complaints_6m=0, visits_12m=0, consultations_6m=0,
               open_opportunities=0)


@pytest.mark.parametrize("changes, tier, sub", [
    (dict(latest_stage="A01"), "A", "strong"),
    (dict(latest_stage="A02"), "A", "normal"),
    (dict(latest_stage="A02", complaints_6m=1), "A", "weak"),
    (dict(latest_stage="A03", visits_12m=1), "B", "strong"),
    (dict(latest_stage="A04"), "B", "normal"),
    (dict(latest_stage="A07", visits_12m=3), "B", "weak"),
    (dict(latest_stage="A05", visits_12m=1), "C", "strong"),
    (dict(latest_stage="A08", consultations_6m=1), "C", "normal"),
    (dict(visits_12m=1), "C", "weak"),
    (dict(latest_stage="A31", visits_12m=3), "D", ""),
])
def test_s9_grades_and_subgrades(changes, tier, sub):
    g = grade(frame([{**S9_BASE, **changes}]), S9).frame.iloc[0]
    assert (g["tier"], g["subgrade"]) == (tier, sub)


def test_s9_non_buyers_are_not_graded():
    g = grade(frame([S9_BASE, {**S9_BASE, "visits_12m": 1}]), S9)
    assert g.frame["customer_id"].tolist() == ["C1"] and g.ineligible["customer_id"].tolist() == ["C0"]


S10 = load_scheme("s10_bank_value_behaviour")


def test_s10_value_by_behaviour_grid():
    value = {"high": 1_000_000, "mid": 100_000, "low": 10_000}
    behaviour = {"active": dict(recency_days=10, orders_per_month=2, product_lines_12m=1, days_since_contact=400),
                 "potential": dict(recency_days=60, orders_per_month=0.5, product_lines_12m=1, days_since_contact=400),
                 "dormant": dict(recency_days=150, orders_per_month=0.1, product_lines_12m=1, days_since_contact=400)}
    rows = [dict(annual_amount=value[v], **behaviour[b]) for v in value for b in behaviour]
    g = grade(frame(rows), S10).frame
    grid = g.pivot_table(index="value", columns="behaviour", values="tier", aggfunc="first")
    expected = pd.DataFrame({"active": ["A", "B", "C"], "potential": ["A", "B", "C"], "dormant": ["B", "C", "D"]},
                            index=["high", "mid", "low"])
    got = grid.loc[["high", "mid", "low"], ["active", "potential", "dormant"]]
    assert (got.to_numpy() == expected.to_numpy()).all(), got
    long_inactive = grade(frame([dict(annual_amount=5_000_000, recency_days=400, orders_per_month=0,
                                      product_lines_12m=3, days_since_contact=5)]), S10).frame.iloc[0]
    assert (long_inactive["value"], long_inactive["tier"]) == ("high", "D")


# ---------------------------------------------------------------- quantile bands

def test_quantile_bands_follow_the_population():
    spec = load_scheme("rfm_quantiles").indicators["monetary"]
    x = pd.Series(np.arange(1, 11, dtype=float))  # quintile edges 2.8, 4.6, 6.4, 8.2
    assert indicator_points(x, spec).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # just above and below each edge
    for edge, pts in zip([2.8, 4.6, 6.4, 8.2], [2, 3, 4, 5]):
        y = pd.concat([x, pd.Series([edge - 1e-9, edge])], ignore_index=True)
        assert indicator_points(y, spec).tolist()[-2:] == [pts - 1, pts]
    rec = load_scheme("rfm_quantiles").indicators["recency"]
    assert indicator_points(pd.Series([1.0, 50.0, np.nan]), rec).tolist() == [5, 1, 1]


# ---------------------------------------------------------------- every scheme on the demo

@pytest.fixture(scope="module")
def demo_tables(tmp_path_factory):
    from segment.demo.write import write_demo
    from segment.data.validate import load_data

    return load_data(write_demo(tmp_path_factory.mktemp("demo"), customers=600, seed=11)).tables


@pytest.mark.parametrize("sid", SCHEME_IDS)
def test_every_scheme_grades_the_demo(sid, demo_tables):
    scheme = load_scheme(sid)
    g, snap, n_lost = grade_snapshot(demo_tables, scheme, pd.Timestamp("2026-09-30"))
    assert len(g.frame) > 0 and g.frame["tier"].isin([t.id for t in scheme.tiers]).all()
    assert g.frame["tier"].nunique() >= 2, g.tier_counts()
    if scheme.scored:
        assert g.frame["score"].notna().all()


# ---------------------------------------------------------------- properties

ASCENDING = [(sid, ind) for sid in SCHEME_IDS for ind, spec in load_scheme(sid).indicators.items()
             if spec.bands is not None and spec.ascending() and ind in load_scheme(sid).weights()]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 2e7, allow_nan=False), min_size=1, max_size=20), st.floats(0, 1e7))
def test_raising_an_ascending_indicator_never_lowers_points_or_score(values, delta):
    for sid, ind in ASCENDING:
        spec = load_scheme(sid).indicators[ind]
        x = pd.Series(values)
        assert (indicator_points(x + delta, spec) >= indicator_points(x, spec)).all(), (sid, ind)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 3e6), st.floats(0, 10), st.floats(-0.1, 0.4), st.floats(0, 10),
                          st.integers(0, 4)), min_size=2, max_size=25))
def test_without_gates_and_overrides_tier_order_follows_score_order(rows):
    s1 = load_scheme("s1_four_tier").model_copy(deep=True)
    for t in s1.tiers:
        t.gate = None
    s1.overrides = []
    f = frame([dict(annual_amount=a, profit_12m=a * 0.2, tenure_years=y, industry_growth=gr, budget_growth=gr,
                    satisfaction_latest=sat, complaint_resolution_hours=24.0, complaints_12m=1, referrals_12m=r)
               for a, y, gr, sat, r in rows])
    g = grade(f, s1).frame.sort_values("score")
    assert (np.diff(g["tier_rank"].to_numpy()) <= 0).all()  # higher score → same or better (lower) rank


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.floats(0.01, 10), min_size=1, max_size=4), min_size=1, max_size=4))
def test_nested_weights_normalise(raw):
    dims = {}
    dsum = sum(sum(r) for r in raw)
    indicators = {}
    for i, ws in enumerate(raw):
        s = sum(ws)
        dims[f"d{i}"] = {"weight": s / dsum, "indicators": {f"x{i}_{j}": w / s for j, w in enumerate(ws)}}
        for j in range(len(ws)):
            indicators[f"x{i}_{j}"] = {"bands": [{"below": 1, "points": 0}, {"from": 1, "points": 10}]}
    scheme = Scheme.model_validate({"id": "p", "indicators": indicators, "dimensions": dims,
                                    "tiers": [{"id": "a", "min_score": 5}, {"id": "b"}]})
    assert sum(scheme.weights().values()) == pytest.approx(1.0)
    assert scheme.max_score() == pytest.approx(10.0)


def test_builtin_effective_weights_sum_to_one():
    for sid in SCHEME_IDS:
        scheme = load_scheme(sid)
        if scheme.scored:
            assert sum(scheme.weights().values()) == pytest.approx(1.0), sid


# ---------------------------------------------------------------- designations and errors

def test_manual_designations_applied_last_and_audited(tmp_path):
    s4 = S4
    g = grade(frame([dict(annual_amount=1_000_000, tenure_years=2, **S4_BASE),
                     dict(annual_amount=1_000_000, tenure_years=2, **S4_BASE)]), s4, as_of="2026-09-30")
    path = write(tmp_path / "designations.csv", "customer_id,tier,reason,approver,expires\n"
                 "C0,gold,行业影响力 brand leader,Li Wei (VP Sales),2026-12-31\n"
                 "C1,diamond,expired,Li Wei,2026-06-30\n")
    from segment.grading.designations import read_designations

    out = apply_designations(g, read_designations(path)).frame
    assert out["tier"].tolist() == ["gold", "copper"]
    assert out["designation"].iloc[0] == ("designated gold (was copper; 行业影响力 brand leader; approved by "
                                          "Li Wei (VP Sales), until 2026-12-31)")
    assert out["follow_up_days"].iloc[0] == 30 and out["designation"].iloc[1] == ""


def test_bad_designations_name_the_lines(tmp_path):
    g = grade(frame([dict(annual_amount=1_000_000, tenure_years=2, **S4_BASE)]), S4, as_of="2026-09-30")
    from segment.grading.designations import read_designations

    path = write(tmp_path / "d.csv", "customer_id,tier,reason,approver,expires\n"
                 "C0,platinum,x,y,2027-01-01\nC9,gold,x,y,2027-01-01\nC0,gold,,y,2027-01-01\n")
    with pytest.raises(SegmentError) as e:
        apply_designations(g, read_designations(path))
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and "nothing was applied" in msg
    assert "lines 2: unknown tier (write one of diamond, gold, silver, copper)" in msg
    assert "lines 3: customer not in this grading" in msg and "lines 4: reason is empty" in msg
    assert "lines 2, 4: customer designated more than once" in msg


def test_unknown_indicator_is_named_with_a_suggestion(tmp_path):
    path = write(tmp_path / "typo.yaml", textwrap.dedent("""\
        id: typo
        indicators:
          amt: {column: anual_amount, bands: [{below: 1, points: 0}, {from: 1, points: 1}]}
        dimensions: {d: {weight: 1, indicators: {amt: 1}}}
        tiers: [{id: a, min_score: 1}, {id: b}]
        """))
    with pytest.raises(MissingInputs, match="unknown indicator\\(s\\) anual_amount \\(anual_amount → did you mean "
                                            "annual_amount\\?\\)"):
        grade(frame([dict(annual_amount=1.0)]), load_scheme(path))


def test_scheme_needing_a_missing_table_says_which_before_grading(tmp_path, capsys):
    write(tmp_path / "tx.csv", "customer_id,date,amount\nC1,2026-01-05,100\n")
    data = write(tmp_path / "data.yaml", "tables:\n  transactions: {path: tx.csv}\n")
    out = tmp_path / "g.csv"
    assert main(["grade", "--data", str(data), "--scheme", "s1_four_tier", "--as-of", "2026-09-30",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "budget_growth" in err and "customers, interactions" in err
    assert "Nothing was graded" in err and not out.exists()
    assert main(["grade", "--data", str(data), "--scheme", "rfm_quantiles", "--as-of", "2026-09-30",
                 "--out", str(out)]) == 0 and out.exists()


def test_indicators_are_written_by_the_schemes_names_for_them():
    s = load_scheme("s1_four_tier")
    assert s.in_words("annual_amount +25.0, profit_12m +15.0; 6.0 points short of core") == \
        "年交易额 annual amount (12 months) +25.0, 利润贡献 profit contribution (12 months) +15.0; 6.0 points short of core"
    gate = s.in_words("annual_amount >= 50万 and major_complaints_12m == 0")
    assert gate == "年交易额 annual amount (12 months) >= 50万 and major complaints 12m == 0"  # no label: spaces
    assert s.in_words("annual_amount_x +1; x.annual_amount") == "annual_amount_x +1; x.annual_amount"  # whole names only


# ---------------------------------------------------------------- S12

S12 = load_scheme("s12_customer_type_levels")
# a small firm (S12's 中小型企业), five years with us, 20万 in 12 months, not a strategic partner
S12_BASE = dict(size_employees=80, annual_revenue=30_000_000.0, annual_amount=200_000.0, tenure_years=5.0,
                strategic=False)


def test_s12_important_ranks_above_core():
    """Seed 001: "1. 重要客户 … 2. 核心客户 … 3. 普通客户" — 重要 (important) is the top level, above 核心 (core)."""
    assert [(t.id, t.label) for t in S12.tiers] == [("important", "重要客户"), ("core", "核心客户"),
                                                    ("ordinary", "普通客户")]
    # a long-term small firm that is also a strategic partner meets both rules: it is 重要, not 核心
    g = grade(frame([{**S12_BASE, "strategic": True}, S12_BASE]), S12).frame
    assert g["tier"].tolist() == ["important", "core"]
    assert g["tier_rank"].iloc[0] < g["tier_rank"].iloc[1]


@pytest.mark.parametrize("changes, customer_type, tier", [
    # 重要客户: "包括大型企业、战略合作伙伴等,对企业的战略地位和营收贡献度较高的客户"
    (dict(size_employees=3000, annual_revenue=2e9, annual_amount=800_000), "large", "important"),
    (dict(strategic=True, annual_amount=50_000, tenure_years=0.5), "sme", "important"),   # 战略合作伙伴, even new
    (dict(annual_amount=1_500_000, tenure_years=2), "sme", "important"),                  # 营收贡献度较高
    (dict(size_employees=1, annual_revenue=np.nan, annual_amount=1_000_000), "individual", "important"),
    # 核心客户: "包括中小型企业、长期合作客户等"
    (dict(size_employees=3000, annual_revenue=2e9, annual_amount=100_000), "large", "core"),  # large, small contribution
    (dict(tenure_years=2), "sme", "core"),                                                # 中小型企业
    (dict(size_employees=12, annual_revenue=2_000_000, tenure_years=1), "sme", "core"),    # a micro firm is an SME
    (dict(size_employees=1, annual_revenue=np.nan, annual_amount=50_000, tenure_years=4), "individual", "core"),  # 长期合作
    # 普通客户: "包括个人客户、新客户等,对企业的影响度相对较低的客户"
    (dict(size_employees=1, annual_revenue=np.nan, annual_amount=50_000, tenure_years=2), "individual", "ordinary"),
    (dict(annual_amount=300_000, tenure_years=0.5), "sme", "ordinary"),                    # 新客户
    (dict(size_employees=3000, annual_revenue=2e9, annual_amount=300_000, tenure_years=0.5), "large", "ordinary"),
    (dict(annual_amount=0, tenure_years=6), "sme", "ordinary"),                            # no purchase in 12 months
    (dict(size_employees=np.nan, annual_revenue=np.nan, tenure_years=2), "unknown", "ordinary"),
])
def test_s12_three_levels_by_customer_type(changes, customer_type, tier):
    g = grade(frame([{**S12_BASE, **changes}]), S12).frame.iloc[0]
    assert (g["customer_type"], g["tier"]) == (customer_type, tier)


def test_s12_strategies_are_the_seeds():
    """Seed 001 四、管理策略: 重要 — 专属服务团队, 个性化定制, 高管关怀 (regular executive visits); 核心 —
    专属客户经理, 定期回访, 定期培训; 普通 — 统一服务热线."""
    actions = {t.id: " ".join(t.strategy.actions) for t in S12.tiers}
    assert all(w in actions["important"] for w in ("专属服务团队", "个性化定制", "高管"))
    assert all(w in actions["core"] for w in ("专属客户经理", "回访", "培训"))
    assert "统一服务热线" in actions["ordinary"]


# ---------------------------------------------------------------- S13

S13 = load_scheme("s13_key_account_classification")
# a mid-sized firm, two years with us, no market share known, flat purchases, no budget growth, no pipeline
S13_BASE = dict(size_employees=200, annual_revenue=80_000_000.0, annual_amount=0.0, tenure_years=2.0,
                market_share=np.nan, strategic=False, amount_growth=0.0, budget_growth=0.0, pipeline_amount=0.0)


@pytest.mark.parametrize("changes, tier", [
    # "依据客户的行业地位、市场影响力、采购规模、合作潜力等因素,将客户分为关键客户、重要客户、普通客户"
    (dict(annual_amount=6_000_000), "key"),                                          # purchase scale (S4 gold+)
    (dict(annual_amount=3_000_000, market_share=0.20), "key"),                       # scale + market influence
    (dict(annual_amount=3_000_000, size_employees=2000, annual_revenue=5e8), "key"),  # scale + industry position
    (dict(annual_amount=3_000_000, amount_growth=0.30), "key"),                      # scale + cooperation potential
    (dict(annual_amount=3_000_000), "important"),                                    # scale alone (S4 silver)
    (dict(annual_amount=600_000, strategic=True), "important"),
    (dict(annual_amount=600_000, budget_growth=0.25), "important"),
    (dict(annual_amount=600_000, pipeline_amount=3_000_000), "important"),
    (dict(annual_amount=100_000, market_share=0.20), "important"),                   # a market leader that buys
    (dict(annual_amount=600_000), "ordinary"),
    (dict(annual_amount=100_000, amount_growth=0.50), "ordinary"),                   # potential alone, small scale
    (dict(annual_amount=0, market_share=0.30), "ordinary"),                          # a leader that bought nothing
])
def test_s13_key_important_ordinary_by_the_four_factors(changes, tier):
    assert grade(frame([{**S13_BASE, **changes}]), S13).frame["tier"].iloc[0] == tier


def test_s13_sits_beside_s4s_levels():
    """Seed 004: "分级依据则包括客户年度采购额、合作年限、业务增长贡献度" — the levels (S4) rest on purchases,
    years and growth; the classification does not. S13's s4_level axis is S4's level before S4's promotions."""
    rows = [dict(annual_amount=12_000_000, tenure_years=5), dict(annual_amount=12_000_000, tenure_years=2),
            dict(annual_amount=6_000_000, tenure_years=3), dict(annual_amount=3_000_000, tenure_years=1),
            dict(annual_amount=6_000_000, tenure_years=0.5), dict(annual_amount=1_000_000, tenure_years=9)]
    s13 = grade(frame([{**S13_BASE, **r} for r in rows]), S13).frame
    s4 = grade(frame([{**S4_BASE, **r} for r in rows]), S4).frame
    assert s13["s4_level"].tolist() == s4["tier"].tolist() == ["diamond", "silver", "gold", "silver", "copper",
                                                              "copper"]
    # a 6-month customer buying 600万 is copper by the levels (years) but key by the classification (scale)
    assert s13["tier"].tolist() == ["key", "key", "key", "important", "key", "ordinary"]
    # S4's example: 4 years, +30% growth — S4 promotes silver → gold; S13's axis keeps the basis (silver)
    row = dict(annual_amount=3_000_000, tenure_years=4, amount_growth=0.30)
    assert grade(frame([{**S4_BASE, **row}]), S4).frame["tier"].iloc[0] == "gold"
    g = grade(frame([{**S13_BASE, **row}]), S13).frame.iloc[0]
    assert (g["s4_level"], g["potential"], g["tier"]) == ("silver", "high", "key")
