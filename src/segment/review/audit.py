"""The audit log of reviewers' decisions: appended to, never rewritten, checked before every append, read back per period.

Public: reviewer_changes, AuditLogWarning, AUDIT_HEADER.
Reads: the audit log. Writes: appends to the audit log.
"""
from __future__ import annotations

import csv
import io
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from segment.errors import SegmentError
from segment.plumbing.atomic import (
    neutralise_text,
    restore_text,
)

try:
    import fcntl  # POSIX: concurrent applies append one after the other
except ImportError:  # Windows (conda analysts): O_APPEND alone
    fcntl = None

AUDIT_HEADER = ("timestamp", "reviewer", "customer_id", "group", "from_tier", "to_tier", "reason", "sheet",
                "grading_sha256")


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


def check_audit_log(audit_log: Path) -> None:
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


def append_audit(audit_log: Path, lines: list[tuple]) -> None:
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
        w.writerow([neutralise_text(one_line(v)) if isinstance(v, str) else v for v in line])
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
            check_audit_log(audit_log)   # again, under the lock
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


def one_line(text: str) -> str:
    return " ".join(str(text).split()) if ("\n" in str(text) or "\r" in str(text)) else str(text)


def audit_timestamp(when) -> str:
    if when is None:
        ts = datetime.now(timezone.utc)
    else:
        ts = pd.Timestamp(when)
        ts = (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()
    return ts.replace(microsecond=0).isoformat()


def _audit_records(audit_log: Path) -> tuple[list[tuple[int, list[str]]], list[tuple[int, str]]]:
    """The audit log's complete records as (line number, fields), and the lines that are not records
    as (line number, why). Line numbers count the header as line 1.

    A record is one physical line (``append_audit`` writes nothing else) of exactly the header's
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
    check_audit_log(audit_log)
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
