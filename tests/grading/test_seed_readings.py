"""Seed readings fixed (issue 15, deliverable 5): each test quotes the seed sentence it checks (the
originals are in /work/shared/seeds, digested in SEEDS.md) and grades hand-made data the way the
issue found the wrong reading."""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from segment.cli import main
from segment.data.contract import TABLES
from segment.data.tables import Tables
from segment.errors import ConfigError
from segment.features.registry import INDICATORS
from segment.features.snapshot import snapshot
from segment.grading.designations import apply_designations, read_designations
from segment.grading.engine import grade
from segment.grading.scheme import load_scheme
from segment.pipeline import grade_snapshot

from ..conftest import write

AS_OF = pd.Timestamp("2026-09-30")
DTYPES = {"string": "string", "float": "float64", "int": "Int64", "bool": "boolean",
          "date": "datetime64[ns]", "datetime": "datetime64[ns]"}


def table(name: str, rows: list[dict]) -> pd.DataFrame:
    """A contract table as the loader gives it (the contract's dtypes)."""
    df = pd.DataFrame(rows)
    spec = TABLES[name].by_name
    for c in df.columns:
        dtype = DTYPES[spec[c].dtype]
        df[c] = pd.to_datetime(df[c]).astype(dtype) if dtype.startswith("datetime") else df[c].astype(dtype)
    return df


def frame(rows: list[dict], **common) -> pd.DataFrame:
    return pd.DataFrame([{"customer_id": f"C{i}", **common, **r} for i, r in enumerate(rows)])


# ---------------------------------------------------------------- years of cooperation

def test_years_of_cooperation_count_from_the_first_purchase_not_the_crm_registration():
    """Seed 004: "合作年限方面,钻石级客户需与公司合作满5年以上" (diamond needs 5 years of cooperation) — years
    of *cooperation*, so a customer registered in the CRM in 2019 who first bought 11 months ago has
    0.9 years, not 7: 1500万 a year does not pass the diamond, gold or silver years gates."""
    customers = table("customers", [{"customer_id": "K1", "created_date": "2019-03-01", "market_share": None},
                                    {"customer_id": "K2", "created_date": "2025-01-10", "market_share": None}])
    tx = table("transactions", [{"customer_id": "K1", "date": "2025-11-01", "amount": 9_000_000.0},
                                {"customer_id": "K1", "date": "2026-06-01", "amount": 6_000_000.0}])
    it = table("interactions", [{"customer_id": "K2", "date": "2026-05-01", "kind": "consultation"}])
    g, snap, _ = grade_snapshot(Tables(transactions=tx, customers=customers, interactions=it),
                                load_scheme("s4_key_account_levels"), AS_OF)
    s = snap.set_index("customer_id")
    assert s.loc["K1", "tenure_years"] == pytest.approx(333 / 365.25)          # 2025-11-01 → 2026-09-30
    assert s.loc["K1", "registered_years"] == pytest.approx(2770 / 365.25)     # 2019-03-01 → 2026-09-30
    assert s.loc["K1", "tag_tenure"] == "new"
    assert np.isnan(s.loc["K2", "tenure_years"]) and s.loc["K2", "registered_years"] > 1.7  # never bought
    k1 = g.frame.set_index("customer_id").loc["K1"]
    assert (k1["raw_tier"], k1["gates_failed"], k1["tier"]) == ("diamond", "diamond;gold;silver", "copper")


def test_s1_years_of_cooperation_of_a_customer_who_never_bought_is_the_no_deal_column():
    """Seed 000, template 2: 合作时长 "≥2年 / 1-2年 / <1年 / 未成交" — the last column is "no deal": a
    customer who never bought has no years of cooperation (40 points), however long ago it registered."""
    s1 = load_scheme("s1_four_tier")
    base = dict(annual_amount=0.0, profit_12m=0.0, industry_growth=0.12, budget_growth=0.1, satisfaction_latest=np.nan,
                complaint_resolution_hours=np.nan, referrals_12m=0.0, complaints_12m=0.0, major_complaints_12m=0.0,
                consultations_6m=0.0, recency_days=np.nan, registered_years=7.0)
    g = grade(frame([dict(tenure_years=np.nan), dict(tenure_years=0.5), dict(tenure_years=2.5)], **base), s1).frame
    assert g["pts__tenure_years"].tolist() == [40, 60, 100]
    assert "registered_years" not in s1.inputs()


