"""The audit log as an append-only, tamper-evident event log (issue 16, deliverable 3): the hash chain,
verify_audit naming the first bad line, torn lines from crashes, the period's approval state, old logs."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import warnings
from pathlib import Path

import pandas as pd
import pytest

import segment.review.audit as audit
from segment.errors import SegmentError
from segment.review.apply import apply_review
from segment.review.audit import (
    AUDIT_HEADER,
    AUDIT_HEADER_V1,
    AuditLogWarning,
    append_events,
    audit_events,
    period_state,
    reviewer_changes,
    verify_audit,
)

from ..conftest import ROOT, tiny_s1_grading

SHA = "ab" * 32
OTHER = "cd" * 32
HEADER = (",".join(AUDIT_HEADER) + "\n").encode("utf-8")
S1 = ROOT / "params" / "schemes" / "s1_four_tier.yaml"


def decision(customer="C1", frm="core", to="ordinary", actor="张伟", when="2026-10-05T09:00:00Z", **kw) -> dict:
    return {"period": "2026Q3", "scheme": "s1_four_tier", "action": "decision", "actor": actor, "customer_id": customer,
            "from_tier": frm, "to_tier": to, "reason": "连续两季度无采购" if frm != to else "", "sheet": "a.xlsx",
            "grading_sha256": SHA, "timestamp": when, **kw}


def signoff(role: str, actor: str, when: str, sha: str = SHA, **kw) -> dict:
    return {"period": "2026Q3", "scheme": "s1_four_tier", "action": "signoff", "role": role, "actor": actor,
            "grading_sha256": sha, "timestamp": when, **kw}


def leadership(action: str, when: str, reason: str = "", sha: str = SHA, actor: str = "Zhang Wei", **kw) -> dict:
    return {"period": "2026Q3", "scheme": "s1_four_tier", "action": action, "role": "leadership", "actor": actor,
            "reason": reason, "grading_sha256": sha, "timestamp": when, **kw}


def lines_of(log: Path) -> list[bytes]:
    return log.read_bytes().splitlines(keepends=True)


def a_log(path: Path, n: int = 6) -> Path:
    """A chained log of ``n`` records written by three appends (one of them a batch)."""
    append_events(path, [decision("C1"), decision("C2", "important", "important")])
    append_events(path, [decision(f"C{i}", when=f"2026-10-06T0{i % 10}:00:00Z") for i in range(3, n)])
    append_events(path, [signoff("sales_head", "Wang Li", "2026-10-07T10:00:00Z")])
    return path


# ------------------------------------------------------------------------------------------------
# the chain
# ------------------------------------------------------------------------------------------------

def test_every_line_links_to_the_exact_bytes_of_the_line_before(tmp_path):
    log = a_log(tmp_path / "audit_log.csv")
    raw = lines_of(log)
    assert raw[0] == b"\xef\xbb\xbf" + HEADER and len(raw) == 7
    fields = [line.decode("utf-8").rstrip("\n").split(",") for line in raw[1:]]
    assert all(len(f) == len(AUDIT_HEADER) for f in fields)
    assert fields[0][-1] == hashlib.sha256(HEADER).hexdigest()   # the header without its BOM
    for before, line in zip(raw[1:], fields[1:]):
        assert line[-1] == hashlib.sha256(before).hexdigest()
    check = verify_audit(log)
    assert (check.ok, check.records, check.first_bad_line, check.torn) == (True, 6, None, ())
    assert check.summary() == f"{log}: 6 records, the chain holds"
    assert check.tip == hashlib.sha256(raw[-1]).hexdigest()
    # the next append carries the tip
    append_events(log, [leadership("approved", "2026-10-14T08:00:00Z")])
    assert lines_of(log)[-1].decode("utf-8").rstrip("\n").endswith("," + check.tip)
    assert verify_audit(log).records == 7 and verify_audit(log).ok


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_a_byte_changed_in_line_k_is_named_at_line_k_plus_1(tmp_path, k):
    log = a_log(tmp_path / "audit_log.csv")
    raw = lines_of(log)
    line = raw[k - 1]
    at = line.index(b":00+00:00,") + 2   # one byte, and line k stays a valid record: 09:00:00 → 09:00:01
    raw[k - 1] = line[:at] + b"1" + line[at + 1:]
    log.write_bytes(b"".join(raw))
    check = verify_audit(log)
    assert not check.ok and check.first_bad_line == k + 1
    assert check.summary() == (f"{log}: line {k + 1} does not follow line {k} (line {k} was changed, or a line was "
                               f"removed or inserted after it was written); every line from {k + 1} on is unverified")


def test_a_changed_header_is_named(tmp_path):
    log = a_log(tmp_path / "audit_log.csv")
    log.write_bytes(log.read_bytes().replace(b",reason,", b",why,", 1))
    check = verify_audit(log)
    assert not check.ok and check.first_bad_line == 1 and check.why.startswith("line 1 is not the audit log's header")


def test_a_change_to_the_last_line_moves_the_tip(tmp_path):
    """Nothing follows the last line: the chain alone holds, but its tip (kept elsewhere) is another."""
    log = a_log(tmp_path / "audit_log.csv")
    tip = verify_audit(log).tip
    log.write_bytes(log.read_bytes().replace(b"Wang Li", b"Wang Lu"))
    check = verify_audit(log)
    assert check.ok and check.tip != tip


def test_a_removed_or_inserted_line_is_caught(tmp_path):
    log = a_log(tmp_path / "audit_log.csv")
    raw = lines_of(log)
    log.write_bytes(b"".join(raw[:3] + raw[4:]))   # line 4 removed
    check = verify_audit(log)
    assert not check.ok and check.first_bad_line == 4 and "does not follow line 3" in check.why

    log.write_bytes(b"".join(raw[:5] + [raw[2]] + raw[5:]))   # line 3 copied in as line 6
    assert verify_audit(log).first_bad_line == 6

    log.write_bytes(b"".join(raw[:4] + [b"\n"] + raw[4:]))   # an empty line
    check = verify_audit(log)
    assert check.first_bad_line == 5 and "not a valid record (an empty line" in check.why


def test_a_file_saved_again_by_excel_breaks_the_chain_at_line_2(tmp_path):
    log = a_log(tmp_path / "audit_log.csv")
    log.write_bytes(log.read_bytes().replace(b"\n", b"\r\n"))
    check = verify_audit(log)
    assert not check.ok and check.first_bad_line == 2 and "line 1 was changed" in check.why


def test_a_malformed_record_is_named_even_when_linked(tmp_path):
    log = a_log(tmp_path / "audit_log.csv", n=3)
    raw = lines_of(log)
    forged = (f"2026-10-08T00:00:00+00:00,2026Q3,s1_four_tier,approve,leadership,Zhang Wei,,,,,,,{SHA},"
              f"{hashlib.sha256(raw[-1]).hexdigest()}\n").encode()
    log.write_bytes(log.read_bytes() + forged)
    check = verify_audit(log)
    assert not check.ok and check.first_bad_line == 5 and check.records == 3
    assert check.why.startswith("line 5 is not a valid record (action 'approve' is not one of decision, signoff")
    with pytest.warns(AuditLogWarning, match="line 5: action 'approve'"):
        assert len(audit_events(log)) == 3


# ------------------------------------------------------------------------------------------------
# crashes: torn lines are not tampering
# ------------------------------------------------------------------------------------------------

def _torn(log: Path) -> tuple[bytes, bytes]:
    """The log, and the line its next append would write (to cut short)."""
    good = log.read_bytes()
    append_events(log, [decision("C9", "potential", "ordinary", actor="李娜", reason='高消费, "frequent" complaints')])
    whole = log.read_bytes()
    return good, whole[len(good):]


def test_a_torn_last_line_is_reported_as_torn_not_as_a_change(tmp_path):
    base = a_log(tmp_path / "base.csv", n=3)
    good, line = _torn(base)
    for cut in [1, 10, 26, 40, 60, len(line) - 70, len(line) - 30, len(line) - 2]:
        log = tmp_path / f"log{cut}.csv"
        log.write_bytes(good + line[:cut])
        check = verify_audit(log)
        assert check.ok and check.torn == (5,) and check.first_bad_line is None, (cut, check)
        assert "line 5 is incomplete: the last append was cut short (a crash, not a change)" in check.why
        assert "does not follow" not in check.why and check.records == 3

        # the next append starts a fresh line and links to the fragment: the chain runs through it
        with pytest.warns(AuditLogWarning, match="line 5 is an incomplete record"):
            append_events(log, [signoff("service_head", "Li Na", "2026-10-09T10:00:00Z")])
        assert log.read_bytes().startswith(good + line[:cut] + b"\n")
        check = verify_audit(log)
        assert check.ok and check.records == 4 and check.torn == (5,), (cut, check)
        assert "line 5 is an incomplete record left by a crash" in check.why
        with pytest.warns(AuditLogWarning, match=r"skipped 1 line\(s\).*\(line 5: "):
            assert audit_events(log)["action"].tolist() == ["decision", "decision", "signoff", "signoff"]

        # and a change to the torn line is still a change
        raw = lines_of(log)
        raw[4] = b"#" + raw[4][1:]
        log.write_bytes(b"".join(raw))
        assert verify_audit(log).first_bad_line == 6


def test_a_record_missing_only_its_line_end_counts(tmp_path):
    base = a_log(tmp_path / "base.csv", n=3)
    good, line = _torn(base)
    log = tmp_path / "log.csv"
    log.write_bytes(good + line[:-1])
    check = verify_audit(log)
    assert check.ok and check.records == 4 and check.torn == () and "line 5 has no line end" in check.why
    with pytest.warns(AuditLogWarning):   # the next append adds the missing line end (and says so)
        append_events(log, [signoff("service_head", "Li Na", "2026-10-09T10:00:00Z")])
    assert log.read_bytes().startswith(good + line) and len(lines_of(log)) == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verify_audit(log).ok and verify_audit(log).records == 5 and len(audit_events(log)) == 5


def test_a_header_cut_short_is_completed_and_chained(tmp_path):
    log = tmp_path / "log.csv"
    log.write_bytes((b"\xef\xbb\xbf" + HEADER)[:20])
    check = verify_audit(log)
    assert check.ok and check.records == 0 and check.torn == (1,) and "header is incomplete" in check.why
    append_events(log, [decision()])
    assert lines_of(log)[0] == b"\xef\xbb\xbf" + HEADER and verify_audit(log).ok


# ------------------------------------------------------------------------------------------------
# concurrent appends
# ------------------------------------------------------------------------------------------------

def _append_many(log: str, who: int, n: int, barrier) -> None:
    barrier.wait()
    for i in range(n):
        append_events(log, [decision(f"P{who}-{i}", actor=f"reviewer {who}"),
                            decision(f"P{who}-{i}b", "important", "important", actor=f"reviewer {who}")])


def test_appends_from_several_processes_form_one_chain(tmp_path):
    log = tmp_path / "audit_log.csv"
    ctx = multiprocessing.get_context("spawn")   # fresh interpreters: no lock or thread inherited
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_append_many, args=(str(log), w, 30, barrier)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    check = verify_audit(log)
    assert check.ok and check.records == 4 * 30 * 2 and check.torn == (), check
    ev = audit_events(log)
    assert ev["customer_id"].nunique() == 240
    # each append is one block of two lines: never split by another process's lines
    ids = ev.sort_values("line")["customer_id"].tolist()
    assert all(ids[i + 1] == ids[i] + "b" for i in range(0, len(ids), 2))


def test_an_append_reads_only_the_end_of_a_long_log(tmp_path, monkeypatch):
    log = tmp_path / "audit_log.csv"
    append_events(log, [decision(f"C{i}") for i in range(4000)])
    assert log.stat().st_size > 900_000
    read = []

    class CountingOS:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def pread(fd, n, offset):
            data = os.pread(fd, n, offset)
            read.append(len(data))
            return data

    monkeypatch.setattr(audit, "os", CountingOS())
    append_events(log, [decision("C-last")])
    assert 0 < sum(read) < 20_000
    assert verify_audit(log).ok and verify_audit(log).records == 4001


# ------------------------------------------------------------------------------------------------
# events: checked before anything is written; read back
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("event, words", [
    (signoff("sales_head", "Wang Li", "2026-10-07", sha=""), "grading_sha256 '' is not 64 hex digits"),
    (signoff("", "Wang Li", "2026-10-07"), "role empty"),
    (decision(period="2026q3"), "period '2026q3' is not a period"),
    (decision(to=""), "customer_id, from_tier or to_tier is empty"),
    (decision(actor=""), "actor is empty"),
    (leadership("rejected", "2026-10-12"), "say why the grading is rejected"),
    ({"period": "2026-09", "action": "spot_check", "actor": "Wang Li", "customer_id": "C1", "reason": "maybe"},
     "write ok, or wrong:"),
    ({"action": "approve", "actor": "x"}, "action 'approve' is not one of"),
    (decision(timestamp="yesterday-ish"), "timestamp 'yesterday-ish' is not a date and time"),
])
def test_a_bad_event_is_refused_and_nothing_is_written(tmp_path, event, words):
    log = a_log(tmp_path / "audit_log.csv", n=3)
    before = log.read_bytes()
    with pytest.raises(SegmentError) as e:
        append_events(log, [decision("C7"), event])
    assert str(e.value).startswith(f"{log}: event 2 (") and words in str(e.value), str(e.value)
    assert log.read_bytes() == before
    with pytest.raises(TypeError, match="unknown key"):
        append_events(log, [{**decision(), "reviewer": "x"}])


def test_events_read_back_filtered_oldest_first(tmp_path):
    log = a_log(tmp_path / "audit_log.csv", n=3)
    append_events(log, [{"period": "2026-09", "scheme": "s1_four_tier", "action": "spot_check", "actor": "Wang Li",
                         "customer_id": "C1", "reason": "wrong: =still core", "timestamp": "2026-10-01T08:00:00Z"},
                        {"period": "2026-09", "action": "spot_check", "actor": "Wang Li", "customer_id": "C2",
                         "reason": "ok", "timestamp": "2026-10-01T08:05:00Z"}])
    ev = audit_events(log)
    assert ev["when"].is_monotonic_increasing and ev["action"].tolist()[:2] == ["spot_check", "spot_check"]
    assert str(ev["when"].dtype) == "datetime64[ns, UTC]"
    spot = audit_events(log, period="2026-09", actions="spot_check")
    assert spot["reason"].tolist() == ["wrong: =still core", "ok"] and spot["line"].tolist() == [5, 6]
    assert len(audit_events(log, period="2026Q3", scheme="s1_four_tier", actions=["decision"])) == 2
    ch = reviewer_changes(log)
    assert ch["customer_id"].tolist() == ["C1"] and ch[["period", "scheme"]].iloc[0].tolist() == ["2026Q3",
                                                                                                   "s1_four_tier"]
    assert audit_events(tmp_path / "none.csv").empty and verify_audit(tmp_path / "none.csv").ok


# ------------------------------------------------------------------------------------------------
# the period's approval state
# ------------------------------------------------------------------------------------------------

def test_period_state_from_draft_to_approved_and_back(tmp_path):
    log = tmp_path / "audit_log.csv"

    def state(**kw):
        return period_state(log, "2026Q3", "s1_four_tier", **kw)

    assert state().state == "draft" and state().text() == \
        "DRAFT — not approved: no sign-off yet (waits for sales_head and service_head)"
    append_events(log, [decision()])
    append_events(log, [signoff("sales_head", "Wang Li", "2026-10-08T10:00:00Z")])
    s = state()
    assert s.state == "draft" and s.waiting == ("service_head",)
    assert s.text() == "DRAFT — not approved: the review is signed off by sales_head (Wang Li) and waits for service_head"
    append_events(log, [signoff("service_head", "Li Na", "2026-10-09T10:00:00Z"),
                        signoff("service_head", "Li Na", "2026-10-09T10:00:00Z", period="2026Q2"),
                        leadership("approved", "2026-10-09T11:00:00Z", scheme="s3_relationship_score")])
    s = state()
    assert s.state == "signed_off" and s.signoffs["sales_head"][0] == "Wang Li"
    assert str(s.signoffs["service_head"][1]) == "2026-10-09 10:00:00+00:00"
    assert s.text().startswith("SIGNED OFF — not yet approved") and "waits for leadership" in s.text()
    append_events(log, [leadership("approved", "2026-10-11T09:00:00Z", role="sales_head")])   # not leadership
    assert state().state == "signed_off"

    append_events(log, [leadership("rejected", "2026-10-12T09:00:00Z", reason="tier cut-offs too strict")])
    s = state()
    assert (s.state, s.decided_by, s.reason) == ("rejected", "Zhang Wei", "tier cut-offs too strict")
    assert s.text() == "REJECTED by Zhang Wei (leadership) on 2026-10-12: tier cut-offs too strict"
    append_events(log, [leadership("approved", "2026-10-14T09:00:00Z")])   # the latest of the two wins
    s = state()
    assert s.state == "approved" and s.text() == "Approved by Zhang Wei (leadership) on 2026-10-14"
    assert str(s.decided_at) == "2026-10-14 09:00:00+00:00"
    assert period_state(log, "2026Q2", "s1_four_tier").state == "draft"   # another period: its own state

    # a decision logged afterwards: the grading changed, the approval and the sign-offs no longer hold
    append_events(log, [decision("C12", "core", "core", actor="Li Na", when="2026-10-15T09:00:00Z")])
    s = state()
    assert s.state == "draft" and s.signoffs == {} and s.decided_by == ""
    assert s.text() == ("DRAFT — not approved: the approval by Zhang Wei on 2026-10-14 no longer holds: the grading "
                        "changed after it (Li Na's decision on C12, 2026-10-15); no sign-off yet (waits for "
                        "sales_head and service_head)")


def test_signoffs_and_approvals_of_another_grading_do_not_count(tmp_path):
    log = tmp_path / "audit_log.csv"
    append_events(log, [signoff("sales_head", "Wang Li", "2026-10-08T10:00:00Z"),
                        signoff("service_head", "Li Na", "2026-10-09T10:00:00Z", sha=OTHER),
                        leadership("approved", "2026-10-10T10:00:00Z", sha=OTHER)])
    assert period_state(log, "2026Q3", "s1_four_tier").state == "approved"   # no grading named: all count
    s = period_state(log, "2026Q3", "s1_four_tier", grading_sha256=SHA)
    assert s.state == "draft" and list(s.signoffs) == ["sales_head"] and s.waiting == ("service_head",)
    s = period_state(log, "2026Q3", "s1_four_tier", grading_sha256=OTHER)
    assert s.state == "approved" and list(s.signoffs) == ["service_head"]
    assert "without the sign-off of sales_head" in s.text()
    with pytest.raises(SegmentError, match="not a period"):
        period_state(log, "Q3 2026", "s1_four_tier")


# ------------------------------------------------------------------------------------------------
# old logs, and apply_review
# ------------------------------------------------------------------------------------------------

def _v1_log(path: Path) -> Path:
    path.write_bytes(b"\xef\xbb\xbf" + (",".join(AUDIT_HEADER_V1) + "\n").encode()
                     + f"2026-07-01T09:00:00+00:00,张伟,C1,,core,ordinary,连续两季度无采购,a.csv,{SHA}\n".encode())
    return path


def test_an_old_log_is_read_but_never_appended_to(tmp_path):
    log = _v1_log(tmp_path / "audit_log.csv")
    before = log.read_bytes()
    with pytest.raises(SegmentError) as e:
        append_events(log, [decision()])
    msg = str(e.value)
    assert msg.startswith(f"{log}: an audit log in the old format") and "move it aside" in msg
    assert "audit_log.v1.csv" in msg and log.read_bytes() == before
    ev = audit_events(log)
    assert ev.attrs["format"] == "v1" and ev[["action", "actor", "period", "customer_id"]].iloc[0].tolist() == \
        ["decision", "张伟", "", "C1"]
    assert reviewer_changes(log)["reviewer"].tolist() == ["张伟"]
    check = verify_audit(log)
    assert not check.ok and check.records == 1 and "old format" in check.why and check.first_bad_line is None




def test_apply_review_logs_decisions_of_the_period_and_scheme(tmp_path):
    grading = tiny_s1_grading(tmp_path / "grading.parquet")
    sheet = tmp_path / "sheet.csv"
    pd.DataFrame([{"customer_id": "C1", "confirm": "no", "new_tier": "ordinary", "reason": "连续两季度无采购",
                   "reviewer": "张伟", "role": "sales_head"},
                  {"customer_id": "C2", "confirm": "yes", "reviewer": "李娜", "role": ""}],
                 columns=["customer_id", "confirm", "new_tier", "reason", "reviewer", "role"]).to_csv(
        sheet, index=False, encoding="utf-8-sig")
    log = tmp_path / "audit_log.csv"
    apply_review(sheet, grading, S1, tmp_path / "approved.parquet", log, when="2026-10-05T09:00:00Z", period="2026Q3")
    ev = audit_events(log)
    assert ev[["period", "scheme", "action", "role", "actor", "customer_id", "from_tier", "to_tier"]].values.tolist() \
        == [["2026Q3", "s1_four_tier", "decision", "sales_head", "张伟", "C1", "core", "ordinary"],
            ["2026Q3", "s1_four_tier", "decision", "", "李娜", "C2", "important", "important"]]
    assert verify_audit(log).ok

    old = _v1_log(tmp_path / "old_log.csv")
    before = old.read_bytes()
    with pytest.raises(SegmentError, match="old format"):
        apply_review(sheet, grading, S1, tmp_path / "other.parquet", old, period="2026Q3")
    assert old.read_bytes() == before and not (tmp_path / "other.parquet").exists()
