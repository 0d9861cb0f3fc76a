"""Point-in-time features on a tiny hand-made company whose every number is worked out by hand.

as_of = 2024-06-30, so the cut-off is 2024-07-01 00:00 and the windows are
  12m      = [2023-07-02, 2024-07-01)      prev 12m = [2022-07-02, 2023-07-02)
  6m       = [2024-01-01, 2024-07-01)      prev 6m  = [2023-07-03, 2024-01-01)
  90d      = [2024-04-02, 2024-07-01)     (active = last purchase on or after 2024-04-02)
Population: C1, C2, C3 (customers table, created ≤ as_of), C4 (transactions only);
C5 is created after as_of and has no transactions → not in it.
"""
from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segment.data.contract import TABLES
from segment.features.registry import INDICATORS, WINDOWS, Indicator, required_tables
from segment.features.snapshot import available_indicators, missing_indicators, snapshot
from segment.data.tables import Tables

AS_OF = "2024-06-30"
NA = None
DTYPES = {"string": "string", "float": "float64", "int": "Int64", "bool": "boolean",
          "date": "datetime64[ns]", "datetime": "datetime64[ns]"}


def frame(table: str, columns: list[str], rows: list[tuple]) -> pd.DataFrame:
    """A table as io loads it: the contract's dtypes."""
    df = pd.DataFrame(rows, columns=columns)
    spec = TABLES[table].by_name
    for c in columns:
        dtype = DTYPES[spec[c].dtype]
        df[c] = pd.to_datetime(df[c], format="mixed").astype(dtype) if dtype.startswith("datetime") else df[c].astype(dtype)
    return df


CUST_COLS = ["customer_id", "name", "industry", "industry_growth", "size_employees", "annual_revenue", "region",
             "product_lines", "account_manager", "created_date", "budget_growth", "market_share", "strategic",
             "status", "status_date"]
CUSTOMERS = [
    ("C1", "Alpha", "retail", 0.12, 120, 5e7, "north", "A;B", "amy", "2020-03-01", 0.20, 0.05, True, "active", NA),
    ("C2", "Beta", "tech", 0.03, 40, 8e6, "south", "A;C", "bob", "2023-09-15", NA, 0.01, False, "lost", "2024-05-20"),
    ("C3", "Gamma", "food", NA, NA, NA, "east", NA, NA, "2024-03-01", 0.10, NA, NA, "closed", "2024-08-15"),
    ("C5", "Epsilon", "tech", 0.2, 5, 1e6, "west", "A", "amy", "2024-08-01", NA, NA, False, "active", NA),
]

TX_COLS = ["customer_id", "date", "amount", "order_id", "product_line", "quantity", "margin", "core_product"]
TRANSACTIONS = [
    # C1
    ("C1", "2022-08-10", 300000.0, "O1", "A", 30.0, 60000.0, True),      # prev 12m
    ("C1", "2023-03-05", 200000.0, "O2", "B", 20.0, 30000.0, False),     # prev 12m
    ("C1", "2023-07-01 23:00", 100000.0, "O3", "A", 10.0, 20000.0, True),  # last hour of prev 12m
    ("C1", "2023-09-10", 400000.0, "O4", "A", 40.0, 80000.0, True),      # 12m, prev 6m
    ("C1", "2023-09-10", 50000.0, "O4", "B", 5.0, 5000.0, False),        # same order O4
    ("C1", "2024-02-20", 250000.0, "O5", "B", 25.0, 40000.0, False),     # 12m, 6m
    ("C1", "2024-03-01", -50000.0, "R1", "B", -5.0, -8000.0, False),     # a return: nets, no order
    ("C1", "2024-06-30 18:00", 120000.0, "O6", "A", 12.0, 20000.0, True),  # on the as_of day: counts
    ("C1", "2024-07-01 00:00", 999999.0, "O7", "A", 99.0, 9999.0, True),   # after as_of: ignored
    # C2: no order ids on two lines (each one order), no margins at all
    ("C2", "2023-10-01", 80000.0, NA, "A", 8.0, NA, True),
    ("C2", "2023-10-01", 20000.0, NA, "C", 2.0, NA, False),
    ("C2", "2024-03-15", 30000.0, "O20", "C", 3.0, NA, False),
    # C4: only in transactions
    ("C4", "2022-09-01", 1500000.0, "O40", "A", 100.0, 300000.0, True),  # prev 12m
    ("C4", "2023-01-15", 500000.0, "O41", "A", 50.0, 100000.0, True),    # prev 12m
    ("C4", "2023-08-20", 1100000.0, "O42", "B", 110.0, 200000.0, False),  # 12m, prev 6m
    # no customer id: ignored
    (NA, "2024-01-01", 500.0, "O99", "A", 1.0, 1.0, False),
]

