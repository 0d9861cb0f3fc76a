"""What validation finds: a `Problem` (severity, table, column, text, rows, count, example, check), every problem's text, and the columns of a source mapped onto the contract.

Public: Problem, Texts, map_columns, IMPLAUSIBLE_AMOUNT, UTC_OFFSET, DATE_MIN, DATE_MAX, TRUE_TEXTS, FALSE_TEXTS.
Reads: nothing. Writes: nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from segment.data.config import ROW, TableSource
from segment.data.contract import COMPLETENESS_THRESHOLD, Table

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
    if table.name == "measures" and not {"value", "text"} & set(df.columns):  # a fact needs one or the other
        missing.append("value")
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
                                + (" (or `text`, for facts that are categories)" if (table.name, c) == ("measures", "value")
                                   else "")
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
