"""Benchmark: the product's calibrated grading next to two plain baselines. Not a test.

    .venv/bin/python bench/bench_baselines.py [--json PATH] [--quick]

Cases (dataset × scheme, the split each uses):

* **demo × s1_four_tier** and **demo × rfm_quantiles** — the 5,000-customer demo (``data/demo/data.yaml``
  when it exists, else ``segment.demo.write.write_demo`` into a temporary folder), trained at
  2025-03-31, 2025-06-30, 2025-09-30, tested at 2026-03-31, horizon 180 days (``make calibrate``'s split);
* **Online Retail II × rfm_quantiles** — ``params/data/online_retail.yaml``, twice: with the split
  ``segment report`` calibrates its latest complete quarter on (``calibration_dates``: trained at
  2010-06-30 and 2010-09-30, tested at 2011-03-31), and trained at one date, 2010-12-01, six months
  before the test date 2011-06-01; horizon 180 days; skipped with a note when the CSV is missing.

Each case runs ``segment.calibration.run.calibrate`` with the project's params (bootstrap 0: the
intervals play no part in the metrics here). The product's rows come from its metrics: "expert" (the
scheme as written), "calibrated" (fitted weights and cut-offs) and "proposal" when this build's
metrics have it. On exactly the same labelled rows (customer × as-of of the result's
``train.labelled()`` / ``test.labelled()``) the snapshot's built-in indicators at each as-of date give
two baselines, fitted on the training rows and evaluated on the test rows:

1. **log-RFM logistic**: churn on log1p(recency_days), log1p(orders_12m), log1p(max(annual_amount, 0));
2. **recency logistic**: churn on log1p(recency_days) (its AUC is recency's own).

AUC and Brier from ``segment.calibration.metrics``; "monotone" (churn rises tier by tier) is n/a for
the baselines, which have no tiers. The "goal met" column (proposal rows): AUC ≥ the log-RFM
logistic's, Brier ≤ its Brier and monotone tiers.

``--quick`` skips nothing (the whole run takes well under the quick suite's budget); it is accepted
so the runner can pass it.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from segment.calibration.fit import logit_fit
from segment.calibration.metrics import auc, brier
from segment.calibration.params import load_calibration_params
from segment.calibration.run import calibrate
from segment.data.validate import load_data
from segment.features.snapshot import snapshot
from segment.grading.scheme import load_scheme
from segment.pipeline import data_end
from segment.periods import latest_complete  # noqa: E402
from segment.reports.calibration import calibration_dates  # noqa: E402

DEMO_SPLIT = (["2025-03-31", "2025-06-30", "2025-09-30"], "2026-03-31", 180)
RETAIL_SPLIT = (["2010-12-01"], "2011-06-01", 180)
RETAIL_CONFIG = ROOT / "params" / "data" / "online_retail.yaml"
RETAIL_CSV = ROOT.parent / "shared" / "data" / "online_retail_ii" / "online_retail_2009_2011.csv.gz"
FEATURES = ["recency_days", "orders_12m", "annual_amount"]
PRODUCT = {"expert": ("expert", "monotone_expert"), "calibrated": ("calibrated", "monotone"),
           "proposal": ("proposal", None)}
_checked_statsmodels = False


def demo_config(tmp: Path) -> Path:
    """The 5,000-customer demo `make report` leaves in data/demo, or the same demo written afresh."""
    path = ROOT / "data" / "demo" / "data.yaml"
    if path.exists():
        return path
    from segment.demo.write import write_demo  # what `segment demo --out DIR` calls

    print(f"data/demo/data.yaml missing: writing the demo (5,000 customers) into {tmp}", flush=True)
    return write_demo(tmp / "demo", customers=5000)


def log_rfm(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack([np.log1p(frame["recency_days"].to_numpy(dtype="float64")),
                            np.log1p(frame["orders_12m"].to_numpy(dtype="float64")),
                            np.log1p(np.maximum(frame["annual_amount"].to_numpy(dtype="float64"), 0.0))])


def features(tables, rows: pd.DataFrame, cache: dict) -> pd.DataFrame:
    """The snapshot's recency / 12-month orders / 12-month amount for each (customer_id, as_of) of
    ``rows``, in ``rows``' order (snapshots cached per as-of date: both schemes of a dataset share them)."""
    parts = []
    for day in sorted(rows["as_of"].unique()):
        day = pd.Timestamp(day)
        if day not in cache:
            snap = snapshot(tables, day)
            cache[day] = pd.DataFrame({"customer_id": snap["customer_id"].astype(str).to_numpy(),
                                       **{c: pd.to_numeric(snap[c], errors="coerce").to_numpy(dtype="float64",
                                                                                            na_value=np.nan)
                                          for c in FEATURES}})
        parts.append(cache[day].assign(as_of=day))
    feats = pd.concat(parts, ignore_index=True)
    keys = pd.DataFrame({"customer_id": rows["customer_id"].astype(str).to_numpy(),
                         "as_of": pd.to_datetime(rows["as_of"]).to_numpy()})
    out = keys.merge(feats, on=["customer_id", "as_of"], how="left", validate="one_to_one")
    if len(out) != len(rows) or out[FEATURES].isna().all(axis=1).any():
        raise AssertionError("a labelled row has no snapshot row at its as-of date")
    return out