IT_COLS = ["customer_id", "date", "kind", "channel", "severity", "resolution_hours", "score"]
INTERACTIONS = [
    ("C1", "2023-05-01", "complaint", "phone", "major", 48.0, NA),   # before 12m, resolved
    ("C1", "2023-11-10", "complaint", "phone", "minor", 10.0, NA),   # 12m, resolved in 10 h
    ("C1", "2024-06-30 20:00", "complaint", "web", "major", 10.0, NA),  # resolved 07-01 06:00: open at as_of
    ("C1", "2024-02-01", "complaint", "e-mail", "minor", NA, NA),    # never resolved: open
    ("C1", "2024-03-01", "complaint", "phone", "minor", 30.0, NA),   # 6m, resolved in 30 h
    ("C1", "2023-06-01", "survey", "web", NA, NA, 6.0),
    ("C1", "2024-05-01", "survey", "web", NA, NA, 9.0),              # two surveys at the same time:
    ("C1", "2024-05-01", "survey", "web", NA, NA, 10.0),             # the lower score (9) is "latest"
    ("C1", "2024-01-10", "referral", NA, NA, NA, NA),
    ("C1", "2023-05-05", "referral", NA, NA, NA, NA),                # before 12m
    ("C1", "2024-04-01", "visit", "visit", NA, NA, NA),
    ("C1", "2024-06-15", "call", "phone", NA, NA, NA),               # latest contact
    ("C1", "2024-02-15", "consultation", "web", NA, NA, NA),         # 6m
    ("C1", "2023-12-15", "consultation", "web", NA, NA, NA),         # 12m, not 6m
    ("C1", "2024-03-03", "campaign", "event", NA, NA, NA),
    ("C1", "2024-06-01", "praise", "e-mail", NA, NA, NA),
    ("C2", "2024-04-10", "survey", "web", NA, NA, 7.0),
    ("C2", "2023-12-01", "survey", "web", NA, NA, 5.0),
    ("C2", "2024-05-05", "consultation", "phone", NA, NA, NA),
    ("C2", "2024-07-02", "complaint", "phone", "major", NA, NA),     # after as_of: ignored
    ("C3", "2024-05-20", "consultation", "web", NA, NA, NA),
    ("C3", "2024-06-01", "survey", "web", NA, NA, 4.0),
    ("C3", "2024-06-10", "complaint", "phone", "minor", NA, NA),
    ("C5", "2024-05-01", "consultation", "web", NA, NA, NA),         # C5 is not in the population
]

OP_COLS = ["opportunity_id", "customer_id", "created_date", "stage", "expected_close_date", "amount",
           "product_line", "status", "closed_date"]
