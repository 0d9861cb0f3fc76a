"""Where validation and the point-in-time snapshot run: DuckDB (:mod:`segment.data.store`) or Apache Spark.

Public: snapshot_from_config, spark_session, run_spark, SparkTables, load_spark, spark_snapshot.
Reads: the data config's sources, on Spark. Writes: nothing (temporary Parquet files in local mode only).

Every source is cast and checked once, in SQL: :func:`segment.data.rules.validate` writes each cast and
check through a :class:`~segment.plumbing.sql.Dialect` and runs it on an engine object — DuckDB's
(``store.DuckDBEngine``) or Spark's (:class:`_Spark`, here). The snapshot SQL
(:func:`segment.features.snapshot.plan`) is likewise generated once for both.

* ``engine: duckdb`` (default) — ``load_data`` + ``features.snapshot``;
* ``engine: spark`` — Spark reads the files named by the data config (any path Spark can read:
  local, HDFS, S3 …) on the master given in the data config, validates every row with the store's
  SQL (same problems, messages, counts, row numbers and examples: ``segment validate`` and
  ``segment grade`` stop on the same errors), keeps the typed tables on the executors
  (``localCheckpoint``: memory, spilling to disk) and runs the snapshot over them::

    snap = snapshot_from_config("data.yaml", "2026-09-30")

What reaches the driver: per check a count and its first 11 row numbers with one example, the
partition sizes of each file scan (to number its lines), and the per-customer snapshot. Sources
Spark does not scan — Excel sheets, SQL queries, CSV files in an encoding other than UTF-8 — are
read on the driver as :mod:`segment.data.store` reads them (:func:`segment.data.sources.read_frame`) and handed to
Spark with ``createDataFrame``: they must fit in the driver's memory, as they must on DuckDB.
A row number is the line's position in Spark's scan of the file (for one file: its line, header
excluded, as on DuckDB; for a folder of parts: the order Spark lists them in). Grading, the report
and calibration still load the tables into DuckDB (issue 11, deliverable 3).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from segment.data.config import DataConfig, SparkOptions, TableSource, read_data_config
from segment.data.problems import Problem
from segment.data.raw import check_file, explain_csv, source_frame, unreserved
from segment.data.rules import validate
from segment.data.sources import format_of
from segment.data.contract import ALIAS
from segment.data.tables import Tables, TableSet, wanted_frame
from segment.data.validate import load_data, raise_errors, report_frame
from segment.errors import ConfigError, SegmentError
from segment.features.snapshot import SnapshotPlan, plan, snapshot, snapshot_frame_of
from segment.grading.engine import grade_spark
from segment.plumbing.progress import enabled
from segment.plumbing.sql import SPARK, java_datetime_pattern


def _config(data: str | Path | DataConfig, config_path: Path | None) -> tuple[DataConfig, Path]:
    if isinstance(data, DataConfig):
        return data, Path(config_path or ".") / "data.yaml"
    path = Path(data)
    return read_data_config(path), path


def _as_of(config: DataConfig, as_of):
    if as_of is None:
        if config.as_of is None:
            raise SegmentError("no as-of date: pass one, or set `as_of:` in the data config")
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

        problems: list[Problem] = []
        tables = load_spark(path, config, pd.Timestamp(day), problems, spark=spark)
        raise_errors(report_frame(problems), config, path, strict=True)
        if tables is None:
            raise SegmentError(f"{path}: the transactions table could not be read")
        try:
            return tables.snapshot(day, customers)
        finally:
            tables.close()
    if engine != "duckdb":
        raise SegmentError(f"unknown engine {engine!r}; write duckdb or spark")

    return snapshot(load_data(path, as_of=day, engine="duckdb").tables, day, customers=customers)


# --------------------------------------------------------------------------------------------
# Spark
# --------------------------------------------------------------------------------------------

def spark_session(master: str = "local[*]", conf: dict[str, str] | None = None):
    """A SparkSession for the snapshot (UTC session time zone: timestamps are read as written)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SegmentError("engine: spark needs PySpark; install it with `pip install -e '.[spark]'` "
                           "(and Java 17)") from None
    b = (SparkSession.builder.master(master).appName("segment")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.ansi.enabled", "false")
         .config("spark.sql.legacy.timeParserPolicy", "CORRECTED")  # a text that does not parse is NULL
         .config("spark.sql.execution.arrow.pyspark.enabled", "true")
         .config("spark.sql.legacy.parquet.nanosAsLong", "true"))
    if master.startswith("local"):
        b = b.config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "8")

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
    return snapshot_frame_of(raw, p)


