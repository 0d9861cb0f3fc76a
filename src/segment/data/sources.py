"""Reading the sources DuckDB cannot scan itself (Excel workbooks, SQL queries, CSV files in other encodings) into a frame, with the loader's own messages for what cannot be read.

Public: read_frame, duckdb_ready, read_error, csv_chunks, format_of.
Reads: the sources (files, databases). Writes: nothing.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from segment.data.config import TableSource, known_zone
from segment.errors import ConfigError, SegmentError

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(config_path: Path, key: str, value: str) -> str:
    def sub(m: re.Match) -> str:
        if m.group(1) not in os.environ:
            raise ConfigError(config_path, key, f"environment variable {m.group(1)} is not set",
                              f"export {m.group(1)}=... before running (credentials are never written in the config)")
        return os.environ[m.group(1)]

    return _ENV.sub(sub, value)


def read_frame(config_path: Path, name: str, src: TableSource, fmt: str | None = None) -> tuple[pd.DataFrame, str]:
    """A source DuckDB cannot scan itself — a SQL query, an Excel sheet, or a CSV file (``fmt="csv"``:
    encodings DuckDB does not read) — as a DataFrame whose columns DuckDB can hold
    (:func:`duckdb_ready`), and a label naming it in messages."""
    df, label = _read_source(config_path, name, src)
    return duckdb_ready(df), label


def duckdb_ready(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns (Excel cells, driver values) DuckDB can scan: a column of one Python type is
    left to pandas' inference; a mixed one becomes text as a person reads the cell — whole floats
    without ``.0`` (ids read as numbers), dates as ISO, booleans as true/false."""
    import datetime as dt
    from decimal import Decimal

    def text(v):
        if v is None or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (float, Decimal)) and v == v and float(v).is_integer() and abs(float(v)) < 1e18:
            return str(int(v))
        if isinstance(v, (pd.Timestamp, dt.datetime)):
            return pd.Timestamp(v).isoformat(sep=" ")
        if isinstance(v, (dt.date, dt.time)):
            return v.isoformat()
        if isinstance(v, bytes):
            return v.decode("utf-8", errors="replace")
        return str(v)

    out = {}
    for i, c in enumerate(df.columns):
        col = df.iloc[:, i]
        if col.dtype == object:
            kinds = {type(v) for v in col.dropna()}
            if kinds <= {str}:
                col = col.astype("string")
            elif kinds <= {int, float} or (len(kinds) == 1 and not kinds & {bool, bytes, Decimal, dt.time}):
                inferred = col.infer_objects() if len(kinds) == 1 else pd.to_numeric(col, errors="coerce")
                col = inferred if inferred.dtype != object else pd.Series([text(v) for v in col], index=col.index,
                                                                            dtype="string")
            else:
                col = pd.Series([text(v) for v in col], index=col.index, dtype="string")
        elif isinstance(col.dtype, pd.CategoricalDtype):
            col = col.astype("string")
        out[i] = col
    frame = pd.DataFrame(out)
    frame.columns = list(df.columns)
    return frame


def _in_zone(frame: pd.DataFrame, zone: str | None) -> pd.DataFrame:
    """Zone-aware columns of a query result shown in ``zone`` (pandas hands PostgreSQL's timestamptz
    over in UTC: a CRM in Asia/Shanghai would move 8 hours); ``zone`` None: as they came."""
    if zone is None:
        return frame
    try:
        known_zone(zone)
    except ValueError:
        return frame  # a zone Python does not know (a POSIX string): the declared `timezone:` decides
    for c in frame.columns:
        if getattr(frame[c].dtype, "tz", None) is not None:
            frame[c] = frame[c].dt.tz_convert(zone)
    return frame


#: the package to install for a database driver SQLAlchemy could not import (module name → pip name)
_DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "pg8000": "pg8000",
                    "pymysql": "PyMySQL", "MySQLdb": "mysqlclient", "mariadb": "mariadb", "pyodbc": "pyodbc",
                    "pymssql": "pymssql", "oracledb": "oracledb", "cx_Oracle": "cx-Oracle"}


def _driver_missing(config_path: Path, key: str, module: str, scheme: str) -> ConfigError:
    """The message for a database driver that is not installed: which package, and how to install it."""
    package = _DRIVER_PACKAGES.get(module, module)
    if module == "psycopg":
        fix = "pip install -e '.[postgres]' in the segment checkout (or pip install \"psycopg[binary]\")"
    else:
        fix = f"pip install \"{package}\" into segment's environment"
    return ConfigError(config_path, key, f"the database driver for {scheme}:// URLs is not installed (Python "
                                         f"module `{module}`, package {package})", fix)


