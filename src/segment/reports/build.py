"""Quarterly reports: papermill executes the thin notebooks in ``notebooks/``, nbconvert renders HTML.

Public: BuildResult, source_paths, library_versions, to_html, build_reports, expert_link, churn_probability,
write_index.
Reads: the data config, the scheme, params/, notebooks/*.ipynb. Writes: reports/<quarter>/ (HTML,
manifest.json, gradings, review sheet), reports/index.html.

``build_reports`` grades the quarter, executes each notebook into a staging folder and renders it
without code; only when everything succeeded are the files renamed into ``reports/<QUARTER>/`` and
``reports/index.html`` refreshed. A failed run leaves the previous reports untouched and keeps the
failed notebook (with its traceback) in ``reports/<QUARTER>/failed/``.

The section functions (``GradingReport``) are what the notebooks call: each returns an object that
renders itself as HTML, so a notebook cell is one call."""
from __future__ import annotations

import html
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segment import __version__, paths
from segment.calibration.churn import at_risk
from segment.calibration.params import load_calibration_params
from segment.calibration.probability import ProbabilityLink
from segment.calibration.run import run_calibration
from segment.data.config import read_data_config
from segment.data.validate import load_data
from segment.demo.write import write_demo
from segment.errors import ReportError, SegmentError
from segment.grading.followup import write_follow_up_sheets
from segment.grading.scheme import ChurnProbability, load_scheme, resolve
from segment.paths import AUDIT_LOG, QuarterFiles
from segment.periods import is_period, latest_complete, parse_period
from segment.plumbing.atomic import (
    remove_orphans,
    sha256_file,
    signals_deferred,
    write_frame,
    write_text,
)
from segment.plumbing.progress import progress
from segment.plumbing.result import Result
from segment.reports.calibration import calibration_dates
from segment.reports.grading_data import prepare_grading_report
from segment.reports.html import money
from segment.reports.provenance import (
    NOTEBOOKS,
    cached_data_end,
    data_key,
    git_commit,
    has_sql,
    inputs_fingerprint,
    library_versions,
    source_paths,
)
from segment.reports.render import execute, provenance_footer, to_html
from segment.review.approval import banner
from segment.review.audit import verify_audit
from segment.review.params import load_review_params


@dataclass
class BuildResult(Result):
    quarter: str
    out_dir: Path
    files: list[Path]
    seconds: float
    skipped: bool = False
    warnings: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"file": [str(p) for p in self.files],
                             "bytes": [p.stat().st_size if p.exists() else 0 for p in self.files]})

    def summary(self) -> str:
        if self.skipped:
            return f"reports for {self.quarter} are up to date in {self.out_dir} (nothing changed)"
        listed = "\n".join(f"  {p}" for p in self.files)
        return f"wrote the {self.quarter} reports in {self.seconds:.1f} s:\n{listed}" + "".join(
            f"\nwarning: {w}" for w in self.warnings)


#: each HTML report must stay under this size to be readable (opened from a mail, printed, kept): the
#: reports show aggregates and top lists, never one row per customer — at 1.1M customers they are
#: 0.3–0.75 MiB (docs/scale.md). A report above it is still written, with a warning in the summary.
HTML_BUDGET_BYTES = 2 * 2**20


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def _other_build(out_dir: Path, old: dict, scheme_id: str, data: Path, replace: bool) -> bool:
    """A quarter's folder holds the reports of one scheme on one data config: building another over it
    would leave the old approved grading, review sheet and calibration beside the new ones. Refused
    unless ``replace``; returns whether the folder holds another build (to be cleared)."""
    was_scheme, was_data = old.get("scheme"), old.get("data")
    data_now = str(Path(data).resolve())
    if (was_scheme is None or was_scheme == scheme_id) and (was_data is None or was_data == data_now):
        return False
    if replace:
        return True
    raise SegmentError(
        f"{out_dir} holds the {was_scheme} reports of {was_data}; this build is {scheme_id} on {data_now}. "
        f"Build it into a folder of its own (--reports-dir {out_dir.parent / scheme_id}; make: "
        f"REPORTS={out_dir.parent / scheme_id}), or pass --replace (make: REPLACE=1) to replace those reports "
        "(their approved grading and review sheet go with them)")


