"""Validation at the boundary: every problem in every table, listed at once (pandera's lazy mode).

Public: Loaded, report_frame, parse_as_of, raise_errors, load_data, check_declared, load_table.
Reads: the data config and its sources. Writes: nothing.

``load_data`` is what every command that reads data calls: it loads each table through the data
config, checks the contract and the SEEDS step-3 quality rules, and either returns the tables with
the report (warnings only) or raises ``DataError`` carrying the whole report.

Report columns: severity (error / warning), table, column, problem, count, rows (1-based data-row
numbers in the source, header excluded; the first few), example (one offending value).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from segment.data.config import DataConfig, read_data_config
from segment.data.problems import Problem
from segment.data.tables import Tables
from segment.errors import ConfigError, DataError, SegmentError
from segment.plumbing.result import Result

REPORT_COLUMNS = ["severity", "table", "column", "problem", "count", "rows", "example", "check"]
MAX_ROWS_SHOWN = 10


@dataclass
class Loaded(Result):
    tables: Tables
    report: pd.DataFrame  # warnings (errors raise)
    config: DataConfig
    path: Path

    @property
    def as_of(self) -> pd.Timestamp | None:
        return pd.Timestamp(self.config.as_of) if self.config.as_of else None

    def table(self) -> pd.DataFrame:
        """The data warnings (errors stop the load)."""
        return self.report

    def summary(self) -> str:
        tables = ", ".join(f"{n} ({len(self.tables.columns(n))} columns)" for n in self.tables.present())
        return f"{self.path}: {tables}; {len(self.report)} data warning(s)"


def _example(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.10g}"
    if isinstance(v, pd.Timestamp):
        return str(v.date()) if v == v.normalize() else str(v)
    return str(v)


def report_frame(problems: list[Problem]) -> pd.DataFrame:
    rows = []
    for p in problems:
        shown = ", ".join(str(r) for r in p.rows[:MAX_ROWS_SHOWN]) + (" …" if len(p.rows) > MAX_ROWS_SHOWN else "")
        rows.append({"severity": p.severity, "table": p.table, "column": p.column, "problem": p.problem,
                     "count": p.count, "rows": shown, "example": _example(p.example), "check": p.check})
    df = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    if not df.empty:
        df["_order"] = (df["severity"] != "error").astype(int)
        df = df.sort_values(["_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
    return df


def parse_as_of(value, what: str = "--as-of") -> pd.Timestamp:
    """An as-of date given by a user, or a clear error (``2026-02-30`` is not a date)."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        ts = None
    if ts is None or pd.isna(ts):
        raise SegmentError(f"{what} {value!r} is not a date; write it as YYYY-MM-DD (for example 2026-09-30)")
    if not pd.Timestamp("1900-01-01") <= ts <= pd.Timestamp("2199-12-31"):
        raise SegmentError(f"{what} {value!r} is outside the dates segment grades (1900-01-01 … 2199-12-31)")
    return ts


def raise_errors(report: pd.DataFrame, config: DataConfig, path: Path, strict: bool) -> None:
    if strict and (report["severity"] == "error").any():
        # name the files too: the report's rows are counted in each table's own source
        sources = "; ".join(f"{n}: {src.path}" for n, src in config.tables.items() if src.path)
        raise DataError(report, source=f"{path}" + (f" ({sources})" if sources else ""))


def load_data(path: str | Path, as_of: str | date | pd.Timestamp | None = None, *, strict: bool = True,
              engine: str | None = None) -> Loaded:
    """Load and validate every table of the data config at ``path``.

    Raises ``DataError`` (with the full report) when any error is found and ``strict`` is true;
    otherwise returns the tables (declared drops applied) and the report. The tables live in DuckDB
    (:class:`segment.data.tables.Tables`: in memory, or in a database file for big sources); every cast and
    every check runs there, once, in SQL. With ``engine: spark`` in the config (or ``engine="spark"``)
    the same SQL runs on Spark and the tables stay there (:class:`segment.data.spark.SparkTables`: the
    same snapshot, grading and ``sql`` methods); ``engine`` (duckdb or spark) overrides the config's."""
    path = Path(path)
    config = read_data_config(path)
    as_of_ts = parse_as_of(as_of, "--as-of") if as_of is not None else None  # before reading any table
    problems: list[Problem] = []
    if as_of_ts is None and config.as_of is not None:
        as_of_ts = pd.Timestamp(config.as_of)
    engine = config.engine if engine is None else engine
    if engine not in ("duckdb", "spark"):
        raise SegmentError(f"unknown engine {engine!r}; write duckdb or spark")
    if engine == "spark":
        from segment.data.spark import load_spark

        kept = load_spark(path, config, as_of_ts, problems)
        report = report_frame(problems)
        try:
            raise_errors(report, config, path, strict)
            check_declared(kept, config, path)
        except BaseException:
            if kept is not None:
                kept.close()
            raise
        return Loaded(kept, report, config, path)
    from segment.data import store

    kept = store.load(path, config, as_of_ts, problems)
    report = report_frame(problems)
    raise_errors(report, config, path, strict)
    check_declared(kept, config, path)
    return Loaded(kept, report, config, path)


def check_declared(tables, config: DataConfig, path: Path) -> None:
    """The declared indicators against the loaded data (segment.features.declared.Declared.problems_with):
    ConfigError naming the first key (in the indicators file when they come from one)."""
    if tables is None or not tables.declared.indicators:
        return
    columns = {n: tables.columns(n) for n in tables.present()}
    measures = None
    if "measures" in columns and any(i.measure is not None for i in tables.declared.indicators.values()):
        measures = set(tables.sql("SELECT DISTINCT measure FROM ms WHERE measure IS NOT NULL")["measure"].astype(str))
    found = tables.declared.problems_with(columns, measures)
    if found:
        key, problem, fix = found[0]
        more = f" (and {len(found) - 1} more problem(s) with the declared indicators)" if len(found) > 1 else ""
        raise ConfigError(config.indicators_file or path, key, problem + more, fix)


def load_table(path: str | Path, name: str) -> pd.DataFrame | None:
    """One table of the data config, read and checked on its own (its columns and values, not the
    cross-table rules): what `segment review export` needs from the customers table without reading
    50 M transaction lines again. None when the config has no such table; ``DataError`` on errors."""
    path = Path(path)
    config = read_data_config(path)
    if name not in config.tables:
        return None
    from segment.data import store

    problems: list[Problem] = []
    kept = store.load(path, config, None, problems, only=name)
    report = report_frame(problems)
    raise_errors(report, config, path, strict=True)
    return None if kept is None else kept.get(name)