def test_every_scheme_reading_years_reads_years_of_cooperation():
    """S1 合作时长, S2 新客户期, S3 "稳定采购1年以上", S4 合作年限, S12 新客户 / 长期合作客户: all read
    tenure_years (from the first purchase); none reads the registration date."""
    for sid in ("s1_four_tier", "s2_rfm_lifecycle", "s3_relationship_score", "s4_key_account_levels"):
        scheme = load_scheme(sid)
        assert "tenure_years" in scheme.inputs() and "registered_years" not in scheme.inputs(), sid
    assert "first_purchase" in INDICATORS["tenure_years"].meaning
    assert INDICATORS["registered_years"].columns == ("customers.created_date",)


def test_segment_indicators_lists_the_new_indicators(capsys):
    assert main(["indicators"]) == 0
    out = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "90d" in out["orders_90d"] and "transactions" in out["orders_90d"]
    assert "customers" in out["registered_years"] and "created_date" in out["registered_years"]
    assert "first_purchase" in out["tenure_years"]


# ---------------------------------------------------------------- S8

S8 = load_scheme("s8_government_product_line")
S8_ROW = dict(industry="Public Sector", annual_amount=1_500_000, pipeline_amount=4_000_000,
              prev_annual_amount=1_000_000, open_opportunities=1)


def test_s8_the_seeds_worked_example_scores_84_with_its_low_margin():
    """Seed 001: "某客户历史销售额为150万元,预计销售额为400万元,但毛利率低于公司要求毛利达10%以上,其评分=
    (90X50%+70X50%)X1.05=84分" — the example's margin is 10 points or more below the requirement, and
    it scores 84, not 84 × 0.9 = 75.6."""
    g = grade(frame([{**S8_ROW, "margin_rate_12m": 0.08}]), S8).frame.iloc[0]
    assert (g["pts__history"], g["pts__forecast"]) == (90, 70)
    assert g["score"] == pytest.approx(84.0) and g["tier"] == "B"
    assert g["adjustments"] == "two_year_bonus_low_margin ×1.05"


@pytest.mark.parametrize("margin, prev, score, adjustment", [
    (0.16, 1_000_000, 88.0, "two_year_bonus ×1.1"),                 # 9 points below 25%: not the rule
    (0.15, 1_000_000, 84.0, "two_year_bonus_low_margin ×1.05"),     # exactly 10 points below: 达10%以上
    (np.nan, 1_000_000, 88.0, "two_year_bonus ×1.1"),               # unknown margin: not judged low
    (0.10, 0, 76.0, "low_margin ×0.95"),                            # no bonus: the low margin still lowers it
    (0.30, 0, 80.0, ""),
])
def test_s8_margin_rule_is_ten_points_below_the_requirement(margin, prev, score, adjustment):
    """Seed 001: "毛利率低于公司要求毛利达10%以上" — the margin rule is a margin 10 points or more below the
    company's requirement (25% chosen: margin ≤ 15%), and it lowers the score (the bonus ×1.10 becomes ×1.05)."""
    g = grade(frame([{**S8_ROW, "margin_rate_12m": margin, "prev_annual_amount": prev}]), S8).frame.iloc[0]
    assert g["score"] == pytest.approx(score) and g["adjustments"] == adjustment


# ---------------------------------------------------------------- S2

S2 = load_scheme("s2_rfm_lifecycle")


def test_s2_frequency_is_purchases_in_the_last_quarter():
    """Seed 002: "“消费频率”≥4次/季为高" (F high at ≥ 4 purchases a quarter): 4 orders in the last quarter
    score 5, where a 12-month average (orders_12m / 4 = 1) scored 3."""
    rows = [  # a year ago: 4 orders (tenure > 1 year); the last 90 days (from 2026-07-03): 4 orders
        *[{"customer_id": "Q1", "date": d, "amount": 100_000.0, "order_id": o}
          for d, o in (("2025-08-01", "P1"), ("2025-08-20", "P2"), ("2025-09-05", "P3"), ("2025-09-20", "P4"))],
        {"customer_id": "Q1", "date": "2026-07-10", "amount": 60_000.0, "order_id": "N1"},
        {"customer_id": "Q1", "date": "2026-07-10", "amount": 40_000.0, "order_id": "N1"},   # same order
        {"customer_id": "Q1", "date": "2026-08-01", "amount": 100_000.0, "order_id": "N2"},
        {"customer_id": "Q1", "date": "2026-09-01", "amount": 100_000.0, "order_id": "N3"},
        {"customer_id": "Q1", "date": "2026-09-20", "amount": 100_000.0, "order_id": None},  # one order
        {"customer_id": "Q1", "date": "2026-09-21", "amount": -5_000.0, "order_id": "R1"},   # a return: no order
        {"customer_id": "Q1", "date": "2026-07-02", "amount": 1.0, "order_id": "OLD"},       # 90 days before the cut-off
    ]
    snap = snapshot(Tables(transactions=table("transactions", rows)), AS_OF).set_index("customer_id")
    assert snap.loc["Q1", "orders_90d"] == 4 and snap.loc["Q1", "orders_12m"] == 5
    assert snap.loc["Q1", "orders_per_quarter"] == 1.25
    g = grade(snap.reset_index(), S2).frame.iloc[0]
    assert (g["pts__recency"], g["pts__frequency"], g["pts__monetary"]) == (5, 5, 3)
    assert g["lifecycle"] == "mature" and g["score"] == pytest.approx(13) and g["tier"] == "core"


