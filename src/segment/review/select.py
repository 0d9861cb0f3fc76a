"""Who is re-checked: a seeded sample of 10–20% per tier, borderline customers, overrides, big movers, anomalies and the reviewers' decisions held in the grading (SEEDS step 5).

Public: select_for_review, select_from_files, ReviewSelection, borderline_margin.
Reads: a grading file (select_from_files). Writes: nothing.
"""
from __future__ import annotations

import html
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segment.errors import ConditionError, SegmentError
from segment.grading.conditions import parse
from segment.grading.scheme import Scheme, load_scheme
from segment.paths import QuarterFiles
from segment.plumbing.atomic import (
    restore,
)
from segment.plumbing.result import Result
from segment.reports.html import html_table
from segment.review.params import DECISION_COLUMNS, REASONS, ReviewParams


def row_keys(frame: pd.DataFrame) -> list[str]:
    return ["customer_id", "group"] if "group" in frame.columns else ["customer_id"]


def texts_of(s: pd.Series) -> pd.Series:
    """A column as plain str ('' for missing), whatever its dtype (categorical, string, object)."""
    return s.astype(object).where(s.notna(), "").astype(str).str.strip()


def tier_info(scheme: Scheme) -> dict[str, tuple]:
    return {t.id: (i, t.label or t.id, "; ".join(t.strategy.actions), t.strategy.follow_up_days, t.strategy.owner)
            for i, t in enumerate(scheme.tiers)}


@dataclass
class ReviewSelection(Result):
    """The customers picked for review. ``table()`` is the sheet without contacts; in a notebook it
    shows the counts by reason × tier (no customer data, so it is safe in the HTML report)."""

    frame: pd.DataFrame
    scheme: Scheme
    params: ReviewParams
    graded: int
    graded_by_tier: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    margin: float = 0.0  # the borderline margin used, in score points

    def table(self) -> pd.DataFrame:
        return self.frame

    def __len__(self) -> int:
        return len(self.frame)

    def counts(self) -> pd.DataFrame:
        """Customers per reason (rows) and tier (columns); one customer may have several reasons."""
        tiers = [t.id for t in self.scheme.tiers]
        why = self.frame["why"].astype(str)
        rows = {}
        for r in REASONS:
            hit = why.str.split("; ").map(lambda parts, r=r: any(p == r or p.startswith(r + " (") for p in parts))
            rows[r] = self.frame.loc[hit.to_numpy(dtype=bool), "tier"].astype(str).value_counts()
        rows["selected (any reason)"] = self.frame["tier"].astype(str).value_counts()
        rows["graded"] = pd.Series(self.graded_by_tier)
        out = pd.DataFrame(rows).T.reindex(columns=tiers).fillna(0).astype(int)
        out["total"] = out.sum(axis=1)
        out.index.name = "reason"
        return out

    def shares(self) -> dict[str, float]:
        """Share of the graded rows on the sheet: ``sample`` (random or borderline) and ``extras``."""
        why = self.frame["why"].astype(str).str.split("; ")
        core = why.map(lambda parts: any(p == "sample" or p.startswith("borderline") for p in parts))
        n = max(self.graded, 1)
        return {"sample": float(core.sum()) / n, "extras": float((~core).sum()) / n}

    def summary(self) -> str:
        share = len(self.frame) / self.graded if self.graded else 0.0
        sh = self.shares()
        return (f"{len(self.frame):,} of {self.graded:,} graded customers selected for review ({share:.1%}): the "
                f"sample, {sh['sample']:.1%} — {self.params.sample_share:.0%} drawn at random per tier (seed "
                f"{self.params.seed}) and the customers nearest a cut-off (within {points_text(self.margin)}), at most "
                f"{self.params.max_share:.0%} together — and {sh['extras']:.1%} more for override rules, moves of "
                f"{self.params.big_mover_tiers}+ tiers since the previous period"
                + (f" and the anomaly rule `{self.params.anomaly}`" if self.params.anomaly else "")
                + f" (at most {self.params.extras_max_share:.0%}).")

    def _repr_html_(self) -> str:
        labels = {t.id: f"{t.id} ({t.label})" if t.label else t.id for t in self.scheme.tiers}
        counts = self.counts().rename(columns=labels).reset_index()
        parts = [f"<p>{html.escape(self.summary())}</p>", html_table(counts)]
        if self.notes:
            parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in self.notes) + "</ul>")
        return "\n".join(parts)


