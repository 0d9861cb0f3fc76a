"""One place for paths (segment.paths): the project root is found from any folder, commands and scheme
ids work from anywhere, and a report notebook runs from notebooks/ with its own defaults."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from segment import paths
from segment.errors import SegmentError
from segment.grading.scheme import resolve

from .conftest import ROOT


def test_root_is_the_nearest_folder_with_params(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.ENV, raising=False)
    monkeypatch.chdir(ROOT / "notebooks")
    assert paths.root() == ROOT
    project = tmp_path / "mine"
    (project / "params" / "schemes").mkdir(parents=True)
    (project / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(project / "deep" / "er")
    assert paths.root() == project
    assert paths.reports_dir() == project / "reports"
    assert paths.notebooks_dir() == ROOT / "notebooks"  # the project has none of its own: the package's
    monkeypatch.chdir(tmp_path)  # no params/ above: the checkout segment runs from
    assert paths.root() == ROOT
    assert resolve("s1_four_tier") == ROOT / "params" / "schemes" / "s1_four_tier.yaml"


def test_segment_root_wins_and_a_bad_one_is_named(tmp_path, monkeypatch):
    project = tmp_path / "p"
    (project / "params" / "schemes").mkdir(parents=True)
    monkeypatch.setenv(paths.ENV, str(project))
    monkeypatch.chdir(ROOT)
    assert paths.root() == project
    with pytest.raises(SegmentError, match="(?s)no scheme .s1_four_tier.*one of: \\(none found\\)"):
        resolve("s1_four_tier")
    monkeypatch.setenv(paths.ENV, str(tmp_path / "nowhere"))
    with pytest.raises(SegmentError, match="SEGMENT_ROOT=.*nowhere has no params/schemes/ folder"):
        paths.root()


def test_project_path_prefers_what_exists_here(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.yaml").write_text("x", encoding="utf-8")
    assert paths.project_path("here.yaml") == paths.project_path("here.yaml").absolute().relative_to(tmp_path)
    assert paths.project_path("params/reports.yaml") == ROOT / "params" / "reports.yaml"
    assert paths.project_path(tmp_path / "x") == tmp_path / "x"


def test_commands_work_from_another_folder(tmp_path):
    """`segment demo`, `validate` and `grade` with a scheme id, run from a folder outside the project."""
    seg = [sys.executable, "-m", "segment"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = lambda *a: subprocess.run([*seg, *a], cwd=elsewhere, capture_output=True, text=True, timeout=300)  # noqa: E731
    r = run("demo", "--out", "demo", "--customers", "200")
    assert r.returncode == 0, r.stderr
    r = run("validate", "--data", "demo/data.yaml")
    assert r.returncode == 0, r.stderr
    r = run("grade", "--data", "demo/data.yaml", "--scheme", "s4_key_account_levels", "--as-of", "2026-06-30",
            "--out", "g.csv")
    assert r.returncode == 0, r.stderr
    assert (elsewhere / "g.csv").read_text(encoding="utf-8").startswith("customer_id,")
    r = run("grade", "--data", "demo/data.yaml", "--scheme", "no_such_scheme", "--out", "h.csv")
    assert r.returncode != 0 and "s1_four_tier" in r.stderr and "(none found)" not in r.stderr
    assert not (elsewhere / "h.csv").exists()


def test_grading_notebook_runs_from_notebooks_with_its_defaults(tmp_path, monkeypatch):
    """JupyterLab starts a notebook in notebooks/: the grading notebook's defaults (the demo's data
    config, scheme id, quarter) must resolve from the project root, not from there."""
    pytest.importorskip("papermill")
    import papermill as pm

    from segment.demo.write import write_demo

    project = tmp_path / "project"
    shutil.copytree(ROOT / "params", project / "params")
    shutil.copytree(ROOT / "notebooks", project / "notebooks")
    write_demo(project / "data" / "demo", customers=300)
    monkeypatch.delenv(paths.ENV, raising=False)
    monkeypatch.chdir(project / "notebooks")
    out = tmp_path / "ran.ipynb"
    pm.execute_notebook(str(project / "notebooks" / "grading.ipynb"), str(out), cwd=str(project / "notebooks"),
                        kernel_name="python3", progress_bar=False, log_output=False)
    text = out.read_text(encoding="utf-8")
    assert "Customers and revenue by tier" in text and "core" in text and "Traceback" not in text


def test_a_quarters_file_names_are_declared_once(tmp_path):
    """paths.QuarterFiles names a quarter's files; no other module spells them."""
    from segment.paths import AUDIT_LOG, QuarterFiles

    q = QuarterFiles(tmp_path / "2026Q3")
    assert q.grading == tmp_path / "2026Q3" / "grading.parquet"
    assert q.manifest.name == "manifest.json" and q.calibration.name == "calibration"
    assert q.html("review") == tmp_path / "2026Q3" / "review.html"
    assert q.latest_grading() == q.grading  # nothing reviewed yet
    q.folder.mkdir()
    q.approved.write_bytes(b"")
    assert q.latest_grading() == q.approved
    names = [QuarterFiles.GRADING, QuarterFiles.APPROVED, QuarterFiles.MANIFEST, QuarterFiles.METRICS, AUDIT_LOG]
    spelled = [f"{p.relative_to(ROOT)}: {n}" for p in (ROOT / "src" / "segment").rglob("*.py") if p.name != "paths.py"
               for n in names if f'"{n}"' in p.read_text(encoding="utf-8")]
    assert spelled == []
