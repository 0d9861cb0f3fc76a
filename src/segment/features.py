"""Point-in-time features: one row per customer as known at the end of the ``as_of`` day.

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

Two things the contract keeps no history for are used as last recorded: the customers' static
attributes (industry, region, size, growth rates, …) and an opportunity's ``stage`` /
``expected_close_date``.

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

The aggregation runs in DuckDB: one query per source table, joined on ``customer_id``.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from segment.io import Tables

SOURCES = ("transactions", "interactions", "customers", "opportunities")

#: the windows an indicator can have (see the module docstring)
WINDOWS = ("12m", "prev 12m", "12m vs prev 12m", "6m", "prev 6m", "90d", "all history", "latest",
           "at as_of", "static")

#: day lengths of the windows
DAYS_12M = 365
DAYS_6M = 182
DAYS_ACTIVE = 90  # SEEDS step 3: active = bought in the last 3 months
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = 30.44

#: SEEDS step 3 tag thresholds
VALUE_HIGH = 1_000_000.0  # 100万 a year
VALUE_MID = 500_000.0  # 50万 a year
FREQ_HIGH_PER_MONTH = 3.0
FREQ_LOW_PER_MONTH = 1.0
CHURN_RISK_RATIO = 0.7  # purchase amount down by 30% or more

CONTACT_KINDS = ("consultation", "visit", "call")


@dataclass(frozen=True)
class Indicator:
    """A named indicator: what it measures, in which unit, over which window, from which table.

    ``columns`` lists the optional contract columns (``table.column``) it needs besides the source
    table's required ones; ``dtype`` is the pandas dtype of its snapshot column."""

    name: str
    unit: str
    window: str
    source: str
    meaning: str
    dtype: str
    columns: tuple[str, ...] = ()


INDICATORS: dict[str, Indicator] = {}


def _reg(name: str, unit: str, window: str, source: str, dtype: str, meaning: str,
         columns: tuple[str, ...] = ()) -> None:
    if name in INDICATORS:
        raise ValueError(f"indicator {name!r} registered twice")
    if window not in WINDOWS:
        raise ValueError(f"indicator {name!r}: unknown window {window!r}")
    if source not in SOURCES:
        raise ValueError(f"indicator {name!r}: unknown source {source!r}")
    INDICATORS[name] = Indicator(name, unit, window, source, meaning, dtype, tuple(columns))


F, I, S, D, B = "float64", "int64", "string", "datetime64[ns]", "boolean"
T, X, C, O = "transactions", "interactions", "customers", "opportunities"

# --- transactions ---------------------------------------------------------------------------------
_reg("annual_amount", "currency", "12m", T, F, "Net transaction amount (returns subtracted) in the last 12 months")
_reg("prev_annual_amount", "currency", "prev 12m", T, F, "Net transaction amount in the 12 months before the last 12")
_reg("amount_growth", "fraction", "12m vs prev 12m", T, F,
     "annual_amount / prev_annual_amount − 1 (0.2 = +20%); NaN when prev_annual_amount ≤ 0")
_reg("orders_12m", "count", "12m", T, I,
     "Orders in the last 12 months: distinct order_id of purchase lines (amount > 0); a line without order_id is one order")
_reg("orders_per_quarter", "orders / quarter", "12m", T, F, "orders_12m / 4")
_reg("orders_per_month", "orders / month", "12m", T, F, "orders_12m / 12")
_reg("avg_order_value", "currency / order", "12m", T, F, "annual_amount / orders_12m; NaN without orders")
_reg("recency_days", "days", "latest", T, F, "Days from the last purchase day to as_of (0 = bought on as_of); NaN if never bought")
_reg("first_purchase", "date", "all history", T, D, "Day of the first purchase (line with amount > 0); NaT if never bought")
_reg("last_purchase", "date", "latest", T, D, "Day of the last purchase on or before as_of; NaT if never bought")
_reg("tenure_years", "years", "all history", T, F,
     "Years (days / 365.25) from the earlier of customers.created_date (when loaded and ≤ as_of) and "
     "first_purchase to as_of; NaN when neither is known")
_reg("profit_12m", "currency", "12m", T, F,
     "Net margin (profit contribution) in the last 12 months; NaN when the customer's lines have no margin",
     ("transactions.margin",))
