"""A report notebook run and rendered: papermill executes it (in the project's folder, on the project's kernel), nbconvert turns it into one offline HTML page through the project's template (reports/templates/report/), sections that showed nothing left out.

Public: to_html, execute, provenance_footer, TEMPLATE.
Reads: notebooks/*.ipynb. Writes: the executed notebook (a staging folder of the build).
"""
from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path

#: the report page's nbconvert template (extends JupyterLab's cell markup; page, CSS and contents ours)
TEMPLATE = Path(__file__).resolve().parent / "templates" / "report"


_H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.S | re.I)


_HEADING = re.compile(r"^##\s+(.+?)\s*#*\s*$", re.M)


def _plain(fragment: str) -> str:
    """The text of an HTML or Markdown fragment (tags and entities resolved, spaces collapsed)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def _without_empty_sections(cells: list) -> list:
    """The cells without the sections that showed nothing: a section heading alone in its markdown cell
    whose code cells (up to the next markdown cell) have no output — a report method returns None
    for a section that does not apply (a calibration that could not run says why once, under the
    title, instead of under every heading)."""
    kept, i = [], 0
    while i < len(cells):
        cell = cells[i]
        if cell.cell_type == "markdown" and re.fullmatch(r"\s*##[^\n]*\s*", cell.source):
            j = i + 1
            while j < len(cells) and cells[j].cell_type == "code":
                j += 1
            if j > i + 1 and not any(c.get("outputs") for c in cells[i + 1:j]):
                i = j
                continue
        kept.append(cell)
        i += 1
    return kept


def _page_parts(nb) -> dict:
    """What the page template needs besides the cells: the report's title (its first ``<h1>`` output,
    else the notebook's name), the contents (each ``## `` section heading with the id nbconvert gives it)
    and the cell after which the contents go (the one showing the title; marked in memory only)."""
    nb.cells = _without_empty_sections(nb.cells)
    title, toc = "", []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for heading in _HEADING.findall(cell.source):
                text = _plain(heading)
                toc.append((text.replace(" ", "-"), text))  # nbconvert's heading id (filters.strings.add_anchor)
        elif not title:
            for out in cell.get("outputs", []):
                found = _H1.search(str(out.get("data", {}).get("text/html", "")))
                if found:
                    title = _plain(found.group(1))
                    cell.metadata["segment_toc"] = True
                    break
    return {"title": title, "toc": toc}


def to_html(notebook: Path, footer: str = "", banner: tuple[str, str] | None = None) -> str:
    """Render an executed notebook for readers through segment's own nbconvert template
    (``templates/report``): no code, no prompts, no parameters, nothing fetched from the network; the
    report's title, a table of contents after it, print styles and the provenance ``footer`` (HTML);
    ``banner``: (state, text) of the period's approval, shown at the top (DRAFT until approved)."""
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {"parameters", "injected-parameters", "remove-cell"}
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    exporter = HTMLExporter(config=c, extra_template_basedirs=[str(TEMPLATE.parent)], template_name=TEMPLATE.name)
    nb = nbformat.read(notebook, as_version=4)
    parts = _page_parts(nb)
    parts["title"] = parts["title"] or notebook.stem
    parts["footer"] = footer
    parts["banner_state"], parts["banner"] = banner if banner else ("", "")
    body, _ = exporter.from_notebook_node(nb, resources={"segment": parts})
    return body


def provenance_footer(manifest: dict, generated: str) -> str:
    inputs = manifest.get("inputs", {})
    short = ", ".join(f"{html.escape(Path(k).name)} {v[:12]}" for k, v in inputs.items())
    return (f"Generated {html.escape(generated)} by segment {html.escape(manifest['package_version'])}"
            f"{' (commit ' + html.escape(manifest['git_commit'][:12]) + ')' if manifest.get('git_commit') else ''}; "
            f"period {html.escape(manifest['quarter'])}, as of {html.escape(manifest['as_of'])}, scheme "
            f"{html.escape(manifest['scheme'])}. Inputs (sha256): {short}.")


def _ipc_kernel_manager():
    """A kernel manager talking to the kernel over Unix sockets in a private temporary folder: no TCP
    port is opened, and the kernel has no "running over TCP without encryption" warning to print
    into the terminal of `make report`."""
    import tempfile
    import uuid

    from jupyter_client.manager import AsyncKernelManager

    class IpcKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            folder = tempfile.mkdtemp(prefix="segment-kernel-")
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", os.path.join(folder, f"k{uuid.uuid4().hex[:8]}"))
            super().__init__(**kwargs)
            self._ipc_folder = folder

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(self._ipc_folder, ignore_errors=True)

    return IpcKernelManager


def execute(nb_in: Path, nb_out: Path, params: dict, cwd: Path) -> None:
    import papermill as pm

    # jupyter_client interrupts the kernel before every shutdown; one caught mid-message logs
    # "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel." into the terminal of `make report`.
    # The kernel's own log is of no use to a reader (a cell's error is in the notebook, a dead kernel
    # fails the build): keep it to critical messages.
    pm.execute_notebook(str(nb_in), str(nb_out), parameters=params, cwd=str(cwd), kernel_name="python3",
                        progress_bar=False, log_output=False, request_save_on_cell_execute=False,
                        kernel_manager_class=_ipc_kernel_manager(), extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
