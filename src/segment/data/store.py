"""The tables in DuckDB: every source read, cast and checked once, in SQL.

Every command that reads data goes through here (``segment.data.validate.load_data`` calls :func:`load`):

* each source becomes a DuckDB relation ``raw_<table>`` with a 1-based ``_row_``: Parquet and CSV
  files are scanned by DuckDB itself (streaming); an Excel sheet, a SQL query's result or a CSV file
  in an encoding DuckDB does not read (GBK …) is read by :func:`segment.data.config.read_frame` and handed to
  DuckDB as a frame;
* each contract column is cast in SQL (:func:`_read_table`): a value that does not fit is a
  :class:`segment.data.config.Problem` with its text, count, first row numbers and an example;
* the cross-row rules (declared drops, duplicate ids, duplicate lines, unknown customers,
  completeness, future dates) are SQL over the typed tables (:func:`_check`);
* the result is a :class:`Tables`, whose snapshots (:func:`segment.features.snapshot`), churn windows
  and per-group subsets run in DuckDB. Only per-customer results come back to Python.

Where DuckDB keeps them (``storage:`` in the data config, ``SEGMENT_STORAGE`` for one run):
``memory`` (an in-memory database: small and medium data), ``disk`` (a database file in a temporary
folder under ``SEGMENT_TMPDIR``: data bigger than memory), or ``auto`` (disk when the transactions
are a Parquet file of at least 10 M lines or a CSV of at least 1 GiB). Both spill to that folder.

``Tables(transactions=df, …)`` builds the same object from pandas frames (notebooks, tests, the demo).
Reading ``tables.transactions`` still works (the table is fetched into pandas) but costs the memory
this module exists to avoid; ``Tables.fetched`` records every such fetch so tests can prove the report
path never does it.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from segment.data.config import (
    DATE_MAX,
    DATE_MIN,
    FALSE_TEXTS,
    IMPLAUSIBLE_AMOUNT,
    ROW,
    TRUE_TEXTS,
    UTC_OFFSET,
    DataConfig,
    Problem,
    TableSource,
    Texts,
    format_of,
    map_columns,
    read_frame,
)
from segment.data.contract import COMPLETENESS_THRESHOLD, TABLES, Table
from segment.errors import ConfigError, SegmentError

#: ``storage: auto`` keeps tables on disk when the transactions source has at least this many lines
#: (Parquet: from its metadata) or, for CSV, is at least ``AUTO_CSV_BYTES`` big (≈ 10 M lines). Below,
#: memory is faster: the 100k demo (4.5 M lines) loads and snapshots in 9.5 s / 1.1 GiB in memory
#: against 14.8 s / 0.7 GiB on disk (tables ≈ 250 bytes a line in memory)
AUTO_ROWS = 10_000_000
AUTO_CSV_BYTES = 2**30

#: relation names the snapshot SQL reads (segment.features.plan)
ALIAS = {"transactions": "tx", "customers": "cu", "interactions": "it", "opportunities": "op"}
#: ISO 8601 forms pandas' ISO8601 parser reads and DuckDB's TIMESTAMP cast does not
_ISO_PARTIAL = ("%Y%m%d", "%Y%m%dT%H%M%S", "%Y%m%d %H%M%S", "%Y-%m", "%Y", "%Y-%m-%d %H", "%Y-%m-%dT%H")
_SAMPLE = 11  # first rows fetched per problem: the report shows 10 and "…" when there are more
_DATE_MIN, _DATE_MAX = (f"TIMESTAMP '{d:%Y-%m-%d}'" for d in (DATE_MIN, DATE_MAX))
#: contract dtype → DuckDB type, for tables built from frames
_SQL_TYPE = {"string": "VARCHAR", "float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN",
             "date": "TIMESTAMP", "datetime": "TIMESTAMP"}
STORAGES = ("auto", "memory", "disk")


def _q(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------
# which storage
# --------------------------------------------------------------------------------------------

def _source_file(config_path: Path, src: TableSource) -> tuple[Path | None, str | None]:
    if src.path is None:
        return None, None
    try:
        path = (config_path.parent / src.path).resolve()
    except (RuntimeError, OSError) as e:  # a symlink loop
        raise SegmentError(f"{config_path}: {src.path}: {e}; point `path:` at the file itself") from None
    return path, src.format or format_of(path)


def _duckdb_encoding(encoding: str) -> str | None:
    e = encoding.lower().replace("_", "-")
    return {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8", "latin-1": "latin-1", "latin1": "latin-1",
            "iso-8859-1": "latin-1", "utf-16": "utf-16"}.get(e)


def _scanned_by_duckdb(config_path: Path, src: TableSource) -> bool:
    """A Parquet file, or a CSV file in an encoding DuckDB reads: scanned without pandas."""
    path, fmt = _source_file(config_path, src)
    return fmt == "parquet" or (fmt == "csv" and _duckdb_encoding(src.encoding) is not None)


def choose(config_path: Path, config: DataConfig) -> str:
    """``memory`` or ``disk``: where DuckDB keeps this config's tables (``storage:``, or
    ``SEGMENT_STORAGE`` when it is auto)."""
    wanted = "disk" if config.storage == "duckdb" else config.storage
    if wanted == "auto":
        wanted = os.environ.get("SEGMENT_STORAGE", "auto") or "auto"
        wanted = "disk" if wanted == "duckdb" else wanted
        if wanted not in STORAGES:
            raise SegmentError(f"SEGMENT_STORAGE={wanted!r}: write auto, memory or disk")
    if wanted != "auto":
        return wanted
    src = config.tables["transactions"]
    path, fmt = _source_file(config_path, src)
    if not _scanned_by_duckdb(config_path, src):
        return "memory"  # a frame read into Python: it already fits in memory
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return "disk" if pq.ParquetFile(path).metadata.num_rows >= AUTO_ROWS else "memory"
        return "disk" if path.stat().st_size >= AUTO_CSV_BYTES else "memory"
    except Exception:  # unreadable: reading it gives the precise error
        return "memory"


# --------------------------------------------------------------------------------------------
# the tables
# --------------------------------------------------------------------------------------------

class TableSet:
    """What every set of validated contract tables offers, wherever it lives (:class:`Tables` in DuckDB,
    :class:`segment.data.spark.SparkTables` on Spark): the tables present and their columns."""

    _columns: dict[str, list[str]]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}: {len(self._columns[n])} columns' for n in self.present())})"

    def present(self) -> list[str]:
        return [n for n in ("customers", "transactions", "interactions", "opportunities") if n in self._columns]

    def columns(self, name: str) -> list[str]:
        return list(self._columns[name])

    def graded(self, scheme, as_of, source: str = "the scheme", *, keep_snapshot: bool = True):
        """The snapshot at ``as_of`` graded with ``scheme`` (not per group: see
        ``segment.pipeline.grade_snapshot``), CRM-lost customers left out: the grading, the snapshot
        (None when not ``keep_snapshot`` and the engine need not fetch it) and how many were left out.
        Here: the snapshot in pandas, graded by the scheme's SQL in DuckDB; Spark overrides it."""
        from segment.features import snapshot
        from segment.pipeline import grade_current

        snap = snapshot(self, as_of)
        grading, n_lost = grade_current(snap, scheme, as_of, source)
        return grading, snap, n_lost

    def release(self) -> None:
        """Free what the tables hold outside this process (Spark's persisted frames). DuckDB's
        database goes with the object."""

    def fingerprint(self, name: str) -> str:
        """sha256 of table ``name``'s content — its columns, its row count and the sum of a 64-bit hash
        of every row — computed where the table is (two numbers come back, not the table). What
        ``segment report`` records of a SQL source to tell a changed database."""
        import hashlib

        if name not in self._columns:
            return hashlib.sha256(b"absent").hexdigest()
        cols = self._columns[name]
        h = self.d.row_hash([self.d.q(c) for c in cols])
        n, total = self._one(f"SELECT count(*), CAST(sum(CAST({h} AS DECIMAL(38, 0))) AS STRING) FROM t_{name}")
        return hashlib.sha256(json.dumps([cols, int(n), str(total)]).encode("utf-8")).hexdigest()


