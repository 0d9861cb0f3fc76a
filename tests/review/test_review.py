"""The review loop (SEEDS step 5, issue 5 deliverable 3): selection, sheet export, apply, audit log."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from segment.demo.write import write_demo
from segment.errors import ConfigError, SegmentError
from segment.pipeline import grade_data
from segment.review.audit import AUDIT_HEADER, reviewer_changes
from segment.review.params import ReviewParams, load_review_params
from segment.review.apply import apply_review
from segment.review.sheet import export_review
from segment.review.select import select_for_review
from segment.grading.scheme import load_scheme

from ..conftest import ROOT, write

S1 = ROOT / "params" / "schemes" / "s1_four_tier.yaml"
WHEN = "2026-10-08T09:30:00Z"


@pytest.fixture(scope="module")
def scheme():
    return load_scheme(S1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("demo"), customers=500, seed=3)


@pytest.fixture(scope="module")
def graded(demo):
    return grade_data(demo, S1, "2026-09-30")


@pytest.fixture(scope="module")
def previous(demo):
    return grade_data(demo, S1, "2026-06-30").frame


@pytest.fixture(scope="module")
def customers(graded):
    return graded.loaded.tables.customers


@pytest.fixture
def quarter(graded, previous, tmp_path):
    """reports/2026Q3/grading.parquet + manifest.json, reports/2026Q2/grading.parquet, as `segment report` lays them out."""
    q = tmp_path / "reports" / "2026Q3"
    q.mkdir(parents=True)
    graded.frame.to_parquet(q / "grading.parquet", index=False)
    (q / "manifest.json").write_text(json.dumps({"quarter": "2026Q3", "as_of": "2026-09-30",
                                                 "scheme": "s1_four_tier"}), encoding="utf-8")
    p = tmp_path / "reports" / "2026Q2"
    p.mkdir()
    previous.to_parquet(p / "grading.parquet", index=False)
    return q


def chained(first: str, stems: list[str]) -> str:
    """``first`` and the ``stems`` as the audit log chains them: each line ends with the sha256 of the line before."""
    text = first
    for stem in stems:
        text += f"{stem},{hashlib.sha256(text.splitlines(keepends=True)[-1].encode('utf-8')).hexdigest()}\n"
    return text


def sample_rows(sel) -> pd.DataFrame:
    t = sel.table()
    return t[t["why"].str.split("; ").map(lambda parts: "sample" in parts)]


# ------------------------------------------------------------------------------------------------
# params
# ------------------------------------------------------------------------------------------------

def test_params_file_and_defaults(tmp_path):
    p = load_review_params(ROOT / "params" / "reports.yaml")
    assert p == ReviewParams()
    assert (p.sample_share, p.borderline_points, p.borderline_share, p.max_share, p.extras_max_share,
            p.big_mover_tiers, p.include_pii_in_sheet) == (0.15, None, 0.05, 0.20, 0.05, 2, True)
    assert p.anomaly == "annual_amount >= 50万 and complaints_12m >= 3"
    assert load_review_params(write(tmp_path / "a.yaml", "privacy: {pii_columns: [email]}\n")) == ReviewParams()
    assert load_review_params(write(tmp_path / "b.yaml", "review: {sample_share: 12%, anomaly: null}\n")).sample_share == 0.12


@pytest.mark.parametrize("text, key, words", [
    ("review: {sample_share: 0.3}\n", "review.sample_share", "between 0.10 and 0.20"),
    ("review: {sample_share: 5%}\n", "review.sample_share", "between 0.10 and 0.20"),
    ("review: {anomaly: 'annual_amount >>= 3'}\n", "review.anomaly", "does not parse"),
    ("review: {big_mover_tiers: 0}\n", "review.big_mover_tiers", "greater than or equal to 1"),
    ("review: {sample_shares: 0.15}\n", "review.sample_shares", "unknown key"),
])
def test_bad_params_name_the_key(tmp_path, text, key, words):
    path = write(tmp_path / "reports.yaml", text)
    with pytest.raises(ConfigError) as e:
        load_review_params(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}, key `{key}`") and words in msg


# ------------------------------------------------------------------------------------------------
# selection
# ------------------------------------------------------------------------------------------------

def test_sample_is_stratified_by_tier_and_seeded(graded, scheme):
    params = ReviewParams(sample_share=0.15, seed=11)
    sel = select_for_review(graded.frame, scheme, params)
    picked = sample_rows(sel)["tier"].value_counts()
    sizes = graded.frame["tier"].astype(str).value_counts()
    assert set(picked.index) == set(sizes[sizes > 0].index)          # every non-empty tier, core has 1 customer
    for tier, n in sizes.items():
        k = picked.get(tier, 0)
        assert k == max(1, int(np.floor(0.15 * n + 0.5))), tier
        assert k == 1 or abs(k / n - 0.15) <= 1 / n, tier
    # same inputs and seed → the same rows, whatever the order of the input
    shuffled = graded.frame.sample(frac=1, random_state=1)
    pd.testing.assert_frame_equal(select_for_review(shuffled, scheme, params).table(), sel.table())
    other = select_for_review(graded.frame, scheme, ReviewParams(sample_share=0.15, seed=12))
    assert set(sample_rows(other)["customer_id"]) != set(sample_rows(sel)["customer_id"])
    salted = select_for_review(graded.frame, scheme, params, salt="2026Q4")
    assert set(sample_rows(salted)["customer_id"]) != set(sample_rows(sel)["customer_id"])
    # columns and order: tier rank, then customer_id; decisions empty
    t = sel.table()
    assert list(t.columns) == ["customer_id", "tier", "tier_label", "score", "previous_tier", "why", "explanation",
                               "overrides", "confirm", "new_tier", "reason", "reviewer", "expires"]
    rank = t["tier"].map({x.id: i for i, x in enumerate(scheme.tiers)})
    assert list(zip(rank, t["customer_id"])) == sorted(zip(rank, t["customer_id"]))
    assert (t[["confirm", "new_tier", "reason", "reviewer", "expires"]] == "").all().all()
    # the notebook view: counts by reason × tier, no customer data
    counts = sel.counts()
    assert counts.loc["graded", "total"] == len(graded.frame) and counts.loc["sample", "core"] == 1
    assert counts.loc["selected (any reason)", "total"] == len(sel)
    page = sel._repr_html_()
    assert "核心客户" in page and "borderline" in page and not any(c in page for c in t["customer_id"].head(50))


def hand_made(scheme) -> tuple[pd.DataFrame, pd.DataFrame]:
    """20 customers; the ones named in the tests are hand-checked against S1's cut-offs 90 / 70 / 50."""
    rows = {  # id: (tier, score, overrides, annual_amount, complaints_12m)
        "K01": ("important", 72.0, "", 200000, 0),      # 2.0 above important → borderline
        "K02": ("important", 87.5, "", 200000, 0),      # 2.5 below core → borderline
        "K03": ("important", 80.0, "", 200000, 0),      # 10 from both → not borderline
        "K04": ("ordinary", 53.0, "", 30000, 0),        # 3.0 above ordinary, N inclusive → borderline
        "K05": ("ordinary", 66.0, "", 30000, 0),        # 4.0 below important → not
        "K06": ("ordinary", 75.0, "frequent_complaints: important → ordinary (high spend but frequent complaints)",
                300000, 4),                              # override
        "K07": ("important", 78.0, "", 600000, 4),      # ≥ 50万 and ≥ 3 complaints → anomaly
        "K08": ("important", 78.0, "", 600000, 2),      # too few complaints → not
        "K09": ("important", 78.0, "", 400000, 5),      # too little spend → not
        "K10": ("core", 95.0, "", 900000, 0),           # previous: potential → 3 tiers up → big mover
        "K11": ("important", 76.0, "", 200000, 0),      # previous: ordinary → 1 tier → not
        "K12": ("potential", 40.0, "", 1000, 0),        # previous: important → 2 down → big mover
        "K13": ("potential", 30.0, "", 1000, 0),        # new this quarter: no previous tier
    }
    rows.update({f"K{i:02d}": ("potential", 20.0 + i, "", 1000, 0) for i in range(14, 21)})
    info = {t.id: (i, t.label) for i, t in enumerate(scheme.tiers)}
    g = pd.DataFrame([{"customer_id": k, "tier": v[0], "tier_rank": info[v[0]][0], "tier_label": info[v[0]][1],
                       "score": v[1], "overrides": v[2], "annual_amount": float(v[3]), "complaints_12m": v[4],
                       "explanation": f"explained {k}"} for k, v in rows.items()])
    g["tier"] = pd.Categorical(g["tier"], [t.id for t in scheme.tiers])
    prev_tier = {k: v[0] for k, v in rows.items() if k != "K13"}
    prev_tier.update({"K10": "potential", "K11": "ordinary", "K12": "important"})
    prev = pd.DataFrame({"customer_id": list(prev_tier), "tier": list(prev_tier.values())})
    return g.sample(frac=1, random_state=0), prev


