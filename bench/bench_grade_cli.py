"""Benchmark: `segment grade` on a demo against its floor, measured in the same run. Not a test.

    .venv/bin/python bench/bench_grade_cli.py [--customers 100000] [--repeat 3] [--json OUT]

* **floor**: the same 59-column snapshot SQL (``segment.features.snapshot.plan``) run by DuckDB straight over
  the files, read with DuckDB's own type detection and no validation at all (:func:`floor_snapshot`);
* **segment grade**: the command as a user runs it (load, cast and check every row, snapshot, grade
  with S1, write the grading), in this process.

Prints both medians and their ratio (issue 11 asks ≤ 1.5×). The demo is written once into
``$SEGMENT_BENCH_DATA/demo_<n>`` and reused.
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
sys.path.insert(0, str(ROOT / "bench"))


def floor_snapshot(config: Path, as_of: str):
    """The snapshot over the raw files: no casts, no checks, no copies — what no validation costs."""
    import duckdb

    from segment.features.snapshot import plan, run_duckdb
    from segment.data.config import read_data_config

    cfg = read_data_config(config)
    con = duckdb.connect()
    present = {}
    for name, src in cfg.tables.items():
        path = (config.parent / src.path).resolve()
        scan = f"read_parquet('{path}')" if path.suffix == ".parquet" else f"read_csv('{path}')"
        alias = {"transactions": "tx", "customers": "cu", "interactions": "it", "opportunities": "op"}[name]
        con.execute(f"CREATE VIEW {alias} AS SELECT * FROM {scan}")
        present[name] = [r[0] for r in con.execute(f"DESCRIBE {alias}").fetchall()]
    p = plan(present, as_of)
    try:
        return run_duckdb(con, p).num_rows
    finally:
        con.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    from bench_store import demo_config
    from segment.cli import main as cli

    config = demo_config(a.customers, "auto")
    out = Path(tempfile.mkdtemp(prefix="segment-bench-grade-"))
    floor, grade = [], []
    try:
        for _ in range(a.repeat):
            t = time.perf_counter()
            rows = floor_snapshot(config, "2026-09-30")
            floor.append(time.perf_counter() - t)
            t = time.perf_counter()
            code = cli(["grade", "--data", str(config), "--scheme", "s1_four_tier", "--as-of", "2026-09-30",
                        "--out", str(out / "g.parquet")])
            grade.append(time.perf_counter() - t)
            if code != 0:
                raise SystemExit(f"segment grade exited {code}")
            print(f"  floor (snapshot from files, no validation) {floor[-1]:.2f} s for {rows:,} customers; "
                  f"segment grade {grade[-1]:.2f} s", flush=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    f, g = statistics.median(floor), statistics.median(grade)
    print(f"segment grade {a.customers:,} customers: median {g:.2f} s, floor {f:.2f} s, ratio {g / f:.2f}×")
    row = {"median_s": round(g, 3), "times_s": [round(x, 3) for x in grade], "floor_s": round(f, 3),
           "floor_times_s": [round(x, 3) for x in floor], "ratio": round(g / f, 2), "customers": a.customers}
    if a.json:
        a.json.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