class Tables(TableSet):
    """The contract's tables, validated and typed, in a DuckDB database (memory, or a file in a
    temporary folder; the folder is removed when the object goes away).

    ``Tables(transactions=df, customers=df, …)`` builds one from pandas frames already on the contract
    (the demo, notebooks, tests); :func:`load` builds one from a data config, validating every row."""

    def __init__(self, transactions: pd.DataFrame | None = None, customers: pd.DataFrame | None = None,
                 interactions: pd.DataFrame | None = None, opportunities: pd.DataFrame | None = None):
        frames = {"customers": customers, "transactions": transactions, "interactions": interactions,
                  "opportunities": opportunities}
        if transactions is None:
            raise SegmentError("the transactions table is mandatory")
        folder = _new_folder()
        con = None
        try:
            con = connect(folder, on_disk=False)
            columns = {name: _frame_table(con, name, df) for name, df in frames.items() if df is not None}
        except BaseException:
            _close(con, folder)
            raise
        self._attach(con, folder, columns)

    @classmethod
    def _kept(cls, con, folder: Path, columns: dict[str, list[str]], filters: dict[str, str] | None = None,
              owner: "Tables | None" = None) -> "Tables":
        self = cls.__new__(cls)
        self._attach(con, folder, columns, filters, owner)
        return self

    def _attach(self, con, folder: Path, columns: dict[str, list[str]], filters: dict[str, str] | None = None,
                owner: "Tables | None" = None) -> None:
        self.con = con
        self.folder = folder
        self._columns = columns
        self.filters = dict(filters or {})
        self._owner = owner  # a filtered view keeps its parent (and so the database) alive
        self._dates: tuple[pd.Timestamp, pd.Timestamp] | None = None
        self._snapshots: dict[pd.Timestamp, str] = {}  # as-of day → the table keeping that snapshot
        self.fetched: list[str] = owner.fetched if owner is not None else []
        self._unique_customers = owner._unique_customers if owner is not None else (
            "customers" not in columns or not con.execute(
                "SELECT count(*) FROM (SELECT customer_id FROM t_customers GROUP BY customer_id HAVING count(*) > 1)"
            ).fetchall()[0][0])
        if owner is None:
            self._finalizer = weakref.finalize(self, _close, con, folder)

    @property
    def storage(self) -> str:
        """``disk`` (a database file in the temporary folder) or ``memory``."""
        return "disk" if (self.folder / "tables.duckdb").exists() else "memory"

    # ---- what every table source offers (present, columns: TableSet)
    def cursor(self):
        """A connection of its own onto the database, with the views ``tx``, ``cu``, ``it``, ``op``."""
        from segment.plumbing.signals import track

        cur = track(self.con.cursor())
        for name in self.present():
            sql = self._select(name)
            if name == "customers" and not self._unique_customers:  # one row per customer (the first)
                sql += " QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY _row_) = 1"
            cur.execute(f"CREATE OR REPLACE TEMP VIEW {ALIAS[name]} AS {sql}")
        return cur

    def _select(self, name: str) -> str:
        cols = ", ".join(_q(c) for c in self._columns[name])
        where = f" WHERE {self.filters[name]}" if name in self.filters else ""
        return f"SELECT {cols} FROM t_{name}{where}"

    def _one(self, sql: str) -> tuple:
        return self.con.execute(sql).fetchone()

    @property
    def d(self):
        """The SQL dialect of :meth:`sql` (DuckDB's)."""
        from segment.features import DUCKDB

        return DUCKDB

    def sql(self, query: str, params: list | None = None, *, wanted: Iterable[str] | None = None) -> pd.DataFrame:
        """``query`` over the views ``tx``, ``cu``, ``it``, ``op`` (and ``wanted``: one column
        ``customer_id`` holding ``wanted``, when given), in pandas. The same method on Spark
        (:class:`segment.data.spark.SparkTables`) runs the same query there."""
        cur = self.cursor()
        try:
            if wanted is not None:
                cur.register("wanted", wanted_frame(wanted))
            return cur.execute(query, params or []).df()
        finally:
            cur.close()

    def rows(self, name: str) -> int:
        return int(self.sql(f"SELECT count(*) FROM {ALIAS[name]}").iloc[0, 0])

    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last transaction date (one scan, kept: the tables never change once loaded)."""
        if self._dates is None:
            lo, hi = self.sql("SELECT min(date), max(date) FROM tx").iloc[0]
            self._dates = pd.Timestamp(lo), pd.Timestamp(hi)
        return self._dates

    def get(self, name: str) -> pd.DataFrame | None:
        """The whole table in pandas (contract dtypes, source order) — recorded in ``fetched``."""
        if name not in self._columns:
            return None
        self.fetched.append(name)
        return _pandas_types(self.sql(self._select(name) + " ORDER BY _row_"), TABLES[name])

    def replace(self, name: str, df: pd.DataFrame | None) -> None:
        """Put ``df`` (on the contract) in place of table ``name``; None removes an optional table."""
        if self._owner is not None or self.filters:
            raise SegmentError("a filtered view of the tables cannot be changed; change the tables it came from")
        if df is None:
            if name == "transactions":
                raise SegmentError("the transactions table is mandatory")
            self.con.execute(f"DROP TABLE IF EXISTS t_{name}")
            self._columns.pop(name, None)
        else:
            self._columns[name] = _frame_table(self.con, name, df)
        self._dates = None
        for kept in self._snapshots.values():  # computed from the table as it was
            self.con.execute(f"DROP TABLE IF EXISTS {kept}")
        self._snapshots.clear()
        if name == "customers":
            self._unique_customers = "customers" not in self._columns or not self.con.execute(
                "SELECT count(*) FROM (SELECT customer_id FROM t_customers GROUP BY customer_id HAVING count(*) > 1)"
            ).fetchall()[0][0]

    transactions = property(lambda self: self.get("transactions"), lambda self, df: self.replace("transactions", df))
    customers = property(lambda self: self.get("customers"), lambda self, df: self.replace("customers", df))
    interactions = property(lambda self: self.get("interactions"), lambda self, df: self.replace("interactions", df))
    opportunities = property(lambda self: self.get("opportunities"), lambda self, df: self.replace("opportunities", df))

    def where(self, **filters: str) -> "Tables":
        """The same tables with extra SQL filters per table (``transactions="product_line = 'x'"``)."""
        merged = dict(self.filters)
        for name, cond in filters.items():
            merged[name] = f"({merged[name]}) AND ({cond})" if name in merged else cond
        return Tables._kept(self.con, self.folder, self._columns, merged, owner=self._owner or self)

    # ---- what segment computes over them
    def snapshot(self, as_of, customers: Iterable[str] | None = None) -> pd.DataFrame:
        """The snapshot at ``as_of`` (see :func:`segment.features.snapshot`). A whole snapshot is kept
        in the database once computed: a report asks for the same date several times (its gradings,
        the calibration's training and test panels), and the tables never change once loaded."""
        from segment.features import plan, run_duckdb, snapshot_frame_of

        restricted = customers is not None
        p = plan(self._columns, as_of, restricted=restricted)
        kept = None if restricted else self._snapshots.get(p.day)
        cur = self.cursor()
        try:
            if kept is not None:
                result = cur.sql(f"SELECT * FROM {kept} ORDER BY customer_id").to_arrow_table()
            elif restricted:
                cur.register("wanted", wanted_frame(customers))
                result = run_duckdb(cur, p)
            else:
                into = f"snapshot_{id(self):x}_{p.day:%Y%m%d}"
                result = run_duckdb(cur, p, into=into)
                self._snapshots[p.day] = into
        finally:
            cur.close()
        return snapshot_frame_of(result, p.day, p.keep)


def wanted_frame(ids: Iterable[str]) -> pd.DataFrame:
    """The ``wanted`` relation: each customer id once, as text, sorted."""
    return pd.DataFrame({"customer_id": pd.Series(sorted({str(c) for c in ids}), dtype="string")})


class _Owner:
    """What the temporary folder's finalizer watches while the tables are being loaded."""


def _close(con, folder: Path) -> None:
    try:
        if con is not None:
            con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _pandas_types(df: pd.DataFrame, table: Table) -> pd.DataFrame:
    """The contract's dtypes in pandas (string, float64, Int64, boolean, datetime64[ns])."""
    for col in table.columns:
        if col.name not in df:
            continue
        if col.dtype == "string":
            df[col.name] = df[col.name].astype("string")
        elif col.dtype == "float":
            df[col.name] = df[col.name].astype("float64")
        elif col.dtype == "int":
            df[col.name] = df[col.name].astype("Int64")
        elif col.dtype == "bool":
            df[col.name] = df[col.name].astype("boolean")
        else:
            df[col.name] = df[col.name].astype("datetime64[ns]")
    return df


def _frame_table(con, name: str, df: pd.DataFrame) -> list[str]:
    """``t_<name>`` from a frame already on the contract: contract columns cast to their SQL type,
    other columns kept as they are; ``_row_`` is the frame's row order. Returns the columns."""
    table = TABLES[name]
    frame = df.reset_index(drop=True)
    if "_row_" in frame.columns:
        frame = frame.drop(columns="_row_")
    frame.insert(0, "_row_", np.arange(1, len(frame) + 1, dtype="int64"))
    missing = [c for c in table.required if c not in frame.columns]
    if missing:
        raise SegmentError(f"the {name} table lacks required column(s) {', '.join(missing)} (see the data contract)")
    view = f"frame_{name}"
    con.register(view, frame)
    try:
        select = ["_row_"]
        for c in frame.columns[1:]:
            col = table.by_name.get(str(c))
            typ = _SQL_TYPE[col.dtype] if col is not None else None
            if col is not None and col.dtype in ("date", "datetime") and getattr(frame[c].dtype, "tz", None) is not None:
                select.append(f"timezone({_lit(str(frame[c].dtype.tz))}, {_q(c)}) AS {_q(c)}")
            elif col is not None and col.values:
                select.append(f"lower(CAST({_q(c)} AS VARCHAR)) AS {_q(c)}")
            elif typ:
                select.append(f"CAST({_q(c)} AS {typ}) AS {_q(c)}")
            else:
                select.append(_q(c))
        con.execute(f"CREATE OR REPLACE TABLE t_{name} AS SELECT {', '.join(select)} FROM {view}")
    finally:
        con.unregister(view)
    return [str(c) for c in frame.columns[1:]]


# --------------------------------------------------------------------------------------------
# loading and validating
# --------------------------------------------------------------------------------------------

@dataclass
class _Check:
    """One per-value rule of a column: SQL flagging a bad value, the problem text, the example, the
    rule's short name (the report's ``check`` column)."""
    column: str
    flag: str  # SQL over the typed-stage columns
    problem: str
    example: str  # SQL for the example value
    check: str


def _base() -> Path:
    base = Path(os.environ.get("SEGMENT_TMPDIR") or tempfile.gettempdir())
    try:
        base.mkdir(parents=True, exist_ok=True)
        if not os.access(base, os.W_OK | os.X_OK):
            raise PermissionError(13, "permission denied")
    except (FileExistsError, NotADirectoryError):
        raise SegmentError(f"SEGMENT_TMPDIR={base}: is a file, not a folder; point it at a folder with "
                           "free space (or unset it)") from None
    except OSError as e:
        raise SegmentError(f"SEGMENT_TMPDIR={base}: cannot use it ({e.strerror or e}); point it at a "
                           "writable folder with free space (or unset it)") from None
    return base


def _new_folder() -> Path:
    """A temporary folder of this process for the database file (disk) and spills (both)."""
    base = _base()
    from segment.plumbing.atomic import remove_orphans

    remove_orphans(base, "segment-tables-")  # what a killed run left (gigabytes at 50M lines)
    return Path(tempfile.mkdtemp(prefix=f"segment-tables-{os.getpid()}-", dir=base))


def connect(folder: Path, on_disk: bool = True):
    """A DuckDB database in ``folder`` (``on_disk``) or in memory, spilling into ``folder``."""
    import duckdb

    from segment.plumbing.signals import track

    target = str(folder / "tables.duckdb") if on_disk else ":memory:"
    con = track(duckdb.connect(target, config={"preserve_insertion_order": False}))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET temp_directory = {_lit(str(folder / 'spill'))}")
    for var, setting in (("SEGMENT_DUCKDB_MEMORY", "memory_limit"), ("SEGMENT_DUCKDB_THREADS", "threads")):
        value = os.environ.get(var)
        if not value:
            continue
        try:
            if setting == "threads" and not (value.isdigit() and int(value) >= 1):
                raise ValueError("not a whole number ≥ 1")
            con.execute(f"SET {setting} = {_lit(value) if setting == 'memory_limit' else int(value)}")
        except (ValueError, duckdb.Error) as e:
            con.close()
            example = "4GB or 80%" if setting == "memory_limit" else "2"
            raise SegmentError(f"{var}={value!r} is not a valid DuckDB {setting} ({str(e).splitlines()[0]}); "
                               f"write for example {example}, or unset it") from None
    return con


def load(config_path: Path, config: DataConfig, as_of: pd.Timestamp | None, problems: list[Problem], *,
         only: str | None = None) -> Tables | None:
    """Read and validate every table of the config into DuckDB; every problem is appended to
    ``problems``. None when the transactions table could not be read onto the contract.

    ``only``: read and cast that one table alone (its columns and values; no cross-table rules)."""
    import duckdb

    on_disk = choose(config_path, config) == "disk"
    base = _base()
    folder = _new_folder()
    # the folder goes with this frame unless Tables takes it over: even when a second signal or an
    # interrupt arriving during the cleanup below cuts that cleanup short (and at exit at the latest)
    owner = _Owner()
    guard = weakref.finalize(owner, shutil.rmtree, folder, True)
    con = None
    try:
        con = connect(folder, on_disk)
        columns = validate(_DuckDB(con), config_path, config, as_of, problems, only=only)
        if columns is None:
            _close(con, folder)
            return None
        if on_disk:
            con.execute("CHECKPOINT")
        kept = Tables._kept(con, folder, columns)
        guard.detach()
        return kept
    except (duckdb.IOException, duckdb.OutOfMemoryException) as e:
        _close(con, folder)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SegmentError(f"{config_path}: DuckDB could not keep the tables in {base} ({first}); they need "
                           "about 1.5× the size of the source files on disk: free some space, point SEGMENT_TMPDIR "
                           "at a bigger disk, or set SEGMENT_DUCKDB_MEMORY lower so that DuckDB spills sooner") from None
    except duckdb.Error as e:  # a source DuckDB cannot read past the checks that name the table
        _close(con, folder)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SegmentError(f"{config_path}: the data could not be read ({first}); a source file may be damaged "
                           "or incomplete: export it again") from None
    except BaseException:
        _close(con, folder)
        raise


def validate(db, config_path: Path, config: DataConfig, as_of: pd.Timestamp | None, problems: list[Problem], *,
             only: str | None = None) -> dict[str, list[str]] | None:
    """Cast and check every table of the config on ``db`` (:class:`_DuckDB` here, the Spark engine of
    :mod:`segment.data.spark`): ``t_<table>`` holds each typed table afterwards; every problem is appended
    to ``problems``. Returns each table's contract columns; None when the transactions table (or
    ``only``) could not be read onto the contract."""
    columns: dict[str, list[str]] = {}
    for name in [only] if only is not None else list(config.tables):
        cols = _read_table(db, config_path, name, config.tables[name], problems)
        if cols is not None:
            columns[name] = cols
    if only is None:
        if "transactions" not in columns:
            return None
        _check(db, columns, config, as_of, problems)
    elif only not in columns:
        return None
    db.drop("dup_rows")
    return columns


class _DuckDB:
    """What :func:`validate` asks of an engine, on a DuckDB connection. The SQL it is given is written
    once for both engines through ``d`` (a :class:`segment.features.Dialect`); the Spark twin of this
    small class is ``segment.data.spark._Spark``.

    A table read from a Parquet file is not copied: its staged and typed relations are views over the
    file (Parquet is columnar and compressed: scanning it again costs less than writing 50 M lines
    into the database once); rows a rule removes are kept aside by line number (``<view>__gone``)."""

    def __init__(self, con):
        from segment.features import DUCKDB

        self.con, self.d = con, DUCKDB
        self.lazy: set[str] = set()  # tables kept as views over their Parquet file
        self.views: dict[str, str] = {}  # view → the SQL it stands for

    def fetch(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    @property
    def read_errors(self) -> tuple[type[BaseException], ...]:
        """What reading a damaged source raises (DuckDB's errors; see :meth:`resource_error`)."""
        import duckdb

        return (duckdb.Error,)

    @staticmethod
    def resource_error(e: BaseException) -> bool:
        """Out of memory or disk: the machine's problem, reported by :func:`load`, not the file's."""
        import duckdb

        return isinstance(e, (duckdb.OutOfMemoryException, duckdb.IOException))

    def raw(self, config_path: Path, name: str, src: TableSource):
        relation = _raw_relation(self.con, config_path, name, src)
        if _scanned_by_duckdb(config_path, src) and _source_file(config_path, src)[1] == "parquet":
            self.lazy.add(name)
        return relation

    def count(self, relation: str) -> int:
        return int(self.fetch(f"SELECT count(*) FROM {relation}")[0][0])

    def _is_lazy(self, name: str) -> bool:
        return name.startswith(("s_", "t_")) and name[2:] in self.lazy

    def create(self, name: str, sql: str, temp: bool = False) -> None:
        if self._is_lazy(name):
            self.con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
            self.views[name] = sql
        else:
            self.con.execute(f"CREATE OR REPLACE {'TEMP ' if temp else ''}TABLE {name} AS {sql}")

    def drop(self, name: str) -> None:
        if name in self.views:
            self.con.execute(f"DROP VIEW IF EXISTS {name}")
            del self.views[name]
        else:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def delete(self, name: str, cond: str) -> None:
        if name not in self.views:
            self.con.execute(f"DELETE FROM {name} WHERE {cond}")
            return
        gone = f"{name}__gone"  # the condition is evaluated once: the view never re-reads what it named
        if _table_exists(self.con, gone):
            self.con.execute(f"INSERT INTO {gone} SELECT _row_ FROM {name} WHERE {cond}")
            return
        self.con.execute(f"CREATE TABLE {gone} AS SELECT _row_ FROM {name} WHERE {cond}")
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM ({self.views[name]}) AS v "
                         f"WHERE _row_ NOT IN (SELECT _row_ FROM {gone})")

    def columns(self, name: str) -> list[str]:
        return [r[0] for r in self.fetch(f"DESCRIBE {name}")]

    def repeated(self, relation: str, column: str, into: str) -> int:
        """``into``: the values of ``column`` found on more than one row of ``relation``; returns their
        number. The 64-bit hashes are sorted in numpy (one parallel scan computes them): a hash
        aggregate over 50 M distinct values takes twice as long."""
        import numpy as np

        values = self.con.execute(f"SELECT {column} FROM {relation}").fetchnumpy()[column]
        values = np.sort(np.asarray(values))
        same = values[1:] == values[:-1]
        found = np.unique(values[1:][same])
        del values, same
        self.con.register("repeated_values", pd.DataFrame({column: found}))
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {into} AS SELECT * FROM repeated_values")
        finally:
            self.con.unregister("repeated_values")
        return len(found)

    def release(self, raw: str) -> None:
        """The source is not read again: free its copy before the typed table is made (a Parquet
        file's view stays: the typed view reads it)."""
        if raw.startswith("raw_") and raw[4:] in self.lazy:
            return
        self.con.execute(f"DROP VIEW IF EXISTS {raw}")
        if _table_exists(self.con, f"{raw}_text"):
            self.con.execute(f"DROP TABLE {raw}_text")

    def typed(self, name: str, sql: str | None, extra: list[str]) -> None:
        """``t_<name>`` from ``s_<name>``: ``sql`` over it, or (None) the staged table itself without the
        columns ``extra`` (no second copy)."""
        if name in self.lazy:  # a view over the staged view over the file (it stays: views hold no rows)
            if sql is None:
                keep = [c for c in self.columns(f"s_{name}") if c not in extra]
                sql = f"SELECT {', '.join(self.d.q(c) for c in keep)} FROM s_{name}"
            self.create(f"t_{name}", sql)
        elif sql is None:
            for c in extra:
                self.con.execute(f"ALTER TABLE s_{name} DROP COLUMN {self.d.q(c)}")
            self.con.execute(f"ALTER TABLE s_{name} RENAME TO t_{name}")
        else:
            self.create(f"t_{name}", sql)
            self.drop(f"s_{name}")


#: the columns segment adds to every table it reads (the line number, the line hash): a source column
#: of such a name is read as ``<name> (source)``, so that neither hides the other
RESERVED = ("_row_", "_hash_", "_mid_")


def unreserved(column: str) -> str:
    """A source column's name in the raw relation: itself, or ``<name> (source)`` for a reserved one."""
    return f"{column} (source)" if column in RESERVED else column


def source_frame(config_path: Path, name: str, src: TableSource) -> tuple[pd.DataFrame, str, dict[str, str]]:
    """A source no engine scans itself (SQL, Excel, CSV in another encoding) read on the driver: the
    frame with ``_row_`` (its line number) first, a label, and the time zones of zoned timestamp columns."""
    path, fmt = _source_file(config_path, src)
    if path is not None and fmt == "csv":
        check_file(config_path, name, src, path)
    frame, label = read_frame(config_path, name, src)
    zones = {str(c): str(t.tz) for c, t in frame.dtypes.items() if getattr(t, "tz", None) is not None}
    frame = frame.reset_index(drop=True)
    frame.columns = [unreserved(str(c)) for c in frame.columns]
    frame.insert(0, "_row_", np.arange(1, len(frame) + 1, dtype="int64"))
    return frame, label, zones


def _raw_relation(con, config_path: Path, name: str, src: TableSource
                  ) -> tuple[str, list[tuple[str, str, str]], str, dict[str, str]]:
    """Create ``raw_<name>`` with a 1-based ``_row_`` column: a view over a Parquet file, a table for a
    CSV file or a frame (:func:`segment.data.config.read_frame`). Returns its name, the source's columns
    (cleaned name, name in the source, DuckDB type), a label, and the time zones of zoned timestamp
    columns (DuckDB holds them as instants; the wall-clock time where they were recorded is kept)."""
    import duckdb

    raw = f"raw_{name}"
    if not _scanned_by_duckdb(config_path, src):  # SQL, Excel, CSV in another encoding
        frame, label, zones = source_frame(config_path, name, src)
        view = f"frame_{name}"
        con.register(view, frame)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {raw}_text AS SELECT * FROM {view}")
        finally:
            con.unregister(view)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {raw} AS SELECT * FROM {raw}_text")
        described = con.execute(f"DESCRIBE SELECT * EXCLUDE (_row_) FROM {raw}").fetchall()
        return raw, [(str(c), str(c), str(t)) for c, t, *_ in described], label, zones

    path, fmt = _source_file(config_path, src)
    check_file(config_path, name, src, path)
    label = str(path)
    if fmt == "csv":  # the first lines through pandas: an encoding, an empty file or a ragged line gets its exact message
        explain_csv(config_path, name, src, path, nrows=1000)
    try:
        if fmt == "parquet":
            scan = f"read_parquet({_lit(str(path))}, file_row_number = true)"
            names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({_lit(str(path))})").fetchall()]
            if "file_row_number" in names:
                raise SegmentError(f"{path}: a column is named `file_row_number`, the name DuckDB gives the line "
                                   f"number of a Parquet file; rename it in the source (table `{name}`)")
            con.execute(f"CREATE OR REPLACE VIEW {raw} AS SELECT {_source_columns(names)}, "
                        f"file_row_number + 1 AS _row_ FROM {scan}")
        else:
            enc = _duckdb_encoding(src.encoding)
            con.execute("SET preserve_insertion_order = true")  # rowid = the line's position in the file
            con.execute(f"CREATE OR REPLACE TABLE {raw}_text AS SELECT * FROM read_csv({_lit(str(path))}, "
                        f"all_varchar = true, header = true, delim = {_lit(src.delimiter)}, quote = '\"', "
                        f"escape = '\"', encoding = {_lit(enc)}, null_padding = false)")
            con.execute("SET preserve_insertion_order = false")  # elsewhere row order comes from _row_
            names = [r[0] for r in con.execute(f"DESCRIBE {raw}_text").fetchall()]
            con.execute(f"CREATE OR REPLACE TEMP VIEW {raw} AS SELECT {_source_columns(names)}, rowid + 1 AS _row_ "
                        f"FROM {raw}_text")
        described = con.execute(f"DESCRIBE SELECT * EXCLUDE (_row_) FROM {raw}").fetchall()
    except duckdb.Error as e:
        if fmt == "csv":  # find the line as pandas would (chunked: memory stays flat)
            explain_csv(config_path, name, src, path)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SegmentError(f"{path}: cannot read it as {fmt}: {first}; check `tables.{name}` in {config_path} "
                           "(format, delimiter, encoding)") from None
    zones = _parquet_zones(path) if fmt == "parquet" else {}
    return raw, [(str(c).lstrip("\ufeff").strip(), str(c), str(t)) for c, t, *_ in described], label, zones


def _source_columns(names: list[str]) -> str:
    """The select list of a raw relation: every source column, a reserved name read as ``unreserved``."""
    from segment.features import DUCKDB

    return ", ".join(DUCKDB.q(c) if c == unreserved(c) else f"{DUCKDB.q(c)} AS {DUCKDB.q(unreserved(c))}"
                     for c in names)


def check_file(config_path: Path, name: str, src: TableSource, path: Path) -> None:
    if not path.is_file():
        raise ConfigError(config_path, f"tables.{name}.path", f"file {path} not found",
                          "check the path (relative to the data config)")
    if path.stat().st_size == 0:
        raise SegmentError(f"{path}: the file is empty; table `{name}` needs a header line and rows")


def explain_csv(config_path: Path, name: str, src: TableSource, path: Path, nrows: int | None = None) -> None:
    """Raise the loader's own message if pandas cannot read the CSV (its first ``nrows`` lines)."""
    from segment.data.config import csv_chunks, read_error

    try:
        if nrows is not None:
            csv_chunks(path, src, nrows=nrows)
        else:
            for _ in csv_chunks(path, src, chunksize=1_000_000):
                pass
    except (UnicodeDecodeError, pd.errors.EmptyDataError, ValueError, OSError, EOFError, pd.errors.ParserError) as e:
        raise read_error(e, config_path, name, src, path, "csv") from None


def _parquet_zones(path: Path) -> dict[str, str]:
    """Time zones of a Parquet file's zoned timestamp columns (DuckDB reads them as instants only)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as e:
        raise SegmentError(f"{path}: cannot read its Parquet schema ({str(e).splitlines()[0] if str(e) else type(e).__name__}): "
                           "the file looks damaged or incomplete; export it again") from None
    return {f.name.lstrip("\ufeff").strip(): f.type.tz for f in schema if pa.types.is_timestamp(f.type) and f.type.tz}


def parse_date(d, text: str, date_format: str | None) -> str:
    """SQL reading the text ``text`` as a TIMESTAMP on dialect ``d``: with ``date_format`` (strftime),
    else ISO 8601 as pandas' ISO8601 parser reads it (a trailing UTC offset dropped: io.UTC_OFFSET);
    NULL when it does not parse or falls outside DATE_MIN … DATE_MAX (a 0000-01-01 placeholder)."""
    if date_format:
        parse = d.strptime(text, date_format)
    else:
        bare = d.strip_group(text, UTC_OFFSET)
        parse = "coalesce(" + ", ".join([d.iso_timestamp(bare)] + [d.strptime(bare, f) for f in _ISO_PARTIAL]) + ")"
    return f"CASE WHEN {parse} BETWEEN {_DATE_MIN} AND {_DATE_MAX} THEN {parse} END"


def _is_nested(typ: str) -> bool:
    """A DuckDB (or Spark) type holding several values per row: LIST, ARRAY, STRUCT, MAP, UNION."""
    t = str(typ).upper()
    return t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION", "LIST", "ARRAY<"))


def _named_twice(config_path: Path, src: TableSource) -> list[str]:
    """Column names a CSV source's header line holds more than once (readers would rename or drop the
    second silently)."""
    path, fmt = _source_file(config_path, src)
    if path is None or fmt != "csv":
        return []
    try:
        first = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, encoding=src.encoding,
                            sep=src.delimiter).iloc[0].tolist()
    except Exception:  # unreadable: the reader reports it in its own words
        return []
    names = [str(x).lstrip("\ufeff").strip() for x in first]
    return sorted({n for n in names if n and names.count(n) > 1})


def _read_table(db, config_path: Path, name: str, src: TableSource, problems: list[Problem]) -> list[str] | None:
    """``t_<name>``: the typed table (contract columns + ``_row_``), cast once from the source into
    the database — or, for a Parquet file, a view casting it as it is read (writing 50 M lines into
    the database took longer than the snapshots that read them again; see :class:`_DuckDB`)."""
    table = TABLES[name]
    d = db.d
    _q, _lit = d.q, d.text  # noqa: N806 - the engine's quoting
    raw, described, label, zones = db.raw(config_path, name, src)
    source_cols = [clean for clean, _, _ in described]  # a BOM or spaces stripped
    original = {clean: name for clean, name, _ in described}
    types = {clean: typ for clean, _, typ in described}
    n = db.count(raw)
    if n == 0:
        problems.append(Problem("error", name, "", Texts.no_rows(label, name)
                                + ("; or set `sheet:` to the sheet holding them" if " of " in label and "(sheet" in label
                                   else ""), [], 0, "", "no_rows"))
        return None

    twice = _named_twice(config_path, src)
    if twice:
        problems.append(Problem("error", name, ", ".join(twice),
                                f"the header of {label} names {', '.join(f'`{c}`' for c in twice)} more than once: "
                                "only one of those columns would be read; rename or remove the others", [], 1, "",
                                "column_named_twice"))
        return None
    mapped = map_columns(pd.DataFrame(columns=[ROW, *source_cols]), table, src, config_path, label, problems)
    if mapped is None:
        return None
    rename = {s: c for s, c in src.columns.items() if s in source_cols}
    by_contract = {}
    for c in source_cols:
        target = rename.get(c, c)
        if target in table.by_name and target not in by_contract:
            by_contract[target] = c
    nested = [(t, c, types.get(c, "")) for t, c in by_contract.items() if _is_nested(types.get(c, ""))]
    if nested:
        for target, c, typ in nested:
            problems.append(Problem("error", name, target,
                                    f"source column `{original.get(c, c)}` of {label} holds lists or records ({typ}), "
                                    f"not one value per row; flatten it in the source, or map another column onto "
                                    f"`{target}`", [], 1, "", "nested_values"))
        return None

    first_new = len(problems)
    stage1, checks, present = [], [], []
    for col in table.columns:
        if col.name not in by_contract:
            continue
        src_col = by_contract[col.name]
        ref, typ = _q(original[src_col]), types[src_col].upper()
        text = f"NULLIF(trim({d.as_text(ref)}), '')"
        is_text = typ.startswith("VARCHAR") or typ == "BLOB"
        c = _q(col.name)
        if col.dtype in ("date", "datetime"):
            if "WITH TIME ZONE" in typ or typ.startswith("TIMESTAMP") or typ == "DATE":
                if "WITH TIME ZONE" in typ:  # the wall-clock time in the declared zone, else where it was recorded
                    stage1.append(f"{d.wall_clock(ref, src.timezone or zones.get(src_col, 'UTC'))} AS {c}")
                else:
                    stage1.append(f"CAST({ref} AS TIMESTAMP) AS {c}")
                checks.append(_Check(col.name, f"NOT ({c} BETWEEN {_DATE_MIN} AND {_DATE_MAX})", Texts.DATE_RANGE,
                                     d.as_text(c), "date_out_of_range"))
            else:
                try:
                    parse = parse_date(d, text, src.date_format)
                except ValueError as e:  # a directive Spark's patterns have no letter for
                    raise ConfigError(config_path, f"tables.{name}.date_format", f"{e} in {src.date_format!r} "
                                      f"cannot be read on {d.name}", "write the format with %Y %m %d %H %M %S %y "
                                      "%b %B %f %I %p %j %a %A, or use `engine: duckdb`") from None
                stage1.append(f"{parse} AS {c}")
                stage1.append(f"{text} AS {_q(col.name + '__text')}")
                checks.append(_Check(col.name, f"{_q(col.name + '__text')} IS NOT NULL AND {c} IS NULL",
                                     Texts.unparseable_date(src.date_format), _q(col.name + "__text"), "unparseable_date"))
        elif col.dtype in ("float", "int"):
            numeric = not is_text and typ != "BOOLEAN"
            if numeric:
                stage1.append(f"CASE WHEN {d.is_nan(f'CAST({ref} AS DOUBLE)')} THEN NULL ELSE CAST({ref} AS DOUBLE) END AS {c}")
                checks.append(_Check(col.name, d.is_inf(c), Texts.NOT_FINITE, c, "not_finite"))
            else:
                stage1.append(f"{d.number(text)} AS {c}")
                stage1.append(f"{text} AS {_q(col.name + '__text')}")
                checks.append(_Check(col.name, f"{_q(col.name + '__text')} IS NOT NULL AND ({c} IS NULL OR NOT {d.is_finite(c)})",
                                     Texts.NOT_A_NUMBER, _q(col.name + "__text"), "not_a_number"))
            scaled = f"({c} * {float(src.amount_unit)!r})" if "currency" in col.unit and src.amount_unit != 1 else c
            huge = f"{d.is_finite(c)} AND abs({scaled}) > {IMPLAUSIBLE_AMOUNT!r}"
            if "currency" in col.unit:
                checks.append(_Check(col.name, huge, Texts.IMPLAUSIBLE, scaled, "implausible_amount"))
            if col.dtype == "int":
                not_huge = f" AND NOT ({huge})" if "currency" in col.unit else ""
                checks.append(_Check(col.name, f"{d.is_finite(c)}{not_huge} AND {scaled} <> round({scaled})",
                                     Texts.NOT_WHOLE, scaled, "not_whole"))
        elif col.dtype == "bool":
            if typ == "BOOLEAN":
                stage1.append(f"{ref} AS {c}")
            else:
                low = f"lower({text})"
                trues = ", ".join(_lit(v) for v in sorted(TRUE_TEXTS))
                falses = ", ".join(_lit(v) for v in sorted(FALSE_TEXTS - {""}))
                stage1.append(f"CASE WHEN {low} IN ({trues}) THEN true WHEN {low} IN ({falses}) THEN false END AS {c}")
                stage1.append(f"{text} AS {_q(col.name + '__text')}")
                checks.append(_Check(col.name, f"{_q(col.name + '__text')} IS NOT NULL AND {c} IS NULL",
                                     Texts.NOT_BOOL, f"lower({_q(col.name + '__text')})", "not_true_false"))
        else:
            if typ in ("DOUBLE", "FLOAT", "REAL") or typ.startswith("DECIMAL"):
                val = (f"CASE WHEN {ref} IS NULL THEN NULL WHEN {ref} = floor({ref}) AND abs({ref}) < 1e18 "
                       f"THEN {d.as_text(f'CAST({ref} AS BIGINT)')} ELSE {d.as_text(ref)} END")
            else:
                val = text
            if col.values:
                stage1.append(f"lower({val}) AS {c}")
                stage1.append(f"{val} AS {_q(col.name + '__text')}")
                allowed = ", ".join(_lit(v) for v in col.values)
                checks.append(_Check(col.name, f"{c} IS NOT NULL AND {c} NOT IN ({allowed})",
                                     Texts.unknown_value(col.values), _q(col.name + "__text"), "unknown_value"))
            else:
                stage1.append(f"{val} AS {c}")
        present.append(col.name)

    derive_amount = name == "transactions" and "amount" not in by_contract and {"quantity", "unit_price"} <= set(present)
    # the source is read (decoded, cast) once, into s_<name>; every check and the typed table read that
    hashed = ""
    if name == "transactions":  # for duplicate lines: equal in every source column
        hashed = f", {d.row_hash([_q(original[c]) for c in source_cols])} AS _hash_"
    db.create(f"s_{name}", f"SELECT _row_, {', '.join(stage1)}{hashed} FROM {raw}")

    # the per-value problems, in contract column order. For a Parquet source (its staged table is a
    # view) this scan is also the first full read: every contract column is decoded here, so a damaged
    # file stops now, named, instead of in a later snapshot (+0.3 s on 4.5 M lines); a CSV source was
    # read whole into s_<name> already
    hits: set[str] = set()
    decode = present if name in getattr(db, "lazy", ()) else []
    scan = [f"count(*) FILTER (WHERE {k.flag})" for k in checks] + [f"count({_q(c)})" for c in decode]
    try:
        counts = db.fetch(f"SELECT {', '.join(scan)} FROM s_{name}")[0][:len(checks)] if scan else []
    except db.read_errors as e:
        if db.resource_error(e):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SegmentError(f"{label}: cannot read table `{name}` ({first}): the file looks damaged or incomplete; "
                           f"export it again (or fix `tables.{name}` in {config_path})") from None
    if checks:
        for k, cnt in zip(checks, counts):
            if cnt:
                hits.add(k.flag)
                rows, example = _sample(db, f"s_{name}", k.flag, k.example)
                problems.append(Problem("error", name, k.column, k.problem, rows, int(cnt), example, k.check))

    # the typed values: a bad value is missing; currency scaled; ints whole
    final = ["_row_"]
    plain = True  # every column as staged: the staged table is the typed one
    for col in table.columns:
        if col.name not in present:
            continue
        c = _q(col.name)
        bad = [k.flag for k in checks if k.column == col.name and k.flag in hits]
        expr = c
        if col.dtype in ("float", "int") and "currency" in col.unit and src.amount_unit != 1:
            expr = f"({c} * {float(src.amount_unit)!r})"
        if bad:
            expr = f"CASE WHEN {' OR '.join(f'coalesce({b}, false)' for b in bad)} THEN NULL ELSE {expr} END"
        if col.dtype == "int":
            expr = f"CAST(round({expr}) AS BIGINT)"
        plain = plain and expr == c
        final.append(f"{expr} AS {c}")
    where = ""
    if "unparseable_rows" in src.drop and len(problems) > first_new:
        for p in problems[first_new:]:
            p.severity = "warning"
            p.problem += Texts.UNPARSEABLE_DROPPED
        where = " WHERE NOT (" + " OR ".join(f"coalesce({k.flag}, false)" for k in checks if k.flag in hits) + ")"
    if name == "transactions":
        _duplicate_lines(db, raw, [original[c] for c in source_cols])
    # the source's text (kept for the examples) and the line hashes (read by _duplicate_lines): done with
    extra = [c for c in db.columns(f"s_{name}") if c not in ("_row_", *present)]
    as_is = plain and not where and not derive_amount
    db.release(raw)  # the source is not read again: free its copy before the typed one
    if as_is:  # nothing to change: the staged table is the typed one (no second copy)
        db.typed(name, None, extra)
    else:
        sql = f"SELECT {', '.join(final)} FROM s_{name}{where}"
        if derive_amount:  # quantity × unit_price (unit_price already in currency units)
            sql = f"SELECT *, quantity * unit_price AS amount FROM ({sql})"
            present.append("amount")
        db.typed(name, sql, extra)
    return [c.name for c in table.columns if c.name in present]


def _table_exists(con, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchone()[0])


def _duplicate_lines(db, raw: str, source_columns: list[str]) -> None:
    """``dup_rows``: the rows of ``raw`` equal to an earlier row in every source column. Rows were
    hashed when staged (``s_transactions._hash_``); only rows sharing a hash are compared in full."""
    cols = ", ".join(db.d.q(c) for c in source_columns)
    shared = "SELECT _row_ FROM s_transactions WHERE _hash_ IN (SELECT _hash_ FROM dup_hashes)"
    if not db.repeated("s_transactions", "_hash_", "dup_hashes"):
        shared = "SELECT _row_ FROM s_transactions WHERE false"  # no second read of the source
    db.create("dup_rows", f"SELECT _row_ FROM (SELECT _row_, row_number() OVER (PARTITION BY {cols} ORDER BY _row_) "
              f"AS n_ FROM {raw} WHERE _row_ IN ({shared})) AS w WHERE n_ > 1")
    db.drop("dup_hashes")


def _value(v):
    if isinstance(v, (pd.Timestamp,)) or hasattr(v, "isoformat"):
        return pd.Timestamp(v)
    return v


def _sample(db, table: str, cond: str, example: str = "NULL") -> tuple[list[int], object]:
    """The first rows (numbers) where ``cond`` holds and the example value of the first."""
    rows = db.fetch(f"SELECT _row_, {example} FROM {table} WHERE {cond} ORDER BY _row_ LIMIT {_SAMPLE}")
    return [int(r[0]) for r in rows], (_value(rows[0][1]) if rows else None)


#: amounts that look like 万元 (or thousands) read as yuan: SMALL_SHARE of the purchase lines below SMALL_AMOUNT
SMALL_AMOUNT, SMALL_SHARE = 10.0, 0.9


def _plausible(name: str, present: list[str], config: DataConfig) -> list[tuple[str, str]]:
    """The plausibility checks of a table, from the contract's units: (column, kind) with kind
    ``share`` (a fraction 0–1), ``growth`` (a rate per year: above 100% on most rows means percents),
    ``scale`` (a 0–10 score) or ``small`` (currency amounts mostly below 10 without `amount_unit:`)."""
    out = []
    for col in TABLES[name].columns:
        if col.name not in present or col.dtype not in ("float", "int"):
            continue
        if col.unit == "fraction":
            out.append((col.name, "share"))
        elif col.unit.startswith("fraction"):
            out.append((col.name, "growth"))
        elif col.unit.startswith("points 0"):
            out.append((col.name, "scale"))
        elif name == "transactions" and col.name == "amount" and config.tables[name].amount_unit == 1:
            out.append((col.name, "small"))
    return out


#: a transactions row equal to an earlier source line in every column (``dup_rows``, :func:`_duplicate_lines`)
DUPLICATE = "_row_ IN (SELECT _row_ FROM dup_rows)"


def _check(db, columns: dict[str, list[str]], config: DataConfig, as_of: pd.Timestamp | None,
           problems: list[Problem]) -> None:
    """The cross-row and cross-table rules, in the order the report lists them; declared drops applied.

    Each table is scanned once for every count (a rule after a declared drop counts only the rows
    the drop keeps); rows are fetched only for the rules that hold somewhere (their first rows)."""
    drops = {name: set(src.drop) for name, src in config.tables.items()}
    _q, _lit = db.d.q, db.d.text  # noqa: N806 - the engine's quoting
    duplicate = DUPLICATE if db.count("dup_rows") else "false"

    def remove(name: str, cond: str) -> None:
        db.delete(f"t_{name}", cond)

    # rows without a customer id cannot be attributed to anyone (only when declared: else completeness says it)
    for name in ("transactions", "interactions", "opportunities"):
        if name in columns and "customer_id" in columns[name] and "missing_customer_id" in drops.get(name, set()):
            cnt = db.fetch(f"SELECT count(*) FROM t_{name} WHERE customer_id IS NULL")[0][0]
            if cnt:
                rows, _ = _sample(db, f"t_{name}", "customer_id IS NULL")
                severity, text = Texts.declared(Texts.MISSING_IDS, name, "missing_customer_id", True)
                problems.append(Problem(severity, name, "customer_id", text, rows, int(cnt), "", "missing_customer_id"))
                remove(name, "customer_id IS NULL")

    for name in columns:
        for key in TABLES[name].unique:
            k = _q(key)
            cond = f"{k} IN (SELECT {k} FROM t_{name} WHERE {k} IS NOT NULL GROUP BY {k} HAVING count(*) > 1)"
            cnt, ids, distinct = db.fetch(
                f"SELECT count(*), count(DISTINCT {k}), (SELECT count(*) FROM (SELECT DISTINCT "
                f"{', '.join(_q(c) for c in columns[name])} FROM t_{name} WHERE {cond})) FROM t_{name} WHERE {cond}"
            )[0]
            if cnt:
                rows, ex = _sample(db, f"t_{name}", cond, k)
                problems.append(Problem("error", name, key, Texts.duplicate_ids(key, ids, cnt, distinct > ids), rows,
                                        int(cnt), ex, "duplicate_id"))

    # every other rule: one scan per table; `kept` is what the declared drops before a rule leave
    cutoff = (as_of.normalize() + pd.Timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S") if as_of is not None else None
    known = "customer_id IS NOT NULL AND customer_id NOT IN (SELECT customer_id FROM t_customers WHERE customer_id IS NOT NULL)"
    rules: dict[str, list[tuple[str, str]]] = {}  # table → [(rule id, SQL condition incl. what is still kept)]
    dropping: dict[str, list[str]] = {}
    for name in columns:
        kept: list[str] = []

        def rule(rid: str, cond: str, name=name, kept=kept) -> str:
            full = " AND ".join([f"({cond})"] + [f"NOT coalesce({k}, false)" for k in kept])
            rules.setdefault(name, []).append((rid, full))
            return full

        if name == "transactions":
            rule("dup", duplicate)
            if "duplicate_lines" in drops.get(name, set()):
                kept.append(duplicate)
            rule("returns", "amount < 0")
            rule("zeros", "amount = 0")
        if "customers" in columns and name != "customers":
            rule("unknown", known)
            if "unknown_customers" in drops.get(name, set()):
                kept.append(f"({known})")
        rule("n", "true")
        for key in TABLES[name].keys:
            if key in columns[name]:
                rule(f"null:{key}", f"{_q(key)} IS NULL")
        dcol = TABLES[name].date_column
        if cutoff and dcol and dcol in columns[name]:
            rule("late", f"{_q(dcol)} >= TIMESTAMP {_lit(cutoff)}")
        for col, kind in _plausible(name, columns[name], config):  # the common slips, by the contract's units
            c = _q(col)
            if kind == "share":
                rule(f"share:{col}", f"{c} > 1 OR {c} < 0")
            elif kind == "growth":
                rule(f"known:{col}", f"{c} IS NOT NULL")
                rule(f"growth:{col}", f"abs({c}) > 1")
            elif kind == "scale":
                rule(f"scale:{col}", f"{c} < 0 OR {c} > 10")
            elif kind == "small":
                rule("buys", f"{c} > 0")
                rule("small", f"{c} > 0 AND {c} < {SMALL_AMOUNT!r}")
        dropping[name] = kept
    counts: dict[str, dict[str, int]] = {}
    for name, rs in rules.items():
        got = db.fetch("SELECT " + ", ".join(f"count(*) FILTER (WHERE {c})" for _, c in rs)
                       + f" FROM t_{name}")[0]
        counts[name] = {rid: int(v) for (rid, _), v in zip(rs, got)}
    cond = {name: dict(rs) for name, rs in rules.items()}

    def report(name: str, rid: str, severity: str, column: str, text: str, example: str = "NULL",
               drop_kind: str | None = None, *, check: str) -> None:
        cnt = counts[name].get(rid, 0)
        if not cnt:
            return
        rows, ex = _sample(db, f"t_{name}", cond[name][rid], example)
        if drop_kind is not None:
            severity, text = Texts.declared(text, name, drop_kind, drop_kind in drops.get(name, set()))
        problems.append(Problem(severity, name, column, text, rows, cnt, ex, check))

    if "transactions" in columns:
        example = "order_id" if "order_id" in columns["transactions"] else "customer_id"
        report("transactions", "dup", "error", "", Texts.DUPLICATE_LINES, example, "duplicate_lines",
               check="duplicate_lines")
        report("transactions", "returns", "warning", "amount", Texts.RETURNS, "amount", check="negative_amounts")
        report("transactions", "zeros", "warning", "amount", Texts.ZEROS, "amount", check="zero_amounts")
    if "customers" in columns:
        for name in ("transactions", "interactions", "opportunities"):
            if name in columns:
                report(name, "unknown", "error", "customer_id", Texts.UNKNOWN_CUSTOMERS, "customer_id",
                       "unknown_customers", check="unknown_customer")
    for name in columns:
        n = counts[name]["n"]
        if not n:
            continue
        for key in TABLES[name].keys:
            if key in columns[name]:
                cnt = counts[name][f"null:{key}"]
                share = (n - cnt) / n
                if share < COMPLETENESS_THRESHOLD:
                    rows, _ = _sample(db, f"t_{name}", cond[name][f"null:{key}"])
                    problems.append(Problem("error", name, key, Texts.incomplete(key, share), rows, cnt, "", "incomplete"))
    if cutoff:
        for name in columns:
            dcol = TABLES[name].date_column
            if "late" in counts[name] and counts[name]["late"]:
                rows, ex = _sample(db, f"t_{name}", cond[name]["late"], _q(dcol))
                problems.append(Problem("warning", name, dcol, Texts.after_as_of(as_of), rows,
                                        counts[name]["late"], ex, "after_as_of"))
    for name in columns:  # plausibility: warnings, the data is graded as it is
        cnt = counts[name]
        for col, kind in _plausible(name, columns[name], config):
            if kind == "share":
                report(name, f"share:{col}", "warning", col, Texts.share_range(col), _q(col), check="share_out_of_range")
            elif kind == "growth" and cnt[f"growth:{col}"] >= 0.5 * max(cnt[f"known:{col}"], 1):
                report(name, f"growth:{col}", "warning", col, Texts.percent_like(col, cnt[f"growth:{col}"],
                                                                                cnt[f"known:{col}"]), _q(col),
                       check="growth_as_percent")
            elif kind == "scale":
                report(name, f"scale:{col}", "warning", col, Texts.OFF_SCALE, _q(col), check="score_off_scale")
            elif kind == "small" and cnt["buys"] >= 20 and cnt["small"] >= SMALL_SHARE * cnt["buys"]:
                report(name, "small", "warning", col, Texts.small_amounts(cnt["small"] / cnt["buys"]), _q(col),
                       check="amounts_look_like_wan")
    for name, kept in dropping.items():  # the declared drops that held somewhere
        hits = [k for k, rid in ((duplicate, "dup"), (f"({known})", "unknown")) if k in kept and counts[name].get(rid)]
        if hits:
            remove(name, " OR ".join(hits))
