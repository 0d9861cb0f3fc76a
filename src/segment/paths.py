"""Where the project's files are: the project root, found once per call, and the folders under it.

Public: :func:`root`, :func:`params_file`, :func:`schemes_dir`, :func:`notebooks_dir`,
:func:`reports_dir`, :func:`demo_data`, :func:`project_path`, :class:`QuarterFiles` (a quarter's file names), ``AUDIT_LOG``. Reads: ``SEGMENT_ROOT``, the current
folder and its parents. Writes: nothing.

The **project root** is, in order: the folder named by ``SEGMENT_ROOT``; the nearest folder at or
above the current one that holds ``params/schemes/``; the checkout this package was installed from
(editable install); the current folder. Params (``params/*.yaml``), scheme ids, the report notebooks
and the ``reports/`` folder resolve from it, so ``segment`` commands work from any folder and a
notebook opened in JupyterLab (which starts in ``notebooks/``) finds them. Paths a user types on the
command line (``--data``, ``--out``, a scheme file) stay relative to the current folder.
"""
from __future__ import annotations

import os
from pathlib import Path

from segment.errors import SegmentError

ENV = "SEGMENT_ROOT"
_CHECKOUT = Path(__file__).resolve().parents[2]


def _is_project(folder: Path) -> bool:
    return (folder / "params" / "schemes").is_dir()


def root() -> Path:
    """The project root (see the module docstring)."""
    env = os.environ.get(ENV)
    if env:
        p = Path(env).expanduser().resolve()
        if not _is_project(p):
            raise SegmentError(f"{ENV}={env} has no params/schemes/ folder; point it at the project "
                               f"folder (the one holding params/), or unset it")
        return p
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if _is_project(folder):
            return folder
    return _CHECKOUT if _is_project(_CHECKOUT) else here


def params_file(name: str) -> Path:
    """``params/<name>`` under the project root."""
    return root() / "params" / name


def schemes_dir() -> Path:
    return root() / "params" / "schemes"


def notebooks_dir() -> Path:
    """The report notebooks: the project's own ``notebooks/``, else the installed checkout's."""
    own = root() / "notebooks"
    return own if (own / "grading.ipynb").is_file() else _CHECKOUT / "notebooks"


def reports_dir() -> Path:
    return root() / "reports"


def demo_data() -> Path:
    """The demo's data config (``make demo`` writes it)."""
    return root() / "data" / "demo" / "data.yaml"


def project_path(path: str | Path) -> Path:
    """A path from a notebook's parameters or a params file: as given when absolute or when it exists
    relative to the current folder, else relative to the project root."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return root() / p


#: the audit log of reviewers' decisions, one per reports folder (kept across quarters)
AUDIT_LOG = "audit_log.csv"


class QuarterFiles:
    """The files of one quarter's reports, named once: ``reports/<quarter>/`` holds the computed
    grading, the approved grading (after the review), the manifest, each report's notebook and HTML,
    and the calibration's folder. The build, the command line and the reports all use this catalog."""

    GRADING = "grading.parquet"
    APPROVED = "grading.approved.parquet"
    MANIFEST = "manifest.json"
    CALIBRATION = "calibration"
    METRICS = "metrics.json"
    FOLLOW_UPS = "follow_ups.xlsx"

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    @property
    def grading(self) -> Path:
        return self.folder / self.GRADING

    @property
    def approved(self) -> Path:
        return self.folder / self.APPROVED

    @property
    def manifest(self) -> Path:
        return self.folder / self.MANIFEST

    @property
    def calibration(self) -> Path:
        return self.folder / self.CALIBRATION

    @property
    def follow_ups(self) -> Path:
        return self.folder / self.FOLLOW_UPS

    def html(self, notebook: str) -> Path:
        return self.folder / f"{notebook}.html"

    def latest_grading(self) -> Path:
        """The approved grading when the review was applied, else the computed one."""
        return self.approved if self.approved.is_file() else self.grading
