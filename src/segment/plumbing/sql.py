"""SQL written once for DuckDB and Spark SQL: the `Dialect` that spells the few functions the two engines do not share, and strftime formats as Java datetime patterns.

Public: Dialect, DUCKDB, SPARK, DIALECTS, java_datetime_pattern.
Reads: nothing. Writes: nothing.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """How one engine spells the handful of functions DuckDB and Spark SQL do not share."""

    name: str
    quote: str  # identifier quote: " (DuckDB) or ` (Spark)
    sum_fn: str  # a (compensated where available) sum
    avg_fn: str

    def q(self, ident: str) -> str:
        return f"{self.quote}{ident.replace(self.quote, self.quote * 2)}{self.quote}"

    def arg_max(self, value: str, *keys: str) -> str:
        """``value`` of the row with the largest ``keys`` (compared in order)."""
        if self.name == "duckdb":
            return f"ARG_MAX({value}, struct_pack(" + ", ".join(f"k{i} := {k}" for i, k in enumerate(keys)) + "))"
        return f"MAX_BY({value}, struct(" + ", ".join(keys) + "))"

    def arg_min(self, value: str, key: str) -> str:
        """``value`` of the row with the smallest ``key`` (an aggregate)."""
        return f"ARG_MIN({value}, {key})" if self.name == "duckdb" else f"MIN_BY({value}, {key})"

    def days_between(self, start: str, end: str) -> str:
        """Whole days from the DATE ``start`` to the DATE ``end``."""
        if self.name == "duckdb":
            return f"date_diff('day', {start}, {end})"
        return f"datediff({end}, {start})"

    def seconds_between(self, start: str, end: str) -> str:
        """Seconds (fractional) from the TIMESTAMP ``start`` to the TIMESTAMP ``end``."""
        if self.name == "duckdb":
            return f"(epoch({end}) - epoch({start}))"
        return f"((unix_micros({end}) - unix_micros({start})) / 1000000.0)"

    # -- used by the scheme compiler (segment.grading.compiler) -------------------------------------------
    def text(self, value: str) -> str:
        """A string literal: DuckDB doubles quotes; Spark reads backslash escapes, so both are escaped."""
        if self.name == "duckdb":
            return "'" + value.replace("'", "''") + "'"
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def fmt1(self, x: str) -> str:
        """``x`` (DOUBLE) as text with one decimal, like Python's ``f"{x:.1f}"``."""
        if self.name == "duckdb":
            return f"printf('%.1f', {x})"
        return f"format_string('%.1f', {x})"

    def rint(self, x: str) -> str:
        """The nearest integer (as DOUBLE), ties to even, like ``numpy.rint``."""
        if self.name == "duckdb":
            return f"round_even({x}, 0)"
        return f"rint({x})"

    def divide(self, a: str, b: str) -> str:
        """``a / b`` (DOUBLE), NULL where the quotient is not finite (division by zero)."""
        if self.name == "duckdb":
            return f"(CASE WHEN isfinite({a} / {b}) THEN {a} / {b} END)"
        q = f"try_divide({a}, {b})"
        return f"(CASE WHEN NOT isnan({q}) AND abs({q}) < double('Infinity') THEN {q} END)"

    def try_double(self, x: str) -> str:
        """A text value as DOUBLE, NULL when it is not a number (``pd.to_numeric(errors='coerce')``)."""
        return f"TRY_CAST({x} AS DOUBLE)" if self.name == "duckdb" else f"try_cast({x} AS DOUBLE)"

    # -- used by validation (segment.data.store): each cast and check written once, for both engines --
    def as_text(self, x: str) -> str:
        """Any value as text."""
        return f"CAST({x} AS {'VARCHAR' if self.name == 'duckdb' else 'STRING'})"

    def number(self, text: str) -> str:
        """A text value as DOUBLE the way DuckDB's ``TRY_CAST`` reads it (inf and nan included), NULL
        when it is not a number. Spark's cast also takes a Java suffix (``1.5d``) and no ``_`` between
        digits (``1_000``): both are made to read as DuckDB reads them."""
        if self.name == "duckdb":
            return f"TRY_CAST({text} AS DOUBLE)"
        return (f"CASE WHEN {text} RLIKE '[0-9.][dDfF]$' THEN NULL ELSE try_cast(regexp_replace({text}, "
                f"'(?<=[0-9])_(?=[0-9])', '') AS DOUBLE) END")

    def is_nan(self, x: str) -> str:
        return f"isnan({x})"

    def is_inf(self, x: str) -> str:
        return f"isinf({x})" if self.name == "duckdb" else f"(abs({x}) = double('Infinity'))"

    def is_finite(self, x: str) -> str:
        return f"isfinite({x})" if self.name == "duckdb" else f"(NOT isnan({x}) AND abs({x}) < double('Infinity'))"

    def strip_group(self, text: str, pattern: str) -> str:
        """``text`` replaced by the first group of the regular expression ``pattern`` where it matches."""
        return f"regexp_replace({text}, {self.text(pattern)}, {self.text(chr(92) + '1' if self.name == 'duckdb' else '$1')})"

    def iso_timestamp(self, text: str) -> str:
        """An ISO date or date-time text as TIMESTAMP (DuckDB's cast: ``2026-01-05``, ``2026-1-5 9:30``,
        ``2026/01/05``, a ``T`` or spaces before the time, up to 6 decimals of a second kept), else NULL.
        Spark's cast takes more shapes (``2026``, ``2026-01``, offsets): only DuckDB's are let through."""
        if self.name == "duckdb":
            return f"TRY_CAST({text} AS TIMESTAMP)"
        shape = self.text(r"^[0-9]{4}([-/])[0-9]{1,2}\1[0-9]{1,2}((T| +)[0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2}(\.[0-9]*)?)?)?$")
        spark = f"regexp_replace(regexp_replace({text}, '/', '-'), '(?<=[0-9]) +(?=[0-9])', 'T')"
        return f"CASE WHEN {text} RLIKE {shape} THEN CAST({spark} AS TIMESTAMP) END"

    def strptime(self, text: str, fmt: str) -> str:
        """``text`` read with the strftime format ``fmt`` as TIMESTAMP, NULL when it does not match."""
        if self.name == "duckdb":
            return f"try_strptime({text}, {self.text(fmt)})"
        return f"to_timestamp({text}, {self.text(java_datetime_pattern(fmt))})"

    def wall_clock(self, ts: str, zone: str) -> str:
        """A zoned timestamp (an instant) as the wall-clock time in ``zone`` where it was recorded."""
        if self.name == "duckdb":
            return f"timezone({self.text(zone)}, {ts})"
        return f"from_utc_timestamp({ts}, {self.text(zone)})"

    def row_hash(self, columns: list[str]) -> str:
        """A 64-bit hash of several columns (equal rows, equal hashes; a shared hash is compared in full)."""
        return f"{'hash' if self.name == 'duckdb' else 'xxhash64'}({', '.join(columns)})"