NO_CAP = dict(max_share=1.0, extras_max_share=1.0)  # the rules alone, without the caps on the sheet's size


def test_borderline_override_big_mover_and_anomaly_are_included(scheme):
    g, prev = hand_made(scheme)
    sel = select_for_review(g, scheme, ReviewParams(sample_share=0.10, seed=1, borderline_points=3, **NO_CAP), prev)
    why = sel.table().set_index("customer_id")["why"]

    def reasons(cid):
        return why.get(cid, "")

    assert "borderline (2.0 above important)" in reasons("K01")
    assert "borderline (2.5 below core)" in reasons("K02")
    assert "borderline (3.0 above ordinary)" in reasons("K04")
    for cid in ("K03", "K05"):
        assert "borderline" not in reasons(cid)
    assert "override" in reasons("K06").split("; ")
    assert "anomaly" in reasons("K07").split("; ")
    for cid in ("K08", "K09"):
        assert "anomaly" not in reasons(cid)
    assert "big mover (potential → core, 3 tiers up)" in reasons("K10")
    assert "big mover (important → potential, 2 tiers down)" in reasons("K12")
    assert "big mover" not in reasons("K11")
    t = sel.table().set_index("customer_id")
    assert t.loc["K10", "previous_tier"] == "potential" and t.loc["K01", "explanation"] == "explained K01"
    if "K13" in t.index:
        assert t.loc["K13", "previous_tier"] == ""
    assert sel.notes == []
    # a column the anomaly rule reads is missing: the rule is skipped with a note, nothing crashes
    sel2 = select_for_review(g.drop(columns="complaints_12m"), scheme, ReviewParams(seed=1, borderline_points=3, **NO_CAP), prev)
    assert "anomaly" not in " ".join(sel2.table()["why"])
    assert len(sel2.notes) == 1 and "complaints_12m" in sel2.notes[0] and "skipped" in sel2.notes[0]
    assert "complaints_12m" in sel2._repr_html_()
    # … and the snapshot can supply it
    ctx = g[["customer_id", "complaints_12m"]]
    sel3 = select_for_review(g.drop(columns="complaints_12m"), scheme, ReviewParams(seed=1, borderline_points=3, **NO_CAP), prev, context=ctx)
    assert "anomaly" in sel3.table().set_index("customer_id").loc["K07", "why"]


