from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (CI must not turn red by luck); explore more with
# `HYPOTHESIS_PROFILE=explore make test`.
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

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
