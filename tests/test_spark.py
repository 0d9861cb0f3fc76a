"""Spark and DuckDB give the same snapshot: the one SQL definition (features.plan) run by both.

Run with `make test-spark` (installs the `spark` extra; needs Java 17). Local mode, local[2].
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

from segment import engines
from segment.demo import write_demo
from segment.features import snapshot
from segment.validate import load_data

DATES = ["2026-09-30", "2025-06-30"]
RTOL, ATOL = 1e-9, 1e-6


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = write_demo(out, customers=3000)
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


def test_segment_grade_on_spark_gives_the_duckdb_tiers(demo, spark, tmp_path):
    """`segment grade` with `engine: spark`: the snapshot comes from Spark, grading runs as usual."""
    from segment.cli import main

    cfg, _ = demo
    for f in cfg.parent.glob("*.*"):
        if f.name != "data.yaml":
            shutil.copy(f, tmp_path / f.name)
    (tmp_path / "data.yaml").write_text(cfg.read_text().replace("tables:", "engine: spark\nspark: {master: 'local[2]'}\ntables:"))
    assert main(["grade", "--data", str(tmp_path / "data.yaml"), "--scheme", "s1_four_tier", "--out", str(tmp_path / "s.csv")]) == 0
    assert main(["grade", "--data", str(cfg), "--scheme", "s1_four_tier", "--out", str(tmp_path / "d.csv")]) == 0
    a, b = (pd.read_csv(tmp_path / n, dtype={"customer_id": str}) for n in ("s.csv", "d.csv"))
    assert len(a) == len(b) > 0
    assert a["tier"].tolist() == b["tier"].tolist()
    pd.testing.assert_series_equal(a["score"], b["score"], rtol=1e-9)
