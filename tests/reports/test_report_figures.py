"""Report figures for every kind of scheme: periods in one accepted form and inside the data, revenue
from the snapshot (never from the indicators a scheme happens to read), Wilson bounds inside [0, 1]."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from segment.calibration.metrics import wilson
from segment.errors import SegmentError
from segment.pipeline import check_period, period_end
from segment.grading import history


@pytest.mark.parametrize("bad", ["2026q3", "2026-Q3", "2026Q5", "Q3 2026", "26Q3", "", "2026-9", "2026-13", "2026H3",
                                 "2026h2", "2026 H2", "20261", "2026-09-30"])
def test_only_the_canonical_periods_are_accepted(bad):
    with pytest.raises(SegmentError, match=r"is not a period in an accepted form; write 2026-09 \(a month\), 2026Q3 "
                                           r"\(a quarter\), 2026H2 \(a half-year\) or 2026 \(a year\)"):
        period_end(bad)
    assert period_end("2026Q3") == pd.Timestamp("2026-09-30")


def test_periods_outside_the_data_are_refused_naming_its_range():
    first, end = "2021-01-04", "2026-09-30"
    check_period("2026Q3", first, end)
    check_period("2021Q1", first, end)
    with pytest.raises(SegmentError, match=r"2026Q4 ends on 2026-12-31, after the data's end: the data covers "
                                           r"2021-01-04 … 2026-09-30; the latest is 2026Q3 \(the latest complete quarter\)"):
        check_period("2026Q4", first, end)
    with pytest.raises(SegmentError, match=r"2019Q1 ends on 2019-03-31, before the data's first transaction"):
        check_period("2019Q1", first, end)
    with pytest.raises(SegmentError, match=r"latest is 2026Q2 \(the latest complete quarter\)"):
        check_period("2026Q3", first, "2026-09-29")
    with pytest.raises(SegmentError, match=r"2026-10 ends on 2026-10-31, after the data's end: .* the latest is "
                                           r"2026-09 \(the latest complete month\)"):
        check_period("2026-10", first, end)
    with pytest.raises(SegmentError, match=r"latest is 2026H1 \(the latest complete half-year\)"):
        check_period("2026H2", first, end)
    with pytest.raises(SegmentError, match=r"latest is 2025 \(the latest complete year\)"):
        check_period("2026", first, end)


def test_wilson_bounds_are_clipped_and_hold_the_rate():
    lo, hi = wilson([0, 7, 1, 0], [7, 7, 6, 0])
    assert lo[0] == 0.0 and hi[1] == 1.0  # statsmodels gives 5.6e-17 and 0.9999999999999999 here
    ref_lo, ref_hi = proportion_confint(np.array([0, 7, 1]), np.array([7, 7, 6]), alpha=0.05, method="wilson")
    assert hi[0] == pytest.approx(ref_hi[0]) and lo[1] == pytest.approx(ref_lo[1])
    assert (lo[2], hi[2]) == pytest.approx((ref_lo[2], ref_hi[2]))
    assert np.isnan(lo[3]) and np.isnan(hi[3])
    rate = np.array([0, 1, 1 / 6])
    assert (lo[:3] <= rate).all() and (rate <= hi[:3]).all() and (lo[:3] >= 0).all() and (hi[:3] <= 1).all()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from segment.demo.write import write_demo
    from segment.data.validate import load_data

    return load_data(write_demo(tmp_path_factory.mktemp("demo"), customers=800))


@pytest.mark.parametrize("sid", ["s4_key_account_levels", "s7_sales_stages", "s5_order_count_grades",
                                 "s1_four_tier"])
def test_revenue_comes_from_the_snapshot_for_every_scheme(sid, loaded, tmp_path):
    from segment.features.snapshot import snapshot
    from segment.reports.grading_data import prepare_grading_report
    from segment.grading.scheme import resolve

    r = prepare_grading_report(loaded, resolve(sid), "2026Q3", reports_dir=tmp_path)
    for frame, day in ((r.grading, "2026-09-30"), (r.previous, "2026-06-30")):
        snap = snapshot(loaded.tables, day).set_index("customer_id")["annual_amount"]
        expect = snap.reindex(frame["customer_id"]).fillna(0.0).sum()
        assert r.tier_table(frame)["revenue_12m"].sum() == pytest.approx(expect, rel=1e-9)
        assert expect > 0
    summary = r.summary()._repr_html_()
    change = float(summary.split("Revenue over 12 months changed by ")[1].split("(")[1].split("%")[0])
    assert abs(change) < 50, summary  # one quarter apart on the demo: not +121504067605.0%
    counts, revenue = history.migration(r.previous, r.grading, r.tier_ids)
    gone = counts["(not graded)"].sum()
    assert gone == 0 or revenue["(not graded)"].sum() > 0

    # the first screen and the trend say the same as the tables, for every scheme
    import re

    from segment.reports.html import money

    tiles = r.tiles()
    values = re.findall(r'<div class="tile-value">(.*?)</div>', tiles)
    assert values[0] == f"{len(r.grading):,}" and values[1] == money(r.tier_table()["revenue_12m"].sum())
    moves = r._movers()
    assert f'▲ {int((moves["move"] == "up").sum()):,}</span> <span class="down">▼ {int((moves["move"] == "down").sum()):,}' in tiles
    assert f"{len(r.grading) - len(r.previous):+,}" in tiles and "vs 2026Q2" in tiles
    shares = [float(w) for w in re.findall(r'style="width:([\d.]+)%"', tiles)]
    assert sum(shares) == pytest.approx(100, abs=0.05)
    assert list(r.trend["period"]) == ["2026Q2", "2026Q3"]
    for row, frame in zip(r.trend.itertuples(), (r.previous, r.grading)):
        t = r.tier_table(frame)
        assert [getattr(row, tid) for tid in r.tier_ids] == list(t["customers"]) and row.graded == len(frame)
        assert row.revenue_12m == pytest.approx(t["revenue_12m"].sum())
    assert "<svg" in r.over_time()._repr_html_()


def test_money_is_written_in_the_datas_currency():
    from segment.reports.html import money, money_unit
    from segment.data.config import DataConfig

    assert [money(x) for x in (3612.4, 526_000.0, 1.215e9, -60_915_000.0)] == \
        ["3,612 元", "52.6 万元", "12.15 亿元", "-6,091.5 万元"]
    assert [money(x, "USD") for x in (950.0, 52_600.0, 1.2e6, -3.4e9)] == ["$950", "$52.6K", "$1.2M", "-$3.4B"]
    assert money(1.2e6, "CHF") == "CHF 1.2M" and money_unit("USD") == (1e3, "thousand USD")
    assert DataConfig(tables={"transactions": {"path": "t.csv"}}, currency="USD").currency == "USD"
    assert DataConfig(tables={"transactions": {"path": "t.csv"}}).currency == "CNY"
    with pytest.raises(ValueError):
        DataConfig(tables={"transactions": {"path": "t.csv"}}, currency="dollars")


def test_the_trend_reads_earlier_periods_of_this_scheme_on_this_data_only(tmp_path):
    import json

    from segment.reports.grading_data import _trend
    from segment.grading.scheme import load_scheme

    scheme = load_scheme("s1_four_tier")
    data = tmp_path / "data.yaml"

    def manifest(q, **kw):
        (tmp_path / q).mkdir()
        m = {"scheme": "s1_four_tier", "data": str(data.resolve()), "headline": {
            "revenue_12m": 1e6, "tiers": [{"tier": "core", "label": "核心客户", "customers": 2},
                                          {"tier": "potential", "label": "潜在客户", "customers": 5}]}} | kw
        (tmp_path / q / "manifest.json").write_text(json.dumps(m), encoding="utf-8")

    manifest("2025Q4")
    manifest("2026Q1")
    manifest("2025Q3", scheme="s4_key_account_levels")  # another scheme: not this trend
    manifest("2025Q2", data="/elsewhere/data.yaml")  # other data
    manifest("2026Q3")  # at or after the periods computed now: they win
    (tmp_path / "2025Q1").mkdir()
    (tmp_path / "2025Q1" / "manifest.json").write_text("{half", encoding="utf-8")  # unreadable: left out
    now = pd.DataFrame({"customer_id": ["a", "b", "c"], "tier": ["core", "ordinary", "ordinary"],
                        "annual_amount": [10.0, 20.0, None]})
    t = _trend(tmp_path, data, scheme, [("2026Q2", now.iloc[:1]), ("2026Q3", now)])
    assert list(t["period"]) == ["2025Q4", "2026Q1", "2026Q2", "2026Q3"]
    assert t.iloc[0][["core", "important", "ordinary", "potential", "graded", "revenue_12m"]].tolist() == [2, 0, 0, 5, 7, 1e6]
    assert t.iloc[-1][["core", "ordinary", "graded", "revenue_12m"]].tolist() == [1, 2, 3, 30.0]


def test_a_churn_verdict_needs_intervals_that_support_it():
    from segment.calibration.metrics import churn_order_verdict, tier_table

    def table(counts):  # tier → (n, churned)
        tiers, y = [], []
        for t, (n, k) in counts.items():
            tiers += [t] * n
            y += [1] * k + [0] * (n - k)
        return tier_table(tiers, np.array(y, dtype=float), list(counts))

    assert churn_order_verdict(table({"a": (200, 10), "b": (300, 30), "c": (500, 100)}))[0] == "rises"
    kind, text = churn_order_verdict(table({"a": (6, 1), "b": (300, 30), "c": (500, 100)}))
    assert kind == "unclear" and "a 16.7% vs b 10.0%" in text and "too few customers to tell" in text
    kind, text = churn_order_verdict(table({"a": (400, 120), "b": (400, 20), "c": (500, 100)}))
    assert kind == "reversed" and "a 30.0% vs b 5.0%" in text and "do not overlap" in text


def test_a_quarter_built_with_another_scheme_or_data_is_not_mixed(tmp_path):
    """The folder of a quarter built with S1 refuses an S4 build (naming both and the way out) before
    reading any data; the same for another data config."""
    import json

    from segment.reports.build import build_reports

    q = tmp_path / "reports" / "2026Q3"
    q.mkdir(parents=True)
    from segment.demo.write import write_demo

    data = write_demo(tmp_path / "demo", customers=50)
    (q / "manifest.json").write_text(json.dumps({"scheme": "s1_four_tier", "data": str(data.resolve())}),
                                     encoding="utf-8")
    (q / "grading.approved.parquet").write_bytes(b"old")
    with pytest.raises(SegmentError, match=r"holds the s1_four_tier reports of .*data\.yaml; this build is "
                                           r"s4_key_account_levels on .*--reports-dir .*s4_key_account_levels.*--replace"):
        build_reports(quarter="2026Q3", data=data, scheme="s4_key_account_levels", reports_dir=tmp_path / "reports")
    other = write_demo(tmp_path / "other", customers=50)
    with pytest.raises(SegmentError, match="holds the s1_four_tier reports of"):
        build_reports(quarter="2026Q3", data=other, scheme="s1_four_tier", reports_dir=tmp_path / "reports")
    assert (q / "grading.approved.parquet").read_bytes() == b"old"


def test_grouped_scheme_report_has_a_product_line_breakdown_and_says_why_no_churn(loaded, tmp_path):
    from segment.reports.grading_data import prepare_grading_report
    from segment.grading.scheme import resolve

    r = prepare_grading_report(loaded, resolve("s8_government_product_line"), "2026Q3", reports_dir=tmp_path)
    by_line = r.breakdown("group")
    t = by_line.table()
    assert t.index.name == "product line" and int(t["customers"].sum()) == len(r.grading) > 0
    assert "grades each product line of a customer on its own" in r.churn_by_tier()._repr_html_()
    # the summary counts grades and customers apart (a customer has one grade per product line)
    summary = r.summary()._repr_html_()
    n_customers = r.grading["customer_id"].nunique()
    assert n_customers < len(r.grading)
    assert (f"{len(r.grading):,} customer × product line grades were made for {n_customers:,} customers" in summary)
    assert "of grades" in summary and "customers were graded" not in summary
    one = prepare_grading_report(loaded, resolve("s5_order_count_grades"), "2026Q3", reports_dir=tmp_path)
    assert "grades each customer once, not per product line" in one.breakdown("group")._repr_html_()


def test_index_lists_scheme_data_and_headline_per_quarter(tmp_path):
    import json

    from segment.reports.build import write_index

    q = tmp_path / "2026Q3"
    q.mkdir()
    (q / "grading.html").write_text("x", encoding="utf-8")
    (q / "manifest.json").write_text(json.dumps({
        "scheme": "s4_key_account_levels", "data": "/x/acme/data.yaml", "as_of": "2026-09-30", "customers": 12345,
        "headline": {"revenue_12m": 2.5e8, "tiers": [{"tier": "d", "label": "钻石客户", "customers": 1234}]}}),
        encoding="utf-8")
    (tmp_path / "2026Q2").mkdir()  # a quarter folder without a manifest still gets its row
    page = write_index(tmp_path).read_text(encoding="utf-8")
    row = page.split("<td>2026Q3</td>")[1].split("</tr>")[0]
    for cell in ("s4_key_account_levels", "acme", "2026-09-30", "12,345", "2.50 亿元", "钻石客户 1,234",
                 '<a href="2026Q3/grading.html">grading</a>'):
        assert cell in row, cell
    assert "<td>2026Q2</td>" in page and page.index("2026Q3") < page.index("2026Q2")


def test_bands_that_do_not_separate_anyone_are_warned(loaded):
    """Amounts in 万元 read as 元, a 0–100 survey read as 0–10: every customer lands in one extreme band —
    the grading says so instead of silently putting everyone in the floor tier."""
    import segment

    snap = segment.snapshot(loaded.tables, "2026-09-30")
    assert segment.grade(snap, "s1_four_tier").warnings() == []
    wan = snap.assign(annual_amount=snap["annual_amount"] / 1e4)
    w = segment.grade(wan, "s1_four_tier").warnings()
    assert len(w) == 1 and w[0].startswith("annual_amount: 100% of the") and "lowest band (below 10000)" in w[0]
    assert "amount_unit: 10000" in w[0]
    survey = snap.assign(satisfaction_latest=snap["satisfaction_latest"] * 10)
    w = segment.grade(survey, "s1_four_tier").warnings()
    assert len(w) == 1 and "satisfaction_latest" in w[0] and "highest band (9 or more)" in w[0]


def test_html_title_is_the_reports_own(tmp_path):
    import nbformat

    from segment.reports.render import to_html

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("report.title()")
    cell.outputs = [nbformat.v4.new_output("display_data", {"text/html": "<h1>Customer grading — 2026Q3</h1>"})]
    nb.cells = [cell]
    path = tmp_path / "grading.ipynb"
    nbformat.write(nb, path)
    page = to_html(path)
    assert "<title>Customer grading — 2026Q3</title>" in page and "<title>Notebook</title>" not in page


def _publish(folder, computed, approved, loaded, scheme="s1_four_tier"):
    """A period's folder as `segment report` and `segment review apply` leave it."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    computed.to_parquet(folder / "grading.parquet")
    if approved is not None:
        approved.to_parquet(folder / "grading.approved.parquet")
    (folder / "manifest.json").write_text(json.dumps({"scheme": scheme, "data": str(Path(loaded.path).resolve())}))


