"""Issue 7, deliverables 2–4 beyond the bad-input corpus: an interrupted run (SIGINT / SIGTERM) leaves
the previous outputs byte-identical; the same inputs give byte-identical outputs; credentials from
the environment never reach an output. (The report's interrupt and HTML tests are in test_reports.py,
beside the report they reuse.)"""
from __future__ import annotations

import os
import signal
import sqlite3

import pandas as pd
import pytest

from segment.calibration import run as calibration
from segment.calibration.weights import WeightCalibrator
from segment.cli import main
from segment.review.params import ReviewParams
from segment.review.sheet import export_review

from .conftest import ROOT, write

CAL = ["--scheme", "rfm_quantiles", "--train-as-of", "2024-09-30,2025-03-31,2025-06-30,2025-09-30",
       "--test-as-of", "2026-03-31", "--horizon-days", "180"]


# `demo` (400 customers, seed 7; read-only) comes from conftest.py.


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def calibrated(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("cal") / "calibration"
    assert main(["calibrate", "--data", str(demo), *CAL, "--out", str(out)]) == 0
    return out


# ------------------------------------------------------------------------------------------------
# nothing lost, nothing half-written
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_calibration_leaves_the_previous_outputs(demo, calibrated, tmp_path, monkeypatch, capsys, sig):
    out = tmp_path / "calibration"
    out.mkdir()
    for name, data in snapshot(calibrated).items():
        (out / name).write_bytes(data + b"\n# previous\n")   # differs from what this run would write
    before = snapshot(out)
    fit = WeightCalibrator.fit

    def interrupted_fit(self, *a, **kw):   # the signal arrives in the middle of the statsmodels fit
        os.kill(os.getpid(), sig)
        return fit(self, *a, **kw)

    monkeypatch.setattr(WeightCalibrator, "fit", interrupted_fit)
    capsys.readouterr()
    assert main(["calibrate", "--data", str(demo), *CAL, "--out", str(out)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert snapshot(out) == before   # byte-identical, and no temporary file left beside them


def test_a_signal_between_the_scheme_and_its_metrics_waits_for_both(demo, calibrated, tmp_path, monkeypatch):
    """The schemes and metrics.json are renamed together: a signal after the first is held until all are in."""
    out = tmp_path / "calibration"
    out.mkdir()
    for name, data in snapshot(calibrated).items():
        (out / name).write_bytes(b"old " + data)
    write_text = calibration.write_text
    calls = []

    def signalling_write(target, text):
        path = write_text(target, text)
        calls.append(path)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return path

    monkeypatch.setattr(calibration, "write_text", signalling_write)
    assert main(["calibrate", "--data", str(demo), *CAL, "--out", str(out)]) == 130
    assert len(calls) == 3 and snapshot(out) == snapshot(calibrated)   # all new, never one old and one new


def test_sigterm_handler_is_restored_after_main(demo, tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    main(["validate", "--data", str(demo)])
    assert signal.getsignal(signal.SIGTERM) is before


# ------------------------------------------------------------------------------------------------
# reproducible
# ------------------------------------------------------------------------------------------------

def test_same_inputs_give_byte_identical_gradings_and_calibrations(demo, calibrated, tmp_path, capsys):
    for suffix in ("parquet", "csv"):
        for i in (1, 2):
            assert main(["grade", "--data", str(demo), "--scheme", "s1_four_tier", "--out",
                         str(tmp_path / f"g{i}.{suffix}")]) == 0
        assert (tmp_path / f"g1.{suffix}").read_bytes() == (tmp_path / f"g2.{suffix}").read_bytes()
    again = tmp_path / "again"
    assert main(["calibrate", "--data", str(demo), *CAL, "--out", str(again)]) == 0
    assert snapshot(again) == snapshot(calibrated) and set(snapshot(again)) == {
        "metrics.json", "rfm_quantiles.calibrated.yaml", "rfm_quantiles.proposal.yaml"}


def test_same_grading_gives_a_byte_identical_review_sample(demo, tmp_path):
    from segment.pipeline import grade_data
    from segment.grading.scheme import load_scheme

    graded = grade_data(demo, "s1_four_tier", "2026-09-30")
    scheme = load_scheme(ROOT / "params" / "schemes" / "s1_four_tier.yaml")
    sheets = []
    for i in (1, 2):
        q = tmp_path / str(i) / "2026Q3"
        q.mkdir(parents=True)
        graded.frame.to_parquet(q / "grading.parquet", index=False)
        _, csv_path = export_review(q / "grading.parquet", scheme, q, ReviewParams(seed=11),
                                    customers=graded.loaded.tables.customers)
        sheets.append(csv_path.read_bytes())
    assert sheets[0] == sheets[1] and len(sheets[0]) > 100
    xlsx = [pd.read_excel(tmp_path / str(i) / "2026Q3" / "review_sheet.xlsx", dtype=str, engine="openpyxl") for i in (1, 2)]
    pd.testing.assert_frame_equal(*xlsx)


# ------------------------------------------------------------------------------------------------
# safe by construction: credentials
# ------------------------------------------------------------------------------------------------

def test_credentials_from_the_environment_never_reach_an_output(demo, tmp_path, monkeypatch, capsys):
    """A SQL source whose URL takes a secret from the environment: the grading, the calibrated scheme,
    metrics.json and every message hold the ${VAR} template at most, never the value."""
    secret = "s3cr3t-Pa55-7f3a"
    folder = tmp_path / f"db-{secret}"   # sqlite has no password: the secret rides in the path instead
    folder.mkdir()
    db = folder / "crm.sqlite"
    tx = pd.read_parquet(demo.parent / "transactions.parquet")
    with sqlite3.connect(db) as con:
        tx.to_sql("orders", con, index=False)
    cfg = (demo.parent / "data.yaml").read_text(encoding="utf-8")
    assert "path: transactions.parquet" in cfg
    cfg = cfg.replace("path: transactions.parquet", "sql: {url: 'sqlite:///${SEGMENT_CRM_DB}', query: 'select * from orders'}")
    for f in demo.parent.iterdir():
        if f.suffix in (".csv", ".parquet", ".yaml") and f.name not in ("transactions.parquet", "data.yaml"):
            (tmp_path / f.name).write_bytes(f.read_bytes())
    data = write(tmp_path / "data.yaml", cfg)
    monkeypatch.setenv("SEGMENT_CRM_DB", str(db))
    assert main(["grade", "--data", str(data), "--scheme", "rfm_quantiles", "--out", str(tmp_path / "g.csv")]) == 0
    assert main(["calibrate", "--data", str(data), *CAL, "--out", str(tmp_path / "cal")]) == 0
    bad = write(tmp_path / "bad.yaml", cfg.replace("select * from orders", "select * from no_such_table"))
    assert main(["validate", "--data", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert secret not in out + err
    for f in [tmp_path / "g.csv", *(tmp_path / "cal").iterdir()]:
        assert secret.encode() not in f.read_bytes(), f
    assert "${SEGMENT_CRM_DB}" in (tmp_path / "cal" / "metrics.json").read_text(encoding="utf-8") or \
        "sha256" in (tmp_path / "cal" / "metrics.json").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# safe by construction: the condition parser, fuzzed with strings built from its own tokens
# ------------------------------------------------------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from segment.grading.conditions import parse  # noqa: E402
from segment.errors import ConditionError  # noqa: E402

TOKENS = ["a", "b", "tag", "x", "__import__", "__class__", "os", "system", "(", ")", "[", "]", ",", ".", "'x'",
          '"y"', "'", "1", "2.5", "50万", "15%", "-", "+", "*", "/", ">=", "<=", ">", "<", "==", "!=", "=", "in",
          "not", "and", "or", "is", "missing", "lambda", ":", "True", "None", "\\", "\n", "\t", "；", "（", "≥"]
FRAME = pd.DataFrame({"a": [1.0, 5.0, float("nan")], "b": [0.0, -2.0, 3.0], "tag": ["x", None, "y"],
                      "x": [1.0, 2.0, 3.0]})


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join) | st.text(max_size=30))
def test_condition_parser_fuzz_gives_a_rule_or_a_clear_error_never_code(text):
    import builtins

    real = {n: getattr(builtins, n) for n in ("eval", "exec", "compile", "__import__")}

    def refuse(*a, **k):
        raise AssertionError(f"the condition parser called Python on {text!r}")

    try:
        for n in ("eval", "exec", "compile"):
            setattr(builtins, n, refuse)
        try:
            cond = parse(text)
        except ConditionError as e:
            assert str(e)
            return
        try:
            result = cond.evaluate(FRAME)
        except ConditionError as e:   # e.g. arithmetic on a text value: clear, raised at evaluation
            assert str(e)
            return
        assert len(result) == len(FRAME) and result.dtype == bool
    finally:
        for n, f in real.items():
            setattr(builtins, n, f)
