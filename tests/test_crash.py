"""Issue 7, reliability leftovers, with real processes and real crashes:

1. `segment report` interrupted for real (SIGINT / SIGTERM sent to the running CLI process while a notebook
   executes): exit 130, the previous reports byte-identical, no staging folder, the lock free, and the next
   build works; two processes building the same quarter at once: one builds, the other is refused.
2. The audit log survives a crash in the middle of an append (torn bytes, and a writer killed with SIGKILL):
   every complete record is still read, the torn line is skipped with a warning naming it, and the next
   append starts on a fresh line — never merged, never rewritten. The hash chain runs through the torn line:
   verify_audit reports it as torn (a crash, not tampering) and the chain holds after the next append.
3. SQL sources are fingerprinted in the report manifest (URL as written, query, the rows returned), so a
   changed database makes the quarter stale — and no credential from the environment reaches the manifest.
"""
from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from segment.reports import build as reports
from segment.reports import provenance
from segment.review.audit import (
    AUDIT_HEADER,
    AuditLogWarning,
    append_audit,
    append_events,
    reviewer_changes,
    verify_audit,
)
from segment.review.apply import apply_review

from .conftest import ROOT, tiny_s1_grading, write

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs POSIX signals and /proc (Linux)")

Q = "2026Q3"
REPORT_FILES = {"grading.html", "grading.ipynb", "review.html", "review.ipynb", "calibration.html", "calibration.ipynb",
                "grading.parquet", "manifest.json", "follow_ups.xlsx", "calibration/metrics.json",
                "calibration/s1_four_tier.calibrated.yaml", "calibration/s1_four_tier.proposal.yaml"}


# ------------------------------------------------------------------------------------------------
# helpers: real processes
# ------------------------------------------------------------------------------------------------