def test_reviewer_decisions_hold_until_the_next_review_unless_the_data_catches_up(loaded, tmp_path):
    """2026Q2's reviewers moved customer A up one tier (the data keeps it where it was) and customer C up
    to the tier the data gives it in 2026Q3: A keeps the reviewer's tier in 2026Q3 (held, not shown as a
    downgrade), C's decision is released."""
    from segment.reports.grading_data import prepare_grading_report
    from segment.pipeline import grade_snapshot
    from segment.grading.scheme import load_scheme, resolve

    scheme = load_scheme("s1_four_tier")
    rank = {t.id: i for i, t in enumerate(scheme.tiers)}
    q2 = grade_snapshot(loaded.tables, scheme, "2026-06-30")[0].frame
    q3 = grade_snapshot(loaded.tables, scheme, "2026-09-30")[0].frame
    both = q2[["customer_id", "tier"]].merge(q3[["customer_id", "tier"]], on="customer_id", suffixes=("_2", "_3"))
    both = both.assign(r2=both["tier_2"].astype(str).map(rank), r3=both["tier_3"].astype(str).map(rank))
    a = both[(both["r2"] == both["r3"]) & (both["r2"] >= 2)].iloc[0]          # stays ordinary/potential
    c = both[(both["r3"] < both["r2"])].iloc[0]                                 # the data moves it up by Q3
    approved = q2.copy()
    approved["tier"] = approved["tier"].astype(str)
    approved["review_decision"], approved["reviewed_by"], approved["review_reason"] = "not reviewed", "", ""
    up = scheme.tiers[int(a["r2"]) - 1].id
    for cid, tier, why in ((a["customer_id"], up, "strategic partner"), (c["customer_id"], c["tier_3"], "growing")):
        i = approved.index[approved["customer_id"] == cid][0]
        approved.loc[i, ["tier", "review_decision", "reviewed_by", "review_reason"]] = [str(tier), "changed", "张伟", why]
    _publish(tmp_path / "2026Q2", q2, approved, loaded)

    r = prepare_grading_report(loaded, resolve("s1_four_tier"), "2026Q3", reports_dir=tmp_path)
    g = r.grading.set_index("customer_id")
    assert g.loc[a["customer_id"], "tier"] == up and "张伟" in g.loc[a["customer_id"], "held_decision"]
    assert g.loc[c["customer_id"], "held_decision"] == ""
    d = r.decisions.set_index("customer_id")
    assert d.loc[a["customer_id"], "status"] == "held" and d.loc[c["customer_id"], "status"] == "released"
    assert a["customer_id"] not in set(r._movers()["customer_id"])
    html = r.reviewer_changes()._repr_html_()
    assert "Decisions in force" in html and "Decisions released" in html and "strategic partner" in html