def _sql_url(config_path: Path, key: str, url: str):
    """``url`` as the SQLAlchemy URL segment connects with: ``postgresql://`` and ``postgres://`` without a
    driver read with psycopg 3 (the ``postgres`` extra; psycopg2 when only that is installed); a SQLite
    file relative to the data config, opened read-only (``mode=ro``, whatever the URL says)."""
    from urllib.parse import quote

    import sqlalchemy

    try:
        u = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(config_path, key, "not a database URL", "write duckdb:///file.duckdb, sqlite:///file.db "
                          "(relative to the data config) or an SQLAlchemy URL such as "
                          "postgresql://${USER}:${PASSWORD}@host:5432/database") from None
    backend, _, driver = u.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if not driver:
            for driver in ("psycopg", "psycopg2"):
                try:
                    __import__(driver)
                    break
                except ImportError:
                    continue
            else:
                raise _driver_missing(config_path, key, "psycopg", backend)
        u = u.set(drivername=f"postgresql+{driver}")
    elif backend == "sqlite" and u.database not in (None, "", ":memory:"):
        written = u.database[len("file:"):] if u.database.startswith("file:") else u.database
        db = (config_path.parent / written).resolve()
        if not db.is_file():
            raise ConfigError(config_path, key, f"SQLite file {db} not found", "check the path (relative to the data "
                              "config; sqlite:////absolute/path for an absolute one)")
        u = u.set(database="file:" + quote(db.as_posix()), query={**u.query, "mode": "ro", "uri": "true"})
    return u


def _read_sql(config_path: Path, name: str, src: TableSource) -> tuple[pd.DataFrame, str]:
    """A SQL source's query result and its label. DuckDB files (relative to the data config) are opened
    read-only by DuckDB itself; any other URL through SQLAlchemy — SQLite read-only, PostgreSQL in a
    read-only transaction, every connection rolled back."""
    key = f"tables.{name}"
    url = _expand_env(config_path, f"{key}.sql.url", src.sql.url)
    label = f"{name} (SQL query)"
    try:
        if url.startswith("duckdb:///"):
            import duckdb

            db = (config_path.parent / url[len("duckdb:///"):]).resolve()
            if not db.is_file():
                raise ConfigError(config_path, f"{key}.sql.url", f"DuckDB file {db} not found",
                                  "check the path (relative to the data config; duckdb:////absolute/path for an "
                                  "absolute one)")
            with duckdb.connect(str(db), read_only=True) as con:
                return con.execute(src.sql.query).df(), label
        import sqlalchemy

        u = _sql_url(config_path, f"{key}.sql.url", url)
        try:
            engine = sqlalchemy.create_engine(u)
        except ImportError as e:  # the URL's driver (psycopg2, pymysql …) is not installed
            raise _driver_missing(config_path, f"{key}.sql.url", e.name or str(e), u.drivername) from None
        except sqlalchemy.exc.NoSuchModuleError:
            raise ConfigError(config_path, f"{key}.sql.url", f"SQLAlchemy knows no database {u.drivername!r}",
                              "check the URL's scheme (postgresql://, mysql+pymysql://, sqlite:///, duckdb:///) or "
                              "install the package providing that SQLAlchemy dialect") from None
        try:
            with engine.connect() as con:
                shown = None  # the zone the database shows its timestamps in
                if con.dialect.name == "postgresql":
                    con.exec_driver_sql("SET TRANSACTION READ ONLY")
                    shown = str(con.exec_driver_sql("SHOW TimeZone").scalar())
                try:
                    frame = pd.read_sql(sqlalchemy.text(src.sql.query), con)
                finally:
                    con.rollback()  # whatever the query did, nothing is committed
            return _in_zone(frame, shown), label
        finally:
            engine.dispose()
    except SegmentError:
        raise
    except Exception as e:  # driver errors: bad query, unreachable server, missing table
        raise ConfigError(config_path, f"{key}.sql", f"the query failed: {type(e).__name__}: {str(e).splitlines()[0]}",
                          "check the URL, credentials and query") from None


