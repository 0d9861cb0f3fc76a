"""Each source as a raw DuckDB relation with its line numbers: Parquet and CSV scanned by DuckDB, other sources read into a frame first.

Public: RESERVED, unreserved, source_frame, raw_relation, check_file, explain_csv.
Reads: the sources. Writes: raw_<table> relations in the database.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segment.data.config import TableSource
from segment.data.database import (
    duckdb_encoding,
    scanned_by_duckdb,
    source_file,
    sql_text,
)
from segment.data.sources import csv_chunks, read_error, read_frame
from segment.errors import ConfigError, SegmentError
from segment.plumbing.sql import DUCKDB

#: the columns segment adds to every table it reads (the line number, the line hash): a source column

#: of such a name is read as ``<name> (source)``, so that neither hides the other
RESERVED = ("_row_", "_hash_", "_mid_")


def unreserved(column: str) -> str:
    """A source column's name in the raw relation: itself, or ``<name> (source)`` for a reserved one."""
    return f"{column} (source)" if column in RESERVED else column


def source_frame(config_path: Path, name: str, src: TableSource) -> tuple[pd.DataFrame, str, dict[str, str]]:
    """A source no engine scans itself (SQL, Excel, CSV in another encoding) read on the driver: the
    frame with ``_row_`` (its line number) first, a label, and the time zones of zoned timestamp columns."""
    path, fmt = source_file(config_path, src)
    if path is not None and fmt == "csv":
        check_file(config_path, name, src, path)
    frame, label = read_frame(config_path, name, src)
    zones = {str(c): str(t.tz) for c, t in frame.dtypes.items() if getattr(t, "tz", None) is not None}
    frame = frame.reset_index(drop=True)
    frame.columns = [unreserved(str(c)) for c in frame.columns]
    frame.insert(0, "_row_", np.arange(1, len(frame) + 1, dtype="int64"))
    return frame, label, zones


def raw_relation(con, config_path: Path, name: str, src: TableSource
                  ) -> tuple[str, list[tuple[str, str, str]], str, dict[str, str]]:
    """Create ``raw_<name>`` with a 1-based ``_row_`` column: a view over a Parquet file, a table for a
    CSV file or a frame (:func:`segment.data.sources.read_frame`). Returns its name, the source's columns
    (cleaned name, name in the source, DuckDB type), a label, and the time zones of zoned timestamp
    columns (DuckDB holds them as instants; the wall-clock time where they were recorded is kept)."""
    import duckdb

    raw = f"raw_{name}"
    if not scanned_by_duckdb(config_path, src):  # SQL, Excel, CSV in another encoding
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

    path, fmt = source_file(config_path, src)
    check_file(config_path, name, src, path)
    label = str(path)
    if fmt == "csv":  # the first lines through pandas: an encoding, an empty file or a ragged line gets its exact message
        explain_csv(config_path, name, src, path, nrows=1000)
    try:
        if fmt == "parquet":
            scan = f"read_parquet({sql_text(str(path))}, file_row_number = true)"
            names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_text(str(path))})").fetchall()]
            if "file_row_number" in names:
                raise SegmentError(f"{path}: a column is named `file_row_number`, the name DuckDB gives the line "
                                   f"number of a Parquet file; rename it in the source (table `{name}`)")
            con.execute(f"CREATE OR REPLACE VIEW {raw} AS SELECT {_source_columns(names)}, "
                        f"file_row_number + 1 AS _row_ FROM {scan}")
        else:
            enc = duckdb_encoding(src.encoding)
            con.execute("SET preserve_insertion_order = true")  # rowid = the line's position in the file
            con.execute(f"CREATE OR REPLACE TABLE {raw}_text AS SELECT * FROM read_csv({sql_text(str(path))}, "
                        f"all_varchar = true, header = true, delim = {sql_text(src.delimiter)}, quote = '\"', "
                        f"escape = '\"', encoding = {sql_text(enc)}, null_padding = false)")
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


def is_nested(typ: str) -> bool:
    """A DuckDB (or Spark) type holding several values per row: LIST, ARRAY, STRUCT, MAP, UNION."""
    t = str(typ).upper()
    return t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION", "LIST", "ARRAY<"))


def named_twice(config_path: Path, src: TableSource) -> list[str]:
    """Column names a CSV source's header line holds more than once (readers would rename or drop the
    second silently)."""
    path, fmt = source_file(config_path, src)
    if path is None or fmt != "csv":
        return []
    try:
        first = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, encoding=src.encoding,
                            sep=src.delimiter).iloc[0].tolist()
    except Exception:  # unreadable: the reader reports it in its own words
        return []
    names = [str(x).lstrip("\ufeff").strip() for x in first]
    return sorted({n for n in names if n and names.count(n) > 1})
