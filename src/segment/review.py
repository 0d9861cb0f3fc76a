"""The review loop (SEEDS step 5, S4's process): sample → review sheet → reviewers decide → approved
grading + an append-only audit log.

1. ``select_for_review`` picks the customers to re-check: a seeded sample of 10–20% stratified by
   tier, plus every borderline customer (within N points of a cut-off), every one moved by an
   override rule, big movers since the previous quarter and anomalies (a condition from
   ``params/reports.yaml``, by default high value with frequent complaints).
2. ``export_review`` writes ``review_sheet.xlsx`` (dropdowns, frozen header, an instructions sheet)
   and ``review_sheet.csv`` (UTF-8 with BOM) with the decision columns confirm / new_tier / reason /
   reviewer left empty.
3. ``apply_review`` reads the sheet back, checks every row (all problems at once, nothing written on
   error), writes the approved grading and appends one line per decided row to the audit log, which
   is only ever appended to.
4. ``reviewer_changes`` reads the audit log for the next quarter's report.

Grouped schemes (S8: one row per customer and product line) are keyed by customer_id + group.
"""
from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import warnings
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from .atomic import atomic_path, neutralise_text, restore, restore_text, sha256_file, write_csv
from .conditions import parse
from .errors import ConditionError, ConfigError, SegmentError
from .grading_report import html_table
from .io import pydantic_error, read_yaml
from .schemes import Cond, Scheme, _num, load_scheme

try:
    import fcntl   # POSIX: concurrent applies append one after the other
except ImportError:  # Windows (conda analysts): O_APPEND alone
    fcntl = None

SHEET_NAME = "review_sheet"          # review_sheet.xlsx / review_sheet.csv
DECISION_COLUMNS = ("confirm", "new_tier", "reason", "reviewer")
SELECTION_COLUMNS = ("customer_id", "tier", "tier_label", "score", "previous_tier", "why", "explanation",
                     "overrides") + DECISION_COLUMNS
CONTACT_COLUMNS = ("name", "contact_name", "phone", "email")   # name: the company; the rest are PII
AUDIT_HEADER = ("timestamp", "reviewer", "customer_id", "group", "from_tier", "to_tier", "reason", "sheet",
                "grading_sha256")
REASONS = ("sample", "borderline", "override", "big mover", "anomaly")
_SAMPLE_BOUNDS = (0.10, 0.20)   # SEEDS step 5


# ------------------------------------------------------------------------------------------------
# params
# ------------------------------------------------------------------------------------------------

class ReviewParams(BaseModel):
    """``review:`` in ``params/reports.yaml``."""

    model_config = ConfigDict(extra="forbid")
    sample_share: Annotated[float, BeforeValidator(_num)] = Field(
        0.15, description="share of each tier drawn at random (SEEDS step 5: 0.10–0.20)")
    seed: int = Field(20260930, ge=0, description="random seed of the sample (the quarter is mixed in)")
    borderline_points: Annotated[float | None, BeforeValidator(_num)] = Field(
        None, ge=0, description="review scores within this many points of a cut-off (default: borderline_share)")
    borderline_share: Annotated[float, BeforeValidator(_num)] = Field(
        0.05, gt=0, le=0.5, description="the borderline margin as a share of the typical gap between the scheme's "
                                        "cut-offs: the same closeness on a 0–100 and a 1–5 scale")
    max_share: Annotated[float, BeforeValidator(_num)] = Field(
        0.20, gt=0, le=1, description="the random sample and the borderline customers together are at most this "
                                      "share of the graded (SEEDS step 5: 10–20%); the nearest to a cut-off first")
    extras_max_share: Annotated[float, BeforeValidator(_num)] = Field(
        0.05, ge=0, le=1, description="override, big-mover and anomaly customers outside the sample are at most "
                                      "this share of the graded (anomalies first, then big movers, then overrides)")
    big_mover_tiers: int = Field(2, ge=1, description="review customers who moved this many tiers or more")
    anomaly: Cond | None = Field("annual_amount >= 50万 and complaints_12m >= 3",
                                 description="review customers matching this condition (null: off)")
    include_pii_in_sheet: bool = Field(True, description="the sheet shows contact name, phone and e-mail")

    @field_validator("sample_share")
    @classmethod
    def _share(cls, v: float) -> float:
        lo, hi = _SAMPLE_BOUNDS
        if not (math.isfinite(v) and lo - 1e-12 <= v <= hi + 1e-12):
            raise ValueError(f"must be between {lo:.2f} and {hi:.2f} (SEEDS step 5: a 10–20% sample is "
                             f"re-checked), got {v:g}; write for example 0.15 or 15%")
        return v


class _ReportsFile(BaseModel):
    model_config = ConfigDict(extra="allow")   # privacy: and whatever else reports.py reads
    review: ReviewParams = Field(default_factory=ReviewParams)


def load_review_params(path: str | Path | None = None) -> ReviewParams:
    """``review:`` of a reports params file (default: the project's params/reports.yaml); a bad value
    raises ConfigError naming the file and key."""
    from .paths import params_file

    path = path if path is not None else params_file("reports.yaml")
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path, None, "expected a mapping with `review:` and `privacy:`", "see params/reports.yaml")
    if raw.get("review") is None:
        raw = {**raw, "review": {}}
    try:
        return _ReportsFile.model_validate(raw).review
    except ValidationError as e:
        raise pydantic_error(path, e) from None


# ------------------------------------------------------------------------------------------------
# selection
# ------------------------------------------------------------------------------------------------

def _keys(frame: pd.DataFrame) -> list[str]:
    return ["customer_id", "group"] if "group" in frame.columns else ["customer_id"]


