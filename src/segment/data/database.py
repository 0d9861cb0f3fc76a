"""Where DuckDB keeps the tables: memory or a database file in a temporary folder (the `storage:` choice), the connection and its settings, the folder's cleanup.

Public: choose, connect, new_folder, close_database, table_exists, sql_name, sql_text, STORAGES.
Reads: the transactions source's size (choose). Writes: a temporary folder under SEGMENT_TMPDIR.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from segment.data.config import DataConfig, TableSource
from segment.data.sources import format_of
from segment.errors import SegmentError
from segment.plumbing.atomic import remove_orphans
from segment.plumbing.signals import track

#: ``storage: auto`` keeps tables on disk when the transactions source has at least this many lines

#: (Parquet: from its metadata) or, for CSV, is at least ``AUTO_CSV_BYTES`` big (≈ 10 M lines). Below,

#: memory is faster: the 100k demo (4.5 M lines) loads and snapshots in 9.5 s / 1.1 GiB in memory

#: against 14.8 s / 0.7 GiB on disk (tables ≈ 250 bytes a line in memory)
AUTO_ROWS = 10_000_000
AUTO_CSV_BYTES = 2**30
STORAGES = ("auto", "memory", "disk")


def sql_name(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def sql_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def source_file(config_path: Path, src: TableSource) -> tuple[Path | None, str | None]:
    if src.path is None:
        return None, None
    try:
        path = (config_path.parent / src.path).resolve()
    except (RuntimeError, OSError) as e:  # a symlink loop
        raise SegmentError(f"{config_path}: {src.path}: {e}; point `path:` at the file itself") from None
    return path, src.format or format_of(path)


def duckdb_encoding(encoding: str) -> str | None:
    e = encoding.lower().replace("_", "-")
    return {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8", "latin-1": "latin-1", "latin1": "latin-1",
            "iso-8859-1": "latin-1", "utf-16": "utf-16"}.get(e)


def scanned_by_duckdb(config_path: Path, src: TableSource) -> bool:
    """A Parquet file, or a CSV file in an encoding DuckDB reads: scanned without pandas."""
    path, fmt = source_file(config_path, src)
    return fmt == "parquet" or (fmt == "csv" and duckdb_encoding(src.encoding) is not None)


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
    path, fmt = source_file(config_path, src)
    if not scanned_by_duckdb(config_path, src):
        return "memory"  # a frame read into Python: it already fits in memory
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return "disk" if pq.ParquetFile(path).metadata.num_rows >= AUTO_ROWS else "memory"
        return "disk" if path.stat().st_size >= AUTO_CSV_BYTES else "memory"
    except Exception:  # unreadable: reading it gives the precise error
        return "memory"


class FolderOwner:
    """What the temporary folder's finalizer watches while the tables are being loaded."""


def close_database(con, folder: Path) -> None:
    try:
        if con is not None:
            con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def tmp_base() -> Path:
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


def new_folder() -> Path:
    """A temporary folder of this process for the database file (disk) and spills (both)."""
    base = tmp_base()

    remove_orphans(base, "segment-tables-")  # what a killed run left (gigabytes at 50M lines)
    return Path(tempfile.mkdtemp(prefix=f"segment-tables-{os.getpid()}-", dir=base))


def connect(folder: Path, on_disk: bool = True):
    """A DuckDB database in ``folder`` (``on_disk``) or in memory, spilling into ``folder``."""
    import duckdb


    target = str(folder / "tables.duckdb") if on_disk else ":memory:"
    con = track(duckdb.connect(target, config={"preserve_insertion_order": False}))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET temp_directory = {sql_text(str(folder / 'spill'))}")
    for var, setting in (("SEGMENT_DUCKDB_MEMORY", "memory_limit"), ("SEGMENT_DUCKDB_THREADS", "threads")):
        value = os.environ.get(var)
        if not value:
            continue
        try:
            if setting == "threads" and not (value.isdigit() and int(value) >= 1):
                raise ValueError("not a whole number ≥ 1")
            con.execute(f"SET {setting} = {sql_text(value) if setting == 'memory_limit' else int(value)}")
        except (ValueError, duckdb.Error) as e:
            con.close()
            example = "4GB or 80%" if setting == "memory_limit" else "2"
            raise SegmentError(f"{var}={value!r} is not a valid DuckDB {setting} ({str(e).splitlines()[0]}); "
                               f"write for example {example}, or unset it") from None
    return con


def table_exists(con, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchone()[0])
