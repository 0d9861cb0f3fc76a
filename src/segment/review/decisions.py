"""Reviewers' decisions over time: a tier a reviewer set holds in later gradings until it expires, until the data catches up with it, or until a later review replaces it.

Public: carry_decisions, Carried, set_tiers, DECISION_COLUMNS_KEPT, HOLD_NOTE, default_expiry.
Reads: the previous period's published grading (approved after the review, or as computed) and its computed grading. Writes: nothing.

The life of a decision (SEEDS step 5: obvious mis-grades are adjusted; issue 16):

1. A reviewer changes a customer's tier in the review of period P (``review_decision`` = changed in
   P's approved grading). Its **expiry** is what the sheet's ``expires`` column said, else the end of
   the next period of the same kind: "until the next regular review", which re-checks it.
2. Each later grading (P+1, P+2, …) starts from the tier the data gives. The decision is
   - **released** when the data now places the customer where the reviewer did, or further the same
     way (a reviewer's upgrade is released when the data reaches that tier or a higher one), or when
     the customer is no longer graded;
   - **expired** when the grading's date is after its expiry;
   - otherwise **held**: the customer keeps the reviewer's tier, and the grading's ``decision_*``
     columns carry the decision on to the next period.
3. A reviewer who confirms a held tier **renews** it (a new default expiry); a reviewer who changes
   it replaces it with a new decision.

Movers are compared with the published tier, so a held decision is never presented as a change.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from segment.grading.scheme import Scheme
from segment.periods import Period
from segment.review.select import texts_of, tier_info

HOLD_NOTE = "held until"
#: the columns a grading carries for a decision in force (empty strings where none)
DECISION_COLUMNS_KEPT = ("decision_tier", "decision_from", "decision_by", "decision_reason", "decision_period",
                         "decision_expires")
_STATUS_ORDER = {"held": 0, "expired": 1, "released": 2}


def default_expiry(decided_in: Period) -> pd.Timestamp:
    """A decision made in the review of ``decided_in`` holds until the next regular review: through
    the grading of the next period of the same kind."""
    return decided_in.shift(1).end


@dataclass
class Carried:
    """What ``carry_decisions`` did: the grading with the decisions applied, and one row per decision
    (held, expired or released) with why."""

    frame: pd.DataFrame
    decisions: pd.DataFrame

    @property
    def held(self) -> int:
        return int((self.decisions["status"] == "held").sum()) if len(self.decisions) else 0


def _texts(frame: pd.DataFrame, cols) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for c in cols:
        out[c] = texts_of(frame[c]) if c in frame.columns else ""
    return out


def _candidates(published: pd.DataFrame, computed: pd.DataFrame | None, keys: list[str], period: Period) -> pd.DataFrame:
    """The decisions the previous period's published grading hands on: new ones (changed by its
    review), carried ones (held in it and not replaced), renewed ones (held and confirmed)."""
    cols = ["tier", "review_decision", "reviewed_by", "review_reason", "review_expires", *DECISION_COLUMNS_KEPT]
    p = pd.concat([_texts(published, keys), _texts(published, cols)], axis=1)
    before = None
    if computed is not None and len(computed):
        before = pd.concat([_texts(computed, keys), _texts(computed, ["tier"])], axis=1).rename(
            columns={"tier": "tier_before_review"}).drop_duplicates(keys)
        p = p.merge(before, on=keys, how="left")
    else:
        p["tier_before_review"] = p["decision_tier"].where(p["decision_tier"] != "", p["tier"])
    p["tier_before_review"] = p["tier_before_review"].fillna("")
    new = p["review_decision"] == "changed"
    carried = (p["decision_tier"] != "") & ~new
    renewed = carried & (p["review_decision"] == "confirmed")
    out = p[new | carried].copy()
    fresh = new[new | carried].to_numpy()
    ren = renewed[new | carried].to_numpy()
    default = str(default_expiry(period).date())
    out["decision_from"] = np.where(fresh, out["tier_before_review"], out["decision_from"])
    out["decision_by"] = np.where(fresh, out["reviewed_by"], np.where(ren, out["decision_by"] + " (renewed by "
                                                                      + out["reviewed_by"] + ")", out["decision_by"]))
    out["decision_reason"] = np.where(fresh, out["review_reason"], out["decision_reason"])
    out["decision_tier"] = np.where(fresh, out["tier"], out["decision_tier"])
    out["decision_period"] = np.where(fresh, str(period), out["decision_period"])
    set_on_sheet = (fresh | ren) & (out["review_expires"] != "")
    out["decision_expires"] = np.where(set_on_sheet, out["review_expires"],
                                       np.where(fresh | ren, default, out["decision_expires"]))
    out["expiry_source"] = np.where(set_on_sheet, "set on the review sheet",
                                    np.where(fresh | ren, "the default: until the next regular review",
                                             "as decided"))
    return out[keys + ["decision_tier", "decision_from", "decision_by", "decision_reason", "decision_period",
                       "decision_expires", "expiry_source"]].reset_index(drop=True)


def carry_decisions(current: pd.DataFrame, published: pd.DataFrame | None, computed_before: pd.DataFrame | None,
                    previous: Period, as_of, scheme: Scheme) -> Carried:
    """Apply the decisions in force from the previous period's ``published`` grading (its approved
    grading when it was reviewed, else the grading as published, which carries the decisions held in
    it) to ``current`` (this period's grading as the scheme computed it). ``computed_before``: the
    previous period's grading before its review (``grading.parquet``), for the tier a reviewer
    changed from. ``as_of``: this grading's date, compared with each decision's expiry.

    Returns the grading (a copy: ``tier`` and what follows from it set to the reviewer's tier where
    a decision holds, ``computed_tier`` the scheme's own tier, the ``decision_*`` columns) and one
    row per decision: key, decided in, by, reason, computed then, reviewer's tier, computed now, tier
    now, status (held / expired / released), expires, why."""
    out = current.copy()
    keys = ["customer_id", "group"] if "group" in out.columns else ["customer_id"]
    out["computed_tier"] = pd.array(texts_of(out["tier"]).to_numpy(dtype=object), dtype="string")
    for c in DECISION_COLUMNS_KEPT:
        out[c] = ""
    if published is None or not len(published):
        return Carried(_finish(out), pd.DataFrame())
    cand = _candidates(published, computed_before, keys, previous)
    if cand.empty:
        return Carried(_finish(out), pd.DataFrame())
    info = tier_info(scheme)
    rank = {t: v[0] for t, v in info.items()}
    now = _texts(out, keys).assign(computed_now=texts_of(out["tier"]).to_numpy(), pos_=np.arange(len(out)))
    m = cand.merge(now, on=keys, how="left")
    when = pd.Timestamp(as_of).normalize()
    expires = pd.to_datetime(m["decision_expires"], errors="coerce")
    graded = m["pos_"].notna().to_numpy()
    to_rank = m["decision_tier"].map(rank).to_numpy(dtype=float)
    from_rank = m["decision_from"].map(rank).fillna(m["decision_tier"].map(rank)).to_numpy(dtype=float)
    now_rank = m["computed_now"].map(rank).to_numpy(dtype=float)
    up, down = to_rank < from_rank, to_rank > from_rank   # rank 0 is the best tier
    reached = ~np.isfinite(to_rank) | (up & (now_rank <= to_rank)) | (down & (now_rank >= to_rank)) | (~up & ~down)
    expired = (expires < when).fillna(False).to_numpy()
    status = np.where(~graded, "released", np.where(reached, "released", np.where(expired, "expired", "held")))
    why = np.where(~graded, "no longer graded",
                   np.where(reached, "the data now places the customer there or beyond",
                            np.where(expired, "expired on " + m["decision_expires"] + " (" + m["expiry_source"]
                                     + "); a reviewer renews a decision by confirming it in the review",
                                     HOLD_NOTE + " " + m["decision_expires"] + " (" + m["expiry_source"] + ")")))
    m["status"], m["why"] = status, why
    held = m[status == "held"]
    if len(held):
        pos = held["pos_"].astype(int).to_numpy()
        set_tiers(out, pos, list(held["decision_tier"]), info)
        for c in DECISION_COLUMNS_KEPT:
            col = out[c].to_numpy(dtype=object, copy=True)
            col[pos] = held[c].to_numpy(dtype=object)
            out[c] = col
        note = out["held_decision"].to_numpy(dtype=object, copy=True) if "held_decision" in out else \
            np.full(len(out), "", dtype=object)
        note[pos] = (held["decision_by"] + ": " + held["decision_from"] + " → " + held["decision_tier"] + " ("
                     + held["decision_reason"] + "); " + HOLD_NOTE + " " + held["decision_expires"]).to_numpy()
        out["held_decision"] = note
    records = m.assign(tier_now=np.where(status == "held", m["decision_tier"], m["computed_now"].fillna("")),
                       computed_now=m["computed_now"].fillna(""))
    records = records.rename(columns={"decision_period": "decided_in", "decision_by": "reviewer",
                                      "decision_reason": "reason", "decision_from": "computed_before",
                                      "decision_tier": "reviewer_tier", "decision_expires": "expires"})
    records = records[keys + ["decided_in", "reviewer", "reason", "computed_before", "reviewer_tier", "computed_now",
                              "tier_now", "status", "expires", "why"]]
    records = records.sort_values(by=["status", *keys], key=lambda s: s.map(_STATUS_ORDER) if s.name == "status" else s,
                                  kind="stable").reset_index(drop=True)
    return Carried(_finish(out), records)


def _finish(out: pd.DataFrame) -> pd.DataFrame:
    for c in (*DECISION_COLUMNS_KEPT, "held_decision"):
        if c not in out.columns:
            out[c] = ""
        out[c] = pd.array(pd.Series(out[c], index=out.index).astype(object).where(lambda s: s.notna(), ""),
                          dtype="string")
    return out


def set_tiers(frame: pd.DataFrame, rows: np.ndarray, new: list[str], info: dict) -> None:
    """Set tier and everything that follows from it on ``rows`` (positions)."""
    cols = {"tier": new, "tier_rank": [info[t][0] for t in new], "tier_label": [info[t][1] for t in new],
            "strategy": [info[t][2] for t in new], "follow_up_days": [info[t][3] for t in new],
            "owner": [info[t][4] for t in new]}
    if "subgrade" in frame.columns:   # a sub-grade belongs to the old tier; the engine is not re-run
        cols["subgrade"] = [""] * len(new)
    if "subgrade_label" in frame.columns:
        cols["subgrade_label"] = [""] * len(new)
    idx = frame.index[rows]
    for col, values in cols.items():
        if col not in frame.columns:
            continue
        s = frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            extra = [v for v in dict.fromkeys(values) if v not in s.cat.categories and v is not None]
            if extra:
                frame[col] = s.cat.add_categories(extra)
        if col == "follow_up_days":
            frame.loc[idx, col] = pd.array(values, dtype="Int64")
        elif col == "tier_rank":
            frame.loc[idx, col] = np.asarray(values, dtype=frame[col].dtype if frame[col].dtype.kind in "iu"
                                             else "int64")
        else:
            frame.loc[idx, col] = values