#: Spark types as the store's casts name them (DuckDB's names: segment.data.rules._read_table branches on them)
_DUCK_TYPE = {"string": "VARCHAR", "binary": "BLOB", "timestamp": "TIMESTAMP WITH TIME ZONE", "timestamp_ntz": "TIMESTAMP",
              "date": "DATE", "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN", "bigint": "BIGINT",
              "int": "INTEGER", "smallint": "SMALLINT", "tinyint": "TINYINT", "void": "NULL"}
#: source encodings Spark scans itself; a CSV in another one is read on the driver (as segment.data.store does)
_SPARK_ENCODINGS = ("utf-8", "utf8", "utf-8-sig")
_ROW_BITS = 33  # monotonically_increasing_id(): partition index above bit 33, row within it below


def _location(config_path: Path, src: TableSource) -> str | Path:
    """A source file: a local path (relative to the data config) or any URL Spark reads (s3a://, hdfs://)."""
    return src.path if "://" in src.path else (config_path.parent / src.path).resolve()


def _spark_reads(config_path: Path, src: TableSource) -> str | None:
    """``csv`` or ``parquet`` when Spark scans the source itself; None when it is read on the driver."""
    if src.path is None:
        return None
    fmt = src.format or format_of(Path(str(src.path)))
    if fmt == "parquet" or (fmt == "csv" and src.encoding.lower().replace("_", "-") in _SPARK_ENCODINGS):
        return fmt
    return None


def _before_spark(config_path: Path, config: DataConfig) -> None:
    """What can be said before a SparkSession is started: a date format Spark's patterns cannot spell."""
    for name, src in config.tables.items():
        if src.date_format:
            try:
                java_datetime_pattern(src.date_format)
            except ValueError as e:
                raise ConfigError(config_path, f"tables.{name}.date_format", f"{e} in {src.date_format!r} cannot be "
                                  "read on Spark", "write the format with %Y %m %d %H %M %S %y %b %B %f %I %p %j %a "
                                  "%A, or use `engine: duckdb`") from None


