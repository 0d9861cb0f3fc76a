"""Conditions, scheme validation and the grading engine, checked against S1's own numbers (SEEDS.md)."""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from segment.grading.conditions import parse
from segment.errors import ConditionError, ConfigError, MissingInputs
from segment.grading.engine import grade, indicator_points
from segment.grading.scheme import load_scheme

from ..conftest import write


# ---------------------------------------------------------------- conditions

FRAME = pd.DataFrame({"a": [1.0, 5.0, np.nan, 10.0], "tag": ["x", "y", "x", None]})


@pytest.mark.parametrize("text, expected", [
    ("a >= 5", [False, True, False, True]),
    ("a < 5 or a > 9", [True, False, False, True]),
    ("not a >= 5", [True, False, True, False]),  # missing compares false, so `not` is true
    ("a is missing", [False, False, True, False]),
    ("a is not missing and tag == 'x'", [True, False, False, False]),
    ("tag in ['y', 'z']", [False, True, False, False]),
    ("tag not in ['y']", [True, False, True, False]),
    ("(a > 0) and (a < 6)", [True, True, False, False]),
    ("a >= 0.0005万", [False, True, False, True]),  # 0.0005万 = 5
    ("a > 500%", [False, False, False, True]),      # 500% = 5
    ("true", [True] * 4),
])
def test_condition_semantics(text, expected):
    assert parse(text).evaluate(FRAME).tolist() == expected


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('echo hi')", "unexpected character '.'"),
    ("__import__('os')", "expected a comparison"),
    ("a >= ", "ends too early"),
    ("a >= 5 b", "unexpected 'b'"),
    ("a ; 5", "unexpected character ';'"),
    ("", "empty"),
    ("a in [1, ", "ends too early"),
])
def test_condition_errors(text, message):
    with pytest.raises(ConditionError, match=message):
        parse(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_parses_or_fails_cleanly(text):
    try:
        cond = parse(text)
    except ConditionError:
        return
    assert isinstance(cond.names, set)


# ---------------------------------------------------------------- S1 from the seed

S1 = load_scheme("s1_four_tier")


def s1_frame(**over) -> pd.DataFrame:
    """One customer who meets every S1 top band and gate; keyword overrides change indicators."""
    base = dict(customer_id="C1", annual_amount=600_000.0, profit_12m=150_000.0, tenure_years=3.0,
                industry_growth=0.2, budget_growth=0.25, satisfaction_latest=9.0, complaint_resolution_hours=10.0,
                referrals_12m=2.0, complaints_12m=0.0, major_complaints_12m=0.0, consultations_6m=0.0, recency_days=10.0)
    base.update(over)
    return pd.DataFrame([base])


@pytest.mark.parametrize("amount, points", [
    (500_000, 100), (499_999.99, 80), (100_000, 80), (99_999, 60), (10_000, 60), (9_999, 40), (0, 40),
    (-50, 40), (np.nan, 40),
])
def test_s1_annual_amount_bands(amount, points):
    """≥ 50万 → 100, 10–50万 → 80, 1–10万 → 60, < 1万 → 40 (SEEDS S1)."""
    assert indicator_points(pd.Series([amount]), S1.indicators["annual_amount"])[0] == points


def test_s1_weights_and_top_score():
    w = S1.dimensions
    assert (w["value"].weight, w["potential"].weight, w["relationship"].weight) == (0.5, 0.3, 0.2)
    assert S1.max_score() == pytest.approx(100)
    g = grade(s1_frame(), S1).frame.iloc[0]
    assert g["score"] == pytest.approx(100) and g["tier"] == "core" and g["tier_label"] == "核心客户"


@pytest.mark.parametrize("score_target, tier", [(90, "core"), (89.9, "important"), (70, "important"),
                                                (69.9, "ordinary"), (50, "ordinary"), (49.9, "potential")])
def test_s1_cutoffs_90_70_50(score_target, tier):
    """Tiers by total score: core ≥ 90, important 70–89, ordinary 50–69, potential < 50 — gates off."""
    scheme = S1.model_copy(deep=True)
    for t in scheme.tiers:
        t.gate = None
    scheme.overrides = []
    # a one-indicator frame whose points equal the target score
    scheme.indicators["annual_amount"].bands[0].points = score_target
    frame = s1_frame(annual_amount=0.0)
    for ind, w in scheme.weights().items():
        if ind != "annual_amount":
            scheme.indicators[ind].bands = scheme.indicators[ind].rubric = None
            scheme.indicators[ind].map = {"never": 0}
            scheme.indicators[ind].missing_points = score_target
    assert grade(frame, scheme).frame["tier"].iloc[0] == tier


def test_s1_hand_computed_score_and_explanation():
    # value: 0.5·80 + 0.3·60 + 0.2·80 = 74; potential: 0.5·60 + 0.5·40 = 50;
    # relationship: 0.4·60 + 0.3·100 (no complaint) + 0.3·40 = 66 → score 0.5·74 + 0.3·50 + 0.2·66 = 65.2 → ordinary
    f = s1_frame(annual_amount=200_000.0, profit_12m=5_000.0, tenure_years=1.5, industry_growth=0.07,
                 budget_growth=np.nan, satisfaction_latest=7.5, complaint_resolution_hours=np.nan, referrals_12m=0.0)
    g = grade(f, S1).frame.iloc[0]
    assert (g["dim__value"], g["dim__potential"], g["dim__relationship"]) == pytest.approx((74, 50, 66))
    assert g["score"] == pytest.approx(65.2) and g["raw_tier"] == "ordinary" and g["tier"] == "ordinary"
    # top contributions: amount 0.25·80 = 20, profit 0.15·60 = 9, industry 0.15·60 = 9 (stable order)
    assert (g["top1"], g["top2"], g["top3"]) == ("annual_amount", "profit_12m", "industry_growth")
    assert g["points_to_next_tier"] == pytest.approx(4.8)
    assert g["explanation"] == "annual_amount +20.0, profit_12m +9.0, industry_growth +9.0; 4.8 points short of important"
    assert g["follow_up_days"] == 180 and "标准化服务" in g["strategy"]


def test_s1_core_gate_holds_back_a_high_score():
    """Score 100 but satisfaction 8 < 9: the core gate fails → important (whose gate passes)."""
    g = grade(s1_frame(satisfaction_latest=8.0), S1).frame.iloc[0]
    assert g["score"] == pytest.approx(98.4)  # relationship: 0.4·80 + 0.3·100 + 0.3·100 = 92 → 100 − 0.2·8
    assert (g["raw_tier"], g["gates_failed"], g["tier"]) == ("core", "core", "important")
    assert g["explanation"].endswith("score reaches core but its gate fails")


def test_s1_complaints_demotion():
    """High spend but frequent complaints → one tier lower (SEEDS step 5), with the reason recorded."""
    g = grade(s1_frame(complaints_12m=3.0, satisfaction_latest=9.0), S1).frame.iloc[0]
    assert g["raw_tier"] == "core" and g["tier"] == "important"
    assert g["overrides"].startswith("frequent_complaints: core → important (高消费但频繁投诉")
    # never below ordinary
    g = grade(s1_frame(complaints_12m=5.0, annual_amount=150_000.0, tenure_years=0.5, satisfaction_latest=5.0),
              S1).frame.iloc[0]
    assert g["tier"] == "ordinary" and g["overrides"] == ""


def test_missing_indicator_is_named_before_grading():
    with pytest.raises(MissingInputs, match="satisfaction_latest.*interactions"):
        grade(s1_frame().drop(columns=["satisfaction_latest"]), S1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 2_000_000), min_size=2, max_size=30))