def points_text(x: float) -> str:
    return f"{x:.3g} point" + ("" if x == 1 else "s")


def borderline_margin(scheme: Scheme, params: ReviewParams) -> float:
    """The borderline margin in score points: ``borderline_points`` when set, else ``borderline_share``
    of the median gap between consecutive cut-offs (of the lowest cut-off with only one)."""
    if params.borderline_points is not None:
        return float(params.borderline_points)
    cuts = sorted({float(t.min_score) for t in scheme.tiers if t.min_score is not None})
    if not cuts:
        return 0.0
    gap = float(np.median(np.diff(cuts))) if len(cuts) > 1 else abs(cuts[0])
    return params.borderline_share * (gap if gap > 0 else 1.0)


def _seed(params: ReviewParams, salt: str, tier: str) -> list[int]:
    return [params.seed, zlib.crc32(salt.encode("utf-8")), zlib.crc32(tier.encode("utf-8"))]


def select_for_review(grading: pd.DataFrame, scheme: Scheme, params: ReviewParams,
                      previous: pd.DataFrame | None = None, *, salt: str = "",
                      context: pd.DataFrame | None = None) -> ReviewSelection:
    """Pick the customers to review; deterministic for the same grading, params and ``salt``.

    ``salt`` is mixed into the seed (``export_review`` passes the quarter, so each quarter draws a
    fresh sample). ``context`` adds per-customer columns the grading lacks (e.g. the snapshot's
    ``complaints_12m``) for the anomaly rule; the grading's own columns win.

    Long because the reasons a customer is picked (sample, borderline, override, big mover, anomaly) are
    applied in the order SEEDS step 5 gives, over one frame."""
    keys = row_keys(grading)
    for k in ("customer_id", "tier"):
        if k not in grading.columns:
            raise SegmentError(f"the grading has no `{k}` column; pass the grading.parquet that "
                               "`segment report` / `segment grade` wrote")
    g = grading.copy()
    for k in keys:
        g[k] = texts_of(g[k])
    g = g.sort_values(keys, kind="stable").reset_index(drop=True)
    n = len(g)
    tier = texts_of(g["tier"])
    info = tier_info(scheme)
    unknown = sorted(set(tier) - set(info))
    if unknown:
        raise SegmentError(f"the grading has tier(s) {', '.join(unknown)} that scheme {scheme.id} does not "
                           f"define ({', '.join(info)}); grade and review with the same scheme")
    rank = tier.map(lambda t: info[t][0]).to_numpy(dtype=int)
    notes: list[str] = []
    why: list[list[str]] = [[] for _ in range(n)]

    # 1. the stratified sample
    for t in sorted(set(tier)):
        idx = np.flatnonzero((tier == t).to_numpy())
        k = min(len(idx), max(1, int(math.floor(params.sample_share * len(idx) + 0.5))))
        for i in np.random.default_rng(_seed(params, salt, t)).choice(idx, size=k, replace=False):
            why[i].append("sample")

    # 2. borderline: within the margin of a cut-off (the nearest is named), nearest first, while the
    #    sample stays within max_share of the graded
    cuts = [(t.id, float(t.min_score)) for t in scheme.tiers if t.min_score is not None]
    margin = borderline_margin(scheme, params)
    budget = max(0, int(math.floor(params.max_share * n + 1e-9)) - sum(1 for w in why if w))
    if scheme.scored and cuts and "score" in g.columns:
        score = pd.to_numeric(g["score"], errors="coerce").to_numpy(dtype="float64")
        values = np.array([c for _, c in cuts])
        dist = np.abs(score[:, None] - values[None, :])
        near = np.where(np.isnan(dist), np.inf, dist)
        j = near.argmin(axis=1)
        best = near[np.arange(n), j]
        within = np.flatnonzero(best <= margin + 1e-9)
        tie = np.random.default_rng(_seed(params, salt, "borderline")).random(n)
        within = within[np.lexsort((tie[within], best[within]))]  # nearest first, ties drawn at random
        left_out = 0
        for i in within:
            if not why[i]:
                if budget <= 0:
                    left_out += 1
                    continue
                budget -= 1
            d = score[i] - values[j[i]]
            side = "at" if abs(d) < 0.05 else ("above" if d > 0 else "below")
            text = f"at {cuts[j[i]][0]}'s cut-off" if side == "at" else f"{abs(d):.1f} {side} {cuts[j[i]][0]}"
            why[i].append(f"borderline ({text})")
        if left_out:
            notes.append(f"{left_out:,} more customers within {points_text(margin)} of a cut-off were not added: the "
                         f"sample is capped at {params.max_share:.0%} of the graded (review: max_share)")
    elif scheme.scored and "score" not in g.columns:
        notes.append("borderline rule skipped: the grading has no `score` column")
    core = np.array([bool(w) for w in why], dtype=bool)
    extra_why: list[list[str]] = [[] for _ in range(n)]  # reasons 3–5, capped below for rows outside the sample

    # 3. moved by an override rule
    if "overrides" in g.columns:
        for i in np.flatnonzero((texts_of(g["overrides"]) != "").to_numpy()):
            extra_why[i].append("override")

    # 4. big movers since the previous quarter
    previous_tier = pd.Series([""] * n, dtype=object)
    if previous is not None:
        pkeys = row_keys(previous)
        if pkeys != keys or "tier" not in previous.columns:
            notes.append("big-mover rule skipped: the previous grading has no `tier` column or is keyed "
                         "differently (grouped vs not grouped)")
        else:
            prev = previous[keys + ["tier"]].copy()
            for k in keys + ["tier"]:
                prev[k] = texts_of(prev[k])
            prev = prev.drop_duplicates(keys)
            merged = g[keys].merge(prev, on=keys, how="left")
            previous_tier = merged["tier"].fillna("").astype(str)
            prev_rank = previous_tier.map(lambda t: info[t][0] if t in info else np.nan).to_numpy(dtype="float64")
            stray = sorted(set(previous_tier) - set(info) - {""})
            if stray:
                notes.append(f"previous tier(s) {', '.join(stray)} are not tiers of {scheme.id}: those customers "
                             "are not compared with the previous period")
            moved = np.abs(rank - prev_rank)
            for i in np.flatnonzero(np.nan_to_num(moved, nan=0) >= params.big_mover_tiers):
                steps = int(moved[i])
                direction = "up" if rank[i] < prev_rank[i] else "down"
                extra_why[i].append(f"big mover ({previous_tier.iloc[i]} → {tier.iloc[i]}, {steps} tiers {direction})")

    # 5. anomalies
    if params.anomaly:
        cond = parse(params.anomaly)
        frame = g
        if context is not None:
            extra = [c for c in context.columns if c not in g.columns and c not in keys]
            if extra and set(keys) <= set(context.columns):
                ctx = context[keys + extra].copy()
                for k in keys:
                    ctx[k] = texts_of(ctx[k])
                frame = g.merge(ctx.drop_duplicates(keys), on=keys, how="left")
        missing = sorted(cond.names - set(frame.columns))
        if missing:
            notes.append(f"anomaly rule `{params.anomaly}` skipped: the grading has no {', '.join(missing)} "
                         "column(s); pass the snapshot as context (or keep those columns in grading.parquet)")
        else:
            try:
                hit = cond.evaluate(frame.reset_index(drop=True))
            except ConditionError as e:
                notes.append(f"anomaly rule `{params.anomaly}` skipped: {e}")
            else:
                for i in np.flatnonzero(hit):
                    extra_why[i].append("anomaly")

    # extras outside the sample: anomalies first, then big movers, then overrides, up to the cap
    def priority(reasons: list[str]) -> int:
        return 0 if "anomaly" in reasons else 1 if any(r.startswith("big mover") for r in reasons) else 2

    outside = sorted((i for i in range(n) if extra_why[i] and not core[i]), key=lambda i: (priority(extra_why[i]), i))
    cap = int(math.floor(params.extras_max_share * n + 1e-9))
    for i in range(n):
        if core[i]:
            why[i].extend(extra_why[i])
    for i in outside[:cap]:
        why[i].extend(extra_why[i])
    # 6. a tier a reviewer set, held in this grading: the regular review re-checks it (confirming renews it)
    if "decision_tier" in g.columns:
        until = texts_of(g["decision_expires"]) if "decision_expires" in g.columns else pd.Series([""] * n)
        for i in np.flatnonzero((texts_of(g["decision_tier"]) != "").to_numpy()):
            why[i].append(f"held decision (until {until.iloc[i]})" if until.iloc[i] else "held decision")
    if len(outside) > cap:
        notes.append(f"{len(outside) - cap:,} more customers flagged by overrides, big moves or the anomaly rule were "
                     f"not added: extras are capped at {params.extras_max_share:.0%} of the graded "
                     "(review: extras_max_share)")

    picked = np.array([bool(w) for w in why], dtype=bool)
    out = g.loc[picked, keys].reset_index(drop=True)
    sub = g.loc[picked].reset_index(drop=True)
    out["tier"] = tier[picked].to_numpy()
    out["tier_label"] = [info[t][1] for t in out["tier"]]
    out["score"] = pd.to_numeric(sub["score"], errors="coerce") if "score" in sub else np.nan
    out["previous_tier"] = previous_tier[picked].to_numpy()
    out["why"] = ["; ".join(w) for w, p in zip(why, picked) if p]
    out["explanation"] = texts_of(sub["explanation"]).to_numpy() if "explanation" in sub else ""
    out["overrides"] = texts_of(sub["overrides"]).to_numpy() if "overrides" in sub else ""
    for c in DECISION_COLUMNS:
        out[c] = ""
    out["_rank"] = rank[picked]
    out = out.sort_values(["_rank"] + keys, kind="stable").drop(columns="_rank").reset_index(drop=True)
    by_tier = {t: int(c) for t, c in tier.value_counts().items()}
    return ReviewSelection(out, scheme, params, n, by_tier, notes, margin)


