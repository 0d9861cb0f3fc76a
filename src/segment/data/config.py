"""Loading tables through a data config (DATA.yaml) onto the contract.

A data config names, per table, a source (a CSV / Parquet / Excel file, or a SQL query against a
DuckDB file or any SQLAlchemy URL), how its columns map onto the contract, its date format and the
unit its amounts are kept in. Every source becomes a DuckDB relation (:mod:`segment.data.store` casts
and checks it there, once, in SQL); this module holds the config's models, the validation texts and
the readers for what DuckDB cannot scan itself (Excel workbooks, SQL queries, CSV files in encodings
other than UTF-8/UTF-16/Latin-1), which hand it a pandas frame.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from segment.data.contract import COMPLETENESS_THRESHOLD, Table
from segment.errors import ConfigError, SegmentError

ROW = "_row"  # 1-based data-row number in the source (header excluded), kept for error messages


# --------------------------------------------------------------------------------------------
# the data config
# --------------------------------------------------------------------------------------------

#: quirks a data config may declare to be dropped (with a warning) instead of failing validation
DROPPABLE = ("missing_customer_id", "duplicate_lines", "unknown_customers", "unparseable_rows")


_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_SQL_STRING = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_SQL_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|INTO)\b", re.I)  # data-modifying CTEs, SELECT … INTO


def read_only_query(query: str) -> str:
    """A source query must be one statement that only reads (SELECT / WITH … SELECT / VALUES / TABLE):
    segment never changes a source. Outside string literals and comments it may not hold a second
    statement, nor INSERT / UPDATE / DELETE / MERGE (a data-modifying CTE) or INTO (SELECT … INTO
    creates a table). The connection is read-only too where the driver allows (DuckDB, SQLite,
    PostgreSQL) and is always rolled back."""
    bare = _SQL_STRING.sub("''", _SQL_COMMENT.sub(" ", query)).strip().rstrip(";").strip()
    if ";" in bare:
        raise ValueError("must be one statement (no `;` between statements): segment only reads the source")
    first = re.match(r"\(*\s*([A-Za-z]+)", bare)
    if not first or first.group(1).upper() not in ("SELECT", "WITH", "VALUES", "TABLE", "FROM"):
        raise ValueError("must be a SELECT (or WITH … SELECT): segment only reads the source")
    hit = _SQL_WRITES.search(bare)
    if hit:
        raise ValueError(f"contains {hit.group(1).upper()}: segment only reads the source; write a plain SELECT")
    return query


class SqlSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(description="duckdb:///path/to/file.duckdb or an SQLAlchemy URL; ${VAR} is read from the environment")
    query: str = Field(description="the query to run (one SELECT; nothing that writes): its result columns are "
                                  "mapped like a file's")

    @field_validator("query")
    @classmethod
    def _reads_only(cls, v: str) -> str:
        return read_only_query(v)


def known_zone(v: str) -> str:
    """``v`` if it names an IANA time zone, else a ValueError saying what to write."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(v))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {v!r}; write an IANA name such as Asia/Shanghai, Europe/Berlin or "
                         "UTC") from None
    return str(v)


#: an IANA time-zone name, checked when a config is read
Zone = Annotated[str, AfterValidator(known_zone)]


class TableSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, description="file path, relative to the data config")
    sql: SqlSource | None = None
    format: Literal["csv", "parquet", "excel"] | None = Field(None, description="default: from the file suffix")
    encoding: str = "utf-8"
    delimiter: str = ","
    sheet: str | int = 0
    header_row: int = Field(1, ge=1, description="Excel: the row holding the column names")
    columns: dict[str, str] = Field(default_factory=dict, description="source column name → contract name")
    date_format: str | None = Field(None, description="strftime format of the date columns; default: ISO")
    amount_unit: float = Field(1.0, gt=0, description="multiply currency columns by this (万元 → 10000)")
    timezone: Zone | None = Field(None, description="IANA zone (Asia/Shanghai) in which zone-aware timestamps "
                                 "(instants) are read as wall-clock times; default: the data config's "
                                 "`timezone:`, else the zone the source records (Parquet, Excel) or shows "
                                 "(PostgreSQL's session TimeZone)")
    drop: list[Literal[DROPPABLE]] = Field(default_factory=list)  # type: ignore[valid-type]

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown encoding {v!r}; write one Python knows, e.g. utf-8, utf-8-sig, gbk, gb18030, "
                             "latin-1") from None
        return v

    @field_validator("date_format")
    @classmethod
    def _readable_format(cls, v: str | None) -> str | None:
        if v is None:
            return v
        import duckdb

        try:
            duckdb.sql("SELECT try_strptime('2026-01-01', ?)", params=[v]).fetchall()
        except duckdb.Error as e:
            raise ValueError(f"{v!r} is not a strftime format ({str(e).splitlines()[0].split(': ', 1)[-1]}); "
                             "write e.g. %Y-%m-%d or %d/%m/%Y %H:%M") from None
        return v

    @field_validator("columns")
    @classmethod
    def _one_source_per_column(cls, v: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for src, target in v.items():
            if target in seen:
                raise ValueError(f"`{seen[target]}` and `{src}` both map onto `{target}`; keep one of them")
            seen[target] = src
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "TableSource":
        if (self.path is None) == (self.sql is None):
            raise ValueError("give exactly one of `path` (a file) or `sql` (url + query)")
        return self


class SparkOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    master: str = Field("local[*]", description="Spark master URL: local[*], spark://host:7077, yarn, k8s://…")
    conf: dict[str, str] = Field(default_factory=dict, description="extra Spark settings (spark.executor.memory …)")


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    as_of: date | None = Field(None, description="the data's end: default as-of date for commands")
    tables: dict[Literal["customers", "transactions", "interactions", "opportunities"], TableSource]
    engine: Literal["duckdb", "spark"] = Field("duckdb", description="where the point-in-time features run "
                                               "(segment.data.spark): DuckDB on this machine, or Spark")
    spark: SparkOptions | None = Field(None, description="engine: spark — master URL and settings")
    storage: Literal["auto", "memory", "disk", "duckdb"] = Field(
        "auto", description="where DuckDB keeps the validated tables (segment.data.store): memory, disk (a database "
        "file in a temporary folder: data bigger than memory; `duckdb` is its former name), or auto (disk for "
        "Parquet/CSV transactions of 10 M lines or 1 GiB or more)")
    timezone: Zone | None = Field(None, description="IANA zone for every table's zone-aware timestamps (a "
                                  "table's own `timezone:` wins)")
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$", description="ISO 4217 code of the amounts (after "
                          "amount_unit): how the reports write money — 元, 万元 and 亿元 for CNY, $ 1.2M for USD")

    @model_validator(mode="after")
    def _transactions(self) -> "DataConfig":
        if "transactions" not in self.tables:
            raise ValueError("`tables.transactions` is missing: it is the one mandatory table")
        if self.timezone is not None:  # the config's zone is each table's unless it declares its own
            for src in self.tables.values():
                if src.timezone is None:
                    src.timezone = self.timezone
        return self


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader (no Python tags) that also refuses duplicate keys instead of keeping the last,
    more than ``MAX_ALIASES`` aliases (an alias bomb expands exponentially) and nesting deeper than
    ``MAX_DEPTH`` levels (no params file needs either)."""

    MAX_ALIASES, MAX_DEPTH = 50, 40

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > self.MAX_ALIASES:
                raise yaml.composer.ComposerError(None, None, f"more than {self.MAX_ALIASES} aliases (*name)",
                                                  self.peek_event().start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > self.MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {self.MAX_DEPTH} levels deep",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1}); keep one", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def read_yaml(path: str | Path) -> Any:
    """Read a params file with a safe loader; a YAML error names the file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, None, "file not found", "check the path (relative paths are from the current folder)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(path, None, f"not UTF-8 text ({e.reason} at byte {e.start})", "save the file as UTF-8") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        if "duplicate key" in problem:
            fix = "keep one of the two keys (YAML keeps only the last, silently)"
        elif "\\t" in problem or "tab" in problem:
            fix = "indent with spaces, not tabs"
        elif "aliases" in problem or "levels deep" in problem:
            fix = "write the values out: a params file needs neither many aliases nor deep nesting"
        elif "could not determine a constructor" in problem:
            fix = "remove the `!!` tag: params files hold plain values only"
        else:
            fix = "fix the YAML syntax at that line"
        raise ConfigError(path, None, f"invalid YAML at {where}{problem}", fix) from None
    except (ValueError, OverflowError) as e:  # the timestamp constructor: `as_of: 2026-02-30`
        where = ""
        try:
            for node in _scalar_nodes(yaml.compose(text, Loader=yaml.SafeLoader)):
                if node.tag == "tag:yaml.org,2002:timestamp":
                    try:
                        yaml.SafeLoader("").construct_yaml_timestamp(node)
                    except (ValueError, OverflowError):
                        where = f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}: {node.value!r}: "
                        break
        except yaml.YAMLError:
            pass
        raise ConfigError(path, None, f"invalid value at {where}{e}", "write a date that exists, as YYYY-MM-DD") from None