OPPORTUNITIES = [
    ("P1", "C1", "2024-01-10", "A03", "2024-07-20", 200000.0, "A", "open", NA),     # open, closes in 20 d
    ("P2", "C1", "2024-02-01", "A02", "2024-06-01", 100000.0, "A", "won", "2024-06-05"),  # won in 12m
    ("P3", "C1", "2024-03-01", "A04", "2024-06-20", 50000.0, "B", "won", "2024-07-10"),   # won after as_of: open, −10 d
    ("P4", "C1", "2024-05-01", "A06", "2024-09-30", 80000.0, "B", "lost", NA),  # lost, no closed_date: closes
                                                                                 # at expected 09-30: open, 92 d
    ("P5", "C1", "2024-07-05", "A21", "2024-12-01", 1e6, "A", "open", NA),      # created after as_of: ignored
    ("Q1", "C2", "2023-06-01", "A02", "2023-06-30", 60000.0, "A", "won", "2023-06-25"),   # won before 12m
    ("Q2", "C2", "2024-02-01", "A31", "2024-03-01", 40000.0, "C", "lost", "2024-02-20"),
    ("R1", "C3", "2024-04-01", "A05", NA, NA, "A", NA, NA),                     # no status, no close: open
    ("R2", "C3", "2024-04-01", "A07", "2024-12-31", 10000.0, "A", "open", NA),  # same day, larger id: latest
]


def make_tables(**extra) -> Tables:
    data = {"customers": CUSTOMERS, "transactions": TRANSACTIONS, "interactions": INTERACTIONS,
            "opportunities": OPPORTUNITIES}
    cols = {"customers": CUST_COLS, "transactions": TX_COLS, "interactions": IT_COLS, "opportunities": OP_COLS}
    for k, rows in extra.items():
        data[k] = data[k] + rows
    return Tables(**{k: frame(k, cols[k], v) for k, v in data.items()})


