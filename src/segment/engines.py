"""Where the point-in-time snapshot runs: DuckDB (every command, :mod:`segment.store`) or Apache Spark.

Every table goes through :func:`segment.validate.load_data` into DuckDB, where each row is cast and
checked once, in SQL; the snapshot SQL (:func:`segment.features.plan`, generated once, with a
:class:`~segment.features.Dialect` for the few functions the engines spell differently) then runs
there. This module gives the same snapshot from a data config in one call, and runs that SQL on
**Spark** for data that outgrows one machine:

* ``engine: duckdb`` (default) — ``load_data`` + ``features.snapshot``;
* ``engine: spark`` — Spark SQL reads the files named by the data config (any path Spark can read:
  local, HDFS, S3 …) on the master given in the data config and returns the per-customer snapshot::

    snap = snapshot_from_config("data.yaml", "2026-09-30")

What the Spark path does **not** do yet: the row-level validation of ``segment validate`` (a value the
cast cannot read stops the query with Spark's message) — its cast (:func:`projection`) is the one
place besides :mod:`segment.store` that maps a source onto the contract, until validation runs on
Spark too (issue 11). Of the ``drop:`` quirks, ``missing_customer_id``, ``duplicate_lines`` (``SELECT
DISTINCT`` over the source's columns) and ``unknown_customers`` are applied; ``date_format``,
``unparseable_rows``, Excel files and SQL sources need ``engine: duckdb``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .contract import TABLES
from .errors import ConfigError, SegmentError
from .features import DIALECTS, Dialect, SnapshotPlan, _to_pandas, plan
from .store import Tables
from .io import (
    DataConfig,
    SparkOptions,
    TableSource,
    _format_of,
    read_data_config,
)

_SQL_TYPE = {"string": "STRING", "float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN",
             "date": "TIMESTAMP", "datetime": "TIMESTAMP"}


# --------------------------------------------------------------------------------------------
# the data config's files as contract relations (one projection, both engines)
# --------------------------------------------------------------------------------------------

def _file(config_path: Path, name: str, src: TableSource) -> tuple[Path, str]:
    key = f"tables.{name}"
    unsupported = [k for k, bad in (("sql", src.sql is not None), ("date_format", src.date_format is not None),
                                    ("drop: unparseable_rows", "unparseable_rows" in src.drop)) if bad]
    if unsupported:
        raise ConfigError(config_path, key, f"{', '.join(unsupported)} is not supported by the file-backed "
                          "snapshot on Spark (segment.engines)", "use `engine: duckdb`, "
                          "or convert the source to Parquet with ISO dates")
    path = (config_path.parent / src.path).resolve() if "://" not in src.path else src.path
    fmt = src.format or _format_of(Path(str(path)))
    if fmt not in ("parquet", "csv"):
        raise ConfigError(config_path, f"{key}.path", f"{fmt or 'unknown'} files cannot be read by the file-backed "
                          "snapshot", "convert the table to Parquet (or CSV)")
    return path, fmt


def projection(name: str, src: TableSource, raw_columns: Iterable[str], d: Dialect,
               text: bool = False, nanos: Iterable[str] = ()) -> tuple[str, list[str]]:
    """The SELECT list mapping a source's columns onto the contract (types, amount unit) and the
    contract columns it provides. Unmapped source columns keep their name; others are ignored.
    ``text``: every source column is text (CSV): blanks are missing values. ``nanos``: source columns
    holding nanosecond timestamps as integers (how Spark reads pandas' Parquet timestamps)."""
    nanos = set(nanos)
    table = TABLES[name]
    by_contract = {}
    for c in raw_columns:
        target = src.columns.get(c, c)
        if target in table.by_name and target not in by_contract:
            by_contract[target] = c
    exprs, present = [], []
    for col in table.columns:
        if col.name not in by_contract:
            continue
        ref = d.q(by_contract[col.name])
        e = f"CAST({f'NULLIF(trim({ref}), {chr(39) * 2})' if text else ref} AS {_SQL_TYPE[col.dtype]})"
        if by_contract[col.name] in nanos and col.dtype in ("date", "datetime"):
            e = f"timestamp_micros({ref} DIV 1000)"
        if col.dtype == "string":
            e = f"NULLIF(trim({e}), '')"
            if col.values:
                e = f"lower({e})"
        if "currency" in col.unit and src.amount_unit != 1:
            e = f"({e} * {float(src.amount_unit)!r})"
        exprs.append(f"{e} AS {col.name}")
        present.append(col.name)
    if name == "transactions" and "amount" not in present and {"quantity", "unit_price"} <= set(present):
        exprs.append("(quantity_ * unit_price_) AS amount".replace("quantity_", f"CAST({d.q(by_contract['quantity'])} AS DOUBLE)")
                     .replace("unit_price_", f"CAST({d.q(by_contract['unit_price'])} AS DOUBLE)"
                              + (f" * {float(src.amount_unit)!r}" if src.amount_unit != 1 else "")))
        present.append("amount")
    missing = [c for c in table.required if c not in present]
    if missing:
        raise SegmentError(f"error: tables.{name}: required column(s) {', '.join(missing)} not found in the source "
                           f"(it has: {', '.join(list(raw_columns)[:12])}); map them under tables.{name}.columns")
    return ", ".join(exprs), present


def _relation_sql(name: str, src: TableSource, raw: str, raw_columns: list[str], d: Dialect,
                  has_customers: bool, text: bool, nanos: Iterable[str] = ()) -> tuple[str, list[str]]:
    select, present = projection(name, src, raw_columns, d, text, nanos)
    body = f"(SELECT DISTINCT * FROM {raw}) AS r" if "duplicate_lines" in src.drop else f"{raw} AS r"
    sql = f"SELECT {select} FROM {body}"
    if name != "customers" and has_customers and "unknown_customers" in src.drop:
        sql = f"SELECT * FROM ({sql}) AS m WHERE customer_id IN (SELECT customer_id FROM cu)"
    return sql, present


def _config(data: str | Path | DataConfig, config_path: Path | None) -> tuple[DataConfig, Path]:
    if isinstance(data, DataConfig):
        return data, Path(config_path or ".") / "data.yaml"
    path = Path(data)
    return read_data_config(path), path


def _as_of(config: DataConfig, as_of):
    if as_of is None:
        if config.as_of is None:
            raise SegmentError("error: no as-of date: pass one, or set `as_of:` in the data config")
        return config.as_of
    return as_of


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------

def snapshot_from_config(data: str | Path | DataConfig, as_of=None, *, customers: Iterable[str] | None = None,
                         engine: str | None = None, config_path: Path | None = None,
                         spark=None, progress: bool | None = None) -> pd.DataFrame:
    """The snapshot at ``as_of`` straight from the data config's files, on the config's ``engine``
    (or ``engine=`` to override). Same columns, order and values as ``features.snapshot`` on the
    loaded tables. ``spark``: an existing SparkSession to use instead of building one."""
    config, path = _config(data, config_path)
    engine = engine or config.engine
    day = _as_of(config, as_of)
    if engine == "spark":
        return _spark_files(config, path, day, customers, spark)
    if engine != "duckdb":
        raise SegmentError(f"error: unknown engine {engine!r}; write duckdb or spark")
    from .features import snapshot
    from .validate import load_data

    return snapshot(load_data(path, as_of=day).tables, day, customers=customers)


# --------------------------------------------------------------------------------------------
# Spark
# --------------------------------------------------------------------------------------------

def spark_session(master: str = "local[*]", conf: dict[str, str] | None = None):
    """A SparkSession for the snapshot (UTC session time zone: timestamps are read as written)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SegmentError("error: engine: spark needs PySpark; install it with `pip install -e '.[spark]'` "
                           "(and Java 17)") from None
    b = (SparkSession.builder.master(master).appName("segment")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.ansi.enabled", "false")
         .config("spark.sql.execution.arrow.pyspark.enabled", "true")
         .config("spark.sql.legacy.parquet.nanosAsLong", "true"))
    if master.startswith("local"):
        b = b.config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "8")
    from .progress import enabled

    b = b.config("spark.ui.showConsoleProgress", "true" if enabled() else "false")
    for k, v in (conf or {}).items():
        b = b.config(k, v)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SEGMENT_SPARK_LOG_LEVEL", "ERROR"))
    return spark


def run_spark(spark, p: SnapshotPlan, views: dict[str, object]) -> pd.DataFrame:
    """Run a plan on Spark: ``views`` maps each relation of ``p.sources`` to a Spark DataFrame."""
    for alias, df in views.items():
        df.createOrReplaceTempView(alias)
    cached = []
    try:
        for name, sql in p.aggregates:
            agg = spark.sql(sql).persist()
            cached.append(agg)
            agg.createOrReplaceTempView(name)
        raw = spark.sql(p.final).toPandas()
    finally:
        for agg in cached:
            agg.unpersist()
    return _to_pandas(raw, p.day, p.keep)


def _spark_files(config: DataConfig, path: Path, as_of, customers, spark) -> pd.DataFrame:
    opts = config.spark or SparkOptions()
    order = sorted(config.tables, key=lambda n: n != "customers")
    files = {name: _file(path, name, config.tables[name]) for name in order}  # before starting Spark
    spark = spark or spark_session(opts.master, opts.conf)
    d = DIALECTS["spark"]
    present, views = {}, {}
    for name in order:
        src = config.tables[name]
        file, fmt = files[name]
        reader = spark.read
        raw_df = (reader.parquet(str(file)) if fmt == "parquet" else
                  reader.option("header", "true").option("sep", src.delimiter).option("encoding", src.encoding)
                  .option("inferSchema", "false").csv(str(file)))
        raw_name = f"raw_{name}"
        raw_df.createOrReplaceTempView(raw_name)
        # pandas writes nanosecond timestamps, which Spark reads as integers (nanosAsLong)
        nanos = [c for c, t in raw_df.dtypes if t == "bigint"] if fmt == "parquet" else []
        sql, present[name] = _relation_sql(name, src, raw_name, raw_df.columns, d, "customers" in present,
                                           fmt == "csv", nanos)
        if name == "customers":
            sql = (f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY customer_id) "
                   f"AS rn_ FROM ({sql}) AS c) AS c2 WHERE rn_ = 1")
            views["cu"] = spark.sql(sql).drop("rn_")
            views["cu"].createOrReplaceTempView("cu")
        else:
            views[{"transactions": "tx", "interactions": "it", "opportunities": "op"}[name]] = spark.sql(sql)
    p = plan(present, as_of, restricted=customers is not None, dialect=d)
    if customers is not None:
        views["wanted"] = spark.createDataFrame(pd.DataFrame({"customer_id": sorted({str(c) for c in customers})}))
    return run_spark(spark, p, views)


def spark_snapshot(tables: Tables, as_of, *, customers: Iterable[str] | None = None, spark=None,
                   master: str = "local[*]") -> pd.DataFrame:
    """``features.snapshot`` computed by Spark from in-memory tables (each frame handed to Spark via a
    temporary Parquet file). For data that lives in files, :func:`snapshot_from_config` reads them
    directly."""
    spark = spark or spark_session(master)
    present = {n: list(tables.get(n).columns) for n in tables.present()}
    p = plan(present, as_of, restricted=customers is not None, dialect="spark")
    tmp = Path(tempfile.mkdtemp(prefix="segment-spark-"))
    try:
        return run_spark(spark, p, _frames_to_spark(spark, tables, p, customers, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _frames_to_spark(spark, tables: Tables, p: SnapshotPlan, customers, tmp: Path) -> dict:
    views = {}
    for name, alias in p.sources.items():
        if name == "wanted":
            frame = pd.DataFrame({"customer_id": pd.Series(sorted({str(c) for c in customers}), dtype="string")})
        else:
            frame = tables.get(name)
            if name == "customers" and not frame["customer_id"].is_unique:
                frame = frame.drop_duplicates("customer_id", keep="first")
        target = tmp / f"{alias}.parquet"
        frame.to_parquet(target, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
        views[alias] = spark.read.parquet(str(target))
    return views