def _text(s: pd.Series) -> pd.Series:
    """A column as plain str ('' for missing), whatever its dtype (categorical, string, object)."""
    return s.astype(object).where(s.notna(), "").astype(str).str.strip()


def _tier_info(scheme: Scheme) -> dict[str, tuple]:
    return {t.id: (i, t.label or t.id, "; ".join(t.strategy.actions), t.strategy.follow_up_days, t.strategy.owner)
            for i, t in enumerate(scheme.tiers)}


@dataclass
class ReviewSelection:
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
                f"{self.params.seed}) and the customers nearest a cut-off (within {_points(self.margin)}), at most "
                f"{self.params.max_share:.0%} together — and {sh['extras']:.1%} more for override rules, moves of "
                f"{self.params.big_mover_tiers}+ tiers since last quarter"
                + (f" and the anomaly rule `{self.params.anomaly}`" if self.params.anomaly else "")
                + f" (at most {self.params.extras_max_share:.0%}).")

    def _repr_html_(self) -> str:
        labels = {t.id: f"{t.id} ({t.label})" if t.label else t.id for t in self.scheme.tiers}
        counts = self.counts().rename(columns=labels).reset_index()
        parts = [f"<p>{html.escape(self.summary())}</p>", html_table(counts)]
        if self.notes:
            parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in self.notes) + "</ul>")
        return "\n".join(parts)


def _points(x: float) -> str:
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
    ``complaints_12m``) for the anomaly rule; the grading's own columns win."""
    keys = _keys(grading)
    for k in ("customer_id", "tier"):
        if k not in grading.columns:
            raise SegmentError(f"the grading has no `{k}` column; pass the grading.parquet that "
                               "`segment report` / `segment grade` wrote")
    g = grading.copy()
    for k in keys:
        g[k] = _text(g[k])
    g = g.sort_values(keys, kind="stable").reset_index(drop=True)
    n = len(g)
    tier = _text(g["tier"])
    info = _tier_info(scheme)
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
            notes.append(f"{left_out:,} more customers within {_points(margin)} of a cut-off were not added: the "
                         f"sample is capped at {params.max_share:.0%} of the graded (review: max_share)")
    elif scheme.scored and "score" not in g.columns:
        notes.append("borderline rule skipped: the grading has no `score` column")
    core = np.array([bool(w) for w in why], dtype=bool)
    extra_why: list[list[str]] = [[] for _ in range(n)]  # reasons 3–5, capped below for rows outside the sample

    # 3. moved by an override rule
    if "overrides" in g.columns:
        for i in np.flatnonzero((_text(g["overrides"]) != "").to_numpy()):
            extra_why[i].append("override")

    # 4. big movers since the previous quarter
    previous_tier = pd.Series([""] * n, dtype=object)
    if previous is not None:
        pkeys = _keys(previous)
        if pkeys != keys or "tier" not in previous.columns:
            notes.append("big-mover rule skipped: the previous grading has no `tier` column or is keyed "
                         "differently (grouped vs not grouped)")
        else:
            prev = previous[keys + ["tier"]].copy()
            for k in keys + ["tier"]:
                prev[k] = _text(prev[k])
            prev = prev.drop_duplicates(keys)
            merged = g[keys].merge(prev, on=keys, how="left")
            previous_tier = merged["tier"].fillna("").astype(str)
            prev_rank = previous_tier.map(lambda t: info[t][0] if t in info else np.nan).to_numpy(dtype="float64")
            stray = sorted(set(previous_tier) - set(info) - {""})
            if stray:
                notes.append(f"previous tier(s) {', '.join(stray)} are not tiers of {scheme.id}: those customers "
                             "are not compared with last quarter")
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
                    ctx[k] = _text(ctx[k])
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
    out["explanation"] = _text(sub["explanation"]).to_numpy() if "explanation" in sub else ""
    out["overrides"] = _text(sub["overrides"]).to_numpy() if "overrides" in sub else ""
    for c in DECISION_COLUMNS:
        out[c] = ""
    out["_rank"] = rank[picked]
    out = out.sort_values(["_rank"] + keys, kind="stable").drop(columns="_rank").reset_index(drop=True)
    by_tier = {t: int(c) for t, c in tier.value_counts().items()}
    return ReviewSelection(out, scheme, params, n, by_tier, notes, margin)


# ------------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------------