#: strftime directives → Java DateTimeFormatter letters (Spark's to_timestamp); a number next to

#: another number keeps its full width (``%Y%m%d`` → yyyyMMdd), else one letter reads 1 or 2 digits
_JAVA_DATETIME = {"Y": "yyyy", "m": "M", "d": "d", "H": "H", "M": "m", "S": "s", "y": "yy", "b": "MMM", "h": "MMM",
                  "B": "MMMM", "f": "SSSSSS", "I": "h", "p": "a", "j": "D", "a": "EEE", "A": "EEEE"}
_JAVA_WIDE = {"m": "MM", "d": "dd", "H": "HH", "M": "mm", "S": "ss", "I": "hh", "j": "DDD"}


def java_datetime_pattern(fmt: str) -> str:
    """The Spark (Java) datetime pattern of a strftime format; ``ValueError`` naming a directive it
    cannot translate."""
    parts: list[tuple[str, str]] = []  # (kind, text): kind "d" a directive, "l" literal text
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            k = fmt[i + 1]
            if k == "%":
                parts.append(("l", "%"))
            elif k in _JAVA_DATETIME:
                parts.append(("d", k))
            else:
                raise ValueError(f"%{k}")
            i += 2
        else:
            parts.append(("l", fmt[i]))
            i += 1
    numeric = set("YmdHMSyfIj")
    out = []
    for n, (kind, t) in enumerate(parts):
        if kind == "l":
            out.append(t if t in " -/.:,;" or t.isdigit() else "'" + t.replace("'", "''") + "'")
            continue
        packed = any(0 <= m < len(parts) and parts[m][0] == "d" and parts[m][1] in numeric for m in (n - 1, n + 1))
        out.append(_JAVA_WIDE[t] if packed and t in _JAVA_WIDE else _JAVA_DATETIME[t])
    return "".join(out)
DUCKDB = Dialect("duckdb", '"', "FSUM", "FAVG")

#: Spark has no compensated sum; sums are rounded to SUM_DECIMALS on both engines (see the Spark test)
SPARK = Dialect("spark", "`", "SUM", "AVG")
DIALECTS = {"duckdb": DUCKDB, "spark": SPARK}
