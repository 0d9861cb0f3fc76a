"""Quarterly reports: papermill executes the thin notebooks in ``notebooks/``, nbconvert renders HTML.

``build_reports`` grades the quarter, executes each notebook into a staging folder and renders it
without code; only when everything succeeded are the files renamed into ``reports/<QUARTER>/`` and
``reports/index.html`` refreshed. A failed run leaves the previous reports untouched and keeps the
failed notebook (with its traceback) in ``reports/<QUARTER>/failed/``.

The section functions (``GradingReport``) are what the notebooks call: each returns an object that
renders itself as HTML, so a notebook cell is one call.
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import __version__
from .atomic import write_frame, write_text
from .errors import SegmentError

NOTEBOOKS = ("grading",)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_DATA = Path("data") / "demo" / "data.yaml"


class ReportError(SegmentError):
    """A notebook failed; the message says where the executed notebook with the traceback is."""


# --------------------------------------------------------------------------------------------
# what the notebooks call
# --------------------------------------------------------------------------------------------

@dataclass
class Section:
    """A block of report HTML (a heading-less paragraph, tables, figures) that a notebook cell shows."""

    parts: list[str] = field(default_factory=list)
    frames: list[pd.DataFrame] = field(default_factory=list)

    def _repr_html_(self) -> str:
        return "\n".join(self.parts)

    def table(self) -> pd.DataFrame:
        return self.frames[0] if self.frames else pd.DataFrame()


def html_table(df: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    """A DataFrame as an escaped HTML table with per-column number formats."""
    shown = df.copy()
    for col, fmt in (formats or {}).items():
        if col in shown:
            shown[col] = shown[col].map(lambda v, f=fmt: "" if pd.isna(v) else format(v, f))
    return shown.to_html(index=False, escape=True, border=0, classes="segment-table", na_rep="")


def _money(x: float) -> str:
    if abs(x) >= 1e8:
        return f"{x / 1e8:,.2f} 亿"
    if abs(x) >= 1e4:
        return f"{x / 1e4:,.1f} 万"
    return f"{x:,.0f}"


class GradingReport:
    """The leadership grading report for one quarter: built from a grading frame and its scheme."""

    def __init__(self, grading: pd.DataFrame, scheme, quarter: str, data_report: pd.DataFrame | None = None):
        self.grading = grading
        self.scheme = scheme
        self.quarter = quarter
        self.data_report = data_report if data_report is not None else pd.DataFrame()

    @classmethod
    def load(cls, *, quarter: str, data: str, scheme: str, grading: str = "", data_report: str = "") -> "GradingReport":
        from .schemes import load_scheme

        sch = load_scheme(scheme)
        if grading:
            frame = pd.read_parquet(grading)
            dq = pd.read_parquet(data_report) if data_report else None
        else:
            from .pipeline import grade_data, quarter_end

            g = grade_data(data, scheme, quarter_end(quarter))
            frame, dq = g.frame, g.loaded.report
        return cls(frame, sch, quarter, dq)

    def tier_table(self) -> pd.DataFrame:
        """Customers and 12-month revenue per tier, best tier first, with shares."""
        g = self.grading
        rev = g["annual_amount"] if "annual_amount" in g else pd.Series(0.0, index=g.index)
        by = pd.DataFrame({"tier": g["tier"], "revenue": rev.astype(float)}).groupby("tier", observed=True)
        order = [t.id for t in self.scheme.tiers]
        out = pd.DataFrame({"tier": order})
        out["label"] = [t.label or t.id for t in self.scheme.tiers]
        out["customers"] = out["tier"].map(by.size()).fillna(0).astype(int)
        out["customer_share"] = out["customers"] / max(len(g), 1)
        out["revenue_12m"] = out["tier"].map(by["revenue"].sum()).fillna(0.0)
        total = out["revenue_12m"].sum()
        out["revenue_share"] = out["revenue_12m"] / total if total else 0.0
        out["follow_up_days"] = [t.strategy.follow_up_days for t in self.scheme.tiers]
        return out

    def title(self) -> Section:
        name = html.escape(self.scheme.name or self.scheme.id)
        return Section([f"<h1>Customer grading — {html.escape(self.quarter)}</h1>"
                        f"<p>Scheme: <b>{name}</b> ({html.escape(self.scheme.source)}). "
                        f"{len(self.grading):,} customers graded at the quarter end.</p>"])

    def summary(self) -> Section:
        t = self.tier_table()
        top = t.iloc[0]
        total_rev = t["revenue_12m"].sum()
        parts = [f"{r.label} {r.customers:,} ({r.customer_share:.1%})" for r in t.itertuples()]
        text = (f"{len(self.grading):,} customers were graded, bringing {_money(total_rev)} of revenue over the last "
                f"12 months. By tier: {', '.join(parts)}. The top tier ({top.label}) holds "
                f"{top.customer_share:.1%} of customers and {top.revenue_share:.1%} of revenue.")
        if "overrides" in self.grading:
            n_over = int((self.grading["overrides"].fillna("") != "").sum())
            text += f" {n_over:,} customers were moved by an override rule."
        return Section([f"<p>{html.escape(text)}</p>"], [t])

    def tiers(self) -> Section:
        t = self.tier_table()
        shown = t.rename(columns={"customer_share": "share of customers", "revenue_12m": "revenue (12 months)",
                                  "revenue_share": "share of revenue", "follow_up_days": "follow-up (days)"})
        fig = self._tier_chart(t)
        return Section([html_table(shown, {"share of customers": ".1%", "share of revenue": ".1%",
                                           "revenue (12 months)": ",.0f", "customers": ","}), fig], [t])

    def strategies(self) -> Section:
        rows = [{"tier": t.label or t.id, "actions": "; ".join(t.strategy.actions),
                 "follow-up (days)": t.strategy.follow_up_days, "owner": t.strategy.owner} for t in self.scheme.tiers]
        df = pd.DataFrame(rows)
        return Section([html_table(df)], [df])

    def data_quality(self) -> Section:
        dq = self.data_report
        if dq is None or dq.empty:
            return Section(["<p>The data passed every validation check with no warnings.</p>"], [pd.DataFrame()])
        return Section([f"<p>{len(dq)} warning(s) from validation (errors stop the report):</p>",
                        html_table(dq.drop(columns=["rows"], errors="ignore"))], [dq])

    @staticmethod
    def _tier_chart(t: pd.DataFrame) -> str:
        """Customer share and revenue share per tier as an inline SVG (renders offline)."""
        import io

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "WenQuanYi Zen Hei", "DejaVu Sans"]
        plt.rcParams["svg.fonttype"] = "none"  # keep text as text: CJK labels render with the reader's fonts
        plt.rcParams["svg.hashsalt"] = "segment"  # deterministic ids
        fig, ax = plt.subplots(figsize=(6.5, 2.6))
        x = range(len(t))
        ax.bar([i - 0.2 for i in x], t["customer_share"], width=0.4, label="share of customers")
        ax.bar([i + 0.2 for i in x], t["revenue_share"], width=0.4, label="share of revenue")
        ax.set_xticks(list(x), list(t["tier"]))
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.legend(frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(fig)
        svg = buf.getvalue()
        return svg[svg.find("<svg"):]


# --------------------------------------------------------------------------------------------
# building the reports
# --------------------------------------------------------------------------------------------

@dataclass
class BuildResult:
    quarter: str
    out_dir: Path
    files: list[Path]
    seconds: float
    skipped: bool = False

    def summary(self) -> str:
        if self.skipped:
            return f"reports for {self.quarter} are up to date in {self.out_dir} (nothing changed)"
        listed = "\n".join(f"  {p}" for p in self.files)
        return f"wrote the {self.quarter} reports in {self.seconds:.1f} s:\n{listed}"


def _fingerprint_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _inputs_fingerprint(data: Path, scheme_path: Path, loaded) -> dict:
    files = {str(data): _fingerprint_file(data), str(scheme_path): _fingerprint_file(scheme_path)}
    for name, src in loaded.config.tables.items():
        if src.path:
            p = (data.parent / src.path).resolve()
            files[str(p)] = _fingerprint_file(p)
    for nb in NOTEBOOKS:
        p = PROJECT_ROOT / "notebooks" / f"{nb}.ipynb"
        files[str(p)] = _fingerprint_file(p)
    return files


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


_CDN = re.compile(r'<script[^>]+src="https?://[^"]*"[^>]*>\s*</script>|<link[^>]+href="https?://[^"]*"[^>]*>', re.I)
_REMOTE_MODULE = re.compile(r"<script[^>]*>(?:(?!</script>).)*?https?://(?:(?!</script>).)*</script>", re.S | re.I)
_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S | re.I)


def to_html(notebook: Path) -> str:
    """Render an executed notebook for readers: no code, no prompts, no parameters, no CDN requests."""
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {"parameters", "injected-parameters", "remove-cell"}
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    exporter = HTMLExporter(config=c)
    nb = nbformat.read(notebook, as_version=4)
    body, _ = exporter.from_notebook_node(nb)
    body = _MATHJAX.sub("", body)
    body = _CDN.sub("", body)
    body = _REMOTE_MODULE.sub("", body)
    return body


def _execute(nb_in: Path, nb_out: Path, params: dict, cwd: Path) -> None:
    import papermill as pm

    pm.execute_notebook(str(nb_in), str(nb_out), parameters=params, cwd=str(cwd), kernel_name="python3",
                        progress_bar=False, log_output=False, request_save_on_cell_execute=False)


def build_reports(*, quarter: str | None = None, data: str | Path | None = None, scheme: str = "s1_four_tier",
                  reports_dir: str | Path = "reports", force: bool = False) -> BuildResult:
    from .pipeline import grade_data, latest_complete_quarter, data_end, quarter_end
    from .schemes import resolve
    from .validate import load_data

    t0 = time.perf_counter()
    reports_dir = Path(reports_dir)
    if data is None:
        data = DEMO_DATA
        if not Path(data).is_file():
            from .demo import write_demo

            write_demo(Path(data).parent)
    data = Path(data)
    if quarter is None:
        quarter = latest_complete_quarter(data_end(load_data(data)))
    as_of = quarter_end(quarter)
    graded = grade_data(data, scheme, as_of)
    scheme_path = resolve(scheme)

    out_dir = reports_dir / quarter
    fingerprints = _inputs_fingerprint(data, scheme_path, graded.loaded)
    manifest_path = out_dir / "manifest.json"
    if not force and manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        if old.get("inputs") == fingerprints and old.get("package_version") == __version__ and all(
                (out_dir / f"{nb}.html").is_file() for nb in NOTEBOOKS):
            return BuildResult(quarter, out_dir, [], time.perf_counter() - t0, skipped=True)

    staging = reports_dir / f".staging-{quarter}-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    timings: dict[str, float] = {}
    try:
        write_frame(graded.frame, staging / "grading.parquet")
        write_frame(graded.loaded.report.astype(str), staging / "data_quality.parquet")
        params = {"quarter": quarter, "data": str(data.resolve()), "scheme": str(scheme_path.resolve()),
                  "grading": str((staging / "grading.parquet").resolve()),
                  "data_report": str((staging / "data_quality.parquet").resolve())}
        for nb in NOTEBOOKS:
            t1 = time.perf_counter()
            executed = staging / f"{nb}.ipynb"
            try:
                _execute(PROJECT_ROOT / "notebooks" / f"{nb}.ipynb", executed, params, PROJECT_ROOT)
            except Exception as e:  # papermill's PapermillExecutionError and kernel failures
                failed_dir = out_dir / "failed"
                failed_dir.mkdir(parents=True, exist_ok=True)
                kept = failed_dir / f"{nb}.ipynb"
                if executed.exists():
                    os.replace(executed, kept)
                raise ReportError(f"error: the {nb} notebook failed: {type(e).__name__}: "
                                  f"{str(e).strip().splitlines()[-1] if str(e).strip() else ''}\n"
                                  f"  the executed notebook with the traceback is {kept}; "
                                  f"the previous reports in {out_dir} are untouched") from None
            (staging / f"{nb}.html").write_text(to_html(executed), encoding="utf-8")
            timings[nb] = round(time.perf_counter() - t1, 2)
        out_dir.mkdir(parents=True, exist_ok=True)
        files = []
        for nb in NOTEBOOKS:
            for suffix in (".ipynb", ".html"):
                dest = out_dir / f"{nb}{suffix}"
                os.replace(staging / f"{nb}{suffix}", dest)
                files.append(dest)
        os.replace(staging / "grading.parquet", out_dir / "grading.parquet")
        files.append(out_dir / "grading.parquet")
        manifest = {
            "quarter": quarter, "as_of": str(as_of.date()), "scheme": graded.scheme.id,
            "package_version": __version__, "git_commit": _git_commit(),
            "inputs": fingerprints, "timings_seconds": timings,
            "customers": int(len(graded.frame)),
        }
        write_text(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        files.append(manifest_path)
        shutil.rmtree(out_dir / "failed", ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_index(reports_dir)
    return BuildResult(quarter, out_dir, files, time.perf_counter() - t0)


def write_index(reports_dir: Path) -> Path:
    """reports/index.html: every quarter's reports, newest first."""
    quarters = sorted((p for p in reports_dir.iterdir() if p.is_dir() and re.fullmatch(r"\d{4}Q[1-4]", p.name)),
                      key=lambda p: p.name, reverse=True)
    rows = []
    for q in quarters:
        links = " · ".join(f'<a href="{html.escape(q.name)}/{nb}.html">{nb}</a>' for nb in NOTEBOOKS
                           if (q / f"{nb}.html").is_file())
        rows.append(f"<tr><td>{html.escape(q.name)}</td><td>{links}</td></tr>")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>segment reports</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:.3em 1em}</style></head><body>"
            "<h1>segment reports</h1><table><tr><th>quarter</th><th>reports</th></tr>"
            + "".join(rows) + "</table></body></html>\n")
    return write_text(reports_dir / "index.html", page)
