"""Grading over time: migration between two gradings, stability (PSI) and realised churn by tier.

Public: migration, movers, psi, verdict, stability, realised_churn.
Reads: nothing. Writes: nothing.

Every function takes plain frames (a grading's ``frame``: customer_id, tier, score, pts__*, …) and
returns a DataFrame, so the report notebooks show them in one call and tests check them by hand.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from segment.calibration.metrics import tier_table
from segment.grading.engine import PTS, row_key

NEW, GONE = "(new)", "(not graded)"
PSI_STABLE, PSI_SHIFT = 0.10, 0.25  # the usual population-stability verdict thresholds
_EPS = 1e-4  # share floor so an empty tier does not make PSI infinite


def _value(frame: pd.DataFrame, column: str) -> pd.Series:
    if column in frame:
        return pd.to_numeric(frame[column], errors="coerce").fillna(0.0)
    return pd.Series(0.0, index=frame.index)


def migration(previous: pd.DataFrame, current: pd.DataFrame, tiers: list[str], value: str = "annual_amount"
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers and revenue moving from each previous tier (rows) to each current tier (columns).

    Customers graded only now appear in the row ``(new)``; graded before but not now in the column
    ``(not graded)`` (lost, or no longer eligible). Revenue is the current 12-month amount (the
    previous one for customers no longer graded). A graded row is (customer, group) for gradings per
    group (``row_key``): each product line of a customer moves on its own."""
    key = row_key(previous, current)
    prev = previous[key + ["tier"]].rename(columns={"tier": "before"}).assign(
        prev_value=_value(previous, value).to_numpy())
    cur = current[key + ["tier"]].rename(columns={"tier": "after"}).assign(
        cur_value=_value(current, value).to_numpy())
    both = prev.merge(cur, on=key, how="outer")
    both["before"] = both["before"].astype("object").where(both["before"].notna(), NEW)
    both["after"] = both["after"].astype("object").where(both["after"].notna(), GONE)
    both["revenue"] = both["cur_value"].where(both["after"] != GONE, both["prev_value"]).fillna(0.0)
    rows, cols = list(tiers) + [NEW], list(tiers) + [GONE]
    counts = pd.crosstab(both["before"], both["after"]).reindex(index=rows, columns=cols, fill_value=0)
    revenue = both.pivot_table(index="before", columns="after", values="revenue", aggfunc="sum", fill_value=0.0,
                               observed=False).reindex(index=rows, columns=cols, fill_value=0.0)
    for m in (counts, revenue):
        m.index.name, m.columns.name = "previous tier", None
    return counts, revenue


