"""Loading a data config into DuckDB: every source read, cast and checked once, in SQL (`load`), on the engine object the rules run on (`DuckDBEngine`; Spark's twin is in segment.data.spark).

Public: load, DuckDBEngine.
Reads: the data config's sources. Writes: a temporary DuckDB database (segment.data.database).

Every command that reads data goes through here (``segment.data.validate.load_data`` calls :func:`load`):

* each source becomes a DuckDB relation ``raw_<table>`` with a 1-based ``_row_``: Parquet and CSV
  files are scanned by DuckDB itself (streaming); an Excel sheet, a SQL query's result or a CSV file
  in an encoding DuckDB does not read (GBK …) is read by :func:`segment.data.sources.read_frame` and handed to
  DuckDB as a frame;
* each contract column is cast in SQL (:mod:`segment.data.rules`): a value that does not fit is a
  :class:`segment.data.problems.Problem` with its text, count, first row numbers and an example;
* the cross-row rules (declared drops, duplicate ids, duplicate lines, unknown customers,
  completeness, future dates) are SQL over the typed tables (:mod:`segment.data.rules`);
* the result is a :class:`Tables`, whose snapshots (:func:`segment.features.snapshot.snapshot`), churn windows
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

import shutil
import weakref
from pathlib import Path

import pandas as pd

from segment.data.config import DataConfig, TableSource
from segment.data.database import (
    FolderOwner,
    choose,
    close_database,
    connect,
    new_folder,
    scanned_by_duckdb,
    source_file,
    table_exists,
    tmp_base,
)
from segment.data.problems import Problem
from segment.data.raw import raw_relation
from segment.data.rules import validate
from segment.data.tables import Tables
from segment.errors import SegmentError
from segment.plumbing.sql import DUCKDB


def load(config_path: Path, config: DataConfig, as_of: pd.Timestamp | None, problems: list[Problem], *,
         only: str | None = None) -> Tables | None:
    """Read and validate every table of the config into DuckDB; every problem is appended to
    ``problems``. None when the transactions table could not be read onto the contract.

    ``only``: read and cast that one table alone (its columns and values; no cross-table rules)."""
    import duckdb

    on_disk = choose(config_path, config) == "disk"
    base = tmp_base()
    folder = new_folder()
    # the folder goes with this frame unless Tables takes it over: even when a second signal or an
    # interrupt arriving during the cleanup below cuts that cleanup short (and at exit at the latest)
    owner = FolderOwner()
    guard = weakref.finalize(owner, shutil.rmtree, folder, True)
    con = None
    try:
        con = connect(folder, on_disk)
        columns = validate(DuckDBEngine(con), config_path, config, as_of, problems, only=only)
        if columns is None:
            close_database(con, folder)
            return None
        if on_disk:
            con.execute("CHECKPOINT")
        kept = Tables._kept(con, folder, columns, declared=config.declared(config_path))
        guard.detach()
        return kept
    except (duckdb.IOException, duckdb.OutOfMemoryException) as e:
        close_database(con, folder)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SegmentError(f"{config_path}: DuckDB could not keep the tables in {base} ({first}); they need "
                           "about 1.5× the size of the source files on disk: free some space, point SEGMENT_TMPDIR "
                           "at a bigger disk, or set SEGMENT_DUCKDB_MEMORY lower so that DuckDB spills sooner") from None
    except duckdb.Error as e:  # a source DuckDB cannot read past the checks that name the table
        close_database(con, folder)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SegmentError(f"{config_path}: the data could not be read ({first}); a source file may be damaged "
                           "or incomplete: export it again") from None
    except BaseException:
        close_database(con, folder)
        raise


class DuckDBEngine:
    """What :func:`validate` asks of an engine, on a DuckDB connection. The SQL it is given is written
    once for both engines through ``d`` (a :class:`segment.plumbing.sql.Dialect`); the Spark twin of this
    small class is ``segment.data.spark._Spark``.

    A table read from a Parquet file is not copied: its staged and typed relations are views over the
    file (Parquet is columnar and compressed: scanning it again costs less than writing 50 M lines
    into the database once); rows a rule removes are kept aside by line number (``<view>__gone``)."""

    def __init__(self, con):

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
        relation = raw_relation(self.con, config_path, name, src)
        if scanned_by_duckdb(config_path, src) and source_file(config_path, src)[1] == "parquet":
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
        if table_exists(self.con, gone):
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
        if table_exists(self.con, f"{raw}_text"):
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