def test_demo_selection_matches_an_independent_count(graded, previous, scheme):
    params = ReviewParams(seed=5, borderline_points=3, **NO_CAP)
    sel = select_for_review(graded.frame, scheme, params, previous, context=graded.snapshot)
    t = sel.table().set_index("customer_id")
    f = graded.frame.set_index("customer_id")
    near = np.min(np.abs(f["score"].to_numpy()[:, None] - np.array([90, 70, 50])[None, :]), axis=1) <= 3 + 1e-9
    assert set(t.index[t["why"].str.contains("borderline")]) == set(f.index[near])
    snap = graded.snapshot.set_index("customer_id").loc[f.index]
    anomalies = f.index[(snap["annual_amount"] >= 500000) & (snap["complaints_12m"] >= 3)]
    assert set(t.index[t["why"].str.contains("anomaly")]) == set(anomalies)
    rank = {x.id: i for i, x in enumerate(scheme.tiers)}
    p = previous.set_index("customer_id")["tier"].astype(str).map(rank)
    moved = (f["tier"].astype(str).map(rank) - p.reindex(f.index)).abs() >= 2
    assert set(t.index[t["why"].str.contains("big mover")]) == set(f.index[moved.fillna(False).astype(bool)])


# ------------------------------------------------------------------------------------------------
# export → edit → apply
# ------------------------------------------------------------------------------------------------

