"""The bad-input corpus (issue 7, deliverable 1): every case in tests/badinput/cases.yaml runs through
the CLI in-process and must fail cleanly — exit 2, a message starting with ``error:`` that names the
file and the row / key / column and says what to do, no traceback, no output created or modified.

Each case is a folder ``tests/badinput/<id>/`` laid over a copy of ``tests/badinput/base/`` (a small
valid data set, data.yaml and scheme.yaml): the case's files replace or add to the base's, ``remove``
deletes base files. ``{dir}`` in the arguments is that copy. Cases with ``exit: 0`` are the inputs that
must *load* (a BOM, a declared encoding, a header row) or only warn (future-dated rows, returns).
Review cases get ``{dir}/reports/2026Q2`` holding the base graded with the base scheme, as `segment
report` lays it out, and an audit log with one line in it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from segment.cli import main
from segment.review.audit import append_events

HERE = Path(__file__).resolve().parent / "badinput"
CASES = yaml.safe_load((HERE / "cases.yaml").read_text(encoding="utf-8"))


def test_the_corpus_is_big_and_every_case_has_a_folder_or_only_args():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert sum(c.get("exit", 2) == 2 for c in CASES) >= 40
    for c in CASES:
        assert set(c) <= {"id", "kind", "args", "expect", "outputs", "remove", "exit", "note"}, c["id"]
        assert c["expect"], c["id"]
    folders = {p.name for p in HERE.iterdir() if p.is_dir()} - {"base"}
    assert folders <= set(ids), f"folders without a case: {folders - set(ids)}"


@pytest.fixture(scope="module")
def base_grading(tmp_path_factory):
    from segment.pipeline import grade_data

    return grade_data(HERE / "base" / "data.yaml", HERE / "base" / "scheme.yaml", "2026-06-30").frame


def _prepare(case: dict, tmp_path: Path, base_grading) -> Path:
    work = tmp_path / "w"
    shutil.copytree(HERE / "base", work)
    own = HERE / case["id"]
    if own.is_dir():
        shutil.copytree(own, work, dirs_exist_ok=True)
    for name in case.get("remove", []):
        (work / name).unlink()
    if case["kind"] == "review":
        q = work / "reports" / "2026Q2"
        q.mkdir(parents=True, exist_ok=True)
        base_grading.to_parquet(q / "grading.parquet", index=False)
        (q / "manifest.json").write_text(json.dumps({"quarter": "2026Q2", "as_of": "2026-06-30", "scheme": "tiny",
                                                     "scheme_path": str(work / "scheme.yaml")}), encoding="utf-8")
        if not (work / "reports" / "audit_log.csv").is_file():   # a case may bring its own (a tampered one)
            append_events(work / "reports" / "audit_log.csv", [{
                "timestamp": "2026-07-01T00:00:00Z", "period": "2026Q2", "scheme": "tiny", "action": "decision",
                "actor": "张伟", "customer_id": "C1", "from_tier": "core", "to_tier": "core", "sheet": "first.csv",
                "grading_sha256": "0" * 64}])
    return work


def _state(paths: list[Path]) -> dict:
    def one(p: Path):
        if p.is_dir():
            return {str(f.relative_to(p)): f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file()}
        return p.read_bytes() if p.exists() else None

    return {p: one(p) for p in paths}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case, tmp_path, capsys, base_grading, monkeypatch):
    """Each case once: the expected message and exit code, nothing written — and the temporary folder
    of the DuckDB tables is removed."""
    import gc

    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setenv("SEGMENT_TMPDIR", str(spill))
    _run(case, tmp_path, capsys, base_grading)
    gc.collect()
    assert list(spill.iterdir()) == []


def _run(case, tmp_path, capsys, base_grading):
    work = _prepare(case, tmp_path, base_grading)
    args = [str(a).replace("{dir}", str(work)) for a in case["args"]]
    outputs = [work / o for o in case.get("outputs", [])]
    if case["kind"] == "review":
        outputs += [work / "reports" / "audit_log.csv", work / "reports" / "2026Q2"]
    before = _state(outputs)
    listing = sorted(p.relative_to(work) for p in work.rglob("*"))
    code = main(args)
    out, err = capsys.readouterr()
    expected = case.get("exit", 2)
    assert code == expected, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in out + err
    if expected == 2:
        assert err.startswith("error:") and not err.startswith("error: error"), err
        text = err
    else:
        text = out + err
    for fragment in case["expect"]:
        fragment = str(fragment).replace("{dir}", str(work))
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    if expected == 2:
        assert _state(outputs) == before, "an output was created or modified"
        # nothing else appeared either: no temporary files, no half-written outputs
        assert sorted(p.relative_to(work) for p in work.rglob("*")) == listing