def test_follow_ups_overdue_by_the_tiers_cadence_hand_computed():
    """Overdue = days since the last contact − the tier's follow-up days; never contacted: the whole
    cadence; a tier without a cadence is not scheduled; exactly at the cadence is due, not overdue."""
    from segment.reports.grading import GradingReport
    from segment.grading.scheme import load_scheme

    g = pd.DataFrame({"customer_id": ["A", "B", "C", "D", "E"],
                      "tier": ["core", "important", "potential", "ordinary", "core"],
                      "tier_label": ["核心", "重要", "潜在", "普通", "核心"],
                      "follow_up_days": [14, 90, None, 180, 14],
                      "days_since_contact": [20.0, 10.0, 400.0, np.nan, 14.0],
                      "account_manager": ["Li", "Wang", "Li", "Li", "Wang"]})
    r = GradingReport(quarter="2026Q3", scheme=load_scheme("s1_four_tier"), scheme_path="", grading=g,
                      meta={"as_of": "2026-09-30"})
    t = r.follow_up_table()
    assert list(t["customer_id"]) == ["D", "A", "E", "B"] and list(t["days_overdue"]) == [180, 6, 0, 0]
    assert list(t["status"]) == ["overdue", "overdue", "due in 7 days", "on schedule"]
    assert t.set_index("customer_id").loc["B", "next_contact"] == pd.Timestamp("2026-12-19")  # 09-20 + 90 days
    sec = r.follow_ups()
    per, due = sec.frames
    assert list(due["customer_id"]) == ["D", "A"]
    assert per[["account manager", "customers", "overdue", "most overdue (days)"]].to_dict("records") == [
        {"account manager": "Li", "customers": 2, "overdue": 2, "most overdue (days)": 180}]
    assert "2 of 4 customers with a follow-up cadence are past it at 2026-09-30" in sec._repr_html_()