def read_sheet(path: Path) -> pd.DataFrame:
    if path.suffix == ".xlsx":
        return pd.read_excel(path, sheet_name="review", dtype=str, engine="openpyxl").fillna("")
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def edit(path: Path, decisions: dict[int, dict]) -> Path:
    """Write decisions into sheet rows (0-based data index) the way a reviewer would."""
    if path.suffix == ".xlsx":
        wb = openpyxl.load_workbook(path)
        ws = wb["review"]
        head = [c.value for c in ws[1]]
        for i, values in decisions.items():
            for col, v in values.items():
                ws.cell(row=i + 2, column=head.index(col) + 1, value=v)
        wb.save(path)
    else:
        df = read_sheet(path)
        for i, values in decisions.items():
            for col, v in values.items():
                df.loc[i, col] = v
        df.to_csv(path, index=False, encoding="utf-8-sig")
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_edit_apply_writes_the_approved_grading_and_the_audit_log(quarter, scheme, customers):
    params = ReviewParams(seed=7)
    files = export_review(quarter / "grading.parquet", scheme, quarter, params,
                          previous_path=quarter.parent / "2026Q2" / "grading.parquet", customers=customers)
    assert files == [quarter / "review_sheet.xlsx", quarter / "review_sheet.csv"]
    wb = openpyxl.load_workbook(files[0])
    assert wb.sheetnames == ["review", "instructions"]
    ws = wb["review"]
    assert ws.freeze_panes == "B2"
    head = [c.value for c in ws[1]]
    formulas = {dv.formula1 for dv in ws.data_validations.dataValidation}
    assert '"yes,no,是,否"' in formulas and any("instructions" in f for f in formulas)
    tier_cells = [r[0] for r in wb["instructions"].iter_rows(values_only=True)]
    assert all(t.id in tier_cells for t in scheme.tiers)
    assert head[-5:] == ["confirm", "new_tier", "reason", "reviewer", "expires"]

    sheet = read_sheet(files[0])
    assert sheet["customer_id"].tolist() == read_sheet(files[1])["customer_id"].tolist()
    imp = sheet.index[sheet["tier"] == "important"][0]
    ordi = sheet.index[sheet["tier"] == "ordinary"][0]
    pot = sheet.index[sheet["tier"] == "potential"][0]
    edit(files[0], {
        imp: {"confirm": "否", "new_tier": "ordinary", "reason": "高消费但频繁投诉 frequent complaints", "reviewer": "张伟"},
        ordi: {"confirm": "是", "reviewer": "李娜"},   # 是/否 read like yes/no
        pot: {"new_tier": "普通客户", "reason": "new framework contract", "reviewer": "李娜"},   # a label works too
    })
    out = quarter / "grading.approved.parquet"
    log = quarter.parent / "audit_log.csv"
    result = apply_review(files[0], quarter / "grading.parquet", scheme, out, log, when=WHEN)
    assert (result.confirmed, result.changed, result.not_reviewed) == (1, 2, len(sheet) - 3)
    assert "1 confirmed, 2 changed" in result.summary() and "张伟" in result.summary()

    approved = pd.read_parquet(out).set_index("customer_id")
    original = pd.read_parquet(quarter / "grading.parquet").set_index("customer_id")
    a, o, p = sheet.loc[imp, "customer_id"], sheet.loc[ordi, "customer_id"], sheet.loc[pot, "customer_id"]
    assert approved.loc[a, ["tier", "tier_rank", "tier_label", "follow_up_days", "owner"]].tolist() == \
        ["ordinary", 2, "普通客户", 180, "customer service"]
    assert approved.loc[a, "strategy"].startswith("标准化服务")
    assert approved.loc[p, "tier"] == "ordinary" and approved.loc[o, "tier"] == original.loc[o, "tier"]
    assert approved.loc[[a, o, p], "review_decision"].tolist() == ["changed", "confirmed", "changed"]
    assert approved.loc[[a, o, p], "reviewed_by"].tolist() == ["张伟", "李娜", "李娜"]
    others = approved.index.difference([a, o, p])
    assert (approved.loc[others, "tier"].astype(str) == original.loc[others, "tier"].astype(str)).all()
    in_sheet = others.intersection(sheet["customer_id"])
    assert set(approved.loc[in_sheet, "review_decision"]) == {"not reviewed"}
    assert set(approved.loc[others.difference(sheet["customer_id"]), "review_decision"]) == {""}
    assert len(approved) == len(original) and approved["tier"].dtype == original["tier"].dtype

    digest = sha(quarter / "grading.parquet")
    rows = sorted([imp, ordi, pot])
    stem = "2026-10-08T09:30:00+00:00,,s1_four_tier,decision,"
    expected = {imp: f"{stem},张伟,{a},,important,ordinary,高消费但频繁投诉 frequent complaints,"
                     f"review_sheet.xlsx,{digest}",
                ordi: f"{stem},李娜,{o},,ordinary,ordinary,,review_sheet.xlsx,{digest}",
                pot: f"{stem},李娜,{p},,potential,ordinary,new framework contract,"
                     f"review_sheet.xlsx,{digest}"}
    text = log.read_bytes().decode("utf-8")
    assert text == "\ufeff" + chained(",".join(AUDIT_HEADER) + "\n", [expected[i] for i in rows])

    changes = reviewer_changes(log)
    assert changes["customer_id"].tolist() == sorted([a, p], key=lambda c: sheet.index[sheet.customer_id == c][0])
    assert changes.set_index("customer_id").loc[a, "reason"] == "高消费但频繁投诉 frequent complaints"
    assert list(changes.columns) == ["when", "reviewer", "customer_id", "group", "from_tier", "to_tier", "reason",
                                     "sheet", "grading_sha256", "period", "scheme"]
    assert str(changes["when"].iloc[0]) == "2026-10-08 09:30:00+00:00"
    assert reviewer_changes(log, since="2026-10-09").empty and len(reviewer_changes(log, until="2026-10-09")) == 2

    # a second sheet (the service head's, as csv) on top of the approved grading: appended, never rewritten
    before = log.read_bytes()
    second = quarter / "review_sheet.service.csv"
    shutil.copy(files[1], second)
    other = sheet.index[(sheet["tier"] == "ordinary") & ~sheet.index.isin(rows)][0]
    edit(second, {other: {"confirm": "no", "new_tier": "potential", "reason": "连续两季度无采购", "reviewer": "王芳"}})
    digest2 = sha(out)   # the second apply reads the first approved grading, then replaces it
    r2 = apply_review(second, out, scheme, out, log, when="2026-10-10 08:00")
    assert (r2.confirmed, r2.changed) == (0, 1)
    after = log.read_bytes()
    assert after.startswith(before) and after.count(b"timestamp,") == 1
    last = before.decode("utf-8").splitlines(keepends=True)[-1]   # the new line links to it
    assert last + after[len(before):].decode("utf-8") == chained(last, [
        f"2026-10-10T08:00:00+00:00,,s1_four_tier,decision,,王芳,{sheet.loc[other, 'customer_id']},,ordinary,potential,"
        f"连续两季度无采购,review_sheet.service.csv,{digest2}"])
    final = pd.read_parquet(out).set_index("customer_id")
    assert final.loc[sheet.loc[other, "customer_id"], "tier"] == "potential"
    assert final.loc[a, "review_decision"] == "changed" and final.loc[a, "tier"] == "ordinary"   # kept
    assert len(reviewer_changes(log, since="2026-10-09")) == 1


