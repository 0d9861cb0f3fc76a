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


def _modules():
    import ast

    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def test_every_module_says_what_it_owns_then_public_reads_writes():
    """Each module opens with what it owns, then `Public:`, `Reads:` and `Writes:` (a subpackage's
    __init__ holds only its one sentence)."""
    import ast

    missing = []
    for path, tree in _modules():
        doc = ast.get_docstring(tree) or ""
        if path.name == "__init__.py" and path.parent != PACKAGE:
            ok = len(doc) > 15
        else:
            ok = len(doc.split("\n")[0]) > 15 and all(f"{k}:" in doc for k in ("Public", "Reads", "Writes"))
        if not ok:
            missing.append(path.relative_to(PACKAGE).as_posix())
    assert missing == []


def test_no_private_name_is_imported_from_another_module():
    import ast

    crossing = [(path.relative_to(PACKAGE).as_posix(), node.module, a.name)
                for path, tree in _modules() for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("segment")
                for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert crossing == []


def test_a_function_over_80_lines_says_why_in_its_docstring():
    import ast

    unexplained = [f"{path.relative_to(PACKAGE).as_posix()}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
                   for path, tree in _modules() for node in ast.walk(tree)
                   if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                   and node.end_lineno - node.lineno + 1 > 80
                   and "Long because" not in (ast.get_docstring(node) or "")]
    assert unexplained == []
