"""Benchmark: one `segment` command on a big demo, as a user runs it. Not a test.

    .venv/bin/python bench/bench_cli.py --customers 1100000 --command validate|grade|report [--json OUT]

The demo (1.1M customers ≈ 50M transaction lines, 1.5 GB of files) is written once into
``$SEGMENT_BENCH_DATA/demo_<n>`` and reused; `storage: auto` keeps its tables in DuckDB. One run per
command (they take minutes); the runner reads this process's peak RSS (kernels included for report).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--customers", type=int, default=1_100_000)
    p.add_argument("--command", choices=["validate", "grade", "report"], required=True)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    from bench_store import demo_config
    from segment.cli import main as cli

    config = demo_config(a.customers, "auto")
    out = Path(tempfile.mkdtemp(prefix="segment-bench-cli-"))
    args = {"validate": ["validate", "--data", str(config)],
            "grade": ["grade", "--data", str(config), "--scheme", "s1_four_tier", "--out", str(out / "g.parquet")],
            "report": ["report", "--data", str(config), "--reports-dir", str(out / "reports")]}[a.command]
    try:
        t = time.perf_counter()
        code = cli(args)
        took = time.perf_counter() - t
        if code != 0:
            raise SystemExit(f"segment {a.command} exited {code}")
        row = {"median_s": round(took, 1), "times_s": [round(took, 1)], "command": a.command,
               "customers": a.customers}
        if a.command == "report":
            q = next(p for p in (out / "reports").iterdir() if p.is_dir() and p.name[:4].isdigit())
            row["html_kib"] = {f.name: round(f.stat().st_size / 1024) for f in sorted(q.glob("*.html"))}
            row["timings_s"] = json.loads((q / "manifest.json").read_text())["timings_seconds"]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if a.json:
        a.json.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
