"""Every exception segment raises, in one hierarchy that carries the offending data (after papermill's
exceptions.py).

Public: :class:`SegmentError` and its kinds (:class:`ConfigError`, :class:`DataError`,
:class:`MissingInputs`, :class:`ConditionError`, :class:`ReportError`), :class:`MissingOptional` (a warning),
:func:`format_report`.
Reads: nothing. Writes: nothing.

Every ``SegmentError`` is a problem with the *input* (data, params, a review sheet). Its message says
what and where, without a prefix: the CLI prints it after ``error: `` and exits with the error's
``exit_code`` (2), without a traceback; a notebook shows it as ``SegmentError: …``. Anything else
escaping the CLI is a bug (exit 1).
"""
from __future__ import annotations

import pandas as pd


class SegmentError(Exception):
    """Bad input. ``str(err)`` is the full user-facing message (what, where, and the fix)."""

    exit_code = 2


class ConfigError(SegmentError):
    """A params file (data config, scheme, calibration or report params) is wrong.

    ``path`` is the file, ``key`` the key path inside it (``tiers[2].min_score``)."""

    def __init__(self, path, key: str | None, problem: str, fix: str | None = None):
        self.path, self.key, self.problem, self.fix = str(path), key, problem, fix
        where = f"{self.path}" + (f", key `{key}`" if key else "")
        super().__init__(f"{where}: {problem}" + (f"\n  fix: {fix}" if fix else ""))


class DataError(SegmentError):
    """The data failed validation. ``report`` is the table of every failure found (one row each)."""

    def __init__(self, report: pd.DataFrame, source: str = "the data"):
        self.report = report
        errors = report[report["severity"] == "error"] if "severity" in report else report
        lines = [f"{source} failed validation: {len(errors)} problem(s); fix them in the source "
                 f"or declare how to handle them in the data config (see `drop:` in the README)."]
        lines.append(format_report(report))
        super().__init__("\n".join(lines))


class MissingInputs(SegmentError):
    """The scheme reads indicators the data does not provide."""


class MissingOptional(UserWarning):
    """A scheme's optional inputs are absent from the data: graded as missing."""


class ReportError(SegmentError):
    """A notebook failed; the message says where the executed notebook with the traceback is."""


class ConditionError(SegmentError, ValueError):
    """A condition (of a scheme's gate, override or rule) that does not parse; the message says where
    and what was expected. Also a ValueError: pydantic reports it as the scheme key's error."""


def format_report(report: pd.DataFrame) -> str:
    """A validation report as a plain-text table (what the CLI prints)."""
    if report.empty:
        return "no problems found"
    shown = report.copy()
    shown["rows"] = shown["rows"].map(lambda r: r if len(str(r)) <= 40 else str(r)[:37] + "...")
    shown["example"] = shown["example"].map(lambda v: (str(v)[:30] + "...") if len(str(v)) > 33 else str(v))
    with pd.option_context("display.max_rows", 500, "display.max_columns", 20, "display.width", 250,
                           "display.max_colwidth", 80):
        return shown.to_string(index=False)
