"""Indicators a company declares for its own data: customer fields, measures over the point-in-time facts table, windowed aggregates over any table with a filter, and expressions over other indicators — compiled into the snapshot's SQL (DuckDB and Spark).

Public: FieldSpec, DeclaredIndicator, Declared, NO_DECLARATIONS, AGGREGATES, HISTORY_COLUMNS, window_days, declared_sql.
Reads: nothing (the data config carries the declarations). Writes: nothing.

A data config declares them (``segment indicators --data DATA.yaml`` lists them with the built-ins)::

    tables:
      customers:
        path: customers.csv
        fields:                                   # extra columns, validated like the contract's
          four_elements: {type: bool, meaning: need, budget, timetable and decision makers known}
    indicators:                                   # or a path to a YAML file holding this mapping
      deposits:     {measure: deposits, unit: currency, meaning: deposit balance as of the date}
      deposits_avg: {measure: deposits, agg: mean, window: 90d}
      line_a_2y:    {table: transactions, column: amount, agg: sum, window: 730d,
                     where: "product_line == 'A'"}
      assets:       {expr: "deposits + loans + investments", unit: currency}

Semantics, with ``c`` the snapshot's cut-off (the end of the as-of day) — nothing dated at or after
``c`` is read:

* **latest**: the value of the most recent row before ``c`` (within ``window`` when one is given; a
  tie on the date: the larger value); missing when there is none.
* **sum / mean / min / max / count** over ``[c − window, c)`` (``window: all``: every row before
  ``c``); sum and count are 0 for a customer without rows, the others missing.
* **change**: the latest value before ``c`` minus the latest value before ``c − window``; missing
  when either is.
* ``where``: a condition in the scheme language over the table's columns (contract and declared),
  e.g. ``"product_line == 'A' and amount > 0"``; for measures, ``measure == <name>`` is implied.
* **expr**: arithmetic of the condition language (``+ - * /``, numbers such as 50万) over other
  indicators, built-in or declared; a division by zero is missing.
* ``{measure: x, column: text}`` reads the measure's ``text`` (a category) instead of its ``value``
  (latest or count only).
* A measure named like a column of the customers table (``market_share``, ``budget_growth``,
  ``industry``, ``region``, a declared field … — :data:`HISTORY_COLUMNS`) is that attribute's history:
  the snapshot reads its latest value (``text`` for categories) before ``c``, and the customers table's
  value only for a customer with no history by then. Likewise the measure ``stage`` (its ``text``) is
  the history of the opportunities' stages: ``latest_stage`` is the latest stage recorded before ``c``.

Windows are written ``<n>d`` (days), ``<n>m`` (months of 365/12 days, rounded: ``12m`` = 365 days,
``3m`` = 91) or ``all``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from segment.data.contract import ALIAS, FIELD_TYPES, TABLES, Column, field_column
from segment.errors import ConditionError, SegmentError
from segment.grading.conditions import expression_sql, parse, parse_expression
from segment.plumbing.sql import Dialect

AGGREGATES = ("latest", "sum", "mean", "min", "max", "count", "change")
#: the date column each table's rows are placed in time by
_DATE = {"transactions": "date", "interactions": "date", "opportunities": "created_date", "measures": "date"}
_SUM_DECIMALS, _AVG_DECIMALS = 6, 9  # as the built-ins (segment.features.snapshot)
_WINDOW = re.compile(r"^\s*(\d+)\s*([dm])\s*$")
#: customers columns whose history the measures table may hold (a measure of the same name); declared
#: customer fields too. Static identity (name, contacts) and the status (it has its own date) have none.
HISTORY_COLUMNS = {"industry", "industry_growth", "size_employees", "annual_revenue", "region", "account_manager",
                   "budget_growth", "market_share", "strategic", "product_lines"}


def window_days(text: str | None) -> int | None:
    """Days of a window (``90d``, ``12m`` = 365, ``all`` or None = no limit); ValueError saying what to write."""
    if text is None or str(text).strip().lower() in ("all", "all history"):
        return None
    m = _WINDOW.match(str(text).lower())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"window {text!r}: write days (90d, 730d), months (3m, 12m) or all")
    n = int(m.group(1))
    return n if m.group(2) == "d" else round(n * 365 / 12)


class FieldSpec(BaseModel):
    """An extra column a data config declares for a table (``fields:``)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal[tuple(FIELD_TYPES)]  # type: ignore[valid-type]
    unit: str = Field("", description="the unit (number fields); money is in currency, a share a fraction 0–1")
    meaning: str = ""
    values: list[str] = Field(default_factory=list, description="category: the allowed values")

    def column(self, name: str) -> Column:
        return field_column(name, self.type, self.meaning, self.unit, tuple(self.values))


