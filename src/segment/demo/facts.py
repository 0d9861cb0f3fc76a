"""The demo company's point-in-time facts: the measures table (balances, the four project elements, decision-maker facts, intent signals, payments, referrals that closed, renewals, attribute history) and two declared customer fields, drawn from the simulated history and its latent engagement.

Public: FACTS_SEED, MEASURES, CUSTOMER_FIELDS, DECLARED_INDICATORS, measures_frame, customer_fields, indicators_yaml.
Reads: nothing. Writes: nothing (segment.demo.write writes measures.parquet and indicators.yaml).

The facts come from their own random stream (``[seed, FACTS_SEED]``), after the simulation, so the four
contract tables are the same as without them. How each fact follows the latent mechanism is in
docs/demo.md ("Facts"); in short, with ``e`` the customer's engagement in the month of the fact:

* **balances** (S10) — a bank-like segment (20% of buyers) holds ``deposits``, ``loans`` and
  ``investments``, recorded at every quarter end while it is a customer: deposits ≈ 0.6 × its spend
  level × exp(0.6 e), investments for the engaged, loans for a third of them;
* **the four project elements** (S8; this and the other facts of an opportunity carry its product
  line in ``group``) — on every opportunity, ``need_known``, ``budget_known``,
  ``timetable_known`` and ``decision_makers_known`` become known (value 1) with probability
  sigmoid(0.4 + e) each, 0–60 days after it opens;
* **decision-maker facts and stages** (S7, S9) — along the path to the opportunity's last stage:
  ``dm_response`` (−1 refused, 0 neutral, 1 positive), ``price_known``, ``price_agreed``,
  ``verbal_commitment``, ``registered``, ``deposit_paid`` (an amount), ``visit_minutes``; ``payment``
  (an amount) after a won opportunity closes;
* **stage history** — ``stage`` (its code in ``text``) for each stage an opportunity passed on the way
  to its last one, dated along its path (the history ``latest_stage`` reads at a past date);
* **referrals that closed** (S3) — ``referral_closed`` (1) for 35% of referrals, 10–90 days later;
* **renewals** (S3) — ``renewal`` at each anniversary of a buyer's first year: 1 if it bought in the
  past 12 months, else 0;
* **attribute history** — ``market_share`` each quarter end (a random walk ending at the customers
  table's value) and ``budget_growth`` each 1 January; neither affects churn, as before.

Customer fields: ``agent`` (8% of customers resell to others: S8 leaves them out) and
``strong_brand`` (a third of the customers with a market share: S4's "strong brand").
Facts dated after the churn day or END_DATE are not recorded."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segment.demo.world import (
    EPOCH_END,
    EPOCH_START,
    PRODUCT_LINES,
    as_dates,
    id_strings,
    sigmoid,
    string_series,
    strings_at,
)

#: mixed into the demo's seed for the facts' own random stream
FACTS_SEED = 15

#: every measure the demo records, with its meaning (docs/demo.md)
MEASURES = {
    "deposits": "deposit balance at a quarter end (bank-like segment)",
    "loans": "loan balance at a quarter end (bank-like segment)",
    "investments": "investment balance at a quarter end (bank-like segment)",
    "need_known": "1: the project's need is known (S8 element)",
    "budget_known": "1: a budget this year matching our pricing is known (S8 element)",
    "timetable_known": "1: a timetable this year is known (S8 element)",
    "decision_makers_known": "1: the decision makers are known (S8 element)",
    "dm_response": "the decision maker's response: -1 refused, 0 neutral, 1 positive (S7)",
    "price_known": "1: the decision maker knows our price (S7 A05)",
    "price_agreed": "1: the price is agreed and the budget fits (S7 A04, S9 price acceptance)",
    "verbal_commitment": "1: verbal commitment, audit or samples (S7 A03)",
    "registered": "1: internal registration of the buyer (S9 B)",
    "deposit_paid": "a deposit paid, in currency (S9 strong B)",
    "visit_minutes": "time spent on a visit or the site, in minutes (S9 intent)",
    "payment": "a payment received, in currency (S7 A02 / A01)",
    "referral_closed": "1: a referral the customer made closed (S3 referral 5)",
    "renewal": "1 renewed / 0 not, at each anniversary of a buyer's first year (S3 renewal rate)",
    "stage": "an opportunity's stage code in `text`, when it was reached (history of latest_stage)",
    "market_share": "the customer's market share at a quarter end (history of the customers column)",
    "budget_growth": "the expected budget growth set each 1 January (history of the customers column)",
}

#: the declared customers fields of the demo's data config
CUSTOMER_FIELDS = {
    "agent": {"type": "bool", "meaning": "the customer is an agent reselling to others (S8 leaves agents out)"},
    "strong_brand": {"type": "bool", "meaning": "a strong brand in its market (S4 industry influence)"},
}

#: the demo's declared indicators (written to indicators.yaml beside data.yaml)
DECLARED_INDICATORS: dict[str, dict] = {
    "deposits": {"measure": "deposits", "window": "365d", "unit": "currency", "meaning": "latest deposit balance"},
    "loans": {"measure": "loans", "window": "365d", "unit": "currency", "meaning": "latest loan balance"},
    "investments": {"measure": "investments", "window": "365d", "unit": "currency",
                    "meaning": "latest investment balance"},
    "customer_assets": {"expr": "deposits + loans + investments", "unit": "currency",
                        "meaning": "deposits + loans + investments (S10 value)"},
    "deposits_change_12m": {"measure": "deposits", "agg": "change", "window": "12m", "unit": "currency",
                            "meaning": "deposit balance now minus 12 months ago"},
    "need_known": {"measure": "need_known", "window": "365d", "unit": "flag"},
    "budget_known": {"measure": "budget_known", "window": "365d", "unit": "flag"},
    "timetable_known": {"measure": "timetable_known", "window": "365d", "unit": "flag"},
    "decision_makers_known": {"measure": "decision_makers_known", "window": "365d", "unit": "flag"},
    "four_elements": {"expr": "need_known + budget_known + timetable_known + decision_makers_known", "unit": "count",
                      "meaning": "how many of the four project elements are known (S8: all 4 to be graded)"},
    "dm_response": {"measure": "dm_response", "window": "365d", "unit": "-1 / 0 / 1",
                    "meaning": "latest decision-maker response: -1 refused, 0 neutral, 1 positive"},
    "price_known": {"measure": "price_known", "window": "365d", "unit": "flag"},
    "price_agreed": {"measure": "price_agreed", "window": "365d", "unit": "flag"},
    "verbal_commitment": {"measure": "verbal_commitment", "window": "180d", "unit": "flag"},
    "registered": {"measure": "registered", "window": "365d", "unit": "flag"},
    "deposit_paid": {"measure": "deposit_paid", "agg": "sum", "window": "365d", "unit": "currency",
                     "meaning": "deposits paid in the last 12 months"},
    "visit_minutes_90d": {"measure": "visit_minutes", "agg": "sum", "window": "90d", "unit": "minutes",
                          "meaning": "time spent on visits in the last 90 days"},
    "payments_90d": {"measure": "payment", "agg": "sum", "window": "90d", "unit": "currency",
                     "meaning": "payments received in the last 90 days"},
    "referrals_closed_12m": {"measure": "referral_closed", "agg": "count", "window": "365d", "unit": "count",
                             "meaning": "referrals that closed in the last 12 months"},
    "renewal_rate": {"measure": "renewal", "agg": "mean", "window": "1095d", "unit": "fraction",
                     "meaning": "share of the last three years' anniversaries renewed"},
}

_QUARTER_ENDS = pd.date_range("2022-12-31", "2026-09-30", freq="QE")
#: the stages an opportunity passes, in order (S7's codes; A31 is a refusal after A08)
STAGE_PATH = ("A21", "A08", "A07", "A06", "A05", "A04", "A03", "A02", "A01", "A31")
STAGE_TEXTS = STAGE_PATH


def _day_of(ts) -> np.ndarray:
    return ((pd.DatetimeIndex(ts) - pd.Timestamp("1970-01-01")).days).to_numpy(np.int64)


def _engagement_at(eng: np.ndarray, cust: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The customer's engagement in the month of ``day`` (0 before its first simulated month)."""
    month = ((day.astype("datetime64[D]").astype("datetime64[M]") - np.datetime64("2023-01", "M"))
             .astype(np.int64)).clip(0, eng.shape[1] - 1)
    v = eng[cust, month].astype(np.float64)
    return np.where(np.isnan(v), 0.0, v)


