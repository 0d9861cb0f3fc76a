"""The deterministic demo company: the contract tables simulated month by month from a seed, with its point-in-time facts.

Public: simulate, generate, declared, data_yaml, write_demo.
Reads: nothing. Writes: the demo company's files (segment demo --out).

``generate(customers, seed)`` returns :class:`segment.data.tables.Tables`; ``write_demo(out, ...)`` writes
``customers.csv``, ``transactions.parquet``, ``interactions.parquet``, ``opportunities.csv``,
``measures.parquet`` (the facts: :mod:`segment.demo.facts`), ``indicators.yaml`` (the indicators declared
over them) and a ``data.yaml`` pointing at them (every file atomically; same seed and size →
byte-identical files).

The mechanism (full description, every coefficient and the measured proportions in ``docs/demo.md``):

* Customers are acquired throughout (some years before ``START_DATE``, the rest until ``END_DATE``);
  ~7% are *prospects* who enquire and open opportunities but never buy.
* Each buying customer has a heavy-tailed (lognormal) spend level correlated with its size, an order
  rate, a growth trend, a margin rate, product lines, and a latent *engagement* that follows an AR(1)
  process month by month. Engagement raises order rate, order value, referrals, praise and survey
  scores and lowers complaints, so the churn drivers are correlated with each other as in real data.
* Every month, each active customer churns with hazard ``sigmoid(logit)``::

      logit = intercept
            + complaints_6m * (complaints in the last 6 months)
            + major_complaints_6m * (major complaints in the last 6 months)
            + satisfaction_gap * (7 - latest survey score; 0 without a survey)
            + log_months_since_order * log(1 + full months since the last month with an order)
            + spend_decline * clip(log((spend 6 before + 1) / (spend last 6 + 1)), -1, 2)
            + log_tenure_years * log(1 + tenure in years)
            + referrals_12m * (referrals in the last 12 months)

  with the coefficients in :data:`CHURN_COEFFICIENTS`. ``industry_growth``, ``budget_growth``,
  ``region`` and ``market_share`` have **exactly zero** effect (their values are drawn independently of
  everything that drives churn; only the *presence* of a market share marks the largest 5% by revenue). A churned customer has no transactions or interactions after its churn
  date (a share leave with a "parting" complaint dated on the churn date); 45% of churned customers are
  marked ``status='lost'`` with ``status_date`` = churn date, the rest churn silently (still 'active')."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from segment.data.tables import Tables
from segment.demo.facts import (
    CUSTOMER_FIELDS,
    DECLARED_INDICATORS,
    FACTS_SEED,
    customer_fields,
    indicators_yaml,
    measures_frame,
)
from segment.demo.simulation import SIM_KIND_INDEX, SIM_KINDS, simulate_history
from segment.demo.world import (
    CHANNELS,
    CORE_PRODUCT_LINES,
    END_DATE,
    EPOCH_END,
    EPOCH_START,
    KIND_CHANNELS,
    KIND_INDEX,
    KINDS,
    PRODUCT_LINES,
    STAGES_LOST,
    STAGES_OPEN,
    STAGES_WON,
    as_dates,
    customer_frame,
    id_strings,
    sigmoid,
    static_customers,
    string_series,
    strings_at,
)
from segment.plumbing.atomic import atomic_path, write_text


def _transactions(tx: dict, id_width: int, n_customers: int) -> pd.DataFrame:
    """The transactions table; consumes ``tx`` (columns are freed as they are used: 1M customers make
    tens of millions of lines)."""
    n_orders = int(tx["order"].max()) + 1 if len(tx["order"]) else 1
    # sort by (customer, date, order number): lines are generated month by month, orders numbered by
    # (day, customer) inside the month, so a stable sort on (customer, day) keeps the order numbers rising
    key = tx["cust"].astype(np.int64) * 4096 + (tx["day"].astype(np.int64) - EPOCH_START)
    idx = np.argsort(key, kind="stable")
    del key

    def take(name):
        return tx.pop(name)[idx]

    cust_ids = pa.array(id_strings("C", np.arange(1, n_customers + 1), id_width))
    cols: dict[str, object] = {}
    cols["customer_id"] = string_series(pd.arrays.ArrowStringArray(pc.take(cust_ids, pa.array(take("cust")))))
    cols["date"] = as_dates(take("day"))
    cols["amount"] = take("amount")
    cols["order_id"] = string_series(id_strings("SO", take("order") + 1, max(9, len(str(n_orders)))))
    line = take("line")
    cols["product_line"] = string_series(strings_at(PRODUCT_LINES, line))
    cols["quantity"] = take("qty")
    cols["unit_price"] = take("price")
    cols["margin"] = take("margin")
    core = np.isin(line, [PRODUCT_LINES.index(x) for x in CORE_PRODUCT_LINES])
    del line
    cols["core_product"] = pd.array(core, dtype="boolean")
    return pd.DataFrame(cols, copy=False)


def _interactions(rng: np.random.Generator, it: dict, id_width: int, n_customers: int) -> pd.DataFrame:
    n = len(it["cust"])
    sim_kind = it["kind"].astype(np.int64)
    # simulated kinds → contract kinds
    to_kind = np.array([KIND_INDEX[k if not k.startswith("complaint") else "complaint"] for k in SIM_KINDS[:-1]])
    kind = to_kind[sim_kind]
    is_c = kind == KIND_INDEX["complaint"]
    severity = np.where(sim_kind == SIM_KIND_INDEX["complaint_major"], 1, 0)
    # resolution hours: lognormal, major ×2.5; recent complaints may still be open
    hours = np.exp(rng.normal(np.log(20.0), 1.0, n)) * np.where(severity == 1, 2.5, 1.0)
    age = EPOCH_END - it["day"].astype(np.int64)
    p_open = np.where(age <= 14, 0.5, np.where(age <= 60, 0.1, 0.01))
    still_open = rng.random(n) < p_open
    hours = np.where(is_c & ~still_open, np.round(hours, 1), np.nan)
    # channels
    ch = np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    for k, (chans, probs) in KIND_CHANNELS.items():  # 8 kinds, not a per-row loop
        sel = kind == KIND_INDEX[k]
        cum = np.cumsum(probs)
        ch[sel] = np.asarray(chans)[np.minimum(np.searchsorted(cum, u[sel], side="right"), len(chans) - 1)]

    key = it["cust"].astype(np.int64) * 4096 + (it["day"].astype(np.int64) - EPOCH_START)
    idx = np.lexsort((kind, key))
    cust_ids = pa.array(id_strings("C", np.arange(1, n_customers + 1), id_width))
    df = pd.DataFrame({
        "customer_id": string_series(pd.arrays.ArrowStringArray(pc.take(cust_ids, pa.array(it["cust"][idx])))),
        "date": as_dates(it["day"][idx]),
        "kind": string_series(strings_at(KINDS, kind[idx])),
        "channel": string_series(strings_at(CHANNELS, ch[idx])),
        "severity": string_series(strings_at(("minor", "major"), severity[idx], is_c[idx])),
        "resolution_hours": hours[idx],
        "score": it["score"][idx],
    }, copy=False)
    return df


def _opportunities(rng: np.random.Generator, op: dict, c: dict, churn_day: np.ndarray,
                   id_width: int) -> pd.DataFrame:
    cust = op["cust"].astype(np.int64)
    created = op["day"].astype(np.int64)
    n = len(cust)
    duration = np.maximum(7, np.round(np.exp(rng.normal(np.log(80.0), 0.9, n)))).astype(np.int64)
    planned = created + duration
    ch = np.where(churn_day[cust] >= 0, churn_day[cust], np.iinfo(np.int64).max)
    prospect = c["prospect"][cust]
    p_win = np.where(prospect, 0.0, sigmoid(-0.2 + 0.8 * op["eng"].astype(float)))
    won = rng.random(n) < p_win
    closes = (planned <= EPOCH_END) & (planned < ch)
    slipped = closes & (planned > EPOCH_END - 90) & (rng.random(n) < 0.10) & (ch > EPOCH_END)
    closes &= ~slipped
    dies = ~closes & ~slipped & (ch <= EPOCH_END)       # the customer churned first: lost
    open_ = ~closes & ~dies

    status = np.where(closes & won, 1, np.where(open_, 0, 2))   # OPPORTUNITY_STATUS order
    closed_date = np.where(closes, planned, np.where(dies, np.maximum(ch, created), -1))
    # stages: open by time to the expected close (with some noise), won A02/A01, lost A31
    remaining = planned - EPOCH_END
    edges = np.array([45, 90, 150, 240, 365, 540])            # → A03, A04, A05, A06, A07, A08, A21
    open_rank = 6 - np.searchsorted(edges, remaining, side="left")  # index into STAGES_OPEN
    jitter = rng.choice(np.array([-1, 0, 0, 0, 0, 1]), n)
    open_rank = np.clip(open_rank + jitter, 0, 6)
    all_stages = STAGES_OPEN + STAGES_WON + STAGES_LOST
    won_stage = np.where(planned <= EPOCH_END - 60, 8, 7)      # A01 delivered and paid, else A02
    stage = np.where(status == 0, open_rank, np.where(status == 1, won_stage, 9))
    expected = planned.copy()
    latent = open_ & (open_rank <= 1) & (rng.random(n) < 0.3)   # latent need: no date yet
    expected[latent] = -1

    amount = np.maximum(500.0, np.round(c["spend_level"][cust] * np.exp(rng.normal(np.log(0.25), 0.8, n)), -2))
    own = rng.random(n) < 0.7
    line_own = (rng.random(n)[:, None] > c["line_cum"][cust]).sum(axis=1).clip(0, 3)
    line = np.where(own, line_own, rng.integers(0, 4, n))

    order = np.lexsort((cust, created))       # ids are chronological
    seq = np.empty(n, dtype=np.int64)
    seq[order] = np.arange(1, n + 1)
    idx = np.lexsort((seq, created, cust))    # rows by (customer, created date)
    cust_ids = pa.array(id_strings("C", np.arange(1, c["n"] + 1), id_width))
    df = pd.DataFrame({
        "opportunity_id": string_series(id_strings("OP", seq[idx], max(7, len(str(n))))),
        "customer_id": string_series(pd.arrays.ArrowStringArray(pc.take(cust_ids, pa.array(cust[idx])))),
        "created_date": as_dates(created[idx]),
        "stage": string_series(strings_at(all_stages, stage[idx])),
        "expected_close_date": as_dates(expected[idx]),
        "amount": amount[idx].astype(float),
        "product_line": string_series(strings_at(PRODUCT_LINES, line[idx])),
        "status": string_series(strings_at(("open", "won", "lost"), status[idx])),
        "closed_date": as_dates(closed_date[idx]),
    }, copy=False)
    return df


def _frames(customers: int = 5000, seed: int = 20260930, progress: bool = False) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The demo tables plus the hidden truth (one row per customer): ``customer_id``, ``prospect``,
    ``churn_date`` (NaT if the customer never churned; churned customers only carry ``status='lost'``
    in the CRM for a share of them). ``generate`` returns the same tables without the truth."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    rng = np.random.default_rng(seed)
    c = static_customers(rng, int(customers))
    sim = simulate_history(c, rng, progress)
    width = max(6, len(str(c["n"])))
    cust_df = customer_frame(rng, c, sim["churn_day"])
    frames = dict(
        transactions=_transactions(sim["tx"], width, c["n"]),
        customers=cust_df,
        interactions=_interactions(rng, sim["it"], width, c["n"]),
        opportunities=_opportunities(rng, sim["op"], c, sim["churn_day"], width),
    )
    facts_rng = np.random.default_rng([seed, FACTS_SEED])  # its own stream: the tables above stay as they were
    for name, values in customer_fields(facts_rng, c).items():
        cust_df[name] = pd.array(values, dtype="boolean")
    frames["measures"] = measures_frame(facts_rng, c, sim, frames, width)
    truth = pd.DataFrame({
        "customer_id": cust_df["customer_id"],
        "prospect": c["prospect"],
        "churn_date": as_dates(sim["churn_day"]),
    })
    truth.attrs["hazard_log"] = sim["hazard_log"]
    return frames, truth


def simulate(customers: int = 5000, seed: int = 20260930, progress: bool = False) -> tuple[Tables, pd.DataFrame]:
    """The demo company's tables (with its declared fields and indicators) and, per customer, its truth
    (see :func:`_frames`)."""
    frames, truth = _frames(customers, seed, progress)
    return Tables(**frames, declared=declared()), truth


def declared():
    """The demo's declared fields and indicators, as its data.yaml declares them."""
    from segment.data.config import DataConfig

    return DataConfig.model_validate(yaml.safe_load(data_yaml(0, 0)) | {"indicators": DECLARED_INDICATORS}).declared()