class DeclaredIndicator(BaseModel):
    """One declared indicator: exactly one of ``measure``, ``table`` (+ ``column``) or ``expr``."""

    model_config = ConfigDict(extra="forbid")
    measure: str | None = Field(None, description="a measure of the measures table")
    table: Literal["transactions", "interactions", "opportunities", "measures"] | None = None
    column: str | None = Field(None, description="the column aggregated (count: optional)")
    expr: str | None = Field(None, description="arithmetic over other indicators")
    agg: Literal[AGGREGATES] | None = Field(None, description="default: latest for a measure")  # type: ignore[valid-type]
    window: str | None = Field(None, description="90d, 12m, 730d or all (default)")
    where: str | None = Field(None, description="a condition over the table's columns")
    unit: str = ""
    meaning: str = ""

    @field_validator("window")
    @classmethod
    def _window(cls, v):
        window_days(v)
        return v

    @field_validator("where", "expr")
    @classmethod
    def _parses(cls, v, info):
        """`where` is a condition, `expr` arithmetic: both in the scheme language, checked on load."""
        if v is not None:
            try:
                (parse if info.field_name == "where" else parse_expression)(v)
            except ConditionError as e:
                raise ValueError(f"{info.field_name} {v!r} does not parse: {e}") from None
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> "DeclaredIndicator":
        kinds = [k for k in ("measure", "table", "expr") if getattr(self, k) is not None]
        if self.measure is not None and self.table == "measures":
            kinds.remove("table")
        if len(kinds) != 1:
            raise ValueError("give exactly one of `measure` (a fact of the measures table), `table` with `column` "
                             "(a windowed aggregate) or `expr` (arithmetic over other indicators)")
        if self.expr is not None:
            if self.agg or self.window or self.where or self.column:
                raise ValueError("`expr` takes no agg, window, where or column: write those as their own indicators")
            return self
        if self.measure is not None:
            self.agg = self.agg or "latest"
            if self.column not in (None, "value", "text"):
                raise ValueError("a measure is read from its `value` (the default) or its `text` (`column: text`)")
            if self.column == "text" and self.agg not in ("latest", "count"):
                raise ValueError(f"a measure's text can be read as latest or count, not {self.agg}")
        else:
            if self.agg is None:
                raise ValueError(f"`agg` is missing: one of {', '.join(AGGREGATES)}")
            if self.column is None and self.agg != "count":
                raise ValueError(f"agg {self.agg} needs a `column` of the {self.table} table")
        if self.agg == "change" and window_days(self.window) is None:
            raise ValueError("agg change needs a `window` (the change over the last 90d, 12m …)")
        return self

    def reads(self) -> set[str]:
        """The indicator names an expression reads (empty for the other kinds)."""
        if self.expr is None:
            return set()
        out, stack = set(), [parse_expression(self.expr)]
        while stack:
            node = stack.pop()
            if node[0] == "name":
                out.add(node[1])
            else:
                stack.extend(x for x in node[1:] if isinstance(x, tuple))
        return out

    # -- how it is listed
    @property
    def source(self) -> str:
        return "expression" if self.expr is not None else "measures" if self.measure is not None else str(self.table)

    @property
    def window_label(self) -> str:
        if self.expr is not None:
            return "as its inputs"
        days = window_days(self.window)
        span = "all history" if days is None else str(self.window).strip()
        return "latest" if self.agg == "latest" and days is None else f"{self.agg} {'in' if self.agg == 'latest' else 'over'} {span}"

    @property
    def dtype(self) -> str:
        if self.agg == "count":
            return "int64"
        return "string" if self.measure is not None and self.column == "text" else "float64"

    def describe(self) -> str:
        if self.meaning:
            return self.meaning
        if self.expr is not None:
            return self.expr
        what = f"measure {self.measure}" if self.measure is not None else f"{self.table}.{self.column or 'rows'}"
        return f"{self.agg} of {what}" + (f" where {self.where}" if self.where else "")