def _read_source(config_path: Path, name: str, src: TableSource) -> tuple[pd.DataFrame, str]:
    """The raw source as a DataFrame (text columns as str where the format allows) and a label."""
    key = f"tables.{name}"
    if src.sql is not None:
        return _read_sql(config_path, name, src)
    path = (config_path.parent / src.path).resolve()
    label = str(path)
    if not path.is_file():
        raise ConfigError(config_path, f"{key}.path", f"file {path} not found", "check the path (relative to the data config)")
    fmt = src.format or format_of(path)
    if fmt is None:
        raise ConfigError(config_path, f"{key}.format", f"cannot tell the format of {path.name}",
                          "add `format: csv`, `parquet` or `excel`")
    try:
        if fmt == "csv":
            df = csv_chunks(path, src)
        elif fmt == "parquet":
            df = pd.read_parquet(path)
        else:
            with pd.ExcelFile(path, engine=_excel_engine(path)) as book:
                names = [str(n) for n in book.sheet_names]
                if (src.sheet not in names) if isinstance(src.sheet, str) else not 0 <= src.sheet < len(names):
                    raise ConfigError(config_path, f"{key}.sheet", f"{path.name} has no sheet {src.sheet!r}; its sheets "
                                      f"are {', '.join(map(repr, names))}",
                                      "set `sheet:` to the name of the sheet holding the table (or its 0-based position)")
                df = pd.read_excel(book, sheet_name=src.sheet, header=src.header_row - 1, dtype=object)
            shown = names[src.sheet] if isinstance(src.sheet, int) else src.sheet
            label = f"{path} (sheet {shown!r}" + (f" of {', '.join(map(repr, names))}" if len(names) > 1 else "") + ")"
    except (UnicodeDecodeError, pd.errors.EmptyDataError, ValueError, OSError, EOFError, pd.errors.ParserError) as e:
        raise read_error(e, config_path, name, src, path, fmt) from None
    except SegmentError:
        raise
    except Exception as e:  # a reader's own error type (python-calamine: a broken workbook)
        if fmt != "excel":
            raise
        raise read_error(e, config_path, name, src, path, fmt) from None
    # a BOM the decoder kept (utf-8 declared for a utf-8-sig file read by another engine) must not hide a column
    df.columns = [str(c).lstrip("\ufeff").strip() if isinstance(c, str) else str(c) for c in df.columns]
    return df, label


def _excel_engine(path: Path) -> str | None:
    """python-calamine (Rust) reads .xlsx/.xlsm/.xls/.ods ~10× faster than openpyxl; pandas' default
    when it is not installed."""
    try:
        import python_calamine  # noqa: F401
    except ImportError:
        return None
    return "calamine"


def read_error(e: Exception, config_path: Path, name: str, src: TableSource, path: Path, fmt: str) -> SegmentError:
    """The message for a source file that cannot be read (encoding, empty, parser errors)."""
    key = f"tables.{name}"
    if isinstance(e, UnicodeDecodeError):
        return ConfigError(config_path, f"{key}.encoding", f"{path.name} is not {src.encoding} text ({e.reason})",
                           "set `encoding:` to the file's encoding (for example gbk or utf-8-sig)")
    if isinstance(e, pd.errors.EmptyDataError):
        return SegmentError(f"{path}: the file is empty; table `{name}` needs a header line and rows")
    if isinstance(e, EOFError) or "end-of-stream" in str(e) or "truncated" in str(e).lower():
        return SegmentError(f"{path}: the file ends early (a truncated or damaged download?): "
                            f"{str(e).splitlines()[0]}; fetch or export it again")
    return SegmentError(f"{path}: cannot read it as {fmt}: {str(e).splitlines()[0]}; "
                        f"check `tables.{name}` in {config_path} (format, delimiter, encoding, sheet, "
                        "header_row)")


def csv_chunks(path: Path, src: TableSource, chunksize: int | None = None, nrows: int | None = None):
    """``pandas.read_csv`` as the loader reads a CSV source (every value text; only blanks missing)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding=src.encoding,
                       sep=src.delimiter, skipinitialspace=False, chunksize=chunksize, nrows=nrows)


def format_of(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if ".csv" in suffixes or ".txt" in suffixes or ".tsv" in suffixes:
        return "csv"
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return "parquet"
    if suffixes and suffixes[-1] in (".xlsx", ".xlsm", ".xls"):
        return "excel"
    return None