def generate(customers: int = 5000, seed: int = 20260930, progress: bool = False) -> Tables:
    """The demo company's four tables (contract columns and dtypes), deterministic in (customers, seed)."""
    return simulate(customers, seed, progress)[0]


def _write_csv(df: pd.DataFrame, target: Path) -> None:
    with atomic_path(target) as tmp:
        df.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n", date_format="%Y-%m-%d")


def _write_parquet(df: pd.DataFrame, target: Path) -> None:
    with atomic_path(target) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow", compression="snappy")


def data_yaml(customers: int, seed: int) -> str:
    """The text of the demo's data.yaml."""
    return (
        f"# Demo company generated by `segment demo` (seed {seed}, {customers} customers). See docs/demo.md.\n"
        "name: demo\n"
        f"as_of: {END_DATE.date().isoformat()}\n"
        "tables:\n"
        "  customers:\n"
        "    path: customers.csv\n"
        "    fields:\n"
        + "".join(f"      {k}: {{type: {v['type']}, meaning: \"{v['meaning']}\"}}\n" for k, v in CUSTOMER_FIELDS.items())
        + "  transactions: {path: transactions.parquet}\n"
        "  interactions: {path: interactions.parquet}\n"
        "  opportunities: {path: opportunities.csv}\n"
        "  measures: {path: measures.parquet}\n"
        "# the facts' indicators (docs/demo.md, Facts); `segment indicators --data data.yaml` lists them\n"
        "indicators: indicators.yaml\n"
    )


def write_demo(out: str | Path, customers: int = 5000, seed: int = 20260930, progress: bool = False) -> Path:
    """Generate the demo company and write it into ``out`` (created if needed); returns ``out/data.yaml``.

    Every file goes to a temporary name in ``out`` first and is renamed on success; data.yaml is
    written last, so a data.yaml always points at complete tables."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t, _ = _frames(customers, seed, progress)
    _write_csv(t["customers"], out / "customers.csv")
    _write_parquet(t["transactions"], out / "transactions.parquet")
    _write_parquet(t["interactions"], out / "interactions.parquet")
    _write_csv(t["opportunities"], out / "opportunities.csv")
    _write_parquet(t["measures"], out / "measures.parquet")
    write_text(out / "indicators.yaml", indicators_yaml())
    return write_text(out / "data.yaml", data_yaml(customers, seed))
