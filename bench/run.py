"""The benchmark suite behind `make bench` / `make bench-quick`. Not tests.

    .venv/bin/python bench/run.py [--quick] [--out bench/results] [--data /tmp/segment-bench] [--only features]

Every case runs in its own Python process; the runner takes its wall time from the case's JSON
(median of ≥ 3 runs inside the process unless stated) and its **peak RSS** from the kernel
(``os.wait4`` rusage of that child: ``ru_maxrss``), so one case's memory never hides another's.
Writes ``<out>/<case>.json`` per case, ``<out>/summary.json`` and ``<out>/summary.md`` (the table).

The synthetic feature data (1M / 10M / 50M transactions, ~1 GB of Parquet at 50M) is generated once
into ``--data`` (default ``$SEGMENT_BENCH_DATA`` or ``/tmp/segment-bench``) and reused.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PY = sys.executable


def sizes(quick: bool) -> dict:
    if quick:
        return {"demo": [5_000], "features": [1_000_000], "memory_features": [1_000_000], "grading": 100_000,
                "schemes": "s1_four_tier,rfm_quantiles,s10_bank_value_behaviour",
                "calibration": ["--rows", "100000", "--bootstrap", "50", "--demo-customers", "10000", "--repeat", "3"],
                "reports": [5_000], "reports_repeat": 3, "store": [5_000],
                "rerun": [5_000], "rerun_excel": [1_000], "grade_cli": 5_000, "excel": 1_000}
    return {"demo": [100_000], "features": [1_000_000, 10_000_000, 50_000_000],
            "memory_features": [1_000_000, 10_000_000], "grading": 1_000_000, "schemes": None,
            "calibration": ["--rows", "1000000", "--bootstrap", "200", "--demo-customers", "100000", "--repeat", "3"],
            "reports": [5_000, 50_000], "reports_repeat": 3, "store": [100_000],
            "rerun": [100_000], "rerun_excel": [3_000], "grade_cli": 100_000, "excel": 5_000}


def human(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else (f"{n // 1000}k" if n >= 1000 else str(n))


def run_case(name: str, argv: list[str], out: Path) -> dict:
    """Run one case in a child process; its JSON plus wall time and peak RSS (MiB)."""
    target = out / f"{name}.json"
    target.unlink(missing_ok=True)
    print(f"== {name}", flush=True)
    t = time.perf_counter()
    proc = subprocess.Popen([PY, *argv, "--json", str(target)], cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"benchmark {name} failed (exit {proc.returncode})")
    data = json.loads(target.read_text())
    peak = usage.ru_maxrss / 1024  # Linux: KiB
    return {"case": name, "data": data, "process_s": round(wall, 1), "peak_rss_mib": round(peak)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="small sizes: a couple of minutes")
    p.add_argument("--out", type=Path)
    p.add_argument("--data", type=Path, default=Path(os.environ.get("SEGMENT_BENCH_DATA", "/tmp/segment-bench")))
    p.add_argument("--big", action="store_true", help="only the big-data CLI runs (1.1M-customer demo, ~50M lines)")
    p.add_argument("--only", help="comma-separated groups: demo,features,store,speed,grading,calibration,baselines,reports")
    a = p.parse_args()
    out = a.out or (BENCH / "results" / ("quick" if a.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    s = sizes(a.quick)
    groups = set((a.only or ("big" if a.big else "demo,features,store,speed,grading,calibration,baselines,reports")).split(","))
    if a.big and not a.out:
        out = BENCH / "results" / "big"
        out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows: list[dict] = []

    def add(bench: str, size: str, res: dict, **kw) -> None:
        d = res["data"]
        rows.append({"benchmark": bench, "size": size, "median_s": d.get("median_s"), "runs": len(d.get("times_s", [])),
                     "peak_rss_mib": res["peak_rss_mib"], "process_s": res["process_s"], **kw})

    if "demo" in groups:
        for n in s["demo"]:
            r = run_case(f"demo_{human(n)}", ["bench/bench_demo.py", "--customers", str(n), "--repeat", "3"], out)
            add("demo generation (write_demo)", f"{human(n)} customers, {human(r['data']['transactions'])} tx", r)

    if "features" in groups:
        for n in s["features"]:
            d = a.data / f"tx{human(n)}"
            subprocess.run([PY, "bench/bench_features.py", "make", "--transactions", str(n), "--dir", str(d)],
                           cwd=ROOT, check=True)
            floor = run_case(f"features_floor_{human(n)}", ["bench/bench_features.py", "run", "--dir", str(d),
                                                            "--mode", "floor"], out)
            add("features: raw DuckDB query (floor)", f"{human(n)} tx", floor)
            files = run_case(f"features_files_{human(n)}", ["bench/bench_features.py", "run", "--dir", str(d),
                                                            "--mode", "files"], out)
            add("features: segment, load_data (validated) + snapshot", f"{human(n)} tx", files,
                vs_floor=round(files["data"]["median_s"] / floor["data"]["median_s"], 2))
            if n in s["memory_features"]:
                mem = run_case(f"features_memory_{human(n)}", ["bench/bench_features.py", "run", "--dir", str(d),
                                                               "--mode", "memory"], out)
                add("features: segment, snapshot only (tables already in DuckDB)", f"{human(n)} tx", mem,
                    vs_floor=round(mem["data"]["median_s"] / floor["data"]["median_s"], 2),
                    note=f"+ {mem['data']['read_s']} s pd.read_parquet; RSS includes the frames")

    if "store" in groups:
        for n in s["store"]:
            for storage in ("memory", "disk"):
                r = run_case(f"store_{storage}_{human(n)}", ["bench/bench_store.py", "--customers", str(n),
                                                             "--storage", storage, "--repeat", "3"], out)
                add(f"load + validate, DuckDB tables in {storage}",
                    f"{human(n)} demo, {r['data']['transactions'] / 1e6:.1f}M tx", r,
                    note=f"then a snapshot in {r['data']['snapshot_s']} s")

    if "speed" in groups:  # issue 11's ratios, each against its floor measured in the same process
        n = s["grade_cli"]
        r = run_case(f"grade_cli_{human(n)}", ["bench/bench_grade_cli.py", "--customers", str(n), "--repeat", "3"], out)
        add("segment grade (S1) vs the snapshot over the raw files", f"{human(n)} demo", r, vs_floor=r["data"]["ratio"],
            note=f"floor {r['data']['floor_s']} s: plan() over the files, no validation")
        n = s["excel"]
        r = run_case(f"excel_{human(n)}", ["bench/bench_excel.py", "--customers", str(n), "--repeat", "3"], out)
        add("load_data, transactions in .xlsx (python-calamine)", f"{r['data']['transactions']:,} lines", r,
            note=f"openpyxl {r['data']['openpyxl_s']} s in the same run ({r['data']['speedup']}× slower)")

    if "big" in groups:
        for command in ("validate", "grade", "report"):
            r = run_case(f"cli_{command}_1100k", ["bench/bench_cli.py", "--customers", "1100000", "--command", command],
                         out)
            note = ""
            if command == "report":
                note = ("HTML KiB " + ", ".join(f"{k} {v:,}" for k, v in r["data"]["html_kib"].items())
                        + "; steps s " + ", ".join(f"{k} {v}" for k, v in r["data"]["timings_s"].items()))
            add(f"segment {command} (storage auto → DuckDB)", "1.1M customers, 49.9M tx", r, note=note)

    if "grading" in groups:
        argv = ["bench/bench_grading.py", "--customers", str(s["grading"]), "--repeat", "3"]
        if s["schemes"]:
            argv += ["--schemes", s["schemes"]]
        r = run_case(f"grading_{human(s['grading'])}", argv, out)
        for g in r["data"]:
            rows.append({"benchmark": g["bench"], "size": f"{human(s['grading'])} customers", "median_s": g["median_s"],
                         "runs": 3, "peak_rss_mib": r["peak_rss_mib"], "process_s": r["process_s"],
                         "note": "RSS: whole process, every scheme"})

    if "calibration" in groups:
        r = run_case("calibration", ["bench/bench_calibration.py", *s["calibration"]], out)
        for c in r["data"]:
            note = f"statsmodels {c['statsmodels_s']} s, refit {c['refit_s']} s, bootstrap {c['bootstrap_s']} s"
            if "panel_s" in c:
                note += f"; panel built once in {c['panel_s']} s ({c['dates']} dates)"
            rows.append({"benchmark": f"calibration fit + {c['bootstrap']} bootstrap ({c['panel']} panel)",
                         "size": f"{c['rows']:,} rows", "median_s": c["total_s"], "runs": len(c["times_s"]),
                         "peak_rss_mib": r["peak_rss_mib"], "process_s": r["process_s"], "note": note})

    if "baselines" in groups:  # the same case in --quick: ~10 s, nothing to shrink
        r = run_case("baselines", ["bench/bench_baselines.py", *(["--quick"] if a.quick else [])], out)
        d = r["data"]
        for c in d["cases"]:
            models = [m for m in d["rows"] if m["dataset"] == c["dataset"] and m["scheme"] == c["scheme"]]
            first = models[0]
            note = "AUC / Brier (test): " + "; ".join(
                f"{m['model']} {m['auc']:.3f} / {m['brier']:.4f}"
                + ("" if m.get("goal_met") is None else f" (goal {'met' if m['goal_met'] else 'not met'})")
                for m in models)
            if not any(m["model"] == "proposal" for m in models):
                note += "; proposal: not in this build"
            rows.append({"benchmark": f"calibrate ({c['scheme']}) vs log-RFM / recency logistic",
                         "size": f"{c['dataset']}: {first['n_train']:,} train / {first['n_test']:,} test rows",
                         "median_s": round(c["calibrate_s"] + c["baselines_s"], 2), "runs": 1,
                         "peak_rss_mib": r["peak_rss_mib"], "process_s": r["process_s"], "note": note})
        for n in d.get("notes", []):
            rows.append({"benchmark": "calibrate vs baselines", "size": "", "median_s": "", "runs": 0,
                         "peak_rss_mib": r["peak_rss_mib"], "process_s": r["process_s"], "note": n})
        (out / "baselines.md").write_text(
            f"Calibrated grading vs plain baselines (test-date AUC and Brier; bootstrap 0), "
            f"{time.strftime('%Y-%m-%d %H:%M')}; whole case {d['median_s']} s.\n\n" + d["markdown"]
            + "".join(f"\n{n}\n" for n in d.get("notes", [])))

    if "reports" in groups:
        for n in s["reports"]:
            r = run_case(f"reports_{human(n)}", ["bench/bench_reports.py", "--customers", str(n),
                                                 "--repeat", str(s["reports_repeat"])], out)
            add("three reports (build_reports)", f"{human(n)} demo", r)
        # issue 11: `segment report` again with nothing changed answers "up to date" without loading the data
        for excel, sizes_ in ((False, s["rerun"]), (True, s["rerun_excel"])):
            for n in sizes_:
                r = run_case(f"report_rerun_{'excel_' if excel else ''}{human(n)}",
                             ["bench/bench_reports.py", "--rerun", "--customers", str(n), "--repeat", "3"]
                             + (["--excel"] if excel else []), out)
                d = r["data"]
                add("report rerun, nothing changed (`segment report`, new process)",
                    f"{human(n)} demo{', customers + transactions .xlsx' if excel else ''}, {d['input_mib']} MiB", r,
                    note=f"target ≤ 2 s; CPU (user + sys) {statistics.median(d['cpu_s']):.2f} s; the first build "
                         f"took {d['first_s']} s (peak RSS is the first build's)")

    total = time.perf_counter() - t0
    meta = {"quick": a.quick, "total_s": round(total), "python": platform.python_version(),
            "cpus": os.cpu_count(), "machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M")}
    (out / "summary.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    md = [f"Benchmarks ({'quick' if a.quick else 'big' if a.big else 'full'}), {meta['date']}, {meta['cpus']} CPUs, "
          f"Python {meta['python']}; whole suite {total / 60:.1f} min.", "",
          "| benchmark | size | median s | runs | × floor | peak RSS MiB | note |",
          "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        md.append(f"| {r['benchmark']} | {r['size']} | {r['median_s']} | {r['runs']} | {r.get('vs_floor', '')} | "
                  f"{r['peak_rss_mib']:,} | {r.get('note', '')} |")
    (out / "summary.md").write_text("\n".join(md) + "\n")
    print("\n" + "\n".join(md))


if __name__ == "__main__":
    main()
