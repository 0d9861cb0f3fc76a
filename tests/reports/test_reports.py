"""The end-to-end slice: demo → grade → papermill notebook → offline HTML, atomically."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segment.reports import build as reports
from segment.errors import ReportError
from segment.periods import latest_complete
from segment.pipeline import period_end

from ..conftest import exclusive, once


# `demo` (400 customers, seed 7) and `built` (its 2026Q3 reports, built once) come from conftest.py and are
# shared read-only with test_crash.py: a test that builds into a reports folder works on a copy.


BUDGET = 75_000  # bytes: the test demo's grading (~85 KB) and calibration (~107 KB) pages are above it, review (~62 KB) below


@pytest.fixture(scope="session")
def rebuilt(demo, tmp_path_factory):
    """A second full build of the same inputs into another folder, with the HTML budget lowered to 200 KB:
    one build serves both the reproducibility check and the over-budget warning (the budget only decides
    the warnings; no output file depends on it). Read-only, like ``built``."""
    def build(folder: Path):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(reports, "HTML_BUDGET_BYTES", BUDGET)
            return folder, reports.build_reports(data=demo, reports_dir=folder)

    return once(tmp_path_factory, "shared-rebuilt", build)


def test_quarters():
    assert period_end("2026Q3") == pd.Timestamp("2026-09-30")
    assert str(latest_complete("2026-09-30")) == "2026Q3"
    assert str(latest_complete("2026-09-29")) == "2026Q2"
    assert str(latest_complete("2026-12-31 23:00")) == "2026Q4"


def test_report_files_and_manifest(built, demo):
    out, result = built
    assert result.quarter == "2026Q3" and not result.skipped
    q = out / "2026Q3"
    assert {p.name for p in q.iterdir()} == {"grading.html", "grading.ipynb", "review.html", "review.ipynb",
                                             "calibration.html", "calibration.ipynb", "calibration",
                                             "grading.parquet", "manifest.json", "follow_ups.xlsx"}
    assert {p.name for p in (q / "calibration").iterdir()} == {"metrics.json", "s1_four_tier.calibrated.yaml",
                                                               "s1_four_tier.proposal.yaml"}
    manifest = json.loads((q / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["as_of"] == "2026-09-30" and manifest["scheme"] == "s1_four_tier"
    # the period's calibration gives every graded customer a churn probability, from the expert score's link
    from segment.calibration.churn import at_risk
    from segment.calibration.params import load_calibration_params

    g = pd.read_parquet(q / "grading.parquet")
    link = reports.expert_link(q / "calibration")
    judged = at_risk(g, load_calibration_params().churn).eq("").to_numpy()   # the customers calibration labels
    assert judged.any() and (~judged).any()
    assert np.allclose(g.loc[judged, "churn_probability"], link.predict(g.loc[judged, "score"]))
    assert g.loc[judged, "churn_probability"].between(0, 1).all() and g.loc[~judged, "churn_probability"].isna().all()
    assert "predicted churn" in (q / "grading.html").read_text(encoding="utf-8")
    assert str(demo.resolve()) in manifest["inputs"] and len(manifest["inputs"][str(demo.resolve())]) == 64
    assert '<a href="2026Q3/grading.html">grading</a>' in (out / "index.html").read_text(encoding="utf-8")
    assert not list(out.glob(".staging-*"))
    assert manifest["html_bytes"] == {nb: (q / f"{nb}.html").stat().st_size for nb in reports.NOTEBOOKS}
    assert all(0 < v < reports.HTML_BUDGET_BYTES for v in manifest["html_bytes"].values())
    assert result.warnings == [] and "warning" not in result.summary()
    # nobody signed off or approved: every report says DRAFT at the top, and so does the index
    assert manifest["approval"]["state"] == "draft"
    for nb in reports.NOTEBOOKS:
        page = (q / f"{nb}.html").read_text(encoding="utf-8")
        assert '<div class="approval approval-draft" role="status">DRAFT — not approved: no sign-off yet' in page
    assert "DRAFT — not approved" in (out / "index.html").read_text(encoding="utf-8")
    import openpyxl

    book = openpyxl.load_workbook(q / "follow_ups.xlsx", read_only=True)
    assert book.sheetnames[0] == "summary" and len(book.sheetnames) > 2   # one sheet per account manager
    import duckdb

    libs = manifest["libraries"]  # what shaped the report: every declared library, installed version
    assert libs["pandas"] == pd.__version__ and libs["duckdb"] == duckdb.__version__ and "nbconvert" in libs


def test_a_report_above_the_html_budget_is_written_with_a_warning(rebuilt):
    out, result = rebuilt   # built with reports.HTML_BUDGET_BYTES = BUDGET
    sizes = json.loads((out / "2026Q3" / "manifest.json").read_text(encoding="utf-8"))["html_bytes"]
    over = sorted(nb for nb, size in sizes.items() if size > BUDGET)
    assert over and len(over) < len(sizes) and len(result.warnings) == len(over)
    for nb, warning in zip(over, sorted(result.warnings)):
        assert warning.startswith(f"{nb}.html is {sizes[nb] / 1024:.0f} KiB, above the {BUDGET / 1024:.0f} KiB budget")
        assert f"\nwarning: {warning}" in result.summary()
    assert (out / "2026Q3" / "grading.html").is_file()


def test_html_is_for_readers_offline_and_without_pii(built, demo):
    out, _ = built
    page = (out / "2026Q3" / "grading.html").read_text(encoding="utf-8")
    graded = pd.read_parquet(out / "2026Q3" / "grading.parquet")
    counts = graded["tier"].value_counts()
    assert "Customer grading — 2026Q3" in page and "核心客户" in page and "<svg" in page
    for tier, n in counts.items():
        assert f"{n:,}" in page
    # no code, no parameters, no external requests
    assert "GradingReport" not in page and "s1_four_tier\"" not in page and "injected-parameters" not in page
    assert not re.search(r"<script[^>]+src=\"https?:", page) and "cdnjs" not in page and "mathjax" not in page.lower()
    # PII of the demo's contacts never reaches the leadership report
    customers = pd.read_csv(demo.parent / "customers.csv", dtype=str)
    staff = set(customers["account_manager"].dropna())  # account managers are staff, shown by design
    for col in ("email", "phone", "contact_name"):
        values = [v for v in customers[col].dropna() if v not in staff]
        assert values and not any(v in page for v in values), col


def test_rerun_with_nothing_changed_does_nothing(built, demo, tmp_path):
    out = tmp_path / "reports"
    shutil.copytree(built[0], out)   # modification times kept
    before = (out / "2026Q3" / "grading.html").stat().st_mtime_ns
    again = reports.build_reports(data=demo, reports_dir=out)
    assert again.skipped and "up to date" in again.summary()
    assert (out / "2026Q3" / "grading.html").stat().st_mtime_ns == before


def test_a_failed_notebook_leaves_the_previous_report_untouched(built, demo, monkeypatch, tmp_path):
    out = tmp_path / "reports"
    shutil.copytree(built[0], out)
    q = out / "2026Q3"
    before = {str(p.relative_to(q)): p.read_bytes() for p in sorted(q.rglob("*")) if p.is_file()}
    broken = tmp_path / "notebooks"
    broken.mkdir()
    text = (reports.paths.notebooks_dir() / "grading.ipynb").read_text(encoding="utf-8")
    (broken / "grading.ipynb").write_text(text.replace("report.summary()", "report.no_such_section()"), encoding="utf-8")
    for other in reports.NOTEBOOKS:
        if other != "grading":
            shutil.copy(reports.paths.notebooks_dir() / f"{other}.ipynb", broken / f"{other}.ipynb")
    monkeypatch.setattr(reports.paths, "notebooks_dir", lambda: broken)
    with pytest.raises(ReportError) as e:
        reports.build_reports(data=demo, reports_dir=out, force=True)
    msg = str(e.value)
    assert msg.startswith("the grading notebook failed") and "no_such_section" in msg
    assert str(q / "failed" / "grading.ipynb") in msg and (q / "failed" / "grading.ipynb").is_file()
    after = {str(p.relative_to(q)): p.read_bytes() for p in sorted(q.rglob("*")) if p.is_file()}
    assert {k: v for k, v in after.items() if not k.startswith("failed/")} == before
    assert not list(out.glob(".staging-*"))


def test_customers_lost_before_the_quarter_end_are_not_graded(demo):
    from segment.pipeline import grade_data

    g = grade_data(demo, "s1_four_tier", "2026-09-30")
    lost = g.snapshot["status"].eq("lost")
    assert g.lost_before == int(lost.sum()) > 0
    assert len(g.frame) == len(g.snapshot) - g.lost_before
    assert not set(g.snapshot.loc[lost, "customer_id"]) & set(g.frame["customer_id"])


def test_cli_grade_writes_csv_and_parquet(demo, tmp_path, capsys):
    from segment.cli import main

    for name in ("g.csv", "g.parquet"):
        assert main(["grade", "--data", str(demo), "--scheme", "s1_four_tier", "--out", str(tmp_path / name)]) == 0
    a = pd.read_csv(tmp_path / "g.csv", dtype={"customer_id": str})
    b = pd.read_parquet(tmp_path / "g.parquet")
    assert a["tier"].tolist() == b["tier"].tolist() and len(a) > 0
    assert {"score", "raw_tier", "gates_failed", "overrides", "tier", "strategy", "follow_up_days",
            "explanation", "pts__annual_amount", "dim__value"} <= set(a.columns)
    assert main(["grade", "--data", str(demo), "--scheme", "no_such_scheme", "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no scheme 'no_such_scheme'" in err and "s1_four_tier" in err
    assert not (tmp_path / "x.csv").exists()


SECTIONS = {
    "grading": ["Summary", "Tiers over time", "Customers and revenue by tier", "Who moved since the previous period, and why", "Scores falling over the last periods",
                "Realised churn by tier", "Stability of the grading", "By product line", "By industry", "By region",
                "By account manager", "What each tier gets, and the resources it takes", "Follow-ups overdue, by account manager",
                "Reviewer decisions", "Data quality"],
    "review": ["How to review", "Who is reviewed, and why", "The customers to re-check, by account manager"],
    "calibration": ["Recommendation", "Expert and calibrated weights", "How well each weighting predicts churn out of time",
                    "Bands fitted to churn", "Churn probabilities: predicted against observed",
                    "Deciles and lift of the calibrated weights", "Churn by tier", "Churn timing by tier",
                    "What the scheme misses", "Who was counted"],
}


@pytest.mark.parametrize("nb", sorted(SECTIONS))
def test_each_report_has_its_sections_a_toc_and_a_footer(built, nb):
    out, _ = built
    page = (out / "2026Q3" / f"{nb}.html").read_text(encoding="utf-8")
    toc = re.search(r'<nav[^>]*class="toc"[^>]*>(.*?)</nav>', page, re.S)
    assert toc, "no table of contents"
    links = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', toc.group(1))
    assert [html.unescape(t) for _, t in links] == SECTIONS[nb]  # every section, in order
    for anchor, title in links:  # each entry leads to its heading
        assert re.search(rf'<h2 id="{re.escape(anchor)}">{re.escape(title)}<a class="anchor-link"', page), title
    assert page.index('class="toc"') > page.index("</h1>")  # after the title
    assert '<footer class="provenance">Generated ' in page
    body = page.split("<main>")[1].split("</main>")[0]
    assert "jp-InputArea-editor" not in body and "<pre>" not in body and "highlight" not in body
    assert not re.search(r"<script", page) and not re.search(r"<link[^>]+href=\"https?:", page)
    assert len(page.encode()) < 3_000_000


@pytest.mark.parametrize("nb", sorted(SECTIONS))
def test_each_page_is_styled_by_the_projects_own_template(built, nb):
    """segment's nbconvert template: the report's title, the project's CSS alone (no JupyterLab theme:
    its ~260 KB of CSS was most of every page), nothing but the outputs in <main>."""
    out, _ = built
    page = (out / "2026Q3" / f"{nb}.html").read_text(encoding="utf-8")
    title = html.unescape(re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S).group(1))
    assert f"<title>{html.escape(re.sub(r'<[^>]+>', '', title).strip(), quote=False)}</title>" in page
    head = page.split("</head>")[0]
    assert "--jp-" not in head and ".jp-RenderedHTMLCommon" not in head and "mathjax" not in head.lower()
    css = "".join(re.findall(r"<style[^>]*>(.*?)</style>", head, re.S))
    assert "td.num" in css and len(css) < 8_000
    assert len(page.encode()) - len(page.split("<main>")[1].encode()) < 10_000  # all but the report is small


def test_leadership_pages_name_indicators_in_words(built):
    out, _ = built
    for nb in ("grading", "review"):
        page = (out / "2026Q3" / f"{nb}.html").read_text(encoding="utf-8")
        assert "年交易额 annual amount (12 months)" in page, nb
        assert not re.search(r"\bannual_amount [+-]\d|\bannual_amount >=", page), nb


def test_grading_numbers_match_the_grading_table(built):
    out, _ = built
    page = (out / "2026Q3" / "grading.html").read_text(encoding="utf-8")
    g = pd.read_parquet(out / "2026Q3" / "grading.parquet")
    summary = page.split('id="Summary"')[1][:3000]
    for tier, n in g["tier"].astype(str).value_counts().items():
        assert f"{n:,} (" in summary
    assert f"{len(g):,} customers were graded" in summary


def test_review_loop_shows_in_next_quarters_report_escaped(demo, tmp_path):
    """2026Q2 report → review sheet → decisions (one reason is hostile HTML) → apply → the 2026Q3
    grading report lists the change, escaped."""
    from segment.cli import main

    out = tmp_path / "reports"
    reports.build_reports(quarter="2026Q2", data=demo, reports_dir=out)
    assert main(["review", "export", "--quarter", "2026Q2", "--reports-dir", str(out)]) == 0
    sheet = out / "2026Q2" / "review_sheet.csv"
    f = pd.read_csv(sheet, dtype=str, encoding="utf-8-sig")
    row = f.index[f["tier"] != "potential"][0]
    f.loc[row, ["confirm", "new_tier", "reason", "reviewer"]] = ["no", "potential", "<script>alert(1)</script>", "Li Na"]
    f.to_csv(sheet, index=False, encoding="utf-8-sig")
    assert main(["review", "apply", str(sheet), "--reports-dir", str(out)]) == 0
    log = (out / "audit_log.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(log) == 2 and log[1].split(",")[6] == f.loc[row, "customer_id"]
    assert log[1].split(",")[1:4] == ["2026Q2", "s1_four_tier", "decision"]
    assert (out / "2026Q2" / "grading.approved.parquet").is_file()

    reports.build_reports(quarter="2026Q3", data=demo, reports_dir=out)
    page = (out / "2026Q3" / "grading.html").read_text(encoding="utf-8")
    section = page.split('id="Reviewer-decisions"')[1][:4000]
    assert f.loc[row, "customer_id"] in section and "Li Na" in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and "<script>alert(1)" not in page
    assert "(after review)" in page  # the previous quarter is the approved grading


def test_report_tables_drop_personal_data_and_escape_values():
    from segment.reports.html import html_table

    df = pd.DataFrame({"customer_id": ["<b>C1</b>"], "contact_name": ["Zhang San"], "phone": ["138-0000-0000"],
                       "email": ["z@x.example"], "reason": ["<script>alert(1)</script>"]})
    out = html_table(df)
    assert "Zhang San" not in out and "138-0000" not in out and "z@x.example" not in out
    assert "&lt;b&gt;C1&lt;/b&gt;" in out and "&lt;script&gt;" in out and "<script>" not in out


def test_calibration_report_numbers_come_from_metrics(built):
    out, _ = built
    m = json.loads((out / "2026Q3" / "calibration" / "metrics.json").read_text(encoding="utf-8"))
    page = (out / "2026Q3" / "calibration.html").read_text(encoding="utf-8")
    assert m["test_as_of"] == "2026-03-31" and m["train_as_of"] == ["2025-03-31", "2025-06-30", "2025-09-30"]
    assert f"{m['calibrated']['test']['auc']:.3f}" in page and f"{m['expert']['test']['auc']:.3f}" in page
    assert "The analysts' scheme is unchanged" in page
    zero = [d for d, w in m["calibrated"]["dimension_weights"].items() if w == 0 and m["expert"]["dimension_weights"][d] > 0]
    for d in zero:  # a dimension the fit drops is said in words, with its indicators
        assert f"The {d} dimension gets no weight at all in the fit" in page
    assert m["calibrated"]["distinct_scores_test"] >= 10 and "Lift: churn in each tenth" in page


def test_a_dimension_the_fit_drops_is_said_in_words_and_few_scores_skip_the_deciles():
    from segment.reports.calibration import CalibrationReport

    perf = {"auc": 0.70, "ks": 0.30}
    m = {"expert": {"test": perf, "weights": {"a": 0.5, "g": 0.5}, "dimension_weights": {"value": 0.6, "potential": 0.4}},
         "calibrated": {"test": perf, "weights": {"a": 1.0, "g": 0.0}, "weights_ci": {"a": [0.8, 1.0], "g": [0.0, 0.01]},
                        "dimension_weights": {"value": 1.0, "potential": 0.0}, "distinct_scores_test": 4,
                        "calibration_table": [], "lift": []},
         "scheme": {"id": "x", "dimensions": {"a": "value", "g": "potential"}}, "tiers": {"monotone": True}}
    r = CalibrationReport(m, "2026Q3", calibrated_path="x.calibrated.yaml")
    text = r.recommendation()._repr_html_()
    assert "The potential dimension gets no weight at all in the fit (expert: 40%): none of g told churners" in text
    assert "The value dimension" not in text
    plot = r.calibration_plot()._repr_html_()
    assert "only 4 distinct values" in plot and "<table" not in plot


def test_a_section_that_does_not_apply_is_said_once_not_under_every_heading(tmp_path):
    """A calibration that could not run says why under the title; its sections (None) leave the page
    and the contents, headings included."""
    import nbformat

    from segment.reports.calibration import CalibrationReport

    r = CalibrationReport(None, "2026Q3", reason="the data start 2025-01-01: not enough history")
    assert all(getattr(r, s)() is None for s in ("recommendation", "weights", "performance", "calibration_plot",
                                                 "tiers", "caveats"))
    nb = nbformat.v4.new_notebook()
    title = nbformat.v4.new_code_cell("r.title()")
    title.outputs = [nbformat.v4.new_output("execute_result", {"text/html": r.title()._repr_html_()}, execution_count=1)]
    shown = nbformat.v4.new_code_cell("x")
    shown.outputs = [nbformat.v4.new_output("execute_result", {"text/html": "<p>kept</p>"}, execution_count=2)]
    nb.cells = [title, nbformat.v4.new_markdown_cell("## Recommendation"), nbformat.v4.new_code_cell("r.recommendation()"),
                nbformat.v4.new_markdown_cell("## Kept"), shown,
                nbformat.v4.new_markdown_cell("## Weights"), nbformat.v4.new_code_cell("r.weights()")]
    path = tmp_path / "calibration.ipynb"
    nbformat.write(nb, path)
    page = reports.to_html(path)
    assert page.count("not enough history") == 1 and "No calibration this period" in page
    assert "Recommendation" not in page and "Weights" not in page
    assert 'id="Kept"' in page and '<a href="#Kept">Kept</a>' in page


def test_the_calibration_notebook_finds_the_quarters_calibration_by_default(tmp_path, monkeypatch):
    """Opened by hand after `make report`, the calibration notebook's empty default reads
    reports/<quarter>/calibration, else reports/calibration; with neither, an error says what to run."""
    from segment.reports.calibration import calibration_report
    from segment.errors import SegmentError

    (tmp_path / "params" / "schemes").mkdir(parents=True)
    monkeypatch.setenv("SEGMENT_ROOT", str(tmp_path))
    with pytest.raises(SegmentError, match=r"no calibration in .*2026Q3/calibration or .*reports/calibration .*make report"):
        calibration_report("2026Q3")
    (tmp_path / "reports" / "calibration").mkdir(parents=True)
    (tmp_path / "reports" / "calibration" / "skipped.json").write_text('{"reason": "from make calibrate"}')
    assert calibration_report("2026Q3").reason == "from make calibrate"
    (tmp_path / "reports" / "2026Q3" / "calibration").mkdir(parents=True)
    (tmp_path / "reports" / "2026Q3" / "calibration" / "skipped.json").write_text('{"reason": "the quarter\'s"}')
    assert calibration_report("2026Q3").reason == "the quarter's"


def test_calibration_dates():
    from segment.reports.calibration import calibration_dates

    assert calibration_dates("2026-09-30", "2023-01-01", 180) == (["2025-03-31", "2025-06-30", "2025-09-30"],
                                                                    "2026-03-31")
    # no full year before a leak-free train date: half a year (the calibration warns about it)
    assert calibration_dates("2024-09-30", "2023-01-01", 180) == (["2023-09-30"], "2024-03-31")
    assert calibration_dates("2024-06-30", "2023-01-01", 180) is None   # not even half a year
    # Online Retail II (Dec 2009 – Dec 2011), its latest complete quarter
    assert calibration_dates("2011-09-30", "2009-12-01", 180) == (["2010-06-30", "2010-09-30"], "2011-03-31")


def test_a_second_build_of_the_same_quarter_is_refused_while_one_runs(demo, tmp_path):
    import fcntl

    out = tmp_path / "reports"
    out.mkdir()
    with open(out / ".lock-2026Q3", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(reports.SegmentError, match="being built by another run"):
            reports.build_reports(quarter="2026Q3", data=demo, reports_dir=out)
    assert not (out / "2026Q3").exists()


def _files(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_during_a_report_leaves_the_previous_reports(built, demo, tmp_path, monkeypatch, capsys, sig):
    """Issue 7: Ctrl-C or a SIGTERM while a notebook runs — previous reports and index byte-identical,
    no staging folder left, the quarter's lock free again."""
    import os
    import signal

    from segment.cli import main
    from segment.review.audit import AUDIT_HEADER

    out, _ = built
    copy = tmp_path / "reports"
    shutil.copytree(out, copy)
    # the audit log is an input of the report: a new one makes the quarter stale, so the run rebuilds
    (copy / "audit_log.csv").write_text(",".join(AUDIT_HEADER) + "\n", encoding="utf-8")
    before = _files(copy)
    execute = reports.execute

    def interrupted(nb_in, nb_out, params, cwd):
        if nb_in.stem == "review":   # the grading notebook has run; the signal comes before the second
            os.kill(os.getpid(), getattr(signal, sig))
        return execute(nb_in, nb_out, params, cwd)

    monkeypatch.setattr(reports, "execute", interrupted)
    assert main(["report", "--data", str(demo), "--reports-dir", str(copy)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert _files(copy) == before and not list(copy.glob(".staging-*"))
    with reports._quarter_lock(copy, "2026Q3"):
        pass


def test_a_rebuild_differs_only_in_the_generation_time(built, rebuilt):
    """Issue 7: same inputs → byte-identical grading and calibration; HTML equal but for the footer's time."""
    _, first = built
    _, again = rebuilt
    assert not first.skipped and not again.skipped
    a, b = _files(first.out_dir), _files(again.out_dir)
    # the commit is masked too: only so that a commit landing between the two builds (CI, a colleague) cannot fail this
    stamp = re.compile(rb"Generated \d{4}-\d\d-\d\d \d\d:\d\d UTC|\(commit [0-9a-f]+\)")
    for nb in reports.NOTEBOOKS:
        assert stamp.sub(b"Generated T", a[f"{nb}.html"]) == stamp.sub(b"Generated T", b[f"{nb}.html"]), nb
    for name in a:
        if name.startswith("calibration/") or name == "grading.parquet":
            assert a[name] == b[name], name
    ma, mb = (json.loads(x["manifest.json"]) for x in (a, b))
    for m in (ma, mb):
        m.pop("timings_seconds"), m.pop("git_commit")
    assert ma == mb


def test_review_html_lists_at_most_the_row_limit(built):
    from segment.reports.review import review_report

    out, _ = built
    r = review_report("2026Q3", str(out / "2026Q3" / "grading.parquet"), "s1_four_tier")
    n = len(r.selection.frame)
    sec = r.customers(limit=10)
    html_text = sec._repr_html_()
    assert n > 10 and html_text.count("<tr") - html_text.count("<thead") == 10  # 10 rows under their managers' headers
    assert f"The first 10 of {n:,} customers" in html_text and len(sec.table()) == n
    managers = re.findall(r"<h3>(.*?) — (\d+) customers?</h3>", html_text)
    assert managers and sum(int(k) for _, k in managers) == 10
    full = sec.table()
    assert {"name", "account_manager", "region"} <= set(full.columns) and full["name"].notna().all()


# --------------------------------------------------------------------------------------------
# issue 11: an unchanged rerun answers "up to date" from the inputs' bytes, without loading the data
# --------------------------------------------------------------------------------------------

class _Loaded(Exception):
    """load_data was called."""


class _Rebuilt(Exception):
    """the build went past the up-to-date check: it loaded the data and started grading."""


def _refuse_to_load(monkeypatch):
    def load_data(*args, **kwargs):
        raise _Loaded(args)

    monkeypatch.setattr("segment.reports.build.load_data", load_data)  # where the build looks it up


def _stop_at_grading(monkeypatch) -> list:
    """The rebuild stops where it starts grading (after load_data); returns the quarters it was asked for."""
    quarters = []

    def prepare(loaded, scheme_path, quarter, **kwargs):
        quarters.append(quarter)
        raise _Rebuilt(quarter)

    monkeypatch.setattr("segment.reports.build.prepare_grading_report", prepare)  # where the build looks it up
    return quarters


@pytest.fixture(scope="session")
def _built_open(demo, tmp_path_factory):
    def build(root: Path):
        shutil.copytree(demo.parent, root / "data")
        cfg = root / "data" / "data.yaml"
        cfg.write_text("".join(line for line in cfg.read_text(encoding="utf-8").splitlines(keepends=True)
                               if not line.startswith("as_of:")), encoding="utf-8")
        scheme = root / "scheme.yaml"
        shutil.copy(reports.paths.schemes_dir() / "s1_four_tier.yaml", scheme)
        result = reports.build_reports(data=cfg, scheme=str(scheme), reports_dir=root / "reports")
        return cfg, scheme, root / "reports", result

    return once(tmp_path_factory, "shared-open", build)


@pytest.fixture
def built_open(_built_open, tmp_path_factory):
    """A copy of the demo whose data config has no `as_of:` (the data's end is its last transaction
    date), with its own copy of the scheme, reported once with the default quarter. Tests edit its inputs
    in place (the manifest names them by absolute path: a copy would be stale whatever the test did) and
    put them back (``restore``): one test at a time, also across xdist workers."""
    with exclusive(tmp_path_factory, "shared-open"):
        yield _built_open


@pytest.fixture
def restore(built_open):
    """Files a test edits in place (the built manifests name them by absolute path), put back afterwards
    (before ``built_open`` lets the next test in)."""
    saved: dict = {}

    def keep(*paths):
        for p in paths:
            saved.setdefault(p, (p.read_bytes(), p.stat()))

    yield keep
    for p, (data, st) in saved.items():
        p.write_bytes(data)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_an_unchanged_rerun_does_not_load_the_data(built, demo, monkeypatch, tmp_path):
    out = tmp_path / "reports"
    shutil.copytree(built[0], out)
    _refuse_to_load(monkeypatch)
    again = reports.build_reports(data=demo, reports_dir=out)   # default quarter: the config's as_of
    assert again.skipped and again.quarter == "2026Q3" and "up to date" in again.summary()
    assert reports.build_reports(quarter="2026Q3", data=demo, reports_dir=out).skipped


def test_an_unchanged_rerun_finds_the_default_quarter_without_loading(built_open, monkeypatch):
    """Without `as_of:` the default quarter needs the last transaction date: the manifest recorded it
    under a key of the data's bytes, so the rerun does not load the tables to find it."""
    cfg, scheme, out, first = built_open
    assert first.quarter == "2026Q3" and not first.skipped
    manifest = json.loads((out / "2026Q3" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["data_end"]["date"] == "2026-09-30" and len(manifest["data_end"]["key"]) == 64
    _refuse_to_load(monkeypatch)
    again = reports.build_reports(data=cfg, scheme=str(scheme), reports_dir=out)
    assert again.skipped and again.quarter == "2026Q3"


def _same_size_edit(path: Path, old: bytes, new: bytes) -> None:
    """Change the bytes, keep the size and the modification time: only the content tells."""
    st = path.stat()
    data = path.read_bytes()
    assert len(old) == len(new) and old in data
    path.write_bytes(data.replace(old, new, 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size


@pytest.mark.parametrize("what", ["customers.csv", "transactions.parquet", "data.yaml", "scheme"])
def test_a_changed_input_rebuilds(built_open, monkeypatch, restore, what):
    cfg, scheme, out, _ = built_open
    path = scheme if what == "scheme" else cfg.parent / what
    restore(path)
    if what == "customers.csv":
        row = path.read_bytes().splitlines()[1]   # the first customer's name gets another first letter
        at = row.index(b",") + 1 + row[row.index(b",") + 1:].startswith(b'"')
        _same_size_edit(path, row, row[:at] + (b"X" if row[at:at + 1] != b"X" else b"Y") + row[at + 1:])
    elif what == "transactions.parquet":   # the data grows by a row of the last quarter
        t = pd.read_parquet(path)
        extra = t.iloc[[-1]].assign(order_id="EXTRA-1")
        pd.concat([t, extra], ignore_index=True).to_parquet(path, index=False)
    elif what == "data.yaml":
        path.write_text(path.read_text(encoding="utf-8") + "# checked by the finance team\n", encoding="utf-8")
    else:
        path.write_text(path.read_text(encoding="utf-8") + "\n# reviewed\n", encoding="utf-8")
    quarters = _stop_at_grading(monkeypatch)
    orphan = out / ".staging-2026Q3-999999999"  # what a build killed by SIGKILL left: removed by the next
    (orphan / "bundle").mkdir(parents=True)
    with pytest.raises(_Rebuilt):
        reports.build_reports(data=cfg, scheme=str(scheme), reports_dir=out)
    assert quarters == ["2026Q3"]
    assert not list(out.glob(".staging-*"))


def test_the_default_quarter_follows_the_data_when_it_grows_by_a_quarter(built_open, monkeypatch, restore):
    """The data end recorded in the manifest belongs to the old bytes: after a quarter of new
    transactions the default quarter is the new one (the tables are loaded to find it)."""
    cfg, scheme, out, _ = built_open
    path = cfg.parent / "transactions.parquet"
    restore(path)
    t = pd.read_parquet(path)
    q3 = t[t["date"] >= "2026-07-01"]
    q4 = q3.assign(date=q3["date"] + pd.Timedelta(days=92), order_id=q3["order_id"] + "-Q4")
    assert q4["date"].max() == pd.Timestamp("2026-12-31")
    pd.concat([t, q4], ignore_index=True).to_parquet(path, index=False)
    loads = []
    from segment.data import validate

    real = validate.load_data

    def counting(*args, **kwargs):
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr("segment.reports.build.load_data", counting)  # where the build looks it up
    quarters = _stop_at_grading(monkeypatch)
    with pytest.raises(_Rebuilt):
        reports.build_reports(data=cfg, scheme=str(scheme), reports_dir=out)
    assert quarters == ["2026Q4"] and loads
    assert not (out / "2026Q4").exists()


def test_a_new_audit_log_or_missing_html_rebuilds(built, demo, monkeypatch, tmp_path):
    from segment.review.audit import AUDIT_HEADER

    out, _ = built
    copy = tmp_path / "reports"
    shutil.copytree(out, copy)
    quarters = _stop_at_grading(monkeypatch)
    (copy / "audit_log.csv").write_text(",".join(AUDIT_HEADER) + "\n", encoding="utf-8")
    with pytest.raises(_Rebuilt):
        reports.build_reports(data=demo, reports_dir=copy)
    (copy / "audit_log.csv").unlink()
    (copy / "2026Q3" / "review.html").unlink()
    with pytest.raises(_Rebuilt):
        reports.build_reports(data=demo, reports_dir=copy)
    assert quarters == ["2026Q3", "2026Q3"]


def test_a_missing_data_file_is_reported_by_the_loader(demo, tmp_path, capsys):
    from segment.cli import main

    shutil.copytree(demo.parent, tmp_path / "data")
    (tmp_path / "data" / "opportunities.csv").unlink()
    assert main(["report", "--data", str(tmp_path / "data" / "data.yaml"), "--reports-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "opportunities.csv" in err and "not found" in err


def test_a_sql_source_is_fingerprinted_from_its_query_result(tmp_path, monkeypatch):
    """A database has no bytes to hash: a config with a SQL source is loaded before the check, as before."""
    from segment.data.config import read_data_config

    cfg = tmp_path / "data.yaml"
    cfg.write_text("tables:\n  transactions: {sql: {url: 'duckdb:///db.duckdb', query: 'SELECT * FROM tx'}}\n",
                   encoding="utf-8")
    config = read_data_config(cfg)
    assert reports.has_sql(config) and reports.data_key(cfg, config, {}) is None
    with pytest.raises(ValueError, match="SQL source"):
        reports.inputs_fingerprint(cfg, cfg, None, config=config)
    _refuse_to_load(monkeypatch)
    with pytest.raises(_Loaded):
        reports.build_reports(data=cfg, reports_dir=tmp_path / "reports")
