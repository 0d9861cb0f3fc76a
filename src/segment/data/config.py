"""The data config (DATA.yaml): per table a source (a CSV / Parquet / Excel file, or a SQL query against a DuckDB file or any SQLAlchemy URL), how its columns map onto the contract, its date format, time zone and amount unit; the engine and storage.

Public: DataConfig, TableSource, SqlSource, SparkOptions, IndicatorFile, read_data_config, read_only_query,
DROPPABLE, ROW.
Reads: the data config (and the indicators file it names). Writes: nothing.

Every source becomes a DuckDB relation (:mod:`segment.data.rules` casts and checks it there, once, in SQL);
:mod:`segment.data.sources` reads what DuckDB cannot scan itself.
"""
from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from segment.data.contract import TABLE_NAMES, TABLES, with_fields
from segment.errors import ConfigError
from segment.features.declared import Declared, DeclaredIndicator, FieldSpec
from segment.features.registry import INDICATORS
from segment.plumbing.yamlfile import StrictLoader, load_params, no_duplicate_keys, pydantic_error, read_yaml

ROW = "_row"  # 1-based data-row number in the source (header excluded), kept for error messages

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
    fields: dict[str, FieldSpec] = Field(default_factory=dict, description="extra columns: name → {type, unit, "
                                         "meaning}, validated like the contract's (see segment.features.declared)")

    def contract(self, table: str):
        """The contract's table with this source's declared ``fields:`` after its columns."""
        return with_fields(TABLES[table], tuple(spec.column(n) for n, spec in self.fields.items()))

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
    tables: dict[Literal[TABLE_NAMES], TableSource]  # type: ignore[valid-type]
    indicators: dict[str, DeclaredIndicator] = Field(
        default_factory=dict, description="declared indicators (segment.features.declared); in the file, also the "
        "path of a YAML file holding them under `indicators:`, relative to the data config (read_data_config)")
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


    #: the file the declared indicators were read from (``indicators: <path>``), for the reports' fingerprint
    _indicators_file: Path | None = PrivateAttr(None)

    @property
    def indicators_file(self) -> Path | None:
        return self._indicators_file

    def declared(self, path: str | Path = "the data config") -> Declared:
        """The declared fields and indicators, their names checked (ConfigError naming the key: in the
        indicators file when they come from one)."""
        name_ok = re.compile(r"^[a-z_][a-z0-9_]*$")
        fields = {}
        for table, src in self.tables.items():
            for name, spec in src.fields.items():
                key = f"tables.{table}.fields.{name}"
                if not name_ok.match(name):
                    raise ConfigError(path, key, f"{name!r} is not a usable name", "write lower-case letters, digits "
                                      "and _ (a source column of another name is mapped with `columns:`)")
                if name in TABLES[table].by_name:
                    raise ConfigError(path, key, f"{name} is already a contract column of {table}",
                                      "leave it out of `fields:`: the contract declares it (docs/data_contract.md)")
                if table == "customers" and name in INDICATORS:
                    raise ConfigError(path, key, f"{name} is the name of a built-in indicator",
                                      "choose another name (`segment indicators` lists the built-ins)")
            fields[table] = tuple(spec.column(n) for n, spec in src.fields.items())
        customer_fields = set(self.tables["customers"].fields) if "customers" in self.tables else set()
        indicators = self.indicators
        where = self._indicators_file or path  # the file the indicators were written in
        for name, ind in indicators.items():
            key = f"indicators.{name}"
            if not name_ok.match(name):
                raise ConfigError(where, key, f"{name!r} is not a usable name", "write lower-case letters, digits and _")
            if name in INDICATORS or name in customer_fields:
                raise ConfigError(where, key, f"{name} is already " + ("a built-in indicator" if name in INDICATORS
                                  else "a declared customers field"), "choose another name")
            table = "measures" if ind.measure is not None else ind.table
            if table is not None and table not in self.tables:
                raise ConfigError(where, key, f"reads the {table} table, which `tables:` does not load",
                                  f"add `tables.{table}` (docs/data_contract.md) or remove the indicator")
            if ind.column is not None and ind.table not in (None, "measures") and \
                    ind.column not in TABLES[ind.table].by_name and ind.column not in self.tables[ind.table].fields:
                raise ConfigError(where, key, f"the {ind.table} table has no column {ind.column!r}",
                                  f"name a contract column or one declared under tables.{ind.table}.fields")
            unknown = sorted(ind.reads() - set(INDICATORS) - set(indicators) - customer_fields)
            if unknown:
                raise ConfigError(where, f"{key}.expr", f"reads {', '.join(unknown)}, which is neither a built-in "
                                  "indicator nor a declared one", "`segment indicators --data DATA.yaml` lists the names")
        return Declared(fields={t: c for t, c in fields.items() if c}, indicators=dict(indicators))


class IndicatorFile(BaseModel):
    """A YAML file of declared indicators, named by a data config's ``indicators:``."""

    model_config = ConfigDict(extra="forbid")
    indicators: dict[str, DeclaredIndicator]


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, no_duplicate_keys)


def read_data_config(path: str | Path) -> DataConfig:
    """The data config at ``path``, validated; ``indicators: <path>`` read from that file (relative to the
    config), its errors named by that file."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(path, None, "expected a mapping with a `tables:` key", "see the README's data config example")
    file = None
    if isinstance(raw.get("indicators"), str):
        file = Path(os.path.normpath(Path(path).parent / raw["indicators"]))
        if not file.is_file():
            raise ConfigError(path, "indicators", f"the indicators file {file} does not exist",
                              "give the path of a YAML file with an `indicators:` mapping, relative to the data config")
        raw = {**raw, "indicators": {}}
    try:
        config = DataConfig.model_validate(raw)
    except ValidationError as e:
        raise pydantic_error(path, e) from None
    if file is not None:
        config._indicators_file = file
        config.indicators = load_params(file, IndicatorFile, "expected a mapping with an `indicators:` key",
                                        "see segment.features.declared's docstring").indicators
    config.declared(path)
    return config
