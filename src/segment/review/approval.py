"""Sign-offs and approval of a period's grading: the reviewer roles sign off the review, leadership approves or rejects, the monthly spot check of the published list — each recorded in the audit log.

Public: sign_off, decide, period_status, banner, spot_check_sample, apply_spot_check, spot_checks, SPOT_CHECK_COLUMNS, SPOT_CHECK_FILE.
Reads: a period's reports folder (manifest, published grading), the audit log, params/reports.yaml's `review:`.
Writes: appends to the audit log; the spot-check sheet (spot_check.csv).

SEEDS step 5 and 7, S4's process: the sample is re-checked jointly by the sales head and the service
head (``review.signoff_roles``), who each sign off; leadership (``review.approver_role``) approves the
grading before it is archived and published, or rejects it with a reason; the published list is
spot-checked monthly (``review.spot_check_size`` customers). Every step is a line of the audit log,
with period, scheme, role, name and time, chained to the line before it (``segment.review.audit``).
A sign-off or approval is of one grading (its sha256): a decision applied after it voids it, and
``period_status`` says so. Until a period is approved, its reports carry a DRAFT banner.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from segment.errors import SegmentError
from segment.paths import AUDIT_LOG, QuarterFiles
from segment.periods import parse_period
from segment.plumbing.atomic import sha256_file, write_csv
from segment.review.audit import AuditCheck, PeriodState, append_events, audit_events, period_state, verify_audit
from segment.review.params import ReviewParams
from segment.review.select import read_grading, texts_of

SPOT_CHECK_COLUMNS = ("customer_id", "name", "tier", "tier_label", "score", "explanation", "result", "note", "checker")
SPOT_CHECK_FILE = "spot_check.csv"


def _manifest(folder: Path) -> dict:
    files = QuarterFiles(folder)
    if not files.grading.is_file():
        raise SegmentError(f"{files.grading} not found; run `make report PERIOD={folder.name}` first")
    try:
        return json.loads(files.manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SegmentError(f"{files.manifest}: cannot read it ({e}); rebuild the period with `make report "
                           f"PERIOD={folder.name}`") from None


def banner(audit_log: Path, period: str, scheme_id: str, grading: Path, params: ReviewParams,
           check: AuditCheck | None = None) -> dict:
    """What every report of a period and the index say of it: {state, text, audit_ok}. The approval
    state of ``grading`` (its sha256) in the audit log; when the log's chain breaks (``check``, else
    verified here) the state is audit_broken and the text names the first line that does not follow."""
    state = period_state(audit_log, period, scheme_id, sha256_file(grading), roles=params.signoff_roles,
                         approver_role=params.approver_role)
    check = check if check is not None else verify_audit(audit_log)
    if not check.ok:   # what the log says can no longer be trusted: every report says so
        return {"state": "audit_broken", "text": f"{state.text()} — AUDIT LOG CHANGED: {check.summary()}",
                "audit_ok": False}
    return {"state": state.state, "text": state.text(), "audit_ok": True}


def period_status(folder: Path, params: ReviewParams, audit_log: Path | None = None,
                  grading: Path | None = None) -> PeriodState:
    """The approval state of the period whose reports are in ``folder``: of its published grading
    (``grading``, default the approved one when reviewed, else the computed one) under its scheme."""
    folder = Path(folder)
    m = _manifest(folder)
    log = audit_log if audit_log is not None else folder.parent / AUDIT_LOG
    sha = sha256_file(grading if grading is not None else QuarterFiles(folder).latest_grading())
    return period_state(log, folder.name, m.get("scheme", ""), sha, roles=params.signoff_roles,
                        approver_role=params.approver_role)


def sign_off(folder: Path, role: str, name: str, params: ReviewParams, when=None) -> PeriodState:
    """``name``, in ``role`` (one of ``params.signoff_roles``), signs off the review of the period in
    ``folder``: of its published grading as it is now. Returns the state after it."""
    folder = Path(folder)
    m = _manifest(folder)
    if role not in params.signoff_roles:
        raise SegmentError(f"--role {role!r} does not sign off reviews; the roles are "
                           f"{', '.join(params.signoff_roles)} (params/reports.yaml review.signoff_roles)")
    if not name.strip():
        raise SegmentError("--name is empty; write the name of the person signing off")
    grading = QuarterFiles(folder).latest_grading()
    append_events(folder.parent / AUDIT_LOG, [{
        "period": folder.name, "scheme": m.get("scheme", ""), "action": "signoff", "role": role,
        "actor": name.strip(), "sheet": grading.name, "grading_sha256": sha256_file(grading),
        **({"timestamp": when} if when is not None else {})}])
    return period_status(folder, params)


def decide(folder: Path, name: str, params: ReviewParams, *, reject: bool = False, reason: str = "",
           role: str | None = None, when=None) -> PeriodState:
    """Leadership approves (or with ``reject`` rejects, saying why) the grading of the period in
    ``folder``. An approval needs every sign-off of ``params.signoff_roles`` on the grading as it is
    now; a rejection does not. Returns the state after it."""
    folder = Path(folder)
    m = _manifest(folder)
    role = role or params.approver_role
    if role != params.approver_role:
        raise SegmentError(f"--role {role!r} does not approve gradings; {params.approver_role} does "
                           "(params/reports.yaml review.approver_role)")
    if not name.strip():
        raise SegmentError("--name is empty; write the name of the person approving")
    if reject and not reason.strip():
        raise SegmentError("--reason is empty: a rejection says why, so that the reviewers can act on it")
    state = period_status(folder, params)
    if not reject and state.waiting:
        raise SegmentError(
            f"the {folder.name} grading cannot be approved yet: {state.text()}. Each reviewer signs off with "
            f"`segment review signoff --period {folder.name} --role ROLE --name NAME` "
            f"(waiting: {', '.join(state.waiting)})")
    grading = QuarterFiles(folder).latest_grading()
    append_events(folder.parent / AUDIT_LOG, [{
        "period": folder.name, "scheme": m.get("scheme", ""), "action": "rejected" if reject else "approved",
        "role": role, "actor": name.strip(), "reason": reason.strip(), "sheet": grading.name,
        "grading_sha256": sha256_file(grading), **({"timestamp": when} if when is not None else {})}])
    return period_status(folder, params)


def spot_check_sample(folder: Path, params: ReviewParams, size: int | None = None) -> Path:
    """The spot-check sheet of the period in ``folder``: ``size`` (default ``params.spot_check_size``)
    customers drawn at random from its published list (seeded by the period, so a rerun draws the
    same), with empty ``result`` (ok / wrong), ``note`` and ``checker`` to fill. Written to
    ``spot_check.csv`` in the folder; one that already holds results is never overwritten."""
    folder = Path(folder)
    _manifest(folder)
    out = folder / SPOT_CHECK_FILE
    if out.is_file():
        filled = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        if "result" in filled and (filled["result"].str.strip() != "").any():
            raise SegmentError(f"{out} already holds results; apply it with `segment review spot-check apply {out}`, "
                               "or move it aside to draw a new sample")
    g = read_grading(QuarterFiles(folder).latest_grading())
    n = min(int(size or params.spot_check_size), len(g))
    if n < 1:
        raise SegmentError(f"{folder.name}: the published list is empty; nothing to spot-check")
    seed = int.from_bytes(folder.name.encode("utf-8"), "little") % (2**32)
    pick = np.sort(np.random.default_rng([params.seed, seed]).choice(len(g), size=n, replace=False))
    s = g.iloc[pick].reset_index(drop=True)
    sheet = pd.DataFrame({c: texts_of(s[c]) if c in s else "" for c in SPOT_CHECK_COLUMNS})
    write_csv(sheet, out)
    return out


def apply_spot_check(sheet: Path, folder: Path, when=None) -> dict:
    """Record a filled spot-check sheet in the audit log: one line per checked customer (``result`` ok,
    or wrong with a ``note`` saying what is wrong; a ``checker``). Every problem is listed at once and
    nothing is logged on error. Returns the counts {checked, ok, wrong}."""
    sheet, folder = Path(sheet), Path(folder)
    m = _manifest(folder)
    try:
        df = pd.read_csv(sheet, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise SegmentError(f"{sheet}: cannot read the spot-check sheet ({str(e).splitlines()[0]}); export a "
                           "fresh one with `segment review spot-check export`") from None
    missing = [c for c in ("customer_id", "result", "note", "checker") if c not in df]
    if missing:
        raise SegmentError(f"{sheet}: missing column(s) {', '.join(missing)}; export a fresh sheet with "
                           "`segment review spot-check export`. Nothing was logged.")
    df = df.apply(lambda c: c.str.strip())
    result = df["result"].str.lower().map(lambda v: {"是": "ok", "对": "ok", "错": "wrong", "否": "wrong"}.get(v, v))
    listed = set(texts_of(read_grading(QuarterFiles(folder).latest_grading())["customer_id"]))
    problems = []
    for i, (cid, res, note, who) in enumerate(zip(df["customer_id"], result, df["note"], df["checker"]), start=2):
        if res == "":
            continue
        if cid not in listed:
            problems.append(f"  row {i}: customer {cid!r} is not in the {folder.name} list")
        if res not in ("ok", "wrong"):
            problems.append(f"  row {i}: result {res!r}; write ok or wrong (or leave it empty: not checked)")
        elif res == "wrong" and not note:
            problems.append(f"  row {i}: result is wrong but note is empty; write what is wrong")
        if not who:
            problems.append(f"  row {i}: checker is empty; write your name")
    checked = result != ""
    if not checked.any():
        problems.append("  no row has a result; write ok or wrong in result for each customer you checked")
    if problems:
        raise SegmentError(f"{sheet}: {len(problems)} problem(s); nothing was logged:\n" + "\n".join(problems))
    rows = df[checked]
    outcome = np.where(result[checked] == "ok", "ok", "wrong: " + rows["note"])
    append_events(folder.parent / AUDIT_LOG, [{
        "period": folder.name, "scheme": m.get("scheme", ""), "action": "spot_check", "role": "spot_check",
        "actor": who, "customer_id": cid, "reason": out, "sheet": sheet.name,
        **({"timestamp": when} if when is not None else {})}
        for cid, who, out in zip(rows["customer_id"], rows["checker"], outcome)])
    ok = int((result[checked] == "ok").sum())
    return {"checked": int(checked.sum()), "ok": ok, "wrong": int(checked.sum()) - ok}


def spot_checks(audit_log: Path, period: str) -> dict:
    """The spot checks logged for ``period``: {checked, ok, wrong, last} (last: the latest date)."""
    ev = audit_events(audit_log, period=str(parse_period(period)), actions=["spot_check"])
    if not len(ev):
        return {"checked": 0, "ok": 0, "wrong": 0, "last": ""}
    ok = int((ev["reason"] == "ok").sum())
    return {"checked": len(ev), "ok": ok, "wrong": len(ev) - ok, "last": str(ev["when"].max().date())}
