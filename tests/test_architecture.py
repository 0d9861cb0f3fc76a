"""docs/architecture.md names every module of the package, and only modules that exist."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "segment"


def test_every_module_is_on_the_map_and_the_map_has_no_ghosts():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| (.+) \|$", doc, re.M)
    named = {name for name, _ in rows}
    modules = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}
    templates = {p.relative_to(PACKAGE).as_posix() + "/" for p in (PACKAGE / "reports" / "templates").iterdir() if p.is_dir()}
    assert sorted(modules - named) == [], "modules missing from docs/architecture.md"
    assert sorted(templates - named) == [], "templates missing from docs/architecture.md"
    assert sorted(named - modules - templates) == [], "docs/architecture.md names what is not there"
    assert all(len(what.strip()) > 15 for _, what in rows)
    assert "docs/architecture.md" in (ROOT / "README.md").read_text(encoding="utf-8")
