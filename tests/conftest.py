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


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