NAN, NAT = math.nan, pd.NaT
# one value per customer: C1, C2, C3, C4
EXPECTED = {
    # --- transactions
    "annual_amount": [770000.0,      # 400000 + 50000 + 250000 − 50000 + 120000
                      130000.0,      # 80000 + 20000 + 30000
                      0.0,           # no transactions
                      1100000.0],    # 1100000
    "prev_annual_amount": [600000.0,   # 300000 + 200000 + 100000 (07-01 23:00 is still prev)
                           0.0, 0.0,
                           2000000.0],  # 1500000 + 500000
    "amount_growth": [770000 / 600000 - 1,  # 0.28333
                      NAN, NAN,              # prev ≤ 0
                      1100000 / 2000000 - 1],  # −0.45
    "orders_12m": [3,   # O4 (2 lines), O5, O6; the return R1 is no order
                   3,   # two lines without order id + O20
                   0,
                   1],  # O42
    "orders_90d": [1,   # O6 on the as_of day (90d starts 2024-04-02)
                   0, 0, 0],
    "orders_per_quarter": [0.75, 0.75, 0.0, 0.25],              # orders_12m / 4
    "orders_per_month": [3 / 12, 3 / 12, 0.0, 1 / 12],          # orders_12m / 12
    "avg_order_value": [770000 / 3, 130000 / 3, NAN, 1100000.0],  # annual / orders
    "recency_days": [0.0,     # bought on the as_of day
                     107.0,   # 2024-03-15 → 2024-06-30
                     NAN,
                     315.0],  # 2023-08-20 → 2024-06-30
    "first_purchase": [pd.Timestamp("2022-08-10"), pd.Timestamp("2023-10-01"), NAT, pd.Timestamp("2022-09-01")],
    "last_purchase": [pd.Timestamp("2024-06-30"), pd.Timestamp("2024-03-15"), NAT, pd.Timestamp("2023-08-20")],
    "tenure_years": [690 / 365.25,    # first purchase 2022-08-10 (created 2020-03-01 does not count)
                     273 / 365.25,    # first purchase 2023-10-01 (created 2023-09-15)
                     NAN,             # never bought: no years of cooperation
                     668 / 365.25],   # first purchase 2022-09-01 → 668 days
    "profit_12m": [137000.0,   # 80000 + 5000 + 40000 − 8000 + 20000
                   NAN,        # lines without margin
                   0.0,        # no lines at all
                   200000.0],
    "margin_rate_12m": [137000 / 770000, NAN, NAN, 200000 / 1100000],
    "orders_total": [6,   # O1…O6
                     3, 0, 3],
    "volume_total": [137.0,   # 30 + 20 + 10 + 40 + 5 + 25 − 5 + 12
                     13.0,    # 8 + 2 + 3
                     0.0,
                     260.0],  # 100 + 50 + 110
    "volume_12m": [77.0,      # 40 + 5 + 25 − 5 + 12
                   13.0, 0.0, 110.0],
    "buys_core_product": [True, True, False, False],  # C4's only 12m line is B, not core
    "product_lines_12m": [2,   # A, B
                          2,   # A, C
                          0,
                          1],  # B
    "amount_6m": [320000.0,   # 250000 − 50000 + 120000
                  30000.0, 0.0, 0.0],
    "prev_amount_6m": [450000.0,   # 400000 + 50000 (2023-09-10)
                       100000.0,   # 80000 + 20000 (2023-10-01)
                       0.0,
                       1100000.0],  # 2023-08-20
    "months_since_last_order": [0.0, 107 / 30.44, NAN, 315 / 30.44],
    "tag_tenure": ["old", "new", NA, "old"],
    "tag_frequency": ["low", "low", "low", "low"],   # all < 1 order a month
    "tag_value": ["mid",    # 770000 in [50万, 100万)
                  "low", "low",
                  "high"],  # 1100000 ≥ 100万
    "tag_state": ["active",      # 770000 > 0.7 × 600000; bought on as_of
                  "dormant",     # no prev amount; 107 days ≥ 90
                  "prospect",    # never bought
                  "churn_risk"],  # 1100000 ≤ 0.7 × 2000000 = 1400000
    # --- interactions
    "complaints_12m": [4,   # 2023-11-10, 2024-06-30, 2024-02-01, 2024-03-01
                       0,   # the 2024-07-02 complaint is after as_of
                       1, 0],
    "major_complaints_12m": [1, 0, 0, 0],   # C1 2024-06-30
    "complaints_6m": [3, 0, 1, 0],          # C1: 2024-06-30, 02-01, 03-01
    "complaint_resolution_hours": [(10 + 30) / 2,  # the 06-30 one was resolved after the cut-off
                                   NAN, NAN, NAN],
    "open_complaints": [2,   # 2024-02-01 (never resolved), 2024-06-30 20:00 (+10 h is after the cut-off)
                        0,
                        1,   # 2024-06-10, no resolution
                        0],
    "satisfaction_latest": [9.0,   # tie at 2024-05-01: the lower of 9 and 10
                            7.0, 4.0, NAN],
    "satisfaction_avg_12m": [(9 + 10) / 2,   # the 2023-06-01 survey is before 12m
                             (7 + 5) / 2, 4.0, NAN],
    "nps_latest": [100.0, 0.0, -100.0, NAN],  # 9 promoter, 7 passive, 4 detractor
    "referrals_12m": [1, 0, 0, 0],             # 2023-05-05 is before 12m
    "contacts_12m": [4,   # visit, call, 2 consultations
                     1, 1, 0],
    "contacts_per_month": [4 / 12, 1 / 12, 1 / 12, 0.0],
    "visits_12m": [1, 0, 0, 0],
    "consultations_6m": [1,   # 2024-02-15 (2023-12-15 is before 6m)
                         1, 1, 0],
    "campaigns_12m": [1, 0, 0, 0],
    "praise_12m": [1, 0, 0, 0],
    "days_since_contact": [15.0,   # call 2024-06-15
                           56.0,   # consultation 2024-05-05
                           41.0,   # consultation 2024-05-20
                           NAN],
    # --- customers
    "industry": ["retail", "tech", "food", NA],
    "region": ["north", "south", "east", NA],
    "size_employees": [120, 40, NA, NA],
    "annual_revenue": [5e7, 8e6, NAN, NAN],
    "industry_growth": [0.12, 0.03, NAN, NAN],
    "budget_growth": [0.20, NAN, 0.10, NAN],
    "market_share": [0.05, 0.01, NAN, NAN],
    "strategic": [True, False, NA, NA],
    "account_manager": ["amy", "bob", NA, NA],
    "product_lines": ["A;B", "A;C", NA, NA],
    "status": ["active",
               "lost",     # lost 2024-05-20 ≤ as_of
               "active",   # closed only on 2024-08-15
               "active"],  # no customers row
    "registered_years": [1582 / 365.25,   # created 2020-03-01 → 1582 days
                         289 / 365.25,    # created 2023-09-15
                         121 / 365.25,    # created 2024-03-01 (never bought)
                         NAN],            # no customers row
    # --- opportunities
    "open_opportunities": [3,   # P1 open, P3 won after as_of, P4 lost but closing date 09-30
                           0,   # Q1, Q2 closed before as_of
                           2,   # R1 (no status), R2
                           0],
    "days_to_close": [-10.0,   # min(P1 +20, P3 2024-06-20 → −10, P4 +92)
                      NAN,
                      184.0,   # R2 2024-12-31; R1 has no expected date
                      NAN],
    "pipeline_amount": [330000.0,   # 200000 + 50000 + 80000
                        0.0,
                        10000.0,    # R1 has no amount
                        0.0],
    "latest_stage": ["A06",   # P4 created 2024-05-01 (P5 is after as_of)
                     "A31", "A07", NA],
    "won_12m": [1,   # P2 closed 2024-06-05
                0,   # Q1 closed 2023-06-25, before 12m
                0, 0],
}


