"""The `segment` command line. Exit codes: 0 done; 2 the input is wrong (message starts with
``error:``, names the file, row or key; nothing written); 1 a bug (one line naming the file that
holds the traceback); 130 interrupted.

Public: run, main.
Reads: the command line, and what each command reads. Writes: what each command writes; a traceback file
under SEGMENT_TMPDIR for a bug.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from segment import __version__
from segment.errors import MissingOptional, SegmentError, format_report
from segment.paths import AUDIT_LOG, QuarterFiles


def _parser() -> argparse.ArgumentParser:
    """Every command and option of `segment`.

    Long because it is the command line's grammar in one place: one block per command (argparse)."""
    p = argparse.ArgumentParser(prog="segment", description="Grade customers into tiers and prove it against churn.")
    p.add_argument("--version", action="version", version=f"segment {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="write the deterministic demo company and its data.yaml")
    d.add_argument("--out", required=True, type=Path, help="folder to write into")
    d.add_argument("--customers", type=int, default=5000, help="number of customers (default 5000)")
    d.add_argument("--seed", type=int, default=20260930, help="random seed (same seed → identical files)")

    v = sub.add_parser("validate", help="load and check the data; print every problem; exit 2 on errors")
    v.add_argument("--data", required=True, type=Path, help="data config (DATA.yaml)")
    v.add_argument("--as-of", help="count rows dated after this date (default: the config's as_of)")

    g = sub.add_parser("grade", help="grade every customer at an as-of date")
    g.add_argument("--data", required=True, type=Path)
    g.add_argument("--scheme", required=True, help="a scheme file or the id of one under params/schemes/")
    g.add_argument("--as-of", help="YYYY-MM-DD (default: the data config's as_of)")
    g.add_argument("--out", required=True, type=Path, help="FILE.parquet or FILE.csv")
    g.add_argument("--designations", type=Path, help="manual designations (.csv/.xlsx: customer_id, tier, reason, "
                   "approver, expires), applied last")

    k = sub.add_parser("calibrate", help="fit weights and cut-offs to past churn; validate out of time")
    k.add_argument("--data", required=True, type=Path)
    k.add_argument("--scheme", required=True, help="a scheme file or the id of one under params/schemes/")
    k.add_argument("--train-as-of", required=True, help="training as-of dates, comma-separated: D1[,D2…]")
    k.add_argument("--test-as-of", required=True, help="the out-of-time test date")
    k.add_argument("--horizon-days", type=int, default=None, help="churn horizon (default: params/calibration.yaml)")
    k.add_argument("--out", required=True, type=Path, help="folder for metrics.json and <scheme>.calibrated.yaml")
    k.add_argument("--params", type=Path, default=None, help="default: params/calibration.yaml of the project")

    r = sub.add_parser("report", help="execute the report notebooks for a period into reports/<PERIOD>/")
    r.add_argument("--period", "--quarter", dest="quarter", metavar="PERIOD",
                   help="2026-09 (month), 2026Q3 (quarter), 2026H2 (half-year) or 2026 (year); default: the "
                        "latest complete period of the scheme's cadence in the data")
    r.add_argument("--data", type=Path, default=None, help="data config (default: the demo, made if missing)")
    r.add_argument("--scheme", default="s1_four_tier")
    r.add_argument("--reports-dir", type=Path, default=None, help="default: reports/ of the project")
    r.add_argument("--replace", action="store_true",
                   help="replace a period's reports built with another scheme or data config")

    rv = sub.add_parser("review", help="the review loop: export the sheet, apply reviewers' decisions")
    rsub = rv.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    re_ = rsub.add_parser("export", help="write reports/<PERIOD>/review_sheet.xlsx and .csv")
    _period_options(re_, "default: the latest graded period in --reports-dir")
    re_.add_argument("--force", action="store_true", help="overwrite a sheet that already holds decisions")
    ra = rsub.add_parser("apply", help="validate a filled sheet, write the approved grading, append the audit log")
    ra.add_argument("sheet", type=Path, help="the filled review sheet (.xlsx or .csv)")
    _period_options(ra, "default: the period folder the sheet is in", params=False)
    so = rsub.add_parser("signoff", help="a reviewer role (sales_head, service_head) signs off the period's review")
    so.add_argument("--role", required=True, help="one of params/reports.yaml review.signoff_roles")
    so.add_argument("--name", required=True, help="the name of the person signing off")
    sc = rsub.add_parser("spot-check", help="the monthly spot check of the published list: export a sample, "
                                            "or apply the filled sample to the audit log")
    sc.add_argument("action", choices=["export", "apply"])
    sc.add_argument("sheet", type=Path, nargs="?", help="apply: the filled spot_check.csv")
    sc.add_argument("--size", type=int, default=None, help="export: customers drawn (default review.spot_check_size)")
    for x in (so, sc):
        _period_options(x, "default: the latest graded period (apply: the folder the sheet is in)")

    ap = sub.add_parser("approve", help="leadership approves (or --reject) a period's grading; its reports are "
                                        "rebuilt without (or with) the DRAFT banner")
    ap.add_argument("--name", required=True, help="the name of the person approving")
    ap.add_argument("--role", default=None, help="default: params/reports.yaml review.approver_role (leadership)")
    ap.add_argument("--reject", action="store_true", help="reject the grading (with --reason)")
    ap.add_argument("--reason", default="", help="why (required with --reject)")
    _period_options(ap, "default: the latest graded period in --reports-dir")
    ap.add_argument("--no-rebuild", action="store_true", help="record only; rebuild later with `make report`")

    au = sub.add_parser("audit", help="verify the audit log's hash chain: names the first line that was changed")
    au.add_argument("--reports-dir", type=Path, default=None, help="default: reports/ of the project")

    ind = sub.add_parser("indicators", help="list every indicator a scheme can read, with unit, window and source")
    ind.add_argument("--data", type=Path, help="a data config: its declared fields and indicators are listed too")

    c = sub.add_parser("contract", help="print the data contract")
    c.add_argument("--markdown", action="store_true", help="as markdown (the text of docs/data_contract.md)")
    return p


def _period_options(parser: argparse.ArgumentParser, period_help: str, params: bool = True) -> None:
    """--period (alias --quarter), --reports-dir and --params: what every command on a reported period takes."""
    parser.add_argument("--period", "--quarter", dest="quarter", metavar="PERIOD", help=period_help)
    parser.add_argument("--reports-dir", type=Path, default=None, help="default: reports/ of the project")
    if params:
        parser.add_argument("--params", type=Path, default=None, help="default: params/reports.yaml of the project")


def _inputs(args: argparse.Namespace) -> list[Path]:
    """The files a command reads: the data config and its file sources, the scheme, the designations."""
    from segment.data.config import read_data_config
    from segment.reports.provenance import source_paths

    out = [Path(p) for p in (args.data, getattr(args, "designations", None)) if p]
    scheme = Path(str(getattr(args, "scheme", "")))
    if scheme.suffix in (".yaml", ".yml"):
        out.append(scheme)
    try:
        out += list(source_paths(Path(args.data), read_data_config(args.data)).values())
    except SegmentError:
        pass  # the command itself reports a config it cannot read
    return out


def run(args: argparse.Namespace) -> int:
    """Run one parsed command; its exit code.

    Long because it is the command table: one short branch per command, each a call into segment.pipeline or
    a subpackage."""
    from segment.plumbing.atomic import check_output

    if getattr(args, "reports_dir", ...) is None:  # the project's reports/, wherever the command runs
        from segment.paths import reports_dir

        args.reports_dir = reports_dir()
    if args.command == "demo":
        from segment.demo.write import write_demo

        if args.customers < 1:
            raise SegmentError(f"--customers must be at least 1 (got {args.customers})")
        check_output(args.out, "--out", folder=True)
        path = write_demo(args.out, customers=args.customers, seed=args.seed, progress=sys.stderr.isatty())
        print(f"wrote the demo company ({args.customers} customers, seed {args.seed}) to {path}")
        return 0
    if args.command == "validate":
        from segment.data.validate import load_data

        loaded = load_data(args.data, as_of=args.as_of)  # engine: spark → the checks run on Spark
        t = loaded.tables
        sizes = ", ".join(f"{n}: {t.rows(n):,} rows" for n in t.present())
        t.release()
        print(f"ok: {args.data} is valid ({sizes})")
        if not loaded.report.empty:
            print(format_report(loaded.report))
        return 0
    if args.command == "grade":
        from segment.pipeline import grade_data
        from segment.plumbing.atomic import write_frame

        out = args.out
        if out.suffix.lower() not in (".parquet", ".csv"):
            raise SegmentError(f"--out {out}: must end in .parquet or .csv")
        check_output(out, "--out", inputs=_inputs(args))
        graded = grade_data(args.data, args.scheme, args.as_of, designations=args.designations)
        write_frame(graded.frame, out)
        report = graded.loaded.report
        if not report.empty:  # warnings (errors stopped the run): future-dated rows, returns, declared drops
            print(f"warning: {args.data}: {len(report)} data warning(s), graded anyway:\n{format_report(report)}")
        what = "customers" if "group" not in graded.frame else "customer × group rows"
        print(f"graded {len(graded.frame):,} {what} at {graded.as_of.date()} with {graded.scheme.id}: {out}")
        notes = []
        if graded.lost_before:
            notes.append(graded.lost_note())
        if len(graded.grading.ineligible):
            notes.append(f"{len(graded.grading.ineligible):,} did not meet the scheme's `eligible` condition")
        for note in notes:
            print(f"note: {note}")
        if graded.data_end is not None and graded.as_of > graded.data_end:
            print(f"warning: the as-of date {graded.as_of.date()} is after the data's end ({graded.data_end.date()}): "
                  "the time between counts as no activity")
        for warning in graded.grading.warnings():
            print(f"warning: {warning}")
        print(graded.tier_counts().to_string(index=False))
        return 0
    if args.command == "calibrate":
        from segment.calibration.run import run_calibration

        check_output(args.out, "--out", folder=True)
        result = run_calibration(args.data, args.scheme, args.train_as_of, args.test_as_of, args.horizon_days,
                                 args.out, params_path=args.params)
        print(result.summary())
        return 0
    if args.command == "report":
        from segment.reports.build import build_reports

        check_output(args.reports_dir, "--reports-dir", folder=True)
        result = build_reports(quarter=args.quarter, data=args.data, scheme=args.scheme, reports_dir=args.reports_dir,
                               replace=args.replace)
        print(result.summary())
        return 0
    if args.command == "review":
        return _review(args)
    if args.command == "approve":
        return _approve(args)
    if args.command == "audit":
        from segment.review.audit import verify_audit

        check = verify_audit(args.reports_dir / AUDIT_LOG)
        if not check.ok:
            raise SegmentError(f"{check.summary()}. The log is never rewritten by segment: compare it with a backup "
                               "to see what changed, and keep it as it is (move it aside to start a new chain)")
        print(check.summary())
        return 0
    if args.command == "indicators":
        from segment.features.registry import INDICATORS

        from segment.grading.published import history_listing

        rows = [(i.name, i.unit, i.window, i.source, i.meaning) for i in INDICATORS.values()] + history_listing()
        if args.data is not None:
            from segment.data.config import read_data_config

            declared = read_data_config(args.data).declared(args.data).listing()
            rows += [(n, u, w, s, m + " (declared in the data config)") for n, u, w, s, m in declared]
        for name, unit, window, source, meaning in [("indicator", "unit", "window", "source", "meaning"), *rows]:
            print(f"{name:28s} {unit:18s} {window:18s} {source:18s} {meaning}")
        return 0
    if args.command == "contract":
        from segment.data.contract import TABLES, markdown

        if args.markdown:
            print(markdown())
        else:
            for t in TABLES.values():
                print(f"{t.name}: " + ", ".join(c.name + ("*" if c.required else "") for c in t.columns))
        return 0
    raise AssertionError(args.command)


def _quarter_dir(reports_dir: Path, quarter: str | None) -> Path:
    """The folder of a period's reports: the one named, else the graded period that ends last."""
    from segment.periods import is_period, parse_period

    if quarter:
        q = reports_dir / str(parse_period(quarter))  # the one accepted spelling, or an error that shows it
    else:
        found = sorted((p for p in reports_dir.glob("*") if is_period(p.name) and QuarterFiles(p).grading.is_file()),
                       key=lambda p: parse_period(p.name).chronological) \
            if reports_dir.is_dir() else []
        if not found:
            raise SegmentError(f"no graded period in {reports_dir}; run `make report` first")
        q = found[-1]
    if not QuarterFiles(q).grading.is_file():
        raise SegmentError(f"{QuarterFiles(q).grading} not found; run `make report PERIOD={q.name}` first")
    return q


def _review(args) -> int:
    import json

    from segment.periods import is_period, parse_period
    from segment.review.apply import apply_review
    from segment.review.params import load_review_params
    from segment.review.sheet import export_review

    if args.review_command == "export":
        q = _quarter_dir(args.reports_dir, args.quarter)
        manifest = json.loads(QuarterFiles(q).manifest.read_text(encoding="utf-8"))
        prev = QuarterFiles(args.reports_dir / str(parse_period(q.name).previous()))
        previous = next((f for f in (prev.approved, prev.grading) if f.is_file()), None)
        customers = None
        if manifest.get("data"):  # contacts for the sheet: the customers table alone, not the whole data again
            from segment.data.validate import load_table

            customers = load_table(manifest["data"], "customers")
        paths = export_review(QuarterFiles(q).grading, manifest["scheme_path"], q, load_review_params(args.params),
                              previous, customers, overwrite=args.force)
        print("wrote the review sheet:\n" + "\n".join(f"  {p}" for p in paths))
        return 0
    if args.review_command == "signoff":
        from segment.review.approval import sign_off

        state = sign_off(_quarter_dir(args.reports_dir, args.quarter), args.role, args.name,
                         load_review_params(args.params))
        print(f"{args.name} ({args.role}) signed off the {state.period} review.\n{state.text()}")
        _refresh_index(args.reports_dir)
        return 0
    if args.review_command == "spot-check":
        return _spot_check(args)
    sheet = args.sheet
    q = _quarter_dir(args.reports_dir, args.quarter or (sheet.parent.name if is_period(sheet.parent.name) else None))
    files = QuarterFiles(q)
    manifest = json.loads(files.manifest.read_text(encoding="utf-8"))
    result = apply_review(sheet, files.latest_grading(), manifest["scheme_path"], files.approved,
                          args.reports_dir / AUDIT_LOG, period=q.name)
    print(result.summary())
    return 0


def _spot_check(args) -> int:
    from segment.periods import is_period
    from segment.review.approval import apply_spot_check, spot_check_sample
    from segment.review.params import load_review_params

    if args.action == "export":
        path = spot_check_sample(_quarter_dir(args.reports_dir, args.quarter), load_review_params(args.params),
                                 args.size)
        print(f"wrote the spot-check sheet: {path}\n  fill result (ok / wrong), note (what is wrong) and checker, "
              f"then: segment review spot-check apply {path}")
        return 0
    if args.sheet is None:
        raise SegmentError("spot-check apply needs the filled sheet: segment review spot-check apply "
                           "reports/PERIOD/spot_check.csv")
    folder = args.sheet.parent.name if is_period(args.sheet.parent.name) else None
    n = apply_spot_check(args.sheet, _quarter_dir(args.reports_dir, args.quarter or folder))
    print(f"spot check logged: {n['checked']} checked, {n['ok']} ok, {n['wrong']} wrong "
          f"({args.reports_dir / AUDIT_LOG})")
    _refresh_index(args.reports_dir)
    return 0


def _refresh_index(reports_dir: Path) -> None:
    """reports/index.html shows each period's state as the audit log has it now."""
    from segment.reports.build import write_index

    write_index(reports_dir)


def _approve(args) -> int:
    """Record leadership's decision on a period's grading, then rebuild its reports so that the banner
    says it (unless --no-rebuild)."""
    import json

    from segment.review.approval import decide
    from segment.review.params import load_review_params

    folder = _quarter_dir(args.reports_dir, args.quarter)
    state = decide(folder, args.name, load_review_params(args.params), reject=args.reject, reason=args.reason,
                   role=args.role)
    print(state.text())
    if args.no_rebuild:
        print(f"the {folder.name} reports still show the previous state; rebuild them with "
              f"`segment report --period {folder.name}`")
        _refresh_index(args.reports_dir)
        return 0
    from segment.reports.build import build_reports

    m = json.loads(QuarterFiles(folder).manifest.read_text(encoding="utf-8"))
    result = build_reports(quarter=folder.name, data=m["data"], scheme=m["scheme_path"], reports_dir=args.reports_dir)
    print(result.summary())
    return 0


_SIGNALLED: list[int] = []


def _on_signal(signum, frame):
    """SIGTERM unwinds like Ctrl-C: temporary files and staging folders are removed. The signal is
    recorded because a library may turn the KeyboardInterrupt into its own error (DuckDB raises
    "Query interrupted") — after a signal, any failure is the interruption. Only the first signal
    raises: a second one must not abort the cleanup the first started."""
    _SIGNALLED.append(signum)
    if len(_SIGNALLED) == 1:
        raise KeyboardInterrupt


def _save_traceback() -> Path:
    """The current exception's traceback in a file of its own (under SEGMENT_TMPDIR when that is a
    folder, else the system's temporary folder): a bug is one line on the terminal, not a wall."""
    import os
    import tempfile
    import time
    import traceback

    folder = os.environ.get("SEGMENT_TMPDIR") or ""
    folder = folder if folder and Path(folder).is_dir() else tempfile.gettempdir()
    path = Path(folder) / f"segment-bug-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    try:
        path.write_text(f"segment {__version__}: {' '.join(sys.argv)}\n\n{traceback.format_exc()}", encoding="utf-8")
    except OSError:  # nowhere to write: the traceback goes to the terminal after all
        traceback.print_exc()
        return Path("(not saved: see above)")
    return path


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """segment's own warnings as `warning:` lines (no source location); others as Python shows them."""
    if issubclass(category, MissingOptional):
        print(f"warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    args = _parser().parse_args(argv)
    previous = {}
    _SIGNALLED.clear()
    stop_watch = lambda: None  # noqa: E731
    if threading.current_thread() is threading.main_thread():
        from segment.plumbing.signals import watch

        for sig in (signal.SIGTERM, signal.SIGINT):
            if signal.getsignal(sig) is not signal.SIG_IGN:  # `cmd &` in a script ignores SIGINT: keep that
                previous[sig] = signal.signal(sig, _on_signal)
        stop_watch = watch(previous)  # a running DuckDB query is interrupted at once
    try:
        with warnings.catch_warnings():  # a scheme's absent optional inputs: one `warning:` line each
            warnings.simplefilter("once", MissingOptional)
            warnings.showwarning = _show_warning
            return run(args)
    except BrokenPipeError:  # `segment indicators | head`
        sys.stderr.close()
        return 0
    except (KeyboardInterrupt, Exception) as e:
        if isinstance(e, KeyboardInterrupt) or _SIGNALLED:  # after a signal, any failure is the interruption
            print("interrupted: nothing was replaced", file=sys.stderr)
            return 130
        if isinstance(e, SegmentError):
            print(f"error: {e}", file=sys.stderr)
            return e.exit_code
        print(f"bug: segment stopped on an unexpected {type(e).__name__}; the traceback is in {_save_traceback()} "
              "— please report it with the command you ran", file=sys.stderr)
        return 1
    finally:
        stop_watch()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