def _scalar_nodes(node):
    if isinstance(node, yaml.ScalarNode):
        yield node
    elif isinstance(node, yaml.SequenceNode):
        for n in node.value:
            yield from _scalar_nodes(n)
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield from _scalar_nodes(k)
            yield from _scalar_nodes(v)


def pydantic_error(path: str | Path, err: ValidationError) -> ConfigError:
    """The first pydantic error as a ConfigError naming the key path."""
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or None
    msg = first["msg"].removeprefix("Value error, ")
    # model-level checks write "key.path: problem"; lift the key path out
    m = re.match(r"^([A-Za-z0-9_.\-]+): (.*)$", msg, re.S)
    if m and first["type"] == "value_error":
        key = ".".join(filter(None, [key, m.group(1)]))
        msg = m.group(2)
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
        fix = "remove it or check its spelling"
    elif first["type"] == "literal_error":
        fix = msg.replace("Input should be", "write one of")
        msg = f"invalid value {first.get('input')!r}"
    elif first["type"] == "missing":
        fix = "add it (the README's data config and scheme tables list every key)"
    elif first["type"] != "value_error":   # greater_than, float_parsing …: pydantic says what is wrong, not what to do
        fix = "correct the value at that key (the README describes every key)"
    else:
        fix = None
    if key:
        key = key.replace(".[key]", "")   # a bad mapping key: `tables.orders`, not `tables.orders.[key]`
    more = len(err.errors()) - 1
    if more:
        msg += f" (and {more} more problem(s) in this file)"
    return ConfigError(path, key, msg, fix)


def load_params(path: str | Path, model, problem: str, fix: str, empty_ok: bool = False):
    """A params file validated by a pydantic ``model``; every error names the file and the key path.
    ``problem`` / ``fix``: the message when the file is not a mapping (an empty file reads as {} when
    ``empty_ok``)."""
    raw = read_yaml(path)
    if raw is None and empty_ok:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path, None, problem, fix)
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise pydantic_error(path, e) from None


def read_data_config(path: str | Path) -> DataConfig:
    return load_params(path, DataConfig, "expected a mapping with a `tables:` key", "see the README's data config example")


# --------------------------------------------------------------------------------------------
# reading sources
# --------------------------------------------------------------------------------------------

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


def _read_source(config_path: Path, name: str, src: TableSource) -> tuple[pd.DataFrame, str]:
    """The raw source as a DataFrame (text columns as str where the format allows) and a label."""
    key = f"tables.{name}"
    if src.sql is not None:
        url = _expand_env(config_path, f"{key}.sql.url", src.sql.url)
        label = f"{name} (SQL query)"
        try:
            if url.startswith("duckdb:///"):
                import duckdb

                db = (config_path.parent / url[len("duckdb:///"):]).resolve()
                if not db.is_file():
                    raise ConfigError(config_path, f"{key}.sql.url", f"DuckDB file {db} not found", "check the path")
                with duckdb.connect(str(db), read_only=True) as con:
                    return con.execute(src.sql.query).df(), label
            import sqlalchemy

            if url.startswith("sqlite:///") and "mode=" not in url:  # the file opened read-only
                url = "sqlite:///file:" + url[len("sqlite:///"):] + ("&" if "?" in url else "?") + "mode=ro&uri=true"
            engine = sqlalchemy.create_engine(url)
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