@pytest.fixture(scope="module")
def snap() -> pd.DataFrame:
    return snapshot(make_tables(), AS_OF)


def test_population_and_frame(snap):
    assert list(snap["customer_id"]) == ["C1", "C2", "C3", "C4"]
    assert list(snap.columns[:2]) == ["customer_id", "as_of"]
    assert set(snap.columns[2:]) == set(INDICATORS) == set(EXPECTED)
    assert list(snap.columns[2:]) == list(INDICATORS)  # registry order
    assert (snap["as_of"] == pd.Timestamp(AS_OF)).all()
    assert snap["as_of"].dtype == "datetime64[ns]"
    assert snap.index.equals(pd.RangeIndex(4))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_indicator_by_hand(snap, name):
    ind = INDICATORS[name]
    got = snap[name]
    assert str(got.dtype) == ind.dtype, (name, got.dtype)
    want = pd.Series(EXPECTED[name], name=name).astype(ind.dtype)
    pd.testing.assert_series_equal(got.reset_index(drop=True), want, check_exact=False, rtol=1e-12)


def test_registry_entries_are_complete():
    for name, ind in INDICATORS.items():
        assert isinstance(ind, Indicator) and ind.name == name
        assert ind.unit and ind.meaning and ind.window in WINDOWS
        assert ind.source in ("transactions", "interactions", "customers", "opportunities")
        for col in ind.columns:
            table, column = col.split(".")
            assert table == ind.source and column in TABLES[table].by_name


def test_as_of_accepts_dates_and_times():
    tables = make_tables()
    base = snapshot(tables, AS_OF)
    for value in (pd.Timestamp(AS_OF), pd.Timestamp("2024-06-30 09:15"), "2024-06-30T23:59",
                  __import__("datetime").date(2024, 6, 30)):
        pd.testing.assert_frame_equal(snapshot(tables, value), base)


# --- point in time --------------------------------------------------------------------------------

FUTURE = dict(
    transactions=[("C1", "2024-07-01 00:00:01", 5e6, "F1", "C", 9.0, 1.0, True),
                  ("C3", "2024-08-01", 1000.0, "F2", "A", 1.0, 1.0, True),   # a prospect's first purchase
                  ("C9", "2025-01-01", 1000.0, "F3", "A", 1.0, 1.0, True)],  # a new buyer
    interactions=[("C1", "2024-07-01", "complaint", "phone", "major", 1.0, NA),
                  ("C3", "2024-07-15", "survey", "web", NA, NA, 10.0),
                  ("C4", "2024-12-01", "visit", "visit", NA, NA, NA),
                  ("C4", "2024-12-01", "referral", NA, NA, NA, NA)],
    opportunities=[("F1", "C2", "2024-07-01", "A01", "2024-07-02", 5e5, "A", "won", "2024-07-02"),
                   ("F2", "C4", "2025-02-01", "A21", "2024-03-01", 1.0, "A", "open", NA)],
    customers=[("C8", "Theta", "tech", 0.5, 1, 1.0, "west", "A", "amy", "2024-07-01", 0.1, 0.1, True, "active", NA)],
)


