"""Benchmark: demo generation (``segment.demo.write.write_demo``: simulate + write the four files). Not a test.

    .venv/bin/python bench/bench_demo.py [--customers 100000] [--repeat 3] [--json OUT]
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

from segment.demo.write import write_demo


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    times = []
    for _ in range(a.repeat):
        out = Path(tempfile.mkdtemp(prefix="segment-bench-demo-"))
        try:
            t = time.perf_counter()
            write_demo(out, customers=a.customers)
            times.append(time.perf_counter() - t)
            import pyarrow.parquet as pq

            n_tx = pq.ParquetFile(out / "transactions.parquet").metadata.num_rows
        finally:
            shutil.rmtree(out, ignore_errors=True)
        print(f"  demo {a.customers:,} customers ({n_tx:,} transactions): {times[-1]:.2f} s", flush=True)
    row = {"median_s": round(statistics.median(times), 3), "times_s": [round(x, 3) for x in times],
           "customers": a.customers, "transactions": n_tx}
    if a.json:
        a.json.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