@pytest.mark.parametrize("total_parts, growth, tenure, lifecycle, tier", [
    ((10, 5, 600_000), 0.0, 3, "mature", "core"),         # 15, 成熟期
    ((10, 5, 600_000), 0.25, 3, "growing", "potential"),  # 15 but 成长期: the seed ties core to maturity
    ((10, 5, 600_000), 0.0, 0.5, "new", "general"),       # 15, 新客户期
    ((10, 5, 600_000), -0.4, 3, "declining", "churn_risk"),  # 15, 衰退期
    ((60, 2, 200_000), 0.25, 3, "growing", "potential"),  # 9, 成长期
    ((60, 2, 200_000), 0.0, 3, "mature", "general"),      # 9, 成熟期: potential is the growth stage's
    ((60, 2, 50_000), 0.25, 3, "growing", "general"),     # 7, growing below 8: not a churn risk
    ((60, 2, 50_000), 0.0, 3, "mature", "general"),       # 7, 成熟期
    ((150, 0, 50_000), 0.0, 3, "mature", "churn_risk"),   # 3
])
def test_s2_tier_combines_the_rfm_total_with_the_lifecycle_stage(total_parts, growth, tenure, lifecycle, tier):
    """Seed 002: "结合RFM总分与生命周期阶段,将客户分为4个层级:核心客户(RFM总分≥12分,生命周期处于成熟期)…
    潜力客户(RFM总分8-11分,生命周期处于成长期)…一般客户(RFM总分5-7分,生命周期处于新客户期或成熟期)…
    流失风险客户(RFM总分≤4分,生命周期处于衰退期或流失客户)"."""
    recency, orders, amount = total_parts
    f = frame([dict(recency_days=recency, orders_90d=orders, annual_amount=amount, tenure_years=tenure,
                    amount_growth=growth)])
    g = grade(f, S2).frame.iloc[0]
    assert (g["lifecycle"], g["tier"]) == (lifecycle, tier)


# ---------------------------------------------------------------- S7

S7 = load_scheme("s7_sales_stages")
S7_BASE = dict(latest_stage=None, open_complaints=0, won_12m=0, orders_12m=0, open_opportunities=0,
               days_to_close=np.nan, consultations_6m=0, industry="Machinery", size_employees=50, annual_revenue=1e7)


def test_s7_a_purchase_reaches_a02():
    """Seed 001: "九、【A02-成交级】:满足以下3个条件之一 1、已签定合作意向书/合作协议/合同 2、已采购本公司的
    纸板/纸箱 3、已付款" — a purchase alone (any of three) is a deal, whatever stage sales last recorded."""
    g = grade(frame([{**S7_BASE, "latest_stage": "A06", "orders_12m": 1}, {**S7_BASE, "orders_12m": 2},
                     {**S7_BASE, "latest_stage": "A06"}, {**S7_BASE, "latest_stage": "A01", "orders_12m": 1}]),
              S7).frame
    assert g["tier"].tolist() == ["A02", "A02", "A06", "A01"]


def test_s7_a_purchase_in_the_data_reaches_a02():
    """The same from the tables: an opportunity recorded at A05 (intent) and a purchase after it."""
    tx = table("transactions", [{"customer_id": "B1", "date": "2026-08-15", "amount": 80_000.0}])
    cu = table("customers", [{"customer_id": "B1", "industry": "Machinery", "size_employees": 50,
                              "annual_revenue": 2e7}, {"customer_id": "B2", "industry": "Machinery",
                                                      "size_employees": 50, "annual_revenue": 2e7}])
    op = table("opportunities", [{"opportunity_id": o, "customer_id": c, "created_date": "2026-06-01", "stage": "A05",
                                  "status": "open", "expected_close_date": "2027-06-01"} for o, c in (("O1", "B1"),
                                                                                                      ("O2", "B2"))])
    it = table("interactions", [{"customer_id": "B2", "date": "2026-06-01", "kind": "call", "resolution_hours": None}])
    g, _, _ = grade_snapshot(Tables(transactions=tx, customers=cu, opportunities=op, interactions=it), S7, AS_OF)
    assert g.frame.set_index("customer_id")["tier"].to_dict() == {"B1": "A02", "B2": "A05"}