@pytest.fixture
def exported(quarter, scheme, customers):
    params = ReviewParams(seed=7)
    xlsx, csv_path = export_review(quarter / "grading.parquet", scheme, quarter, params, customers=customers)
    # an audit log with one earlier apply in it: a bad sheet must leave it byte-identical
    log = quarter.parent / "audit_log.csv"
    first = quarter / "first.csv"
    shutil.copy(csv_path, first)
    edit(first, {0: {"confirm": "yes", "reviewer": "张伟"}})
    apply_review(first, quarter / "grading.parquet", scheme, quarter / "earlier.parquet", log, when=WHEN)
    return quarter, read_sheet(csv_path), log


BAD_CASES = {
    "unknown customer": ({3: {"customer_id": "C999999", "confirm": "yes", "reviewer": "张伟"}},
                         ["row 5: customer not in the grading", "'C999999'"]),
    "unknown tier": ({2: {"confirm": "no", "new_tier": "gold", "reason": "x", "reviewer": "张伟"}},
                     ["row 4: new_tier 'gold' is not a tier of s1_four_tier", "core, important, ordinary, potential"]),
    "blank reason on a change": ({1: {"confirm": "no", "new_tier": "core", "reviewer": "张伟"},
                                  4: {"new_tier": "core", "reviewer": "张伟"}},
                                 ["rows 3, 6: the tier changes but reason is empty; write why in reason"]),
    "customer twice": ({"dup": {}}, ["customer twice", "keep one row per customer"]),
    "bad confirm value": ({0: {"confirm": "ok", "reviewer": "张伟"}, 5: {"confirm": "maybe", "reviewer": "张伟"}},
                          ["rows 2, 7: confirm is 'ok', 'maybe'; write yes or no (是 / 否)"]),
    "missing reviewer": ({6: {"confirm": "yes"}}, ["row 8: reviewer is empty on a decided row"]),
}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("case", list(BAD_CASES))
def test_a_bad_sheet_names_the_rows_and_writes_nothing(exported, scheme, case, fmt):
    quarter, sheet, log = exported
    decisions, words = BAD_CASES[case]
    src = quarter / f"review_sheet.{fmt}"
    bad = quarter / f"bad.{fmt}"
    if "dup" in decisions:
        df = pd.concat([sheet, sheet.iloc[[1]]], ignore_index=True)
        df.loc[[1, len(df) - 1], ["confirm", "reviewer"]] = ["yes", "张伟"]
        if fmt == "csv":
            df.to_csv(bad, index=False, encoding="utf-8-sig")
        else:
            df.to_excel(bad, sheet_name="review", index=False)
        words = words + [f"rows 3, {len(df) + 1}: customer twice ('{sheet.loc[1, 'customer_id']}')"]
    else:
        shutil.copy(src, bad)
        edit(bad, decisions)
    before = log.read_bytes()
    out = quarter / "grading.approved.parquet"
    with pytest.raises(SegmentError) as e:
        apply_review(bad, quarter / "grading.parquet", scheme, out, log, when=WHEN)
    msg = str(e.value)
    assert msg.startswith(f"{bad}:") and "nothing was applied" in msg
    for w in words:
        assert w in msg, (w, msg)
    assert not out.exists() and log.read_bytes() == before
    assert not list(quarter.glob(".grading.approved*"))