def test_raising_the_amount_never_lowers_the_score(amounts):
    f = pd.concat([s1_frame(customer_id=f"C{i}", annual_amount=a) for i, a in enumerate(amounts)], ignore_index=True)
    up = f.assign(annual_amount=f["annual_amount"] * 1.5 + 1)
    assert (grade(up, S1).frame["score"].to_numpy() >= grade(f, S1).frame["score"].to_numpy()).all()


def scheme_file(tmp_path, body: str):
    return write(tmp_path / "bad.yaml", textwrap.dedent(body))


BASE = """\
    id: t
    indicators:
      x:
        bands:
          - {below: 10, points: 1}
          - {from: 10, points: 5}
    dimensions:
      d: {weight: 1, indicators: {x: 1}}
    tiers:
      - {id: top, min_score: 3}
      - {id: rest}
    """


@pytest.mark.parametrize("old, new, key, message", [
    ("{from: 10, points: 5}", "{from: 12, points: 5}", "indicators.x.bands", "gap between bands 0 and 1"),
    ("{from: 10, points: 5}", "{from: 8, points: 5}", "indicators.x.bands", "bands 0 and 1 overlap"),
    ("{weight: 1,", "{weight: 0.99,", "dimensions", "weights sum to 0.99, not 1"),
    ("indicators: {x: 1}", "indicators: {y: 1}", "dimensions.d.indicators.y", "unknown indicator"),
    ("min_score: 3}", "min_score: 6}", "tiers.0.min_score", "above the highest possible score 5"),
    ("{id: rest}", "{id: rest}\n    overrides:\n      - {id: o, when: 'x > 1', action: demote, reason: r, not_below: nowhere}",
     "overrides.0.not_below", "unknown tier 'nowhere'"),
    ("min_score: 3}", "min_score: 3, gate: 'x >> 2'}", "tiers.0.gate", "does not parse"),
])
def test_scheme_errors_name_file_key_and_fix(tmp_path, old, new, key, message):
    path = scheme_file(tmp_path, BASE.replace(old, new))
    with pytest.raises(ConfigError) as e:
        load_scheme(path)
    text = str(e.value)
    assert text.startswith(f"{path}, key `{key}`") and message in text


