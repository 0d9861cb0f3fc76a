"""Benchmark: the calibration fit on a ~1M-row panel, and 200 bootstrap replicates. Not a test.

    .venv/bin/python bench/bench_calibration.py [--rows 1000000] [--bootstrap 200] [--demo-customers 100000] [--repeat 3]

Two panels:

* **demo** — the demo company (``segment.demo.write.generate``, in memory) graded with S1 at monthly as-of
  dates until the panel holds ``--rows`` labelled rows: the real thing, points from bands (few
  distinct patterns). Building the panel (snapshots, grading, labels) is timed too.
* **synthetic** — ``--rows`` rows, ``--rows / 4`` customers, 8 indicators with 50 point values each,
  so nearly every row is a distinct pattern: the worst case for the fitter.

Each line: rows, customers, distinct point patterns, then the seconds for the statsmodels Logit
(clustered by customer), the sign-constrained refit that makes the weights, and the bootstrap.
"""
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

from segment.calibration.weights import WeightCalibrator  # noqa: E402
from segment.calibration.churn import ChurnDefinition, build_panel  # noqa: E402
from segment.grading.engine import PTS  # noqa: E402
from segment.grading.scheme import Scheme, load_scheme  # noqa: E402


def synthetic(rows: int, seed: int = 7) -> tuple[Scheme, pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = 8
    names = [f"x{j}" for j in range(p)]
    scheme = Scheme.model_validate({
        "id": "synthetic",
        "indicators": {n: {"bands": [{"below": 50, "points": 0}, {"from": 50, "points": 100}]} for n in names},
        "dimensions": {"a": {"weight": 0.5, "indicators": {n: 0.25 for n in names[:4]}},
                       "b": {"weight": 0.5, "indicators": {n: 0.25 for n in names[4:]}}},
        "tiers": [{"id": "top", "min_score": 60}, {"id": "rest"}],
    })
    X = rng.integers(0, 50, (rows, p)).astype("float64") * 2.0
    beta = np.array([-0.02, -0.015, -0.01, -0.005, 0.0, 0.0, -0.01, 0.002])
    eta = 1.0 + X @ beta
    y = (rng.random(rows) < 1 / (1 + np.exp(-eta))).astype("float64")
    groups = rng.integers(0, max(rows // 4, 1), rows)
    return scheme, pd.DataFrame(X, columns=names), y, groups


def demo_panel(customers: int, rows: int):
    from segment.demo.world import END_DATE
    from segment.demo.write import generate

    t = time.perf_counter()
    tables = generate(customers)
    t_gen = time.perf_counter() - t
    scheme = load_scheme(ROOT / "params" / "schemes" / "s1_four_tier.yaml")
    horizon = 180
    last = END_DATE - pd.Timedelta(days=horizon)
    # month ends backwards from the last uncensored one, until the panel holds about `rows` rows
    k = max(1, int(np.ceil(rows / (customers * 0.6))))
    dates = list(pd.date_range(end=last, periods=k, freq="ME"))
    t = time.perf_counter()
    panel = build_panel(tables, scheme, dates, horizon, ChurnDefinition(), END_DATE)
    t_panel = time.perf_counter() - t
    lab = panel.labelled()
    inds = list(scheme.weights())
    X = lab[[PTS + i for i in inds]].set_axis(inds, axis=1)
    return scheme, X, lab["churn"].to_numpy(), lab["customer_id"].to_numpy(), t_gen, t_panel, len(dates)


def run(label: str, scheme, X, y, groups, bootstrap: int, repeat: int = 1) -> dict:
    """Fit ``repeat`` times; the row holds the medians (and every total)."""
    rows = []
    for _ in range(repeat):
        t = time.perf_counter()
        model = WeightCalibrator(scheme, n_bootstrap=bootstrap, random_state=1).fit(X, y, groups)
        total = time.perf_counter() - t
        tm = model.timings_
        rows.append({"statsmodels_s": tm["statsmodels"], "refit_s": tm["refit"], "bootstrap_s": tm["bootstrap"],
                     "total_s": total})
    med = {k: round(statistics.median(r[k] for r in rows), 2) for k in rows[0]}
    row = {"panel": label, "rows": len(y), "customers": model.n_customers_, "patterns": model.n_patterns_,
           "statsmodels_s": med["statsmodels_s"], "refit_s": med["refit_s"],
           "bootstrap": bootstrap, "bootstrap_s": med["bootstrap_s"], "total_s": med["total_s"],
           "median_s": med["total_s"], "times_s": [round(r["total_s"], 2) for r in rows]}
    print(f"{label:10s} {row['rows']:>10,} rows {row['customers']:>9,} customers {row['patterns']:>9,} patterns   "
          f"statsmodels {row['statsmodels_s']:6.2f} s   refit {row['refit_s']:5.2f} s   "
          f"{bootstrap} bootstrap {row['bootstrap_s']:6.2f} s   total {row['total_s']:6.2f} s "
          f"(median of {repeat})", flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--demo-customers", type=int, default=100_000)
    p.add_argument("--skip-demo", action="store_true")
    p.add_argument("--repeat", type=int, default=1, help="fits per panel (the table shows the medians)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    out = []
    if not args.skip_demo:
        scheme, X, y, g, t_gen, t_panel, n_dates = demo_panel(args.demo_customers, args.rows)
        print(f"demo panel: {args.demo_customers:,} customers generated in {t_gen:.1f} s; {n_dates} as-of dates "
              f"graded and labelled in {t_panel:.1f} s ({len(y):,} labelled rows)", flush=True)
        row = run("demo S1", scheme, X, y, g, args.bootstrap, args.repeat)
        row.update({"generate_s": round(t_gen, 1), "panel_s": round(t_panel, 1), "dates": n_dates})
        out.append(row)
    scheme, X, y, g = synthetic(args.rows)
    out.append(run("synthetic", scheme, X, y, g, args.bootstrap, args.repeat))
    print()
    print(pd.DataFrame(out).to_string(index=False))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
