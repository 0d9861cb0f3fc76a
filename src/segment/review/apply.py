"""Reviewers' decisions applied: the filled sheet checked (every problem at once, nothing written on error), the approved grading written and the audit log appended; decisions held in later gradings until the next review.

Public: apply_review, ApplyResult, hold_decisions, HOLD_NOTE.
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
from segment.grading.engine import row_key
from segment.grading.scheme import Scheme
from segment.plumbing.atomic import (
    atomic_path,
    sha256_file,
    write_csv,
)
from segment.plumbing.result import Result
from segment.review.audit import (
    append_audit,
    audit_timestamp,
    check_audit_log,
    one_line,
)
from segment.review.params import DECISION_COLUMNS
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
                 audit_log: str | Path, when=None) -> ApplyResult:
    """Check a filled-in review sheet, write the approved grading and append to the audit log.

    Every row is checked first; any problem raises SegmentError listing them all (spreadsheet row
    numbers) and nothing is written. A row is decided when confirm or new_tier is filled:
    confirm=yes (new_tier empty or the same tier) confirms; new_tier with another tier (confirm no
    or empty) changes the tier and needs a reason. Decided rows need a reviewer. Blank rows are
    "not reviewed" and not logged. ``grading_path`` may be an approved grading (a second sheet on
    top of the first): earlier decisions on rows this sheet leaves blank are kept.

    Long because every check of the sheet runs before anything is written (all problems at once), then the
    writes happen in one guarded block."""
    sheet, grading_path, out_path, audit_log = Path(sheet), Path(grading_path), Path(out_path), Path(audit_log)
    scheme = as_scheme(scheme)
    info = tier_info(scheme)
    by_label = {v[1]: k for k, v in info.items()}
    df = read_filled_sheet(sheet)
    grading = read_grading(grading_path)
    keys = row_keys(grading)
    need = keys + list(DECISION_COLUMNS)
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
        out[c] = texts_of(out[c]).to_numpy(dtype=object) if c in out.columns else np.full(len(out), "", dtype=object)
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
    stamp = audit_timestamp(when)
    sha = sha256_file(grading_path)
    group = df["group"].to_numpy(dtype=object) if "group" in keys else np.full(len(df), "", dtype=object)
    lines = []
    for i in np.flatnonzero(decided):
        to = new[i] if changes[i] else cur[i]
        lines.append((stamp, one_line(reviewer[i]), cid[i], group[i], cur[i], to, one_line(reason[i]), sheet.name,
                      sha))
    with atomic_path(out_path) as tmp:
        if out_path.suffix.lower() == ".csv":
            write_csv(out, tmp)
        else:
            out.to_parquet(tmp, index=False)
        if lines:
            append_audit(audit_log, lines)   # only once the approved grading is fully written
    changes_df = pd.DataFrame({"customer_id": cid[changes], **({"group": group[changes]} if "group" in keys else {}),
                               "from_tier": cur[changes], "to_tier": new_ids, "reason": reason[changes],
                               "reviewer": reviewer[changes]})
    return ApplyResult(sheet, out_path, audit_log, int((decided & ~changes).sum()), int(changes.sum()),
                       int((~decided).sum()), changes_df)


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

    keys = row_key(current, approved)
    cols = ["review_decision", "reviewed_by", "review_reason"]
    if "review_decision" not in approved.columns or not set(keys) <= set(computed_before.columns):
        return current, pd.DataFrame()
    a = approved[keys + ["tier"] + [c for c in cols + ["held_decision"] if c in approved.columns]].copy()
    for c in keys + ["tier"] + cols + (["held_decision"] if "held_decision" in a else []):
        a[c] = texts_of(a[c])
    renewed = (a["review_decision"] == "confirmed") & (a.get("held_decision", pd.Series("", index=a.index)) != "")
    a = a[(a["review_decision"] == "changed") | renewed]
    info = tier_info(scheme)
    out = current.copy()
    if "held_decision" not in out.columns:
        out["held_decision"] = ""
    out["held_decision"] = texts_of(out["held_decision"]).astype(object)
    if a.empty:
        return out, pd.DataFrame()
    before = computed_before[keys + ["tier"]].copy()
    for c in keys + ["tier"]:
        before[c] = texts_of(before[c])
    now = out[keys + ["tier"]].copy()
    for c in keys + ["tier"]:
        now[c] = texts_of(now[c])
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
