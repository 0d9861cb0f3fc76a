"""Benchmark: point-in-time features from N transactions vs one raw DuckDB query (the floor). Not a test.

    .venv/bin/python bench/bench_features.py make --transactions 10000000 --dir DIR   # the data (once)
    .venv/bin/python bench/bench_features.py run  --dir DIR --mode files|floor|memory [--repeat 3] --json OUT

The data is synthetic, written by DuckDB straight to Parquet (no pandas): N transaction lines of N/45
customers (as in the demo) over three years to 2026-09-30, orders of 1–3 lines, 3% returns, four
product lines, margins, quantities and core-product flags; plus a customers table (created date,
industry, region, status). ``DIR/data.yaml`` is a data config pointing at both files.

Modes (each run in its own process by bench/run.py, which records the peak RSS):

* ``files``  — ``segment.data.spark.snapshot_from_config`` (engine duckdb): ``load_data`` (every row read,
  cast and checked into DuckDB) then the snapshot — every transaction indicator plus the customers'
  attributes, the population union, the derived indicators and the typed pandas result — what
  `segment grade` does before grading.
* ``floor``  — one hand-written DuckDB query over the same files computing the same per-customer
  transaction aggregates (plain SUM / COUNT(DISTINCT) with FILTER), fetched as Arrow.
* ``memory`` — the snapshot alone over tables already in DuckDB: both tables read into pandas
  (pd.read_parquet) and handed to ``segment.data.tables.Tables``, then ``features.snapshot``; the time is
  the snapshot's alone (the read and hand-over are reported separately).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

AS_OF = "2026-09-30"
PER_CUSTOMER = 45


def make(n: int, out: Path) -> None:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    if (out / "data.yaml").is_file():
        print(f"{out}: exists", flush=True)
        return
    ncust = max(n // PER_CUSTOMER, 1)
    days = 3 * 365
    con = duckdb.connect(config={"preserve_insertion_order": False})
    t = time.perf_counter()
    con.execute(f"""
    COPY (
      SELECT 'C' || lpad(CAST(cid AS VARCHAR), 8, '0') AS customer_id,
        TIMESTAMP '2023-10-01' + to_seconds(CAST(hash(oid, 7) % {days * 86400} AS BIGINT)) AS date,
        CASE WHEN hash(i, 3) % 100 < 3 THEN -1 ELSE 1 END * (10 + (hash(i, 2) % 500000) / 10.0) AS amount,
        'O' || CAST(oid AS VARCHAR) AS order_id,
        ['A', 'B', 'C', 'D'][1 + CAST(hash(i, 4) % 4 AS INT)] AS product_line,
        CAST(1 + hash(i, 5) % 20 AS DOUBLE) AS quantity,
        (hash(i, 6) % 10000) / 10.0 AS margin,
        hash(i, 8) % 3 = 0 AS core_product
      FROM (SELECT i, i // 2 AS oid, hash(i // 2) % {ncust} AS cid FROM range({n}) t(i))
    ) TO '{out / "transactions.parquet"}' (FORMAT parquet, ROW_GROUP_SIZE 500000)""")
    con.execute(f"""
    COPY (
      SELECT 'C' || lpad(CAST(i AS VARCHAR), 8, '0') AS customer_id,
        TIMESTAMP '2018-01-01' + to_days(CAST(hash(i, 1) % 3000 AS INT)) AS created_date,
        ['retail', 'tech', 'food', 'logistics'][1 + CAST(hash(i, 2) % 4 AS INT)] AS industry,
        ['north', 'south', 'east', 'west'][1 + CAST(hash(i, 3) % 4 AS INT)] AS region,
        CASE WHEN hash(i, 4) % 10 = 0 THEN 'lost' ELSE 'active' END AS status,
        CASE WHEN hash(i, 4) % 10 = 0 THEN TIMESTAMP '2025-01-01' + to_days(CAST(hash(i, 5) % 600 AS INT)) END
          AS status_date
      FROM range({ncust}) t(i)
    ) TO '{out / "customers.parquet"}' (FORMAT parquet)""")
    (out / "data.yaml").write_text(f"name: bench-{n}\nas_of: {AS_OF}\ntables:\n"
                                   "  customers: {path: customers.parquet}\n"
                                   "  transactions: {path: transactions.parquet}\n")
    print(f"{out}: {n:,} transactions of {ncust:,} customers in {time.perf_counter() - t:.1f} s", flush=True)


def floor_sql(tx: Path) -> str:
    import pandas as pd

    from segment.features.registry import DAYS_6M, DAYS_12M

    cut = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    lit = lambda ts: f"TIMESTAMP '{ts:%Y-%m-%d %H:%M:%S}'"
    c, s12, s24 = lit(cut), lit(cut - pd.Timedelta(days=DAYS_12M)), lit(cut - pd.Timedelta(days=2 * DAYS_12M))
    s6, s6p = lit(cut - pd.Timedelta(days=DAYS_6M)), lit(cut - pd.Timedelta(days=2 * DAYS_6M))
    return f"""
    SELECT customer_id,
      SUM(amount) FILTER (WHERE date >= {s12}) AS annual_amount,
      SUM(amount) FILTER (WHERE date >= {s24} AND date < {s12}) AS prev_annual_amount,
      SUM(amount) FILTER (WHERE date >= {s6}) AS amount_6m,
      SUM(amount) FILTER (WHERE date >= {s6p} AND date < {s6}) AS prev_amount_6m,
      MIN(date) FILTER (WHERE amount > 0) AS first_purchase,
      MAX(date) FILTER (WHERE amount > 0) AS last_purchase,
      SUM(margin) FILTER (WHERE date >= {s12}) AS profit_12m,
      SUM(quantity) AS volume_total,
      SUM(quantity) FILTER (WHERE date >= {s12}) AS volume_12m,
      BOOL_OR(core_product) FILTER (WHERE amount > 0 AND date >= {s12}) AS buys_core_product,
      COUNT(DISTINCT order_id) FILTER (WHERE amount > 0 AND date >= {s12}) AS orders_12m,
      COUNT(DISTINCT order_id) FILTER (WHERE amount > 0) AS orders_total,
      COUNT(DISTINCT product_line) FILTER (WHERE amount > 0 AND date >= {s12}) AS product_lines_12m
    FROM read_parquet('{tx}') WHERE date < {c}
    GROUP BY customer_id"""


def run(mode: str, d: Path, repeat: int) -> dict:
    import duckdb
    import pandas as pd

    times, extra = [], {}
    if mode == "memory":
        t = time.perf_counter()
        from segment.data.tables import Tables

        tables = Tables(transactions=pd.read_parquet(d / "transactions.parquet").astype(
                            {"customer_id": "string", "order_id": "string", "product_line": "string",
                             "core_product": "boolean"}),
                        customers=pd.read_parquet(d / "customers.parquet").astype(
                            {"customer_id": "string", "industry": "string", "region": "string",
                             "status": "string"}))
        extra["read_s"] = round(time.perf_counter() - t, 2)
    for _ in range(repeat):
        t = time.perf_counter()
        if mode == "files":
            from segment.data.spark import snapshot_from_config

            n = len(snapshot_from_config(d / "data.yaml", AS_OF))
        elif mode == "floor":
            con = duckdb.connect()
            n = con.sql(floor_sql(d / "transactions.parquet")).to_arrow_table().num_rows
            con.close()
        else:
            from segment.features.snapshot import snapshot

            n = len(snapshot(tables, AS_OF))
        times.append(time.perf_counter() - t)
        print(f"  {mode:6s} {times[-1]:7.2f} s  ({n:,} rows)", flush=True)
    return {"median_s": round(statistics.median(times), 3), "times_s": [round(x, 3) for x in times],
            "rows_out": n, **extra}


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--transactions", type=int, required=True)
    m.add_argument("--dir", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--dir", type=Path, required=True)
    r.add_argument("--mode", choices=("files", "floor", "memory"), required=True)
    r.add_argument("--repeat", type=int, default=3)
    r.add_argument("--json", type=Path)
    a = p.parse_args()
    if a.cmd == "make":
        make(a.transactions, a.dir)
        return
    row = run(a.mode, a.dir, a.repeat)
    if a.json:
        a.json.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
