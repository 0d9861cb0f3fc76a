"""The audit log of the review: reviewers' decisions, sign-offs, leadership's approval or rejection and spot checks, as one hash-chained event log — appended to under a lock, never rewritten, verified line by line, read back per period.

Public: append_events, append_audit, verify_audit, AuditCheck, audit_events, reviewer_changes, period_state,
PeriodState, check_audit_log, audit_timestamp, one_line, AuditLogWarning, AUDIT_HEADER, AUDIT_HEADER_V1, ACTIONS,
EVENT_FIELDS.
Reads: the audit log. Writes: appends to the audit log (nothing in it is ever changed).

The log (``reports/audit_log.csv``, UTF-8 with a BOM for Excel) has one event per physical line under the header
``AUDIT_HEADER``. ``action`` is ``decision`` (a reviewer's decision on one customer), ``signoff`` (a reviewer role
signs off the period's review), ``approved`` / ``rejected`` (leadership on the period's grading) or
``spot_check`` (the monthly check of one customer of the published list; ``reason`` is ``ok`` or ``wrong: …``).

Tamper evidence: ``prev_sha256`` of every line is the sha256 of the exact bytes of the line before it, its
line end included (for the first record: the header line, without the BOM). A changed, removed or inserted
line breaks the link of the line after it, and ``verify_audit`` names that line. The chain alone cannot
notice a change to the *last* line, or the last lines removed: ``AuditCheck.tip`` (the link the next line
will carry) recorded elsewhere — the report's manifest fingerprints the whole log — covers that end.

Logs written before the chain (header ``AUDIT_HEADER_V1``) are still read (every line a decision, ``actor``
the reviewer, no period or scheme), never appended to: ``check_audit_log`` says to move such a file aside.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from segment.errors import SegmentError
from segment.periods import PERIOD_FORMS, is_period, parse_period
from segment.plumbing.atomic import (
    neutralise_text,
    restore_text,
)

try:
    import fcntl  # POSIX: concurrent appends one after the other, each chained to the line before it
except ImportError:  # Windows (conda analysts): O_APPEND alone; two simultaneous appends may break the chain
    fcntl = None

AUDIT_HEADER = ("timestamp", "period", "scheme", "action", "role", "actor", "customer_id", "group", "from_tier",
                "to_tier", "reason", "sheet", "grading_sha256", "prev_sha256")
#: the header of logs written before the hash chain (read, never appended to)
AUDIT_HEADER_V1 = ("timestamp", "reviewer", "customer_id", "group", "from_tier", "to_tier", "reason", "sheet",
                   "grading_sha256")
#: the keys of an event given to ``append_events`` (``timestamp`` optional: now)
EVENT_FIELDS = AUDIT_HEADER[1:-1]
ACTIONS = ("decision", "signoff", "approved", "rejected", "spot_check")
_ON_A_GRADING = ("decision", "signoff", "approved", "rejected")   # grading_sha256 required
_OF_THE_PERIOD = ("signoff", "approved", "rejected")              # period, scheme and role required
_BOM = b"\xef\xbb\xbf"
_HEX = frozenset("0123456789abcdef")


class AuditLogWarning(UserWarning):
    """The audit log holds lines that are not complete records — what a crash in the middle of an append
    leaves behind. They are skipped (never rewritten); the warning names each line."""


def _header_bytes(header: tuple[str, ...] = AUDIT_HEADER) -> bytes:
    return (",".join(header) + "\n").encode("utf-8")


def _is_sha(text: str) -> bool:
    return len(text) == 64 and set(text) <= _HEX


def _link(line: bytes) -> str:
    """The ``prev_sha256`` of the line after ``line`` (its exact bytes, line end included)."""
    return hashlib.sha256(line).hexdigest()


def one_line(text: str) -> str:
    return " ".join(str(text).split()) if ("\n" in str(text) or "\r" in str(text)) else str(text)


def audit_timestamp(when) -> str:
    if when is None:
        ts = datetime.now(timezone.utc)
    else:
        ts = pd.Timestamp(when)
        ts = (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()
    return ts.replace(microsecond=0).isoformat()


# ------------------------------------------------------------------------------------------------
# what the file is
# ------------------------------------------------------------------------------------------------

def _kind_of_start(first: bytes, whole: bool) -> str:
    """'v2', 'v1', 'torn' (the whole file is a header cut short: a crash during the very first append)
    or 'foreign'. ``first``: the first line with its line end (the whole file when ``whole``)."""
    line = first.removeprefix(_BOM)
    for kind, header in (("v2", AUDIT_HEADER), ("v1", AUDIT_HEADER_V1)):
        if line in (_header_bytes(header), _header_bytes(header)[:-1] + b"\r\n"):
            return kind
    if whole and first and not first.endswith(b"\n"):
        for header in (AUDIT_HEADER, AUDIT_HEADER_V1):
            if (_BOM + _header_bytes(header)).startswith(first) or _header_bytes(header).startswith(first):
                return "torn"
    return "foreign"


def _foreign_message(audit_log: Path, first: bytes) -> str:
    return (f"{audit_log}: not a segment audit log (its first line is "
            f"{first.decode('utf-8', 'replace').strip()!r}, expected {','.join(AUDIT_HEADER)!r}); "
            "it is never rewritten: move it aside or pass the right --audit-log. Nothing was applied.")


def _v1_message(audit_log: Path) -> str:
    aside = audit_log.with_name(f"{audit_log.stem}.v1{audit_log.suffix}")
    return (f"{audit_log}: an audit log in the old format (header {','.join(AUDIT_HEADER_V1)!r}, written before "
            "the log was hash-chained); segment never rewrites it and appends only to a chained log: move it "
            f"aside (for example to {aside.name}; it stays the record of those decisions and can still be read) "
            "and run again — a new log starts the chain. Nothing was applied.")


def _log_kind(audit_log: Path) -> tuple[str, bytes]:
    """('none' | 'torn' | 'v1' | 'v2' | 'foreign', the first line)."""
    if not audit_log.is_file() or audit_log.stat().st_size == 0:
        return "none", b""
    with open(audit_log, "rb") as f:
        first = f.readline(1 << 16)
        more = f.read(1)
    return _kind_of_start(first, whole=not more), first


def check_audit_log(audit_log: str | Path) -> None:
    """Before an append: an existing audit log must start with our header (nothing is ever rewritten to
    fix it); a header cut short by a crash during the first append is accepted (the next append completes
    it). A log in the old format (no hash chain) is refused: it is to be moved aside."""
    audit_log = Path(audit_log)
    kind, first = _log_kind(audit_log)
    if kind == "foreign":
        raise SegmentError(_foreign_message(audit_log, first))
    if kind == "v1" or (kind == "torn" and not _completes(first)):
        raise SegmentError(_v1_message(audit_log))


def _completes(start: bytes) -> bytes | None:
    """What completes ``start`` (a header cut short) into our header with its line end; None when ``start``
    is the beginning of the old header only."""
    for full in (_BOM + _header_bytes(), _header_bytes()):
        if full.startswith(start):
            return full[len(start):]
    return None


# ------------------------------------------------------------------------------------------------
# appending
# ------------------------------------------------------------------------------------------------

def _text(v) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    return one_line(str(v))


def _event_problem(rec: dict) -> str:
    """Why ``rec`` (the event's fields, as written in the log or about to be) is not a valid event; ''."""
    action = rec["action"]
    if action not in ACTIONS:
        return f"action {action!r} is not one of {', '.join(ACTIONS)}"
    if rec["period"] and not is_period(rec["period"]):
        return f"period {rec['period']!r} is not a period; write {PERIOD_FORMS}"
    if action == "decision" and not (rec["customer_id"] and rec["from_tier"] and rec["to_tier"]):
        return "customer_id, from_tier or to_tier is empty"
    if not rec["actor"]:
        return f"actor is empty (who made the {action.replace('_', ' ')}?)"
    if action in _OF_THE_PERIOD:
        missing = [k for k in ("period", "scheme", "role") if not rec[k]]
        if missing:
            return f"{' and '.join(missing)} empty: a {action} is on one period's grading, by a role"
    if action == "rejected" and not rec["reason"]:
        return "reason is empty: say why the grading is rejected"
    if action == "spot_check":
        if not (rec["period"] and rec["customer_id"]):
            return "period or customer_id is empty: a spot check is of one customer of a period's list"
        outcome = rec["reason"]
        if not (outcome == "ok" or (outcome.startswith("wrong:") and outcome[len("wrong:"):].strip())):
            return f"reason {outcome!r} is not the outcome: write ok, or wrong: and what is wrong"
    sha = rec["grading_sha256"]
    if (action in _ON_A_GRADING or sha) and not _is_sha(sha):
        return f"grading_sha256 {sha!r} is not 64 hex digits"
    return ""


def _render(audit_log: Path, events: list[dict]) -> list[bytes]:
    """Each event's line without its link (``,prev_sha256\\n``), checked: a bad event raises before
    anything is opened. Text is one line, inert in a spreadsheet."""
    now = audit_timestamp(None)
    stems = []
    for i, event in enumerate(events, start=1):
        unknown = sorted(set(event) - set(EVENT_FIELDS) - {"timestamp"})
        if unknown:
            raise TypeError(f"audit event {i}: unknown key(s) {', '.join(unknown)}; the keys are "
                            f"timestamp, {', '.join(EVENT_FIELDS)}")
        rec = {k: _text(event.get(k)) for k in EVENT_FIELDS}
        what = f"{audit_log}: event {i} ({rec['action'] or 'no action'}{', ' + rec['customer_id'] if rec['customer_id'] else ''})"
        when = event.get("timestamp")
        try:
            stamp = now if when is None or when == "" else audit_timestamp(when)
        except (ValueError, TypeError):
            raise SegmentError(f"{what}: timestamp {when!r} is not a date and time; nothing was logged") from None
        why = _event_problem(rec)
        if why:
            raise SegmentError(f"{what} cannot be logged: {why}. Nothing was logged.")
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([stamp] + [neutralise_text(rec[k]) for k in EVENT_FIELDS])
        stems.append(buf.getvalue()[:-1].encode("utf-8"))
    return stems


def _read_at(fd: int, n: int, offset: int) -> bytes:
    out = b""
    while len(out) < n:
        if hasattr(os, "pread"):
            chunk = os.pread(fd, n - len(out), offset + len(out))
        else:
            os.lseek(fd, offset + len(out), os.SEEK_SET)   # Windows (appends still go to the end: O_APPEND)
            chunk = os.read(fd, n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _last_line(fd: int, size: int) -> tuple[bytes, int]:
    """The file's last physical line (with its line end when it has one) and its offset, read backwards
    from the end in growing blocks: an append costs the same on a log of any length."""
    ends = _read_at(fd, 1, size - 1) == b"\n"
    stop = size - 1 if ends else size   # the line end of the last line is not the one before it
    pos, block, tail = stop, 1 << 12, b""
    while pos > 0:
        start = max(0, pos - block)
        tail = _read_at(fd, pos - start, start) + tail
        pos, block = start, min(block * 2, 1 << 20)
        i = tail.rfind(b"\n")
        if i >= 0:
            return tail[i + 1:] + (b"\n" if ends else b""), pos + i + 1
    return tail + (b"\n" if ends else b""), 0


def _start_under_lock(audit_log: Path, fd: int) -> tuple[bytes, bytes]:
    """(what to write before the new lines, the previous physical line the first new line links to).
    The file is checked again here, under the lock; a torn last line gets its line end (and a warning)."""
    size = os.fstat(fd).st_size
    header = _header_bytes()
    if size == 0:
        return _BOM + header, header
    first = _read_at(fd, min(size, 1 << 10), 0)   # the header is shorter: a longer first line is not ours
    nl = first.find(b"\n")
    first = first[:nl + 1] if nl >= 0 else first
    kind = _kind_of_start(first, whole=nl < 0 and size == len(first))
    if kind == "torn":   # the first append was cut short inside the header: complete it
        rest = _completes(first)
        if rest is None:
            raise SegmentError(_v1_message(audit_log))
        return rest, header
    if kind == "foreign":
        raise SegmentError(_foreign_message(audit_log, first))
    if kind == "v1":
        raise SegmentError(_v1_message(audit_log))
    last, at = _last_line(fd, size)
    if at == 0:
        last = last.removeprefix(_BOM)
    if last.endswith(b"\n"):
        return b"", last
    torn = sum(_read_at(fd, min(1 << 20, at - o), o).count(b"\n") for o in range(0, at, 1 << 20)) + 1
    warnings.warn(f"{audit_log}: line {torn} is an incomplete record (an earlier append was cut short); "
                  "it is kept as it is and skipped by readers, the new lines start on the next line",
                  AuditLogWarning, stacklevel=4)
    return b"\n", last + b"\n"


def append_events(audit_log: str | Path, events: list[dict]) -> None:
    """Append ``events`` (dicts with the keys ``EVENT_FIELDS``, missing ones empty, and an optional
    ``timestamp``: now) as one write under an exclusive lock; the header (with a BOM, for Excel) only into
    an empty file.

    Every event is checked first (a bad one raises SegmentError and nothing is written). Under the lock
    the file's last line is read backwards from the end and each new line links to the one before it.
    One record per physical line (line breaks inside a field become spaces). If a crash cut the previous
    append short, the file does not end with a line end: the new lines then start on a fresh line and the
    torn fragment stays a line of its own (the next line links to it) that readers skip with a warning. A
    header cut short is completed. Nothing already in the file is changed; a log in the old format is
    refused."""
    audit_log = Path(audit_log)
    stems = _render(audit_log, list(events))
    if not stems:
        return
    audit_log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(audit_log, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        body, prev = _start_under_lock(audit_log, fd)
        body = bytearray(body)
        for stem in stems:
            line = stem + b"," + _link(prev).encode("ascii") + b"\n"
            body += line
            prev = line
        view = memoryview(bytes(body))
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def append_audit(audit_log: str | Path, lines: list[tuple]) -> None:
    """``append_events`` for rows given in the header's order without the link: timestamp, period, scheme,
    action, role, actor, customer_id, group, from_tier, to_tier, reason, sheet, grading_sha256."""
    fields = ("timestamp",) + EVENT_FIELDS
    for i, line in enumerate(lines, start=1):
        if len(line) != len(fields):
            raise TypeError(f"audit line {i}: {len(line)} values, expected {len(fields)} ({', '.join(fields)})")
    append_events(audit_log, [dict(zip(fields, line)) for line in lines])


# ------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------

@dataclass
class _Line:
    no: int                   # 1-based, the header is line 1
    raw: bytes                # the physical line as written, with its line end (none on a torn last line)
    rec: dict | None = None   # the event (AUDIT_HEADER's fields, text restored) when the line is a record
    when: pd.Timestamp | None = None
    why: str = ""             # why it is not a record
    cut: bool = False         # it looks like a record cut short (a crash in the middle of an append)
    link: str = ""            # its prev_sha256 as far as it got, when it is cut short inside that field
    blank: bool = False


def _v1_problem(rec: dict) -> str:
    if not (rec["customer_id"] and rec["from_tier"] and rec["to_tier"]):
        return "customer_id, from_tier or to_tier is empty"
    if not _is_sha(rec["grading_sha256"]):
        return f"grading_sha256 {rec['grading_sha256']!r} is not 64 hex digits"
    return ""


def _from_v1(rec: dict) -> dict:
    out = {k: "" for k in AUDIT_HEADER}
    out.update({k: v for k, v in rec.items() if k in out})
    out["actor"], out["action"] = rec["reviewer"], "decision"
    return out


def _parse_line(no: int, raw: bytes, header: tuple[str, ...]) -> _Line:
    """One physical line: a record, or why not. Anything cut short (a crash in the middle of an append) fails
    one of these checks and is never read as an event, never merged with the next line."""
    ln = _Line(no, raw)
    tail = "" if raw.endswith(b"\n") else " and it has no line end (an append was cut short)"
    body = raw.removesuffix(b"\n").removesuffix(b"\r")
    if not body.strip():
        ln.why, ln.blank = "an empty line (segment never writes one)", True
        return ln
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        ln.why = f"not UTF-8 text{tail}"
        ln.cut = any(_decodes(body[:-k]) for k in (1, 2, 3))   # a multi-byte character cut at the end
        return ln
    try:
        fields = next(csv.reader([text], strict=True))
    except csv.Error as e:
        ln.why, ln.cut = f"not a CSV line ({e}){tail}", "unexpected end of data" in str(e)
        return ln
    if len(fields) != len(header):
        ln.why, ln.cut = f"{len(fields)} of {len(header)} fields{tail}", len(fields) < len(header)
        return ln
    rec = {k: restore_text(v) for k, v in zip(header, fields)}
    if header == AUDIT_HEADER_V1:
        why, rec = _v1_problem(rec), _from_v1(rec)
    else:
        why = _event_problem(rec)
        link = rec["prev_sha256"]
        if not why and not _is_sha(link):
            why = f"prev_sha256 {link!r} is not 64 hex digits"
            ln.cut = len(link) < 64 and set(link) <= _HEX
            ln.link = link if ln.cut else ""
    if why:
        ln.why = why + tail
        return ln
    ln.rec = rec
    return ln


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse(audit_log: Path) -> tuple[str, bytes, list[_Line]]:
    """(kind, the first line, every later line parsed). Timestamps: one vectorised parse, a failure
    reported like any broken line."""
    data = audit_log.read_bytes() if audit_log.is_file() else b""
    if not data:
        return "none", b"", []
    nl = data.find(b"\n")
    first = data[:nl + 1] if nl >= 0 else data
    kind = _kind_of_start(first, whole=nl < 0)
    if kind in ("torn", "foreign"):
        return kind, first, []
    header = AUDIT_HEADER if kind == "v2" else AUDIT_HEADER_V1
    parts = data[len(first):].split(b"\n")
    last = parts.pop()   # b"" when the file ends with a line end
    raws = [p + b"\n" for p in parts] + ([last] if last else [])
    lines = [_parse_line(no, raw, header) for no, raw in enumerate(raws, start=2)]
    recs = [ln for ln in lines if ln.rec is not None]
    if recs:
        when = pd.to_datetime(pd.Series([ln.rec["timestamp"] for ln in recs]), utc=True, format="ISO8601",
                              errors="coerce")
        for ln, t in zip(recs, when):
            if pd.isna(t):
                ln.why, ln.rec = f"timestamp {ln.rec['timestamp']!r} is not an ISO date and time", None
            else:
                ln.when = t
    return kind, first, lines


def _read(audit_log: Path) -> tuple[str, list[_Line], list[int]]:
    """(kind, the records, the numbers of the lines skipped). Lines that are not records are skipped with
    one ``AuditLogWarning`` naming each; a file that is not an audit log raises."""
    kind, first, lines = _parse(audit_log)
    if kind == "foreign":
        raise SegmentError(_foreign_message(audit_log, first))
    bad = [(1, "the header is incomplete (the first append was cut short)")] if kind == "torn" else \
        [(ln.no, ln.why) for ln in lines if ln.rec is None and not ln.blank]
    records = [ln for ln in lines if ln.rec is not None]
    if bad:
        shown = "; ".join(f"line {no}: {why}" for no, why in bad[:20]) + (f"; … and {len(bad) - 20} more"
                                                                            if len(bad) > 20 else "")
        warnings.warn(f"{audit_log}: skipped {len(bad)} line(s) that are not complete audit records ({shown}); "
                      f"{len(records)} record(s) read. The log is never rewritten: a crash during an append "
                      "leaves such a line, and the decisions on it were not applied.", AuditLogWarning, stacklevel=4)
    return kind, records, [no for no, _ in bad]


def audit_events(audit_log: str | Path, period=None, scheme=None, actions=None) -> pd.DataFrame:
    """Every event of the log, oldest first (ties in the order written): when (UTC), period, scheme, action,
    role, actor, customer_id, group, from_tier, to_tier, reason, sheet, grading_sha256, and line (its line
    in the file). ``period`` (a string or Period), ``scheme`` (an id or a scheme) and ``actions`` (one or
    several of ``ACTIONS``) keep only those. A missing log → no rows.

    Lines that are not complete records are skipped with an ``AuditLogWarning`` naming each line; their
    numbers are in ``attrs["skipped_lines"]``; ``attrs["format"]`` is 'v2' (chained), 'v1' (old) or ''.
    A log in the old format reads as decisions without period or scheme."""
    audit_log = Path(audit_log)
    if isinstance(actions, str):
        actions = (actions,)
    unknown = sorted(set(actions or ()) - set(ACTIONS))
    if unknown:
        raise SegmentError(f"unknown audit action(s) {', '.join(unknown)}; the actions are {', '.join(ACTIONS)}")
    kind, records, skipped = _read(audit_log)
    cols = {"when": pd.Series([ln.when for ln in records], dtype="datetime64[ns, UTC]")}
    for c in EVENT_FIELDS:
        cols[c] = pd.Series([ln.rec[c] for ln in records], dtype="string")
    cols["line"] = pd.Series([ln.no for ln in records], dtype="int64")
    df = pd.DataFrame(cols)
    keep = pd.Series(True, index=df.index)
    if period is not None:
        keep &= df["period"] == str(period)
    if scheme is not None:
        keep &= df["scheme"] == str(getattr(scheme, "id", scheme))
    if actions is not None:
        keep &= df["action"].isin(list(actions))
    out = df.loc[keep.to_numpy(dtype=bool)].sort_values("when", kind="stable").reset_index(drop=True)
    out.attrs["skipped_lines"] = skipped
    out.attrs["format"] = kind if kind in ("v1", "v2") else ""
    return out


def reviewer_changes(audit_log: str | Path, since=None, until=None) -> pd.DataFrame:
    """Tier changes reviewers made (decisions with from ≠ to), oldest first: when (UTC), reviewer,
    customer_id, group, from_tier, to_tier, reason, sheet, grading_sha256, period, scheme. ``since``
    inclusive, ``until`` exclusive (dates or timestamps; naive ones are UTC). A missing audit log → no rows.

    Lines that are not complete records (a crash in the middle of an append leaves one) are skipped
    with an ``AuditLogWarning`` naming each line; their numbers are in ``attrs["skipped_lines"]``. The
    same decision logged again by a re-run apply (same grading sha256, sheet, reviewer, customer,
    tiers and reason) counts once, at its latest time; ``attrs["replayed"]`` counts the lines dropped."""
    cols = ["when", "reviewer", "customer_id", "group", "from_tier", "to_tier", "reason", "sheet", "grading_sha256",
            "period", "scheme"]
    df = audit_events(audit_log, actions=("decision",)).rename(columns={"actor": "reviewer"})

    def utc(x):
        t = pd.Timestamp(x)
        return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")

    keep = df["from_tier"] != df["to_tier"]
    if since is not None:
        keep &= df["when"] >= utc(since)
    if until is not None:
        keep &= df["when"] < utc(until)
    out = df.loc[keep.to_numpy(dtype=bool), cols]
    # the audit lines are appended before the approved grading is renamed into place (write-ahead): a run
    # stopped between the two is applied again, which logs the same decisions — on the same grading
    # (sha256), from the same sheet — a second time. They are one decision: the latest line counts.
    replayed = out.duplicated(subset=cols[1:], keep="last")
    out = out.loc[~replayed].reset_index(drop=True)
    out.attrs["skipped_lines"] = df.attrs["skipped_lines"]
    out.attrs["replayed"] = int(replayed.sum())
    return out


# ------------------------------------------------------------------------------------------------
# verifying
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditCheck:
    """``verify_audit``'s answer. ``ok``: no line was changed, removed or inserted as far as the chain
    shows (lines cut short by a crash are not changes: they are in ``torn``); ``first_bad_line``: the
    first line that breaks it (every line from there on is unverified); ``tip``: the link the next line
    will carry — kept elsewhere, it covers the last line too."""

    path: str
    ok: bool
    records: int
    first_bad_line: int | None
    why: str
    torn: tuple[int, ...] = ()
    tip: str = ""

    def summary(self) -> str:
        return f"{self.path}: {self.why}"


def _records_word(n: int) -> str:
    return f"{n} record" + ("" if n == 1 else "s")


def verify_audit(audit_log: str | Path) -> AuditCheck:
    """Follow the hash chain from the header to the last line and name the FIRST line that does not
    follow the line before it (that line was changed, or a line was removed or inserted), or that is not
    a valid record. A line cut short by a crash is reported as such, not as a change: the chain runs
    through it (the next append linked to it as it stands). A log in the old format has no chain."""
    path = Path(audit_log)
    kind, first, lines = _parse(path)
    if kind == "none":
        return AuditCheck(str(audit_log), True, 0, None, "no audit log yet (nothing logged)")
    if kind == "foreign":
        return AuditCheck(str(audit_log), False, 0, 1, "line 1 is not the audit log's header; not a segment "
                          f"audit log (expected {','.join(AUDIT_HEADER)!r})")
    if kind == "torn":
        return AuditCheck(str(audit_log), True, 0, None, "no records: the header is incomplete (the first append "
                          "was cut short by a crash; the next append completes it)", torn=(1,))
    n = sum(ln.rec is not None for ln in lines)
    if kind == "v1":
        return AuditCheck(str(audit_log), False, n, None, f"{_records_word(n)} in the old format, written before "
                          "the log was hash-chained: they cannot be verified; move the file aside and a new "
                          "log starts the chain")
    prev, bad, torn, notes = first.removeprefix(_BOM), None, [], []
    for ln in lines:
        expected, before = _link(prev), ln.no - 1
        prev = ln.raw
        if bad is not None:
            continue
        if ln.rec is not None and ln.rec["prev_sha256"] != expected:
            bad = (ln.no, f"line {ln.no} does not follow line {before} (line {before} was changed, or a line was "
                          f"removed or inserted after it was written); every line from {ln.no} on is unverified")
        elif ln.rec is not None:
            if not ln.raw.endswith(b"\n"):
                notes.append(f"line {ln.no} has no line end (an append was cut short just before it; the record "
                             "is complete and the next append adds it)")
        elif ln.cut and not (ln.link and not expected.startswith(ln.link)):
            torn.append(ln.no)
            if not ln.raw.endswith(b"\n"):
                notes.append(f"line {ln.no} is incomplete: the last append was cut short (a crash, not a change); "
                             "it is no record, and the next append starts on a fresh line")
            else:
                notes.append(f"line {ln.no} is an incomplete record left by a crash (no record; the chain runs "
                             "through it)" + ("" if ln.link else f", so no later line covers line {before}"))
        else:
            why = ln.why if not ln.cut else "its prev_sha256 does not start the link to the line before"
            bad = (ln.no, f"line {ln.no} is not a valid record ({why}); every line from {ln.no} on is unverified")
    if bad is not None:
        return AuditCheck(str(audit_log), False, n, bad[0], bad[1], tuple(torn))
    why = f"{_records_word(n)}, the chain holds" + "".join(f"; {note}" for note in notes)
    return AuditCheck(str(audit_log), True, n, None, why, tuple(torn), _link(prev))


# ------------------------------------------------------------------------------------------------
# the period's approval state
# ------------------------------------------------------------------------------------------------

def _roles_text(roles, signoffs: dict | None = None) -> str:
    names = [f"{r} ({signoffs[r][0]})" if signoffs else r for r in roles]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _day(t) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class PeriodState:
    """Where the period's review stands: ``state`` is draft (nothing yet, sign-offs incomplete, or the
    grading changed after them), signed_off (every required role, no decision by leadership yet),
    approved or rejected (the latest of the two). ``signoffs``: role → (name, when); ``waiting``: the
    required roles that have not signed off; ``voided``: what a later decision undid (for ``text``)."""

    period: str
    scheme: str
    state: str
    signoffs: dict = field(default_factory=dict)
    waiting: tuple[str, ...] = ()
    decided_by: str = ""
    decided_role: str = ""
    decided_at: pd.Timestamp | None = None
    reason: str = ""
    voided: str = ""
    approver_role: str = "leadership"

    def text(self) -> str:
        """One line for a banner or an index."""
        by = f"{self.decided_by} ({self.decided_role})" if self.decided_role else self.decided_by
        if self.state == "approved":
            unsigned = f", without the sign-off of {_roles_text(self.waiting)}" if self.waiting else ""
            return f"Approved by {by} on {_day(self.decided_at)}{unsigned}"
        if self.state == "rejected":
            return f"REJECTED by {by} on {_day(self.decided_at)}: {self.reason}"
        signed = [r for r in self.signoffs]
        if self.state == "signed_off":
            return (f"SIGNED OFF — not yet approved: {_roles_text(signed, self.signoffs)} signed off the review; "
                    f"waits for {self.approver_role or 'the approval'}")
        text = "DRAFT — not approved: " + (f"{self.voided}; " if self.voided else "")
        if signed:
            return text + (f"the review is signed off by {_roles_text(signed, self.signoffs)} and waits for "
                           f"{_roles_text(self.waiting)}")
        return text + (f"no sign-off yet (waits for {_roles_text(self.waiting)})" if self.waiting else
                       f"waits for {self.approver_role or 'the approval'}")


def _voided_note(signoffs: dict, decided: tuple | None, r) -> str:
    if decided is not None:
        what = f"the {'approval' if decided[0] == 'approved' else 'rejection'} by {decided[1]} on {_day(decided[3])}"
    else:
        what = f"the sign-off by {_roles_text(list(signoffs), signoffs)}"
    return (f"{what} no longer holds: the grading changed after it ({r.actor}'s decision on {r.customer_id}, "
            f"{_day(r.when)})")


def period_state(audit_log: str | Path, period, scheme, grading_sha256: str | None = None,
                 roles=("sales_head", "service_head"), approver_role: str | None = "leadership") -> PeriodState:
    """The approval state of ``period``'s grading under ``scheme`` (an id or a scheme), from the log in the
    order written. A sign-off counts for its role (one of ``roles``; the latest per role); an approval or
    rejection counts when its role is ``approver_role`` (None: any), the latest of the two wins. A decision
    logged after sign-offs or a decision of leadership voids them: the grading changed (back to draft).
    With ``grading_sha256``, sign-offs, approvals and rejections of another grading do not count."""
    period = str(parse_period(period, said="period"))
    scheme = str(getattr(scheme, "id", scheme))
    roles = tuple(roles)
    ev = audit_events(audit_log, period=period, scheme=scheme).sort_values("line", kind="stable")
    signoffs: dict[str, tuple[str, pd.Timestamp]] = {}
    decided, voided, stale = None, "", None
    for r in ev.itertuples(index=False):
        if r.action == "decision":
            if signoffs or decided is not None:
                voided, signoffs, decided = _voided_note(signoffs, decided, r), {}, None
            continue
        if r.action not in _OF_THE_PERIOD:
            continue
        if grading_sha256 and r.grading_sha256 != grading_sha256:   # of an earlier version of the grading
            if r.action != "signoff":
                stale = (r.action, r.actor, r.when)
            continue
        if r.action == "signoff" and r.role in roles:
            signoffs[r.role], voided = (r.actor, r.when), ""
        elif r.action != "signoff" and (approver_role is None or r.role == approver_role):
            decided, voided = (r.action, r.actor, r.role, r.when, r.reason), ""
    signoffs = {role: signoffs[role] for role in roles if role in signoffs}
    waiting = tuple(role for role in roles if role not in signoffs)
    state = decided[0] if decided else ("signed_off" if roles and not waiting else "draft")
    if decided is None and stale is not None and not voided:
        voided = (f"the {'approval' if stale[0] == 'approved' else 'rejection'} by {stale[1]} on {_day(stale[2])} "
                  "was of an earlier version of the grading, which has changed since")
    return PeriodState(period, scheme, state, signoffs, waiting, *(decided[1:] if decided else ("", "", None, "")),
                       voided=voided, approver_role=approver_role or "")