_reg("margin_rate_12m", "fraction", "12m", T, F, "profit_12m / annual_amount; NaN when annual_amount ≤ 0",
     ("transactions.margin",))
_reg("orders_total", "count", "all history", T, I, "Orders (as in orders_12m) up to as_of")
_reg("volume_total", "units", "all history", T, F, "Net quantity up to as_of (S5 cumulative volume)",
     ("transactions.quantity",))
_reg("volume_12m", "units", "12m", T, F, "Net quantity in the last 12 months", ("transactions.quantity",))
_reg("buys_core_product", "flag", "12m", T, B, "Bought a core product (core_product line with amount > 0) in the last 12 months",
     ("transactions.core_product",))
_reg("product_lines_12m", "count", "12m", T, I, "Distinct product lines bought (amount > 0) in the last 12 months",
     ("transactions.product_line",))
_reg("amount_6m", "currency", "6m", T, F, "Net transaction amount in the last 6 months (182 days)")
_reg("prev_amount_6m", "currency", "prev 6m", T, F, "Net transaction amount in the 6 months (182 days) before the last 6")
_reg("months_since_last_order", "months", "latest", T, F, "recency_days / 30.44; NaN if never bought")
# SEEDS step 3 tags (transactions, with customers.created_date for tenure when loaded)
_reg("tag_tenure", "category", "all history", T, S, "'new' if tenure_years < 1, else 'old'; NA when tenure is unknown")
_reg("tag_frequency", "category", "12m", T, S,
     "'high' if orders_per_month ≥ 3, 'low' if < 1, else 'mid'")
_reg("tag_value", "category", "12m", T, S,
     "'high' if annual_amount ≥ 1,000,000 (100万), 'mid' if ≥ 500,000 (50万), else 'low'")
_reg("tag_state", "category", "at as_of", T, S,
     "First that applies: 'prospect' (never bought), 'churn_risk' (prev_annual_amount > 0 and annual_amount ≤ "
     "0.7 × prev_annual_amount), 'active' (bought in the last 90 days), 'dormant'")

# --- interactions ---------------------------------------------------------------------------------
_reg("complaints_12m", "count", "12m", X, I, "Complaints in the last 12 months")
_reg("major_complaints_12m", "count", "12m", X, I, "Complaints with severity 'major' in the last 12 months",
     ("interactions.severity",))
_reg("complaints_6m", "count", "6m", X, I, "Complaints in the last 6 months")
_reg("complaint_resolution_hours", "hours", "12m", X, F,
     "Mean resolution_hours of the last 12 months' complaints that were resolved by the end of as_of; NaN if none",
     ("interactions.resolution_hours",))
_reg("open_complaints", "count", "at as_of", X, I,
     "Complaints (any age) not resolved by the end of as_of: resolution_hours empty, or date + resolution_hours "
     "after the cut-off", ("interactions.resolution_hours",))
_reg("satisfaction_latest", "points 0–10", "latest", X, F,
     "Score of the latest survey with a score (ties at one timestamp: the lower score); NaN if none",
     ("interactions.score",))
_reg("satisfaction_avg_12m", "points 0–10", "12m", X, F, "Mean survey score in the last 12 months; NaN if none",
     ("interactions.score",))
_reg("nps_latest", "NPS points", "latest", X, F,
     "NPS class of satisfaction_latest: +100 promoter (≥ 9), 0 passive (≥ 7), −100 detractor (< 7); NaN if none",
     ("interactions.score",))
_reg("referrals_12m", "count", "12m", X, I, "Referrals made in the last 12 months")
_reg("contacts_12m", "count", "12m", X, I, "Consultations + visits + calls in the last 12 months")
_reg("contacts_per_month", "contacts / month", "12m", X, F, "contacts_12m / 12")
_reg("visits_12m", "count", "12m", X, I, "Visits in the last 12 months")
_reg("consultations_6m", "count", "6m", X, I, "Consultations (enquiries) in the last 6 months (S1 potential gate)")
_reg("campaigns_12m", "count", "12m", X, I, "Campaign participations in the last 12 months")
_reg("praise_12m", "count", "12m", X, I, "Praise received in the last 12 months")
_reg("days_since_contact", "days", "latest", X, F,
     "Days from the latest consultation, visit or call to as_of; NaN if none")