class _Spark:
    """What :func:`segment.data.rules.validate` asks of an engine, on a SparkSession: the same SQL as on
    DuckDB (written through :data:`segment.plumbing.sql.SPARK`), each table it makes checkpointed on the
    executors (``localCheckpoint``: memory and disk) and registered as a temporary view; only counts
    and the first rows of a problem are collected."""

    d = SPARK

    def __init__(self, spark):
        self.spark = spark
        for key, value in (("spark.sql.ansi.enabled", "false"), ("spark.sql.legacy.timeParserPolicy", "CORRECTED"),
                           ("spark.sql.legacy.parquet.nanosAsLong", "true"),
                           ("spark.sql.parquet.datetimeRebaseModeInRead", "CORRECTED"),
                           ("spark.sql.parquet.int96RebaseModeInRead", "CORRECTED"),
                           ("spark.sql.csv.parser.columnPruning.enabled", "false")):  # a ragged line is found by any scan
            spark.conf.set(key, value)
        self.kept: dict[str, object] = {}  # view → the persisted DataFrame behind it
        self.counts: dict[str, int] = {}

    def fetch(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self.spark.sql(sql).collect()]

    @property
    def read_errors(self) -> tuple[type[BaseException], ...]:
        """What reading a damaged source raises on Spark (the JVM's errors, Spark's own)."""
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import PySparkException

        return (Py4JJavaError, PySparkException)

    @staticmethod
    def resource_error(e: BaseException) -> bool:
        return "OutOfMemoryError" in str(e) or "No space left on device" in str(e)

    def count(self, relation: str) -> int:
        if relation not in self.counts:
            self.counts[relation] = int(self.fetch(f"SELECT count(*) FROM {relation}")[0][0])
        return self.counts[relation]

    def create(self, name: str, sql: str, temp: bool = False) -> None:
        # materialised now, on the executors (memory, spilling to disk), with its lineage cut: what it
        # was made from may be replaced next, and a plan reading the source's line numbers
        # (monotonically_increasing_id) is non-deterministic, which Spark refuses in an aggregate's FILTER
        df = self.spark.sql(sql).localCheckpoint(eager=True)
        df.createOrReplaceTempView(name)
        old = self.kept.pop(name, None)
        self.kept[name] = df
        self.counts.pop(name, None)
        if old is not None:
            old.unpersist()

    def drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        self.counts.pop(name, None)
        df = self.kept.pop(name, None)
        if df is not None:
            df.unpersist()

    def delete(self, name: str, cond: str) -> None:
        self.create(name, f"SELECT * FROM {name} WHERE NOT coalesce(({cond}), false)")

    def columns(self, name: str) -> list[str]:
        return list(self.spark.table(name).columns)

    def repeated(self, relation: str, column: str, into: str) -> int:
        """``into``: the values of ``column`` found on more than one row of ``relation``; their number."""
        self.create(into, f"SELECT {column} FROM {relation} GROUP BY {column} HAVING count(*) > 1", temp=True)
        return self.count(into)

    def release(self, raw: str) -> None:
        self.drop(raw)
        self.drop(f"{raw}_scan")

    def typed(self, name: str, sql: str | None, extra: list[str]) -> None:
        if sql is not None:
            self.create(f"t_{name}", sql)
            self.drop(f"s_{name}")
            return
        # the staged table is the typed one: the same checkpointed data without the staging columns (no copy)
        self.spark.table(f"s_{name}").drop(*extra).createOrReplaceTempView(f"t_{name}")
        self.spark.catalog.dropTempView(f"s_{name}")
        self.kept[f"t_{name}"] = self.kept.pop(f"s_{name}")

    def close(self) -> None:
        for name in list(self.kept):
            self.drop(name)

    # ---- the sources
    def raw(self, config_path: Path, name: str, src: TableSource):
        """``raw_<name>``: the source with a 1-based ``_row_`` (the line's position in the file), its
        columns (cleaned name, name in the source, type as DuckDB names it), a label, and the time zones
        of zoned timestamp columns — what ``segment.data.raw._raw_relation`` gives on DuckDB."""

        raw = f"raw_{name}"
        fmt = _spark_reads(config_path, src)
        if fmt is None:  # SQL, Excel, CSV in another encoding: read on the driver, as the store does
            return self._frame(config_path, name, src, raw)
        location = _location(config_path, src)
        local = isinstance(location, Path)
        if local and not location.is_dir():  # a folder of parts is Spark's to list
            check_file(config_path, name, src, location)
            if fmt == "csv":  # the first lines through pandas: an exact message for a wrong delimiter or encoding
                explain_csv(config_path, name, src, location, nrows=1000)
        reader = self.spark.read
        try:
            if fmt == "parquet":
                df = reader.parquet(str(location))
            else:
                df = (reader.option("header", "true").option("sep", src.delimiter).option("quote", '"')
                      .option("escape", '"').option("encoding", "UTF-8").option("inferSchema", "false")
                      .option("mode", "FAILFAST").csv(str(location)))
            zones, nanos = _parquet_types(location) if fmt == "parquet" and local else ({}, set())
            cols = []
            for c, t in df.dtypes:
                clean = c.lstrip("\ufeff").strip()
                if c in nanos:  # pandas' nanosecond timestamps, read as integers (nanosAsLong)
                    cols.append((f"timestamp_micros({self.d.q(c)} DIV 1000) AS {self.d.q(c)}", clean, c,
                                 "TIMESTAMP WITH TIME ZONE" if clean in zones else "TIMESTAMP"))
                else:
                    typ = _DUCK_TYPE.get(t, t.upper())
                    if typ == "TIMESTAMP WITH TIME ZONE" and clean not in zones and fmt == "csv":
                        typ = "TIMESTAMP"
                    if c != unreserved(c):  # a source column named like one segment adds
                        cols.append((f"{self.d.q(c)} AS {self.d.q(unreserved(c))}", unreserved(c), unreserved(c), typ))
                    else:
                        cols.append((self.d.q(c), clean, c, typ))
            df.selectExpr(*[e for e, *_ in cols], "monotonically_increasing_id() AS _mid_").createOrReplaceTempView(
                f"{raw}_scan")
            # rows per partition of the scan (one pass, a few numbers back): each line's number in the file
            sizes = sorted(self.fetch(f"SELECT shiftright(_mid_, {_ROW_BITS}) AS p, count(*) FROM {raw}_scan GROUP BY 1"))
        except Exception as e:  # noqa: BLE001 - Spark's Java errors: a ragged line, a broken file
            if fmt == "csv" and local and location.is_file():  # the line, as pandas finds it
                explain_csv(config_path, name, src, location)
            first = _spark_message(e)
            raise SegmentError(f"{location}: cannot read it as {fmt}: {first}; check `tables.{name}` in "
                               f"{config_path} (format, delimiter, encoding)") from None
        offset, case = 0, []
        for p, n in sizes:
            case.append(f"WHEN {int(p)} THEN {offset}")
            offset += int(n)
        start = f"CASE shiftright(_mid_, {_ROW_BITS}) {' '.join(case)} END" if case else "0"
        names = ", ".join(self.d.q(c) for _, _, c, _ in cols)
        self.spark.sql(f"SELECT {names}, {start} + (_mid_ & {(1 << _ROW_BITS) - 1}) + 1 AS _row_ FROM {raw}_scan"
                       ).createOrReplaceTempView(raw)
        self.counts[raw] = offset
        return raw, [(clean, c, typ) for _, clean, c, typ in cols], str(location), zones

    def _frame(self, config_path: Path, name: str, src: TableSource, raw: str):

        frame, label, zones = source_frame(config_path, name, src)
        for c in frame.columns:  # Arrow hands pandas' string and nullable dtypes over as they are
            if isinstance(frame[c].dtype, pd.StringDtype):
                frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
        self.counts[raw] = len(frame)
        if not len(frame):  # no rows: said as on DuckDB, the relation is never read
            return raw, [(c, c, "VARCHAR") for c in frame.columns[1:]], label, zones
        df = self.spark.createDataFrame(frame)
        df.createOrReplaceTempView(raw)
        described = [(c, c, _DUCK_TYPE.get(t, t.upper())) for c, t in df.dtypes if c != "_row_"]
        return raw, described, label, zones


