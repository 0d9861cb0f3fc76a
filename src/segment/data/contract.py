"""The data contract: the four tables segment reads, declared once, column by column.

Public: Column, Table, TABLES, TABLE_NAMES, ALIAS, FIELD_TYPES, field_column, with_fields, markdown.
Reads: nothing. Writes: nothing (docs/data_contract.md is generated from it by a test).

Every loader maps its source onto these names and types; validation checks them at the
boundary (``segment.data.validate``); ``docs/data_contract.md`` is generated from this module
(``segment contract --markdown``) and a test keeps the two identical.

Amounts are in currency units (yuan in the seeds) after the data config's ``amount_unit``
multiplier is applied: a source kept in 万元 declares ``amount_unit: 10000``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: dtypes the contract knows: how loaders coerce a column and how validation checks it
DTYPES = ("string", "float", "int", "bool", "date", "datetime")


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    required: bool
    meaning: str
    unit: str = ""
    #: a key field: completeness below the threshold (SEEDS step 3: 95%) is an error
    key: bool = False
    #: personal data: never shown in leadership reports (PII policy)
    pii: bool = False
    #: allowed values, when the column is categorical
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str
    meaning: str
    columns: tuple[Column, ...]
    mandatory: bool = False
    #: columns whose combination identifies a row (duplicates are an error)
    unique: tuple[str, ...] = ()
    #: the column holding the event date used for point-in-time cuts
    date_column: str | None = None
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def keys(self) -> list[str]:
        return [c.name for c in self.columns if c.key]


INTERACTION_KINDS = ("consultation", "visit", "call", "complaint", "survey", "referral", "campaign", "praise")
OPPORTUNITY_STATUS = ("open", "won", "lost")
CUSTOMER_STATUS = ("active", "lost", "closed")

CUSTOMERS = Table(
    name="customers",
    meaning="Customer master: one row per customer (SEEDS step 2, base data).",
    unique=("customer_id",),
    columns=(
        Column("customer_id", "string", True, "Customer identifier, unique in this table", key=True),
        Column("name", "string", False, "Company or person name"),
        Column("industry", "string", False, "Industry code or name", key=True),
        Column("industry_growth", "float", False, "Growth rate of the customer's industry per year (0.12 = 12%)", "fraction / year"),
        Column("size_employees", "int", False, "Number of employees", "people"),
        Column("annual_revenue", "float", False, "The customer's own annual revenue (its size)", "currency / year"),
        Column("region", "string", False, "Sales region", key=True),
        Column("product_lines", "string", False, "Product lines the customer is set up for, separated by ';'"),
        Column("account_manager", "string", False, "Responsible account manager"),
        Column("contact_name", "string", False, "Main contact person", pii=True),
        Column("contact_title", "string", False, "Main contact's job title"),
        Column("phone", "string", False, "Main contact's phone", pii=True),
        Column("email", "string", False, "Main contact's e-mail", pii=True),
        Column("created_date", "date", False, "Date the customer was first recorded (first enquiry or registration)"),
        Column("budget_growth", "float", False, "Expected growth of the customer's budget for our products (0.2 = 20%)", "fraction / year"),
        Column("market_share", "float", False, "The customer's share of its own market (S4 industry influence)", "fraction"),
        Column("strategic", "bool", False, "Strategic partnership: exclusive supply or joint R&D (S3 depth 5)"),
        Column("status", "string", False, "Explicit account status from the CRM", values=CUSTOMER_STATUS),
        Column("status_date", "date", False, "Date the status was set (for lost/closed: the date the customer was lost)"),
    ),
)

TRANSACTIONS = Table(
    name="transactions",
    meaning="Sales lines or orders. The only mandatory table. Returns are negative amounts.",
    mandatory=True,
    date_column="date",
    columns=(
        Column("customer_id", "string", True, "Customer identifier (matches customers.customer_id)", key=True),
        Column("date", "datetime", True, "Order or invoice date", key=True),
        Column("amount", "float", True, "Line or order amount (negative for returns/cancellations); "
               "derived as quantity × unit_price when the source has no amount", "currency", key=True),
        Column("order_id", "string", False, "Order or invoice number; lines of one order share it"),
        Column("product_line", "string", False, "Product line of the line or order (S8 grades per line)"),
        Column("quantity", "float", False, "Units on the line (S5 cumulative volume)", "units"),
        Column("unit_price", "float", False, "Price per unit", "currency / unit"),
        Column("margin", "float", False, "Gross profit on the line (profit contribution)", "currency"),
        Column("core_product", "bool", False, "The line is one of the company's core products (depth of cooperation)"),
    ),
)

INTERACTIONS = Table(
    name="interactions",
    meaning="Contacts with the customer: consultations, visits, calls, complaints, satisfaction surveys, "
            "referrals, campaign participation, praise (SEEDS step 2, interactions).",
    date_column="date",
    columns=(
        Column("customer_id", "string", True, "Customer identifier", key=True),
        Column("date", "datetime", True, "When the interaction happened", key=True),
        Column("kind", "string", True, "What happened", values=INTERACTION_KINDS, key=True),
        Column("channel", "string", False, "Phone, e-mail, visit, web, event …"),
        Column("severity", "string", False, "For complaints: minor or major", values=("minor", "major")),
        Column("resolution_hours", "float", False, "For complaints: hours until resolved (empty while open)", "hours"),
        Column("score", "float", False, "For surveys: satisfaction 0–10 (NPS question)", "points 0–10"),
    ),
)

MEASURES = Table(
    name="measures",
    meaning="Point-in-time facts in long form: one row per customer, date and measure (balances, market share, "
            "budget growth, the four project elements, intent signals, decision-maker facts, payments …). "
            "Indicators over it are declared in the data config's `indicators:` (latest value as of the date, "
            "a sum / mean / min / max / count over a window, the change over a window); a measure named like a "
            "customers column (market_share, budget_growth …) is that attribute's history.",
    date_column="date",
    columns=(
        Column("customer_id", "string", True, "Customer identifier", key=True),
        Column("date", "datetime", True, "When the fact was recorded (it holds from then on)", key=True),
        Column("measure", "string", True, "What is measured (deposits, four_elements, intent_score …)", key=True),
        Column("value", "float", False, "The value: a number, a balance in currency, or 1 / 0 for a flag"),
        Column("text", "string", False, "A text value, for facts that are categories (an industry, an opportunity "
               "stage …); a row holds a value, a text, or both"),
        Column("group", "string", False, "An optional breakdown (product line, account …), for filters"),
    ),
)

OPPORTUNITIES = Table(
    name="opportunities",
    meaning="Sales pipeline: one row per opportunity (S6 time to close, S7 stages, S9 buyer grades).",
    unique=("opportunity_id",),
    date_column="created_date",
    columns=(
        Column("opportunity_id", "string", True, "Opportunity identifier", key=True),
        Column("customer_id", "string", True, "Customer identifier", key=True),
        Column("created_date", "date", True, "Date the opportunity was opened", key=True),
        Column("stage", "string", True, "Pipeline stage (free text or the company's codes, e.g. S7's A21…A01)"),
        Column("expected_close_date", "date", False, "Expected close date, as last estimated"),
        Column("amount", "float", False, "Expected order value", "currency"),
        Column("product_line", "string", False, "Product line"),
        Column("status", "string", False, "open, won or lost", values=OPPORTUNITY_STATUS),
        Column("closed_date", "date", False, "Date won or lost"),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (CUSTOMERS, TRANSACTIONS, INTERACTIONS, OPPORTUNITIES, MEASURES)}
#: the tables in the order every listing shows them
TABLE_NAMES = ("customers", "transactions", "interactions", "opportunities", "measures")
#: the relation name each validated table is read under by the snapshot's SQL (segment.features.snapshot)
ALIAS = {"transactions": "tx", "customers": "cu", "interactions": "it", "opportunities": "op", "measures": "ms"}

#: the types a data config may declare for an extra column (`fields:`): contract dtype and unit
FIELD_TYPES: dict[str, tuple[str, str]] = {
    "number": ("float", ""), "money": ("float", "currency"), "share": ("float", "fraction"),
    "bool": ("bool", ""), "category": ("string", ""), "date": ("date", ""), "text": ("string", ""),
}


def field_column(name: str, type_: str, meaning: str = "", unit: str = "", values: tuple[str, ...] = ()) -> Column:
    """A declared extra column as a contract column: validated like one (the same casts, checks and
    plausibility rules: a ``money`` field is scaled by ``amount_unit`` and checked for huge values, a
    ``share`` must lie in 0–1)."""
    dtype, fixed_unit = FIELD_TYPES[type_]
    return Column(name, dtype, False, meaning or f"declared {type_} field", fixed_unit or unit,
                  values=tuple(str(v).lower() for v in values))


def with_fields(table: Table, extra: tuple[Column, ...]) -> Table:
    """``table`` with the data config's declared columns after the contract's."""
    if not extra:
        return table
    return Table(table.name, table.meaning, table.columns + tuple(extra), table.mandatory, table.unique,
                 table.date_column)

#: completeness below this share of rows in a key field is an error (SEEDS step 3)
COMPLETENESS_THRESHOLD = 0.95


def markdown() -> str:
    """The contract as markdown, the text of ``docs/data_contract.md``."""
    out = [
        "# Data contract",
        "",
        "Generated from `src/segment/data/contract.py` by `segment contract --markdown`; do not edit by hand.",
        "",
        "segment reads up to five tables. Only **transactions** is mandatory; a scheme that needs another",
        "table or column says which before grading. A data config may declare extra columns per table",
        "(`fields:`, with a type: " + ", ".join(FIELD_TYPES) + "), validated like these; customer fields are",
        "indicators under their names. Sources are mapped onto these names by the data config",
        "(`DATA.yaml`, see the README). Amounts are in currency units after the config's `amount_unit`",
        "multiplier (a source kept in 万元 declares `amount_unit: 10000`). *Key* columns must be at least",
        f"{COMPLETENESS_THRESHOLD:.0%} complete (SEEDS step 3). *PII* columns never appear in leadership reports.",
        "",
    ]
    for t in TABLES.values():
        out += [f"## {t.name}{' (mandatory)' if t.mandatory else ''}", "", t.meaning, ""]
        if t.unique:
            out += [f"Unique: `{', '.join(t.unique)}`.", ""]
        out += ["| column | type | required | key | meaning | unit |", "| --- | --- | --- | --- | --- | --- |"]
        for c in t.columns:
            meaning = c.meaning + (f" (one of: {', '.join(c.values)})" if c.values else "") + (" **PII**" if c.pii else "")
            out.append(f"| `{c.name}` | {c.dtype} | {'yes' if c.required else 'no'} | {'yes' if c.key else ''} "
                       f"| {meaning} | {c.unit} |")
        out.append("")
    return "\n".join(out)