# ---------------------------------------------------------------- S1

S1 = load_scheme("s1_four_tier")
S1_BASE = dict(annual_amount=200_000.0, profit_12m=30_000.0, tenure_years=1.5, industry_growth=0.12,
               budget_growth=0.15, satisfaction_latest=8.5, referrals_12m=1.0, major_complaints_12m=0.0,
               consultations_6m=0.0, recency_days=20.0)


@pytest.mark.parametrize("hours", [0.5, 10, 23.9, 24, 71, 100, 500])
def test_s1_no_complaint_is_never_below_a_resolved_complaint(hours):
    """Seed 000: 关系维度 "客户满意度、投诉解决效率、转介绍率" — complaint-resolution efficiency: a customer
    without complaints scores no less than one whose complaint was resolved, even within 24 hours."""
    g = grade(frame([dict(complaints_12m=0.0, complaint_resolution_hours=np.nan),
                     dict(complaints_12m=1.0, complaint_resolution_hours=hours)], **S1_BASE), S1).frame
    none, resolved = g.iloc[0], g.iloc[1]
    assert none["pts__complaint_resolution_hours"] == 100
    assert none["pts__complaint_resolution_hours"] >= resolved["pts__complaint_resolution_hours"]
    assert none["score"] >= resolved["score"]


def test_s1_resolution_bands_and_an_unresolved_complaint():
    """1 day / 3 days / 1 week → 100 / 80 / 60 / 40; complaints none of which is resolved yet score 40."""
    hours = [5, 24, 72, 168, np.nan]
    g = grade(frame([dict(complaints_12m=1.0, complaint_resolution_hours=h) for h in hours], **S1_BASE), S1).frame
    assert g["pts__complaint_resolution_hours"].tolist() == [100, 80, 60, 40, 40]


LOW = dict(annual_amount=0.0, profit_12m=0.0, tenure_years=np.nan, industry_growth=0.12, budget_growth=0.15,
           satisfaction_latest=np.nan, complaint_resolution_hours=np.nan, referrals_12m=0.0, complaints_12m=0.0,
           major_complaints_12m=0.0, consultations_6m=2.0, recency_days=np.nan)


@pytest.mark.parametrize("changes, tier", [
    ({}, "potential"),                                          # enquired, never bought, growing industry, budget
    (dict(recency_days=400.0), "potential"),                    # bought long ago: no deal in the 6 months
    (dict(recency_days=182.0), "potential"),                    # the last purchase just outside 6 months (182 days)
    (dict(recency_days=181.0, annual_amount=5_000.0), "unclassified"),  # a purchase in the 6 months: a deal
    (dict(consultations_6m=0.0), "unclassified"),               # no enquiry
    (dict(industry_growth=0.06), "unclassified"),               # industry fit not good (growth < 10%)
    (dict(budget_growth=np.nan), "unclassified"),               # budget not clear
])
def test_s1_potential_needs_its_entry_criteria(changes, tier):
    """Seed 000: "潜在客户|未成交或低频互动,具开发价值|近6个月有咨询但未成交,行业匹配度高,预算明确" —
    potential's entry criteria: an enquiry in the last 6 months without a deal, good industry fit, a
    clear budget. A low score without them is not potential but unclassified (the fifth tier)."""
    g = grade(frame([{**LOW, **changes}]), S1).frame.iloc[0]
    assert g["tier"] == tier  # (< 1万 a year: never ordinary, whatever the score)
    if tier == "unclassified":
        assert "potential" in g["gates_failed"].split(";")
        assert g["explanation"].endswith("score reaches potential but its gate fails")


def test_s1_ordinary_and_above_are_unchanged_by_potentials_criteria():
    g = grade(frame([dict(complaints_12m=0.0, complaint_resolution_hours=np.nan)], **S1_BASE), S1).frame.iloc[0]
    assert g["score"] >= 70 and g["tier"] == "important"


# ---------------------------------------------------------------- S4: a proposal, not a promotion

S4 = load_scheme("s4_key_account_levels")
S4_BASE = dict(amount_growth=0.0, market_share=np.nan, referrals_12m=0)


