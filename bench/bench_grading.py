"""Benchmark: grading N customers with built-in schemes (median of R runs). Not a test.

    .venv/bin/python bench/bench_grading.py [--customers 1000000] [--repeat 3] [--schemes s1_four_tier]

The snapshot is synthetic (numpy, seeded) with every column the schemes read, so the time is the
engine's alone (features are benchmarked separately).

Next to each scheme that has one, a bare numpy floor computes the same score and raw tier on the
same frame (``numpy_floor``: ``np.searchsorted`` per indicator over the scheme's bands or quantile
cuts, weights, score factor, cut-offs), timed in the same run; the bench asserts both agree with
``grade`` and prints the ratio grade / floor — and, beside it, the ratio counting the explanation
columns a scored grading builds when its frame is first read. Schemes whose score or raw tier needs more than that
(map or rubric indicators, adjustments, stage rules, eligibility, groups, no score) have no floor."""
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

from segment.grading.engine import grade  # noqa: E402
from segment.grading.scheme import load_scheme  # noqa: E402


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
        "orders_90d": rng.poisson(2, n).astype(float),  # drawn last: the columns above keep their values
    })


def numpy_floor(snap: pd.DataFrame, scheme) -> tuple[np.ndarray, np.ndarray] | None:
    """Score and raw tier rank of every row, bare numpy, read off the loaded scheme (None: no floor).

    Per indicator: ``np.searchsorted`` of the values on the band lower bounds (or on the quantile
    cuts of the population), points looked up, values outside every band or missing scoring
    ``missing_points``; score = score_factor × Σ dimension weight × Σ indicator weight × points,
    rounded to 9 decimals like the engine; raw tier = the first tier whose cut-off the score meets."""
    if (not scheme.scored or scheme.eligible or scheme.adjustments or scheme.axes or scheme.group_by
            or any(x.has_rule for x in scheme.tiers)
            or any(x.bands is None and x.quantiles is None for x in scheme.indicators.values())):
        return None
    n = len(snap)
    points: dict[str, np.ndarray] = {}
    for ind, spec in scheme.indicators.items():
        x = snap[spec.column or ind].to_numpy(dtype="float64", na_value=np.nan)
        miss = np.isnan(x)
        if spec.bands is not None:
            edges = np.array([b.lower for b in spec.bands[1:]], dtype="float64")
            table = np.array([b.points for b in spec.bands] + [spec.missing_points], dtype="float64")
            first, last = spec.bands[0], spec.bands[-1]
            if first.lower is not None:
                miss |= x < first.lower
            if last.below is not None:
                miss |= x >= last.below
        else:
            known = x[~miss]
            edges = np.quantile(known, spec.quantiles) if len(known) else np.zeros(0)
            table = np.array(list(spec.points) + [spec.missing_points], dtype="float64")
        idx = np.searchsorted(edges, x, side="right")
        idx[miss] = len(table) - 1
        points[ind] = table[idx]
    score = np.zeros(n)
    for dim in scheme.dimensions.values():
        ds = np.zeros(n)
        for ind, w in dim.indicators.items():
            ds += w * points[ind]
        score += dim.weight * ds
    score = np.round(score * scheme.score_factor, 9)
    cut = np.array([x.min_score for x in scheme.tiers[:-1]], dtype="float64")  # strictly falling
    raw = np.searchsorted(-cut, -score, side="left")  # how many cut-offs lie above the score
    return score, raw


def check_floor(graded, floor: tuple[np.ndarray, np.ndarray], sid: str) -> None:
    score, raw = floor
    f = graded.frame
    assert np.allclose(f["score"].to_numpy(dtype="float64"), score, rtol=0, atol=1e-9), f"{sid}: scores differ"
    assert np.array_equal(f["raw_tier"].cat.codes.to_numpy(), raw), f"{sid}: raw tiers differ"


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
        times, floor_times, texts = [], [], []
        has_floor = numpy_floor(snap.iloc[:0], scheme) is not None
        for _ in range(args.repeat):  # interleaved: both see the same machine load
            t = time.perf_counter()
            graded = grade(snap, scheme, as_of="2026-09-30")
            times.append(time.perf_counter() - t)
            t = time.perf_counter()
            graded.frame  # noqa: B018 - the explanation columns, built on first read
            texts.append(time.perf_counter() - t)
            if has_floor:
                t = time.perf_counter()
                floor = numpy_floor(snap, scheme)
                floor_times.append(time.perf_counter() - t)
                check_floor(graded, floor, sid)
            del graded
        med = statistics.median(times)
        tmed = statistics.median(texts)
        row = {"bench": f"grade {sid}", "n": args.customers, "median_s": round(med, 3), "min_s": round(min(times), 3),
               "explanations_median_s": round(tmed, 3)}
        line = (f"grade {sid:28s} {args.customers:>9,} customers  median {med:6.2f} s  min {min(times):6.2f} s"
                f"  (+ explanations on first read {tmed:5.2f} s)")
        if floor_times:
            fmed = statistics.median(floor_times)
            row.update(floor_median_s=round(fmed, 3), floor_min_s=round(min(floor_times), 3),
                       ratio=round(med / fmed, 2))
            row["ratio_with_explanations"] = round((med + tmed) / fmed, 2)
            line += (f"   numpy floor median {fmed:6.3f} s  ratio {med / fmed:5.1f}× "
                     f"(with explanations {(med + tmed) / fmed:4.1f}×)")
        rows.append(row)
        print(line, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
