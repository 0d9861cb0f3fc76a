"""Point-in-time features: one row per customer as known at the end of the ``as_of`` day.

Public: missing_indicators, available_indicators, SnapshotPlan, plan, snapshot, run_duckdb,
snapshot_frame_of.
Reads: the validated tables. Writes: nothing (snapshots are kept in the tables' database per date).

``snapshot(tables, as_of)`` turns the contract's tables into named indicators (``annual_amount``,
``recency_days``, ``tenure_years``, …). Every indicator is registered once in :data:`INDICATORS` with
its unit, window, source table, meaning and dtype; schemes refer to indicators by these names.

Point in time
-------------
``as_of`` is a day. Everything up to and including the whole ``as_of`` day counts (``date < as_of +
1 day``, the *cut-off*); nothing dated after it influences any value:

* transactions and interactions dated after the cut-off are ignored;
* opportunities created after the cut-off are ignored; one won or lost after the cut-off counts as
  *open* at ``as_of``;
* a complaint resolved after the cut-off (``date + resolution_hours``) counts as *open*, and its
  resolution time is not used;
* customers created after ``as_of`` are not in the population (unless they already bought by then:
  then they are, but their ``created_date`` is ignored);
* a customer's status is ``'lost'`` only when the status is lost/closed **and** ``status_date <=
  as_of``; otherwise ``'active'`` (a lost/closed status without a ``status_date`` cannot be placed in
  time and reads ``'active'``).

Two things the contract tables keep no history for are used as last recorded: the customers' static
attributes (industry, region, size, growth rates, …) and an opportunity's ``stage`` /
``expected_close_date`` — unless the measures table holds their history (a measure named like the
attribute; the measure ``stage`` for ``latest_stage``): then the latest value before the cut-off wins
(segment.features.declared).

Windows
-------
With ``c`` the cut-off (``as_of`` + 1 day): **12m** = ``[c − 365 d, c)``, the 365 days ending with
``as_of``; **prev 12m** = ``[c − 730 d, c − 365 d)``; **6m** = ``[c − 182 d, c)``; **prev 6m** =
``[c − 364 d, c − 182 d)``; **90d** (SEEDS "last 3 months") = ``[c − 90 d, c)``; **all history** =
everything before ``c``; **latest** = the most recent event before ``c``; **at as_of** = the state at
the cut-off; **static** = a customers-table attribute as recorded.

Purchases, orders, returns
--------------------------
Amounts, margins and quantities are **net**: returns (negative lines) are summed in. A *purchase* is
a line with ``amount > 0``: only purchases count as orders and as purchase dates (``first_purchase``,
``last_purchase``, recency, ``buys_core_product``, ``product_lines_12m``). Orders are distinct
``order_id`` among purchase lines; a purchase line without an ``order_id`` (or a table without the
column) is one order by itself.

Population
----------
Customers of the customers table created on or before ``as_of`` (or with no ``created_date``), plus
every customer with any transaction (returns included) on or before ``as_of``. Customers lost before
``as_of`` stay in (see ``status``). ``customers=`` restricts the result to those ids (ids outside the
population are not added).

Availability
------------
An indicator appears in the snapshot only when its source table is loaded and the optional contract
columns it needs (:attr:`Indicator.columns`) are present; otherwise it is left out (never filled with
NaN), so a scheme can name what is missing (:func:`missing_indicators`). Counts and sums are 0 for a
customer without events; "latest" values, averages and ratios are NaN/NA then.

The aggregation runs in DuckDB: one query per source table, joined on ``customer_id``. Sums of
amounts, margins and quantities are rounded to 6 decimals and means to 9 so that repeated runs give
identical numbers (DuckDB's parallel summation order otherwise moves the last bit, and a value at a
band cut-off such as exactly 50万 could flip between runs)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from segment.data.contract import ALIAS, TABLES
from segment.errors import SegmentError
from segment.features.declared import NO_DECLARATIONS, Declared, declared_sql
from segment.features.registry import (
    CHURN_RISK_RATIO,
    CONTACT_KINDS,
    DAYS_6M,
    DAYS_12M,
    DAYS_ACTIVE,
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    FREQ_HIGH_PER_MONTH,
    FREQ_LOW_PER_MONTH,
    INDICATORS,
    VALUE_HIGH,
    VALUE_MID,
    ZERO_WHEN_ABSENT,
)
from segment.plumbing.sql import DIALECTS, DUCKDB, Dialect

if TYPE_CHECKING:
    from segment.data.tables import Tables


def missing_indicators(tables: Tables) -> dict[str, str]:
    """Registered indicators these tables cannot provide, each with the reason."""
    return _missing({n: tables.columns(n) for n in tables.present()})


def available_indicators(tables: Tables) -> list[str]:
    """Registered indicators these tables provide, in registry order (the snapshot's columns)."""
    missing = missing_indicators(tables)
    return [n for n in INDICATORS if n not in missing]


def _as_of(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError("as_of is missing")
    if ts.tz is not None:
        ts = ts.tz_localize(None)
    return ts.normalize().as_unit("ns")


def _lit(ts: pd.Timestamp) -> str:
    return f"TIMESTAMP '{ts:%Y-%m-%d %H:%M:%S}'"


def _cols(present, spec: dict[str, str], d: Dialect) -> str:
    """A projection casting each column to its SQL type; an optional column the source lacks is NULL."""
    return ", ".join(f"CAST({d.q(c)} AS {t}) AS {c}" if c in present else f"CAST(NULL AS {t}) AS {c}"
                     for c, t in spec.items())

#: floating sums and means are rounded to this many decimals: DuckDB adds the rows of a group in

#: whatever order its threads deliver them, which moves the last bit between runs (seen on ~50 of 1M

#: customers even with the compensated fsum); rounding makes every run give the same numbers
SUM_DECIMALS, AVG_DECIMALS = 6, 9


def _sum(d: Dialect, col: str, where: str | None = None) -> str:
    """A compensated, rounded sum (see ``SUM_DECIMALS``), optionally filtered."""
    return f"ROUND({d.sum_fn}({col})" + (f" FILTER (WHERE {where})" if where else "") + f", {SUM_DECIMALS})"


def _avg(d: Dialect, col: str, where: str) -> str:
    return f"ROUND({d.avg_fn}({col}) FILTER (WHERE {where}), {AVG_DECIMALS})"


def _filter_ids(restricted: bool) -> str:
    return " AND customer_id IN (SELECT customer_id FROM wanted)" if restricted else ""


def _transactions_sql(present, w: dict[str, str], restricted: bool, d: Dialect = DUCKDB, src: str = "tx") -> str:
    """All transaction aggregates, one row per customer with any line before the cut-off.

    Orders and product lines are counted in their own groupings (``orders``, ``lines``) because
    DuckDB's filtered ``COUNT(DISTINCT …)`` is several times slower than a ``GROUP BY``. In ``orders``
    all of a customer's purchase lines without an order id share one row and count one order each."""
    cols = _cols(present, {"customer_id": "STRING", "date": "TIMESTAMP", "amount": "DOUBLE", "order_id": "STRING",
                           "product_line": "STRING", "quantity": "DOUBLE", "margin": "DOUBLE",
                           "core_product": "BOOLEAN"}, d)
    p12, p6 = f"date >= {w['s12']}", f"date >= {w['s6']}"
    prev12 = f"date >= {w['s24']} AND date < {w['s12']}"
    prev6 = f"date >= {w['s6p']} AND date < {w['s6']}"
    # the 90d window starts 90 days before the cut-off (plan's literal ``c``)
    s90 = w["s90"]
    p90 = f"date >= {s90}"
    buy = "amount > 0"
    return f"""
    WITH t AS (
      SELECT * FROM (SELECT {cols} FROM {src}) AS src
      WHERE date < {w['c']} AND customer_id IS NOT NULL{_filter_ids(restricted)}),
    sums AS (
      SELECT customer_id,
        COALESCE({_sum(d, 'amount', p12)}, 0) AS annual_amount,
        COALESCE({_sum(d, 'amount', prev12)}, 0) AS prev_annual_amount,
        COALESCE({_sum(d, 'amount', p6)}, 0) AS amount_6m,
        COALESCE({_sum(d, 'amount', prev6)}, 0) AS prev_amount_6m,
        CAST(MIN(date) FILTER (WHERE {buy}) AS DATE) AS first_purchase,
        CAST(MAX(date) FILTER (WHERE {buy}) AS DATE) AS last_purchase,
        CASE WHEN COUNT(*) FILTER (WHERE {p12}) = 0 THEN 0 ELSE {_sum(d, 'margin', p12)} END AS profit_12m,
        COALESCE({_sum(d, 'quantity')}, 0) AS volume_total,
        COALESCE({_sum(d, 'quantity', p12)}, 0) AS volume_12m,
        COALESCE(BOOL_OR(core_product) FILTER (WHERE {buy} AND {p12}), false) AS buys_core_product
      FROM t GROUP BY customer_id),
    orders AS (
      SELECT customer_id,
        CAST(SUM(CASE WHEN order_id IS NULL THEN n12 ELSE LEAST(n12, 1) END) AS BIGINT) AS orders_12m,
        CAST(SUM(CASE WHEN order_id IS NULL THEN n90 ELSE LEAST(n90, 1) END) AS BIGINT) AS orders_90d,
        CAST(SUM(CASE WHEN order_id IS NULL THEN n ELSE 1 END) AS BIGINT) AS orders_total
      FROM (SELECT customer_id, order_id, COUNT(*) AS n, COUNT(*) FILTER (WHERE {p12}) AS n12,
                   COUNT(*) FILTER (WHERE {p90}) AS n90
            FROM t WHERE {buy} GROUP BY customer_id, order_id) AS per_order
      GROUP BY customer_id),
    lines AS (
      SELECT customer_id, COUNT(DISTINCT product_line) AS product_lines_12m
      FROM t WHERE {buy} AND {p12} GROUP BY customer_id)
    SELECT sums.*, COALESCE(orders_12m, 0) AS orders_12m, COALESCE(orders_90d, 0) AS orders_90d,
      COALESCE(orders_total, 0) AS orders_total,
      COALESCE(product_lines_12m, 0) AS product_lines_12m
    FROM sums LEFT JOIN orders USING (customer_id) LEFT JOIN lines USING (customer_id)"""


def _interactions_sql(present, w: dict[str, str], restricted: bool, d: Dialect = DUCKDB, src: str = "it") -> str:
    """All interaction aggregates, one row per customer with any interaction before the cut-off."""
    cols = _cols(present, {"customer_id": "STRING", "date": "TIMESTAMP", "kind": "STRING", "severity": "STRING",
                           "resolution_hours": "DOUBLE", "score": "DOUBLE"}, d)
    p12, p6 = f"date >= {w['s12']}", f"date >= {w['s6']}"
    cp = "kind = 'complaint'"
    # resolved by the cut-off: date + resolution_hours < cut-off (seconds since the complaint)
    resolved = f"(resolution_hours IS NOT NULL AND resolution_hours * 3600.0 < {d.seconds_between('date', w['c'])})"
    contact = "kind IN (" + ", ".join(f"'{k}'" for k in CONTACT_KINDS) + ")"
    survey = "kind = 'survey' AND score IS NOT NULL"
    return f"""
    SELECT customer_id,
      COUNT(*) FILTER (WHERE {cp} AND {p12}) AS complaints_12m,
      COUNT(*) FILTER (WHERE {cp} AND {p12} AND severity = 'major') AS major_complaints_12m,
      COUNT(*) FILTER (WHERE {cp} AND {p6}) AS complaints_6m,
      {_avg(d, 'resolution_hours', f'{cp} AND {p12} AND {resolved}')} AS complaint_resolution_hours,
      COUNT(*) FILTER (WHERE {cp} AND NOT {resolved}) AS open_complaints,
      {d.arg_max('score', 'date', '-score')} FILTER (WHERE {survey}) AS satisfaction_latest,
      {_avg(d, 'score', f'{survey} AND {p12}')} AS satisfaction_avg_12m,
      COUNT(*) FILTER (WHERE kind = 'referral' AND {p12}) AS referrals_12m,
      COUNT(*) FILTER (WHERE {contact} AND {p12}) AS contacts_12m,
      COUNT(*) FILTER (WHERE kind = 'visit' AND {p12}) AS visits_12m,
      COUNT(*) FILTER (WHERE kind = 'consultation' AND {p6}) AS consultations_6m,
      COUNT(*) FILTER (WHERE kind = 'campaign' AND {p12}) AS campaigns_12m,
      COUNT(*) FILTER (WHERE kind = 'praise' AND {p12}) AS praise_12m,
      CAST(MAX(date) FILTER (WHERE {contact}) AS DATE) AS last_contact
    FROM (SELECT {cols} FROM {src}) AS src
    WHERE date < {w['c']} AND customer_id IS NOT NULL{_filter_ids(restricted)}
    GROUP BY customer_id"""


def _opportunities_sql(present, w: dict[str, str], restricted: bool, d: Dialect = DUCKDB, src: str = "op") -> str:
    """All opportunity aggregates, one row per customer with an opportunity created before the cut-off."""
    cols = _cols(present, {"opportunity_id": "STRING", "customer_id": "STRING", "created_date": "TIMESTAMP",
                           "stage": "STRING", "expected_close_date": "TIMESTAMP", "amount": "DOUBLE",
                           "status": "STRING", "closed_date": "TIMESTAMP"}, d)
    # when the opportunity stopped being open (NULL: still open today)
    closing = ("CASE WHEN lower(status) IN ('won', 'lost') "
               "THEN COALESCE(closed_date, expected_close_date, created_date) "
               "WHEN status IS NULL THEN closed_date END")
    is_open = f"(closing IS NULL OR closing >= {w['c']})"
    return f"""
    SELECT customer_id,
      COUNT(*) FILTER (WHERE {is_open}) AS open_opportunities,
      CAST(MIN(expected_close_date) FILTER (WHERE {is_open}) AS DATE) AS next_close,
      COALESCE({_sum(d, 'amount', is_open)}, 0) AS pipeline_amount,
      {d.arg_max('stage', 'created_date', 'opportunity_id')} AS latest_stage,
      COUNT(*) FILTER (WHERE lower(status) = 'won' AND closing >= {w['s12']} AND closing < {w['c']}) AS won_12m
    FROM (SELECT *, {closing} AS closing FROM (SELECT {cols} FROM {src}) AS src) AS src2
    WHERE created_date < {w['c']} AND customer_id IS NOT NULL{_filter_ids(restricted)}
    GROUP BY customer_id"""


def _customers_sql(present, w: dict[str, str], restricted: bool, d: Dialect = DUCKDB, src: str = "cu") -> str:
    """Customers-table attributes of the population: static columns, point-in-time status."""
    static = {"industry": "STRING", "region": "STRING", "size_employees": "BIGINT", "annual_revenue": "DOUBLE",
              "industry_growth": "DOUBLE", "budget_growth": "DOUBLE", "market_share": "DOUBLE",
              "strategic": "BOOLEAN", "account_manager": "STRING", "product_lines": "STRING"}
    cols = _cols(present, {"customer_id": "STRING", "created_date": "TIMESTAMP", "status": "STRING",
                           "status_date": "TIMESTAMP", **static}, d)
    return f"""
    SELECT customer_id, {', '.join(static)},
      CASE WHEN created_date < {w['c']} THEN CAST(created_date AS DATE) END AS created_day,
      (created_date IS NULL OR created_date < {w['c']}) AS created_by_as_of,
      CASE WHEN lower(status) IN ('lost', 'closed') AND status_date < {w['c']} THEN 'lost' ELSE 'active' END
        AS status
    FROM (SELECT {cols} FROM {src}) AS src
    WHERE customer_id IS NOT NULL{_filter_ids(restricted)}"""


def _derived_sql(day: pd.Timestamp, with_customers: bool, dialect: Dialect = DUCKDB) -> dict[str, str]:
    """The final SQL expression of every indicator over the joined per-table aggregates.

    Counts and sums are 0 for customers without events (the LEFT JOINs leave NULL); ratios, dates,
    "latest" values and averages stay NULL (NaN/NaT/NA)."""
    d = f"DATE '{day:%Y-%m-%d}'"

    def num(x: float) -> str:
        return f"CAST({x!r} AS DOUBLE)"

    zero = lambda c: f"COALESCE({c}, 0)"  # noqa: E731
    orders, annual, prev = zero("orders_12m"), zero("annual_amount"), zero("prev_annual_amount")
    recency = f"CAST({dialect.days_between('last_purchase', d)} AS DOUBLE)"
    # years of cooperation count from the first purchase (the seeds' 合作年限 / 合作时长); the CRM's
    # registration date is registered_years (with_customers: the customers table is loaded)
    tenure = f"{dialect.days_between('first_purchase', d)} / {num(DAYS_PER_YEAR)}"
    registered = f"{dialect.days_between('created_day', d)} / {num(DAYS_PER_YEAR)}" if with_customers else "NULL"
    contacts = zero("contacts_12m")
    sql = {n: zero(n) for n in ZERO_WHEN_ABSENT}
    sql.update({
        "amount_growth": f"CASE WHEN {prev} > 0 THEN {annual} / {prev} - 1 END",
        "orders_per_quarter": f"{orders} / {num(4.0)}",
        "orders_per_month": f"{orders} / {num(12.0)}",
        "avg_order_value": f"CASE WHEN {orders} > 0 THEN {annual} / {orders} END",
        "recency_days": recency,
        "first_purchase": "CAST(first_purchase AS TIMESTAMP)",
        "last_purchase": "CAST(last_purchase AS TIMESTAMP)",
        "tenure_years": tenure,
        "registered_years": f"CAST({registered} AS DOUBLE)",
        # no transactions at all: 0; lines without any margin: NULL
        "profit_12m": "CASE WHEN annual_amount IS NULL THEN 0 ELSE profit_12m END",
        "margin_rate_12m": f"CASE WHEN {annual} > 0 THEN profit_12m / {annual} END",
        "buys_core_product": "COALESCE(buys_core_product, false)",
        "months_since_last_order": f"{recency} / {num(DAYS_PER_MONTH)}",
        "tag_tenure": f"CASE WHEN {tenure} < 1 THEN 'new' WHEN {tenure} >= 1 THEN 'old' END",
        "tag_frequency": f"CASE WHEN {orders} / {num(12.0)} >= {num(FREQ_HIGH_PER_MONTH)} THEN 'high' "
                         f"WHEN {orders} / {num(12.0)} < {num(FREQ_LOW_PER_MONTH)} THEN 'low' ELSE 'mid' END",
        "tag_value": f"CASE WHEN {annual} >= {num(VALUE_HIGH)} THEN 'high' WHEN {annual} >= {num(VALUE_MID)} "
                     f"THEN 'mid' ELSE 'low' END",
        "tag_state": f"CASE WHEN last_purchase IS NULL THEN 'prospect' "
                     f"WHEN {prev} > 0 AND {annual} <= {num(CHURN_RISK_RATIO)} * {prev} THEN 'churn_risk' "
                     f"WHEN {recency} < {DAYS_ACTIVE} THEN 'active' ELSE 'dormant' END",
        "complaint_resolution_hours": "complaint_resolution_hours",
        "satisfaction_latest": "satisfaction_latest",
        "satisfaction_avg_12m": "satisfaction_avg_12m",
        "nps_latest": "CASE WHEN satisfaction_latest >= 9 THEN 100.0 WHEN satisfaction_latest >= 7 THEN 0.0 "
                      "WHEN satisfaction_latest IS NOT NULL THEN -100.0 END",
        "contacts_per_month": f"{contacts} / {num(12.0)}",
        "days_since_contact": f"CAST({dialect.days_between('last_contact', d)} AS DOUBLE)",
        "status": "COALESCE(status, 'active')",
        "days_to_close": f"CAST({dialect.days_between(d, 'next_close')} AS DOUBLE)",
        "latest_stage": "latest_stage",
    })
    for name in INDICATORS:
        sql.setdefault(name, name)  # passed through as aggregated (customers' attributes)
    return sql


@dataclass(frozen=True)
class SnapshotPlan:
    """The snapshot as SQL for one engine: per-table aggregate queries (each to be materialised
    under its name, e.g. ``a_tx``) and the final query joining them, sorted by ``customer_id``.

    ``sources`` maps each contract table to the relation name the queries read (``tx``, ``cu``, ``it``,
    ``op``), plus ``wanted`` (one column ``customer_id``) when the customers are restricted."""

    day: pd.Timestamp
    keep: list[str]
    sources: dict[str, str]
    aggregates: list[tuple[str, str]]  # (name, sql)
    final: str
    #: the pandas dtype of every indicator column (built-in and declared)
    dtypes: dict[str, str]
_BUILDERS = {"transactions": _transactions_sql, "customers": _customers_sql, "interactions": _interactions_sql,
             "opportunities": _opportunities_sql}


def _missing(present: dict[str, Iterable[str]]) -> dict[str, str]:
    """``missing_indicators`` over the column names of each loaded table."""
    out: dict[str, str] = {}
    for name, ind in INDICATORS.items():
        cols = present.get(ind.source)
        if cols is None:
            out[name] = f"table {ind.source} not loaded"
            continue
        absent = [c for c in ind.columns if c.split(".", 1)[1] not in cols]
        if absent:
            out[name] = f"column(s) {', '.join(absent)} missing"
    return out


def plan(present: dict[str, Iterable[str]], as_of, *, restricted: bool = False,
         dialect: Dialect | str = DUCKDB, declared: Declared = NO_DECLARATIONS) -> SnapshotPlan:
    """The snapshot's SQL for tables with these contract columns (table → column names).

    This is the single definition every engine runs: :func:`snapshot` (DuckDB over pandas frames),
    :mod:`segment.data.spark` (DuckDB over files, Spark)."""
    d = DIALECTS[dialect] if isinstance(dialect, str) else dialect
    present = {k: set(v) for k, v in present.items() if v is not None}
    if "transactions" not in present:
        raise SegmentError("the transactions table is mandatory")
    for name, cols in present.items():
        absent = [c for c in TABLES[name].required if c not in cols]
        if absent:
            raise SegmentError(f"the {name} table lacks required column(s) {', '.join(absent)} "
                               f"(see the data contract)")
    day = _as_of(as_of)
    cut = day + pd.Timedelta(days=1)
    w = {"c": _lit(cut),
         "s12": _lit(cut - pd.Timedelta(days=DAYS_12M)), "s24": _lit(cut - pd.Timedelta(days=2 * DAYS_12M)),
         "s6": _lit(cut - pd.Timedelta(days=DAYS_6M)), "s6p": _lit(cut - pd.Timedelta(days=2 * DAYS_6M)),
         "s90": _lit(cut - pd.Timedelta(days=DAYS_ACTIVE))}
    missing = _missing(present)
    keep = [n for n in INDICATORS if n not in missing]
    derived = _derived_sql(day, "customers" in present, d)
    aggregates, joins, sources = [], [], {}
    for name, build in _BUILDERS.items():
        if name not in present:
            continue
        alias = sources[name] = ALIAS[name]
        aggregates.append((f"a_{alias}", build(present[name], w, restricted, d, alias)))
        joins.append(f"LEFT JOIN a_{alias} USING (customer_id)")
    if restricted:
        sources["wanted"] = "wanted"
    dtypes = {n: INDICATORS[n].dtype for n in keep}
    if declared.fields or declared.indicators or "measures" in present:
        extra = declared_sql(declared, present, {n: derived[n] for n in keep}, w, cut, restricted, d, _lit)
        for name, table, sql in extra.aggregates:
            sources.setdefault(table, ALIAS[table])
            aggregates.append((name, sql))
            joins.append(f"LEFT JOIN {name} USING (customer_id)")
        for attr, sql in extra.history.items():  # a customers attribute's history wins over its last record
            if attr in derived:
                derived[attr] = f"COALESCE({sql}, {derived[attr]})"
            elif attr in extra.select:
                extra.select[attr] = f"COALESCE({sql}, {extra.select[attr]})"
        derived.update(extra.select)
        keep += list(extra.select)
        dtypes.update(extra.dtypes)
    pop = "SELECT customer_id FROM a_tx" + (
        " UNION SELECT customer_id FROM a_cu WHERE created_by_as_of" if "customers" in present else "")
    select = ", ".join(f"{derived[n]} AS {d.q(n)}" for n in keep)
    final = f"SELECT customer_id, {select} FROM ({pop}) AS pop {' '.join(joins)} ORDER BY customer_id"
    return SnapshotPlan(day, keep, sources, aggregates, final, dtypes)


def snapshot(tables: Tables, as_of, *, customers: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per customer of the population at ``as_of``, sorted by ``customer_id``.

    Columns: ``customer_id``, ``as_of`` and every indicator the loaded tables and columns allow (see
    :func:`available_indicators`), in registry order. Nothing dated after ``as_of`` is used; the
    tables are not modified. Runs in DuckDB where the tables are (:class:`segment.data.tables.Tables`); only
    the per-customer rows come back. Spark runs the same SQL (:func:`plan`, :mod:`segment.data.spark`)."""
    if tables is None or "transactions" not in tables.present():
        raise SegmentError("the transactions table is mandatory")
    return tables.snapshot(as_of, customers)


def run_duckdb(con: "duckdb.DuckDBPyConnection", p: SnapshotPlan, into: str | None = None):
    """Run a plan on a DuckDB connection whose relations ``p.sources`` exist; an arrow table.
    ``into``: the snapshot is also kept in that table of the database."""
    for name, sql in p.aggregates:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    if into is None:
        return con.sql(p.final).to_arrow_table()
    con.execute(f"CREATE OR REPLACE TABLE {into} AS {p.final}")
    for name, _ in p.aggregates:
        con.execute(f"DROP TABLE {name}")
    return con.sql(f"SELECT * FROM {into} ORDER BY customer_id").to_arrow_table()


def snapshot_frame_of(result, p: SnapshotPlan) -> pd.DataFrame:
    """The fetched arrow table as a DataFrame with the plan's dtypes, ``as_of`` second."""
    day, keep = p.day, p.keep
    mapper = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype(),
              pa.string_view(): pd.StringDtype(), pa.bool_(): pd.BooleanDtype()}.get
    if isinstance(result, pd.DataFrame):  # Spark's toPandas
        raw = result.reset_index(drop=True)
    else:
        raw = result.to_pandas(types_mapper=mapper, date_as_object=False, split_blocks=True)
    cols = {"customer_id": raw["customer_id"].astype("string"),
            "as_of": pd.Series(np.full(len(raw), day.to_datetime64(), dtype="datetime64[ns]"), index=raw.index)}
    for name in keep:
        cols[name] = raw[name].astype(p.dtypes[name])
    return pd.DataFrame(cols)