def check_statsmodels(X: np.ndarray, y: np.ndarray, a: float, b: np.ndarray) -> None:
    """Once per run: logit_fit (numpy ML) and statsmodels' Logit agree to 1e-4 on every coefficient."""
    global _checked_statsmodels
    if _checked_statsmodels:
        return
    import statsmodels.api as sm

    res = sm.Logit(y, sm.add_constant(X, has_constant="add")).fit(disp=0, method="newton", maxiter=100, tol=1e-12)
    ours = np.r_[a, b]
    gap = float(np.max(np.abs(ours - np.asarray(res.params))))
    assert gap < 1e-4, f"logit_fit and statsmodels Logit differ by {gap:.2e}: {ours} vs {np.asarray(res.params)}"
    print(f"  cross-check: logit_fit = statsmodels Logit on the log-RFM fit (largest gap {gap:.1e})", flush=True)
    _checked_statsmodels = True


def baselines(tables, result, cache: dict) -> list[dict]:
    tr, te = result.train.labelled(), result.test.labelled()
    f_tr, f_te = features(tables, tr, cache), features(tables, te, cache)
    y_tr, y_te = tr["churn"].to_numpy(dtype="float64"), te["churn"].to_numpy(dtype="float64")
    X_tr, X_te = log_rfm(f_tr), log_rfm(f_te)
    # a missing indicator (none expected: labelled customers bought within the year) is filled with
    # the *training* median of its log column, on train and test alike, so the test rows never feed the fit
    med = np.nanmedian(X_tr, axis=0)
    n_filled = int(np.isnan(X_tr).sum() + np.isnan(X_te).sum())
    X_tr = np.where(np.isnan(X_tr), med, X_tr)
    X_te = np.where(np.isnan(X_te), med, X_te)
    if n_filled:
        print(f"  {n_filled} missing baseline values filled with the training median", flush=True)
    out = []
    a, b = logit_fit(X_tr, y_tr)
    check_statsmodels(X_tr, y_tr, a, b)
    p = expit(a + X_te @ b)
    out.append({"model": "log-RFM logistic", "auc": auc(y_te, p), "brier": brier(y_te, p), "monotone": None,
                "coef": {"intercept": a, **dict(zip(["log1p_recency", "log1p_orders_12m", "log1p_amount_12m"], b))}})
    a, b = logit_fit(X_tr[:, :1], y_tr)
    p = expit(a + X_te[:, :1] @ b)
    out.append({"model": "recency logistic", "auc": auc(y_te, X_te[:, 0]), "brier": brier(y_te, p), "monotone": None,
                "coef": {"intercept": a, "log1p_recency": b[0]}})
    return out


def product(metrics: dict) -> list[dict]:
    out = []
    for model, (key, mono_key) in PRODUCT.items():
        if key not in metrics:
            print(f"  {model}: not in this build", flush=True)
            continue
        m = metrics[key]
        mono = metrics["tiers"][mono_key] if mono_key else m.get("monotone")
        out.append({"model": model, "auc": m["test"]["auc"], "brier": m["test"]["brier"], "monotone": mono})
    return out


