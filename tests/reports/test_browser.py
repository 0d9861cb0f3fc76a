"""A real browser opens every report: Debian's headless Chromium loads each HTML file with the
network closed, takes a screenshot and must log no console error and request nothing remote.

Run with `make test-browser` (installs chromium and CJK fonts with apt when missing; CI runs it).
Skipped with a reason when no chromium is on the machine."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from segment.reports import build as reports
from segment.demo.write import write_demo

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not CHROMIUM:
        pytest.skip("no chromium on this machine: `make test-browser` installs Debian's chromium")
    return write_demo(tmp_path_factory.mktemp("demo"), customers=400, seed=5)


@pytest.fixture(scope="module")
def built(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    reports.build_reports(data=demo, reports_dir=out)
    return out


def _open(page, shot, tmp_path):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,2000", f"--screenshot={shot}",
           page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", [f"{nb}.html" for nb in reports.NOTEBOOKS] + ["../index.html"])
def test_report_renders_in_chromium_without_errors(built, name, tmp_path):
    page = (built / "2026Q3" / name).resolve()
    shot = tmp_path / "shot.png"
    run = _open(page, shot, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 10_000  # a real page was painted
    console = [line for line in run.stderr.splitlines() if re.search(r"CONSOLE|Uncaught|net::ERR_", line)]
    assert not console, "\n".join(console)


#: the grading report of these schemes is photographed (issue 13): a weighted score, key-account levels
#: with gates, sales stages, and one grade per product line
PHOTOGRAPHED = ["s1_four_tier", "s4_key_account_levels", "s7_sales_stages", "s8_government_product_line"]


@pytest.mark.parametrize("scheme", PHOTOGRAPHED)
def test_grading_report_of_each_kind_of_scheme_is_photographed(built, demo, scheme, tmp_path):
    """Screenshots to look at: ``reports/screenshots/grading-<scheme>.png`` (or ``$SEGMENT_SCREENSHOTS``)."""
    import os

    from segment import paths

    out = tmp_path / "reports"
    if scheme == "s1_four_tier":
        page = built / "2026Q3" / "grading.html"
    else:
        built_one = reports.build_reports(data=demo, scheme=scheme, reports_dir=out)   # its cadence's latest period
        page = out / built_one.quarter / "grading.html"
    folder = Path(os.environ.get("SEGMENT_SCREENSHOTS") or paths.root() / "reports" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"grading-{scheme}.png"
    run = _open(page, shot, tmp_path)
    assert run.returncode == 0 and shot.stat().st_size > 10_000, run.stderr[-2000:]
    text = page.read_text(encoding="utf-8")
    assert 'class="tiles"' in text and "Traceback" not in text and ">nan<" not in text


def test_the_check_catches_a_broken_page(tmp_path):
    """The detector itself: a page with a script error and a remote fetch is caught."""
    if not CHROMIUM:
        pytest.skip("no chromium on this machine")
    page = tmp_path / "bad.html"
    page.write_text('<html><body>x<script>console.error("boom"); fetch("http://example.com/")</script></body></html>')
    run = _open(page, tmp_path / "bad.png", tmp_path)
    assert any("boom" in line for line in run.stderr.splitlines() if "CONSOLE" in line)
    assert any("Failed to fetch" in line for line in run.stderr.splitlines())