def test_every_problem_is_listed_at_once(exported, scheme):
    quarter, sheet, log = exported
    bad = edit(Path(shutil.copy(quarter / "review_sheet.csv", quarter / "bad.csv")), {
        0: {"customer_id": "NOPE", "confirm": "yes", "reviewer": "a"},
        1: {"confirm": "no", "new_tier": "gold", "reason": "r", "reviewer": "a"},
        2: {"confirm": "no", "new_tier": "core", "reviewer": "a"},
        3: {"confirm": "maybe", "reviewer": "a"},
        4: {"confirm": "yes"},
        5: {"tier": "core", "confirm": "yes", "reviewer": "a"} if sheet.loc[5, "tier"] != "core" else
           {"tier": "potential", "confirm": "yes", "reviewer": "a"},
        6: {"confirm": "no", "reviewer": "a", "reason": "wrong"},
        7: {"reason": "should be core"},
        8: {"tier": "core" if sheet.loc[8, "tier"] != "core" else "potential"},   # undecided, but the tier was edited
    })
    before = log.read_bytes()
    with pytest.raises(SegmentError) as e:
        apply_review(bad, quarter / "grading.parquet", scheme, quarter / "x.parquet", log)
    msg = str(e.value)
    for w in ("row 2: customer not in the grading", "row 3: new_tier 'gold'", "row 4: the tier changes but reason",
              "row 5: confirm is 'maybe'", "row 6: reviewer is empty", "rows 7, 10: the tier column differs",
              "row 8: confirm is no but new_tier is empty", "row 9: reason is filled but confirm and new_tier"):
        assert w in msg, (w, msg)
    assert msg.count("\n  row") == 8 and "8 problem(s)" in msg
    assert not (quarter / "x.parquet").exists() and log.read_bytes() == before


def test_an_audit_log_with_another_header_is_never_touched(exported, scheme):
    quarter, sheet, _ = exported
    log = quarter / "other_log.csv"
    log.write_text("when,who,what\n2026-01-01,x,y\n", encoding="utf-8")
    before = log.read_bytes()
    ok = edit(Path(shutil.copy(quarter / "review_sheet.csv", quarter / "ok.csv")),
              {0: {"confirm": "yes", "reviewer": "张伟"}})
    with pytest.raises(SegmentError) as e:
        apply_review(ok, quarter / "grading.parquet", scheme, quarter / "y.parquet", log)
    assert str(e.value).startswith(f"{log}: not a segment audit log") and "never rewritten" in str(e.value)
    assert log.read_bytes() == before and not (quarter / "y.parquet").exists()


def test_a_blank_sheet_logs_nothing(exported, scheme):
    quarter, sheet, log = exported
    before = log.read_bytes()
    r = apply_review(quarter / "review_sheet.xlsx", quarter / "grading.parquet", scheme, quarter / "z.parquet", log)
    assert (r.confirmed, r.changed, r.not_reviewed) == (0, 0, len(sheet)) and log.read_bytes() == before
    z = pd.read_parquet(quarter / "z.parquet")
    assert (z["review_decision"] == "not reviewed").sum() == len(sheet)


# ------------------------------------------------------------------------------------------------
# sheet content: Chinese, PII, formulas, overwriting
# ------------------------------------------------------------------------------------------------

def test_chinese_tier_labels_round_trip_in_xlsx_and_csv(quarter, scheme):
    xlsx, csv_path = export_review(quarter / "grading.parquet", scheme, quarter, ReviewParams())
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    labels = {t.id: t.label for t in scheme.tiers}
    for path in (xlsx, csv_path):
        df = read_sheet(path)
        assert (df["tier_label"] == df["tier"].map(labels)).all() and "核心客户" in set(df["tier_label"])
    # a CSV saved back by Excel on a Chinese Windows is GB18030, not UTF-8
    df = read_sheet(csv_path)
    df.loc[0, ["confirm", "reviewer", "reason"]] = ["yes", "张伟", ""]
    gbk = quarter / "gbk.csv"
    df.to_csv(gbk, index=False, encoding="gb18030")
    r = apply_review(gbk, quarter / "grading.parquet", scheme, quarter / "a.parquet", quarter / "log.csv", when=WHEN)
    assert r.confirmed == 1 and "张伟" in (quarter / "log.csv").read_text(encoding="utf-8-sig")


@pytest.mark.parametrize("allow", [True, False])
def test_pii_columns_only_when_the_params_allow(quarter, scheme, customers, allow):
    xlsx, csv_path = export_review(quarter / "grading.parquet", scheme, quarter,
                                   ReviewParams(include_pii_in_sheet=allow), customers=customers)
    pii = ["contact_name", "phone", "email"]
    cust = customers.set_index("customer_id")
    for path in (xlsx, csv_path):
        df = read_sheet(path)
        assert "name" in df.columns   # the company name is not personal data
        assert all((c in df.columns) == allow for c in pii)
        if allow:
            first = df["customer_id"].iloc[0]
            assert df["phone"].iloc[0] == cust.loc[first, "phone"] and df["email"].iloc[0] == cust.loc[first, "email"]
    text = csv_path.read_text(encoding="utf-8-sig")
    phones = cust.loc[read_sheet(csv_path)["customer_id"], "phone"].dropna()
    assert all((p in text) == allow for p in phones.head(20))
    cells = {str(v) for row in openpyxl.load_workbook(xlsx)["review"].iter_rows(values_only=True) for v in row}
    assert all((p in cells) == allow for p in phones.head(20))


