"""Every indicator a scheme can read, registered once: its unit, window, source table, meaning, dtype and the optional columns it needs; the windows' lengths and SEEDS' tag thresholds.

Public: INDICATORS, Indicator, required_tables, WINDOWS, SOURCES, DAYS_12M, DAYS_6M, DAYS_ACTIVE, DAYS_PER_YEAR, DAYS_PER_MONTH.
Reads: nothing. Writes: nothing. `segment indicators` lists the registry.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SOURCES = ("transactions", "interactions", "customers", "opportunities")

#: the windows an indicator can have (see segment.features.snapshot's docstring)
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
_reg("orders_90d", "count", "90d", T, I,
     "Orders in the last 90 days (S2's purchases a quarter), counted as orders_12m: distinct order_id of purchase "
     "lines (amount > 0); a line without order_id is one order")
_reg("orders_per_quarter", "orders / quarter", "12m", T, F, "orders_12m / 4 (a 12-month average; the last quarter is orders_90d)")
_reg("orders_per_month", "orders / month", "12m", T, F, "orders_12m / 12")
_reg("avg_order_value", "currency / order", "12m", T, F, "annual_amount / orders_12m; NaN without orders")
_reg("recency_days", "days", "latest", T, F, "Days from the last purchase day to as_of (0 = bought on as_of); NaN if never bought")
_reg("first_purchase", "date", "all history", T, D, "Day of the first purchase (line with amount > 0); NaT if never bought")
_reg("last_purchase", "date", "latest", T, D, "Day of the last purchase on or before as_of; NaT if never bought")
_reg("tenure_years", "years", "all history", T, F,
     "Years of cooperation: years (days / 365.25) from first_purchase to as_of; NaN if never bought "
     "(the CRM registration date is registered_years)")
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


# SEEDS step 3 tags (transactions)
_reg("tag_tenure", "category", "all history", T, S,
     "'new' if tenure_years < 1, else 'old' (SEEDS 合作时长: years of cooperation); NA if never bought")
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
_reg("registered_years", "years", "at as_of", C, F,
     "Years (days / 365.25) from customers.created_date (the CRM registration) to as_of; NaN without a "
     "created_date on or before as_of. Not years of cooperation (tenure_years)", ("customers.created_date",))


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
ZERO_WHEN_ABSENT = {n for n, ind in INDICATORS.items() if ind.unit in ("count", "units")} | {
    "annual_amount", "prev_annual_amount", "amount_6m", "prev_amount_6m", "pipeline_amount"}


def required_tables(indicator_names: Iterable[str] | str) -> set[str]:
    """The tables the named indicators need (their source tables). Unknown names: ``KeyError``."""
    names = [indicator_names] if isinstance(indicator_names, str) else list(indicator_names)
    unknown = [n for n in names if n not in INDICATORS]
    if unknown:
        raise KeyError(f"unknown indicator(s): {', '.join(map(repr, unknown))}; "
                       f"known: {', '.join(INDICATORS)}")
    return {INDICATORS[n].source for n in names}