# --------------------------------------------------------------------------------------------
# coercion onto the contract
# --------------------------------------------------------------------------------------------

#: a currency value beyond this (after amount_unit) is an error, not a number to grade with: 1e12 is a
#: trillion — more than any one customer line in any currency; it catches unit slips (万 twice, 1e15 typos)
IMPLAUSIBLE_AMOUNT = 1e12

#: a trailing UTC offset of an ISO timestamp (``Z``, ``+08:00``, ``-0500``): dropped, so that a time
#: is the wall-clock time where it was recorded — as zoned Parquet timestamps are read — and a file
#: mixing offsets still parses (segment.data.store applies the same pattern in DuckDB)
UTC_OFFSET = r"^(.*\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"

#: dates segment can hold (pandas' nanosecond range, whole days); outside it a date is an error
DATE_MIN, DATE_MAX = pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-11")
DATE_RANGE_PROBLEM = "date outside 1677-09-22 … 2262-04-11 (a placeholder such as 0001-01-01?); fix the source value"

TRUE_TEXTS = {"true", "t", "yes", "y", "1", "是", "x"}
FALSE_TEXTS = {"false", "f", "no", "n", "0", "否", ""}


@dataclass
class Problem:
    severity: str  # "error" or "warning"
    table: str
    column: str
    problem: str
    rows: list[int]
    count: int
    example: Any
    check: str  # the rule's short machine-readable name (as pandera's failure `check`): not_a_number, …


class Texts:
    """What validation says, in one place (the checks themselves are SQL in :mod:`segment.data.store`)."""

    NOT_A_NUMBER = ("not a number (write plain digits such as 1200.5: no thousands separators, currency signs or "
                    "units — declare `amount_unit:` for 万)")
    NOT_FINITE = "not a finite number; fix the source value"
    IMPLAUSIBLE = (f"implausible amount (beyond ±{IMPLAUSIBLE_AMOUNT:.0e} after amount_unit); check the unit, the "
                   "decimal separator or a stray exponent in the source")
    NOT_WHOLE = "not a whole number"
    NOT_BOOL = "not true/false"
    DATE_RANGE = DATE_RANGE_PROBLEM
    UNPARSEABLE_DROPPED = " — rows dropped (drop: unparseable_rows)"
    MISSING_IDS = "rows without a customer_id"
    DUPLICATE_LINES = "duplicate transaction lines (every column equal to an earlier line)"
    UNKNOWN_CUSTOMERS = "customer_id not in the customers table"
    RETURNS = "negative amounts (returns / cancellations): kept, they reduce revenue"
    ZEROS = "zero amounts: kept, but not purchases: no order, no revenue (a purchase is a line with amount > 0)"
    OFF_SCALE = ("scores outside the contract's 0–10 scale (a 0–100 or 1–5 survey?): rescale them to 0–10 in the "
                 "source; the satisfaction bands read 0–10")

    @staticmethod
    def share_range(col: str) -> str:
        return f"shares above 1 or below 0: `{col}` is a fraction (0.35 for 35%); write fractions in the source"

    @staticmethod
    def percent_like(col: str, n: int, known: int) -> str:
        return (f"`{col}` is above 1 (100% a year) on {n:,} of {known:,} rows: these look like percents (12 for 12%); "
                "write fractions (0.12) in the source")

    @staticmethod
    def small_amounts(share: float) -> str:
        return (f"{share:.0%} of the purchase lines are below 10 currency units: if the source keeps amounts in 万元 "
                "(or thousands), declare `amount_unit: 10000` (or 1000) for this table")

    @staticmethod
    def unparseable_date(date_format: str | None) -> str:
        return f"unparseable date (expected {date_format or 'ISO YYYY-MM-DD'})"

    @staticmethod
    def unknown_value(values) -> str:
        return f"unknown value (allowed: {', '.join(values)})"

    @staticmethod
    def no_rows(label: str, name: str) -> str:
        return (f"no rows in {label}: a header line but no data; export the rows too"
                + ("" if name == "transactions" else f", or remove the optional `tables.{name}`"))

    @staticmethod
    def declared(problem: str, name: str, kind: str, dropped: bool) -> tuple[str, str]:
        """(severity, text) of a quirk ``drop:`` may declare: dropped with a warning, or an error saying so."""
        if dropped:
            return "warning", problem + f" — dropped (drop: {kind})"
        return "error", problem + f"; fix the source or add `{kind}` to tables.{name}.drop"

    @staticmethod
    def duplicate_ids(key: str, ids: int, rows: int, conflicting: bool) -> str:
        return (f"duplicate {key} ({ids} ids on {rows} rows" + (", with conflicting attributes" if conflicting else "")
                + "); keep one row per id")

    @staticmethod
    def incomplete(key: str, share: float) -> str:
        return (f"only {share:.1%} complete (at least {COMPLETENESS_THRESHOLD:.0%} needed, SEEDS step 3); fill the "
                "field in the source" + (" or add `missing_customer_id` to drop:" if key == "customer_id" else ""))

    @staticmethod
    def after_as_of(as_of) -> str:
        return f"dated after the as-of date {as_of.date()}: counted here, never used in features"


