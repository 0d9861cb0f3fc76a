"""The file-backed snapshot (segment.data.spark, DuckDB over the data config's files) equals the
in-memory one, and the one SQL definition renders for both engines. Spark itself: tests/data/test_spark.py."""
from __future__ import annotations

import pandas as pd
import pytest

from segment.data import spark as engines
from segment.demo.write import write_demo
from segment.errors import ConfigError
from segment.features.snapshot import plan, snapshot
from segment.data.config import read_data_config
from segment.plumbing.progress import enabled, progress
from segment.data.validate import load_data

AS_OF = "2026-09-30"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    cfg = write_demo(tmp_path_factory.mktemp("demo"), customers=800)
    return cfg, load_data(cfg).tables


@pytest.mark.parametrize("as_of", [AS_OF, "2025-03-31"])
def test_files_equal_in_memory(demo, as_of):
    cfg, tables = demo
    pd.testing.assert_frame_equal(engines.snapshot_from_config(cfg, as_of), snapshot(tables, as_of), check_exact=True)


def test_files_restricted_and_default_as_of(demo):
    cfg, tables = demo
    ids = list(snapshot(tables, AS_OF)["customer_id"][::5]) + ["nobody"]
    pd.testing.assert_frame_equal(engines.snapshot_from_config(cfg, customers=ids),
                                  snapshot(tables, AS_OF, customers=ids), check_exact=True)


def test_csv_mapping_unit_and_duplicates(demo, tmp_path):
    """A CSV with other column names, amounts in 万元 and a duplicated line declared under drop:."""
    cfg, tables = demo
    tx = tables.transactions.rename(columns={"customer_id": "客户编号", "amount": "amt"})
    tx["amt"] = tx["amt"] / 10000
    tx = pd.concat([tx, tx.iloc[:1]])
    tx.to_csv(tmp_path / "tx.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")
    (tmp_path / "data.yaml").write_text(
        "tables:\n  transactions:\n    path: tx.csv\n    columns: {客户编号: customer_id, amt: amount}\n"
        "    amount_unit: 10000\n    drop: [duplicate_lines]\n")
    mem = load_data(tmp_path / "data.yaml").tables
    got = engines.snapshot_from_config(tmp_path / "data.yaml", AS_OF)
    want = snapshot(mem, AS_OF)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)


def test_engine_in_the_data_config(tmp_path):
    (tmp_path / "data.yaml").write_text("engine: spark\nspark: {master: 'spark://head:7077', conf: "
                                        "{spark.executor.memory: 8g}}\ntables:\n  transactions: {path: t.parquet}\n")
    c = read_data_config(tmp_path / "data.yaml")
    assert (c.engine, c.spark.master, c.spark.conf) == ("spark", "spark://head:7077", {"spark.executor.memory": "8g"})
    assert read_data_config(tmp_path / "data.yaml").model_copy(update={"engine": "duckdb"}).engine == "duckdb"


def test_unsupported_source_option_is_named(tmp_path):
    """A date format Spark's patterns cannot spell is named before a SparkSession is started."""
    (tmp_path / "data.yaml").write_text("as_of: 2024-01-01\nengine: spark\ntables:\n  transactions: {path: t.csv, "
                                        "date_format: '%d/%m/%Y %Z'}\n")
    with pytest.raises(ConfigError, match="date_format.*%Z"):
        engines.snapshot_from_config(tmp_path / "data.yaml")


def test_one_definition_two_dialects():
    cols = {"transactions": ["customer_id", "date", "amount", "order_id"],
            "interactions": ["customer_id", "date", "kind", "score", "resolution_hours"],
            "opportunities": ["opportunity_id", "customer_id", "created_date", "stage"]}
    duck, spark = plan(cols, AS_OF, dialect="duckdb"), plan(cols, AS_OF, dialect="spark")
    assert duck.keep == spark.keep and [n for n, _ in duck.aggregates] == [n for n, _ in spark.aggregates]
    spark_sql = " ".join(s for _, s in spark.aggregates) + spark.final
    for duckdb_only in ("FSUM", "FAVG", "struct_pack", "ARG_MAX", "date_diff", "epoch(", "::", '"'):
        assert duckdb_only not in spark_sql


def test_progress_silent_without_a_tty(monkeypatch):
    monkeypatch.delenv("SEGMENT_PROGRESS", raising=False)
    assert not enabled()  # pytest captures stderr: not a TTY
    items = [1, 2]
    assert progress(items, desc="x") is items
    monkeypatch.setenv("SEGMENT_PROGRESS", "1")
    assert list(progress(items, desc="x")) == items


def test_strftime_formats_become_spark_patterns():
    from segment.plumbing.sql import java_datetime_pattern

    assert java_datetime_pattern("%d.%m.%Y") == "d.M.yyyy"  # 5.1.2026 and 05.01.2026, as strptime reads them
    assert java_datetime_pattern("%Y%m%d") == "yyyyMMdd"  # packed digits keep their width
    assert java_datetime_pattern("%Y%m%dT%H%M%S") == "yyyyMMdd'T'HHmmss"
    assert java_datetime_pattern("%d %b %Y %H:%M") == "d MMM yyyy H:m"
    with pytest.raises(ValueError, match="%Z"):
        java_datetime_pattern("%Y-%m-%d %Z")
