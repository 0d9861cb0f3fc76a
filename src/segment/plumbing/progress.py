"""Progress bars for long runs, the way users expect them: a tqdm bar on a terminal, a widget in
Jupyter (when ipywidgets is installed; a text bar otherwise), nothing at all when output goes to a
file, a pipe or a CI log. ``SEGMENT_PROGRESS=1`` / ``0`` forces it on / off.

Public: enabled, progress.
Reads: nothing. Writes: progress bars to a terminal or a notebook.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable


def _in_jupyter() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def enabled() -> bool:
    forced = os.environ.get("SEGMENT_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty or _in_jupyter()


def progress(iterable: Iterable, *, desc: str, unit: str = "it", total: int | None = None, leave: bool = False):
    """``iterable`` wrapped in a progress bar when one should be shown, else returned as is."""
    if not enabled():
        return iterable
    if _in_jupyter():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm
        except ImportError:
            from tqdm.std import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm(iterable, desc=desc, unit=unit, total=total, leave=leave)
