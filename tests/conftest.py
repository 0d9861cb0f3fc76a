from __future__ import annotations

import fcntl
import os
import pickle
import shutil
import signal
from contextlib import contextmanager
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
# Shared, read-only fixtures: made once per test run, also when pytest-xdist runs it in several worker
# processes (`once`). A test that edits files or builds into a folder copies it first (shutil.copytree:
# cheap); each worker checks at its end that nothing was edited in place, so a test that forgets fails
# loudly instead of changing what the others read.
# ------------------------------------------------------------------------------------------------

def once(tmp_path_factory, name: str, make):
    """``make(folder)`` once per test run; its (picklable) result, read back by every later caller.

    Under pytest-xdist the first worker to ask makes it in the run's temporary folder, which the
    workers share, holding a lock; the others wait for that lock and read the result it left."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent   # pytest-of-<user>/pytest-<n>/: one per run, each worker's own folder inside
    made = base / f"{name}.pickle"
    with open(base / f"{name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # released when the file closes, also if make raises
        if not made.is_file():
            folder = base / name
            if folder.exists():   # what a failed make left
                shutil.rmtree(folder)
            folder.mkdir()
            made.write_bytes(pickle.dumps(make(folder)))
        return pickle.loads(made.read_bytes())


@contextmanager
def exclusive(tmp_path_factory, name: str):
    """Hold the run's lock on the shared ``name`` (see ``once``): for tests that edit it in place and put it
    back, one at a time across the xdist workers."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    with open(base / f"{name}.in-use.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """The demo company of the report, crash and reliability tests (400 customers, seed 7): the path of
    its data.yaml. Modules with a demo of another size or seed define their own ``demo``."""
    from segment.demo.write import write_demo

    cfg = once(tmp_path_factory, "shared-demo", lambda folder: write_demo(folder, customers=400, seed=7))
    before = files(cfg.parent)
    yield cfg
    assert files(cfg.parent) == before, "a test edited the shared demo in place: copy it first"


@pytest.fixture(scope="session")
def built(demo, tmp_path_factory):
    """The demo's 2026Q3 reports (grading, review, calibration), built once: ``(reports_dir, BuildResult)``.
    Read-only: a test that builds into a reports folder (even one that only answers "up to date" takes the
    quarter's lock) or edits one works on a copy."""
    from segment.reports import build as reports

    def build(folder: Path):
        return folder / "reports", reports.build_reports(data=demo, reports_dir=folder / "reports")

    out, result = once(tmp_path_factory, "shared-built", build)
    before = files(out)
    yield out, result
    assert files(out) == before, "a test edited the shared built reports in place: copy them first"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def tiny_s1_grading(path: Path) -> Path:
    """A four-customer grading of s1_four_tier (one per tier), written to ``path``: enough for apply_review."""
    import pandas as pd

    pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4"],
                  "tier": pd.Categorical(["core", "important", "ordinary", "potential"],
                                         ["core", "important", "ordinary", "potential"]),
                  "tier_rank": [0, 1, 2, 3], "tier_label": ["核心客户", "重要客户", "普通客户", "潜在客户"],
                  "score": [95.0, 80.0, 60.0, 20.0], "overrides": [""] * 4, "explanation": [""] * 4}
                 ).to_parquet(path, index=False)
    return path
