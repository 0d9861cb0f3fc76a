"""Spark and DuckDB give the same validation and the same snapshot: one SQL definition of each cast and
check (segment.data.store, through features.Dialect) and of the snapshot (features.plan), run by both.

Run with `make test-spark` (installs the `spark` extra; needs Java 17). Local mode, local[2], one
session for the module.
Tolerance: integer, string, boolean and date columns must be identical; float columns agree to
rtol 1e-9 / atol 1e-6 — Spark has no compensated sum (DuckDB uses FSUM) and rounds doubles with
BigDecimal HALF_UP, so a sum (rounded to 6 decimals on both engines) may differ in its last digit.
"""
from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest

pytestmark = [pytest.mark.spark, pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _java() -> str | None:
    if shutil.which("java") is None:
        return "no `java` on PATH: Spark needs Java 17 (apt-get install openjdk-17-jre-headless)"
    r = subprocess.run(["java", "-version"], capture_output=True, text=True)
    return None if r.returncode == 0 else f"`java -version` failed: {r.stderr.strip()[:200]}"


if (_why := _java()) is not None:
    pytest.skip(_why, allow_module_level=True)
pytest.importorskip("pyspark", reason="PySpark missing: pip install -e '.[spark]' (make test-spark does)")

from segment.data import spark as engines
from segment.demo.write import write_demo
from segment.features.snapshot import snapshot
from segment.data.validate import load_data

DATES = ["2026-09-30", "2025-06-30"]
RTOL, ATOL = 1e-9, 1e-6


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = write_demo(out, customers=1000)
    return cfg, load_data(cfg).tables


@pytest.fixture(scope="module")
def spark():
    s = engines.spark_session("local[2]")
    yield s
    s.stop()


def same(duck: pd.DataFrame, spark_snap: pd.DataFrame) -> None:
    a = duck.sort_values("customer_id").reset_index(drop=True)
    b = spark_snap.sort_values("customer_id").reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b) > 0
    exact = [c for c in a.columns if a[c].dtype != "float64"]
    pd.testing.assert_frame_equal(a[exact], b[exact], check_exact=True)
    floats = [c for c in a.columns if a[c].dtype == "float64"]
    pd.testing.assert_frame_equal(a[floats], b[floats], check_exact=False, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("as_of", DATES)
def test_spark_equals_duckdb_in_memory_tables(demo, spark, as_of):
    _, tables = demo
    same(snapshot(tables, as_of), engines.spark_snapshot(tables, as_of, spark=spark))


def test_spark_equals_duckdb_restricted(demo, spark):
    _, tables = demo
    ids = list(snapshot(tables, DATES[0])["customer_id"][::7])
    same(snapshot(tables, DATES[0], customers=ids), engines.spark_snapshot(tables, DATES[0], customers=ids, spark=spark))


def test_engine_chosen_by_the_data_config(demo, spark, tmp_path):
    """`engine: spark` in DATA.yaml: the files are read by Spark, the result equals DuckDB's."""
    cfg, tables = demo
    text = cfg.read_text().replace("tables:", "engine: spark\nspark: {master: 'local[2]'}\ntables:")
    for f in cfg.parent.glob("*.*"):
        if f.name != "data.yaml":
            shutil.copy(f, tmp_path / f.name)
    (tmp_path / "data.yaml").write_text(text)
    got = engines.snapshot_from_config(tmp_path / "data.yaml", DATES[0], spark=spark)
    same(snapshot(tables, DATES[0]), got)


@pytest.mark.parametrize("sid, as_of", [("s1_four_tier", None), ("s7_sales_stages", "2025-12-31"),
                                       ("s4_key_account_levels", "2026-06-30"),
                                       ("s8_government_product_line", None)])
def test_segment_grade_on_spark_gives_the_duckdb_grading(demo, spark, tmp_path, sid, as_of):
    """`segment grade` with `engine: spark`: validation, snapshot and the grading's SQL run on Spark; the
    written grading equals DuckDB's column by column (texts and tiers identical, floats to RTOL/ATOL)."""
    from segment.cli import main

    cfg, _ = demo
    for f in cfg.parent.glob("*.*"):
        if f.name != "data.yaml":
            shutil.copy(f, tmp_path / f.name)
    (tmp_path / "data.yaml").write_text(cfg.read_text().replace("tables:", "engine: spark\nspark: {master: 'local[2]'}\ntables:"))
    when = ["--as-of", as_of] if as_of else []
    assert main(["grade", "--data", str(tmp_path / "data.yaml"), "--scheme", sid, *when, "--out", str(tmp_path / "s.csv")]) == 0
    assert main(["grade", "--data", str(cfg), "--scheme", sid, *when, "--out", str(tmp_path / "d.csv")]) == 0
    a, b = (pd.read_csv(tmp_path / n, dtype={"customer_id": str}, keep_default_na=False, na_values=[""])
            for n in ("s.csv", "d.csv"))
    assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0
    floats = [c for c in b.columns if b[c].dtype == "float64"]
    pd.testing.assert_frame_equal(a.drop(columns=floats), b.drop(columns=floats), check_exact=True)
    pd.testing.assert_frame_equal(a[floats], b[floats], check_exact=False, rtol=RTOL, atol=ATOL)
    assert b["tier"].nunique() >= 2


# --------------------------------------------------------------------------------------------
# validation on Spark: the store's SQL, the same problems
# --------------------------------------------------------------------------------------------

def _on_spark(cfg, folder):
    """A copy of the data config's folder with `engine: spark` (local[2])."""
    folder.mkdir(exist_ok=True)
    for f in cfg.parent.iterdir():
        if f.is_file() and f.name != cfg.name:
            shutil.copy(f, folder / f.name)
    text = cfg.read_text(encoding="utf-8")
    (folder / cfg.name).write_text(("engine: spark\nspark: {master: 'local[2]'}\n" + text), encoding="utf-8")
    return folder / cfg.name


def test_validate_on_spark_gives_the_duckdb_report(demo, spark, tmp_path):
    """The demo with a dirty transactions CSV (bad numbers and dates, a duplicate line, unknown customers,
    lines after the as-of date, returns, ids missing): every problem, count, row number and example equal."""
    cfg, tables = demo
    tx = tables.transactions.head(4000).copy()
    text = tx.astype(object).astype(str).where(tx.notna(), "")
    text.loc[3, "amount"] = "1,200"
    text.loc[7, "amount"] = "inf"
    text.loc[11, "date"] = "2026-02-30"
    text.loc[12, "date"] = "2026/01/05 9:30"
    text.loc[13, "date"] = "2026-01-05T10:00:00+08:00"
    text.loc[15, "customer_id"] = "nobody"
    text.loc[20:22, "customer_id"] = ""
    text.loc[30, "date"] = "2030-01-01"
    text.loc[40, "amount"] = "-5"
    text = pd.concat([text, text.iloc[[50]]], ignore_index=True)
    work = tmp_path / "duck"
    work.mkdir()
    for f in cfg.parent.iterdir():
        if f.is_file():
            shutil.copy(f, work / f.name)
    text.to_csv(work / "transactions.csv", index=False)
    (work / "data.yaml").write_text(cfg.read_text().replace("transactions.parquet", "transactions.csv").replace(
        "transactions: {path: transactions.csv}",
        "transactions: {path: transactions.csv, drop: [missing_customer_id, duplicate_lines]}"))
    spark_cfg = _on_spark(work / "data.yaml", tmp_path / "spark")
    duck = load_data(work / "data.yaml", strict=False)
    on_spark = load_data(spark_cfg, strict=False, engine="spark")
    try:
        assert len(duck.report) >= 6, duck.report
        pd.testing.assert_frame_equal(on_spark.report, duck.report)
        assert {n: on_spark.tables.rows(n) for n in on_spark.tables.present()} == {
            n: duck.tables.rows(n) for n in duck.tables.present()}
        same(duck.tables.snapshot(DATES[0]), on_spark.tables.snapshot(DATES[0]))
    finally:
        on_spark.tables.close()


#: bad inputs of tests/badinput: Spark gives the same `error:` text as DuckDB (grade and validate)
BAD = ["amount_na_text", "date_format_declared_but_not_matching", "ragged_rows",
       "date_placeholder_in_parquet", "excel_several_sheets_first_is_a_cover"]


@pytest.mark.parametrize("case_id", BAD)
def test_bad_input_gives_the_same_error_on_spark(case_id, spark, tmp_path, capsys):
    from segment.cli import main

    from ..test_badinput import CASES, HERE

    case = next(c for c in CASES if c["id"] == case_id)
    errors = {}
    for engine in ("duckdb", "spark"):
        work = tmp_path / engine[:5]  # as long for both: the report's columns are as wide
        shutil.copytree(HERE / "base", work)
        if (HERE / case_id).is_dir():
            shutil.copytree(HERE / case_id, work, dirs_exist_ok=True)
        for name in case.get("remove", []):
            (work / name).unlink()
        if engine == "spark":
            text = (work / "data.yaml").read_text(encoding="utf-8")
            (work / "data.yaml").write_text("engine: spark\nspark: {master: 'local[2]'}\n" + text, encoding="utf-8")
        args = [str(a).replace("{dir}", str(work)) for a in case["args"]]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:"), err
        for fragment in case["expect"]:
            assert str(fragment).replace("{dir}", str(work)) in err, f"{engine}: {fragment!r} not in:\n{err}"
        errors[engine] = err.replace(str(work), "{dir}")
    assert errors["spark"] == errors["duckdb"]


#: texts DuckDB and Spark must read alike (the known edge differences are listed in docs/scale.md)
DATE_TEXTS = ["2026-01-05", "2026-1-5", "2026-01-05 10:00", "2026-01-05T10:00:00.123456", "2026-01-05 10:00:00.1234567",
              "2026/01/05", "2026-01-05  9:30", "2026-01-05 1:2:3", "2026-02-30", "2026-13-01", "05.01.2026",
              "20260105", "20260105T101112", "2026-01", "2026", "2026-01-05 10", "2026-01-05T10",
              "2026-01-05T10:00:00Z", "2026-01-05 10:00:00+08:00", "2026-01-05 10:00-0500", "0000-01-01",
              "0001-01-01", "1677-09-21", "2262-04-11", "9999-12-31", "12026-01-05", "2026-01-05 10:00:60",
              "2026-01-05t10:00", "2026-001-05", "Jan 5 2026", "", "abc"]
NUMBER_TEXTS = ["1", "1.5", "-2", "+3", ".5", "5.", "1e5", "1E+5", "1e400", "inf", "-Infinity", "NaN", "1.5d", "1.5F",
                "1_000", "1_0.5_5", "_1", "1__0", "1,000", "0x10", "1e", "--1", "00012", "abc"]


@pytest.mark.parametrize("fmt", [None, "%d.%m.%Y", "%Y%m%d"])
def test_the_shared_date_cast_reads_alike(spark, fmt):
    import duckdb

    from segment.plumbing.sql import DIALECTS
    from segment.data.rules import parse_date

    values = " UNION ALL ".join(f"SELECT {i} AS i, '{v}' AS v" for i, v in enumerate(DATE_TEXTS))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    duck = con.execute(f"SELECT i, {parse_date(DIALECTS['duckdb'], 'v', fmt)} FROM ({values}) ORDER BY i").fetchall()
    got = [tuple(r) for r in spark.sql(f"SELECT i, {parse_date(DIALECTS['spark'], 'v', fmt)} FROM ({values}) AS t "
                                       "ORDER BY i").collect()]
    assert {DATE_TEXTS[i]: v for i, v in got} == {DATE_TEXTS[i]: v for i, v in duck}


def test_the_shared_number_cast_reads_alike(spark):
    import duckdb

    from segment.plumbing.sql import DIALECTS

    values = " UNION ALL ".join(f"SELECT {i} AS i, '{v}' AS v" for i, v in enumerate(NUMBER_TEXTS))
    duck = duckdb.connect().execute(f"SELECT i, {DIALECTS['duckdb'].number('v')} FROM ({values}) ORDER BY i").fetchall()
    got = [tuple(r) for r in spark.sql(f"SELECT i, {DIALECTS['spark'].number('v')} FROM ({values}) AS t ORDER BY i").collect()]
    same_ = lambda a, b: a == b or (a != a and b != b)  # noqa: E731 - NaN equals NaN here
    assert all(same_(a[1], b[1]) for a, b in zip(duck, got)), [
        (NUMBER_TEXTS[a[0]], a[1], b[1]) for a, b in zip(duck, got) if not same_(a[1], b[1])]


def test_segment_validate_on_spark_prints_the_duckdb_report(demo, spark, tmp_path, capsys):
    """`segment validate` on the demo with `engine: spark`: the same rows and the same report."""
    from segment.cli import main

    cfg, tables = demo
    printed = {}
    for engine in ("duckdb", "spark"):
        data = _on_spark(cfg, tmp_path / engine[:5]) if engine == "spark" else cfg
        assert main(["validate", "--data", str(data)]) == 0
        printed[engine] = capsys.readouterr().out.replace(str(data), "DATA")
    assert f"transactions: {tables.rows('transactions'):,} rows" in printed["spark"]
    assert printed["spark"] == printed["duckdb"]


def test_segment_report_on_spark_gives_the_duckdb_reports(demo, spark, tmp_path):
    """`segment report` with `engine: spark`: the quarter's three gradings, realised churn and the
    calibration panel are computed on Spark (only per-customer rows come back); the reports' grading,
    headline and calibration equal DuckDB's (tiers identical, floats to RTOL/ATOL)."""
    from segment.reports.build import build_reports

    cfg, _ = demo
    on_spark = _on_spark(cfg, tmp_path / "spark-data")
    built = {}
    for name, data in (("spark", on_spark), ("duckdb", cfg)):
        built[name] = build_reports(quarter="2026Q3", data=data, scheme="s1_four_tier",
                                    reports_dir=tmp_path / f"reports-{name}")
        assert not built[name].skipped and {p.name for p in built[name].files} >= {"grading.html", "review.html",
                                                                                   "calibration.html"}
    import json

    a, b = (pd.read_parquet(r.out_dir / "grading.parquet") for r in (built["spark"], built["duckdb"]))
    assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0
    floats = [c for c in b.columns if b[c].dtype == "float64"]
    pd.testing.assert_frame_equal(a.drop(columns=floats), b.drop(columns=floats), check_exact=True)
    pd.testing.assert_frame_equal(a[floats], b[floats], check_exact=False, rtol=RTOL, atol=ATOL)
    ma, mb = (json.loads((r.out_dir / "manifest.json").read_text(encoding="utf-8")) for r in built.values())
    assert ma["headline"]["tiers"] == mb["headline"]["tiers"]
    assert ma["headline"]["revenue_12m"] == pytest.approx(mb["headline"]["revenue_12m"], rel=RTOL)
    assert ma["customers"] == mb["customers"]
    assert "skipped" not in mb["calibration"]
    for k in ("expert", "calibrated"):
        assert ma["calibration"]["test_auc"][k] == pytest.approx(mb["calibration"]["test_auc"][k], rel=1e-6)
    # beyond the weights: the fitted bands, churn timing (its SQL runs on Spark) and the ranking agree too
    ca, cb = (json.loads((r.out_dir / "calibration" / "metrics.json").read_text(encoding="utf-8")) for r in built.values())
    assert "skipped" not in ca["timing"] and ca["timing"]["by_tier"] == cb["timing"]["by_tier"]
    assert ca["proposal"]["test"]["auc"] == pytest.approx(cb["proposal"]["test"]["auc"], rel=1e-6)
    assert [r["indicator"] for r in ca["indicators"]["ranking"]] == [r["indicator"] for r in cb["indicators"]["ranking"]]
    # the realised-churn table of the grading report is the same
    ha, hb = ((r.out_dir / "grading.html").read_text(encoding="utf-8") for r in built.values())
    assert ha.count("<tr") == hb.count("<tr")
