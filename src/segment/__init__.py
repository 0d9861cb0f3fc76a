"""segment: grade customers into tiers and prove the grading against churn history.

Public: load_data, snapshot, load_scheme, grade, calibrate, select_for_review, apply_review, build_reports,
score_history, the exceptions.
Reads: nothing. Writes: nothing.

Public (what a notebook needs; ``segment.<name>``, loaded on first use so the command line starts
fast): :func:`load_data` (validate a data config into tables), :func:`snapshot` (indicators per
customer at a date), :func:`load_scheme`, :func:`grade` (a snapshot × a scheme → a Grading; customers
the CRM marks lost are left out), :func:`calibrate` (weights and cut-offs against churn),
:func:`select_for_review`, :func:`apply_review`, :func:`build_reports`, :func:`score_history` (each
customer's published tiers and scores, period by period), and the exceptions
:class:`SegmentError`, :class:`ConfigError`, :class:`DataError`.

    import segment
    tables = segment.load_data("data/demo/data.yaml").tables
    g = segment.grade(segment.snapshot(tables, "2026-09-30"), "s1_four_tier")
    g.tier_counts()
"""
from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    "load_data": ("data.validate", "load_data"),
    "snapshot": ("features.snapshot", "snapshot"),
    "load_scheme": ("grading.scheme", "load_scheme"),
    "grade": ("pipeline", "grade_customers"),
    "calibrate": ("calibration.run", "run_calibration"),
    "select_for_review": ("review.select", "select_for_review"),
    "apply_review": ("review.apply", "apply_review"),
    "build_reports": ("reports.build", "build_reports"),
    "score_history": ("grading.published", "score_history"),
    "SegmentError": ("errors", "SegmentError"),
    "ConfigError": ("errors", "ConfigError"),
    "DataError": ("errors", "DataError"),
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        module, attr = _PUBLIC[name]
        value = getattr(import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'segment' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