def _parquet_types(path: Path) -> tuple[dict[str, str], set[str]]:
    """The time zones of a Parquet file's (or folder's) zoned timestamp columns, and its nanosecond
    timestamp columns (Spark reads those as integers)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    zones, nanos = {}, set()
    for f in ds.dataset(str(path), format="parquet").schema:
        if pa.types.is_timestamp(f.type):
            if f.type.tz:
                zones[f.name.lstrip("\ufeff").strip()] = f.type.tz
            if f.type.unit == "ns":
                nanos.add(f.name)
    return zones, nanos


def _spark_message(e: Exception) -> str:
    text = str(e).strip()
    for line in text.splitlines():
        if "Exception:" in line or line.startswith("["):
            return line.split("Exception: ", 1)[-1].strip()[:300]
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


class SparkTables(TableSet):
    """The contract's tables validated on Spark (``t_<table>`` views over persisted DataFrames): what
    ``segment validate`` prints and what the snapshot reads. Only counts and per-customer results
    come back to the driver."""

    d = SPARK  # the dialect of sql()

    def __init__(self, db: _Spark, columns: dict[str, list[str]], filters: dict[str, str] | None = None,
                 owner: "SparkTables | None" = None):
        self.db, self.spark, self._columns = db, db.spark, columns
        self.filters = dict(filters or {})
        self._owner = owner  # a filtered view: the tables (and what they persisted) belong to its parent
        self._cached: list = owner._cached if owner is not None else []  # aggregates behind snapshot_frame()

    def _one(self, sql: str) -> tuple:
        return self.db.fetch(sql)[0]

    def where(self, **filters: str) -> "SparkTables":
        """The same tables with extra SQL filters per table (``transactions="product_line = 'x'"``)."""
        merged = dict(self.filters)
        for name, cond in filters.items():
            merged[name] = f"({merged[name]}) AND ({cond})" if name in merged else cond
        view = SparkTables(self.db, self._columns, merged, owner=self._owner or self)
        view.declared = self.declared
        return view

    def sql(self, query: str, params: list | None = None, *, wanted: Iterable[str] | None = None) -> pd.DataFrame:
        """``query`` (Spark SQL) over the views ``tx``, ``cu``, ``it``, ``op`` (and ``wanted``), its
        result collected: what :meth:`segment.data.tables.Tables.sql` does on DuckDB. Only for aggregates
        and per-customer results."""
        if params:
            raise SegmentError("SparkTables.sql takes no query parameters; write the values into the query")
        for alias, df in self.views().items():
            df.createOrReplaceTempView(alias)
        if wanted is not None:
            self._wanted(wanted).createOrReplaceTempView("wanted")
        return self.spark.sql(query).toPandas()

    def _wanted(self, ids: Iterable[str]):
        """The ``wanted`` relation (``segment.data.tables.wanted_frame``) as a Spark DataFrame."""

        return self.spark.createDataFrame(wanted_frame(ids).astype({"customer_id": object}), "customer_id string")

    def rows(self, name: str) -> int:
        return self.db.count(f"t_{name}")

    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        lo, hi = self.db.fetch("SELECT min(date), max(date) FROM t_transactions")[0]
        return pd.Timestamp(lo), pd.Timestamp(hi)

    def views(self) -> dict[str, object]:
        """The snapshot's relations (``tx``, ``cu``, ``it``, ``op``): customers one row per id (the first)."""
        q = self.db.d.q
        out = {}
        for name in self.present():
            cols = ", ".join(q(c) for c in self._columns[name])
            sql = f"SELECT {cols} FROM t_{name}"
            if name == "customers":
                sql = (f"SELECT {cols} FROM (SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY _row_) "
                       f"AS rn_ FROM t_customers) AS c WHERE rn_ = 1")
            if name in self.filters:
                sql = f"SELECT * FROM ({sql}) AS f WHERE {self.filters[name]}"
            out[ALIAS[name]] = self.spark.sql(sql)
        return out

    def snapshot(self, as_of, customers: Iterable[str] | None = None) -> pd.DataFrame:
        p = plan(self._columns, as_of, restricted=customers is not None, dialect=SPARK, declared=self.declared)
        views = self.views()
        if customers is not None:
            views["wanted"] = self._wanted(customers)
        return run_spark(self.spark, p, views)

    def snapshot_frame(self, as_of):
        """The snapshot at ``as_of`` as a Spark DataFrame, left on the cluster (nothing is collected):
        what :func:`segment.grading.engine.grade_spark` grades. Its aggregates stay persisted until
        :meth:`close`."""
        p = plan(self._columns, as_of, dialect=SPARK, declared=self.declared)
        for alias, df in self.views().items():
            df.createOrReplaceTempView(alias)
        for name, sql in p.aggregates:
            agg = self.spark.sql(sql).persist()
            self._cached.append(agg)
            agg.createOrReplaceTempView(name)
        return self.spark.sql(p.final)

    def graded(self, scheme, as_of, source: str = "the scheme", *, keep_snapshot: bool = True):
        """``segment.pipeline.grade_snapshot`` on Spark: the snapshot and the grading's compiled SQL run
        on the cluster; the graded rows come back, and the per-customer snapshot too when
        ``keep_snapshot`` (a report shows its revenue and breakdowns; ``segment grade`` does not need
        it: then None). Returns the grading, the snapshot and how many CRM-lost customers were left out."""

        p = plan(self._columns, as_of, dialect=SPARK, declared=self.declared)
        snap_df = self.snapshot_frame(as_of)
        snap = snapshot_frame_of(snap_df.toPandas(), p) if keep_snapshot else None
        n_lost = 0
        if "status" in snap_df.columns:  # CRM-lost customers are not graded (as pipeline.grade_current)
            if snap is not None:
                n_lost = int(snap.loc[snap["status"].eq("lost").fillna(False), "customer_id"].nunique())
            else:
                n_lost = int(snap_df.filter("status = 'lost'").select("customer_id").distinct().count())
            snap_df = snap_df.filter("status IS NULL OR status <> 'lost'")
        return grade_spark(snap_df, scheme, as_of=p.day, source=source), snap, n_lost

    def release(self) -> None:
        self.close()

    def close(self) -> None:
        """Unpersist every table (the session stays)."""
        if self._owner is not None:  # a filtered view: its parent's tables stay
            return
        for agg in self._cached:
            agg.unpersist()
        self._cached.clear()
        self.db.close()


