"""Reviewers' decisions applied: the filled sheet checked (every problem at once, nothing written on error), the approved grading written (with each decision's expiry) and the audit log appended; segment.review.decisions carries them into later gradings.

Public: apply_review, ApplyResult.
Reads: the review sheet, the grading, the audit log. Writes: the approved grading, the audit log.

The loop (SEEDS step 5, S4's process): ``segment.review.select`` picks the customers to re-check,
``segment.review.sheet`` writes the sheet, this module applies it, ``segment.review.audit`` keeps the log.
Grouped schemes (S8: one row per customer and product line) are keyed by customer_id + group.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segment.errors import SegmentError
from segment.plumbing.atomic import (
    atomic_path,
    sha256_file,
    write_csv,
)
from segment.plumbing.result import Result
from segment.review.audit import (
    append_events,
    audit_timestamp,
    check_audit_log,
    one_line,
)
from segment.review.decisions import set_tiers
from segment.periods import is_period, parse_period
from segment.review.params import REQUIRED_DECISION_COLUMNS
from segment.review.select import as_scheme, read_grading, row_keys, texts_of, tier_info
from segment.review.sheet import read_filled_sheet


@dataclass
class ApplyResult(Result):
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

    def table(self) -> pd.DataFrame:
        return self.changes

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


def apply_review(sheet: str | Path, grading_path: str | Path, scheme, out_path: str | Path,
                 audit_log: str | Path, when=None, *, period: str = "") -> ApplyResult:
    """Check a filled-in review sheet, write the approved grading and append to the audit log.

    Every row is checked first; any problem raises SegmentError listing them all (spreadsheet row
    numbers) and nothing is written. A row is decided when confirm or new_tier is filled:
    confirm=yes (new_tier empty or the same tier) confirms; new_tier with another tier (confirm no
    or empty) changes the tier and needs a reason. Decided rows need a reviewer. Blank rows are
    "not reviewed" and not logged. ``grading_path`` may be an approved grading (a second sheet on
    top of the first): earlier decisions on rows this sheet leaves blank are kept. Each decision is
    logged as a ``decision`` event of ``period`` (e.g. 2026Q3; may be empty) and the scheme, by the
    reviewer (in the role of the sheet's ``role`` column, when it has one).

    Long because every check of the sheet runs before anything is written (all problems at once), then the
    writes happen in one guarded block."""
    sheet, grading_path, out_path, audit_log = Path(sheet), Path(grading_path), Path(out_path), Path(audit_log)
    scheme = as_scheme(scheme)
    info = tier_info(scheme)
    by_label = {v[1]: k for k, v in info.items()}
    df = read_filled_sheet(sheet)
    grading = read_grading(grading_path)
    keys = row_keys(grading)
    need = keys + list(REQUIRED_DECISION_COLUMNS)
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise SegmentError(f"{sheet}: missing column(s) {', '.join(missing)}; the sheet needs "
                           f"{', '.join(need)} (export a fresh one with `segment review export`). Nothing was applied.")
    check_audit_log(audit_log)
    # rows with nothing at all in them (Excel leaves some at the end) are ignored
    df = df[(df != "").any(axis=1)]
    g = grading.reset_index(drop=True)
    gkey = g[keys].apply(texts_of)
    gindex = pd.MultiIndex.from_frame(gkey) if len(keys) > 1 else pd.Index(gkey["customer_id"])
    if not gindex.is_unique:
        raise SegmentError(f"{grading_path}: the grading has a customer twice ({', '.join(keys)}); "
                           "it is not a grading segment wrote")
    skey = pd.MultiIndex.from_frame(df[keys]) if len(keys) > 1 else pd.Index(df["customer_id"])
    pos = gindex.get_indexer(skey)
    gtier = texts_of(g["tier"]).to_numpy(dtype=object)

    # 是/否 (and y/n, true/false, 1/0) read like yes/no: sheets are filled by Chinese-speaking heads too
    said = {"是": "yes", "否": "no", "y": "yes", "n": "no", "true": "yes", "false": "no", "1": "yes", "0": "no",
            "对": "yes", "确认": "yes", "不对": "no"}
    confirm = df["confirm"].str.strip().str.lower().map(lambda v: said.get(v, v)).to_numpy(dtype=object)
    new_raw = df["new_tier"].to_numpy(dtype=object)
    new = np.array([v if v in info else by_label.get(v, v) for v in new_raw], dtype=object)   # ids or labels
    reason = df["reason"].to_numpy(dtype=object)
    reviewer = df["reviewer"].to_numpy(dtype=object)
    expires_raw = df["expires"].to_numpy(dtype=object) if "expires" in df.columns else np.full(len(df), "", dtype=object)
    expires = _expiry_dates(expires_raw)   # "" where empty, None where not a date or a period
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
    has_exp = expires_raw != ""
    bad_exp = np.array([e is None for e in expires], dtype=bool)
    check(bad_exp, f"expires {_examples(expires_raw[bad_exp])} is not a date (2027-03-31) or a period (2027Q1, "
          "2027-03, 2027H1, 2027); write one, or leave it empty (the decision holds until the next regular review)")
    check(has_exp & ~decided, "expires is filled but confirm and new_tier are empty; expires goes with a decision")
    held_now = texts_of(g["decision_tier"]).to_numpy(dtype=object) if "decision_tier" in g.columns else \
        np.full(len(g), "", dtype=object)
    is_held = np.where(known, held_now[np.maximum(pos, 0)] if len(held_now) else "", "") != ""
    check(has_exp & ~bad_exp & decided & ~changes & ~is_held,
          "expires is filled on a confirmed tier no reviewer set; expires goes with a changed tier (or with "
          "confirming a tier a reviewer set earlier, to renew it)")
    if period:
        end = parse_period(period).end
        early = np.array([isinstance(e, str) and e != "" and pd.Timestamp(e) <= end for e in expires], dtype=bool)
        check(early, f"expires {_examples(expires_raw[early])} is not after the end of {period} ({end.date()}): a "
              "decision holds in later gradings; write a later date, or leave it empty (until the next regular review)")
    check(~decided & (reason != ""), "reason is filled but confirm and new_tier are empty; write yes in confirm, "
          "or no and the new tier in new_tier")
    if problems:
        raise SegmentError(f"{sheet}: {len(problems)} problem(s); nothing was applied or logged:\n"
                           + "\n".join(line for _, line in sorted(problems, key=lambda p: p[0])))

    # the approved grading
    out = g.copy()
    for c in ("review_decision", "reviewed_by", "review_reason"):
        out[c] = texts_of(out[c]).to_numpy(dtype=object) if c in out.columns else np.full(len(out), "", dtype=object)
    rows_changed = pos[changes]
    rows_confirmed = pos[decided & ~changes]
    rows_blank = pos[~decided]
    new_ids = new[changes]
    if len(rows_changed):
        set_tiers(out, rows_changed, list(new_ids), info)
    dec = out["review_decision"].to_numpy(dtype=object)
    by = out["reviewed_by"].to_numpy(dtype=object)
    why = out["review_reason"].to_numpy(dtype=object)
    dec[rows_blank] = np.where(dec[rows_blank] == "", "not reviewed", dec[rows_blank])
    kept = decided & ~changes
    dec[rows_confirmed], by[rows_confirmed], why[rows_confirmed] = "confirmed", reviewer[kept], reason[kept]
    dec[rows_changed], by[rows_changed], why[rows_changed] = "changed", reviewer[changes], reason[changes]
    exp = texts_of(out["review_expires"]).to_numpy(dtype=object) if "review_expires" in out.columns else \
        np.full(len(out), "", dtype=object)
    exp[pos[decided]] = np.array([e if isinstance(e, str) else "" for e in expires[decided]], dtype=object)
    out["review_expires"] = pd.array(exp, dtype="string")
    out["review_decision"] = pd.array(dec, dtype="string")
    out["reviewed_by"] = pd.array(by, dtype="string")
    out["review_reason"] = pd.array(why, dtype="string")

    # the audit lines, in sheet order
    stamp = audit_timestamp(when)
    sha = sha256_file(grading_path)
    group = df["group"].to_numpy(dtype=object) if "group" in keys else np.full(len(df), "", dtype=object)
    role = df["role"].to_numpy(dtype=object) if "role" in df.columns else np.full(len(df), "", dtype=object)
    lines = [{"timestamp": stamp, "period": period, "scheme": scheme.id, "action": "decision",
              "role": one_line(role[i]), "actor": one_line(reviewer[i]), "customer_id": cid[i], "group": group[i],
              "from_tier": cur[i], "to_tier": new[i] if changes[i] else cur[i], "reason": one_line(reason[i]),
              "sheet": sheet.name, "grading_sha256": sha} for i in np.flatnonzero(decided)]
    with atomic_path(out_path) as tmp:
        if out_path.suffix.lower() == ".csv":
            write_csv(out, tmp)
        else:
            out.to_parquet(tmp, index=False)
        if lines:
            append_events(audit_log, lines)   # only once the approved grading is fully written
    changes_df = pd.DataFrame({"customer_id": cid[changes], **({"group": group[changes]} if "group" in keys else {}),
                               "from_tier": cur[changes], "to_tier": new_ids, "reason": reason[changes],
                               "reviewer": reviewer[changes]})
    return ApplyResult(sheet, out_path, audit_log, int((decided & ~changes).sum()), int(changes.sum()),
                       int((~decided).sum()), changes_df)


def _expiry_dates(raw: np.ndarray) -> np.ndarray:
    """The sheet's ``expires`` cells as ISO dates: a date as written (YYYY-MM-DD, or a date Excel
    stored), a period as its last day; "" where empty, None where it is neither."""
    out = np.full(len(raw), "", dtype=object)
    for i, v in enumerate(raw):
        v = str(v).strip()
        if not v:
            continue
        if is_period(v):
            out[i] = str(parse_period(v).end.date())
            continue
        t = pd.to_datetime(v[:10], format="%Y-%m-%d", errors="coerce")
        out[i] = None if pd.isna(t) else str(t.date())
    return out