def test_future_rows_change_nothing(snap):
    pd.testing.assert_frame_equal(snapshot(make_tables(**FUTURE), AS_OF), snap)


def test_future_changes_to_existing_rows_change_nothing(snap):
    tables = make_tables()
    cu, it, op = tables.customers, tables.interactions, tables.opportunities
    # C1 is lost after as_of
    cu.loc[cu.customer_id == "C1", ["status", "status_date"]] = ["lost", pd.Timestamp("2024-07-01")]
    # C3's open complaint gets resolved after as_of (2024-06-10 + 600 h = 2024-07-05)
    it.loc[(it.customer_id == "C3") & (it.kind == "complaint"), "resolution_hours"] = 600.0
    # C1's open P1 is won after as_of, R1 is lost after as_of
    op.loc[op.opportunity_id == "P1", ["status", "closed_date"]] = ["won", pd.Timestamp("2024-07-02")]
    op.loc[op.opportunity_id == "R1", ["status", "closed_date"]] = ["lost", pd.Timestamp("2024-09-01")]
    pd.testing.assert_frame_equal(snapshot(tables, AS_OF), snap)


def test_earlier_as_of_drops_later_customers():
    snap = snapshot(make_tables(), "2024-02-29")
    assert list(snap["customer_id"]) == ["C1", "C2", "C4"]  # C3 is created 2024-03-01
    assert snap.set_index("customer_id").loc["C2", "status"] == "active"  # lost only on 2024-05-20