@dataclass(frozen=True)
class Declared:
    """What a data config declares beyond the contract: extra columns per table and indicators."""

    fields: dict[str, tuple[Column, ...]] = field(default_factory=dict)
    indicators: dict[str, DeclaredIndicator] = field(default_factory=dict)

    def columns(self, table: str) -> tuple[Column, ...]:
        return self.fields.get(table, ())

    def customer_fields(self) -> tuple[Column, ...]:
        return self.columns("customers")

    def problems_with(self, columns: dict[str, list[str]], measures: set[str] | None) -> list[tuple[str, str, str]]:
        """What the loaded data says against the declarations, as (key, problem, fix): a measure the
        measures table never records (a misspelt name would leave the indicator missing for everyone),
        a column the table does not have, a `where` reading an unknown column."""
        out = []
        for name, ind in self.indicators.items():
            table = "measures" if ind.measure is not None else ind.table
            if table is None or table not in columns:
                continue
            have = columns[table]
            if ind.measure is not None and measures is not None and ind.measure not in measures:
                shown = ", ".join(sorted(measures)[:20]) + (" …" if len(measures) > 20 else "")
                out.append((f"indicators.{name}.measure", f"no row of the measures table records measure "
                            f"{ind.measure!r}, so {name} would be missing for every customer",
                            f"check the spelling; the measures table holds: {shown or 'no rows'}"))
            if ind.column is not None and ind.measure is None and ind.column not in have:
                out.append((f"indicators.{name}.column", f"the {table} source has no column {ind.column!r}",
                            f"map a source column onto it under tables.{table}.columns, or name one of: "
                            f"{', '.join(have)}"))
            if ind.where is not None:
                unknown = sorted(parse(ind.where).names - set(have))
                if unknown:
                    out.append((f"indicators.{name}.where", f"`where` reads {', '.join(unknown)}, not a column "
                                f"of the {table} table", f"name one of its columns: {', '.join(have)}"))
        return out

    def listing(self) -> list[tuple[str, str, str, str, str]]:
        """(name, unit, window, source, meaning) of every declared field and indicator."""
        out = [(c.name, c.unit or {"bool": "flag", "string": "category", "date": "date"}.get(c.dtype, ""),
                "static", "customers", c.meaning) for c in self.customer_fields()]
        out += [(n, d.unit, d.window_label, d.source, d.describe()) for n, d in self.indicators.items()]
        return out


NO_DECLARATIONS = Declared()


# --- SQL ----------------------------------------------------------------------------------------------
@dataclass
class DeclaredSql:
    """The declared part of a snapshot plan: per-table aggregates, and each indicator's final SQL."""

    aggregates: list[tuple[str, str, str]]  # (name, the contract table it reads, sql)
    select: dict[str, str]  # indicator → SQL over the joined aggregates (and the built-ins' SQL)
    dtypes: dict[str, str]
    history: dict[str, str]  # customers attribute → SQL of its value as of the date (history, else the column)


def _kind(col: Column) -> str:
    return {"string": "text", "bool": "bool", "date": "date", "datetime": "date"}.get(col.dtype, "number")


