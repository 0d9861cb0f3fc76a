"""Benchmark: an Excel source read with openpyxl (pandas' default) and with python-calamine. Not a test.

    .venv/bin/python bench/bench_excel.py [--customers 5000] [--repeat 3] [--json OUT]

The demo of that size (5,000 customers ≈ 227k transaction lines) is written once, its transactions
table saved as .xlsx next to it, and ``load_data`` (read + cast + every check) is timed with each
reader in the same run. Prints both medians and the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def excel_config(customers: int) -> Path:
    import pandas as pd

    from segment.demo.write import write_demo

    folder = Path(os.environ.get("SEGMENT_BENCH_DATA", "/tmp/segment-bench")) / f"excel_{customers}"
    if not (folder / "data.yaml").is_file():
        print(f"  writing the {customers:,}-customer demo and its transactions.xlsx to {folder} (once)", flush=True)
        write_demo(folder, customers=customers)
    xlsx = folder / "transactions.xlsx"
    if not xlsx.is_file():
        pd.read_parquet(folder / "transactions.parquet").to_excel(xlsx, index=False)
    config = folder / "excel.yaml"
    config.write_text((folder / "data.yaml").read_text(encoding="utf-8").replace("transactions.parquet",
                                                                                  "transactions.xlsx"), encoding="utf-8")
    return config


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--customers", type=int, default=5_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    from segment.data import config as io
    from segment.data.validate import load_data

    config = excel_config(a.customers)
    times: dict[str, list[float]] = {"openpyxl": [], "calamine": []}
    lines = 0
    for _ in range(a.repeat):
        for reader in times:
            io._excel_engine = (lambda path: None) if reader == "openpyxl" else (lambda path: "calamine")
            t = time.perf_counter()
            loaded = load_data(config)
            times[reader].append(time.perf_counter() - t)
            lines = loaded.tables.rows("transactions")
            print(f"  load_data, transactions.xlsx ({lines:,} lines) read with {reader}: {times[reader][-1]:.2f} s",
                  flush=True)
    o, c = statistics.median(times["openpyxl"]), statistics.median(times["calamine"])
    print(f"Excel source, {lines:,} lines: openpyxl {o:.2f} s, calamine {c:.2f} s ({o / c:.1f}× faster)")
    row = {"median_s": round(c, 3), "times_s": [round(x, 3) for x in times["calamine"]], "openpyxl_s": round(o, 3),
           "openpyxl_times_s": [round(x, 3) for x in times["openpyxl"]], "speedup": round(o / c, 1),
           "transactions": lines}
    if a.json:
        a.json.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