def test_yaml_python_tags_are_refused(tmp_path):
    path = scheme_file(tmp_path, BASE + "    x: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_scheme(path)


def test_evaluating_an_unknown_name_is_a_clear_error():
    with pytest.raises(ConditionError, match="unknown indicator\\(s\\) None, os in 'None >= a or os > 1'"):
        parse("None >= a or os > 1").evaluate(FRAME)


# ---------------------------------------------------------------- text from codes

MIXED = """\
id: mixed
indicators:
  amount:
    bands:
      - {below: 100, points: 1}
      - {from: 100, below: 500, points: 3}
      - {from: 500, below: 2000, points: 5}
    missing_points: 0
  sector:
    map: {a: 5, b: 3, c: 1}
    missing_points: 2
  care:
    rubric:
      - {points: 5, when: "visits >= 3 and amount >= 100"}
      - {points: 3, when: "visits >= 1"}
    missing_points: 1
  visits:
    bands:
      - {from: 0, below: 1, points: 1}
      - {from: 1, below: 3, points: 3}
      - {from: 3, points: 5}
    missing_points: 0
dimensions:
  value: {weight: 0.6, indicators: {amount: 0.5, sector: 0.5}}
  bond: {weight: 0.4, indicators: {care: 0.7, visits: 0.3}}
adjustments:
  - {id: bonus, when: "sector == 'a'", multiply: 1.1, reason: r}
  - {id: penalty, when: "complaints >= 2", multiply: 0.8, reason: r}
tiers:
  - {id: A, label: top, min_score: 3.6, gate: "complaints == 0"}
  - {id: B, min_score: 3, when: "visits >= 1", strategy: {actions: [call, visit], owner: sales}}
  - {id: C, min_score: 2, gate: "amount >= 100", strategy: {owner: service}}
  - {id: D}
overrides:
  - {id: push, when: "visits >= 4", action: promote, by: 2, not_above: B, reason: loyal}
  - {id: drop, when: "complaints != 0 and complaints >= 3", action: demote, by: 1, reason: noisy}
"""


def mixed_frame(n: int, seed: int = 7) -> pd.DataFrame:
    """Values on and around every bound, missing ones and unknown categories."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": [f"C{i}" for i in range(n)],
        "amount": rng.choice([np.nan, -5, 0, 99.99, 100, 499, 500, 1999, 2000, 2500], n),
        "sector": pd.array(rng.choice(np.array(["a", "b", "c", "d", None], dtype=object), n), dtype="string"),
        "visits": rng.choice([np.nan, -1, 0, 1, 2, 3, 4, 5], n),
        "complaints": rng.choice([0.0, 1.0, 2.0, 3.0, np.nan], n),
    })


def s1_random_frame(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pick = lambda *v: rng.choice(np.array(v, dtype="float64"), n)  # noqa: E731
    return pd.DataFrame({
        "customer_id": [f"C{i}" for i in range(n)],
        "annual_amount": pick(np.nan, 0, 9_999, 10_000, 99_999, 100_000, 499_999, 500_000, 2e6),
        "profit_12m": pick(np.nan, 0, 2_000, 19_999, 20_000, 100_000, 3e5),
        "tenure_years": pick(np.nan, 0.5, 1, 1.9, 2, 7),
        "industry_growth": pick(np.nan, 0, 0.05, 0.1, 0.149, 0.15, 0.3),
        "budget_growth": pick(np.nan, -0.1, 0.1, 0.2, 0.5),
        "satisfaction_latest": pick(np.nan, 6, 7, 8, 9, 10),
        "complaint_resolution_hours": pick(np.nan, 5, 24, 72, 168, 500),
        "referrals_12m": pick(np.nan, 0, 1, 2, 5),
        "complaints_12m": pick(0, 1, 3, 5),
        "major_complaints_12m": pick(0, 0, 1),
        "consultations_6m": pick(0, 0, 1, 2),
        "recency_days": pick(np.nan, 10, 181, 182, 400),
    })


def as_values(f: pd.DataFrame) -> pd.DataFrame:
    return f.astype({c: object for c in f.columns if isinstance(f[c].dtype, pd.CategoricalDtype)})


@pytest.mark.parametrize("which", ["s1", "mixed"])
def test_text_built_from_codes_equals_grading_row_by_row(tmp_path, which):
    """A graded population shares its texts by code; each row must read exactly as when it is graded
    on its own (where every text is built for that one row), and the categoricals must be what
    ``pd.Categorical`` makes of the texts: sorted categories (explanations: in order of appearance)."""
    if which == "s1":
        scheme, snap = S1, s1_random_frame(120)
    else:
        scheme, snap = load_scheme(write(tmp_path / "mixed.yaml", MIXED)), mixed_frame(120)
    batch = grade(snap, scheme, as_of="2026-09-30").frame
    one_by_one = pd.concat([grade(snap.iloc[[i]], scheme, as_of="2026-09-30").frame for i in range(len(snap))],
                           ignore_index=True)
    assert list(batch.columns) == list(one_by_one.columns)
    pd.testing.assert_frame_equal(as_values(batch), as_values(one_by_one), check_dtype=False)
    for c in ("adjustments", "gates_failed", "overrides", "tier_label", "strategy", "owner"):
        if c in batch:
            assert list(batch[c].cat.categories) == sorted(set(batch[c].astype(object))), c
    assert list(batch["explanation"].cat.categories) == list(dict.fromkeys(batch["explanation"].astype(object)))
    if which == "mixed":  # the scheme's every branch is taken
        assert {"bonus ×1.1", "penalty ×0.8", "bonus ×1.1; penalty ×0.8", ""} <= set(batch["adjustments"])
        assert batch["overrides"].str.contains("push: ").any() and batch["overrides"].str.contains("drop: ").any()
        assert (batch["gates_failed"] != "").any() and set(batch["tier"]) == {"A", "B", "C", "D"}


def test_s1_explanation_equals_the_text_built_per_customer():
    """The explanation, rebuilt customer by customer from the frame's own points and score."""
    snap = s1_random_frame(300, seed=11)
    g = grade(snap, S1, as_of="2026-09-30").frame
    weights = S1.weights()
    ids = [t.id for t in S1.tiers]
    cut = [t.min_score if t.min_score is not None else -np.inf for t in S1.tiers]
    gated = {t.id: parse(t.gate).evaluate(snap) for t in S1.tiers if t.gate}
    for i, row in g.iterrows():
        contrib = [(ind, S1.score_factor * w * row[f"pts__{ind}"]) for ind, w in weights.items()]
        top = sorted(contrib, key=lambda x: -x[1])[:3]  # stable: ties keep the scheme's order
        text = ", ".join(f"{ind} +{round(v, 1):.1f}" for ind, v in top)
        rank = next(j for j in range(len(ids)) if j == len(ids) - 1 or (
            row["score"] >= cut[j] and gated.get(ids[j], np.ones(len(g), bool))[i]))
        if rank > 0:
            gap = max(cut[rank - 1] - row["score"], 0)
            text += (f"; {gap:.1f} points short of {ids[rank - 1]}" if gap > 0
                     else f"; score reaches {ids[rank - 1]} but its gate fails")
        assert row["explanation"] == text, (i, row["explanation"], text)
        assert [row["top1"], row["top2"], row["top3"]] == [ind for ind, _ in top]
        assert row["gates_failed"] == ";".join(ids[j] for j in range(rank) if ids[j] in gated and
                                               row["score"] >= cut[j] and not gated[ids[j]][i])
