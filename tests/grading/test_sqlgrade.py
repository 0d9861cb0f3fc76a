"""The grading engine (schemes compiled to SQL, segment.grading.compiler; codes to texts, segment.grading.engine):
frozen gradings of every built-in scheme, the seeds' worked examples, hand computations, random
schemes against a plain reference, and the SQL text itself."""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from segment.plumbing.sql import DUCKDB, SPARK
from segment.grading.engine import grade
from segment.grading.scheme import SCHEMES_DIR, Scheme, load_scheme
from segment.grading.compiler import column_kinds, compile_ineligible, compile_scheme

from ..conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from bench_grading import synthetic_snapshot  # noqa: E402

SCHEME_IDS = sorted(p.stem for p in (ROOT / SCHEMES_DIR).glob("*.yaml"))


def assert_same(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    """Same columns in the same order, same rows; text equal, numbers bit-identical (NaN = NaN)."""
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    for c in expected.columns:
        e, g = expected[c], got[c]
        if pd.api.types.is_numeric_dtype(e.dtype) and not pd.api.types.is_bool_dtype(e.dtype):
            ea = pd.to_numeric(e).to_numpy(dtype=float, na_value=np.nan)
            ga = pd.to_numeric(g).to_numpy(dtype=float, na_value=np.nan)
            ok = (ea == ga) | (np.isnan(ea) & np.isnan(ga))
        else:
            ea = e.astype(object).where(e.notna(), None).to_numpy()
            ga = g.astype(object).where(g.notna(), None).to_numpy()
            ok = np.array([x == y for x, y in zip(ea, ga)], dtype=bool)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            pytest.fail(f"column {c}: {int((~ok).sum())} of {len(ok)} rows differ, first row {i}: "
                        f"numpy {ea[i]!r} vs SQL {ga[i]!r}")


# ---------------------------------------------------------------- every built-in scheme

def make_population() -> pd.DataFrame:
    """4000 synthetic customers with every column the schemes read, some of each missing, and a
    product line per row (S8 grades each line on its own)."""
    n = 4000
    f = synthetic_snapshot(n, seed=3)
    rng = np.random.default_rng(8)
    for c in ("annual_amount", "recency_days", "orders_12m", "tenure_years", "days_to_close", "amount_growth",
              "volume_total", "pipeline_amount", "margin_rate_12m", "days_since_contact", "annual_revenue"):
        f.loc[rng.random(n) < 0.05, c] = np.nan
    for c in ("latest_stage", "industry"):
        f.loc[rng.random(n) < 0.05, c] = pd.NA
    f["industry"] = f["industry"].where(rng.random(n) < 0.5, "Public Sector")
    f.insert(1, "group", pd.array(rng.choice(np.array(["hardware", "software", "service"], dtype=object), n),
                                  dtype="string"))
    # the demo's declared indicators the built-in schemes read (optional there), some missing
    facts = np.random.default_rng(15)

    def some(values, missing=0.3):
        out = facts.choice(np.asarray(values, dtype=float), n)
        out[facts.random(n) < missing] = np.nan
        return out

    for name, values in {"customer_assets": [0, 2e4, 6e4, 3e5, 8e5], "four_elements": [0, 2, 3, 4, 4],
                         "dm_response": [-1, 0, 1], "price_known": [1], "price_agreed": [1], "verbal_commitment": [1],
                         "registered": [1], "deposit_paid": [0, 0, 5e3], "visit_minutes_90d": [0, 10, 30, 90],
                         "payments_90d": [0, 0, 2e4], "referrals_closed_12m": [0, 0, 1, 2],
                         "renewal_rate": [0, 0.5, 1]}.items():
        f[name] = some(values)
    for name in ("agent", "strong_brand"):
        f[name] = pd.array(np.where(facts.random(n) < 0.1, True, False), dtype="boolean")
    return f


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    return make_population()


FROZEN = ROOT / "tests" / "reference" / "grading"


@pytest.mark.parametrize("sid", SCHEME_IDS)
def test_every_scheme_matches_the_frozen_grading(sid, population):
    """Every column of every built-in scheme's grading, bit for bit, against the grading frozen from the
    numpy engine before grading moved to SQL (tests/reference/grading/freeze.py)."""
    from segment.pipeline import grade_current

    scheme = load_scheme(sid)
    frame = population if scheme.group_by else population.drop(columns=["group"])
    g, _ = grade_current(frame, scheme, "2026-09-30")
    assert_same(pd.read_parquet(FROZEN / f"{sid}.parquet"), g.frame)
    assert g.ineligible["customer_id"].tolist() == \
        pd.read_parquet(FROZEN / f"{sid}.ineligible.parquet")["customer_id"].tolist()


def test_quantile_bands_per_group_are_each_groups_own(population):
    """rfm_quantiles graded per product line equals grading each line alone (its own quintiles)."""
    scheme = load_scheme("rfm_quantiles")
    grouped = grade(population, scheme.model_copy(update={"group_by": "product_line"})).frame
    alone = pd.concat([grade(part, scheme).frame for _, part in population.groupby("group", sort=True)],
                      ignore_index=True)
    assert grouped["group"].tolist() == sorted(grouped["group"].tolist())
    assert_same(alone, grouped.drop(columns=["group"]))
    by_line = grouped.groupby("group")["tier"].value_counts().unstack()
    assert (by_line.sum(axis=1) == population.groupby("group").size()).all()


def test_quantile_edges_follow_the_population():
    """Quintile edges of 1..10 are 2.8, 4.6, 6.4, 8.2 (test_schemes): points 1,1,2,2,…,5,5."""
    scheme = load_scheme("rfm_quantiles")
    f = pd.DataFrame({"customer_id": [f"C{i}" for i in range(10)], "annual_amount": np.arange(1, 11, dtype=float),
                      "orders_12m": np.arange(1, 11, dtype=float), "recency_days": [1.0] + [50.0] * 8 + [np.nan]})
    got = graded(f, scheme)
    assert got["pts__monetary"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert got["pts__recency"].tolist()[0] == 5 and got["pts__recency"].tolist()[-1] == 1


# ---------------------------------------------------------------- the seeds' worked examples

S1 = load_scheme("s1_four_tier")


def s1_frame(**over) -> pd.DataFrame:
    base = dict(customer_id="C1", annual_amount=600_000.0, profit_12m=150_000.0, tenure_years=3.0,
                industry_growth=0.2, budget_growth=0.25, satisfaction_latest=9.0, complaint_resolution_hours=10.0,
                referrals_12m=2.0, complaints_12m=0.0, major_complaints_12m=0.0, consultations_6m=0.0, recency_days=10.0)
    base.update(over)
    return pd.DataFrame([base])


def graded(f: pd.DataFrame, scheme: Scheme) -> pd.DataFrame:
    """The grading's frame, the customers `eligible` leaves out in ``attrs["ineligible"]``."""
    g = grade(f, scheme)
    g.frame.attrs["ineligible"] = g.ineligible
    return g.frame


def frame(rows: list[dict], **common) -> pd.DataFrame:
    return pd.DataFrame([{"customer_id": f"C{i}", **common, **r} for i, r in enumerate(rows)])


def test_s1_hand_computed_score_and_explanation():
    f = s1_frame(annual_amount=200_000.0, profit_12m=5_000.0, tenure_years=1.5, industry_growth=0.07,
                 budget_growth=np.nan, satisfaction_latest=7.5, complaint_resolution_hours=np.nan, referrals_12m=0.0)
    g = graded(f, S1).iloc[0]  # no complaint in 12 months: resolution 100 (relationship 66)
    assert (g["dim__value"], g["dim__potential"], g["dim__relationship"]) == pytest.approx((74, 50, 66))
    assert g["score"] == pytest.approx(65.2) and g["raw_tier"] == "ordinary" and g["tier"] == "ordinary"
    assert (g["top1"], g["top2"], g["top3"]) == ("annual_amount", "profit_12m", "industry_growth")
    assert g["points_to_next_tier"] == pytest.approx(4.8)
    assert g["explanation"] == "annual_amount +20.0, profit_12m +9.0, industry_growth +9.0; 4.8 points short of important"
    assert g["follow_up_days"] == 180 and "标准化服务" in g["strategy"]


def test_s1_gate_and_demotion():
    g = graded(s1_frame(satisfaction_latest=8.0), S1).iloc[0]
    assert g["score"] == pytest.approx(98.4)
    assert (g["raw_tier"], g["gates_failed"], g["tier"]) == ("core", "core", "important")
    assert g["explanation"].endswith("score reaches core but its gate fails")
    g = graded(s1_frame(complaints_12m=3.0), S1).iloc[0]
    assert g["raw_tier"] == "core" and g["tier"] == "important"
    assert g["overrides"].startswith("frequent_complaints: core → important (高消费但频繁投诉")
    g = graded(s1_frame(complaints_12m=5.0, annual_amount=150_000.0, tenure_years=0.5, satisfaction_latest=5.0),
                  S1).iloc[0]
    assert g["tier"] == "ordinary" and g["overrides"] == ""


@pytest.mark.parametrize("score_target, tier", [(90, "core"), (89.9, "important"), (70, "important"),
                                                (69.9, "ordinary"), (50, "ordinary"), (49.9, "potential")])
def test_s1_cutoffs_with_maps(score_target, tier):
    """test_grading's cut-off check: one band scheme plus `map` indicators that never match."""
    scheme = S1.model_copy(deep=True)
    for t in scheme.tiers:
        t.gate = None
    scheme.overrides = []
    scheme.indicators["annual_amount"].bands[0].points = score_target
    f = s1_frame(annual_amount=0.0)
    for ind in scheme.weights():
        if ind != "annual_amount":
            scheme.indicators[ind].bands = scheme.indicators[ind].rubric = None
            scheme.indicators[ind].map = {"never": 0}
            scheme.indicators[ind].missing_points = score_target
    got = graded(f, scheme)
    assert got["tier"].iloc[0] == tier


S4 = load_scheme("s4_key_account_levels")
S4_BASE = dict(amount_growth=0.0, market_share=np.nan, referrals_12m=0)


def test_s4_gates_and_promotions():
    g = graded(frame([dict(annual_amount=3_000_000, tenure_years=4, **{**S4_BASE, "amount_growth": 0.30})]), S4)
    assert (g["raw_tier"].iloc[0], g["tier"].iloc[0]) == ("silver", "gold")
    assert g["overrides"].iloc[0].startswith("growth_over_20pct: silver → gold")
    g = graded(frame([dict(annual_amount=12_000_000, tenure_years=2, **S4_BASE)]), S4).iloc[0]
    assert g["raw_tier"] == "diamond" and g["gates_failed"] == "diamond;gold" and g["tier"] == "silver"
    f = frame([dict(annual_amount=500_000, tenure_years=1, market_share=0.2),
               dict(annual_amount=20_000_000, tenure_years=9, market_share=0.2)], amount_growth=0.0, referrals_12m=0)
    g = graded(f, S4)  # market share > 15%: proposed for designation as gold, the tier stays
    assert g["tier"].tolist() == ["copper", "diamond"]
    assert g["proposal"].iloc[0].startswith("proposed for designation as gold (industry_influence") and g["proposal"].iloc[1] == ""


def test_s8_worked_example_84():
    s8 = load_scheme("s8_government_product_line")
    row = dict(industry="Public Sector", annual_amount=1_500_000, pipeline_amount=4_000_000,
               prev_annual_amount=1_000_000, margin_rate_12m=0.3, open_opportunities=1)
    g = graded(frame([{**row, "margin_rate_12m": 0.1}, row, {**row, "prev_annual_amount": 0},
                      {**row, "industry": "Logistics"}]), s8)  # the seed's example has the low margin (first row)
    assert (g["pts__history"].iloc[0], g["pts__forecast"].iloc[0]) == (90, 70)
    assert g["score"].tolist() == pytest.approx([84.0, 88.0, 80.0])
    assert g["adjustments"].tolist() == ["two_year_bonus_low_margin ×1.05", "two_year_bonus ×1.1", ""]
    assert g["tier"].iloc[0] == "B" and g.attrs["ineligible"]["customer_id"].tolist() == ["C3"]


S3_BASE = dict(days_since_contact=10, contacts_per_month=5, contacts_12m=60, visits_12m=2, strategic=True,
               buys_core_product=True, tenure_years=3, orders_12m=10, orders_total=30, complaints_12m=0,
               praise_12m=1, satisfaction_latest=9, referrals_12m=2, nps_latest=100, open_opportunities=1,
               consultations_6m=1, amount_growth=0.3)


def test_s3_rubrics():
    s3 = load_scheme("s3_relationship_score")
    rows = [{}, dict(strategic=False, buys_core_product=False, referrals_12m=1),
            dict(contacts_per_month=1.5, visits_12m=0, strategic=False, buys_core_product=False, praise_12m=0,
                 satisfaction_latest=8, referrals_12m=0, nps_latest=0, open_opportunities=0),
            dict(days_since_contact=200, strategic=False, buys_core_product=False, tenure_years=0.2, orders_12m=1,
                 orders_total=1, complaints_12m=2, referrals_12m=0, nps_latest=-100, open_opportunities=0,
                 consultations_6m=0, amount_growth=-0.5)]
    g = graded(frame([{**S3_BASE, **r} for r in rows]), s3)
    pts = g[[f"pts__{i}" for i in ("interaction", "depth", "satisfaction", "referral", "growth")]]
    assert [tuple(r) for r in pts.to_numpy()] == [(5, 5, 5, 5, 5), (5, 3, 5, 3, 5), (3, 3, 3, 1, 3), (1, 1, 1, 1, 1)]
    assert g["score"].tolist() == pytest.approx([5.0, 4.1, 2.7, 1.0])
    assert g["tier"].tolist() == ["high_potential", "stable", "watch", "risk"]


@pytest.mark.parametrize("sid, rows, common, tiers", [
    ("s2_rfm_lifecycle", [dict(recency_days=10, orders_90d=5, annual_amount=600_000),
                          dict(recency_days=60, orders_90d=2, annual_amount=50_000),
                          dict(recency_days=None, orders_90d=0, annual_amount=0)],
     dict(tenure_years=3.0, amount_growth=0.0), ["core", "general", "churn_risk"]),
    ("s5_order_count_grades", [dict(orders_total=6, volume_total=150_000), dict(orders_total=5, volume_total=150_000),
                               dict(orders_total=3, volume_total=50_000)],
     dict(orders_12m=1, open_opportunities=0), ["A", "B", "C"]),
    ("s6_time_to_close", [dict(open_opportunities=1, days_to_close=20), dict(open_opportunities=1, days_to_close=80),
                          dict(open_opportunities=1, days_to_close=np.nan), dict(open_opportunities=0,
                                                                                 days_to_close=np.nan)],
     dict(consultations_6m=0), ["A", "B", "D", "E"]),
    ("s7_sales_stages", [dict(latest_stage="A01"), dict(latest_stage="A01", open_complaints=1),
                         dict(latest_stage="A31", consultations_6m=1), dict(), dict(industry="Public Sector")],
     dict(latest_stage=None, open_complaints=0, won_12m=0, orders_12m=0, open_opportunities=0, days_to_close=np.nan,
          consultations_6m=0, industry="Machinery", size_employees=50, annual_revenue=1e7),
     ["A01", "A02", "A06", "A08", "A21"]),
])
def test_seed_examples(sid, rows, common, tiers):
    scheme = load_scheme(sid)
    f = frame([{**common, **r} for r in rows])
    got = graded(f, scheme)
    assert got["tier"].tolist() == tiers


def test_s9_subgrades_and_eligibility():
    s9 = load_scheme("s9_property_buyers")
    base = dict(latest_stage=None, won_12m=0, complaints_6m=0, visits_12m=0, consultations_6m=0, open_opportunities=0)
    cases = [(dict(latest_stage="A01"), "A", "strong"), (dict(latest_stage="A02", complaints_6m=1), "A", "weak"),
             (dict(latest_stage="A04"), "B", "normal"), (dict(latest_stage="A07", visits_12m=3), "B", "weak"),
             (dict(latest_stage="A08", consultations_6m=1), "C", "normal"),
             (dict(latest_stage="A31", visits_12m=3), "D", ""), (dict(), None, None)]
    f = frame([{**base, **c} for c, _, _ in cases])
    got = graded(f, s9)
    assert list(zip(got["tier"], got["subgrade"])) == [(t, s) for _, t, s in cases[:-1]]
    assert got.attrs["ineligible"]["customer_id"].tolist() == ["C6"]


def test_s10_value_by_behaviour_grid():
    s10 = load_scheme("s10_bank_value_behaviour")
    value = {"high": 1_000_000, "mid": 100_000, "low": 10_000}
    behaviour = {"active": dict(recency_days=10, orders_per_month=2), "potential": dict(recency_days=60,
                                                                                         orders_per_month=0.5),
                 "dormant": dict(recency_days=150, orders_per_month=0.1)}
    rows = [dict(annual_amount=value[v], product_lines_12m=1, days_since_contact=400, **behaviour[b])
            for v in value for b in behaviour]
    got = graded(frame(rows), s10)
    assert got["tier"].tolist() == ["A", "A", "B", "B", "B", "C", "C", "C", "D"]
    assert got["value"].tolist()[::3] == ["high", "mid", "low"]


# ---------------------------------------------------------------- random schemes

COLS = ("x0", "x1", "x2", "x3")


def _cond_text(c) -> str:
    col, op, v = c
    if op == "missing":
        return f"{col} is missing"
    if op == "in":
        return f"tag in [{', '.join(repr(x) for x in v)}]"
    return f"{col} {op} {v!r}"


def _cond_holds(c, row) -> bool:
    col, op, v = c
    x = row[col] if col != "tag" else row["tag"]
    if op == "missing":
        return x is None or (isinstance(x, float) and np.isnan(x))
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return False
    if op == "in":
        return x in v
    return {">=": x >= v, "<": x < v, "==": x == v}[op]


conditions = st.one_of(
    st.tuples(st.sampled_from(COLS), st.sampled_from([">=", "<"]), st.integers(-5, 15).map(float)),
    st.tuples(st.sampled_from(COLS), st.just("missing"), st.none()),
    st.tuples(st.just("tag"), st.just("=="), st.sampled_from(["a", "b"])),
    st.tuples(st.just("tag"), st.just("in"), st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2)),
)


@st.composite
def schemes(draw):
    """A random scheme: fixed bands, 1–3 dimensions, 2–4 tiers, optional gates and overrides."""
    indicators, spec = {}, {}
    for col in COLS:
        edges = sorted(draw(st.sets(st.integers(0, 10), min_size=1, max_size=3)))
        pts = draw(st.lists(st.integers(0, 100), min_size=len(edges) + 1, max_size=len(edges) + 1))
        bands = [{"below": edges[0], "points": pts[0]}] + [
            {"from": e, **({"below": edges[i + 1]} if i + 1 < len(edges) else {}), "points": pts[i + 1]}
            for i, e in enumerate(edges)]
        mp = draw(st.integers(0, 100))
        indicators[col] = {"bands": bands, "missing_points": mp}
        spec[col] = (edges, pts, mp)
    n_dims = draw(st.integers(1, 3))
    used = draw(st.permutations(COLS))
    dims, k = {}, 0
    for i in range(n_dims):
        take = list(used[k:k + 1]) if i < n_dims - 1 else list(used[k:])
        k += len(take)
        raw = [draw(st.integers(1, 9)) for _ in take]
        dims[f"d{i}"] = {"weight": 0, "indicators": {c: r / sum(raw) for c, r in zip(take, raw)}}
    raw = [draw(st.integers(1, 9)) for _ in dims]
    for (name, dim), r in zip(dims.items(), raw):
        dim["weight"] = r / sum(raw)
    n_tiers = draw(st.integers(2, 4))
    cuts = sorted(draw(st.sets(st.integers(1, 99), min_size=n_tiers - 1, max_size=n_tiers - 1)), reverse=True)
    tiers = []
    for j in range(n_tiers):
        t = {"id": f"t{j}", "label": f"tier {j}'s"}
        if j < n_tiers - 1:
            t["min_score"] = float(cuts[j])
            if draw(st.booleans()):
                t["gate"] = draw(conditions)
        tiers.append(t)
    overrides = []
    for i in range(draw(st.integers(0, 2))):
        o = {"id": f"o{i}", "when": draw(conditions), "action": draw(st.sampled_from(["promote", "demote"])),
             "by": draw(st.integers(1, 2)), "reason": "it's a test"}
        bound = draw(st.sampled_from([None, *range(n_tiers)]))
        if bound is not None:
            o["not_above" if o["action"] == "promote" else "not_below"] = f"t{bound}"
        overrides.append(o)
    doc = {"id": "random", "indicators": indicators, "dimensions": dims,
           "tiers": [{**t, **({"gate": _cond_text(t["gate"])} if "gate" in t else {})} for t in tiers],
           "overrides": [{**o, "when": _cond_text(o["when"])} for o in overrides]}
    try:
        scheme = Scheme.model_validate(doc)
    except ValueError:  # a cut-off above the best possible score
        from hypothesis import assume

        assume(False)
    return scheme, spec, dims, tiers, overrides


def reference_tier(row, spec, dims, tiers, overrides) -> str:
    """The grading rules for one customer, written out plainly (bands, weights, cut-offs, gates, overrides)."""
    def points(col):
        edges, pts, mp = spec[col]
        x = row[col]
        if x is None or np.isnan(x):
            return mp
        return pts[sum(1 for e in edges if x >= e)]

    total = 0.0
    for dim in dims.values():
        ds = 0.0
        for col, w in dim["indicators"].items():
            ds += w * points(col)
        total += dim["weight"] * ds
    score = round(total * 1e9) / 1e9  # np.round(x, 9)
    rank = len(tiers) - 1
    for j, t in enumerate(tiers[:-1]):
        if score >= t["min_score"] and ("gate" not in t or _cond_holds(t["gate"], row)):
            rank = j
            break
    pos = {t["id"]: j for j, t in enumerate(tiers)}
    for o in overrides:
        if not _cond_holds(o["when"], row):
            continue
        step = o["by"] if o["action"] == "demote" else -o["by"]
        new = min(max(rank + step, 0), len(tiers) - 1)
        if step > 0 and "not_below" in o:
            new = min(new, max(rank, pos[o["not_below"]]))
        if step < 0 and "not_above" in o:
            new = max(new, min(rank, pos[o["not_above"]]))
        rank = new
    return tiers[rank]["id"]


values = st.one_of(st.just(float("nan")), st.integers(-2, 12).map(float), st.floats(-2, 12, allow_nan=False))


@settings(max_examples=25, deadline=None)
@given(schemes(), st.lists(st.tuples(values, values, values, values, st.sampled_from(["a", "b", "c", None])),
                           min_size=1, max_size=30))
def test_random_schemes_grade_like_a_plain_reference(drawn, rows):
    scheme, spec, dims, tiers, overrides = drawn
    f = pd.DataFrame({"customer_id": pd.array([f"C{i}" for i in range(len(rows))], dtype="string"),
                      **{c: [r[i] for r in rows] for i, c in enumerate(COLS)},
                      "tag": pd.array([r[4] for r in rows], dtype="string")})
    got = graded(f, scheme)
    expected = [reference_tier({**{c: r[i] for i, c in enumerate(COLS)}, "tag": r[4]}, spec, dims, tiers, overrides)
                for r in rows]
    assert got["tier"].tolist() == expected


# ---------------------------------------------------------------- the SQL text

def test_analyst_text_is_escaped_never_pasted():
    """Category keys reach the SQL as escaped literals; reasons, labels and strategies never reach it
    (texts are written from codes)."""
    scheme = load_scheme("s1_four_tier").model_copy(deep=True)
    bad = "it's \\ a '; DROP TABLE snap; --"
    ind = scheme.indicators["industry_growth"]
    ind.bands, ind.column, ind.map, ind.missing_points = None, "industry", {bad: 100.0, "Logistics": 60.0}, 40.0
    scheme.overrides[0].reason = "reason's text"
    scheme.tiers[0].label = "core's"
    scheme.tiers[0].strategy.actions = ["call 'em"]
    f = synthetic_snapshot(300, seed=2).assign(complaints_12m=5.0)
    f["industry"] = pd.array(np.where(np.arange(300) % 3 == 0, bad, f["industry"].astype(object)), dtype="string")
    cols = list(f.columns)
    duck = compile_scheme(scheme, cols, DUCKDB, kinds=column_kinds(f))
    assert "'it''s \\ a ''; DROP TABLE snap; --'" in duck
    assert "reason's" not in duck and "core's" not in duck and "'em" not in duck
    got = graded(f, scheme)
    assert (got.loc[f["industry"] == bad, "pts__industry_growth"] == 100).all()
    assert (got.loc[f["industry"] == "Logistics", "pts__industry_growth"] == 60).all()
    hit = got["overrides"] != ""
    assert hit.any() and got.loc[hit, "overrides"].str.endswith("(reason's text)").all()

    spark = compile_scheme(scheme, cols, SPARK, kinds=column_kinds(f))
    assert "'it\\'s \\\\ a \\'; DROP TABLE snap; --'" in spark
    assert "round_even(" not in spark and "rint(" in spark and '"' not in spark.replace('\\"', "")


@pytest.mark.parametrize("sid", SCHEME_IDS)
def test_spark_sql_is_generated_for_every_scheme(sid):
    scheme = load_scheme(sid)
    cols = ["customer_id", "group", *sorted(scheme.inputs())]
    sql = compile_scheme(scheme, cols, SPARK, group_col="group" if scheme.group_by else None)
    assert sql.startswith("WITH ") and " FROM snap" in sql and "`customer_id`" in sql
    assert "round_even(" not in sql
    inel = compile_ineligible(scheme, cols, SPARK)
    assert inel.startswith("SELECT `customer_id` FROM snap WHERE ")


def test_missing_columns_are_named():
    from segment.errors import MissingInputs

    with pytest.raises(MissingInputs, match="budget_growth"):
        compile_scheme(S1, ["customer_id", "annual_amount"], DUCKDB)
