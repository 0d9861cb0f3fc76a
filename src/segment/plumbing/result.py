"""The one protocol every result object offers a notebook: ``table()`` (the frame behind it),
``summary()`` (a few lines of text) and ``_repr_html_`` (both, as JupyterLab shows the object).

Public: Result.
Reads: nothing. Writes: nothing.
"""
from __future__ import annotations

import html
from abc import ABC, abstractmethod

import pandas as pd


class Result(ABC):
    """Base of segment's result objects (a grading, a panel, a calibration, a review selection, an
    applied review, a build, loaded tables). Subclasses give ``table`` and ``summary`` (abstract: a
    class without them cannot be made); the HTML view is the summary over the table unless a class
    shows more."""

    @abstractmethod
    def table(self) -> pd.DataFrame:
        """The frame behind the result."""

    @abstractmethod
    def summary(self) -> str:
        """A few lines of text saying what the result holds."""

    def _repr_html_(self) -> str:
        text = "<br>".join(html.escape(line) for line in self.summary().splitlines())
        return f"<p>{text}</p>\n" + self.table().to_html(index=False, max_rows=30)
