"""The demo company's history simulated month by month: orders, interactions, opportunities, engagement and churn (the mechanism in docs/demo.md and segment.demo.write's docstring).

Public: nothing (segment.demo.write runs it).
Reads: nothing. Writes: nothing.
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from segment.demo.world import (
    BURN_IN_MONTHS,
    CHURN_COEFFICIENTS,
    LIST_PRICE,
    N_MONTHS,
    PARTING_COMPLAINT_SHARE,
    month_start,
    sigmoid,
)

# interaction kinds simulated as counts; complaint split into minor / major
SIM_KINDS = ("consultation", "visit", "call", "complaint_minor", "complaint_major", "survey", "referral",
              "campaign", "praise", "opportunity")


SIM_KIND_INDEX = {k: i for i, k in enumerate(SIM_KINDS)}


def simulate_history(c: dict, rng: np.random.Generator, progress: bool) -> dict:
    """The demo company's purchases, interactions, opportunities and churn, simulated from its customers.

    Long because the simulation is one seeded sequence of draws (docs/demo.md describes it step by step):
    reordering or splitting them would change every demo file."""
    n = c["n"]
    b = CHURN_COEFFICIENTS
    created = c["created"].astype(np.int64)
    created_month = (created.astype("datetime64[D]").astype("datetime64[M]")
                     - np.datetime64("2023-01", "M")).astype(np.int64)
    start_month = np.maximum(created_month, -BURN_IN_MONTHS)
    prospect = c["prospect"]
    sz, level, rate = c["sz"], c["spend_level"], c["order_rate"]
    order_value = level / (12.0 * rate)
    line_cum = c["line_cum"]

    alive = np.ones(n, dtype=bool)
    churn_day = np.full(n, -1, dtype=np.int64)
    e = (c["eng_mean"] + rng.normal(0.0, 0.4, n)).astype(np.float64)
    phi, sigma = 0.85, 0.4 * np.sqrt(1 - 0.85 ** 2)
    last_order_month = start_month - 1
    cpl = np.zeros((n, 6), dtype=np.int16)
    cpl_major = np.zeros((n, 6), dtype=np.int16)
    refs = np.zeros((n, 12), dtype=np.int16)
    spend = np.zeros((n, 12), dtype=np.float32)
    last_score = np.full(n, np.nan)
    eng_month = np.full((n, N_MONTHS), np.nan, dtype=np.float16)  # engagement per recorded month

    tx: dict[str, list] = {k: [] for k in ("cust", "day", "order", "line", "qty", "price", "amount", "margin")}
    it: dict[str, list] = {k: [] for k in ("cust", "day", "kind", "severity", "score")}
    op: dict[str, list] = {k: [] for k in ("cust", "day", "eng")}
    hazard_log: list = []  # (month, at risk, churned, mean hazard) for docs
    n_orders_total = 0

    months = range(-BURN_IN_MONTHS, N_MONTHS)
    for m in tqdm(months, disable=not progress, desc="demo months", unit="month"):
        ms = month_start(m)
        dim = month_start(m + 1) - ms
        record = m >= 0
        act = np.flatnonzero(alive & (start_month <= m))
        buyer = ~prospect[act]

        # 1. churn hazard from the state up to the end of last month (buyers, after their first month)
        risk = act[buyer & (start_month[act] < m) & record]
        hi = np.full(len(act), dim, dtype=np.int64)
        if len(risk):
            c6 = cpl[risk].sum(axis=1)
            mj6 = cpl_major[risk].sum(axis=1)
            score = last_score[risk]
            sat = np.where(np.isnan(score), 0.0, 7.0 - score)
            gap = m - last_order_month[risk] - 1
            slots_last = [(m - k) % 12 for k in range(1, 7)]
            slots_prev = [(m - k) % 12 for k in range(7, 13)]
            s_last = np.maximum(spend[risk][:, slots_last].sum(axis=1), 0.0)
            s_prev = np.maximum(spend[risk][:, slots_prev].sum(axis=1), 0.0)
            decline = np.clip(np.log((s_prev + 1.0) / (s_last + 1.0)), -1.0, 2.0)
            decline[m - start_month[risk] < 12] = 0.0
            tenure = np.maximum(ms - created[risk], 0) / 365.25
            logit = (b["intercept"] + b["complaints_6m"] * c6 + b["major_complaints_6m"] * mj6
                     + b["satisfaction_gap"] * sat + b["log_months_since_order"] * np.log1p(gap)
                     + b["spend_decline"] * decline + b["log_tenure_years"] * np.log1p(tenure)
                     + b["referrals_12m"] * refs[risk].sum(axis=1))
            h = sigmoid(logit)
            churn = rng.random(len(risk)) < h
            gone = risk[churn]
            d = rng.integers(0, dim, len(gone))
            churn_day[gone] = ms + d
            alive[gone] = False
            pos = np.searchsorted(act, gone)
            hi[pos] = d
            hazard_log.append((m, len(risk), len(gone), float(h.mean())))
        lo = np.where(created_month[act] == m, created[act] - ms, 0)
        frac = np.maximum(hi - lo, 0) / dim

        # 2. engagement moves (AR(1) around the customer's mean)
        mu = c["eng_mean"][act]
        e[act] = mu + phi * (e[act] - mu) + sigma * rng.standard_normal(len(act))
        ea, sa = e[act], sz[act]
        if record:  # kept for the facts (segment.demo.facts); no draw
            eng_month[act, m] = ea

        # 3. orders and lines (buyers only)
        lam = np.where(buyer, rate[act] * np.exp(0.6 * ea) * frac, 0.0)
        n_ord = rng.poisson(lam)
        o_cust_pos = np.repeat(np.arange(len(act)), n_ord)
        n_o = len(o_cust_pos)
        o_cust = act[o_cust_pos]
        o_day = ms + lo[o_cust_pos] + (rng.random(n_o) * (hi - lo)[o_cust_pos]).astype(np.int64)
        o_val = (order_value[o_cust] * np.exp(0.3 * ea[o_cust_pos] + c["growth"][o_cust] * m / 12.0)
                 * np.exp(rng.normal(-0.18, 0.6, n_o)))
        n_lines = np.minimum(1 + rng.poisson(0.5, n_o), 4)
        l_ord = np.repeat(np.arange(n_o), n_lines)
        n_l = len(l_ord)
        w = rng.exponential(1.0, n_l)
        w /= np.bincount(l_ord, weights=w, minlength=n_o)[l_ord]
        l_cust = o_cust[l_ord]
        l_amt_target = o_val[l_ord] * w
        u = rng.random(n_l).astype(np.float32)
        line = (u[:, None] > line_cum[l_cust]).sum(axis=1).clip(0, 3)
        price = np.round(LIST_PRICE[line] * c["discount"][l_cust] * np.exp(rng.normal(0, 0.08, n_l)), 2)
        qty = np.maximum(1.0, np.round(l_amt_target / price))
        qty[rng.random(n_l) < 0.01] *= -1.0  # returns / cancellations
        amount = np.round(qty * price, 2)
        mrate = np.clip(c["margin_rate"][l_cust] + rng.normal(0, 0.03, n_l), 0.02, 0.6)
        margin = np.round(amount * mrate, 2)

        slot6, slot12 = m % 6, m % 12
        spend[:, slot12] = 0.0
        if n_l:
            spend[:, slot12] = np.bincount(l_cust, weights=amount, minlength=n).astype(np.float32)
            last_order_month[o_cust] = m
        if record and n_l:
            # orders numbered by (day, customer) within the month; lines keep their order's position
            o_rank = np.empty(n_o, dtype=np.int64)
            o_rank[np.lexsort((o_cust, o_day))] = np.arange(n_o)
            tx["cust"].append(l_cust.astype(np.int32))
            tx["day"].append(o_day[l_ord].astype(np.int32))
            tx["order"].append(n_orders_total + o_rank[l_ord])
            tx["line"].append(line.astype(np.int8))
            tx["qty"].append(qty)
            tx["price"].append(price)
            tx["amount"].append(amount)
            tx["margin"].append(margin)
            n_orders_total += n_o

        # 4. interactions and opportunities (rates per month, scaled by the days alive in the month)
        rates = np.zeros((len(act), len(SIM_KINDS)))
        age = np.maximum(ms - created[act], 0) / 30.44
        fade = np.exp(-age / 8.0)
        cp = c["complaint_prone"][act]
        rates[:, SIM_KIND_INDEX["consultation"]] = np.where(buyer, 0.12 * np.exp(0.25 * sa + 0.3 * ea), 0.45 * fade)
        rates[:, SIM_KIND_INDEX["visit"]] = np.where(buyer, np.minimum(0.03 * np.exp(0.7 * sa), 2.0), 0.0)
        rates[:, SIM_KIND_INDEX["call"]] = np.where(buyer, 0.25 * np.exp(0.3 * sa), 0.10 * fade)
        compl = 0.035 * np.exp(0.25 * sa - 1.0 * ea) * cp
        rates[:, SIM_KIND_INDEX["complaint_minor"]] = np.where(buyer, 0.75 * compl, 0.0)
        rates[:, SIM_KIND_INDEX["complaint_major"]] = np.where(buyer, 0.25 * compl, 0.0)
        rates[:, SIM_KIND_INDEX["survey"]] = np.where(buyer, 0.10 * np.exp(0.15 * sa), 0.0)
        rates[:, SIM_KIND_INDEX["referral"]] = np.where(buyer, 0.012 * np.exp(0.6 * sa + 1.0 * ea), 0.0)
        rates[:, SIM_KIND_INDEX["campaign"]] = np.where(buyer, 0.06 * np.exp(0.5 * ea), 0.08)
        rates[:, SIM_KIND_INDEX["praise"]] = np.where(buyer, 0.02 * np.exp(0.3 * sa + 1.2 * ea), 0.0)
        rates[:, SIM_KIND_INDEX["opportunity"]] = np.where(buyer, 0.035 * np.exp(0.45 * sa + 0.4 * ea), 0.12 * fade)
        counts = rng.poisson(rates * frac[:, None])
        counts[:, SIM_KIND_INDEX["survey"]] = np.minimum(counts[:, SIM_KIND_INDEX["survey"]], 1)

        cpl[:, slot6] = 0
        cpl_major[:, slot6] = 0
        refs[:, slot12] = 0
        cpl_major[act, slot6] = counts[:, SIM_KIND_INDEX["complaint_major"]]
        cpl[act, slot6] = counts[:, SIM_KIND_INDEX["complaint_minor"]] + counts[:, SIM_KIND_INDEX["complaint_major"]]
        refs[act, slot12] = counts[:, SIM_KIND_INDEX["referral"]]

        # survey scores: engagement, the customer's baseline, and recent complaints
        sv = np.flatnonzero(counts[:, SIM_KIND_INDEX["survey"]] > 0)
        sv_cust = act[sv]
        raw = (7.4 + c["survey_base"][sv_cust] + 1.6 * ea[sv] - 0.5 * cpl[sv_cust].sum(axis=1)
               + rng.normal(0, 1.0, len(sv)))
        sv_score = np.clip(np.round(raw), 0, 10)
        last_score[sv_cust] = sv_score

        ev_counts = counts[:, : SIM_KIND_INDEX["opportunity"]]
        pos_k = np.nonzero(ev_counts)
        reps = ev_counts[pos_k]
        ev_pos = np.repeat(pos_k[0], reps)
        ev_kind = np.repeat(pos_k[1], reps)
        ev_day = ms + lo[ev_pos] + (rng.random(len(ev_pos)) * (hi - lo)[ev_pos]).astype(np.int64)
        op_pos = np.repeat(np.arange(len(act)), counts[:, SIM_KIND_INDEX["opportunity"]])
        op_day = ms + lo[op_pos] + (rng.random(len(op_pos)) * (hi - lo)[op_pos]).astype(np.int64)
        if record:
            ev_score = np.full(len(ev_pos), np.nan)
            is_sv = ev_kind == SIM_KIND_INDEX["survey"]
            score_by_pos = np.full(len(act), np.nan)
            score_by_pos[sv] = sv_score
            ev_score[is_sv] = score_by_pos[ev_pos[is_sv]]
            it["cust"].append(act[ev_pos].astype(np.int32))
            it["day"].append(ev_day.astype(np.int32))
            it["kind"].append(ev_kind.astype(np.int8))
            it["score"].append(ev_score)
            # parting complaints, dated on the churn day
            if len(risk):
                part = gone[rng.random(len(gone)) < PARTING_COMPLAINT_SHARE]
                it["cust"].append(part.astype(np.int32))
                it["day"].append(churn_day[part].astype(np.int32))
                it["kind"].append(np.where(rng.random(len(part)) < 0.5, SIM_KIND_INDEX["complaint_major"],
                                           SIM_KIND_INDEX["complaint_minor"]).astype(np.int8))
                it["score"].append(np.full(len(part), np.nan))
            op["cust"].append(act[op_pos].astype(np.int32))
            op["day"].append(op_day.astype(np.int32))
            op["eng"].append(ea[op_pos].astype(np.float32))

    def cat(d):  # concatenate column by column, freeing the monthly pieces as we go
        out = {}
        for k in list(d):
            parts = d.pop(k)
            out[k] = np.concatenate(parts) if parts else np.zeros(0)
            del parts
        return out

    return {"churn_day": churn_day, "tx": cat(tx), "it": cat(it), "op": cat(op),
            "hazard_log": hazard_log, "start_month": start_month, "eng_month": eng_month}
