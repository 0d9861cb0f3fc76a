"""Benchmark: grading N customers with built-in schemes (median of R runs). Not a test.

    .venv/bin/python bench/bench_grading.py [--customers 1000000] [--repeat 3]

The snapshot is synthetic (numpy, seeded) with every column the schemes read, so the time is the
engine's alone (features are benchmarked separately)."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from segment.grading import grade  # noqa: E402
from segment.schemes import load_scheme  # noqa: E402


def synthetic_snapshot(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(11, 1.8, n)
    orders = rng.poisson(8, n).astype(float)
    stages = np.array(["A21", "A08", "A31", "A07", "A06", "A05", "A04", "A03", "A02", "A01"], dtype=object)
    return pd.DataFrame({
        "customer_id": pd.array([f"C{i:07d}" for i in range(n)], dtype="string"),
        "annual_amount": amount, "prev_annual_amount": amount * rng.lognormal(0, 0.4, n),
        "profit_12m": amount * rng.uniform(0.1, 0.4, n), "tenure_years": rng.exponential(3, n),
        "amount_growth": rng.normal(0.05, 0.3, n), "industry_growth": rng.uniform(0, 0.25, n),
        "budget_growth": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(-0.1, 0.4, n)),
        "satisfaction_latest": np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 11, n).astype(float)),
        "complaint_resolution_hours": np.where(rng.random(n) < 0.7, np.nan, rng.lognormal(3.5, 1, n)),
        "referrals_12m": rng.poisson(0.3, n).astype(float), "complaints_12m": rng.poisson(0.4, n).astype(float),
        "major_complaints_12m": rng.poisson(0.05, n).astype(float), "market_share": np.where(rng.random(n) < 0.95, np.nan, rng.uniform(0, 0.4, n)),
        "recency_days": rng.exponential(60, n), "orders_12m": orders, "orders_per_quarter": orders / 4,
        "orders_per_month": orders / 12, "product_lines_12m": rng.integers(0, 4, n).astype(float),
        "days_since_contact": rng.exponential(90, n), "latest_stage": pd.array(rng.choice(stages, n), dtype="string"),
        "open_opportunities": rng.poisson(0.2, n).astype(float), "days_to_close": rng.normal(90, 80, n),
        "consultations_6m": rng.poisson(0.5, n).astype(float), "won_12m": rng.poisson(0.1, n).astype(float),
        "open_complaints": rng.poisson(0.05, n).astype(float), "orders_total": orders * 3,
        "volume_total": rng.lognormal(8, 2, n), "complaints_6m": rng.poisson(0.2, n).astype(float),
        "visits_12m": rng.poisson(0.3, n).astype(float), "size_employees": rng.lognormal(4, 1.2, n),
        "annual_revenue": rng.lognormal(17, 1.5, n), "margin_rate_12m": rng.uniform(0.05, 0.4, n),
        "pipeline_amount": rng.lognormal(12, 2, n), "contacts_per_month": rng.exponential(0.3, n),
        "contacts_12m": rng.poisson(3, n).astype(float), "strategic": rng.random(n) < 0.02,
        "buys_core_product": rng.random(n) < 0.5, "praise_12m": rng.poisson(0.2, n).astype(float),
        "nps_latest": rng.choice([-100.0, 0.0, 100.0], n),
        "industry": pd.array(rng.choice(np.array(["Machinery", "Public Sector", "Logistics"], dtype=object), n), dtype="string"),
    })


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--schemes", default=",".join(sorted(x.stem for x in (ROOT / "params" / "schemes").glob("*.yaml"))))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    snap = synthetic_snapshot(args.customers)
    rows = []
    for sid in args.schemes.split(","):
        scheme = load_scheme(ROOT / "params" / "schemes" / f"{sid}.yaml")
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            grade(snap, scheme, as_of="2026-09-30")
            times.append(time.perf_counter() - t)
        rows.append({"bench": f"grade {sid}", "n": args.customers, "median_s": round(statistics.median(times), 3),
                     "min_s": round(min(times), 3)})
        print(f"grade {sid:28s} {args.customers:>9,} customers  median {statistics.median(times):6.2f} s  "
              f"min {min(times):6.2f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
