"""What every report's page is made of: a `Section` (a heading's content), tables with readable numbers, dates and headers, money in the data's currency, arrows for changes.

Public: Section, html_table, p, money, money_unit, arrow, CURRENCY_SIGNS, PII_COLUMNS.
Reads: nothing. Writes: nothing.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import pandas as pd

from segment.data.contract import TABLES

MONEY_COLUMNS = ("annual_amount",)


@dataclass
class Section:
    """A block of report HTML (paragraphs, tables, figures) and the tables behind it."""

    parts: list[str] = field(default_factory=list)
    frames: list[pd.DataFrame] = field(default_factory=list)

    def _repr_html_(self) -> str:
        return "\n".join(self.parts)

    def table(self) -> pd.DataFrame:
        return self.frames[0] if self.frames else pd.DataFrame()


#: personal data columns (the contract's pii flag): never rendered into a report table
PII_COLUMNS = frozenset(c.name for t in TABLES.values() for c in t.columns if c.pii)


_NUMBER_CELL = re.compile(r"<td>(-?(?:HK\$|S\$|[$€£¥])?[-+]?[\d,]*\.?\d+(?:%| 万元| 亿元| 元|[KMB])?)</td>")


_DATE_CELL = re.compile(r"<td>(\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2}(?::\d{2})?)?)</td>")


_HEADER_CELL = re.compile(r"(<th[^>]*>)(.*?)(</th>)", re.S)


def html_table(df: pd.DataFrame, formats: dict[str, str] | None = None, index: bool = False) -> str:
    """A DataFrame as an escaped HTML table, with per-column number formats. Personal data columns
    (contact name, phone, e-mail) are dropped whatever the caller passes: the privacy policy."""
    shown = df.drop(columns=[c for c in df.columns if c in PII_COLUMNS])
    formats = {c: "," for c in shown.columns if pd.api.types.is_integer_dtype(shown[c])} | (formats or {})
    for col, fmt in formats.items():
        if col in shown:
            shown[col] = shown[col].map(lambda v, f=fmt: "" if pd.isna(v) else format(v, f))
    out = shown.to_html(index=index, escape=True, border=0, classes="segment-table", na_rep="")
    out = _NUMBER_CELL.sub(r'<td class="num">\1</td>', out)  # numbers right-aligned, text left
    out = _DATE_CELL.sub(r'<td class="date">\1</td>', out)  # a date on one line
    # headers in words: a column id (excluded_never_bought, pts__annual_amount) is written with spaces
    return _HEADER_CELL.sub(lambda m: m.group(1) + _words(m.group(2)) + m.group(3), out)


def readable_number(value):
    """A number written as text (``-4549.89``) with thousands separators and its decimals; other
    values as they are."""
    text = str(value)
    if not re.fullmatch(r"-?\d+(?:\.\d+)?", text):
        return value
    whole, _, decimals = text.partition(".")
    return f"{int(whole):,}" + (f".{decimals}" if decimals else "") if whole != "-0" else text


def _words(header: str) -> str:
    """A column id as words: ``ci_low`` → ``ci low``, ``pts__annual_amount`` → ``pts: annual amount``."""
    return header.replace("__", ": ").replace("_", " ")


def p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


#: how an amount of these currencies is written (others: the ISO code before the number)
CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$", "SGD": "S$"}


def money(x: float, currency: str = "CNY") -> str:
    """An amount for people: 元 / 万元 / 亿元 for CNY (3,612 元, 52.6 万元, 12.15 亿元); otherwise the
    currency's sign with K / M / B ($ 3,612, $ 52.6K, $ 1.2B)."""
    if currency == "CNY":
        if abs(x) >= 1e8:
            return f"{x / 1e8:,.2f} 亿元"
        if abs(x) >= 1e4:
            return f"{x / 1e4:,.1f} 万元"
        return f"{x:,.0f} 元"
    sign = CURRENCY_SIGNS.get(currency, currency + " ")
    minus = "-" if x < 0 else ""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            return f"{minus}{sign}{abs(x) / div:,.1f}{suffix}"
    return f"{minus}{sign}{abs(x):,.0f}"


def money_unit(currency: str = "CNY") -> tuple[float, str]:
    """(divisor, name) of the unit revenue columns of tables are shown in: 万元 for CNY, thousands otherwise."""
    return (1e4, "万元") if currency == "CNY" else (1e3, f"thousand {currency}")


def arrow(change: float) -> str:
    """▲ for a rise, ▼ for a fall, nothing for no change."""
    return "▲" if change > 0 else "▼" if change < 0 else ""