def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _start(*args: str) -> subprocess.Popen:
    """The CLI as a real process, in its own session (so a failed test can clean up the kernels too)."""
    return subprocess.Popen([sys.executable, "-m", "segment.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:   # only the group of the process this test started
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, out, err


def _report(data: Path, reports_dir: Path, timeout: float = 120) -> tuple[int, str, str]:
    return _finish(_start("report", "--data", str(data), "--reports-dir", str(reports_dir)), timeout)


def _kernels(pid: int) -> list[int]:
    """Child processes of ``pid`` that are Jupyter kernels (papermill starts one per notebook)."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            cmd = (p / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"ipykernel" in cmd:
            found.append(int(p.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _lock_is_free(reports_dir: Path, quarter: str = Q) -> bool:
    with open(reports_dir / f".lock-{quarter}", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def _stale(reports_dir: Path) -> None:
    """A new (empty) audit log: an input of the report, so the next build of the quarter rebuilds it."""
    (reports_dir / "audit_log.csv").write_text(",".join(AUDIT_HEADER) + "\n", encoding="utf-8")


# `demo` (400 customers, seed 7) and `built` (its 2026Q3 reports, built once) come from conftest.py, shared
# read-only with test_reports.py; every test here works on a copy. Real `segment report` processes build in
# full below: the second build after each interrupt, and the two processes racing for one quarter.


# ------------------------------------------------------------------------------------------------
# 1. a real interrupt of `segment report`
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig, during", [("SIGINT", "grading"), ("SIGTERM", "review")])
def test_a_real_signal_while_a_notebook_executes_leaves_the_previous_reports(built, demo, tmp_path, sig, during):
    """SIGINT while the first notebook (grading) executes, SIGTERM while the second (review) executes —
    its predecessor's HTML already in the staging folder. Sent to the CLI process alone (`kill -INT pid`,
    the harder case than a terminal's Ctrl-C, which reaches the kernel too)."""
    rd = tmp_path / "reports"
    shutil.copytree(built[0], rd)
    assert set(_files(rd / Q)) == REPORT_FILES
    _stale(rd)
    before = _files(rd)
    entries = sorted(p.name for p in rd.iterdir())

    proc = _start("report", "--data", str(demo), "--reports-dir", str(rd))
    staging, kernels, deadline = None, [], time.monotonic() + 90
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            found = list(rd.glob(f".staging-{Q}-*"))
            if found:
                staging = found[0]
                kernels = _kernels(proc.pid)
                ready = during == "grading" or (staging / "grading.html").exists()
                if kernels and ready and not (staging / f"{during}.ipynb").exists():
                    break
            time.sleep(0.02)
        assert proc.poll() is None and staging is not None and kernels, "never saw a notebook executing"
        assert staging.name == f".staging-{Q}-{proc.pid}"
        time.sleep(0.3)   # well inside the notebook's cells
        os.kill(proc.pid, getattr(signal, sig))
    finally:
        rc, out, err = _finish(proc, timeout=60)

    assert rc == 130, err
    assert "interrupted: nothing was replaced" in err and "Traceback" not in err
    assert _files(rd) == before   # every previous file byte-identical, index.html and the audit log included
    assert sorted(p.name for p in rd.iterdir()) == entries   # no staging folder, no new lock or temporary file
    assert not list(rd.glob(".staging-*")) and not (rd / Q / "failed").exists()
    assert _lock_is_free(rd)   # the lock file stays between builds (as after any build); nobody holds it
    deadline = time.monotonic() + 15
    while any(_alive(k) for k in kernels) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(k) for k in kernels), "a notebook kernel outlived the interrupted build"

    # the next normal build works, and builds the same grading
    rc, out, err = _report(demo, rd)
    assert rc == 0 and f"wrote the {Q} reports" in out, err
    assert set(_files(rd / Q)) == REPORT_FILES and not list(rd.glob(".staging-*"))
    assert (rd / Q / "grading.parquet").read_bytes() == before[f"{Q}/grading.parquet"]
    manifest = json.loads((rd / Q / "manifest.json").read_text(encoding="utf-8"))
    assert str((rd / "audit_log.csv").resolve()) in manifest["inputs"]


def test_two_processes_building_the_same_quarter_one_builds_the_other_is_refused(demo, tmp_path):
    rd = tmp_path / "reports"
    procs = [_start("report", "--data", str(demo), "--reports-dir", str(rd)) for _ in range(2)]
    results = [_finish(p) for p in procs]
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 2], [r[2][-2000:] for r in results]
    (_, won, _), (_, _, refused) = sorted(results, key=lambda r: r[0])
    assert f"wrote the {Q} reports" in won
    errors = [line for line in refused.splitlines() if line.startswith("error:")]
    assert errors == [(f"error: the {Q} reports are being built by another run (lock {rd / f'.lock-{Q}'}); "
                       "wait for it to finish, then run again")]
    # no corruption: the winner's reports are complete and consistent, nothing half-built is left
    assert set(_files(rd / Q)) == REPORT_FILES and not list(rd.glob(".staging-*")) and _lock_is_free(rd)
    manifest = json.loads((rd / Q / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["quarter"] == Q and len(pd.read_parquet(rd / Q / "grading.parquet")) == manifest["customers"]
    rc, out, err = _report(demo, rd)
    assert rc == 0 and "up to date" in out, err


# ------------------------------------------------------------------------------------------------
# 2. the audit log across a crash in the middle of an append
# ------------------------------------------------------------------------------------------------

SHA = "ab" * 32
HEADER_LINE = (",".join(AUDIT_HEADER) + "\n").encode("utf-8")   # the header line the first record links to
HEADER = b"\xef\xbb\xbf" + HEADER_LINE                           # as a new log starts (with a BOM, for Excel)


def _decision(when: str, actor: str, customer: str, frm: str, to: str, reason: str, sheet: str, sha: str) -> dict:
    return {"timestamp": when, "period": Q, "scheme": "s1_four_tier", "action": "decision", "role": "", "actor": actor,
            "customer_id": customer, "group": "", "from_tier": frm, "to_tier": to, "reason": reason, "sheet": sheet,
            "grading_sha256": sha}


FIRST = _decision("2026-10-01T09:00:00+00:00", "张伟", "C1", "core", "ordinary", "连续两季度无采购", "a.csv", SHA)
CONFIRM = _decision("2026-10-01T09:00:00+00:00", "张伟", "C2", "important", "important", "", "a.csv", SHA)
# quoting (a comma and quotes in the reason) and multi-byte text: a cut can land inside either
TORN = _decision("2026-10-02T10:00:00+00:00", "李娜", "C3", "ordinary", "potential", '高消费, "frequent" complaints',
                 "b.csv", "cd" * 32)
NEXT = _decision("2026-10-03T11:00:00+00:00", "王芳", "C4", "potential", "ordinary", "new contract", "c.csv", "ef" * 32)


def _values(event: dict, **changed: str) -> tuple:
    """The event's 13 values in the header's order without the link: a row of ``append_audit``."""
    event = {**event, **changed}
    return tuple(event[k] for k in AUDIT_HEADER[:-1])


def _link(prev: bytes) -> str:
    return hashlib.sha256(prev).hexdigest()


def _record(prev: bytes, event: dict, **changed: str) -> bytes:
    """The physical line of ``event`` (with ``changed`` fields) chained to the line ``prev`` (its exact bytes,
    line end included) — by hand, for the lines segment refuses to write and to check the bytes it wrote."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([*_values(event, **changed), _link(prev)])
    return buf.getvalue().encode("utf-8")


def _log_and_next(path: Path, events: list[dict], following: dict) -> tuple[bytes, bytes]:
    """A log of ``events`` written by ``append_events``, and the exact bytes the append of ``following``
    writes after it (to cut short anywhere)."""
    append_events(path, events)
    good = path.read_bytes()
    append_events(path, [following])
    return good, path.read_bytes()[len(good):]


def _rows(df: pd.DataFrame) -> list[tuple]:
    return [tuple(r) for r in df[["customer_id", "from_tier", "to_tier", "reason", "reviewer"]].itertuples(index=False)]


def test_every_torn_tail_is_skipped_with_a_warning_and_the_next_append_starts_a_fresh_line(tmp_path):
    """A crash can cut an append after any byte: for every cut point, the complete records are read,
    the fragment is reported (its line number) and never read as a decision, verify_audit calls it torn
    (not a change), and the next append leaves the fragment a line of its own, links to it as it stands
    and the chain holds — the file only grows."""
    good, torn = _log_and_next(tmp_path / "base.csv", [FIRST, CONFIRM], TORN)
    second = _record(HEADER_LINE, FIRST)
    assert good == HEADER + second + _record(second, CONFIRM)   # the chain as documented
    assert torn == _record(_record(second, CONFIRM), TORN)
    first = [("C1", "core", "ordinary", "连续两季度无采购", "张伟")]
    for cut in range(1, len(torn) - 1):   # everything short of the link's last hex digit
        log = tmp_path / f"log{cut}.csv"
        log.write_bytes(good + torn[:cut])
        with pytest.warns(AuditLogWarning, match=r"line 4: .*no line end") as caught:
            df = reviewer_changes(log)
        assert _rows(df) == first and df.attrs["skipped_lines"] == [4], cut
        assert len(caught) == 1
        check = verify_audit(log)
        assert (check.ok, check.records, check.first_bad_line, check.torn) == (True, 2, None, (4,)), (cut, check)
        assert "line 4 is incomplete: the last append was cut short (a crash, not a change)" in check.why, cut
        assert "does not follow" not in check.why, cut

        with pytest.warns(AuditLogWarning, match="line 4 is an incomplete record"):
            append_audit(log, [_values(NEXT)])
        fragment = torn[:cut] + b"\n"
        # appended, never rewritten; the new line links to the fragment as it stands
        assert log.read_bytes() == good + fragment + _record(fragment, NEXT), cut
        with pytest.warns(AuditLogWarning, match=r"skipped 1 line\(s\).*\(line 4: ") as caught:
            df = reviewer_changes(log)
        assert _rows(df) == first + [("C4", "potential", "ordinary", "new contract", "王芳")], cut
        assert df.attrs["skipped_lines"] == [4] and len(caught) == 1
        assert "Traceback" not in str(caught[0].message)
        check = verify_audit(log)
        assert (check.ok, check.records, check.first_bad_line, check.torn) == (True, 3, None, (4,)), (cut, check)
        assert "line 4 is an incomplete record left by a crash" in check.why, cut
        assert check.tip == _link(_record(fragment, NEXT)), cut


def test_a_record_missing_only_its_line_end_counts_before_and_after_the_next_append(tmp_path):
    good, line = _log_and_next(tmp_path / "base.csv", [FIRST], TORN)
    log = tmp_path / "log.csv"
    log.write_bytes(good + line[:-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r[0] for r in _rows(reviewer_changes(log))] == ["C1", "C3"]
    check = verify_audit(log)
    assert (check.ok, check.records, check.torn) == (True, 2, ()) and "line 3 has no line end" in check.why

    with pytest.warns(AuditLogWarning):   # the next append adds the missing line end (and says so)
        append_audit(log, [_values(NEXT)])
    assert log.read_bytes() == good + line + _record(line, NEXT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r[0] for r in _rows(reviewer_changes(log))] == ["C1", "C3", "C4"]
    check = verify_audit(log)
    assert (check.ok, check.records, check.torn) == (True, 3, ()) and check.why == "3 records, the chain holds"


@pytest.mark.parametrize("cut", [1, 3, 4, 20, len(HEADER) - 1])
def test_a_header_cut_short_is_completed_by_the_next_append(tmp_path, cut):
    """A crash during the very first append (header and lines are one write): a log holding only part of
    the header is still ours — no rows, a warning — and the next append completes the header, its first
    record linked to the header line."""
    log = tmp_path / "log.csv"
    log.write_bytes(HEADER[:cut])
    with pytest.warns(AuditLogWarning, match="line 1: the header is incomplete"):
        assert reviewer_changes(log).empty
    check = verify_audit(log)
    assert (check.ok, check.records, check.torn) == (True, 0, (1,)) and "header is incomplete" in check.why

    append_audit(log, [_values(FIRST)])
    assert log.read_bytes() == HEADER + _record(HEADER_LINE, FIRST)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _rows(reviewer_changes(log)) == [("C1", "core", "ordinary", "连续两季度无采购", "张伟")]
    check = verify_audit(log)
    assert (check.ok, check.records, check.torn) == (True, 1, ()) and check.tip == _link(_record(HEADER_LINE, FIRST))


def test_broken_lines_in_the_middle_are_skipped_each_named(tmp_path):
    """Lines that are not complete records between good ones (each linked to the line before it, so the
    readers' reasons are what is tested): skipped, each named by its number and why."""
    lines = [_record(HEADER_LINE, FIRST), b"2026-10-0\n"]               # lines 2 and 3
    lines.append(_record(lines[-1], TORN, to_tier=""))                 # 4
    lines.append(_record(lines[-1], TORN, timestamp="yesterday"))      # 5
    lines.append(_record(lines[-1], TORN, grading_sha256="cd" * 31))   # 6
    lines.append(b"\xe6\x9d\n")                                        # 7
    lines.append(_record(lines[-1], NEXT))                             # 8
    log = tmp_path / "log.csv"
    log.write_bytes(HEADER + b"".join(lines))
    with pytest.warns(AuditLogWarning) as caught:
        df = reviewer_changes(log)
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert _rows(df) == [("C1", "core", "ordinary", "连续两季度无采购", "张伟"),
                         ("C4", "potential", "ordinary", "new contract", "王芳")]
    assert df.attrs["skipped_lines"] == [3, 4, 5, 6, 7]
    for part in ("line 3: 1 of 14 fields", "line 4: customer_id, from_tier or to_tier is empty",
                 "line 5: timestamp 'yesterday'", "line 6: grading_sha256", "line 7: not UTF-8"):
        assert part in msg, part
    # verify_audit: line 3 is a crash's fragment (torn), line 4 the first line that is no valid record
    check = verify_audit(log)
    assert (check.ok, check.first_bad_line, check.torn) == (False, 4, (3,)), check
    assert check.why.startswith("line 4 is not a valid record (customer_id, from_tier or to_tier is empty)")


# a sheet for the tiny grading of s1_four_tier (conftest.tiny_s1_grading): enough for apply_review


def _sheet(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows, columns=["customer_id", "confirm", "new_tier", "reason", "reviewer"]).to_csv(
        path, index=False, encoding="utf-8-sig")
    return path


SLOW_APPLY = textwrap.dedent("""
    import os, sys, time
    import segment.review.apply as review
    import segment.review.audit as audit

    class SlowOS:   # this process's audit appends trickle out 3 bytes at a time
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def write(fd, data):
            n = os.write(fd, bytes(data[:3]))
            time.sleep(0.03)
            return n

    audit.os = SlowOS()  # the audit log's appends
    sheet, grading, scheme, out, log = sys.argv[1:]
    print("applying", flush=True)
    review.apply_review(sheet, grading, scheme, out, log, when="2026-10-02T10:00:00Z")
    print("done", flush=True)
""")


def test_a_writer_killed_mid_append_loses_only_its_own_line(tmp_path):
    """A real process appending to the audit log is killed with SIGKILL half-way through its line: its
    approved grading never appears, the earlier records are read, the torn line is skipped with a
    warning, and the next apply starts on a fresh line."""
    scheme = ROOT / "params" / "schemes" / "s1_four_tier.yaml"
    grading = tiny_s1_grading(tmp_path / "grading.parquet")
    log = tmp_path / "audit_log.csv"
    apply_review(_sheet(tmp_path / "a.csv", [{"customer_id": "C1", "confirm": "no", "new_tier": "ordinary",
                                              "reason": "连续两季度无采购", "reviewer": "张伟"},
                                             {"customer_id": "C2", "confirm": "yes", "reviewer": "张伟"}]),
                 grading, scheme, tmp_path / "approved.parquet", log, when="2026-10-01T09:00:00Z")
    before = log.read_bytes()
    assert before.count(b"\n") == 3

    killed = tmp_path / "killed.parquet"
    sheet = _sheet(tmp_path / "b.csv", [{"customer_id": "C3", "confirm": "no", "new_tier": "potential",
                                         "reason": '高消费, "frequent" complaints', "reviewer": "李娜"}])
    proc = subprocess.Popen([sys.executable, "-c", SLOW_APPLY, str(sheet), str(grading), str(scheme), str(killed),
                             str(log)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if len(log.read_bytes()) > len(before) + 40:   # well into its line, far from the end
                break
            time.sleep(0.005)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        _finish(proc, timeout=30)
    assert proc.returncode == -signal.SIGKILL

    after_kill = log.read_bytes()
    fragment = after_kill[len(before):]
    assert after_kill.startswith(before) and fragment and not fragment.endswith(b"\n") and b"\n" not in fragment
    assert fragment.startswith(b"2026-10-02T10:00:00+00:00,") and not killed.exists()   # nothing applied

    with pytest.warns(AuditLogWarning, match="line 4: .*no line end"):
        assert _rows(reviewer_changes(log)) == [("C1", "core", "ordinary", "连续两季度无采购", "张伟")]
    check = verify_audit(log)   # a crash, not tampering
    assert (check.ok, check.records, check.first_bad_line, check.torn) == (True, 2, None, (4,)), check
    assert "line 4 is incomplete: the last append was cut short (a crash, not a change)" in check.why

    # the next apply (reviewers redo the lost sheet): its line starts on a fresh line
    with pytest.warns(AuditLogWarning, match="line 4 is an incomplete record"):
        apply_review(sheet, tmp_path / "approved.parquet", scheme, tmp_path / "approved.parquet", log,
                     when="2026-10-03T11:00:00Z")
    final = log.read_bytes()
    assert final.startswith(after_kill) and final[len(after_kill):len(after_kill) + 1] == b"\n"
    assert final.count(b"\n") == 5
    check = verify_audit(log)   # the chain runs through the fragment and holds
    assert (check.ok, check.records, check.first_bad_line, check.torn) == (True, 3, None, (4,)), check
    assert check.tip == _link(final.splitlines(keepends=True)[-1])
    with pytest.warns(AuditLogWarning, match=r"skipped 1 line\(s\).*\(line 4: ") as caught:
        df = reviewer_changes(log)
    assert df.attrs["skipped_lines"] == [4] and len(caught) == 1
    assert _rows(df) == [("C1", "core", "ordinary", "连续两季度无采购", "张伟"),
                         ("C3", "ordinary", "potential", '高消费, "frequent" complaints', "李娜")]
    assert str(df["when"].iloc[1]) == "2026-10-03 11:00:00+00:00"
    assert pd.read_parquet(tmp_path / "approved.parquet").set_index("customer_id")["tier"].astype(str).tolist() == \
        ["ordinary", "important", "potential", "potential"]


# ------------------------------------------------------------------------------------------------
# 3. SQL sources in the report manifest
# ------------------------------------------------------------------------------------------------

SECRET = "s3cr3t-Pa55-91c2"


@pytest.fixture
def duck(tmp_path, monkeypatch):
    """transactions from a DuckDB file whose path comes from the environment (the secret rides in it)."""
    folder = tmp_path / f"db-{SECRET}"
    folder.mkdir()
    db = folder / "crm.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create table orders as select * from (values ('C1', date '2026-01-05', 12.5), "
                    "('C2', date '2026-02-01', 20.0), ('C1', date '2026-03-09', 7.25)) t(cust, d, amt)")
    monkeypatch.setenv("SEG_CRASH_DB", str(db))
    data = write(tmp_path / "data.yaml", "tables:\n  transactions:\n    sql:\n      url: duckdb:///${SEG_CRASH_DB}\n"
                 "      query: select cust, d, amt from orders\n    columns: {cust: customer_id, d: date, amt: amount}\n")
    return data, db


def _fingerprint(data: Path) -> dict:
    from segment.data.validate import load_data

    return reports.inputs_fingerprint(data, ROOT / "params" / "schemes" / "rfm_quantiles.yaml", load_data(data))


def test_a_sql_source_is_fingerprinted_by_its_rows(duck):
    data, db = duck
    first = _fingerprint(data)
    key = "duckdb:///${SEG_CRASH_DB}#transactions"
    assert key in first and len(first[key]) == 64
    assert _fingerprint(data) == first   # nothing changed: the same fingerprint

    with duckdb.connect(str(db)) as con:
        con.execute("update orders set amt = 12.75 where cust = 'C1' and d = date '2026-01-05'")
    changed = _fingerprint(data)
    assert changed[key] != first[key]
    assert {k: v for k, v in changed.items() if k != key} == {k: v for k, v in first.items() if k != key}

    with duckdb.connect(str(db)) as con:
        con.execute("update orders set amt = 12.5 where cust = 'C1' and d = date '2026-01-05'")
    assert _fingerprint(data) == first   # back as it was: the content decides, not the file's bytes
    with duckdb.connect(str(db)) as con:
        con.execute("insert into orders values ('C3', date '2026-04-01', 1.0)")
    assert _fingerprint(data)[key] not in (first[key], changed[key])

    text = json.dumps(first, ensure_ascii=False)
    assert SECRET not in text and str(db) not in text and "${SEG_CRASH_DB}" in text


def test_the_query_is_part_of_a_sql_fingerprint(duck):
    data, _ = duck
    first = _fingerprint(data)
    other = write(data.parent / "data.yaml", data.read_text(encoding="utf-8").replace(
        "from orders", "from orders where amt > 10"))
    key = "duckdb:///${SEG_CRASH_DB}#transactions"
    assert _fingerprint(other)[key] != first[key]


def test_a_password_written_into_a_url_is_masked_in_the_manifest():
    assert provenance._url_as_written("postgresql://${CRM_USER}:${CRM_PASSWORD}@crm-db/crm") == \
        "postgresql://${CRM_USER}:${CRM_PASSWORD}@crm-db/crm"
    assert provenance._url_as_written("postgresql://analyst:hunter2@crm-db/crm") == "postgresql://analyst:***@crm-db/crm"
    assert provenance._url_as_written("duckdb:///${SEG_DB}") == "duckdb:///${SEG_DB}"
    assert provenance._url_as_written("mysql+pymysql://u:${P}x@h/db") == "mysql+pymysql://u:***@h/db"


class _Rebuilt(Exception):
    """The build went past the up-to-date check: it started grading."""


def test_a_report_over_a_database_is_stale_when_a_row_changes(demo, tmp_path, monkeypatch):
    """End to end: the demo's transactions in a DuckDB file behind ${VAR}; nothing changed → up to date; one
    amount changed in the database → rebuilt (the rebuild is stopped where it starts grading: the first
    build already went the whole way). No file holds the database's path."""
    folder = tmp_path / f"db-{SECRET}"
    folder.mkdir()
    db = folder / "crm.duckdb"
    tx = pd.read_parquet(demo.parent / "transactions.parquet")
    with duckdb.connect(str(db)) as con:
        con.register("tx", tx)
        con.execute("create table orders as select * from tx")
    for f in demo.parent.iterdir():
        if f.suffix in (".csv", ".parquet", ".yaml") and f.name not in ("transactions.parquet", "data.yaml"):
            shutil.copy(f, tmp_path / f.name)
    cfg = demo.read_text(encoding="utf-8").replace(
        "transactions: {path: transactions.parquet}",
        "transactions: {sql: {url: 'duckdb:///${SEG_CRASH_DB}', query: 'select * from orders order by all'}}")
    data = write(tmp_path / "data.yaml", cfg)
    monkeypatch.setenv("SEG_CRASH_DB", str(db))
    rd = tmp_path / "reports"

    first = reports.build_reports(data=data, reports_dir=rd)
    assert not first.skipped
    manifest = (rd / Q / "manifest.json").read_text(encoding="utf-8")
    assert "duckdb:///${SEG_CRASH_DB}#transactions" in json.loads(manifest)["inputs"]
    assert reports.build_reports(data=data, reports_dir=rd).skipped

    with duckdb.connect(str(db)) as con:
        con.execute("update orders set amount = amount + 1000 where order_id = (select min(order_id) from orders)")
    quarters = []

    def prepare(loaded, scheme_path, quarter, **kwargs):
        quarters.append(quarter)
        raise _Rebuilt(quarter)

    monkeypatch.setattr("segment.reports.build.prepare_grading_report", prepare)  # where the build looks it up
    with pytest.raises(_Rebuilt):
        reports.build_reports(data=data, reports_dir=rd)
    assert quarters == [Q] and not list(rd.glob(".staging-*"))
    for f in rd.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f


def test_an_apply_stopped_between_the_audit_and_the_rename_is_applied_again_and_counted_once(tmp_path, monkeypatch):
    """The audit lines are written ahead of the approved grading's rename. Stopped in between, nothing is
    approved yet; applying the sheet again logs the same decision a second time, and the next report's
    reviewer changes count it once (the latest line)."""
    from segment.plumbing import atomic

    scheme = ROOT / "params" / "schemes" / "s1_four_tier.yaml"
    grading = tiny_s1_grading(tmp_path / "grading.parquet")
    log = tmp_path / "audit_log.csv"
    approved = tmp_path / "approved.parquet"
    sheet = _sheet(tmp_path / "a.csv", [{"customer_id": "C3", "confirm": "no", "new_tier": "potential",
                                         "reason": "三个月无订单", "reviewer": "李娜"}])

    class StopAtRename:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def replace(src, dst):
            raise KeyboardInterrupt  # Ctrl-C right after the audit append, before the rename

    monkeypatch.setattr(atomic, "os", StopAtRename())
    with pytest.raises(KeyboardInterrupt):
        apply_review(sheet, grading, scheme, approved, log, when="2026-10-02T10:00:00Z")
    monkeypatch.undo()
    assert not approved.exists() and log.read_bytes().count(b"\n") == 2   # header + the decision, written ahead
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    apply_review(sheet, grading, scheme, approved, log, when="2026-10-02T10:05:00Z")
    assert log.read_bytes().count(b"\n") == 3
    df = reviewer_changes(log)
    assert _rows(df) == [("C3", "ordinary", "potential", "三个月无订单", "李娜")]
    assert str(df["when"].iloc[0]) == "2026-10-02 10:05:00+00:00" and df.attrs["replayed"] == 1
    assert pd.read_parquet(approved).set_index("customer_id").loc["C3", "tier"] == "potential"