def customer_fields(rng: np.random.Generator, c: dict) -> dict[str, np.ndarray]:
    """The declared customer fields (``agent``, ``strong_brand``), one value per customer."""
    n = c["n"]
    agent = rng.random(n) < 0.08
    brand = ~np.isnan(c["market_share"]) & (rng.random(n) < 1 / 3)
    return {"agent": agent, "strong_brand": brand}


def measures_frame(rng: np.random.Generator, c: dict, sim: dict, frames: dict[str, pd.DataFrame],
                   id_width: int) -> pd.DataFrame:
    """The measures table (customer_id, date, measure, value), sorted by customer, date and measure.

    Long because every fact of the demo is drawn here in one seeded sequence (see the module docstring):
    reordering the draws would change the file."""
    n = c["n"]
    eng = sim["eng_month"]
    churn = np.where(sim["churn_day"] >= 0, sim["churn_day"], np.iinfo(np.int64).max)
    end = np.minimum(churn, EPOCH_END)  # the last day a fact can be recorded, per customer
    created = c["created"].astype(np.int64)
    parts: list[tuple] = []  # (cust, day, measure, value, group: product-line index or -1, text: stage index or -1)

    def add(cust, day, measure, value, group=None, text=None):
        keep = (day <= end[cust]) & (day >= EPOCH_START - 365)
        if keep.any():
            g = np.full(len(cust), -1, dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
            t = np.full(len(cust), -1, dtype=np.int64) if text is None else np.asarray(text, dtype=np.int64)
            parts.append((cust[keep], day[keep], measure, np.asarray(value, dtype=np.float64)[keep], g[keep], t[keep]))

    # balances: a bank-like segment of buyers, every quarter end while a customer
    bank = np.flatnonzero(~c["prospect"] & (rng.random(n) < 0.20))
    q_days = _day_of(_QUARTER_ENDS)
    has_loan = rng.random(len(bank)) < 1 / 3
    inv_base = rng.random(len(bank))
    for qd in q_days:
        who = bank[created[bank] <= qd]
        if not len(who):
            continue
        e = _engagement_at(eng, who, np.full(len(who), qd))
        level = c["spend_level"][who]
        day = np.full(len(who), qd)
        add(who, day, "deposits", np.round(0.6 * level * np.exp(0.6 * e + rng.normal(0, 0.2, len(who))), -2))
        loan = has_loan[np.searchsorted(bank, who)]
        add(who[loan], day[loan], "loans", np.round(level[loan] * np.exp(rng.normal(0, 0.3, loan.sum())), -2))
        inv = inv_base[np.searchsorted(bank, who)] < sigmoid(-0.5 + 1.5 * e)
        add(who[inv], day[inv], "investments",
            np.round(0.4 * level[inv] * np.exp(0.8 * e[inv] + rng.normal(0, 0.3, inv.sum())), -2))

    # opportunities: the four elements, the decision maker's facts along the stage path, payments
    op = frames["opportunities"]
    o_cust = op["customer_id"].str.slice(1).astype(int).to_numpy() - 1
    o_day = _day_of(op["created_date"])
    o_line = np.select([op["product_line"].astype(str).to_numpy() == x for x in PRODUCT_LINES],
                       np.arange(len(PRODUCT_LINES)), default=-1)
    o_close = np.where(op["closed_date"].isna(), EPOCH_END, _day_of(op["closed_date"].fillna(pd.Timestamp("2026-09-30"))))
    stage = op["stage"].astype(str).to_numpy()
    rank = np.select([stage == s for s in ("A21", "A08", "A07", "A06", "A05", "A04", "A03", "A02", "A01")],
                     np.arange(9), default=-1)  # A31 (refused) → -1
    e_op = _engagement_at(eng, o_cust, o_day)
    span = np.maximum(o_close - o_day, 1)
    for k, m in enumerate(("need_known", "budget_known", "timetable_known", "decision_makers_known")):
        known = rng.random(len(o_cust)) < sigmoid(0.4 + e_op + 0.3 * (rank >= 5) - 0.1 * k)
        d = o_day + rng.integers(0, 61, len(o_cust))
        add(o_cust[known], d[known], m, np.ones(known.sum()), o_line[known])

    def along(frac_lo, frac_hi):  # a day on the opportunity's path
        return o_day + (span * rng.uniform(frac_lo, frac_hi, len(o_cust))).astype(np.int64)

    reached = rank >= 2
    said = reached | (rank == -1)
    add(o_cust[said], along(0.05, 0.3)[said], "dm_response",
        np.where(rank == -1, -1.0, np.where(rank >= 3, 1.0, 0.0))[said], o_line[said])
    for m, at_least, lo, hi in (("price_known", 4, 0.3, 0.5), ("price_agreed", 5, 0.5, 0.7),
                                ("registered", 3, 0.2, 0.4), ("verbal_commitment", 6, 0.7, 0.9)):
        hit = rank >= at_least
        add(o_cust[hit], along(lo, hi)[hit], m, np.ones(hit.sum()), o_line[hit])
    dep = rank >= 5
    amount = op["amount"].fillna(0).to_numpy(np.float64)
    add(o_cust[dep], along(0.6, 0.8)[dep], "deposit_paid", np.round(0.1 * amount[dep], -2), o_line[dep])
    add(o_cust, o_day + rng.integers(0, 8, len(o_cust)), "visit_minutes",
        np.round(np.exp(np.log(25.0) + 0.5 * e_op + rng.normal(0, 0.6, len(o_cust)))), o_line)
    won = rank >= 7
    add(o_cust[won], o_close[won] + rng.integers(0, 46, won.sum()), "payment", np.round(amount[won], -2), o_line[won])
    # the stage history: each stage on the way to the last one, dated along the path (a refusal: A21, A08, A31)
    for step, code in enumerate(STAGE_PATH):
        on_path = (rank >= step) if code != "A31" else (rank == -1)
        if code in ("A21", "A08"):
            on_path = (rank >= step) | (rank == -1)
        lo, hi = (step / len(STAGE_PATH), (step + 1) / len(STAGE_PATH)) if code != "A31" else (0.3, 0.5)
        when = o_day if code == "A21" else along(lo, hi)
        add(o_cust[on_path], when[on_path], "stage", np.full(len(o_cust), np.nan)[on_path], o_line[on_path],
            np.full(on_path.sum(), STAGE_TEXTS.index(code)))

    # referrals that closed
    it = frames["interactions"]
    ref = it[it["kind"] == "referral"]
    r_cust = ref["customer_id"].str.slice(1).astype(int).to_numpy() - 1
    r_day = _day_of(ref["date"].dt.normalize())
    closed = rng.random(len(r_cust)) < 0.35
    add(r_cust[closed], (r_day + rng.integers(10, 91, len(r_cust)))[closed], "referral_closed", np.ones(closed.sum()))

    # renewals at each anniversary of the first year: bought in the 12 months before it
    tx = frames["transactions"]
    buys = tx[tx["amount"] > 0]
    b_cust = buys["customer_id"].str.slice(1).astype(int).to_numpy() - 1
    b_day = _day_of(buys["date"].dt.normalize())
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, b_cust, b_day)
    order = np.lexsort((b_day, b_cust))
    b_cust, b_day = b_cust[order], b_day[order]
    for year in range(1, 9):
        who = np.flatnonzero(first < np.iinfo(np.int64).max)
        ann = first[who] + 365 * year
        ok = ann <= end[who]
        who, ann = who[ok], ann[ok]
        if not len(who):
            continue
        # last purchase strictly before the anniversary: searchsorted in the (customer, day) order
        pos = np.searchsorted(b_cust * 100_000 + (b_day - EPOCH_START + 50_000), who * 100_000
                              + (ann - EPOCH_START + 50_000), side="left") - 1
        last = np.where((pos >= 0) & (b_cust[pos.clip(0)] == who), b_day[pos.clip(0)], -10**9)
        add(who, ann, "renewal", (ann - last <= 365).astype(float))

    # attribute history: market share each quarter end (ending at today's value), budget growth each 1 January
    share = np.flatnonzero(~np.isnan(c["market_share"]))
    walk = np.cumsum(rng.normal(0, 0.01, (len(share), len(q_days)))[:, ::-1], axis=1)[:, ::-1]
    for j, qd in enumerate(q_days):
        who = share[created[share] <= qd]
        vals = np.clip(c["market_share"][who] + walk[np.searchsorted(share, who), j] - walk[np.searchsorted(share, who), -1],
                       0.001, 0.95)
        add(who, np.full(len(who), qd), "market_share", np.round(vals, 3))
    bg = np.flatnonzero(~np.isnan(c["budget_growth"]))
    for year in (2023, 2024, 2025, 2026):
        jan = int((pd.Timestamp(f"{year}-01-01") - pd.Timestamp("1970-01-01")).days)
        who = bg[created[bg] <= jan]
        vals = c["budget_growth"][who] if year == 2026 else np.round(c["budget_growth"][who]
                                                                     + rng.normal(0, 0.05, len(who)), 2)
        add(who, np.full(len(who), jan), "budget_growth", vals)

    cust = np.concatenate([p[0] for p in parts])
    day = np.concatenate([p[1] for p in parts])
    name = np.concatenate([np.full(len(p[0]), i, dtype=np.int16) for i, p in enumerate(parts)])
    value = np.concatenate([p[3] for p in parts])
    group = np.concatenate([p[4] for p in parts])
    text = np.concatenate([p[5] for p in parts])
    names = [p[2] for p in parts]
    measure_rank = {m: i for i, m in enumerate(MEASURES)}
    m_idx = np.array([measure_rank[names[i]] for i in range(len(parts))])[name]
    idx = np.lexsort((m_idx, day, cust))
    cust_ids = pa.array(id_strings("C", np.arange(1, n + 1), id_width))
    return pd.DataFrame({
        "customer_id": string_series(pd.arrays.ArrowStringArray(pc.take(cust_ids, pa.array(cust[idx])))),
        "date": as_dates(day[idx]),
        "measure": pd.Series(np.asarray(list(MEASURES), dtype=object)[m_idx[idx]], dtype="string"),
        "value": value[idx],
        "text": string_series(strings_at(STAGE_TEXTS, text[idx], text[idx] >= 0)),
        "group": string_series(strings_at(PRODUCT_LINES, group[idx], group[idx] >= 0)),
    }, copy=False)


def indicators_yaml() -> str:
    """The text of the demo's indicators.yaml (the declared indicators, named by data.yaml)."""
    import yaml

    head = ("# The demo company's declared indicators (segment.features.declared), named by data.yaml's\n"
            "# `indicators:`; `segment indicators --data data.yaml` lists them. See docs/demo.md (Facts).\n")
    return head + yaml.safe_dump({"indicators": DECLARED_INDICATORS}, sort_keys=False, allow_unicode=True, width=110)