def declared_sql(declared: Declared, present: dict[str, set[str]], builtin: dict[str, str],
                 w: dict[str, str], cut, restricted: bool, d: Dialect, ts) -> DeclaredSql:
    """The SQL of the declared fields and indicators for tables with these columns. ``builtin`` maps
    each available built-in indicator to its final SQL; ``w['c']`` is the cut-off literal; ``ts(t)``
    a timestamp literal. SegmentError names the indicator and what to change.

    Long because each aggregate's SQL (seven kinds, three sources) is written here once, for both engines."""
    from datetime import timedelta

    select: dict[str, str] = {}
    dtypes: dict[str, str] = {}
    aggs: list[tuple[str, str, str]] = []
    history: dict[str, str] = {}
    ids = " AND customer_id IN (SELECT customer_id FROM wanted)" if restricted else ""

    # customer fields: static, as recorded (their history, when the measures table has one, below)
    fields = [c for c in declared.customer_fields() if c.name in present.get("customers", ())]
    if fields:
        cols = ", ".join(f"{d.q(c.name)} AS {d.q('f_' + c.name)}" for c in fields)
        aggs.append(("a_cf", "customers", f"SELECT customer_id, {cols} FROM cu WHERE customer_id IS NOT NULL{ids}"))
        for c in fields:
            select[c.name] = d.q("f_" + c.name)
            dtypes[c.name] = {"string": "string", "bool": "boolean", "date": "datetime64[ns]",
                              "datetime": "datetime64[ns]"}.get(c.dtype, "float64")

    # aggregates per table
    per_table: dict[str, list[tuple[str, str]]] = {}
    for name, ind in declared.indicators.items():
        if ind.expr is not None:
            continue
        table = "measures" if ind.measure is not None else str(ind.table)
        if table not in present:
            raise SegmentError(f"indicator {name}: reads the {table} table, which the data config does not load; "
                              f"add `tables.{table}` or remove the indicator")
        cols = TABLES[table].by_name | {c.name: c for c in declared.columns(table)}
        column = (ind.column or "value") if ind.measure is not None else ind.column
        if column is not None and (column not in cols or column not in present[table]):
            raise SegmentError(f"indicator {name}: the {table} table has no column {column!r}; it has "
                              f"{', '.join(sorted(present[table]))}")
        conds = []
        if ind.measure is not None:
            conds.append(f"measure = {d.text(ind.measure)}")
        if ind.where is not None:
            def column_of(n: str, _t=table, _cols=cols, _name=name) -> str:
                if n not in _cols or n not in present[_t]:
                    raise ConditionError(f"indicator {_name}: `where` reads {n!r}, not a column of the {_t} "
                                         f"table ({', '.join(sorted(present[_t]))})")
                return d.q(n)
            try:
                conds.append(parse(ind.where).to_sql(d, column_of, lambda n, _c=cols: _kind(_c[n]) if n in _c else None))
            except ConditionError as e:
                raise SegmentError(str(e)) from None
        date = _DATE[table]
        days = window_days(ind.window)
        in_window = f"{d.q(date)} >= {ts(cut - timedelta(days=days))}" if days is not None else None
        text = ind.measure is not None and column == "text"
        val = (d.q(column) if text else f"CAST({d.q(column)} AS DOUBLE)") if column is not None else None
        has = [*conds] + ([f"{d.q(column)} IS NOT NULL"] if column is not None else [])

        def flt(extra: list[str]) -> str:
            parts = [*has, *extra]
            return f" FILTER (WHERE {' AND '.join(parts)})" if parts else ""

        win = [in_window] if in_window else []
        col = f"d_{name}"
        if ind.agg == "latest":
            sql = f"{d.arg_max(val, d.q(date), val)}{flt(win)}"
        elif ind.agg == "sum":
            sql = f"ROUND({d.sum_fn}({val}){flt(win)}, {_SUM_DECIMALS})"
        elif ind.agg == "mean":
            sql = f"ROUND({d.avg_fn}({val}){flt(win)}, {_AVG_DECIMALS})"
        elif ind.agg in ("min", "max"):
            sql = f"{ind.agg.upper()}({val}){flt(win)}"
        elif ind.agg == "count":
            sql = f"COUNT(*){flt(win)}"
        else:  # change
            before = f"{d.q(date)} < {ts(cut - timedelta(days=days))}"
            sql = f"({d.arg_max(val, d.q(date), val)}{flt([])} - {d.arg_max(val, d.q(date), val)}{flt([before])})"
        per_table.setdefault(table, []).append((col, sql))
        zero = ind.agg in ("sum", "count")
        select[name] = f"COALESCE({d.q(col)}, 0)" if zero else d.q(col)
        dtypes[name] = ind.dtype

    # attribute history: a measure named like a customers column (numbers and flags from `value`,
    # categories from `text`); the measure `stage` (text) for the opportunities' latest_stage
    if "measures" in present:
        hist = []
        attrs = [c for c in (*TABLES["customers"].columns, *declared.customer_fields())
                 if "customers" in present and c.name in present["customers"] and c.name in HISTORY_COLUMNS | {
                     f.name for f in declared.customer_fields()}]
        has_text = "text" in present["measures"]
        for c in attrs:
            col = "text" if c.dtype == "string" else "value"
            if col == "text" and not has_text:
                continue
            value = d.q("text") if col == "text" else "CAST(value AS DOUBLE)"
            hist.append((f"h_{c.name}", f"{d.arg_max(value, 'date', value)} "
                                        f"FILTER (WHERE measure = {d.text(c.name)} AND {d.q(col)} IS NOT NULL)"))
            typ = {"bool": "BOOLEAN", "int": "BIGINT", "string": "STRING"}.get(c.dtype, "DOUBLE")
            history[c.name] = (f"({d.q('h_' + c.name)} <> 0)" if c.dtype == "bool"
                               else f"CAST({d.q('h_' + c.name)} AS {typ})")
        if has_text and "opportunities" in present:
            stage = d.q("text")
            hist.append(("h_latest_stage", f"{d.arg_max(stage, 'date', stage)} "
                                           f"FILTER (WHERE measure = 'stage' AND {stage} IS NOT NULL)"))
            history["latest_stage"] = d.q("h_latest_stage")
        if hist:
            per_table.setdefault("measures", []).extend(hist)

    for table, columns in per_table.items():
        alias = ALIAS[table]
        date = d.q(_DATE[table])
        body = ",\n      ".join(f"{sql} AS {d.q(col)}" for col, sql in columns)
        aggs.append((f"a_d{alias}", table, f"""
    SELECT customer_id,
      {body}
    FROM {alias}
    WHERE {date} < {w['c']} AND customer_id IS NOT NULL{ids}
    GROUP BY customer_id"""))

    # expressions, over every indicator's final SQL (declared ones may use each other; no cycles)
    known = {**builtin, **select}
    exprs = {n: i for n, i in declared.indicators.items() if i.expr is not None}
    resolved: dict[str, str] = {}

    def sql_of(n: str, path: tuple[str, ...]) -> str:
        if n in path:
            raise SegmentError(f"indicator {path[0]}: its expression refers back to itself ({' → '.join((*path, n))})")
        if n in resolved:
            return resolved[n]
        if n in exprs:
            try:
                resolved[n] = "(" + expression_sql(parse_expression(str(exprs[n].expr)), d,
                                                   lambda m: sql_of(m, (*path, n))) + ")"
            except ConditionError as e:
                raise SegmentError(f"indicator {n}: {e}") from None
            return resolved[n]
        if n in known:
            return f"({known[n]})"
        raise SegmentError(f"indicator {path[0] if path else n}: its expression reads {n!r}, which is neither a "
                          "built-in indicator the data provides nor a declared one (`segment indicators --data "
                          "DATA.yaml` lists them)")

    for n in exprs:
        select[n] = sql_of(n, ())
        dtypes[n] = "float64"
    # the snapshot's columns: the customer fields, then the indicators as declared
    ordered = {n: select[n] for n in [c.name for c in fields] + list(declared.indicators)}
    return DeclaredSql(aggs, ordered, dtypes, history)