def run_case(dataset: str, tables, end, scheme_id: str, split, params, cache: dict) -> tuple[list[dict], dict]:
    train, test, h = split
    print(f"{dataset} × {scheme_id}: train {','.join(train)}, test {test}, horizon {h} days", flush=True)
    scheme = load_scheme(ROOT / "params" / "schemes" / f"{scheme_id}.yaml")
    t = time.perf_counter()
    result = calibrate(tables, scheme, train, test, h, params, end)
    t_cal = time.perf_counter() - t
    t = time.perf_counter()
    base = baselines(tables, result, cache)
    t_base = time.perf_counter() - t
    m = result.metrics
    common = {"dataset": dataset, "scheme": scheme_id, "n_train": m["n_train"], "n_test": m["n_test"],
              "churn_rate_test": m["churn_rate_test"]}
    if len(result.train.labelled()) != m["n_train"] or len(result.test.labelled()) != m["n_test"]:
        raise AssertionError("the baselines' rows are not the calibration's labelled rows")
    rows = [{**common, **r} for r in product(m) + base]
    times = {"dataset": dataset, "scheme": scheme_id, "calibrate_s": round(t_cal, 2), "baselines_s": round(t_base, 2)}
    print(f"  calibrate {t_cal:.1f} s, baselines {t_base:.1f} s", flush=True)
    return rows, times


def goal(rows: list[dict]) -> None:
    """'goal met' on the proposal rows: AUC ≥ log-RFM's, Brier ≤ log-RFM's, monotone tiers."""
    for r in rows:
        r["goal_met"] = None
        if r["model"] != "proposal":
            continue
        ref = next((b for b in rows if b["model"] == "log-RFM logistic" and b["dataset"] == r["dataset"]
                    and b["scheme"] == r["scheme"]), None)
        if ref is not None:
            r["goal_met"] = bool(r["auc"] >= ref["auc"] and r["brier"] <= ref["brier"] and r["monotone"])


def markdown(rows: list[dict]) -> str:
    def num(v, nd=4):
        return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{nd}f}"

    def yn(v):
        return "n/a" if v is None else ("yes" if v else "no")

    lines = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        sub = [r for r in rows if r["dataset"] == ds]
        lines += [f"**{ds}**", "",
                  "| scheme | model | AUC | Brier | monotone tiers | n train | n test | churn rate test | goal met |",
                  "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- |"]
        for r in sub:
            g = "" if r["model"] != "proposal" else yn(r["goal_met"])
            lines.append(f"| {r['scheme']} | {r['model']} | {num(r['auc'])} | {num(r['brier'])} | {yn(r['monotone'])} | "
                         f"{r['n_train']:,} | {r['n_test']:,} | {num(r['churn_rate_test'], 3)} | {g} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--json", type=Path)
    p.add_argument("--quick", action="store_true", help="accepted for the runner; skips nothing")
    args = p.parse_args()
    t0 = time.perf_counter()
    params = load_calibration_params()
    params = params.model_copy(update={"fit": params.fit.model_copy(update={"bootstrap": 0})})
    rows, times, notes = [], [], []
    with tempfile.TemporaryDirectory(prefix="segment-baselines-") as tmp:
        t = time.perf_counter()
        loaded = load_data(demo_config(Path(tmp)))
        t_load = time.perf_counter() - t
        print(f"demo loaded in {t_load:.1f} s", flush=True)
        cache: dict = {}
        for scheme_id in ("s1_four_tier", "rfm_quantiles"):
            r, tm = run_case("demo", loaded.tables, data_end(loaded), scheme_id, DEMO_SPLIT, params, cache)
            rows += r
            times.append({**tm, "load_s": round(t_load, 2) if scheme_id == "s1_four_tier" else 0.0})
    if RETAIL_CSV.exists():
        t = time.perf_counter()
        loaded = load_data(RETAIL_CONFIG)
        t_load = time.perf_counter() - t
        print(f"Online Retail II loaded in {t_load:.1f} s", flush=True)
        # the split `segment report` calibrates its latest complete quarter on (two dates half a year into
        # the data: it holds two years), and one date six months before the test date
        end = data_end(loaded)
        train, test = calibration_dates(latest_complete(end, "quarter").end, loaded.tables.date_range()[0], 180)
        for name, split in (("Online Retail II, the report's split", (train, test, 180)),
                            ("Online Retail II, one date 6 months before", RETAIL_SPLIT)):
            r, tm = run_case(name, loaded.tables, end, "rfm_quantiles", split, params, {})
            rows += r
            times.append({**tm, "load_s": round(t_load, 2)})
            t_load = 0.0
    else:
        note = f"Online Retail II skipped: {RETAIL_CSV} is missing"
        print(note, flush=True)
        notes.append(note)
    goal(rows)
    total = time.perf_counter() - t0
    table = markdown(rows)
    print()
    print(table)
    print(f"whole run {total:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {"rows": rows, "cases": times, "notes": notes, "markdown": table,
               "median_s": round(total, 1), "times_s": [round(total, 1)]}
        args.json.write_text(json.dumps(out, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
