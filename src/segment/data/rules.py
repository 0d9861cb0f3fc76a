"""Every data rule, once, in SQL: each column cast and checked (per value), then the cross-row and cross-table rules (declared drops, duplicate ids and lines, unknown customers, completeness, future dates, plausibility).

Public: validate, parse_date, DUPLICATE.
Reads: the raw relations. Writes: t_<table> (typed) in the database; problems into the list it is given.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segment.data.config import ROW, DataConfig, TableSource
from segment.data.contract import COMPLETENESS_THRESHOLD, TABLES
from segment.data.problems import (
    DATE_MAX,
    DATE_MIN,
    FALSE_TEXTS,
    IMPLAUSIBLE_AMOUNT,
    TRUE_TEXTS,
    UTC_OFFSET,
    Problem,
    Texts,
    map_columns,
)
from segment.data.raw import is_nested, named_twice
from segment.errors import ConfigError, SegmentError

#: ISO 8601 forms pandas' ISO8601 parser reads and DuckDB's TIMESTAMP cast does not
_ISO_PARTIAL = ("%Y%m%d", "%Y%m%dT%H%M%S", "%Y%m%d %H%M%S", "%Y-%m", "%Y", "%Y-%m-%d %H", "%Y-%m-%dT%H")
_SAMPLE = 11  # first rows fetched per problem: the report shows 10 and "…" when there are more
_DATE_MIN, _DATE_MAX = (f"TIMESTAMP '{d:%Y-%m-%d}'" for d in (DATE_MIN, DATE_MAX))


@dataclass
class _Check:
    """One per-value rule of a column: SQL flagging a bad value, the problem text, the example, the
    rule's short name (the report's ``check`` column)."""
    column: str
    flag: str  # SQL over the typed-stage columns
    problem: str
    example: str  # SQL for the example value
    check: str


def validate(db, config_path: Path, config: DataConfig, as_of: pd.Timestamp | None, problems: list[Problem], *,
             only: str | None = None) -> dict[str, list[str]] | None:
    """Cast and check every table of the config on ``db`` (:class:`DuckDBEngine` here, the Spark engine of
    :mod:`segment.data.spark`): ``t_<table>`` holds each typed table afterwards; every problem is appended
    to ``problems``. Returns each table's contract columns; None when the transactions table (or
    ``only``) could not be read onto the contract."""
    columns: dict[str, list[str]] = {}
    for name in [only] if only is not None else list(config.tables):
        cols = _read_table(db, config_path, name, config.tables[name], problems)
        if cols is not None:
            columns[name] = cols
    if only is None:
        if "transactions" not in columns:
            return None
        _check(db, columns, config, as_of, problems)
    elif only not in columns:
        return None
    db.drop("dup_rows")
    return columns


def parse_date(d, text: str, date_format: str | None) -> str:
    """SQL reading the text ``text`` as a TIMESTAMP on dialect ``d``: with ``date_format`` (strftime),
    else ISO 8601 as pandas' ISO8601 parser reads it (a trailing UTC offset dropped: io.UTC_OFFSET);
    NULL when it does not parse or falls outside DATE_MIN … DATE_MAX (a 0000-01-01 placeholder)."""
    if date_format:
        parse = d.strptime(text, date_format)
    else:
        bare = d.strip_group(text, UTC_OFFSET)
        parse = "coalesce(" + ", ".join([d.iso_timestamp(bare)] + [d.strptime(bare, f) for f in _ISO_PARTIAL]) + ")"
    return f"CASE WHEN {parse} BETWEEN {_DATE_MIN} AND {_DATE_MAX} THEN {parse} END"


def _read_table(db, config_path: Path, name: str, src: TableSource, problems: list[Problem]) -> list[str] | None:
    """``t_<name>``: the typed table (contract columns + ``_row_``), cast once from the source into
    the database — or, for a Parquet file, a view casting it as it is read (writing 50 M lines into
    the database took longer than the snapshots that read them again; see :class:`DuckDBEngine`).

    Long because it is the one place every column's cast and per-value check is written (in the order the
    report lists them); split, the order and the shared staged relation would live in several places."""
    table = src.contract(name)
    d = db.d
    _q, _lit = d.q, d.text  # noqa: N806 - the engine's quoting
    raw, described, label, zones = db.raw(config_path, name, src)
    source_cols = [clean for clean, _, _ in described]  # a BOM or spaces stripped
    original = {clean: name for clean, name, _ in described}
    types = {clean: typ for clean, _, typ in described}
    n = db.count(raw)
    if n == 0:
        problems.append(Problem("error", name, "", Texts.no_rows(label, name)
                                + ("; or set `sheet:` to the sheet holding them" if " of " in label and "(sheet" in label
                                   else ""), [], 0, "", "no_rows"))
        return None

    twice = named_twice(config_path, src)
    if twice:
        problems.append(Problem("error", name, ", ".join(twice),
                                f"the header of {label} names {', '.join(f'`{c}`' for c in twice)} more than once: "
                                "only one of those columns would be read; rename or remove the others", [], 1, "",
                                "column_named_twice"))
        return None
    mapped = map_columns(pd.DataFrame(columns=[ROW, *source_cols]), table, src, config_path, label, problems)
    if mapped is None:
        return None
    rename = {s: c for s, c in src.columns.items() if s in source_cols}
    by_contract = {}
    for c in source_cols:
        target = rename.get(c, c)
        if target in table.by_name and target not in by_contract:
            by_contract[target] = c
    nested = [(t, c, types.get(c, "")) for t, c in by_contract.items() if is_nested(types.get(c, ""))]
    if nested:
        for target, c, typ in nested:
            problems.append(Problem("error", name, target,
                                    f"source column `{original.get(c, c)}` of {label} holds lists or records ({typ}), "
                                    f"not one value per row; flatten it in the source, or map another column onto "
                                    f"`{target}`", [], 1, "", "nested_values"))
        return None

    first_new = len(problems)
    stage1, checks, present = [], [], []
    for col in table.columns:
        if col.name not in by_contract:
            continue
        src_col = by_contract[col.name]
        ref, typ = _q(original[src_col]), types[src_col].upper()
        text = f"NULLIF(trim({d.as_text(ref)}), '')"
        is_text = typ.startswith("VARCHAR") or typ == "BLOB"
        c = _q(col.name)
        if col.dtype in ("date", "datetime"):
            if "WITH TIME ZONE" in typ or typ.startswith("TIMESTAMP") or typ == "DATE":
                if "WITH TIME ZONE" in typ:  # the wall-clock time in the declared zone, else where it was recorded
                    stage1.append(f"{d.wall_clock(ref, src.timezone or zones.get(src_col, 'UTC'))} AS {c}")
                else:
                    stage1.append(f"CAST({ref} AS TIMESTAMP) AS {c}")
                checks.append(_Check(col.name, f"NOT ({c} BETWEEN {_DATE_MIN} AND {_DATE_MAX})", Texts.DATE_RANGE,
                                     d.as_text(c), "date_out_of_range"))
            else:
                try:
                    parse = parse_date(d, text, src.date_format)
                except ValueError as e:  # a directive Spark's patterns have no letter for
                    raise ConfigError(config_path, f"tables.{name}.date_format", f"{e} in {src.date_format!r} "
                                      f"cannot be read on {d.name}", "write the format with %Y %m %d %H %M %S %y "
                                      "%b %B %f %I %p %j %a %A, or use `engine: duckdb`") from None
                stage1.append(f"{parse} AS {c}")
                stage1.append(f"{text} AS {_q(col.name + '__text')}")
                checks.append(_Check(col.name, f"{_q(col.name + '__text')} IS NOT NULL AND {c} IS NULL",
                                     Texts.unparseable_date(src.date_format), _q(col.name + "__text"), "unparseable_date"))
        elif col.dtype in ("float", "int"):
            numeric = not is_text and typ != "BOOLEAN"
            if numeric:
                stage1.append(f"CASE WHEN {d.is_nan(f'CAST({ref} AS DOUBLE)')} THEN NULL ELSE CAST({ref} AS DOUBLE) END AS {c}")
                checks.append(_Check(col.name, d.is_inf(c), Texts.NOT_FINITE, c, "not_finite"))
            else:
                stage1.append(f"{d.number(text)} AS {c}")
                stage1.append(f"{text} AS {_q(col.name + '__text')}")
                checks.append(_Check(col.name, f"{_q(col.name + '__text')} IS NOT NULL AND ({c} IS NULL OR NOT {d.is_finite(c)})",
                                     Texts.NOT_A_NUMBER, _q(col.name + "__text"), "not_a_number"))
            scaled = f"({c} * {float(src.amount_unit)!r})" if "currency" in col.unit and src.amount_unit != 1 else c
            huge = f"{d.is_finite(c)} AND abs({scaled}) > {IMPLAUSIBLE_AMOUNT!r}"
            if "currency" in col.unit:
                checks.append(_Check(col.name, huge, Texts.IMPLAUSIBLE, scaled, "implausible_amount"))
            if col.dtype == "int":
                not_huge = f" AND NOT ({huge})" if "currency" in col.unit else ""
                checks.append(_Check(col.name, f"{d.is_finite(c)}{not_huge} AND {scaled} <> round({scaled})",
                                     Texts.NOT_WHOLE, scaled, "not_whole"))
        elif col.dtype == "bool":
            if typ == "BOOLEAN":
                stage1.append(f"{ref} AS {c}")
            else:
                low = f"lower({text})"
                trues = ", ".join(_lit(v) for v in sorted(TRUE_TEXTS))
                falses = ", ".join(_lit(v) for v in sorted(FALSE_TEXTS - {""}))
                stage1.append(f"CASE WHEN {low} IN ({trues}) THEN true WHEN {low} IN ({falses}) THEN false END AS {c}")
                stage1.append(f"{text} AS {_q(col.name + '__text')}")
                checks.append(_Check(col.name, f"{_q(col.name + '__text')} IS NOT NULL AND {c} IS NULL",
                                     Texts.NOT_BOOL, f"lower({_q(col.name + '__text')})", "not_true_false"))
        else:
            if typ in ("DOUBLE", "FLOAT", "REAL") or typ.startswith("DECIMAL"):
                val = (f"CASE WHEN {ref} IS NULL THEN NULL WHEN {ref} = floor({ref}) AND abs({ref}) < 1e18 "
                       f"THEN {d.as_text(f'CAST({ref} AS BIGINT)')} ELSE {d.as_text(ref)} END")
            else:
                val = text
            if col.values:
                stage1.append(f"lower({val}) AS {c}")
                stage1.append(f"{val} AS {_q(col.name + '__text')}")
                allowed = ", ".join(_lit(v) for v in col.values)
                checks.append(_Check(col.name, f"{c} IS NOT NULL AND {c} NOT IN ({allowed})",
                                     Texts.unknown_value(col.values), _q(col.name + "__text"), "unknown_value"))
            else:
                stage1.append(f"{val} AS {c}")
        present.append(col.name)

    derive_amount = name == "transactions" and "amount" not in by_contract and {"quantity", "unit_price"} <= set(present)
    # the source is read (decoded, cast) once, into s_<name>; every check and the typed table read that
    hashed = ""
    if name == "transactions":  # for duplicate lines: equal in every source column
        hashed = f", {d.row_hash([_q(original[c]) for c in source_cols])} AS _hash_"
    db.create(f"s_{name}", f"SELECT _row_, {', '.join(stage1)}{hashed} FROM {raw}")

    # the per-value problems, in contract column order. For a Parquet source (its staged table is a
    # view) this scan is also the first full read: every contract column is decoded here, so a damaged
    # file stops now, named, instead of in a later snapshot (+0.3 s on 4.5 M lines); a CSV source was
    # read whole into s_<name> already
    hits: set[str] = set()
    decode = present if name in getattr(db, "lazy", ()) else []
    scan = [f"count(*) FILTER (WHERE {k.flag})" for k in checks] + [f"count({_q(c)})" for c in decode]
    try:
        counts = db.fetch(f"SELECT {', '.join(scan)} FROM s_{name}")[0][:len(checks)] if scan else []
    except db.read_errors as e:
        if db.resource_error(e):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SegmentError(f"{label}: cannot read table `{name}` ({first}): the file looks damaged or incomplete; "
                           f"export it again (or fix `tables.{name}` in {config_path})") from None
    if checks:
        for k, cnt in zip(checks, counts):
            if cnt:
                hits.add(k.flag)
                rows, example = _sample(db, f"s_{name}", k.flag, k.example)
                text = k.problem + (f" (a declared field: if the values are right, change its type under "
                                    f"tables.{name}.fields.{k.column}.type)" if k.column in src.fields else "")
                problems.append(Problem("error", name, k.column, text, rows, int(cnt), example, k.check))

    # the typed values: a bad value is missing; currency scaled; ints whole
    final = ["_row_"]
    plain = True  # every column as staged: the staged table is the typed one
    for col in table.columns:
        if col.name not in present:
            continue
        c = _q(col.name)
        bad = [k.flag for k in checks if k.column == col.name and k.flag in hits]
        expr = c
        if col.dtype in ("float", "int") and "currency" in col.unit and src.amount_unit != 1:
            expr = f"({c} * {float(src.amount_unit)!r})"
        if bad:
            expr = f"CASE WHEN {' OR '.join(f'coalesce({b}, false)' for b in bad)} THEN NULL ELSE {expr} END"
        if col.dtype == "int":
            expr = f"CAST(round({expr}) AS BIGINT)"
        plain = plain and expr == c
        final.append(f"{expr} AS {c}")
    where = ""
    if "unparseable_rows" in src.drop and len(problems) > first_new:
        for p in problems[first_new:]:
            p.severity = "warning"
            p.problem += Texts.UNPARSEABLE_DROPPED
        where = " WHERE NOT (" + " OR ".join(f"coalesce({k.flag}, false)" for k in checks if k.flag in hits) + ")"
    if name == "transactions":
        _duplicate_lines(db, raw, [original[c] for c in source_cols])
    # the source's text (kept for the examples) and the line hashes (read by _duplicate_lines): done with
    extra = [c for c in db.columns(f"s_{name}") if c not in ("_row_", *present)]
    as_is = plain and not where and not derive_amount
    db.release(raw)  # the source is not read again: free its copy before the typed one
    if as_is:  # nothing to change: the staged table is the typed one (no second copy)
        db.typed(name, None, extra)
    else:
        sql = f"SELECT {', '.join(final)} FROM s_{name}{where}"
        if derive_amount:  # quantity × unit_price (unit_price already in currency units)
            sql = f"SELECT *, quantity * unit_price AS amount FROM ({sql})"
            present.append("amount")
        db.typed(name, sql, extra)
    return [c.name for c in table.columns if c.name in present]


def _duplicate_lines(db, raw: str, source_columns: list[str]) -> None:
    """``dup_rows``: the rows of ``raw`` equal to an earlier row in every source column. Rows were
    hashed when staged (``s_transactions._hash_``); only rows sharing a hash are compared in full."""
    cols = ", ".join(db.d.q(c) for c in source_columns)
    shared = "SELECT _row_ FROM s_transactions WHERE _hash_ IN (SELECT _hash_ FROM dup_hashes)"
    if not db.repeated("s_transactions", "_hash_", "dup_hashes"):
        shared = "SELECT _row_ FROM s_transactions WHERE false"  # no second read of the source
    db.create("dup_rows", f"SELECT _row_ FROM (SELECT _row_, row_number() OVER (PARTITION BY {cols} ORDER BY _row_) "
              f"AS n_ FROM {raw} WHERE _row_ IN ({shared})) AS w WHERE n_ > 1")
    db.drop("dup_hashes")


def _value(v):
    if isinstance(v, (pd.Timestamp,)) or hasattr(v, "isoformat"):
        return pd.Timestamp(v)
    return v


def _sample(db, table: str, cond: str, example: str = "NULL") -> tuple[list[int], object]:
    """The first rows (numbers) where ``cond`` holds and the example value of the first."""
    rows = db.fetch(f"SELECT _row_, {example} FROM {table} WHERE {cond} ORDER BY _row_ LIMIT {_SAMPLE}")
    return [int(r[0]) for r in rows], (_value(rows[0][1]) if rows else None)

#: amounts that look like 万元 (or thousands) read as yuan: SMALL_SHARE of the purchase lines below SMALL_AMOUNT
SMALL_AMOUNT, SMALL_SHARE = 10.0, 0.9


def _plausible(name: str, present: list[str], config: DataConfig) -> list[tuple[str, str]]:
    """The plausibility checks of a table, from the contract's units: (column, kind) with kind
    ``share`` (a fraction 0–1), ``growth`` (a rate per year: above 100% on most rows means percents),
    ``scale`` (a 0–10 score) or ``small`` (currency amounts mostly below 10 without `amount_unit:`)."""
    out = []
    for col in config.tables[name].contract(name).columns:
        if col.name not in present or col.dtype not in ("float", "int"):
            continue
        if col.unit == "fraction":
            out.append((col.name, "share"))
        elif col.unit.startswith("fraction"):
            out.append((col.name, "growth"))
        elif col.unit.startswith("points 0"):
            out.append((col.name, "scale"))
        elif name == "transactions" and col.name == "amount" and config.tables[name].amount_unit == 1:
            out.append((col.name, "small"))
    return out

#: a transactions row equal to an earlier source line in every column (``dup_rows``, :func:`_duplicate_lines`)
DUPLICATE = "_row_ IN (SELECT _row_ FROM dup_rows)"


def _check(db, columns: dict[str, list[str]], config: DataConfig, as_of: pd.Timestamp | None,
           problems: list[Problem]) -> None:
    """The cross-row and cross-table rules, in the order the report lists them; declared drops applied.

    Each table is scanned once for every count (a rule after a declared drop counts only the rows
    the drop keeps); rows are fetched only for the rules that hold somewhere (their first rows).

    Long because every cross-row rule is counted in one scan per table: the rules are listed, counted
    together, then reported in the report's order."""
    drops = {name: set(src.drop) for name, src in config.tables.items()}
    _q, _lit = db.d.q, db.d.text  # noqa: N806 - the engine's quoting
    duplicate = DUPLICATE if db.count("dup_rows") else "false"

    def remove(name: str, cond: str) -> None:
        db.delete(f"t_{name}", cond)

    # rows without a customer id cannot be attributed to anyone (only when declared: else completeness says it)
    for name in ("transactions", "interactions", "opportunities", "measures"):
        if name in columns and "customer_id" in columns[name] and "missing_customer_id" in drops.get(name, set()):
            cnt = db.fetch(f"SELECT count(*) FROM t_{name} WHERE customer_id IS NULL")[0][0]
            if cnt:
                rows, _ = _sample(db, f"t_{name}", "customer_id IS NULL")
                severity, text = Texts.declared(Texts.MISSING_IDS, name, "missing_customer_id", True)
                problems.append(Problem(severity, name, "customer_id", text, rows, int(cnt), "", "missing_customer_id"))
                remove(name, "customer_id IS NULL")

    for name in columns:
        for key in TABLES[name].unique:
            k = _q(key)
            cond = f"{k} IN (SELECT {k} FROM t_{name} WHERE {k} IS NOT NULL GROUP BY {k} HAVING count(*) > 1)"
            cnt, ids, distinct = db.fetch(
                f"SELECT count(*), count(DISTINCT {k}), (SELECT count(*) FROM (SELECT DISTINCT "
                f"{', '.join(_q(c) for c in columns[name])} FROM t_{name} WHERE {cond})) FROM t_{name} WHERE {cond}"
            )[0]
            if cnt:
                rows, ex = _sample(db, f"t_{name}", cond, k)
                problems.append(Problem("error", name, key, Texts.duplicate_ids(key, ids, cnt, distinct > ids), rows,
                                        int(cnt), ex, "duplicate_id"))

    # every other rule: one scan per table; `kept` is what the declared drops before a rule leave
    cutoff = (as_of.normalize() + pd.Timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S") if as_of is not None else None
    known = "customer_id IS NOT NULL AND customer_id NOT IN (SELECT customer_id FROM t_customers WHERE customer_id IS NOT NULL)"
    rules: dict[str, list[tuple[str, str]]] = {}  # table → [(rule id, SQL condition incl. what is still kept)]
    dropping: dict[str, list[str]] = {}
    for name in columns:
        kept: list[str] = []

        def rule(rid: str, cond: str, name=name, kept=kept) -> str:
            full = " AND ".join([f"({cond})"] + [f"NOT coalesce({k}, false)" for k in kept])
            rules.setdefault(name, []).append((rid, full))
            return full

        if name == "transactions":
            rule("dup", duplicate)
            if "duplicate_lines" in drops.get(name, set()):
                kept.append(duplicate)
            rule("returns", "amount < 0")
            rule("zeros", "amount = 0")
        if "customers" in columns and name != "customers":
            rule("unknown", known)
            if "unknown_customers" in drops.get(name, set()):
                kept.append(f"({known})")
        rule("n", "true")
        for key in TABLES[name].keys:
            if key in columns[name]:
                rule(f"null:{key}", f"{_q(key)} IS NULL")
        dcol = TABLES[name].date_column
        if cutoff and dcol and dcol in columns[name]:
            rule("late", f"{_q(dcol)} >= TIMESTAMP {_lit(cutoff)}")
        for col, kind in _plausible(name, columns[name], config):  # the common slips, by the contract's units
            c = _q(col)
            if kind == "share":
                rule(f"share:{col}", f"{c} > 1 OR {c} < 0")
            elif kind == "growth":
                rule(f"known:{col}", f"{c} IS NOT NULL")
                rule(f"growth:{col}", f"abs({c}) > 1")
            elif kind == "scale":
                rule(f"scale:{col}", f"{c} < 0 OR {c} > 10")
            elif kind == "small":
                rule("buys", f"{c} > 0")
                rule("small", f"{c} > 0 AND {c} < {SMALL_AMOUNT!r}")
        dropping[name] = kept
    counts: dict[str, dict[str, int]] = {}
    for name, rs in rules.items():
        got = db.fetch("SELECT " + ", ".join(f"count(*) FILTER (WHERE {c})" for _, c in rs)
                       + f" FROM t_{name}")[0]
        counts[name] = {rid: int(v) for (rid, _), v in zip(rs, got)}
    cond = {name: dict(rs) for name, rs in rules.items()}

    def report(name: str, rid: str, severity: str, column: str, text: str, example: str = "NULL",
               drop_kind: str | None = None, *, check: str) -> None:
        cnt = counts[name].get(rid, 0)
        if not cnt:
            return
        rows, ex = _sample(db, f"t_{name}", cond[name][rid], example)
        if drop_kind is not None:
            severity, text = Texts.declared(text, name, drop_kind, drop_kind in drops.get(name, set()))
        problems.append(Problem(severity, name, column, text, rows, cnt, ex, check))

    if "transactions" in columns:
        example = "order_id" if "order_id" in columns["transactions"] else "customer_id"
        report("transactions", "dup", "error", "", Texts.DUPLICATE_LINES, example, "duplicate_lines",
               check="duplicate_lines")
        report("transactions", "returns", "warning", "amount", Texts.RETURNS, "amount", check="negative_amounts")
        report("transactions", "zeros", "warning", "amount", Texts.ZEROS, "amount", check="zero_amounts")
    if "customers" in columns:
        for name in ("transactions", "interactions", "opportunities", "measures"):
            if name in columns:
                report(name, "unknown", "error", "customer_id", Texts.UNKNOWN_CUSTOMERS, "customer_id",
                       "unknown_customers", check="unknown_customer")
    for name in columns:
        n = counts[name]["n"]
        if not n:
            continue
        for key in TABLES[name].keys:
            if key in columns[name]:
                cnt = counts[name][f"null:{key}"]
                share = (n - cnt) / n
                if share < COMPLETENESS_THRESHOLD:
                    rows, _ = _sample(db, f"t_{name}", cond[name][f"null:{key}"])
                    problems.append(Problem("error", name, key, Texts.incomplete(key, share), rows, cnt, "", "incomplete"))
    if cutoff:
        for name in columns:
            dcol = TABLES[name].date_column
            if "late" in counts[name] and counts[name]["late"]:
                rows, ex = _sample(db, f"t_{name}", cond[name]["late"], _q(dcol))
                problems.append(Problem("warning", name, dcol, Texts.after_as_of(as_of), rows,
                                        counts[name]["late"], ex, "after_as_of"))
    for name in columns:  # plausibility: warnings, the data is graded as it is
        cnt = counts[name]
        for col, kind in _plausible(name, columns[name], config):
            if kind == "share":
                report(name, f"share:{col}", "warning", col, Texts.share_range(col), _q(col), check="share_out_of_range")
            elif kind == "growth" and cnt[f"growth:{col}"] >= 0.5 * max(cnt[f"known:{col}"], 1):
                report(name, f"growth:{col}", "warning", col, Texts.percent_like(col, cnt[f"growth:{col}"],
                                                                                cnt[f"known:{col}"]), _q(col),
                       check="growth_as_percent")
            elif kind == "scale":
                report(name, f"scale:{col}", "warning", col, Texts.OFF_SCALE, _q(col), check="score_off_scale")
            elif kind == "small" and cnt["buys"] >= 20 and cnt["small"] >= SMALL_SHARE * cnt["buys"]:
                report(name, "small", "warning", col, Texts.small_amounts(cnt["small"] / cnt["buys"]), _q(col),
                       check="amounts_look_like_wan")
    for name, kept in dropping.items():  # the declared drops that held somewhere
        hits = [k for k, rid in ((duplicate, "dup"), (f"({known})", "unknown")) if k in kept and counts[name].get(rid)]
        if hits:
            remove(name, " OR ".join(hits))