# --- customers (static attributes, passed through; status point in time) -------------------------
_reg("industry", "category", "static", C, S, "Industry code or name", ("customers.industry",))
_reg("region", "category", "static", C, S, "Sales region", ("customers.region",))
_reg("size_employees", "people", "static", C, "Int64", "Number of employees", ("customers.size_employees",))
_reg("annual_revenue", "currency / year", "static", C, F, "The customer's own annual revenue", ("customers.annual_revenue",))
_reg("industry_growth", "fraction / year", "static", C, F, "Growth rate of the customer's industry (0.12 = 12%)",
     ("customers.industry_growth",))
_reg("budget_growth", "fraction / year", "static", C, F, "Expected growth of the customer's budget for our products",
     ("customers.budget_growth",))
_reg("market_share", "fraction", "static", C, F, "The customer's share of its own market", ("customers.market_share",))
_reg("strategic", "flag", "static", C, B, "Strategic partnership (exclusive supply / joint R&D)", ("customers.strategic",))
_reg("account_manager", "category", "static", C, S, "Responsible account manager", ("customers.account_manager",))
_reg("product_lines", "category", "static", C, S, "Product lines the customer is set up for, ';'-separated",
     ("customers.product_lines",))
_reg("status", "category", "at as_of", C, S,
     "'lost' if the status is lost or closed and status_date ≤ as_of, else 'active' (also for customers "
     "missing from the customers table)", ("customers.status", "customers.status_date"))

# --- opportunities --------------------------------------------------------------------------------
_reg("open_opportunities", "count", "at as_of", O, I,
     "Opportunities created by as_of and not won/lost by then (closing date: closed_date, else "
     "expected_close_date, else created_date; without a status: closed_date alone)")
_reg("days_to_close", "days", "at as_of", O, F,
     "Min over open opportunities of expected_close_date − as_of in days (negative = overdue); NaN if none",
     ("opportunities.expected_close_date",))
_reg("pipeline_amount", "currency", "at as_of", O, F, "Sum of the open opportunities' amounts",
     ("opportunities.amount",))
_reg("latest_stage", "category", "latest", O, S,
     "Stage (as last recorded) of the most recently created opportunity (ties: the larger opportunity_id); NA if none")
_reg("won_12m", "count", "12m", O, I, "Opportunities won with a closing date in the last 12 months",
     ("opportunities.status",))

del F, I, S, D, B, T, X, C, O

#: counts and sums: 0 for a customer without events (flags: False)
_ZERO = {n for n, ind in INDICATORS.items() if ind.unit in ("count", "units")} | {
    "annual_amount", "prev_annual_amount", "amount_6m", "prev_amount_6m", "pipeline_amount"}


# --- public helpers -------------------------------------------------------------------------------

def required_tables(indicator_names: Iterable[str] | str) -> set[str]:
    """The tables the named indicators need (their source tables). Unknown names: ``KeyError``."""
    names = [indicator_names] if isinstance(indicator_names, str) else list(indicator_names)
    unknown = [n for n in names if n not in INDICATORS]
    if unknown:
        raise KeyError(f"unknown indicator(s): {', '.join(map(repr, unknown))}; "
                       f"known: {', '.join(INDICATORS)}")
    return {INDICATORS[n].source for n in names}


def missing_indicators(tables: Tables) -> dict[str, str]:
    """Registered indicators these tables cannot provide, each with the reason."""
    out: dict[str, str] = {}
    for name, ind in INDICATORS.items():
        frame = tables.get(ind.source)
        if frame is None:
            out[name] = f"table {ind.source} not loaded"
            continue
        absent = [c for c in ind.columns if c.split(".", 1)[1] not in frame.columns]
        if absent:
            out[name] = f"column(s) {', '.join(absent)} missing"
    return out


def available_indicators(tables: Tables) -> list[str]:
    """Registered indicators these tables provide, in registry order (the snapshot's columns)."""
    missing = missing_indicators(tables)
    return [n for n in INDICATORS if n not in missing]


# --- snapshot -------------------------------------------------------------------------------------

