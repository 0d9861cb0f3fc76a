"""The one protocol every result object offers a notebook: ``table()`` (the frame behind it),
``summary()`` (a few lines of text) and ``_repr_html_`` (both, as JupyterLab shows the object).

Public: Result.
Reads: nothing. Writes: nothing.
"""
from __future__ import annotations

import html

import pandas as pd


class Result:
    """Base of segment's result objects (a grading, a panel, a calibration, a review selection, an
    applied review, a build, loaded tables). Subclasses give ``table`` and ``summary``; the HTML view
    is the summary over the table unless a class shows more."""

    def table(self) -> pd.DataFrame:  # pragma: no cover - every subclass gives its own
        raise NotImplementedError

    def summary(self) -> str:  # pragma: no cover - every subclass gives its own
        raise NotImplementedError

    def _repr_html_(self) -> str:
        text = "<br>".join(html.escape(line) for line in self.summary().splitlines())
        return f"<p>{text}</p>\n" + self.table().to_html(index=False, max_rows=30)