def read_grading(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise SegmentError(f"grading {path} not found; run `segment report` (or `segment grade`) first")
    try:
        if path.suffix.lower() == ".csv":
            return restore(pd.read_csv(path, dtype={"customer_id": str, "group": str}, keep_default_na=False,
                                       na_values=[""]))
        return pd.read_parquet(path)
    except (ValueError, OSError) as e:
        raise SegmentError(f"{path}: cannot read the grading: {str(e).splitlines()[0]}") from None


def _salt(grading_path: Path) -> str:
    """The quarter (or as-of date) from the manifest beside the grading; '' when there is none."""
    try:
        m = json.loads((Path(grading_path).parent / QuarterFiles.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(m.get("quarter") or m.get("as_of") or "") if isinstance(m, dict) else ""


def as_scheme(scheme) -> Scheme:
    return scheme if isinstance(scheme, Scheme) else load_scheme(scheme)


def select_from_files(grading_path: str | Path, scheme, params: ReviewParams,
                      previous_path: str | Path | None = None, *,
                      context: pd.DataFrame | None = None) -> ReviewSelection:
    """``select_for_review`` on files, salted with the quarter from ``manifest.json`` beside the
    grading: what ``export_review`` writes and what the review notebook should show."""
    grading_path = Path(grading_path)
    grading = read_grading(grading_path)
    previous = read_grading(Path(previous_path)) if previous_path else None
    return select_for_review(grading, as_scheme(scheme), params, previous, salt=_salt(grading_path), context=context)