def load_spark(config_path: Path, config: DataConfig, as_of: pd.Timestamp | None, problems: list[Problem], *,
               spark=None, only: str | None = None) -> SparkTables | None:
    """:func:`segment.data.store.load` on Spark: every table of the config read, cast and checked by Spark
    with the store's SQL (same problems, counts, rows and examples); None when the transactions table
    could not be read onto the contract. ``spark``: a session to use instead of the config's."""

    _before_spark(config_path, config)
    opts = config.spark or SparkOptions()
    db = _Spark(spark or spark_session(opts.master, opts.conf))
    try:
        columns = validate(db, config_path, config, as_of, problems, only=only)
    except BaseException:
        db.close()
        raise
    if columns is None:
        db.close()
        return None
    tables = SparkTables(db, columns)
    tables.declared = config.declared(config_path)
    return tables

def spark_snapshot(tables: Tables, as_of, *, customers: Iterable[str] | None = None, spark=None,
                   master: str = "local[*]") -> pd.DataFrame:
    """``features.snapshot`` computed by Spark from in-memory tables (each frame handed to Spark via a
    temporary Parquet file). For data that lives in files, :func:`snapshot_from_config` reads them
    directly."""
    spark = spark or spark_session(master)
    present = {n: list(tables.get(n).columns) for n in tables.present()}
    p = plan(present, as_of, restricted=customers is not None, dialect="spark", declared=tables.declared)
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
