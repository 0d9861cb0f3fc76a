"""Benchmark: the three quarterly reports (``segment.reports.build.build_reports``) on the demo. Not a test.

    .venv/bin/python bench/bench_reports.py [--customers 5000] [--repeat 3] [--json OUT]
    .venv/bin/python bench/bench_reports.py --rerun [--excel] [--customers 100000] [--repeat 3] [--json OUT]

The demo is written once (not timed); each run builds grading, review and calibration reports into
a fresh temporary reports folder with ``force=True`` (validation, three gradings, calibration,
papermill execution of three notebooks, nbconvert to HTML).

``--rerun``: `segment report` run again with nothing changed, as a user runs it (a new process:
interpreter start and imports included). The reports are built once by `segment report` (timed,
reported as ``first_s``), then each timed rerun must answer "up to date" — it fingerprints the inputs
without loading the data (issue 11). ``--excel``: the demo's customers and transactions as .xlsx files
(openpyxl: the slowest source to load), the data config without ``as_of:`` so the default quarter
comes from the data end the first build recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from segment.demo.write import write_demo
from segment.reports.build import build_reports


def excel_demo(folder: Path, customers: int) -> Path:
    """The demo with its customers and transactions as .xlsx (interactions and opportunities as the demo
    writes them) and no ``as_of:`` in the data config; returns the config."""
    import pandas as pd

    cfg = write_demo(folder, customers=customers)
    pd.read_csv(folder / "customers.csv", dtype=str, keep_default_na=False).to_excel(
        folder / "customers.xlsx", index=False)
    pd.read_parquet(folder / "transactions.parquet").to_excel(folder / "transactions.xlsx", index=False)
    (folder / "customers.csv").unlink()
    (folder / "transactions.parquet").unlink()
    excel = folder / "excel.yaml"
    excel.write_text("name: demo in Excel\ntables:\n  customers: {path: customers.xlsx}\n"
                     "  transactions: {path: transactions.xlsx}\n  interactions: {path: interactions.parquet}\n"
                     "  opportunities: {path: opportunities.csv}\n", encoding="utf-8")
    cfg.unlink()
    return excel


def segment_report(config: Path, reports: Path) -> tuple[float, str, float]:
    """`segment report` in a new process, from the project root, with this checkout's sources first (the
    notebooks' kernels inherit PYTHONPATH); its wall time, output and CPU seconds (user + sys, kernels
    included): the CPU time does not grow when other work shares the machine, the wall time does."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "segment.cli", "report", "--data", str(config),
                                 "--reports-dir", str(reports)], cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0), stderr.seek(0)
        out, err = stdout.read(), stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"segment report exited {proc.returncode}:\n{err[-3000:]}")
    return took, out, usage.ru_utime + usage.ru_stime


def rerun(a) -> dict:
    work = Path(tempfile.mkdtemp(prefix="segment-bench-rerun-"))
    try:
        cfg = excel_demo(work / "demo", a.customers) if a.excel else write_demo(work / "demo", customers=a.customers)
        source = "Excel customers + transactions" if a.excel else "demo files"
        first, out, _ = segment_report(cfg, work / "reports")
        print(f"  first `segment report`, {a.customers:,}-customer demo ({source}): {first:.1f} s", flush=True)
        times, cpu = [], []
        for _ in range(a.repeat):
            took, out, used = segment_report(cfg, work / "reports")
            if "up to date" not in out:
                raise SystemExit(f"the rerun rebuilt the reports:\n{out}")
            times.append(took)
            cpu.append(used)
            print(f"  rerun, nothing changed: {took:.2f} s ({used:.2f} s CPU)", flush=True)
        mib = sum(f.stat().st_size for f in (work / "demo").iterdir()) / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"median_s": round(statistics.median(times), 3), "times_s": [round(x, 3) for x in times],
            "first_s": round(first, 1), "cpu_s": [round(x, 3) for x in cpu], "customers": a.customers,
            "excel": a.excel, "input_mib": round(mib, 1)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rerun", action="store_true", help="time `segment report` rerun with nothing changed")
    p.add_argument("--excel", action="store_true", help="--rerun: customers and transactions as .xlsx")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    if a.rerun:
        row = rerun(a)
        if a.json:
            a.json.write_text(json.dumps(row, indent=2) + "\n")
        return
    work = Path(tempfile.mkdtemp(prefix="segment-bench-reports-"))
    try:
        cfg = write_demo(work / "demo", customers=a.customers)
        times = []
        for i in range(a.repeat):
            reports = work / f"reports{i}"
            t = time.perf_counter()
            build_reports(data=cfg, reports_dir=reports, force=True)
            times.append(time.perf_counter() - t)
            print(f"  reports on the {a.customers:,}-customer demo: {times[-1]:.1f} s", flush=True)
            shutil.rmtree(reports, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    row = {"median_s": round(statistics.median(times), 3), "times_s": [round(x, 3) for x in times],
           "customers": a.customers}
    if a.json:
        a.json.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