def map_columns(df: pd.DataFrame, table: Table, src: TableSource, config_path: Path, label: str,
                problems: list[Problem]) -> pd.DataFrame | None:
    """Rename source columns to the contract's; a missing required column is a Problem (returns None)."""
    mapping = dict(src.columns)
    missing_src = [s for s in mapping if s not in df.columns]
    for s in missing_src:
        close = _close_match(s, df.columns)
        problems.append(Problem("error", table.name, mapping[s],
                                f"mapped source column {s!r} not in {label}"
                                + (f" (did you mean {close!r}?)" if close else
                                   f"; it has: {', '.join(str(c) for c in df.columns[:13] if c != ROW)}"),
                                [], 0, "", "mapped_column_missing"))
    unknown = [c for c in mapping.values() if c not in table.by_name]
    for c in unknown:
        problems.append(Problem("error", table.name, c, f"`columns:` maps onto {c!r}, which the contract's "
                                f"{table.name} table does not have (see docs/data_contract.md)", [], 0, "",
                                "mapped_onto_unknown_column"))
    df = df.rename(columns={s: c for s, c in mapping.items() if s in df.columns})
    if table.name == "transactions" and "amount" not in df.columns and {"quantity", "unit_price"} <= set(df.columns):
        df = df.assign(amount=None)  # derived after coercion
    missing = [c for c in table.required if c not in df.columns]
    cols = [str(x) for x in df.columns if x != ROW]
    hint = ""
    if len(cols) == 1 and any(d in cols[0] for d in (";", "\t", "|")):
        d = next(d for d in (";", "\t", "|") if d in cols[0])
        hint = f" (the header {cols[0][:40]!r} is one column: the file looks {d!r}-separated; set `delimiter: {d!r}`)"
    elif cols and sum(x.startswith("Unnamed:") for x in cols) >= len(cols) / 2:
        hint = (" (most header cells are empty: a title or merged cells above the header? set `header_row:` "
                "to the row number holding the column names)")
    for c in missing:
        close = _close_match(c, [x for x in df.columns if x not in table.by_name])
        problems.append(Problem("error", table.name, c,
                                f"required column missing from {label}" + hint
                                + (f"; map it with `columns: {{{close!r}: {c}}}`" if close else
                                   f"; add it or map a source column onto it under tables.{table.name}.columns"),
                                [], 0, "", "required_column_missing"))
    if missing or missing_src or unknown:
        return None
    return df


def _close_match(name: str, candidates) -> str | None:
    import difflib

    cands = [str(c) for c in candidates]
    norm = {c.lower().replace(" ", "_").replace("-", "_"): c for c in cands}
    key = name.lower().replace(" ", "_")
    if key in norm:
        return norm[key]
    hit = difflib.get_close_matches(key, list(norm), n=1, cutoff=0.75)
    return norm[hit[0]] if hit else None
