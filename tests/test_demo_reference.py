"""Frozen end-to-end reference values for the seeded demo (400 customers, seed 7; the shared `demo`
fixture): the snapshot's checksum at 2026-09-30, every built-in scheme's tier counts there, and the
S1 calibration's out-of-time AUC and weights — compared with tests/results/demo_reference.json at the
tolerances below. A change that moves any of them is a change of behaviour: look at why, then
refreeze with ``SEGMENT_FREEZE=1 .venv/bin/python -m pytest tests/test_demo_reference.py``."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from segment.features.snapshot import snapshot
from segment.pipeline import grade_snapshot
from segment.paths import schemes_dir
from segment.grading.scheme import load_scheme
from segment.data.validate import load_data

REFERENCE = Path(__file__).resolve().parent / "results" / "demo_reference.json"
AS_OF = "2026-09-30"
REL = 1e-9  # sums of the snapshot's numeric columns
ABS = 1e-6  # AUCs and weights


@pytest.fixture(scope="module")
def measured(demo, tmp_path_factory):
    from segment.calibration.run import run_calibration

    loaded = load_data(demo)
    snap = snapshot(loaded.tables, AS_OF)
    numeric = snap.select_dtypes("number")
    out = {"snapshot": {"rows": int(len(snap)), "columns": sorted(map(str, snap.columns)),
                        "sums": {c: float(numeric[c].sum()) for c in sorted(numeric.columns)}},
           "tiers": {}}
    for path in sorted(schemes_dir().glob("*.yaml")):
        scheme = load_scheme(path)
        grading, _, lost = grade_snapshot(loaded.tables, scheme, AS_OF, str(path), keep_snapshot=False)
        counts = grading.frame["tier"].astype(str).value_counts()
        out["tiers"][scheme.id] = {"graded": int(len(grading.frame)), "lost": int(lost),
                                   **{t.id: int(counts.get(t.id, 0)) for t in scheme.tiers}}
    result = run_calibration(demo, "s1_four_tier", ["2025-03-31", "2025-06-30", "2025-09-30"], "2026-03-31", 180,
                             tmp_path_factory.mktemp("calibration"), loaded=loaded)
    m = result.metrics
    out["calibration_s1"] = {"test_auc": {k: m[k]["test"]["auc"] for k in ("expert", "calibrated")},
                             "weights": m["calibrated"]["weights"], "cutoffs": m["calibrated"]["cutoffs"]}
    return out


def test_the_seeded_demo_gives_the_frozen_figures(measured):
    if os.environ.get("SEGMENT_FREEZE"):
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        REFERENCE.write_text(json.dumps(measured, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        pytest.skip(f"froze {REFERENCE}")
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))
    got = measured
    assert got["snapshot"]["rows"] == ref["snapshot"]["rows"]
    assert got["snapshot"]["columns"] == ref["snapshot"]["columns"]
    for c, v in ref["snapshot"]["sums"].items():
        assert math.isclose(got["snapshot"]["sums"][c], v, rel_tol=REL, abs_tol=1e-9), c
    assert got["tiers"] == ref["tiers"]  # tier counts exactly, for every built-in scheme
    cal, ref_cal = got["calibration_s1"], ref["calibration_s1"]
    for who in ("expert", "calibrated"):
        assert cal["test_auc"][who] == pytest.approx(ref_cal["test_auc"][who], abs=ABS), who
    assert cal["weights"] == pytest.approx(ref_cal["weights"], abs=ABS)
    assert cal["cutoffs"] == pytest.approx(ref_cal["cutoffs"], abs=ABS)


def test_the_reference_covers_every_built_in_scheme():
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))
    assert set(ref["tiers"]) == {load_scheme(p).id for p in schemes_dir().glob("*.yaml")}
    assert len(ref["snapshot"]["sums"]) >= 30 and pd.notna(ref["calibration_s1"]["test_auc"]["calibrated"])
