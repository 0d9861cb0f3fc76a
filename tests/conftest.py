from __future__ import annotations

from pathlib import Path

import pytest

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
