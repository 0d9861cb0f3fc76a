"""Validation at the boundary: every problem in every table, listed at once (pandera's lazy mode).

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

from .contract import COMPLETENESS_THRESHOLD, TABLES
from .errors import DataError, SegmentError
from .io import DUP, ROW, DataConfig, Problem, Tables, Texts, read_data_config, read_table

REPORT_COLUMNS = ["severity", "table", "column", "problem", "count", "rows", "example"]
MAX_ROWS_SHOWN = 10


@dataclass
class Loaded:
    tables: Tables
    report: pd.DataFrame  # warnings (errors raise)
    config: DataConfig
    path: Path

    @property
    def as_of(self) -> pd.Timestamp | None:
        return pd.Timestamp(self.config.as_of) if self.config.as_of else None


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
                     "count": p.count, "rows": shown, "example": _example(p.example)})
    df = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    if not df.empty:
        df["_order"] = (df["severity"] != "error").astype(int)
        df = df.sort_values(["_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
    return df


def check(tables: dict[str, pd.DataFrame], config: DataConfig, as_of: pd.Timestamp | None,
          problems: list[Problem]) -> dict[str, pd.DataFrame]:
    """The cross-row and cross-table rules. Returns the tables after declared drops."""
    drops = {name: set(src.drop) for name, src in config.tables.items()}

    def drop(name: str, mask: pd.Series, kind: str, column: str, problem: str, example_col: str | None = None) -> None:
        df = tables[name]
        if not mask.any():
            return
        example = df.loc[mask, example_col].iloc[0] if example_col else ""
        dropped = kind in drops.get(name, set())
        severity, text = Texts.declared(problem, name, kind, dropped)
        problems.append(Problem(severity, name, column, text, df.loc[mask, ROW].astype(int).tolist(), int(mask.sum()),
                                example))
        if dropped:
            tables[name] = df.loc[~mask]

    # rows without a customer id cannot be attributed to anyone
    for name in ("transactions", "interactions", "opportunities"):
        if name in tables and "customer_id" in tables[name]:
            miss = tables[name]["customer_id"].isna()
            if "missing_customer_id" in drops.get(name, set()):
                drop(name, miss, "missing_customer_id", "customer_id", Texts.MISSING_IDS)

    # duplicate keys
    for name, df in tables.items():
        for key in TABLES[name].unique:
            dup = df[key].notna() & df.duplicated(subset=[key], keep=False)
            if dup.any():
                conflicting = df[dup].drop(columns=ROW).drop_duplicates()
                ids = df.loc[dup, key].nunique()
                problems.append(Problem("error", name, key, Texts.duplicate_ids(key, ids, int(dup.sum()),
                                                                                len(conflicting) > ids),
                                        df.loc[dup, ROW].astype(int).tolist(), int(dup.sum()), df.loc[dup, key].iloc[0]))

    # exact duplicate transaction lines: every column of the source line equals an earlier line's
    if "transactions" in tables:
        df = tables["transactions"]
        dup = df[DUP] if DUP in df else df.duplicated(subset=[c for c in df.columns if c != ROW], keep="first")
        drop("transactions", dup, "duplicate_lines", "", Texts.DUPLICATE_LINES,
             "order_id" if "order_id" in df else "customer_id")

    # returns and zero lines are legal but worth knowing about
    if "transactions" in tables:
        df = tables["transactions"]
        for mask, what in ((df["amount"] < 0, Texts.RETURNS), (df["amount"] == 0, Texts.ZEROS)):
            if mask.any():
                problems.append(Problem("warning", "transactions", "amount", what,
                                        df.loc[mask, ROW].astype(int).tolist(), int(mask.sum()), df.loc[mask, "amount"].iloc[0]))

    # events for customers the master does not know
    if "customers" in tables:
        known = tables["customers"]["customer_id"].dropna().unique()
        for name in ("transactions", "interactions", "opportunities"):
            if name in tables:
                df = tables[name]
                unknown = df["customer_id"].notna() & ~df["customer_id"].isin(known)
                drop(name, unknown, "unknown_customers", "customer_id", Texts.UNKNOWN_CUSTOMERS, "customer_id")

    # completeness of key fields (SEEDS step 3: at least 95%)
    for name, df in tables.items():
        n = len(df)
        if not n:
            continue
        for key in TABLES[name].keys:
            if key in df:
                present = df[key].notna()
                share = float(present.mean())
                if share < COMPLETENESS_THRESHOLD:
                    problems.append(Problem("error", name, key, Texts.incomplete(key, share),
                                            df.loc[~present, ROW].astype(int).tolist(), int((~present).sum()), ""))

    # dates after the as-of date: counted, never used
    if as_of is not None:
        cutoff = as_of.normalize() + pd.Timedelta(days=1)
        for name, df in tables.items():
            dcol = TABLES[name].date_column
            if dcol and dcol in df:
                late = df[dcol] >= cutoff
                if late.any():
                    problems.append(Problem("warning", name, dcol, Texts.after_as_of(as_of), df.loc[late, ROW].astype(int).tolist(),
                                            int(late.sum()), df.loc[late, dcol].iloc[0]))
    return tables


def parse_as_of(value, what: str = "--as-of") -> pd.Timestamp:
    """An as-of date given by a user, or a clear error (``2026-02-30`` is not a date)."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        ts = None
    if ts is None or pd.isna(ts):
        raise SegmentError(f"error: {what} {value!r} is not a date; write it as YYYY-MM-DD (for example 2026-09-30)")
    return ts