def _read_grading(path: Path) -> pd.DataFrame:
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
        m = json.loads((Path(grading_path).parent / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(m.get("quarter") or m.get("as_of") or "") if isinstance(m, dict) else ""


def _scheme(scheme) -> Scheme:
    return scheme if isinstance(scheme, Scheme) else load_scheme(scheme)


def select_from_files(grading_path: str | Path, scheme, params: ReviewParams,
                      previous_path: str | Path | None = None, *,
                      context: pd.DataFrame | None = None) -> ReviewSelection:
    """``select_for_review`` on files, salted with the quarter from ``manifest.json`` beside the
    grading: what ``export_review`` writes and what the review notebook should show."""
    grading_path = Path(grading_path)
    grading = _read_grading(grading_path)
    previous = _read_grading(Path(previous_path)) if previous_path else None
    return select_for_review(grading, _scheme(scheme), params, previous, salt=_salt(grading_path), context=context)


def _has_decisions(path: Path) -> int:
    """How many rows of an existing sheet carry a decision (0 if unreadable or none)."""
    try:
        df = _read_sheet_frame(path)
    except SegmentError:
        return 0
    cols = [c for c in DECISION_COLUMNS if c in df.columns]
    if not cols:
        return 0
    return int((df[cols].fillna("").astype(str).apply(lambda s: s.str.strip()) != "").any(axis=1).sum())


def export_review(grading_path: str | Path, scheme, out_dir: str | Path, params: ReviewParams,
                  previous_path: str | Path | None = None, customers: pd.DataFrame | None = None, *,
                  context: pd.DataFrame | None = None, overwrite: bool = False) -> list[Path]:
    """Write ``review_sheet.xlsx`` and ``review_sheet.csv`` into ``out_dir``; return their paths.

    With ``customers`` (the customers table), the sheet shows the company name and — when
    ``params.include_pii_in_sheet`` — contact name, phone and e-mail. An existing sheet that already
    holds decisions is never overwritten unless ``overwrite``."""
    scheme = _scheme(scheme)
    out_dir = Path(out_dir)
    xlsx, csv_path = out_dir / f"{SHEET_NAME}.xlsx", out_dir / f"{SHEET_NAME}.csv"
    if not overwrite:
        for p in (xlsx, csv_path):
            if p.is_file() and (k := _has_decisions(p)):
                raise SegmentError(f"{p} already holds {k} reviewer decision(s); apply it with `segment "
                                   "review apply`, or move it away (or pass --force) to export a fresh sheet")
    sel = select_from_files(grading_path, scheme, params, previous_path, context=context)
    sheet = sel.table().copy()
    keys = _keys(sheet)
    contact_cols: list[str] = []
    if customers is not None and "customer_id" in customers.columns:
        wanted = ["name"] + (list(CONTACT_COLUMNS[1:]) if params.include_pii_in_sheet else [])
        contact_cols = [c for c in wanted if c in customers.columns]
        if contact_cols:
            cust = customers[["customer_id"] + contact_cols].copy()
            cust["customer_id"] = _text(cust["customer_id"])
            for c in contact_cols:
                cust[c] = _text(cust[c])
            cust = cust.drop_duplicates("customer_id")
            sheet = sheet.merge(cust, on="customer_id", how="left")
            for c in contact_cols:
                sheet[c] = sheet[c].fillna("")
            order = keys + contact_cols + [c for c in sheet.columns if c not in keys + contact_cols]
            sheet = sheet[order]
    with atomic_path(xlsx) as tmp:
        _write_xlsx(sheet, sel, tmp, contact_cols)
    with atomic_path(csv_path) as tmp:
        write_csv(sheet, tmp, bom=True)  # every text cell neutralised for spreadsheets
    return [xlsx, csv_path]


_COLUMN_HELP = {
    "customer_id": ("客户编号", "The customer's id in the CRM. Do not change it."),
    "group": ("产品线", "The product line graded (schemes that grade each line separately)."),
    "name": ("客户名称", "The company's name."),
    "contact_name": ("联系人", "Main contact (personal data: do not forward this sheet)."),
    "phone": ("电话", "Main contact's phone (personal data)."),
    "email": ("邮箱", "Main contact's e-mail (personal data)."),
    "tier": ("等级", "The tier the grading gave. Do not edit it: write a different tier in new_tier."),
    "tier_label": ("等级名称", "The tier's name."),
    "score": ("得分", "The total score (empty for schemes that grade by rules, not scores)."),
    "previous_tier": ("上季度等级", "The tier last quarter (empty: not graded last quarter)."),
    "why": ("入选原因", "Why this customer is on the sheet: sample = drawn at random; borderline = the score "
            "is close to a tier's cut-off; override = a rule moved the tier; big mover = moved two or more "
            "tiers since last quarter; anomaly = matches the anomaly rule below."),
    "explanation": ("评分说明", "The largest contributions to the score and how far the next tier is."),
    "overrides": ("规则调整", "Which rule moved the tier, from what to what, and why."),
    "confirm": ("确认", "yes = the tier is right; no = it is wrong (then write new_tier and reason). "
                "Leave empty if you did not review the customer."),
    "new_tier": ("新等级", "Only when the tier is wrong: the tier id it should have (the dropdown lists them)."),
    "reason": ("原因", "Required when the tier changes: why (e.g. high spend but frequent complaints)."),
    "reviewer": ("审核人", "Your name, on every row you decided."),
}


def _write_xlsx(sheet: pd.DataFrame, sel: ReviewSelection, path: Path, contact_cols: list[str]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter, quote_sheetname
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = "review"
    cols = list(sheet.columns)
    ws.append(cols)
    bold = Font(bold=True)
    decide = PatternFill("solid", fgColor="FFF2CC")
    for row in sheet.itertuples(index=False):
        values = []
        for v in row:
            if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
                values.append(None)
            elif isinstance(v, (np.floating, float)):
                values.append(float(v))
            else:
                values.append(v if isinstance(v, (int, np.integer)) else str(v))
        ws.append(values)
    n = len(sheet)
    for j, c in enumerate(cols, start=1):
        head = ws.cell(row=1, column=j)
        head.font = bold
        letter = get_column_letter(j)
        if c in DECISION_COLUMNS:
            head.fill = decide
            for i in range(2, n + 2):
                ws.cell(row=i, column=j).fill = decide
        width = {"why": 40, "explanation": 60, "overrides": 40, "reason": 40, "name": 30, "email": 30}.get(c, 14)
        ws.column_dimensions[letter].width = width
        if c == "score":
            for i in range(2, n + 2):
                ws.cell(row=i, column=j).number_format = "0.0"
    # text must stay text in every column (openpyxl would store "=..." as a formula); a string cell
    # starting with + - @ is text to Excel already
    for row in ws.iter_rows(min_row=2, max_row=n + 1):
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"
    ws.freeze_panes = "B2"
    if n:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{n + 1}"

    # instructions (and the tier list the new_tier dropdown reads)
    ins = wb.create_sheet("instructions")
    ins.column_dimensions["A"].width = 18
    ins.column_dimensions["B"].width = 16
    ins.column_dimensions["C"].width = 100
    p = sel.params
    lines = [
        ("客户分级复核 Review of the customer grading", "", ""),
        ("", "", f"Scheme: {sel.scheme.name or sel.scheme.id} ({sel.scheme.id}). {sel.summary()}"),
        ("", "", "For each row: if the tier is right, write yes in confirm. If it is wrong, write no in confirm, "
                 "the tier it should have in new_tier, and why in reason. Write your name in reviewer on every "
                 "row you decided. Leave rows you did not review empty. Do not change the other columns or "
                 "delete rows. Return the file (xlsx or csv) to the CRM team, who run `segment review apply`."),
        ("", "", "Every decision is recorded in the audit log (who, when, from, to, why)."),
        ("", "", ""),
        ("column", "中文", "meaning"),
    ]
    for c in cols:
        zh, text = _COLUMN_HELP.get(c, ("", ""))
        lines.append((c, zh, text))
    lines += [("", "", ""), ("rule", "", "setting")]
    lines += [("sample", "抽样", f"{p.sample_share:.0%} of each tier at random (at least one per tier), seed {p.seed}"),
              ("borderline", "临界", f"score within {_points(sel.margin)} of a tier cut-off, nearest first; "
                                     f"sample and borderline together at most {p.max_share:.0%}"),
              ("override", "规则调整", "a scheme rule promoted or demoted the customer"),
              ("big mover", "大幅变动", f"moved {p.big_mover_tiers} or more tiers since last quarter"),
              ("anomaly", "异常", p.anomaly or "(off)")]
    for note in sel.notes:
        lines.append(("note", "", note))
    lines += [("", "", ""), ("tier id", "等级", "cut-off / strategy")]
    first_tier_row = len(lines) + 1
    for t in sel.scheme.tiers:
        cut = f"score ≥ {t.min_score:g}; " if t.min_score is not None else ""
        lines.append((t.id, t.label, cut + "; ".join(t.strategy.actions)))
    for r in lines:
        ins.append(list(r))
    for r in (1, 6, 6 + len(cols) + 2, first_tier_row - 1):
        for cell in ins[r]:
            cell.font = bold
    for row in ins.iter_rows(min_col=3, max_col=3):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")

    if n:
        if "confirm" in cols:
            dv = DataValidation(type="list", formula1='"yes,no,是,否"', allow_blank=True, showErrorMessage=True,
                                errorTitle="confirm", error="Write yes or no (是 / 否), or leave it empty.")
            ws.add_data_validation(dv)
            letter = get_column_letter(cols.index("confirm") + 1)
            dv.add(f"{letter}2:{letter}{n + 1}")
        if "new_tier" in cols:
            last = first_tier_row + len(sel.scheme.tiers) - 1
            ref = f"={quote_sheetname('instructions')}!$A${first_tier_row}:$A${last}"
            dv = DataValidation(type="list", formula1=ref, allow_blank=True, showErrorMessage=True,
                                errorTitle="new_tier", error="Pick one of the tier ids (see the instructions sheet).")
            ws.add_data_validation(dv)
            letter = get_column_letter(cols.index("new_tier") + 1)
            dv.add(f"{letter}2:{letter}{n + 1}")
    wb.save(path)


# ------------------------------------------------------------------------------------------------
# apply
# ------------------------------------------------------------------------------------------------

def _read_sheet_frame(path: Path) -> pd.DataFrame:
    """A review sheet (.xlsx: the `review` sheet, else the first; .csv: UTF-8, else GB18030 as Excel
    on a Chinese Windows saves it) as text, '' for empty cells."""
    path = Path(path)
    if not path.is_file():
        raise SegmentError(f"{path}: review sheet not found; check the path")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            import warnings

            from openpyxl import load_workbook

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)   # "Data Validation extension is not supported"
                names = load_workbook(path, read_only=True).sheetnames
                df = pd.read_excel(path, sheet_name="review" if "review" in names else 0, dtype=str, engine="openpyxl")
        elif suffix in (".csv", ".txt"):
            try:
                df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
            except UnicodeDecodeError:
                df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="gb18030")
        else:
            raise SegmentError(f"{path}: a review sheet is an .xlsx or .csv file")
    except SegmentError:
        raise
    except (ValueError, OSError, KeyError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SegmentError(f"{path}: cannot read the review sheet: {str(e).splitlines()[0]}; fill in the "
                           "sheet `segment review export` wrote (it must keep its header row)") from None
    except Exception as e:  # openpyxl's BadZipFile / InvalidFileException on a corrupt or renamed file
        raise SegmentError(f"{path}: cannot read the review sheet ({type(e).__name__}); save it again as "
                           ".xlsx or .csv") from None
    df.columns = [str(c).strip() for c in df.columns]
    df = df.fillna("").astype(str).apply(lambda s: s.str.strip())
    return restore(df)  # the ' the export put before a formula-like cell


@dataclass
class ApplyResult:
    sheet: Path
    out_path: Path
    audit_log: Path
    confirmed: int
    changed: int
    not_reviewed: int
    changes: pd.DataFrame   # customer_id, [group,] from_tier, to_tier, reason, reviewer

    @property
    def logged(self) -> int:
        return self.confirmed + self.changed

    def summary(self) -> str:
        lines = [f"applied {self.sheet.name}: {self.confirmed} confirmed, {self.changed} changed, "
                 f"{self.not_reviewed} not reviewed",
                 f"  approved grading: {self.out_path}",
                 f"  audit log: {self.audit_log} (+{self.logged} line(s))"]
        for r in self.changes.itertuples(index=False):
            lines.append(f"  {r.customer_id}: {r.from_tier} → {r.to_tier} ({r.reason}; {r.reviewer})")
        return "\n".join(lines)


def _rows(mask: np.ndarray, limit: int = 30) -> str:
    idx = [str(i + 2) for i in np.flatnonzero(mask)]   # +2: the header row, 1-based
    word = "row" if len(idx) == 1 else "rows"
    shown = ", ".join(idx[:limit]) + (f" … and {len(idx) - limit} more" if len(idx) > limit else "")
    return f"{word} {shown}"


def _examples(values, k: int = 3) -> str:
    uniq = list(dict.fromkeys(v for v in values))
    return ", ".join(repr(v) for v in uniq[:k]) + (" …" if len(uniq) > k else "")




def _audit_header_bytes() -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(AUDIT_HEADER)
    return buf.getvalue().encode("utf-8")


class AuditLogWarning(UserWarning):
    """The audit log holds lines that are not complete records — what a crash in the middle of an append
    leaves behind. They are skipped (never rewritten); the warning names each line."""


_BOM = b"\xef\xbb\xbf"
_SHA256_HEX = frozenset("0123456789abcdef")


def _torn_header(data: bytes) -> bool:
    """``data`` (the whole file) is the header cut short: a crash during the very first append."""
    header = _audit_header_bytes()
    return bool(data) and not data.endswith(b"\n") and ((_BOM + header).startswith(data) or header.startswith(data))


def _check_audit_log(audit_log: Path) -> None:
    """An existing audit log must start with our header (nothing is ever rewritten to fix it); a header
    cut short by a crash during the first append is accepted (the next append completes it)."""
    if not audit_log.exists() or audit_log.stat().st_size == 0:
        return
    with open(audit_log, "rb") as f:
        first = f.readline()
    if _torn_header(first):   # no line end: this is the whole file
        return
    if first.removeprefix(_BOM) != _audit_header_bytes():
        raise SegmentError(f"{audit_log}: not a segment audit log (its first line is "
                           f"{first.decode('utf-8', 'replace').strip()!r}, expected {','.join(AUDIT_HEADER)!r}); "
                           "it is never rewritten: move it aside or pass the right --audit-log. Nothing was applied.")


def _read_at(fd: int, n: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, n, offset)
    os.lseek(fd, offset, os.SEEK_SET)   # Windows (appends still go to the end: O_APPEND)
    return os.read(fd, n)


def _append_audit(audit_log: Path, lines: list[tuple]) -> None:
    """Append under an exclusive lock; the header (with a BOM, for Excel) only into an empty file.

    One record per physical line (line breaks inside a field become spaces), so a reader can always
    tell records apart. If a crash cut the previous append short, the file does not end with a line
    end: the new lines then start on a fresh line, and the torn fragment stays a line of its own that
    ``reviewer_changes`` skips with a warning — it never merges into a record. A header cut short is
    completed. Nothing already in the file is changed."""
    audit_log.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for line in lines:
        w.writerow([neutralise_text(_one_line(v)) if isinstance(v, str) else v for v in line])
    body = buf.getvalue().encode("utf-8")
    fd = os.open(audit_log, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        full_header = _BOM + _audit_header_bytes()
        head = _read_at(fd, size, 0) if 0 < size <= len(full_header) else b""
        if size == 0:
            body = full_header + body
        elif _torn_header(head):   # the first append was cut short inside the header: complete it
            rest = full_header[len(head):] if full_header.startswith(head) else _audit_header_bytes()[len(head):]
            body = rest + body
        else:
            _check_audit_log(audit_log)   # again, under the lock
            if _read_at(fd, 1, size - 1) != b"\n":
                with open(audit_log, "rb") as f:
                    torn = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) + 1
                warnings.warn(f"{audit_log}: line {torn} is an incomplete record (an earlier append was cut short); "
                              "it is kept as it is and skipped by readers, the new lines start on the next line",
                              AuditLogWarning, stacklevel=3)
                body = b"\n" + body
        view = memoryview(body)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def apply_review(sheet: str | Path, grading_path: str | Path, scheme, out_path: str | Path,
                 audit_log: str | Path, when=None) -> ApplyResult:
    """Check a filled-in review sheet, write the approved grading and append to the audit log.

    Every row is checked first; any problem raises SegmentError listing them all (spreadsheet row
    numbers) and nothing is written. A row is decided when confirm or new_tier is filled:
    confirm=yes (new_tier empty or the same tier) confirms; new_tier with another tier (confirm no
    or empty) changes the tier and needs a reason. Decided rows need a reviewer. Blank rows are
    "not reviewed" and not logged. ``grading_path`` may be an approved grading (a second sheet on
    top of the first): earlier decisions on rows this sheet leaves blank are kept."""
    sheet, grading_path, out_path, audit_log = Path(sheet), Path(grading_path), Path(out_path), Path(audit_log)
    scheme = _scheme(scheme)
    info = _tier_info(scheme)
    by_label = {v[1]: k for k, v in info.items()}
    df = _read_sheet_frame(sheet)
    grading = _read_grading(grading_path)
    keys = _keys(grading)
    need = keys + list(DECISION_COLUMNS)
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise SegmentError(f"{sheet}: missing column(s) {', '.join(missing)}; the sheet needs "
                           f"{', '.join(need)} (export a fresh one with `segment review export`). Nothing was applied.")
    _check_audit_log(audit_log)
    # rows with nothing at all in them (Excel leaves some at the end) are ignored
    df = df[(df != "").any(axis=1)]
    g = grading.reset_index(drop=True)
    gkey = g[keys].apply(_text)
    gindex = pd.MultiIndex.from_frame(gkey) if len(keys) > 1 else pd.Index(gkey["customer_id"])
    if not gindex.is_unique:
        raise SegmentError(f"{grading_path}: the grading has a customer twice ({', '.join(keys)}); "
                           "it is not a grading segment wrote")
    skey = pd.MultiIndex.from_frame(df[keys]) if len(keys) > 1 else pd.Index(df["customer_id"])
    pos = gindex.get_indexer(skey)
    gtier = _text(g["tier"]).to_numpy(dtype=object)

    # 是/否 (and y/n, true/false, 1/0) read like yes/no: sheets are filled by Chinese-speaking heads too
    said = {"是": "yes", "否": "no", "y": "yes", "n": "no", "true": "yes", "false": "no", "1": "yes", "0": "no",
            "对": "yes", "确认": "yes", "不对": "no"}
    confirm = df["confirm"].str.strip().str.lower().map(lambda v: said.get(v, v)).to_numpy(dtype=object)
    new_raw = df["new_tier"].to_numpy(dtype=object)
    new = np.array([v if v in info else by_label.get(v, v) for v in new_raw], dtype=object)   # ids or labels
    reason = df["reason"].to_numpy(dtype=object)
    reviewer = df["reviewer"].to_numpy(dtype=object)
    cid = df["customer_id"].to_numpy(dtype=object)
    known = pos >= 0
    cur = np.where(known, gtier[np.maximum(pos, 0)] if len(gtier) else "", "")
    decided = (confirm != "") | (new != "")
    has_new = new != ""
    valid_new = np.array([v in info for v in new], dtype=bool)
    changes = decided & has_new & valid_new & (new != cur)
    problems: list[tuple[int, str]] = []   # (first row, line): listed in sheet order

    def check(mask, what: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            problems.append((int(np.flatnonzero(mask)[0]), f"  {_rows(mask)}: {what}"))

    ids = ", ".join(info)
    check(cid == "", "customer_id is empty; write the customer's id as exported (or delete the row)")
    check((cid != "") & ~known, f"customer not in the grading ({grading_path.name}): "
          f"{_examples(cid[(cid != '') & ~known])}; check the customer_id, or delete the row")
    dup = df.duplicated(keys, keep=False).to_numpy() & (cid != "")
    check(dup, f"customer twice ({_examples(cid[dup])}); keep one row per customer")
    check(~np.isin(confirm, ["", "yes", "no"]),
          f"confirm is {_examples(df['confirm'].to_numpy()[~np.isin(confirm, ['', 'yes', 'no'])])}; write yes or no (是 / 否), "
          "or leave it empty for a customer you did not review")
    check(has_new & ~valid_new, f"new_tier {_examples(new_raw[has_new & ~valid_new])} is not a tier of "
          f"{scheme.id}; write one of {ids} (or leave it empty to keep the tier)")
    if "tier" in df.columns:
        # a decided row must be about the grading's current tier (not another quarter's, not an earlier
        # sheet's); on an undecided row only an edit of the tier column matters (it no longer fits tier_label)
        stier = df["tier"].to_numpy(dtype=object)
        stale = known & decided & (stier != "") & (stier != cur)
        if "tier_label" in df.columns:
            label_of = {k: v[1] for k, v in info.items()}
            edited = np.array([t != "" and lab != "" and label_of.get(t, t) != lab
                               for t, lab in zip(stier, df["tier_label"].to_numpy(dtype=object))], dtype=bool)
            stale |= known & edited
        check(stale, "the tier column differs from the grading's tier; write the tier you want in new_tier and "
              "leave the tier column as exported (or export a fresh sheet for this grading)")
    check((confirm == "no") & ~has_new, "confirm is no but new_tier is empty; write the tier the customer should "
          "have in new_tier (and why in reason)")
    check((confirm == "no") & has_new & valid_new & (new == cur) & known,
          "confirm is no but new_tier is the current tier; write yes to confirm, or the right tier in new_tier")
    check((confirm == "yes") & changes, "confirm is yes but new_tier is a different tier; write no to change the "
          "tier, or clear new_tier to confirm it")
    check(changes & (reason == ""), "the tier changes but reason is empty; write why in reason")
    check(decided & (reviewer == ""), "reviewer is empty on a decided row; write your name in reviewer")
    check(~decided & (reason != ""), "reason is filled but confirm and new_tier are empty; write yes in confirm, "
          "or no and the new tier in new_tier")
    if problems:
        raise SegmentError(f"{sheet}: {len(problems)} problem(s); nothing was applied or logged:\n"
                           + "\n".join(line for _, line in sorted(problems, key=lambda p: p[0])))

    # the approved grading
    out = g.copy()
    for c in ("review_decision", "reviewed_by", "review_reason"):
        out[c] = _text(out[c]).to_numpy(dtype=object) if c in out.columns else np.full(len(out), "", dtype=object)
    rows_changed = pos[changes]
    rows_confirmed = pos[decided & ~changes]
    rows_blank = pos[~decided]
    new_ids = new[changes]
    if len(rows_changed):
        _set_tiers(out, rows_changed, list(new_ids), info)
    dec = out["review_decision"].to_numpy(dtype=object)
    by = out["reviewed_by"].to_numpy(dtype=object)
    why = out["review_reason"].to_numpy(dtype=object)
    dec[rows_blank] = np.where(dec[rows_blank] == "", "not reviewed", dec[rows_blank])
    kept = decided & ~changes
    dec[rows_confirmed], by[rows_confirmed], why[rows_confirmed] = "confirmed", reviewer[kept], reason[kept]
    dec[rows_changed], by[rows_changed], why[rows_changed] = "changed", reviewer[changes], reason[changes]
    out["review_decision"] = pd.array(dec, dtype="string")
    out["reviewed_by"] = pd.array(by, dtype="string")
    out["review_reason"] = pd.array(why, dtype="string")

    # the audit lines, in sheet order
    stamp = _timestamp(when)
    sha = sha256_file(grading_path)
    group = df["group"].to_numpy(dtype=object) if "group" in keys else np.full(len(df), "", dtype=object)
    lines = []
    for i in np.flatnonzero(decided):
        to = new[i] if changes[i] else cur[i]
        lines.append((stamp, _one_line(reviewer[i]), cid[i], group[i], cur[i], to, _one_line(reason[i]), sheet.name,
                      sha))
    with atomic_path(out_path) as tmp:
        if out_path.suffix.lower() == ".csv":
            write_csv(out, tmp)
        else:
            out.to_parquet(tmp, index=False)
        if lines:
            _append_audit(audit_log, lines)   # only once the approved grading is fully written
    changes_df = pd.DataFrame({"customer_id": cid[changes], **({"group": group[changes]} if "group" in keys else {}),
                               "from_tier": cur[changes], "to_tier": new_ids, "reason": reason[changes],
                               "reviewer": reviewer[changes]})
    return ApplyResult(sheet, out_path, audit_log, int((decided & ~changes).sum()), int(changes.sum()),
                       int((~decided).sum()), changes_df)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) if ("\n" in str(text) or "\r" in str(text)) else str(text)


def _timestamp(when) -> str:
    if when is None:
        ts = datetime.now(timezone.utc)
    else:
        ts = pd.Timestamp(when)
        ts = (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()
    return ts.replace(microsecond=0).isoformat()


def _set_tiers(frame: pd.DataFrame, rows: np.ndarray, new: list[str], info: dict) -> None:
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


# ------------------------------------------------------------------------------------------------
# the next quarter's report
# ------------------------------------------------------------------------------------------------

HOLD_NOTE = "held until the next review"


def hold_decisions(current: pd.DataFrame, approved: pd.DataFrame, computed_before: pd.DataFrame,
                   scheme: Scheme) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reviewers' tier changes of the previous period hold in this grading until the next review.

    ``approved``: the previous period's approved grading (``review_decision`` changed, or confirmed
    on a row whose tier was itself held); ``computed_before``: the previous period's grading as the
    scheme computed it. A decision is **released** when the data now moves the customer as far as the
    reviewer did, or further the same way, or the customer is no longer graded; otherwise the
    customer keeps the reviewer's tier and ``held_decision`` says whose decision it is. Returns the
    grading (a copy) and one row per decision: key, tier computed before, reviewer's tier, tier
    computed now, tier now, status (held / released) and why."""
    from .grading import row_key

    keys = row_key(current, approved)
    cols = ["review_decision", "reviewed_by", "review_reason"]
    if "review_decision" not in approved.columns or not set(keys) <= set(computed_before.columns):
        return current, pd.DataFrame()
    a = approved[keys + ["tier"] + [c for c in cols + ["held_decision"] if c in approved.columns]].copy()
    for c in keys + ["tier"] + cols + (["held_decision"] if "held_decision" in a else []):
        a[c] = _text(a[c])
    renewed = (a["review_decision"] == "confirmed") & (a.get("held_decision", pd.Series("", index=a.index)) != "")
    a = a[(a["review_decision"] == "changed") | renewed]
    info = _tier_info(scheme)
    out = current.copy()
    if "held_decision" not in out.columns:
        out["held_decision"] = ""
    out["held_decision"] = _text(out["held_decision"]).astype(object)
    if a.empty:
        return out, pd.DataFrame()
    before = computed_before[keys + ["tier"]].copy()
    for c in keys + ["tier"]:
        before[c] = _text(before[c])
    now = out[keys + ["tier"]].copy()
    for c in keys + ["tier"]:
        now[c] = _text(now[c])
    m = a.merge(before.rename(columns={"tier": "computed_before"}), on=keys, how="left") \
         .merge(now.rename(columns={"tier": "computed_now"}).assign(pos_=np.arange(len(now))), on=keys, how="left")
    rank = {t: i for t, (i, *_rest) in info.items()}
    rows, tiers, records = [], [], []
    for r in m.itertuples(index=False):
        decided, was, got = r.tier, r.computed_before, r.computed_now
        record = {**{k: getattr(r, k) for k in keys}, "computed_before": was, "reviewer_tier": decided,
                  "computed_now": got if isinstance(got, str) else "", "reviewer": r.reviewed_by,
                  "reason": r.review_reason}
        if not isinstance(got, str) or pd.isna(r.pos_):
            records.append({**record, "tier_now": "", "status": "released", "why": "no longer graded"})
            continue
        step = rank.get(decided, 0) - rank.get(was, rank.get(decided, 0))  # < 0: the reviewer moved it up
        reached = (step < 0 and rank[got] <= rank[decided]) or (step > 0 and rank[got] >= rank[decided]) or step == 0
        if reached:
            records.append({**record, "tier_now": got, "status": "released",
                            "why": "the data now places the customer there or beyond"})
            continue
        rows.append(int(r.pos_))
        tiers.append(decided)
        records.append({**record, "tier_now": decided, "status": "held", "why": HOLD_NOTE})
    if rows:
        _set_tiers(out, np.asarray(rows), tiers, info)
        held = out["held_decision"].to_numpy(dtype=object, copy=True)
        by_pos = {int(r.pos_): r for r in m.itertuples(index=False) if not pd.isna(r.pos_)}
        for pos in rows:
            r = by_pos[pos]
            held[pos] = f"{r.reviewed_by}: {r.computed_before} → {r.tier} ({r.review_reason}); {HOLD_NOTE}"
        out["held_decision"] = held
    out["held_decision"] = pd.array(out["held_decision"].astype(object), dtype="string")
    return out, pd.DataFrame(records)


def _audit_records(audit_log: Path) -> tuple[list[tuple[int, list[str]]], list[tuple[int, str]]]:
    """The audit log's complete records as (line number, fields), and the lines that are not records
    as (line number, why). Line numbers count the header as line 1.

    A record is one physical line (``_append_audit`` writes nothing else) of exactly the header's
    fields, with an ISO timestamp, a customer, both tiers and a 64-digit grading sha256 — a line cut
    short anywhere (a crash in the middle of an append) fails one of these and is reported, never read
    as a decision and never merged with the next line."""
    data = audit_log.read_bytes()
    if _torn_header(data):
        return [], [(1, "the header is incomplete (the first append was cut short)")]
    raw_lines = data.split(b"\n")
    unterminated = raw_lines.pop()   # b"" when the file ends with a line end
    if unterminated:
        raw_lines.append(unterminated)
    n = len(AUDIT_HEADER)
    records, bad = [], []
    for no, raw in enumerate(raw_lines[1:], start=2):
        last = no == len(raw_lines) and bool(unterminated)
        tail = " and it has no line end (an append was cut short)" if last else ""
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            continue
        try:
            fields = next(csv.reader([raw.decode("utf-8")], strict=True))
        except UnicodeDecodeError:
            bad.append((no, f"not UTF-8 text{tail}"))
            continue
        except csv.Error as e:
            bad.append((no, f"not a CSV line ({e}){tail}"))
            continue
        if len(fields) != n:
            bad.append((no, f"{len(fields)} of {n} fields{tail}"))
            continue
        rec = dict(zip(AUDIT_HEADER, fields))
        sha = rec["grading_sha256"]
        if not (rec["customer_id"] and rec["from_tier"] and rec["to_tier"]):
            bad.append((no, f"customer_id, from_tier or to_tier is empty{tail}"))
        elif len(sha) != 64 or not set(sha) <= _SHA256_HEX:
            bad.append((no, f"grading_sha256 {sha!r} is not 64 hex digits{tail}"))
        else:
            records.append((no, fields))
    if records:   # timestamps: one vectorised parse, the failures reported like any broken line
        when = pd.to_datetime(pd.Series([f[0] for _, f in records]), utc=True, format="ISO8601", errors="coerce")
        for (no, f), t in zip(records, when):
            if pd.isna(t):
                bad.append((no, f"timestamp {f[0]!r} is not an ISO date and time"))
        bad.sort()
        broken = {no for no, _ in bad}
        records = [(no, f) for no, f in records if no not in broken]
    return records, bad


def reviewer_changes(audit_log: str | Path, since=None, until=None) -> pd.DataFrame:
    """Tier changes reviewers made (from ≠ to), oldest first: when (UTC), reviewer, customer_id, group,
    from_tier, to_tier, reason, sheet, grading_sha256. ``since`` inclusive, ``until`` exclusive
    (dates or timestamps; naive ones are UTC). A missing audit log → no rows.

    Lines that are not complete records (a crash in the middle of an append leaves one) are skipped
    with an ``AuditLogWarning`` naming each line; their numbers are in ``attrs["skipped_lines"]``. The
    same decision logged again by a re-run apply (same grading sha256, sheet, reviewer, customer,
    tiers and reason) counts once, at its latest time; ``attrs["replayed"]`` counts the lines dropped."""
    audit_log = Path(audit_log)
    cols = ["when"] + [c for c in AUDIT_HEADER if c != "timestamp"]
    empty = pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if c == "when" else "string") for c in cols})
    if not audit_log.is_file() or audit_log.stat().st_size == 0:
        empty.attrs["skipped_lines"] = []
        return empty
    _check_audit_log(audit_log)
    records, bad = _audit_records(audit_log)
    if bad:
        shown = "; ".join(f"line {no}: {why}" for no, why in bad[:20]) + (f"; … and {len(bad) - 20} more"
                                                                            if len(bad) > 20 else "")
        warnings.warn(f"{audit_log}: skipped {len(bad)} line(s) that are not complete audit records ({shown}); "
                      f"{len(records)} record(s) read. The log is never rewritten: a crash during an append "
                      "leaves such a line, and the decisions on it were not applied.", AuditLogWarning, stacklevel=2)
    df = pd.DataFrame([[restore_text(v) for v in f] for _, f in records], columns=list(AUDIT_HEADER), dtype=object)
    df.insert(0, "when", pd.to_datetime(df.pop("timestamp"), utc=True, format="ISO8601"))

    def utc(x):
        t = pd.Timestamp(x)
        return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")

    keep = df["from_tier"] != df["to_tier"]
    if since is not None:
        keep &= df["when"] >= utc(since)
    if until is not None:
        keep &= df["when"] < utc(until)
    out = df.loc[keep, cols].sort_values("when", kind="stable")
    # the audit lines are appended before the approved grading is renamed into place (write-ahead): a run
    # stopped between the two is applied again, which logs the same decisions — on the same grading
    # (sha256), from the same sheet — a second time. They are one decision: the latest line counts.
    replayed = out.duplicated(subset=cols[1:], keep="last")
    out = out.loc[~replayed].reset_index(drop=True)
    for c in cols[1:]:
        out[c] = out[c].astype("string")
    out.attrs["skipped_lines"] = [no for no, _ in bad]
    out.attrs["replayed"] = int(replayed.sum())
    return out
