"""The public API: `import segment` gives what a notebook needs, and `segment.grade` leaves out the
customers the CRM marks lost (the obvious composition grades what the commands grade)."""
from __future__ import annotations

import pandas as pd
import pytest

import segment


def test_public_names_resolve():
    for name in segment.__all__:
        assert getattr(segment, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        segment.nope  # noqa: B018


def test_grade_composition_drops_crm_lost_customers(tmp_path):
    from segment.demo.write import write_demo
    from segment.pipeline import grade_data

    cfg = write_demo(tmp_path / "demo", customers=400)
    snap = segment.snapshot(segment.load_data(cfg).tables, "2026-09-30")
    g = segment.grade(snap, "s1_four_tier")
    lost = snap["status"].eq("lost").fillna(False)
    assert lost.sum() > 0 and g.lost == int(lost.sum())
    assert not g.frame["customer_id"].isin(snap.loc[lost, "customer_id"]).any()
    cli = grade_data(cfg, "s1_four_tier", "2026-09-30").grading.frame
    pd.testing.assert_frame_equal(g.frame.reset_index(drop=True), cli.reset_index(drop=True))


def test_every_result_object_has_table_summary_and_html(demo, tmp_path):
    """One protocol for what a notebook shows: table() is a frame, summary() text, _repr_html_ both."""
    from pathlib import Path

    from segment.calibration.churn import build_panel
    from segment.calibration.params import CalibrationParams
    from segment.calibration.result import CalibrationResult
    from segment.pipeline import grade_data
    from segment.plumbing.result import Result
    from segment.reports.build import BuildResult
    from segment.review.apply import ApplyResult
    from segment.review.select import ReviewSelection

    loaded = segment.load_data(demo)
    snap = segment.snapshot(loaded.tables, "2026-06-30")
    grading = segment.grade(snap, "s1_four_tier")
    graded = grade_data(demo, "s1_four_tier", "2026-06-30")
    panel = build_panel(loaded.tables, segment.load_scheme("s1_four_tier"), ["2026-03-31"], 90,
                        CalibrationParams().churn, "2026-09-30")
    out = tmp_path / "g.html"
    out.write_text("x")
    build = BuildResult(quarter="2026Q2", out_dir=tmp_path, files=[out], seconds=1.5)
    applied = ApplyResult(Path("sheet.csv"), Path("approved.csv"), Path("audit.csv"), 3, 1, 0,
                          pd.DataFrame({"customer_id": ["C1"], "from_tier": ["core"], "to_tier": ["important"],
                                        "reason": ["two complaints"], "reviewer": ["王芳"]}))
    for obj in (loaded, grading, graded, panel, build, applied):
        assert isinstance(obj, Result)
        assert isinstance(obj.table(), pd.DataFrame) and isinstance(obj.summary(), str) and obj.summary()
        assert "<table" in obj._repr_html_()
    assert issubclass(CalibrationResult, Result) and issubclass(ReviewSelection, Result)
    total = int(grading.table()["customers"].sum())
    assert f"{total:,} rows graded with s1_four_tier at 2026-06-30" in grading.summary()
    assert graded.table().equals(graded.grading.table())
    assert "1 changed" in applied.summary() and applied.table().equals(applied.changes)
    assert build.table()["bytes"].tolist() == [1]
    assert f"{int(panel.counts['labelled'].sum()):,} labelled" in panel.summary()