def movers(previous: pd.DataFrame, current: pd.DataFrame, tiers: list[str], weights: dict[str, float],
           score_factor: float = 1.0, gates: dict[str, str] | None = None) -> pd.DataFrame:
    """Customers whose tier changed between two gradings — upgrades first, each direction by tiers moved
    then by the size of the score change — with the reason: the
    indicators whose weighted points moved most in the direction of the move, and any override,
    designation or review decision on the current grading. A tier held back by a gate says which gate
    failed and its condition (``gates``: tier id → condition); a move no point change explains (stage
    schemes) shows the rule outcome before → now (the gradings' ``explanation``)."""
    rank = {t: i for i, t in enumerate(tiers)}
    key = row_key(previous, current)
    keep = key + ["tier", "score"] + [c for c in previous.columns if c.startswith(PTS)]
    a = previous[[c for c in keep if c in previous]].rename(columns=lambda c: c if c in key else c + "_before")
    extra = [c for c in ("overrides", "designation", "review_decision", "held_decision") if c in current]
    if "explanation" in previous:
        a["explanation_before"] = previous["explanation"].to_numpy()
    b = current[[c for c in keep + extra + ["gates_failed", "explanation"] if c in current]]
    both = a.merge(b, on=key, how="inner")
    both = both[both["tier_before"].astype(str) != both["tier"].astype(str)].reset_index(drop=True)
    if both.empty:
        return pd.DataFrame(columns=key + ["from", "to", "move", "score_before", "score", "why"])
    delta_rank = both["tier_before"].astype(str).map(rank) - both["tier"].astype(str).map(rank)  # > 0: upgrade
    names = [i for i in weights if f"{PTS}{i}" in both and f"{PTS}{i}_before" in both]
    why = pd.Series("", index=both.index, dtype=object)
    if names:
        d = np.column_stack([score_factor * weights[i] * (both[f"{PTS}{i}"].to_numpy(float)
                                                          - both[f"{PTS}{i}_before"].to_numpy(float)) for i in names])
        signed = d * np.sign(delta_rank.to_numpy())[:, None]  # moves in the direction of the tier change
        order = np.argsort(-signed, axis=1, kind="stable")[:, :2]
        parts = []
        for k in range(order.shape[1]):
            val = np.take_along_axis(d, order[:, k:k + 1], axis=1)[:, 0]
            txt = pd.Series(np.array(names, dtype=object)[order[:, k]]) + " " + pd.Series(val).map("{:+.1f}".format)
            parts.append(txt.where(np.take_along_axis(signed, order[:, k:k + 1], axis=1)[:, 0] > 0, ""))
        why = parts[0]
        for p in parts[1:]:
            why = np.where((why != "") & (p != ""), why + ", " + p, why + p)
        why = pd.Series(why, index=both.index, dtype=object)
    if "gates_failed" in both:  # a downgrade held back by a failed gate: the gate first, whatever the points did
        failed = both["gates_failed"].astype("string").fillna("").astype(object)
        down = (delta_rank < 0).to_numpy()
        held = [
            "; ".join(f"{t}'s gate failed ({(gates or {}).get(t, 'its gate')})" for t in f.split(";") if t) if d else ""
            for f, d in zip(failed, down)]
        held = pd.Series(held, index=both.index, dtype=object)
        why = pd.Series(np.where(held != "", np.where(why != "", held + "; " + why, held), why), index=both.index,
                        dtype=object)
    if "explanation" in both and "explanation_before" in both:  # stage schemes: the rule before → now
        rule = (both["explanation_before"].astype("string").fillna("") + " → "
                + both["explanation"].astype("string").fillna("")).astype(object)
        why = pd.Series(np.where(why == "", rule, why), index=both.index, dtype=object)
    for col in extra:
        txt = both[col].astype("string").fillna("").astype(object)
        why = np.where(txt != "", np.where(why != "", why + "; " + txt, txt), why)
        why = pd.Series(why, index=both.index, dtype=object)
    out = pd.DataFrame({
        **{k: both[k] for k in key}, "from": both["tier_before"].astype(str), "to": both["tier"].astype(str),
        "move": np.where(delta_rank > 0, "up", "down"), "tiers": delta_rank.abs().to_numpy(),
        "score_before": both.get("score_before"), "score": both.get("score"),
        "why": pd.Series(why).replace("", "gate or rule outcome changed"),
    })
    # the largest moves first: tiers moved, then the size of the score change
    size = (pd.to_numeric(out["score"], errors="coerce") - pd.to_numeric(out["score_before"], errors="coerce")).abs()
    out = out.assign(_size=size.fillna(0.0).to_numpy())
    order = out.sort_values(["move", "tiers", "_size"] + key, ascending=[False, False, False] + [True] * len(key)).index
    return out.loc[order].drop(columns="_size").reset_index(drop=True)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two distributions over the same bins (shares or counts)."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.maximum(e / e.sum(), _EPS) if e.sum() > 0 else np.full(len(e), _EPS)
    a = np.maximum(a / a.sum(), _EPS) if a.sum() > 0 else np.full(len(a), _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def verdict(value: float) -> str:
    if value < PSI_STABLE:
        return "stable"
    return "moderate shift: check what moved" if value < PSI_SHIFT else "major shift: review the grading"


def stability(previous: pd.DataFrame, current: pd.DataFrame, tiers: list[str], value: str = "annual_amount"
              ) -> pd.DataFrame:
    """PSI of the tier distribution by customer count and by revenue, with the verdict at 0.10 / 0.25."""
    rows = []
    for basis in ("customers", "revenue"):
        dist = []
        for f in (previous, current):
            weight = pd.Series(1.0, index=f.index) if basis == "customers" else _value(f, value).clip(lower=0)
            dist.append(weight.groupby(f["tier"].astype(str)).sum().reindex(tiers, fill_value=0.0).to_numpy())
        v = psi(dist[0], dist[1])
        rows.append({"basis": basis, "psi": round(v, 4), "verdict": verdict(v)})
    return pd.DataFrame(rows)


def realised_churn(grading: pd.DataFrame, labels: pd.DataFrame, tiers: list[str], labels_text: dict | None = None,
                   confidence: float = 0.95) -> pd.DataFrame:
    """Churn rate per tier of an earlier grading among its labelled (uncensored) customers, with
    Wilson intervals: tier, label, n, churned, churn_rate, ci_low, ci_high."""

    lab = labels[labels["churn"].notna()][["customer_id", "churn"]]  # churn is a customer's, in every group
    both = grading[["customer_id", "tier"]].merge(lab, on="customer_id", how="inner")
    return tier_table(both["tier"], both["churn"].to_numpy(dtype=float), tiers, confidence, labels_text)