def test_snapshot_is_pure_and_restrictable(snap):
    tables = make_tables()
    before = {k: tables.get(k).copy() for k in tables.present()}
    sub = snapshot(tables, AS_OF, customers=["C4", "C2", "C5", "nobody"])
    for k, df in before.items():
        pd.testing.assert_frame_equal(tables.get(k), df)
    expected = snap[snap.customer_id.isin(["C2", "C4"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(sub, expected)


def test_empty_population_has_all_columns():
    snap = snapshot(make_tables(), "2020-01-01")
    assert len(snap) == 0
    assert list(snap.columns[2:]) == list(INDICATORS)
    for name, ind in INDICATORS.items():
        assert str(snap[name].dtype) == ind.dtype, name


# --- partial tables -------------------------------------------------------------------------------

def test_transactions_only(snap):
    tx = make_tables().transactions
    only = snapshot(Tables(transactions=tx), AS_OF)
    tx_names = [n for n, i in INDICATORS.items() if i.source == "transactions"]
    assert list(only.columns) == ["customer_id", "as_of", *tx_names]
    assert list(only["customer_id"]) == ["C1", "C2", "C4"]  # no customers table: C3 unknown
    # tenure is from the first purchase with or without customers: C1 2022-08-10 → 690 days, C2 2023-10-01 → 273 days
    assert only["tenure_years"].tolist() == pytest.approx([690 / 365.25, 273 / 365.25, 668 / 365.25])
    assert only["tag_tenure"].tolist() == ["old", "new", "old"]
    same = [c for c in tx_names if c not in ("tenure_years", "tag_tenure")]
    pd.testing.assert_frame_equal(only[same], snap[snap.customer_id != "C3"].reset_index(drop=True)[same])


def test_minimal_transactions_columns():
    tx = make_tables().transactions[["customer_id", "date", "amount"]]
    only = snapshot(Tables(transactions=tx), AS_OF)
    for name in ("profit_12m", "margin_rate_12m", "volume_total", "volume_12m", "buys_core_product",
                 "product_lines_12m"):
        assert name not in only
    # without order ids every purchase line is an order: C1 has 4 purchase lines in 12m
    assert only["orders_12m"].tolist() == [4, 3, 1]
    assert only["orders_total"].tolist() == [7, 3, 3]
    missing = missing_indicators(Tables(transactions=tx))
    assert missing["profit_12m"] == "column(s) transactions.margin missing"
    assert missing["complaints_12m"] == "table interactions not loaded"
    assert available_indicators(Tables(transactions=tx)) == list(only.columns[2:])


def test_customers_without_status_date_has_no_status():
    t = make_tables()
    t.customers = t.customers.drop(columns=["status_date"])
    snap = snapshot(t, AS_OF)
    assert "status" not in snap and "industry" in snap


def test_required_tables():
    assert required_tables(["annual_amount", "tag_state"]) == {"transactions"}
    assert required_tables(["annual_amount", "complaints_12m", "industry", "days_to_close"]) == {
        "transactions", "interactions", "customers", "opportunities"}
    assert required_tables("satisfaction_latest") == {"interactions"}
    assert required_tables([]) == set()
    with pytest.raises(KeyError, match="no_such_thing"):
        required_tables(["annual_amount", "no_such_thing"])


def test_tag_boundaries():
    """The SEEDS step-3 thresholds, each on both sides of its boundary (as_of 2024-06-30)."""
    rows = []
    # frequency: 36 orders in 12m = 3 a month → high; 35 → mid; 12 → mid; 11 → low
    for cid, n in (("F36", 36), ("F35", 35), ("F12", 12), ("F11", 11)):
        rows += [(cid, pd.Timestamp("2024-06-01") - pd.Timedelta(days=i), 1.0, f"{cid}-{i}") for i in range(n)]
    # value: 100万 → high, just under → mid, 50万 → mid, just under → low
    for cid, amount in (("V100", 1e6), ("V99", 999999.99), ("V50", 5e5), ("V49", 499999.99)):
        rows.append((cid, pd.Timestamp("2024-06-01"), amount, cid))
    # state: annual exactly 0.7 × prev → churn_risk; a bit more → active (bought within 90 days)
    rows += [("S70", pd.Timestamp("2023-01-01"), 1000.0, "a"), ("S70", pd.Timestamp("2024-06-01"), 700.0, "b"),
             ("S71", pd.Timestamp("2023-01-01"), 1000.0, "a"), ("S71", pd.Timestamp("2024-06-01"), 701.0, "b")]
    # active: last purchase 2024-04-02 is 89 days before as_of → active; 2024-04-01 (90 days) → dormant
    rows += [("A89", pd.Timestamp("2024-04-02 12:00"), 1.0, "a"), ("A90", pd.Timestamp("2024-04-01 23:59"), 1.0, "a")]
    # tenure: 365 days → new (0.9993 y); 366 days → old (1.002 y)
    rows += [("T365", pd.Timestamp("2023-07-01"), 1.0, "a"), ("T366", pd.Timestamp("2023-06-30"), 1.0, "a")]
    tx = frame("transactions", ["customer_id", "date", "amount", "order_id"], rows)
    s = snapshot(Tables(transactions=tx), AS_OF).set_index("customer_id")
    assert s.loc[["F36", "F35", "F12", "F11"], "tag_frequency"].tolist() == ["high", "mid", "mid", "low"]
    assert s.loc["F36", "orders_per_month"] == 3.0
    assert s.loc[["V100", "V99", "V50", "V49"], "tag_value"].tolist() == ["high", "mid", "mid", "low"]
    assert s.loc[["S70", "S71"], "tag_state"].tolist() == ["churn_risk", "active"]
    assert s.loc[["A89", "A90"], "recency_days"].tolist() == [89.0, 90.0]
    assert s.loc[["A89", "A90"], "tag_state"].tolist() == ["active", "dormant"]
    assert s.loc[["T365", "T366"], "tag_tenure"].tolist() == ["new", "old"]


# --- property: the future never leaks -------------------------------------------------------------

_future_ts = st.datetimes(min_value=pd.Timestamp("2024-07-01").to_pydatetime(),
                          max_value=pd.Timestamp("2027-12-31").to_pydatetime())
_ids = st.sampled_from(["C1", "C2", "C3", "C4", "C5", "C7"])
_maybe = lambda s: st.none() | s  # noqa: E731
_money = st.floats(-1e7, 1e7, allow_nan=False)
_tx = st.tuples(_ids, _future_ts, _money, _maybe(st.sampled_from(["O1", "O4", "N1", "N2"])),
                _maybe(st.sampled_from(["A", "B", "Z"])), _maybe(st.floats(-100, 100)), _maybe(_money),
                _maybe(st.booleans()))
_it = st.tuples(_ids, _future_ts, st.sampled_from(["consultation", "visit", "call", "complaint", "survey",
                                                   "referral", "campaign", "praise"]),
                st.none(), _maybe(st.sampled_from(["minor", "major"])), _maybe(st.floats(0, 1e4)),
                _maybe(st.floats(0, 10)))
_op = st.tuples(st.text("XYZ", min_size=1, max_size=4).map(lambda s: "N" + s), _ids, _future_ts,
                st.sampled_from(["A01", "A21", "ZZZ"]),
                _maybe(st.datetimes(min_value=pd.Timestamp("2020-01-01").to_pydatetime(),
                                    max_value=pd.Timestamp("2027-01-01").to_pydatetime())),
                _maybe(_money), st.none(), _maybe(st.sampled_from(["open", "won", "lost"])), _maybe(_future_ts))
_cu = st.tuples(st.sampled_from(["N1", "N2", "N3"]), st.none(), st.just("x"), st.none(), st.none(), st.none(),
                st.just("r"), st.none(), st.none(), _future_ts, st.none(), st.none(), st.none(),
                st.sampled_from(["active", "lost", "closed"]), st.none())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tx=st.lists(_tx, max_size=6), it=st.lists(_it, max_size=6),
       op=st.lists(_op, max_size=4, unique_by=lambda r: r[0]),
       cu=st.lists(_cu, max_size=3, unique_by=lambda r: r[0]))
def test_property_future_rows_never_change_the_snapshot(snap, tx, it, op, cu):
    future = make_tables(transactions=tx, interactions=it, opportunities=op, customers=cu)
    pd.testing.assert_frame_equal(snapshot(future, AS_OF), snap)


def test_empty_transactions_table_keeps_customers():
    t = make_tables()
    t.transactions = t.transactions.iloc[:0]
    snap = snapshot(t, AS_OF)
    assert list(snap["customer_id"]) == ["C1", "C2", "C3"]
    assert (snap["annual_amount"] == 0).all() and snap["last_purchase"].isna().all()
    assert (snap["tag_state"] == "prospect").all()
    assert snap["tenure_years"].isna().all()  # nobody bought: no years of cooperation
    assert snap["registered_years"].tolist() == pytest.approx([1582 / 365.25, 289 / 365.25, 121 / 365.25])


def test_missing_required_column_is_an_input_error():
    from segment.errors import SegmentError
    t = make_tables()
    with pytest.raises(SegmentError, match="interactions table lacks required column"):
        t.interactions = t.interactions.drop(columns=["kind"])  # refused when the frame is handed over
    with pytest.raises(SegmentError, match="interactions table lacks required column"):
        snapshot(Tables(transactions=t.transactions, interactions=t.interactions.drop(columns=["kind"])), AS_OF)


def test_restricting_to_no_customers():
    snap = snapshot(make_tables(), AS_OF, customers=[])
    assert len(snap) == 0 and list(snap.columns[2:]) == list(INDICATORS)


def test_a_snapshot_is_computed_once_per_date_and_forgotten_when_a_table_changes(snap):
    """A report asks for the same date several times: the second answer comes from the database,
    equal to the first; replacing a table computes it again from the new table."""
    t = make_tables()
    first = snapshot(t, AS_OF)
    assert list(t._snapshots) == [pd.Timestamp(AS_OF).normalize()]
    again = snapshot(t, AS_OF)
    pd.testing.assert_frame_equal(again, first)
    pd.testing.assert_frame_equal(again, snap)
    t.transactions = t.transactions.iloc[:0]
    assert t._snapshots == {}
    emptied = snapshot(t, AS_OF)
    assert (emptied["annual_amount"] == 0).all() and not (first["annual_amount"] == 0).all()
