"""Benchmark: the three quarterly reports (``segment.reports.build_reports``) on the demo. Not a test.

    .venv/bin/python bench/bench_reports.py [--customers 5000] [--repeat 3] [--json OUT]

The demo is written once (not timed); each run builds grading, review and calibration reports into
a fresh temporary reports folder with ``force=True`` (validation, three gradings, calibration,
papermill execution of three notebooks, nbconvert to HTML).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from segment.demo import write_demo
from segment.reports import build_reports


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
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
