from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (CI must not turn red by luck); explore more with
# `HYPOTHESIS_PROFILE=explore make test`.
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# A shell starting the suite in the background (`make test &`, nohup) ignores SIGINT, and children inherit
# the ignored disposition: the interrupt tests (in-process and real subprocesses) need Ctrl-C to mean
# KeyboardInterrupt, as it does in a terminal and in CI.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ONLINE_RETAIL = SHARED / "data" / "online_retail_ii" / "online_retail_2009_2011.csv.gz"


@pytest.fixture(autouse=True)
def _project_cwd(monkeypatch):
    """Commands resolve scheme ids under params/schemes/ from the project root, as `make` runs them."""
    monkeypatch.chdir(ROOT)


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------
# Shared, read-only fixtures: built once per test session (once per xdist worker). A test that edits
# files copies the folder first (shutil.copytree: cheap); the session checks at its end that nothing
# was edited in place, so a test that forgets fails loudly instead of changing what the others read.
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """The demo company of the report, crash and reliability tests (400 customers, seed 7): the path of
    its data.yaml. Modules with a demo of another size or seed define their own ``demo``."""
    from segment.demo import write_demo

    cfg = write_demo(tmp_path_factory.mktemp("demo"), customers=400, seed=7)
    before = files(cfg.parent)
    yield cfg
    assert files(cfg.parent) == before, "a test edited the shared demo in place: copy it first"


@pytest.fixture(scope="session")
def built(demo, tmp_path_factory):
    """The demo's 2026Q3 reports (grading, review, calibration), built once: ``(reports_dir, BuildResult)``.
    Tests that only read the reports, or rerun a build that must answer "up to date", use it as it is;
    a test that builds into a reports folder or edits one works on a copy."""
    from segment import reports

    out = tmp_path_factory.mktemp("built") / "reports"
    result = reports.build_reports(data=demo, reports_dir=out)
    before = files(out)
    yield out, result
    assert files(out) == before, "a test edited the shared built reports in place: copy them first"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
