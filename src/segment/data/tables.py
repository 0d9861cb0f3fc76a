"""The validated tables (`Tables` in DuckDB; `TableSet`, what every engine's tables offer): their views, SQL over them, snapshots kept per date.

Public: Tables, TableSet, wanted_frame.
Reads: nothing outside the database. Writes: tables in the database (snapshots kept per date).
"""
from __future__ import annotations

import json
import weakref
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from segment.data.contract import ALIAS, TABLE_NAMES, TABLES, Table, with_fields
from segment.data.database import (
    close_database,
    connect,
    new_folder,
    sql_name,
    sql_text,
)
from segment.errors import SegmentError
from segment.features.declared import NO_DECLARATIONS, Declared


#: contract dtype → DuckDB type, for tables built from frames
_SQL_TYPE = {"string": "VARCHAR", "float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN",
             "date": "TIMESTAMP", "datetime": "TIMESTAMP"}


class TableSet:
    """What every set of validated contract tables offers, wherever it lives (:class:`Tables` in DuckDB,
    :class:`segment.data.spark.SparkTables` on Spark): the tables present and their columns."""

    _columns: dict[str, list[str]]
    #: the data config's declared fields and indicators (segment.features.declared)
    declared: Declared = NO_DECLARATIONS

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}: {len(self._columns[n])} columns' for n in self.present())})"

    def present(self) -> list[str]:
        return [n for n in TABLE_NAMES if n in self._columns]

    def contract(self, name: str) -> Table:
        """Table ``name``'s contract with the declared fields."""
        return with_fields(TABLES[name], self.declared.columns(name))

    def columns(self, name: str) -> list[str]:
        return list(self._columns[name])

    def graded(self, scheme, as_of, source: str = "the scheme", *, keep_snapshot: bool = True):
        """The snapshot at ``as_of`` graded with ``scheme`` (not per group: see
        ``segment.pipeline.grade_snapshot``), CRM-lost customers left out: the grading, the snapshot
        (None when not ``keep_snapshot`` and the engine need not fetch it) and how many were left out.
        Here: the snapshot in pandas, graded by the scheme's SQL in DuckDB; Spark overrides it."""
        from segment.features.snapshot import snapshot
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
                 interactions: pd.DataFrame | None = None, opportunities: pd.DataFrame | None = None,
                 measures: pd.DataFrame | None = None, *, declared: Declared | None = None):
        frames = {"customers": customers, "transactions": transactions, "interactions": interactions,
                  "opportunities": opportunities, "measures": measures}
        self.declared = declared or NO_DECLARATIONS
        if transactions is None:
            raise SegmentError("the transactions table is mandatory")
        folder = new_folder()
        con = None
        try:
            con = connect(folder, on_disk=False)
            columns = {name: _frame_table(con, self.contract(name), df) for name, df in frames.items() if df is not None}
        except BaseException:
            close_database(con, folder)
            raise
        self._attach(con, folder, columns)

    @classmethod
    def _kept(cls, con, folder: Path, columns: dict[str, list[str]], filters: dict[str, str] | None = None,
              owner: "Tables | None" = None, declared: Declared | None = None) -> "Tables":
        self = cls.__new__(cls)
        self.declared = owner.declared if owner is not None else declared or NO_DECLARATIONS
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
            self._finalizer = weakref.finalize(self, close_database, con, folder)

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
        cols = ", ".join(sql_name(c) for c in self._columns[name])
        where = f" WHERE {self.filters[name]}" if name in self.filters else ""
        return f"SELECT {cols} FROM t_{name}{where}"

    def _one(self, sql: str) -> tuple:
        return self.con.execute(sql).fetchone()

    @property
    def d(self):
        """The SQL dialect of :meth:`sql` (DuckDB's)."""
        from segment.plumbing.sql import DUCKDB

        return DUCKDB

    def sql(self, query: str, params: list | None = None, *, wanted: Iterable[str] | None = None) -> pd.DataFrame:
        """``query`` over the views ``tx``, ``cu``, ``it``, ``op``, ``ms`` (and ``wanted``: one column
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
        return _pandas_types(self.sql(self._select(name) + " ORDER BY _row_"), self.contract(name))

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
            self._columns[name] = _frame_table(self.con, self.contract(name), df)
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
    measures = property(lambda self: self.get("measures"), lambda self, df: self.replace("measures", df))

    def where(self, **filters: str) -> "Tables":
        """The same tables with extra SQL filters per table (``transactions="product_line = 'x'"``)."""
        merged = dict(self.filters)
        for name, cond in filters.items():
            merged[name] = f"({merged[name]}) AND ({cond})" if name in merged else cond
        return Tables._kept(self.con, self.folder, self._columns, merged, owner=self._owner or self)

    # ---- what segment computes over them
    def snapshot(self, as_of, customers: Iterable[str] | None = None) -> pd.DataFrame:
        """The snapshot at ``as_of`` (see :func:`segment.features.snapshot.snapshot`). A whole snapshot is kept
        in the database once computed: a report asks for the same date several times (its gradings,
        the calibration's training and test panels), and the tables never change once loaded."""
        from segment.features.snapshot import plan, run_duckdb, snapshot_frame_of

        restricted = customers is not None
        p = plan(self._columns, as_of, restricted=restricted, declared=self.declared)
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
        return snapshot_frame_of(result, p)


def wanted_frame(ids: Iterable[str]) -> pd.DataFrame:
    """The ``wanted`` relation: each customer id once, as text, sorted."""
    return pd.DataFrame({"customer_id": pd.Series(sorted({str(c) for c in ids}), dtype="string")})


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


def _frame_table(con, table: Table, df: pd.DataFrame) -> list[str]:
    """``t_<name>`` from a frame already on the contract: contract columns cast to their SQL type,
    other columns kept as they are; ``_row_`` is the frame's row order. Returns the columns."""
    name = table.name
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
                select.append(f"timezone({sql_text(str(frame[c].dtype.tz))}, {sql_name(c)}) AS {sql_name(c)}")
            elif col is not None and col.values:
                select.append(f"lower(CAST({sql_name(c)} AS VARCHAR)) AS {sql_name(c)}")
            elif typ:
                select.append(f"CAST({sql_name(c)} AS {typ}) AS {sql_name(c)}")
            else:
                select.append(sql_name(c))
        con.execute(f"CREATE OR REPLACE TABLE t_{name} AS SELECT {', '.join(select)} FROM {view}")
    finally:
        con.unregister(view)
    return [str(c) for c in frame.columns[1:]]
