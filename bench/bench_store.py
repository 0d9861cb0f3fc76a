"""Benchmark: loading + validating a data config, tables kept by DuckDB in memory or on disk (segment.data.store).
Not a test.

    .venv/bin/python bench/bench_store.py --customers 100000 --storage disk [--repeat 3] [--json OUT]

The demo of that size is written once into ``$SEGMENT_BENCH_DATA/demo_<n>`` (default /tmp/segment-bench)
and reused. Times ``segment.data.validate.load_data`` (read every table, every check) and
the first snapshot over the kept tables.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def demo_config(customers: int, storage: str) -> Path:
    from segment.demo.write import write_demo

    folder = Path(os.environ.get("SEGMENT_BENCH_DATA", "/tmp/segment-bench")) / f"demo_{customers}"
    if not (folder / "data.yaml").is_file():
        print(f"  writing the {customers:,}-customer demo to {folder} (once)", flush=True)
        write_demo(folder, customers=customers)
    config = folder / f"{storage}.yaml"
    config.write_text((folder / "data.yaml").read_text(encoding="utf-8") + f"storage: {storage}\n", encoding="utf-8")
    return config


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--storage", choices=["memory", "disk"], default="disk")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    config = demo_config(a.customers, a.storage)
    from segment.features.snapshot import snapshot
    from segment.data.validate import load_data

    times, snaps = [], []
    for _ in range(a.repeat):
        t = time.perf_counter()
        loaded = load_data(config)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        snap = snapshot(loaded.tables, "2026-09-30")
        snaps.append(time.perf_counter() - t)
        lines = loaded.tables.rows("transactions")
        print(f"  load_data ({a.storage}) {lines:,} transaction lines: {times[-1]:.2f} s; snapshot of "
              f"{len(snap):,} customers {snaps[-1]:.2f} s", flush=True)
        del loaded, snap
        gc.collect()
    row = {"median_s": round(statistics.median(times), 3), "times_s": [round(x, 3) for x in times],
           "snapshot_s": round(statistics.median(snaps), 3), "customers": a.customers, "transactions": lines,
           "storage": a.storage}
    if a.json:
        a.json.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