def test_text_from_the_data_stays_text_in_the_sheet(quarter, scheme, customers):
    cust = customers.copy()
    sel_ids = export_review(quarter / "grading.parquet", scheme, quarter, ReviewParams(), customers=cust)
    first = read_sheet(sel_ids[1])["customer_id"].iloc[0]
    cust["name"] = cust["name"].astype(object)
    cust.loc[cust["customer_id"] == first, "name"] = '=HYPERLINK("http://evil.example","x")'
    cust.loc[cust["customer_id"] == first, "contact_name"] = "<script>alert(1)</script>"
    xlsx, csv_path = export_review(quarter / "grading.parquet", scheme, quarter, ReviewParams(), customers=cust,
                                   overwrite=True)
    ws = openpyxl.load_workbook(xlsx)["review"]
    head = [c.value for c in ws[1]]
    cell = ws.cell(row=2, column=head.index("name") + 1)
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    raw = csv_path.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in raw and ',=HYPERLINK' not in raw  # inert in a spreadsheet ...
    from segment.review.sheet import read_filled_sheet

    df = read_filled_sheet(csv_path)  # ... and read back (as apply does) as written in the CRM
    assert df.loc[0, "name"] == '=HYPERLINK("http://evil.example","x")'
    assert df.loc[0, "contact_name"] == "<script>alert(1)</script>"


def test_every_csv_segment_writes_neutralises_formulas_and_reads_them_back(quarter, scheme, tmp_path):
    """Gradings, review sheets, approved gradings and the audit log: a text cell starting with = + - @
    tab or CR is written with a leading ' (a spreadsheet shows it as text) and read back unchanged."""
    from segment.plumbing.atomic import write_frame
    from segment.review.select import read_grading
    from segment.review.audit import reviewer_changes

    g = pd.read_parquet(quarter / "grading.parquet")
    g["customer_id"] = g["customer_id"].astype(object)
    evil = ['=HYPERLINK("http://evil.example","x")', "+1 555", "-cmd", "@SUM(A1)", "\tx", "'=already"]
    g.loc[: len(evil) - 1, "customer_id"] = evil
    write_frame(g, tmp_path / "g.csv")
    text = (tmp_path / "g.csv").read_text(encoding="utf-8")
    assert "\n'=HYPERLINK" in text.replace('"', "") and "\n'+1 555," in text and "\n''=already," in text
    back = read_grading(tmp_path / "g.csv")
    assert back["customer_id"].head(len(evil)).tolist() == evil
    # a reviewer's name and reason reach the audit log inert, and come back as typed
    xlsx, _ = export_review(tmp_path / "g.csv", scheme, tmp_path, ReviewParams())
    sheet = read_sheet(xlsx)
    row = sheet.index[0]
    edit(xlsx, {row: {"confirm": "no", "new_tier": [t.id for t in scheme.tiers if t.id != sheet.loc[row, "tier"]][0],
                      "reason": "-1 tier: the CFO says so", "reviewer": "@ops"}})
    log = tmp_path / "audit_log.csv"
    apply_review(xlsx, tmp_path / "g.csv", scheme, tmp_path / "approved.csv", log, when=WHEN)
    assert "'-1 tier: the CFO says so" in log.read_text(encoding="utf-8-sig") and ",'@ops," in log.read_text(encoding="utf-8-sig")
    ch = reviewer_changes(log)
    assert ch["reason"].tolist() == ["-1 tier: the CFO says so"] and ch["reviewer"].tolist() == ["@ops"]
    approved = read_grading(tmp_path / "approved.csv")
    assert set(evil) <= set(approved["customer_id"])


def test_export_never_overwrites_a_sheet_with_decisions(quarter, scheme):
    xlsx, _ = export_review(quarter / "grading.parquet", scheme, quarter, ReviewParams())
    export_review(quarter / "grading.parquet", scheme, quarter, ReviewParams())   # blank: regenerated freely
    edit(xlsx, {0: {"confirm": "yes", "reviewer": "张伟"}})
    before = xlsx.read_bytes()
    with pytest.raises(SegmentError) as e:
        export_review(quarter / "grading.parquet", scheme, quarter, ReviewParams())
    assert "already holds 1 reviewer decision" in str(e.value) and xlsx.read_bytes() == before
    export_review(quarter / "grading.parquet", scheme, quarter, ReviewParams(), overwrite=True)
    assert xlsx.read_bytes() != before


def test_the_quarter_salts_the_sample(quarter, scheme, graded):
    """export_review draws with the quarter from manifest.json: a fresh sample each quarter."""
    xlsx, _ = export_review(quarter / "grading.parquet", scheme, quarter, ReviewParams(seed=9))
    exported_ids = set(read_sheet(xlsx)["customer_id"])
    salted = select_for_review(graded.frame, scheme, ReviewParams(seed=9), salt="2026Q3")
    assert exported_ids == set(salted.table()["customer_id"])
    unsalted = select_for_review(graded.frame, scheme, ReviewParams(seed=9))
    assert set(sample_rows(unsalted)["customer_id"]) != set(sample_rows(salted)["customer_id"])