def test_a_changed_audit_log_turns_every_banner_red_and_names_the_line(tmp_path):
    """The reports check the audit log's chain when they are built: a line changed after it was written
    makes the banner say so, naming the first line that does not follow (segment audit says the same)."""
    from segment.reports.build import _approval
    from segment.review.audit import append_events

    log = tmp_path / "audit_log.csv"
    append_events(log, [{"period": "2026Q3", "scheme": "s1_four_tier", "action": "decision", "actor": "Li",
                         "customer_id": f"C{i}", "from_tier": "core", "to_tier": "ordinary", "grading_sha256": "a" * 64}
                        for i in (1, 2, 3)])
    grading = tmp_path / "grading.parquet"
    pd.DataFrame({"customer_id": ["C1"], "tier": ["core"]}).to_parquet(grading)
    ok = _approval(tmp_path / "2026Q3", grading, log, "2026Q3", "s1_four_tier")
    assert ok == {"state": "draft", "audit_ok": True,
                  "text": "DRAFT — not approved: no sign-off yet (waits for sales_head and service_head)"}
    lines = log.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b",Li,", b",Lu,")
    log.write_bytes(b"\n".join(lines))
    bad = _approval(tmp_path / "2026Q3", grading, log, "2026Q3", "s1_four_tier")
    assert bad["state"] == "audit_broken" and not bad["audit_ok"]
    assert f"AUDIT LOG CHANGED: {log}: line 4 does not follow line 3" in bad["text"]
