"""The grading engine: snapshot × scheme → points, scores, tiers, gates, overrides, explanations.

Vectorised over customers (numpy): bands by ``searchsorted``, tiers as the first eligible column
of a customers × tiers matrix, overrides as rank arithmetic. The engine knows no scheme by name.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .conditions import parse
from .errors import SegmentError
from .schemes import Indicator, Scheme

PTS = "pts__"   # column prefix: an indicator's points
DIM = "dim__"   # column prefix: a dimension's score (0–100 on the indicators' point scale)


class MissingInputs(SegmentError):
    """The scheme reads indicators the data does not provide."""


def indicator_points(values: pd.Series, spec: Indicator) -> np.ndarray:
    if spec.bands is not None:
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        edges = np.array([b.lower for b in spec.bands[1:]], dtype="float64")
        pts = np.array([b.points for b in spec.bands], dtype="float64")
        idx = np.searchsorted(edges, x, side="right")
        out = pts[np.minimum(idx, len(pts) - 1)]
        # values below an explicit lower bound of the first band, or at/above an explicit upper bound
        # of the last, are outside every band: they score like missing values
        first, last = spec.bands[0], spec.bands[-1]
        outside = np.isnan(x)
        if first.lower is not None:
            outside |= x < first.lower
        if last.below is not None:
            outside |= x >= last.below
        out[outside] = spec.missing_points
        return out
    mapped = values.astype("string").map(spec.map)
    return pd.to_numeric(mapped, errors="coerce").fillna(spec.missing_points).to_numpy(dtype="float64")


@dataclass
class Grading:
    """A graded population. ``frame`` has one row per customer; ``table()`` a tier summary."""

    frame: pd.DataFrame
    scheme: Scheme
    as_of: pd.Timestamp

    def tier_counts(self) -> pd.DataFrame:
        t = [x.id for x in self.scheme.tiers]
        counts = self.frame["tier"].value_counts().reindex(t, fill_value=0)
        labels = {x.id: x.label or x.id for x in self.scheme.tiers}
        return pd.DataFrame({"tier": t, "label": [labels[i] for i in t], "customers": counts.to_numpy()})

    def table(self) -> pd.DataFrame:
        return self.tier_counts()

    def _repr_html_(self) -> str:
        return self.table().to_html(index=False)


def check_inputs(snapshot: pd.DataFrame, scheme: Scheme, source: str = "the scheme") -> None:
    missing = sorted(scheme.inputs() - set(snapshot.columns))
    if missing:
        try:
            from .features import INDICATORS

            needs = {m: INDICATORS[m].source for m in missing if m in INDICATORS}
        except ImportError:  # pragma: no cover
            needs = {}
        unknown = [m for m in missing if m not in needs]
        parts = []
        if needs:
            tables = sorted(set(needs.values()))
            parts.append(f"needs {', '.join(sorted(needs))} from the {', '.join(tables)} table(s), which the data "
                         f"does not provide; add the table to the data config (see docs/data_contract.md)")
        if unknown:
            parts.append(f"reads unknown indicator(s) {', '.join(unknown)}; use a name from `segment indicators`")
        raise MissingInputs(f"error: {source} ({scheme.id}) " + "; and ".join(parts) + ". Nothing was graded.")


def grade(snapshot: pd.DataFrame, scheme: Scheme, *, as_of=None, source: str | None = None) -> Grading:
    """Grade every row of ``snapshot`` (one row per customer) with ``scheme``."""
    check_inputs(snapshot, scheme, source or "the scheme")
    n = len(snapshot)
    out = {"customer_id": snapshot["customer_id"].to_numpy()}
    weights = scheme.weights()
    for ind in weights:
        out[ind] = snapshot[ind].to_numpy()
    points = {ind: indicator_points(snapshot[ind], scheme.indicators[ind]) for ind in weights}
    for ind, p in points.items():
        out[PTS + ind] = p
    score = np.zeros(n)
    for dname, dim in scheme.dimensions.items():
        ds = np.zeros(n)
        for ind, w in dim.indicators.items():
            ds += w * points[ind]
        out[DIM + dname] = ds
        score += dim.weight * ds
    score = np.round(score, 9)  # 0.5*90 + 0.3*70 … must not fall below a cut-off by float noise
    out["score"] = score

    tiers = scheme.tiers
    t = len(tiers)
    ids = np.array([x.id for x in tiers], dtype=object)
    cuts = np.array([x.min_score if x.min_score is not None else -np.inf for x in tiers])
    cuts[-1] = -np.inf
    meets_cut = score[:, None] >= cuts[None, :]
    gate_ok = np.ones((n, t), dtype=bool)
    for j, tier in enumerate(tiers[:-1]):
        if tier.gate:
            gate_ok[:, j] = parse(tier.gate).evaluate(snapshot)
    raw_rank = meets_cut.argmax(axis=1)
    eligible = meets_cut & gate_ok
    eligible[:, -1] = True
    rank = eligible.argmax(axis=1)
    out["raw_tier"] = ids[raw_rank]
    failed = meets_cut & ~gate_ok
    failed_txt = np.full(n, "", dtype=object)
    for j in range(t - 1):
        hit = failed[:, j] & (j < rank)
        if hit.any():
            failed_txt[hit] = np.where(failed_txt[hit] == "", ids[j], failed_txt[hit] + ";" + ids[j])
    out["gates_failed"] = failed_txt
    gated_rank = rank.copy()

    applied = np.full(n, "", dtype=object)
    pos = {x.id: i for i, x in enumerate(tiers)}
    for rule in scheme.overrides:
        hit = parse(rule.when).evaluate(snapshot)
        if not hit.any():
            continue
        step = rule.by if rule.action == "demote" else -rule.by
        new = np.clip(rank + step, 0, t - 1)
        if rule.not_below is not None:
            new = np.where(step > 0, np.minimum(new, np.maximum(rank, pos[rule.not_below])), new)
        if rule.not_above is not None:
            new = np.where(step < 0, np.maximum(new, np.minimum(rank, pos[rule.not_above])), new)
        changed = hit & (new != rank)
        if changed.any():
            note = pd.Series(rule.id + ": ", index=range(changed.sum())) + ids[rank[changed]] + " → " + \
                ids[new[changed]] + " (" + rule.reason + ")"
            prev = applied[changed]
            applied[changed] = np.where(prev == "", note.to_numpy(dtype=object), prev + "; " + note.to_numpy(dtype=object))
            rank = np.where(changed, new, rank)
    out["overrides"] = applied
    out["tier"] = ids[rank]
    out["tier_rank"] = rank
    out["tier_label"] = np.array([x.label or x.id for x in tiers], dtype=object)[rank]
    out["strategy"] = np.array(["; ".join(x.strategy.actions) for x in tiers], dtype=object)[rank]
    out["follow_up_days"] = pd.array([x.strategy.follow_up_days for x in tiers], dtype="Int64")[rank]
    out["owner"] = np.array([x.strategy.owner for x in tiers], dtype=object)[rank]

    # explanation: the three largest contributions and the points missing for the next tier up
    names = np.array(list(weights), dtype=object)
    contrib = np.column_stack([weights[i] * points[i] for i in names]) if len(names) else np.zeros((n, 0))
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :3]
    expl = pd.Series("", index=range(n), dtype=object)
    for k in range(order.shape[1]):
        name = names[order[:, k]]
        val = np.take_along_axis(contrib, order[:, k:k + 1], axis=1)[:, 0]
        out[f"top{k + 1}"] = name
        part = pd.Series(name, dtype=object) + " +" + pd.Series(np.round(val, 1)).astype(str)
        expl = part if k == 0 else expl + ", " + part
    next_rank = np.maximum(gated_rank - 1, 0)
    gap = np.where(gated_rank > 0, cuts[next_rank] - score, np.nan)
    gap = np.where(np.isfinite(gap), np.maximum(gap, 0), np.nan)
    out["points_to_next_tier"] = np.round(gap, 6)
    gap_txt = pd.Series(np.round(gap, 1), dtype="float64").map("{:.1f}".format)
    next_id = pd.Series(ids[next_rank], dtype=object)
    tail = pd.Series("", index=range(n), dtype=object)
    short = (gated_rank > 0) & (gap > 0)
    reach = (gated_rank > 0) & (gap <= 0)
    tail[short] = "; " + gap_txt[short] + " points short of " + next_id[short]
    tail[reach] = "; score reaches " + next_id[reach] + " but its gate fails"
    out["explanation"] = (expl + tail).to_numpy(dtype=object)
    frame = pd.DataFrame(out)
    for c in ("raw_tier", "gates_failed", "overrides", "tier", "tier_label", "strategy", "owner", "explanation",
              "top1", "top2", "top3"):
        if c in frame:
            frame[c] = frame[c].astype("string")
    as_of = pd.Timestamp(as_of) if as_of is not None else (
        pd.Timestamp(snapshot["as_of"].iloc[0]) if "as_of" in snapshot and n else pd.NaT)
    return Grading(frame, scheme, as_of)