def _raise_errors(report: pd.DataFrame, config: DataConfig, path: Path, strict: bool) -> None:
    if strict and (report["severity"] == "error").any():
        # name the files too: the report's rows are counted in each table's own source
        sources = "; ".join(f"{n}: {src.path}" for n, src in config.tables.items() if src.path)
        raise DataError(report, source=f"{path}" + (f" ({sources})" if sources else ""))


def load_data(path: str | Path, as_of: str | date | pd.Timestamp | None = None, *, strict: bool = True) -> Loaded:
    """Load and validate every table of the data config at ``path``.

    Raises ``DataError`` (with the full report) when any error is found and ``strict`` is true;
    otherwise returns the tables (declared drops applied, ``_row`` removed) and the report.

    The tables are pandas frames (:class:`segment.io.Tables`), or, with ``storage: duckdb`` (or
    ``auto`` and a big Parquet/CSV source), a :class:`segment.store.DuckTables` kept in a DuckDB file:
    the same checks, the same report."""
    path = Path(path)
    config = read_data_config(path)
    as_of_ts = parse_as_of(as_of, "--as-of") if as_of is not None else None  # before reading any table
    problems: list[Problem] = []
    if as_of_ts is None and config.as_of is not None:
        as_of_ts = pd.Timestamp(config.as_of)
    from . import store

    if store.choose(path, config) == "duckdb":
        kept = store.load(path, config, as_of_ts, problems)
        report = report_frame(problems)
        _raise_errors(report, config, path, strict)
        return Loaded(kept, report, config, path)
    tables: dict[str, pd.DataFrame] = {}
    for name, src in config.tables.items():
        df = read_table(path, name, src, problems)
        if df is not None:
            tables[name] = df
    if "transactions" in tables:
        tables = check(tables, config, as_of_ts, problems)
    report = report_frame(problems)
    _raise_errors(report, config, path, strict)
    clean = {n: df.drop(columns=[ROW, DUP], errors="ignore").reset_index(drop=True) for n, df in tables.items()}
    return Loaded(Tables(**clean) if "transactions" in clean else None, report, config, path)


def load_table(path: str | Path, name: str) -> pd.DataFrame | None:
    """One table of the data config, read and checked on its own (its columns and values, not the
    cross-table rules): what `segment review export` needs from the customers table without reading
    50 M transaction lines again. None when the config has no such table; ``DataError`` on errors."""
    path = Path(path)
    config = read_data_config(path)
    src = config.tables.get(name)
    if src is None:
        return None
    problems: list[Problem] = []
    df = read_table(path, name, src, problems)
    report = report_frame(problems)
    _raise_errors(report, config, path, strict=True)
    return None if df is None else df.drop(columns=[ROW, DUP], errors="ignore").reset_index(drop=True)
