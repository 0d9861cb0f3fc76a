"""Every built-in scheme × two consecutive quarters × the three reports, built as `make report` builds
them (marker `slow`: `make test-slow`, which CI runs). Invariants, not values: the reports build; the
HTML holds no traceback, Python warning, `nan`, `None` or absolute path and stays under 1 MB; the
tiers' revenue in the index headline sums to the grading's; the quarter is graded with its own scheme."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from segment.grading import history
from segment.reports import build as reports
from segment.paths import schemes_dir
from segment.reports.review import review_report

pytestmark = pytest.mark.slow

SCHEMES = sorted(p.stem for p in schemes_dir().glob("*.yaml"))
FORBIDDEN = [r"\bTraceback\b", r"\bWarning\b", r"\bnan\b", r"\bNone\b", r"/tmp/", r"/work/", r"/home/", r"/root/"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from segment.demo.write import write_demo

    return write_demo(tmp_path_factory.mktemp("demo"), customers=600, seed=11)


def _visible_text(page: str) -> str:
    body = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


@pytest.mark.parametrize("sid", SCHEMES)
def test_every_scheme_reports_two_quarters(sid, demo, tmp_path):
    out = tmp_path / "reports"
    for quarter in ("2026Q2", "2026Q3"):
        reports.build_reports(quarter=quarter, data=demo, scheme=sid, reports_dir=out)
    q = out / "2026Q3"
    manifest = json.loads((q / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["scheme"] == sid
    grading = pd.read_parquet(q / "grading.parquet")
    assert manifest["customers"] == len(grading) > 0
    revenue = pd.to_numeric(grading["annual_amount"], errors="coerce").fillna(0).sum()
    assert manifest["headline"]["revenue_12m"] == pytest.approx(revenue, rel=1e-9)
    assert sum(t["customers"] for t in manifest["headline"]["tiers"]) == len(grading)
    for nb in reports.NOTEBOOKS:
        page = (q / f"{nb}.html").read_text(encoding="utf-8")
        assert len(page.encode()) <= 1_000_000, f"{nb}.html is {len(page.encode()):,} bytes"
        text = _visible_text(page)
        for pattern in FORBIDDEN:
            hit = re.search(pattern, text)
            assert hit is None, f"{sid} {nb}.html: {pattern} … {text[max(0, hit.start() - 80):hit.start() + 60]!r}"
    index = (out / "index.html").read_text(encoding="utf-8")
    assert sid in index and "2026Q2" in index and "2026Q3" in index

    # the migration matrix holds every graded row of both quarters once (key: customer, group)
    before = pd.read_parquet(out / "2026Q2" / "grading.parquet")
    tiers = [t["tier"] for t in manifest["headline"]["tiers"]]
    counts, _ = history.migration(before, grading, tiers)
    assert counts.drop(index="(new)", errors="ignore").to_numpy().sum() == len(before)
    assert counts.drop(columns="(not graded)", errors="ignore").to_numpy().sum() == len(grading)
    # the review sample is the seeds' 10–20% of the graded; extras are counted apart, capped
    review = review_report("2026Q3", str(q / "grading.parquet"), sid)
    shares, n = review.selection.shares(), len(grading)
    params = review.selection.params
    assert 0.10 - 1 / n <= shares["sample"] <= params.max_share + 1 / n, shares
    assert shares["extras"] <= params.extras_max_share + 1 / n, shares
    for nb in reports.NOTEBOOKS:  # every number of a table written for people: thousands separated
        page = (q / f"{nb}.html").read_text(encoding="utf-8")
        bare = re.findall(r"<td[^>]*>-?\d{4,}(?:\.\d+)?</td>", page)
        assert not bare, f"{sid} {nb}.html: numbers without thousands separators: {bare[:5]}"
        heads = [h for h in re.findall(r"<th[^>]*>(.*?)</th>", page, re.S) if re.search(r"[a-z]_[a-z]", h)]
        assert not heads, f"{sid} {nb}.html: column ids as headers: {heads[:5]}"