def test_grouped_gradings_are_keyed_by_customer_and_group(tmp_path, scheme):
    g = pd.DataFrame({"customer_id": ["A", "A", "B"], "group": ["hardware", "software", "hardware"],
                      "tier": pd.Categorical(["core", "ordinary", "potential"], [t.id for t in scheme.tiers]),
                      "tier_rank": [0, 2, 3], "tier_label": ["核心客户", "普通客户", "潜在客户"], "score": [95.0, 60.0, 20.0],
                      "overrides": ["", "", ""], "explanation": ["", "", ""]})
    g.to_parquet(tmp_path / "grading.parquet", index=False)
    xlsx, _ = export_review(tmp_path / "grading.parquet", scheme, tmp_path, ReviewParams())
    df = read_sheet(xlsx)
    assert list(df.columns[:2]) == ["customer_id", "group"] and len(df) == 3
    edit(xlsx, {int(df.index[(df.customer_id == "A") & (df.group == "software")][0]):
                {"confirm": "no", "new_tier": "important", "reason": "joint project", "reviewer": "张伟"}})
    apply_review(xlsx, tmp_path / "grading.parquet", scheme, tmp_path / "ok.parquet", tmp_path / "log.csv", when=WHEN)
    out = pd.read_parquet(tmp_path / "ok.parquet")
    assert out["tier"].astype(str).tolist() == ["core", "important", "potential"]
    assert reviewer_changes(tmp_path / "log.csv")[["customer_id", "group"]].values.tolist() == [["A", "software"]]


def test_reviewer_changes_without_a_log_is_empty(tmp_path):
    df = reviewer_changes(tmp_path / "none.csv")
    assert df.empty and {"when", "reviewer", "customer_id", "from_tier", "to_tier", "reason"} <= set(df.columns)


def test_caps_keep_the_sheet_within_the_seeds_share(scheme):
    """Everyone at a cut-off and everyone overridden: the sample stays ≤ max_share, nearest first, and
    the extras ≤ extras_max_share, anomalies first; the summary counts both and the notes the rest."""
    n = 400
    g = pd.DataFrame({"customer_id": [f"C{i:03d}" for i in range(n)],
                      "tier": ["ordinary"] * n, "score": [70.0 if i % 2 else 69.5 for i in range(n)],
                      "overrides": ["r: a → b (x)" if i % 3 == 0 else "" for i in range(n)],
                      "annual_amount": [600000.0] * n, "complaints_12m": [5.0 if i % 7 == 0 else 0.0 for i in range(n)]})
    sel = select_for_review(g, scheme, ReviewParams(seed=3, sample_share=0.10, borderline_points=1))
    sh = sel.shares()
    assert sh["sample"] == pytest.approx(0.20) and sh["extras"] == pytest.approx(0.05)
    why = sel.table().set_index("customer_id")["why"]
    border = why[why.str.contains("borderline") & ~why.str.contains("sample")]
    assert len(border) == 40 and all("at important's cut-off" in w for w in border)  # 70.0 before 69.5
    extras = why[~why.str.contains("sample|borderline")]
    assert len(extras) == 20 and extras.str.contains("anomaly").all()
    assert any("not added: the sample is capped at 20%" in x for x in sel.notes)
    assert any("extras are capped at 5%" in x for x in sel.notes)
    assert "20.0%" in sel.summary() and "5.0% more" in sel.summary()


@pytest.mark.parametrize("sid", sorted(p.stem for p in (ROOT / "params" / "schemes").glob("*.yaml")))
def test_every_scheme_reviews_ten_to_twenty_percent(sid, tmp_path_factory):
    from segment.pipeline import grade_snapshot
    from segment.grading.scheme import load_scheme

    tables = _tables(tmp_path_factory)
    s = load_scheme(sid)
    now, snap, _ = grade_snapshot(tables, s, "2026-09-30")
    before = grade_snapshot(tables, s, "2026-06-30")[0].frame
    sel = select_for_review(now.frame, s, ReviewParams(), before, context=snap)
    sh = sel.shares()
    assert 0.10 - 1e-9 <= sh["sample"] <= 0.20 + 1e-9, (sid, sh)
    assert sh["extras"] <= 0.05 + 1e-9, (sid, sh)


_TABLES = {}


def _tables(factory):
    if "t" not in _TABLES:
        from segment.demo.write import write_demo
        from segment.data.validate import load_data

        _TABLES["t"] = load_data(write_demo(factory.mktemp("demo"), customers=1500)).tables
    return _TABLES["t"]