@contextmanager
def _quarter_lock(reports_dir: Path, quarter: str):
    """One build per quarter at a time: a second `make report` for the same quarter is refused
    (different quarters build side by side, so `make -j` is safe)."""
    import fcntl

    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f".lock-{quarter}"
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SegmentError(f"the {quarter} reports are being built by another run (lock {path}); "
                               "wait for it to finish, then run again") from None
        yield
    finally:
        handle.close()


def build_reports(*, quarter: str | None = None, data: str | Path | None = None, scheme: str = "s1_four_tier",
                  reports_dir: str | Path | None = None, force: bool = False, replace: bool = False) -> BuildResult:
    """Build the quarter's reports into ``reports_dir/<quarter>/`` (default quarter: the latest complete
    one in the data), or answer "up to date" when nothing changed.

    Nothing changed means: the sha256 of every input — data config, file sources, scheme, notebooks,
    report params, audit log — equals the quarter's ``manifest.json``, with the same package version and
    the HTML files there. These are hashed *before* any table is loaded, so an unchanged rerun never
    loads the data; the default quarter comes from the config's ``as_of:`` or from the data end a
    previous build recorded for the same bytes (``manifest.json`` ``data_end``), else the tables are
    loaded to find it. Hashing before loading also means a file that changes while it is being loaded
    leaves the older hash in the manifest: the next run rebuilds. A SQL source is loaded first, as its
    fingerprint is its query's result (``_sql_fingerprint``).

    Long because it is the build's transaction: inputs fingerprinted, the up-to-date check, the staging
    folder, each notebook, the manifest and the swap into place, in that order."""
    from segment.pipeline import check_period, data_end

    t0 = time.perf_counter()
    reports_dir = Path(reports_dir) if reports_dir is not None else paths.reports_dir()
    if data is None:
        data = paths.demo_data()
        if not Path(data).is_file():

            write_demo(Path(data).parent)
    data = Path(data)
    scheme_path = resolve(scheme)
    config = read_data_config(data)
    loaded = None
    try:
        if has_sql(config) or not all(p.is_file() for p in source_paths(data, config).values()):
            # a database cannot be fingerprinted by bytes: load (its query result is the fingerprint);
            # a missing file: load_data says which, in its own words
            loaded = load_data(data)
        # every file input by its bytes, before any table is read: an unchanged rerun never loads the data
        fingerprints = inputs_fingerprint(data, scheme_path, loaded, config=config)
        key = data_key(data, config, fingerprints)
        if quarter is None:
            end = pd.Timestamp(config.as_of) if config.as_of is not None else (
                data_end(loaded) if loaded is not None else cached_data_end(reports_dir, key))
            if end is None:   # the last transaction date of data no build has seen yet
                loaded = load_data(data)
                end = data_end(loaded)
            quarter = str(latest_complete(end, load_scheme(scheme_path).cadence))
        quarter = str(parse_period(quarter, "--period"))
        as_of = parse_period(quarter).end

        with _quarter_lock(reports_dir, quarter):
            out_dir = reports_dir / quarter
            audit = reports_dir / AUDIT_LOG
            if audit.is_file():
                fingerprints[str(audit.resolve())] = sha256_file(audit)
            manifest_path = QuarterFiles(out_dir).manifest
            old = {}
            if manifest_path.is_file():
                try:
                    old = json.loads(manifest_path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    old = {}
            other = bool(old) and _other_build(out_dir, old, load_scheme(scheme_path).id, data, replace)
            if not force and old and not other:
                if old.get("inputs") == fingerprints and old.get("package_version") == __version__ and all(
                        (out_dir / f"{nb}.html").is_file() for nb in NOTEBOOKS):
                    return BuildResult(quarter, out_dir, [], time.perf_counter() - t0, skipped=True)
            if loaded is None:
                loaded = load_data(data)  # validated once; every report reads these tables
            check_period(quarter, loaded.tables.date_range()[0], data_end(loaded))

            staging = reports_dir / f".staging-{quarter}-{os.getpid()}"
            if staging.exists():
                shutil.rmtree(staging)

            remove_orphans(reports_dir, f".staging-{quarter}-")  # what a killed build left (we hold the lock)
            staging.mkdir(parents=True)
            timings: dict[str, float] = {}
            try:

                t1 = time.perf_counter()
                report = prepare_grading_report(loaded, scheme_path, quarter, reports_dir=reports_dir)
                timings["prepare"] = round(time.perf_counter() - t1, 2)
                manifest = {
                    "quarter": quarter, "as_of": str(as_of.date()), "scheme": report.scheme.id,
                    "scheme_path": str(scheme_path.resolve()), "data": str(data.resolve()),
                    "package_version": __version__, "git_commit": git_commit(), "inputs": fingerprints,
                    "data_end": {"date": str(data_end(loaded).date()), "key": key},
                    "customers": int(len(report.grading)),
                    "headline": _headline(report),
                    "libraries": library_versions(),
                }
                t1 = time.perf_counter()
                calib_dir = QuarterFiles(staging).calibration
                manifest["calibration"] = _calibrate(loaded, data, scheme_path, as_of, calib_dir)
                timings["calibrate"] = round(time.perf_counter() - t1, 2)
                link = expert_link(calib_dir)
                if link is not None and "churn_probability" not in report.grading:
                    # the period's calibration gives each graded customer it can judge a churn probability
                    report.grading["churn_probability"] = churn_probability(report.grading, link)
                report.save(staging / "bundle")
                generated = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
                # the review notebook reads the grading and, for its sample's seed, the manifest beside it
                write_frame(report.grading, QuarterFiles(staging).grading)
                # until leadership approves this period's published grading, every report says DRAFT
                approval = _approval(out_dir, QuarterFiles(staging).grading, audit, quarter, report.scheme.id)
                manifest["approval"] = approval
                follow = report.follow_up_table()
                if len(follow):  # one sheet per account manager: their overdue and due-soon customers
                    write_follow_up_sheets(follow, QuarterFiles(staging).follow_ups)
                write_text(QuarterFiles(staging).manifest, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
                bundle = (staging / "bundle").resolve()
                common = {"quarter": quarter, "scheme": str(scheme_path.resolve())}
                params = {
                    "grading": {**common, "data": str(data.resolve()), "bundle": str(bundle)},
                    "review": {**common, "grading": str(QuarterFiles(staging).grading.resolve()),
                               "previous": str(bundle / "previous.parquet") if report.previous is not None else ""},
                    "calibration": {"quarter": quarter, "calibration": str(calib_dir.resolve())},
                }
                for nb in progress(NOTEBOOKS, desc="reports", unit="notebook"):
                    t1 = time.perf_counter()
                    executed = staging / f"{nb}.ipynb"
                    try:
                        execute(paths.notebooks_dir() / f"{nb}.ipynb", executed, params[nb], paths.root())
                    except Exception as e:  # papermill's PapermillExecutionError and kernel failures
                        failed_dir = out_dir / "failed"
                        failed_dir.mkdir(parents=True, exist_ok=True)
                        kept = failed_dir / f"{nb}.ipynb"
                        if executed.exists():
                            os.replace(executed, kept)
                        raise ReportError(f"the {nb} notebook failed: {type(e).__name__}: "
                                          f"{str(e).strip().splitlines()[-1] if str(e).strip() else ''}\n"
                                          f"  the executed notebook with the traceback is {kept}; "
                                          f"the previous reports in {out_dir} are untouched") from None
                    (staging / f"{nb}.html").write_text(to_html(executed, provenance_footer(manifest, generated),
                                                                     banner=(approval["state"], approval["text"])), encoding="utf-8")
                    timings[nb] = round(time.perf_counter() - t1, 2)
                manifest["timings_seconds"] = timings
                manifest["html_bytes"] = {nb: (staging / f"{nb}.html").stat().st_size for nb in NOTEBOOKS}
                over = [f"{nb}.html is {_size(size)}, above the {_size(HTML_BUDGET_BYTES)} budget for a "
                        "readable report (segment.reports.build.HTML_BUDGET_BYTES): a table grew with the customers — cap it"
                        for nb, size in manifest["html_bytes"].items() if size > HTML_BUDGET_BYTES]
                out_dir.mkdir(parents=True, exist_ok=True)
                files = []
                names = [f"{nb}{suffix}" for nb in NOTEBOOKS for suffix in (".ipynb", ".html")] + [QuarterFiles.GRADING]
                names += [QuarterFiles.FOLLOW_UPS] if QuarterFiles(staging).follow_ups.is_file() else []
                names += [f"{QuarterFiles.CALIBRATION}/{f.name}" for f in sorted(calib_dir.glob("*")) if f.is_file()]
                QuarterFiles(out_dir).calibration.mkdir(exist_ok=True)
                with signals_deferred():  # Ctrl-C / SIGTERM during the renames: all new files, or all old ones
                    for name in names:
                        os.replace(staging / name, out_dir / name)
                        files.append(out_dir / name)
                    write_text(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
                    files.append(manifest_path)
                    if other:  # --replace: nothing of the other build stays beside these reports
                        keep = {p.resolve() for p in files}
                        for f in sorted(out_dir.rglob("*"), reverse=True):
                            if f.is_file() and f.resolve() not in keep:
                                f.unlink()
                shutil.rmtree(out_dir / "failed", ignore_errors=True)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            write_index(reports_dir)
            return BuildResult(quarter, out_dir, files, time.perf_counter() - t0, warnings=over)

    finally:
        if loaded is not None:
            loaded.tables.release()  # Spark: what the tables persisted on the executors


def _calibrate(loaded, data: Path, scheme_path: Path, as_of: pd.Timestamp, folder: Path) -> dict:
    """Calibrate the scheme on the quarter's history (dates from ``calibration_dates``) into ``folder``;
    when the scheme or the history does not allow it, say why in ``folder/skipped.json``."""

    folder.mkdir(parents=True, exist_ok=True)
    params = load_calibration_params()
    first = loaded.tables.date_range()[0]
    dates = calibration_dates(as_of, first, params.horizon_days)
    reason = ""
    if dates is None:
        reason = (f"the data start {first.date()}: not enough history "
                  f"for a training year plus two {params.horizon_days}-day horizons before {as_of.date()}")
    else:
        try:
            result = run_calibration(data, scheme_path, dates[0], dates[1], params.horizon_days, folder,
                                     params=params, loaded=loaded)
            return {"train_as_of": dates[0], "test_as_of": dates[1],
                    "test_auc": {k: result.metrics[k]["test"]["auc"] for k in ("expert", "calibrated")}}
        except SegmentError as e:
            reason = str(e)
    write_text(folder / "skipped.json", json.dumps({"reason": reason}, ensure_ascii=False))
    return {"skipped": reason}


def expert_link(folder: Path) -> ChurnProbability | None:
    """The churn probability of the scheme's own score fitted by the calibration in ``folder`` (None
    when there is none, or the scheme is not scored)."""
    path = folder / QuarterFiles.METRICS
    if not path.is_file():
        return None
    m = json.loads(path.read_text(encoding="utf-8"))
    link = ((m.get("expert") or {}).get("probability") or {}).get("link")
    if not link:
        return None
    return ProbabilityLink.from_dict(link).as_scheme(m["horizon_days"], ", ".join(m.get("train_as_of", [])))


def churn_probability(grading: pd.DataFrame, link: ChurnProbability) -> np.ndarray:
    """Each graded customer's churn probability from the score's link; missing for the customers the
    calibration does not label (never bought, inactive, too young: ``calibration.churn.at_risk``), whose
    churn the link says nothing about. Without recency in the grading, every row gets one."""
    prob = link.predict(grading["score"])
    if "recency_days" in grading:
        frame = grading if "tenure_years" in grading else grading.assign(tenure_years=np.inf)
        outside = at_risk(frame, load_calibration_params().churn).ne("").to_numpy()
        prob = np.where(outside, np.nan, prob)
    return prob


def _approval(out_dir: Path, computed: Path, audit: Path, period: str, scheme_id: str) -> dict:
    """The banner of the period's published grading (the approved one when the review was applied, else
    the one just computed): {state, text, audit_ok} for the reports and the manifest."""
    published = QuarterFiles(out_dir).approved if QuarterFiles(out_dir).approved.is_file() else computed
    return banner(audit, period, scheme_id, published, load_review_params())


def _headline(report) -> dict:
    """What the index shows of a quarter: customers graded, 12-month revenue, customers per tier."""
    t = report.tier_table()
    return {"revenue_12m": float(t["revenue_12m"].sum()), "currency": report.currency,
            "tiers": [{"tier": str(r.tier), "label": str(r.label), "customers": int(r.customers)} for r in t.itertuples()]}


def _index_state(folder: Path, manifest: dict, params, check) -> str:
    """A period's approval state as the audit log has it now (an approval recorded after the build
    shows at once), with its spot checks; else as its build recorded it. ``check``: the log's
    verification, done once for the whole index."""
    from segment.review.approval import spot_checks

    try:
        text = banner(folder.parent / AUDIT_LOG, folder.name, manifest.get("scheme", ""),
                      QuarterFiles(folder).latest_grading(), params, check)["text"]
        checks = spot_checks(folder.parent / AUDIT_LOG, folder.name)
    except (SegmentError, OSError, ValueError):
        return str((manifest.get("approval") or {}).get("text", ""))
    if checks["checked"]:
        text += f"; spot-checked {checks['last']}: {checks['ok']} of {checks['checked']} right"
    return text


def write_index(reports_dir: Path) -> Path:
    """reports/index.html: every quarter's reports, newest first, with its scheme, data and headline."""

    quarters = sorted((p for p in reports_dir.iterdir() if p.is_dir() and is_period(p.name)),
                      key=lambda p: parse_period(p.name).chronological, reverse=True)
    rows = []
    try:
        params = load_review_params()
    except SegmentError:
        params = None   # a broken params file: the states as each build recorded them
    check = verify_audit(reports_dir / AUDIT_LOG) if quarters else None
    for q in quarters:
        links = " · ".join(f'<a href="{html.escape(q.name)}/{nb}.html">{nb}</a>' for nb in NOTEBOOKS
                           if QuarterFiles(q).html(nb).is_file())
        try:
            m = json.loads(QuarterFiles(q).manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            m = {}
        head = m.get("headline") or {}
        state = _index_state(q, m, params, check) if params is not None else \
            str((m.get("approval") or {}).get("text", ""))
        data = Path(m["data"]).parent.name if m.get("data") else ""
        mix = ", ".join(f"{t['label']} {t['customers']:,}" for t in head.get("tiers", []))
        cells = [q.name, m.get("scheme", ""), data, m.get("as_of", ""),
                 f"{m['customers']:,}" if "customers" in m else "",
                 money(head["revenue_12m"], head.get("currency", "CNY")) if "revenue_12m" in head else "", mix, state]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + f"<td>{links}</td></tr>")
    head_row = "".join(f"<th>{h}</th>" for h in ("period", "scheme", "data", "as of", "customers graded",
                                                 "revenue (12 months)", "tiers", "state", "reports"))
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>segment reports</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "th,td{padding:.35em .9em;border-bottom:1px solid #ddd;text-align:left}"
            "td:nth-child(5),td:nth-child(6){text-align:right}</style></head><body>"
            "<h1>segment reports</h1><table><tr>" + head_row + "</tr>"
            + "".join(rows) + "</table></body></html>\n")
    return write_text(reports_dir / "index.html", page)