def test_s4_market_share_proposes_gold_instead_of_promoting():
    """Seed 004: "市场份额占比超过15%,品牌知名度高,即便其年度采购额未达到金钻级标准,仍可被特别认定为金钻级
    客户" (may be specially designated gold) and "市场部…形成初步的客户分类分级建议名单 … 提交至公司高层审批"
    (marketing proposes, leadership approves): the tier stays; the customer is proposed for designation."""
    rows = [dict(annual_amount=500_000, tenure_years=1, market_share=0.2),      # copper → proposed gold
            dict(annual_amount=3_000_000, tenure_years=2, market_share=0.16),   # silver → proposed gold
            dict(annual_amount=6_000_000, tenure_years=4, market_share=0.3),    # gold already: nothing to propose
            dict(annual_amount=20_000_000, tenure_years=9, market_share=0.2),   # diamond: never proposed down
            dict(annual_amount=3_000_000, tenure_years=4, market_share=0.2, amount_growth=0.3),  # promoted to gold
            dict(annual_amount=500_000, tenure_years=1, market_share=0.15)]     # not above 15%
    g = grade(frame([{**S4_BASE, **r} for r in rows]), S4).frame
    assert g["tier"].tolist() == ["copper", "silver", "gold", "diamond", "gold", "copper"]
    assert (g["overrides"].iloc[:2] == "").all()  # no move
    text = "proposed for designation as gold (industry_influence: 行业影响力 market share > 15%"
    assert [p.startswith(text) for p in g["proposal"]] == [True, True, False, False, False, False]
    assert g["explanation"].iloc[0].endswith("; " + g["proposal"].iloc[0])
    assert "proposed" not in g["explanation"].iloc[2]


def test_a_proposal_approved_in_the_designation_file_sets_the_tier(tmp_path):
    """The proposal is the list leadership approves; the approved designation moves the tier."""
    g = grade(frame([dict(annual_amount=500_000, tenure_years=1, **{**S4_BASE, "market_share": 0.2})]), S4,
              as_of=AS_OF)
    assert g.frame["tier"].iloc[0] == "copper" and g.frame["proposal"].iloc[0] != ""
    path = write(tmp_path / "designations.csv", "customer_id,tier,reason,approver,expires\n"
                 "C0,gold,行业影响力 market share 20%,Li Wei (VP Sales),2026-12-31\n")
    out = apply_designations(g, read_designations(path)).frame.iloc[0]
    assert out["tier"] == "gold" and out["designation"].startswith("designated gold (was copper")


PROPOSING = """\
    id: p
    tiers:
      - {id: A, when: "x >= 10"}
      - {id: B, when: "x >= 5"}
      - {id: C}
    overrides:
      - {id: watch, when: "flag == true", action: propose, to: B, reason: flagged by sales}
      - {id: lift, when: "x >= 8", action: promote, by: 1, reason: almost A}
    """


def test_any_scheme_may_propose_and_the_tier_never_moves(tmp_path):
    scheme = load_scheme(write(tmp_path / "p.yaml", textwrap.dedent(PROPOSING)))
    f = frame([dict(x=1, flag=True), dict(x=6, flag=True), dict(x=9, flag=True), dict(x=1, flag=False)])
    g = grade(f, scheme).frame
    assert g["tier"].tolist() == ["C", "B", "A", "C"]  # the promote rule moves x=9 to A; propose moves no one
    assert g["proposal"].tolist() == ["proposed for designation as B (watch: flagged by sales)", "", "", ""]
    assert g["explanation"].tolist()[0] == "no rule above C matched; proposed for designation as B (watch: flagged by sales)"
    assert "proposal" not in grade(frame([S7_BASE]), S7).frame  # a scheme without proposals has no column


@pytest.mark.parametrize("override, message", [
    ("{id: o, when: 'x > 1', action: propose, reason: r}", "needs `to:`"),
    ("{id: o, when: 'x > 1', action: propose, to: B, by: 2, reason: r}", "propose moves no tier"),
    ("{id: o, when: 'x > 1', action: propose, to: Z, reason: r}", "unknown tier 'Z'"),
    ("{id: o, when: 'x > 1', action: promote, to: B, reason: r}", "only for action: propose"),
])
def test_a_proposal_needs_a_known_tier_and_moves_nothing(tmp_path, override, message):
    path = write(tmp_path / "bad.yaml", textwrap.dedent(f"""\
        id: t
        tiers:
          - {{id: A, when: "x >= 10"}}
          - {{id: B, when: "x >= 5"}}
          - {{id: C}}
        overrides:
          - {override}
        """))
    with pytest.raises(ConfigError, match="overrides.0") as e:
        load_scheme(path)
    assert message in str(e.value)