def _as_of(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError("as_of is missing")
    if ts.tz is not None:
        ts = ts.tz_localize(None)
    return ts.normalize().as_unit("ns")


def _lit(ts: pd.Timestamp) -> str:
    return f"TIMESTAMP '{ts:%Y-%m-%d %H:%M:%S}'"


def _cols(frame: pd.DataFrame, spec: dict[str, str]) -> str:
    """A projection with each optional column replaced by a typed NULL when the frame lacks it."""
    return ", ".join(c if c in frame.columns else f"NULL::{t} AS {c}" for c, t in spec.items())


def _filter_ids(restricted: bool) -> str:
    return " AND customer_id IN (SELECT customer_id FROM wanted)" if restricted else ""


def _transactions_sql(tx: pd.DataFrame, w: dict[str, str], restricted: bool) -> str:
    """All transaction aggregates, one row per customer with any line before the cut-off.

    Two stages, because DuckDB's filtered ``COUNT(DISTINCT …)`` is ~10× slower than grouping: first one
    row per customer and order (all of a customer's lines without an order id share one row, and
    count one order per purchase line), then one row per customer."""
    cols = _cols(tx, {"customer_id": "VARCHAR", "date": "TIMESTAMP", "amount": "DOUBLE", "order_id": "VARCHAR",
                      "product_line": "VARCHAR", "quantity": "DOUBLE", "margin": "DOUBLE",
                      "core_product": "BOOLEAN"})
    p12 = f"date >= {w['s12']}"
    buy = "amount > 0"
    return f"""
    WITH t AS (
      SELECT {cols} FROM tx
      WHERE date < {w['c']} AND customer_id IS NOT NULL{_filter_ids(restricted)}),
    per_order AS (
      SELECT customer_id, order_id,
        SUM(amount) FILTER (WHERE {p12}) AS a12,
        SUM(amount) FILTER (WHERE date >= {w['s24']} AND date < {w['s12']}) AS a12p,
        SUM(amount) FILTER (WHERE date >= {w['s6']}) AS a6,
        SUM(amount) FILTER (WHERE date >= {w['s6p']} AND date < {w['s6']}) AS a6p,
        COUNT(*) FILTER (WHERE {p12}) AS lines12,
        SUM(margin) FILTER (WHERE {p12}) AS m12,
        SUM(quantity) AS q, SUM(quantity) FILTER (WHERE {p12}) AS q12,
        COUNT(*) FILTER (WHERE {buy} AND {p12}) AS buys12,
        COUNT(*) FILTER (WHERE {buy}) AS buys,
        MIN(date) FILTER (WHERE {buy}) AS first_buy, MAX(date) FILTER (WHERE {buy}) AS last_buy,
        BOOL_OR(core_product) FILTER (WHERE {buy} AND {p12}) AS core12
      FROM t GROUP BY customer_id, order_id),
    lines AS (
      SELECT customer_id, COUNT(DISTINCT product_line) AS product_lines_12m
      FROM t WHERE {buy} AND {p12} GROUP BY customer_id),
    per_customer AS (
      SELECT customer_id,
      COALESCE(SUM(a12), 0) AS annual_amount,
      COALESCE(SUM(a12p), 0) AS prev_annual_amount,
      COALESCE(SUM(a6), 0) AS amount_6m,
      COALESCE(SUM(a6p), 0) AS prev_amount_6m,
      SUM(CASE WHEN order_id IS NULL THEN buys12 ELSE LEAST(buys12, 1) END) AS orders_12m,
      SUM(CASE WHEN order_id IS NULL THEN buys ELSE LEAST(buys, 1) END) AS orders_total,
      CAST(MIN(first_buy) AS DATE) AS first_purchase,
      CAST(MAX(last_buy) AS DATE) AS last_purchase,
      CASE WHEN SUM(lines12) = 0 THEN 0 ELSE SUM(m12) END AS profit_12m,
      COALESCE(SUM(q), 0) AS volume_total,
      COALESCE(SUM(q12), 0) AS volume_12m,
      COALESCE(BOOL_OR(core12), false) AS buys_core_product
      FROM per_order GROUP BY customer_id)
    SELECT per_customer.*, COALESCE(lines.product_lines_12m, 0) AS product_lines_12m
    FROM per_customer LEFT JOIN lines USING (customer_id)"""


def _interactions_sql(it: pd.DataFrame, w: dict[str, str], restricted: bool) -> str:
    """All interaction aggregates, one row per customer with any interaction before the cut-off."""
    cols = _cols(it, {"customer_id": "VARCHAR", "date": "TIMESTAMP", "kind": "VARCHAR", "severity": "VARCHAR",
                      "resolution_hours": "DOUBLE", "score": "DOUBLE"})
    p12, p6 = f"date >= {w['s12']}", f"date >= {w['s6']}"
    cp = "kind = 'complaint'"
    # resolved by the cut-off: date + resolution_hours < cut-off (seconds since the complaint)
    resolved = f"(resolution_hours IS NOT NULL AND resolution_hours * 3600.0 < epoch({w['c']}) - epoch(date))"
    contact = "kind IN (" + ", ".join(f"'{k}'" for k in CONTACT_KINDS) + ")"
    survey = "kind = 'survey' AND score IS NOT NULL"
    return f"""
    SELECT customer_id,
      COUNT(*) FILTER (WHERE {cp} AND {p12}) AS complaints_12m,
      COUNT(*) FILTER (WHERE {cp} AND {p12} AND severity = 'major') AS major_complaints_12m,
      COUNT(*) FILTER (WHERE {cp} AND {p6}) AS complaints_6m,
      AVG(resolution_hours) FILTER (WHERE {cp} AND {p12} AND {resolved}) AS complaint_resolution_hours,
      COUNT(*) FILTER (WHERE {cp} AND NOT {resolved}) AS open_complaints,
      ARG_MAX(score, struct_pack(d := date, s := -score)) FILTER (WHERE {survey}) AS satisfaction_latest,
      AVG(score) FILTER (WHERE {survey} AND {p12}) AS satisfaction_avg_12m,
      COUNT(*) FILTER (WHERE kind = 'referral' AND {p12}) AS referrals_12m,
      COUNT(*) FILTER (WHERE {contact} AND {p12}) AS contacts_12m,
      COUNT(*) FILTER (WHERE kind = 'visit' AND {p12}) AS visits_12m,
      COUNT(*) FILTER (WHERE kind = 'consultation' AND {p6}) AS consultations_6m,
      COUNT(*) FILTER (WHERE kind = 'campaign' AND {p12}) AS campaigns_12m,
      COUNT(*) FILTER (WHERE kind = 'praise' AND {p12}) AS praise_12m,
      CAST(MAX(date) FILTER (WHERE {contact}) AS DATE) AS last_contact
    FROM (SELECT {cols} FROM it)
    WHERE date < {w['c']} AND customer_id IS NOT NULL{_filter_ids(restricted)}
    GROUP BY customer_id"""


def _opportunities_sql(op: pd.DataFrame, w: dict[str, str], restricted: bool) -> str:
    """All opportunity aggregates, one row per customer with an opportunity created before the cut-off."""
    cols = _cols(op, {"opportunity_id": "VARCHAR", "customer_id": "VARCHAR", "created_date": "TIMESTAMP",
                      "stage": "VARCHAR", "expected_close_date": "TIMESTAMP", "amount": "DOUBLE",
                      "status": "VARCHAR", "closed_date": "TIMESTAMP"})
    # when the opportunity stopped being open (NULL: still open today)
    closing = ("CASE WHEN lower(status) IN ('won', 'lost') "
               "THEN COALESCE(closed_date, expected_close_date, created_date) "
               "WHEN status IS NULL THEN closed_date END")
    is_open = f"(closing IS NULL OR closing >= {w['c']})"
    return f"""
    SELECT customer_id,
      COUNT(*) FILTER (WHERE {is_open}) AS open_opportunities,
      CAST(MIN(expected_close_date) FILTER (WHERE {is_open}) AS DATE) AS next_close,
      COALESCE(SUM(amount) FILTER (WHERE {is_open}), 0) AS pipeline_amount,
      ARG_MAX(stage, struct_pack(d := created_date, i := opportunity_id)) AS latest_stage,
      COUNT(*) FILTER (WHERE lower(status) = 'won' AND closing >= {w['s12']} AND closing < {w['c']}) AS won_12m
    FROM (SELECT *, {closing} AS closing FROM (SELECT {cols} FROM op))
    WHERE created_date < {w['c']} AND customer_id IS NOT NULL{_filter_ids(restricted)}
    GROUP BY customer_id"""


def _customers_sql(cu: pd.DataFrame, w: dict[str, str], restricted: bool) -> str:
    """Customers-table attributes of the population: static columns, point-in-time status."""
    static = {"industry": "VARCHAR", "region": "VARCHAR", "size_employees": "BIGINT", "annual_revenue": "DOUBLE",
              "industry_growth": "DOUBLE", "budget_growth": "DOUBLE", "market_share": "DOUBLE",
              "strategic": "BOOLEAN", "account_manager": "VARCHAR", "product_lines": "VARCHAR"}
    cols = _cols(cu, {"customer_id": "VARCHAR", "created_date": "TIMESTAMP", "status": "VARCHAR",
                      "status_date": "TIMESTAMP", **static})
    return f"""
    SELECT customer_id, {', '.join(static)},
      CASE WHEN created_date < {w['c']} THEN CAST(created_date AS DATE) END AS created_day,
      (created_date IS NULL OR created_date < {w['c']}) AS created_by_as_of,
      CASE WHEN lower(status) IN ('lost', 'closed') AND status_date < {w['c']} THEN 'lost' ELSE 'active' END
        AS status
    FROM (SELECT {cols} FROM cu)
    WHERE customer_id IS NOT NULL{_filter_ids(restricted)}"""


def snapshot(tables: Tables, as_of, *, customers: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per customer of the population at ``as_of``, sorted by ``customer_id``.

    Columns: ``customer_id``, ``as_of`` and every indicator the loaded tables and columns allow (see
    :func:`available_indicators`), in registry order. Nothing dated after ``as_of`` is used."""
    day = _as_of(as_of)
    cut = day + pd.Timedelta(days=1)
    w = {"c": _lit(cut),
         "s12": _lit(cut - pd.Timedelta(days=DAYS_12M)), "s24": _lit(cut - pd.Timedelta(days=2 * DAYS_12M)),
         "s6": _lit(cut - pd.Timedelta(days=DAYS_6M)), "s6p": _lit(cut - pd.Timedelta(days=2 * DAYS_6M))}
    if tables.transactions is None:
        raise ValueError("the transactions table is mandatory")
    restricted = customers is not None

    con = duckdb.connect()
    try:
        if restricted:
            ids = pd.Series([str(c) for c in customers], dtype="string", name="customer_id").drop_duplicates()
            con.register("wanted", ids.to_frame())
        con.register("tx", tables.transactions)
        con.execute(f"CREATE TEMP TABLE a_tx AS {_transactions_sql(tables.transactions, w, restricted)}")
        pop = ["SELECT customer_id FROM a_tx"]
        joins, selects = ["LEFT JOIN a_tx USING (customer_id)"], ["a_tx.* EXCLUDE (customer_id)"]
        cu = tables.customers
        if cu is not None:
            if not cu["customer_id"].is_unique:
                cu = cu.drop_duplicates("customer_id", keep="first")
            con.register("cu", cu)
            con.execute(f"CREATE TEMP TABLE a_cu AS {_customers_sql(cu, w, restricted)}")
            pop.append("SELECT customer_id FROM a_cu WHERE created_by_as_of")
            joins.append("LEFT JOIN a_cu USING (customer_id)")
            selects.append("a_cu.* EXCLUDE (customer_id, created_by_as_of)")
        if tables.interactions is not None:
            con.register("it", tables.interactions)
            con.execute(f"CREATE TEMP TABLE a_it AS {_interactions_sql(tables.interactions, w, restricted)}")
            joins.append("LEFT JOIN a_it USING (customer_id)")
            selects.append("a_it.* EXCLUDE (customer_id)")
        if tables.opportunities is not None:
            con.register("op", tables.opportunities)
            con.execute(f"CREATE TEMP TABLE a_op AS {_opportunities_sql(tables.opportunities, w, restricted)}")
            joins.append("LEFT JOIN a_op USING (customer_id)")
            selects.append("a_op.* EXCLUDE (customer_id)")
        raw = con.execute(
            f"SELECT customer_id, {', '.join(selects)} FROM ({' UNION '.join(pop)}) AS pop "
            f"{' '.join(joins)} ORDER BY customer_id").df()
    finally:
        con.close()
    return _finish(raw, day, tables)


def _finish(raw: pd.DataFrame, day: pd.Timestamp, tables: Tables) -> pd.DataFrame:
    """Derived indicators, zero-filling, dtypes and column selection."""
    n = len(raw)
    out: dict[str, object] = {"customer_id": raw["customer_id"].astype("string").to_numpy(),
                              "as_of": np.full(n, day.to_datetime64(), dtype="datetime64[ns]")}
    num = lambda c: pd.to_numeric(raw[c], errors="coerce").astype("float64").fillna(0.0).to_numpy()  # noqa: E731
    nan = lambda c: pd.to_numeric(raw[c], errors="coerce").astype("float64").to_numpy()  # noqa: E731
    date = lambda c: pd.to_datetime(raw[c]).astype("datetime64[ns]")  # noqa: E731

    def days_to(col: pd.Series) -> np.ndarray:
        return (day - col).dt.days.astype("float64").to_numpy()

    for name in raw.columns:
        if name in INDICATORS:
            out[name] = raw[name]
    # transactions
    annual, prev = num("annual_amount"), num("prev_annual_amount")
    orders = num("orders_12m")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["amount_growth"] = np.where(prev > 0, annual / prev - 1.0, np.nan)
        out["orders_per_quarter"] = orders / 4.0
        out["orders_per_month"] = orders / 12.0
        out["avg_order_value"] = np.where(orders > 0, annual / orders, np.nan)
        # no transactions at all: 0; lines without any margin: NaN
        profit = np.where(raw["annual_amount"].isna(), 0.0, nan("profit_12m"))
        out["profit_12m"] = profit
        out["margin_rate_12m"] = np.where(annual > 0, profit / annual, np.nan)
    first, last = date("first_purchase"), date("last_purchase")
    out["first_purchase"], out["last_purchase"] = first, last
    recency = days_to(last)
    out["recency_days"] = recency
    out["months_since_last_order"] = recency / DAYS_PER_MONTH
    start = first
    if "created_day" in raw:
        start = pd.concat([first, date("created_day")], axis=1).min(axis=1).astype("datetime64[ns]")
    tenure = days_to(start) / DAYS_PER_YEAR
    out["tenure_years"] = tenure
    out["tag_tenure"] = np.where(np.isnan(tenure), None, np.where(tenure < 1.0, "new", "old"))
    per_month = orders / 12.0
    out["tag_frequency"] = np.where(per_month >= FREQ_HIGH_PER_MONTH, "high",
                                    np.where(per_month < FREQ_LOW_PER_MONTH, "low", "mid"))
    out["tag_value"] = np.where(annual >= VALUE_HIGH, "high", np.where(annual >= VALUE_MID, "mid", "low"))
    out["tag_state"] = np.select(
        [np.isnan(recency), (prev > 0) & (annual <= CHURN_RISK_RATIO * prev), recency < DAYS_ACTIVE],
        ["prospect", "churn_risk", "active"], "dormant")
    # interactions
    if "contacts_12m" in raw:
        out["contacts_per_month"] = num("contacts_12m") / 12.0
        sat = nan("satisfaction_latest")
        out["nps_latest"] = np.where(np.isnan(sat), np.nan, np.where(sat >= 9, 100.0, np.where(sat >= 7, 0.0, -100.0)))
        out["days_since_contact"] = days_to(date("last_contact"))
    # customers: rows only in transactions have no attributes; their status is 'active'
    if "status" in raw:
        out["status"] = raw["status"].fillna("active")
    # opportunities
    if "next_close" in raw:
        out["days_to_close"] = -days_to(date("next_close"))

    keep = available_indicators(tables)
    frame = pd.DataFrame({"customer_id": out["customer_id"], "as_of": out["as_of"]})
    cols = {}
    for name in keep:
        ind = INDICATORS[name]
        values = pd.Series(out[name]) if not isinstance(out[name], pd.Series) else out[name].reset_index(drop=True)
        if name in _ZERO:
            values = pd.to_numeric(values, errors="coerce").fillna(0)
        elif ind.dtype == "boolean" and ind.source != "customers":
            values = values.astype("boolean").fillna(False)
        if ind.dtype == "string":
            values = values.astype("string")
        else:
            values = values.astype(ind.dtype)
        cols[name] = values
    return pd.concat([frame, pd.DataFrame(cols, index=frame.index)], axis=1)
