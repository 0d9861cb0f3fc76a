"""Calibration of a scheme's weights and cut-offs against the company's own churn history.

Public: check_dates, calibrate, data_fingerprint, run_calibration.
Reads: the data config, the scheme, params/calibration.yaml. Writes: metrics.json and
<scheme>.calibrated.yaml (run_calibration).

The seeds set weights by an "expert method" or a "data-analysis method"; this module is the second,
side by side with the first (method for analysts: ``docs/calibration.md``):

1. **Panel** (``segment.calibration.churn``): the scheme grades the customers at each training as-of date; each
   customer at risk gets a churn label for the horizon that follows.
2. **Fit** (:class:`WeightCalibrator`): a logistic regression of churn on the indicator points,
   ``logit P(churn) = b0 + Σ β_i · points_i``, fitted by statsmodels (``Logit``) with standard errors
   clustered by customer (a customer appears at several dates). Points rise for better customers, so
   a useful indicator has β_i < 0.
3. **Weights**: the same likelihood refitted with β_i ≤ 0 (an indicator can only add points for
   better customers) and a ``prior_strength`` that pulls the *direction* of β towards the expert
   weights; effective weights are ``w_i = −β_i / Σ −β_j`` (non-negative, summing to 1), and split
   into dimension weights and weights within each dimension (each level sums to 1). The calibrated
   score Σ w_i · points_i ranks customers exactly as the fitted model does.
4. **Bootstrap** over customers (all of a customer's rows together) gives the weights' intervals.
5. **Cut-offs** (:func:`choose_cutoffs`): the expert tiers' shares, target shares, a maximum number
   of customers in a tier, or target churn rates.
6. **Out-of-time validation**: expert and calibrated schemes graded at the test date, against
   the churn that followed: AUC, Gini, KS, Brier, log loss, deciles, lift, churn per tier with
   Wilson intervals and a monotonicity check.

``run_calibration`` does it all from files and writes ``metrics.json`` and
``<scheme id>.calibrated.yaml`` (never the analysts' scheme)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from pydantic import ValidationError
from scipy.special import expit

from segment.calibration.churn import (
    as_day,
    build_panel,
    linear_score,
)
from segment.calibration.cutoffs import calibrated_cutoffs
from segment.calibration.fit import logit_fit
from segment.calibration.metrics import (
    decile_table,
    discrimination,
    lift_table,
    monotone,
    monotone_violations,
    tier_table,
)
from segment.calibration.params import CalibrationParams, load_calibration_params
from segment.calibration.result import (
    CalibrationResult,
    json_number,
    json_ready,
    json_records,
    scheme_dict,
    scheme_yaml,
)
from segment.calibration.weights import (
    WeightCalibrator,
    round_simplex,
    scheme_structure,
    split_weights,
)
from segment.data.config import read_data_config
from segment.data.tables import Tables
from segment.data.validate import load_data
from segment.errors import SegmentError
from segment.grading.engine import PTS
from segment.grading.scheme import Scheme, load_scheme, resolve
from segment.paths import QuarterFiles, params_file
from segment.pipeline import data_end as _data_end
from segment.plumbing.atomic import sha256_file, signals_deferred, write_text
from segment.plumbing.yamlfile import read_yaml


def check_dates(train_as_of, test_as_of, horizon_days: int, data_end, data_start=None) -> tuple[list[pd.Timestamp], pd.Timestamp, list[str]]:
    """Validate the dates. Rules (errors): at least one train date, none listed twice; the test date
    after every train date; **no leakage** — every train date + horizon ≤ test date, so the training
    labels end before the test period starts (the calibration could have been made on the test date);
    **no censoring** — test date + horizon ≤ data end. Warnings: a date less than a year after the
    first transaction (its 12-month indicators see a partial year)."""
    if isinstance(train_as_of, (str, pd.Timestamp)) or not hasattr(train_as_of, "__iter__"):
        train_as_of = [train_as_of]
    train = [as_day(d, "--train-as-of") for d in train_as_of]
    if not train:
        raise SegmentError("--train-as-of: give at least one training date (YYYY-MM-DD[,YYYY-MM-DD…])")
    dup = sorted({d for d in train if train.count(d) > 1})
    if dup:
        raise SegmentError(f"--train-as-of lists {dup[0].date()} twice; give each date once")
    train = sorted(train)
    test = as_day(test_as_of, "--test-as-of")
    h = horizon_days
    if not isinstance(h, (int, np.integer)) or isinstance(h, bool) or h < 1:
        raise SegmentError(f"--horizon-days must be a whole number of days ≥ 1 (got {h!r})")
    hd = pd.Timedelta(days=int(h))
    end = as_day(data_end, "data end")
    if test <= train[-1]:
        raise SegmentError(f"--test-as-of {test.date()} must come after every --train-as-of date "
                           f"(latest: {train[-1].date()}); out-of-time validation tests on a later date")
    late = [d for d in train if d + hd > test]
    if late:
        raise SegmentError(
            f"--train-as-of {late[-1].date()} + {h} days ends {(late[-1] + hd).date()}, after --test-as-of "
            f"{test.date()}: its churn labels would overlap the test period (leakage). Use train dates on or before "
            f"{(test - hd).date()}, a later test date or a shorter --horizon-days")
    if test + hd > end:
        raise SegmentError(
            f"--test-as-of {test.date()} + {h} days ends {(test + hd).date()}, after the data end {end.date()}: "
            f"the outcome is not observed yet (censored). Use a test date on or before {(end - hd).date()} or a "
            f"shorter --horizon-days")
    warn = []
    if data_start is not None:
        start = as_day(data_start, "data start")
        early = [d for d in train if d < start]
        if early:
            raise SegmentError(f"--train-as-of {early[0].date()} is before the first transaction "
                               f"({start.date()}): there is no history to grade; use later dates")
        young = [d for d in train + [test] if d < start + pd.Timedelta(days=365)]
        if young:
            warn.append(f"as-of {', '.join(str(d.date()) for d in young)}: less than a year after the first transaction "
                        f"({start.date()}); 12-month indicators see a partial year there")
    return train, test, warn


def _out_of_time(tables: Tables, scheme: Scheme, calibrated: Scheme, test, tr, te, pcols: list[str],
                 e_vec: np.ndarray, params: CalibrationParams, h: int, data_end, test_date) -> SimpleNamespace:
    """Out-of-time validation: the expert and the calibrated scheme graded at the test date against the
    churn that followed (each score's link to churn fitted on the training rows), churn per tier, and
    what adopting the proposal would move (expert tier → calibrated tier). Results by name."""
    conf = params.fit.confidence
    # out-of-time validation: both schemes graded at the test date, the link fitted on training rows
    test_cal_panel = build_panel(tables, calibrated, [test_date], h, params.churn, data_end)
    test_cal_rows, test_cal = test_cal_panel.rows, test_cal_panel.labelled()
    if not test_cal["customer_id"].equals(te["customer_id"]):  # pragma: no cover - same data, same population
        raise AssertionError("calibrated and expert test panels differ")
    y_tr, y_te = tr["churn"].to_numpy(), te["churn"].to_numpy()
    s_tr_exp, s_te_exp = tr["score"].to_numpy(dtype="float64"), te["score"].to_numpy(dtype="float64")
    s_tr_cal = linear_score(tr[pcols].to_numpy(dtype="float64"), e_vec, scheme, tr["adj_mult"].to_numpy())
    s_te_cal = test_cal["score"].to_numpy(dtype="float64")
    a_e, b_e = logit_fit(s_tr_exp[:, None], y_tr)
    a_c, b_c = logit_fit(s_tr_cal[:, None], y_tr)
    p = {"expert": (expit(a_e + b_e[0] * s_tr_exp), expit(a_e + b_e[0] * s_te_exp)),
         "calibrated": (expit(a_c + b_c[0] * s_tr_cal), expit(a_c + b_c[0] * s_te_cal))}
    scores = {"expert": (s_tr_exp, s_te_exp), "calibrated": (s_tr_cal, s_te_cal)}
    perf = {who: {"train": discrimination(y_tr, -scores[who][0], p[who][0]),
                  "test": discrimination(y_te, -scores[who][1], p[who][1])} for who in scores}
    deciles = decile_table(y_te, p["calibrated"][1], conf)
    lift = lift_table(y_te, p["calibrated"][1])
    tier_ids = [t.id for t in scheme.tiers]
    labels = {t.id: t.label or t.id for t in scheme.tiers}
    tiers_cal = tier_table(test_cal["tier"], y_te, tier_ids, conf, labels)
    tiers_exp = tier_table(te["tier"], y_te, tier_ids, conf, labels)
    for t, rows in ((tiers_cal, test_cal_rows), (tiers_exp, test.rows)):
        counts = rows["tier"].astype("string").value_counts()
        t["graded"] = [int(counts.get(i, 0)) for i in tier_ids]
        t["share_graded"] = t["graded"] / max(len(rows), 1)

    # what adopting the proposal would do: the test date's graded customers, expert tier → calibrated tier
    both = test.rows[["customer_id", "tier"]].merge(test_cal_rows[["customer_id", "tier"]], on="customer_id",
                                                    suffixes=("_e", "_c"))
    rank = {t: i for i, t in enumerate(tier_ids)}  # best tier first
    r_e = both["tier_e"].astype(str).map(rank).to_numpy(dtype=np.intp)
    r_c = both["tier_c"].astype(str).map(rank).to_numpy(dtype=np.intp)
    adopted = np.zeros((len(tier_ids), len(tier_ids)), dtype=np.int64)
    np.add.at(adopted, (r_e, r_c), 1)

    return SimpleNamespace(y_tr=y_tr, y_te=y_te, s_te_cal=s_te_cal, perf=perf, deciles=deciles, lift=lift,
                           tiers_cal=tiers_cal, tiers_exp=tiers_exp, tier_ids=tier_ids, adopted=adopted, both=both,
                           r_e=r_e, r_c=r_c, a_e=a_e, b_e=b_e, a_c=a_c, b_c=b_c)


def calibrate(tables: Tables, scheme: Scheme, train_as_of, test_as_of, horizon_days: int,
              params: CalibrationParams | None = None, data_end=None, *, scheme_raw: dict | None = None,
              provenance: dict | None = None) -> CalibrationResult:
    """The whole calibration in memory (no files): panels, fit, weights, cut-offs, validation.

    ``scheme_raw`` is the scheme as read from its YAML (kept as written, weights and cut-offs
    replaced); ``provenance`` is merged into the calibrated scheme's provenance block.

    Long because metrics.json is written out here as one literal, field by field, next to the values it
    records: its shape reads in one place (docs/calibration.md documents it)."""
    params = params or CalibrationParams()
    start, last = tables.date_range()
    if data_end is None:
        data_end = last.normalize()
    train_dates, test_date, warn = check_dates(train_as_of, test_as_of, horizon_days, data_end,
                                               None if pd.isna(start) else start)
    inds, home, expert = scheme_structure(scheme)
    h = int(horizon_days)
    conf = params.fit.confidence

    train = build_panel(tables, scheme, train_dates, h, params.churn, data_end)
    test = build_panel(tables, scheme, [test_date], h, params.churn, data_end)
    tr, te = train.labelled(), test.labelled()
    for panel, what in ((train, "training"), (test, "test")):
        empty = panel.counts[panel.counts["labelled"] == 0]
        if len(empty):
            raise SegmentError(f"no customer at risk at the {what} date(s) {', '.join(empty['as_of'])} "
                               f"({params.churn.describe()}); choose dates inside the data")
    pcols = [PTS + i for i in inds]
    model = WeightCalibrator(scheme, params.fit.prior_strength, params.fit.bootstrap, conf, params.fit.seed)
    model.fit(tr[pcols].set_axis(inds, axis=1), tr["churn"].to_numpy(), tr["customer_id"].to_numpy())
    if model.fallback_:
        warn.append("no indicator's points fall with churn in the training panel: the expert weights are kept")
    if model.no_variation_:
        warn.append(f"no variation in the training panel (weight 0): {', '.join(model.no_variation_)}")

    # weights as written (rounded, each level summing to 1) and the scores they give
    dims, within = split_weights(model.weights_.to_dict(), scheme)
    dims_r = round_simplex(dims, 4)
    within_r = {d: round_simplex(w, 4) for d, w in within.items()}
    eff = {i: dims_r[home[i]] * within_r[home[i]][i] for i in inds}
    e_vec = np.array([eff[i] for i in inds])

    # cut-offs, on the latest training date's graded population (customers at risk or not)
    raw = scheme_dict(scheme, scheme_raw)
    for d, dim in raw["dimensions"].items():
        dim["weight"] = dims_r[d]
        dim["indicators"] = {i: within_r[d][i] for i in dim["indicators"]}
    probe = Scheme.model_validate({**raw, "tiers": [raw["tiers"][-1]], "overrides": [], "optional": []})
    latest = train.rows[train.rows["as_of"] == train_dates[-1]]
    ref_cal = linear_score(latest[pcols].to_numpy(dtype="float64"), e_vec, scheme, latest["adj_mult"].to_numpy())
    ref_exp = latest["score"].to_numpy(dtype="float64")
    cutoffs, cut_targets = calibrated_cutoffs(scheme, params.cutoffs, probe.max_score(), ref_exp, ref_cal,
                                              tr_cal=lambda: linear_score(tr[pcols].to_numpy(dtype="float64"), e_vec, scheme,
                                                                          tr["adj_mult"].to_numpy()),
                                              y_tr=tr["churn"].to_numpy())
    for t in raw["tiers"]:
        if t.get("id") in cutoffs:
            c = float(cutoffs[t["id"]])
            t["min_score"] = int(c) if c.is_integer() else c
    raw["id"] = f"{scheme.id}.calibrated"
    raw["name"] = (raw.get("name") or scheme.id) + " — calibrated"
    try:
        calibrated = Scheme.model_validate({**raw, "provenance": None})
    except ValidationError as e:  # pragma: no cover - the weights and cut-offs above are valid by construction
        raise SegmentError(f"the calibrated scheme is invalid: {e.errors()[0]['msg']}") from None

    v = _out_of_time(tables, scheme, calibrated, test, tr, te, pcols, e_vec, params, h, data_end, test_date)
    # metrics.json
    ci = model.weights_ci_
    dci = model.dimension_weights_ci_
    exp_dims = {d: dim.weight for d, dim in scheme.dimensions.items()}

    def _perf(d):
        return {k: json_number(v) for k, v in d.items()}

    def _tiers(t):
        return [{"tier": r.tier, "label": r.label, "n": int(r.n), "churned": int(r.churned),
                 "churn_rate": json_number(r.churn_rate), "ci_low": json_number(r.ci_low), "ci_high": json_number(r.ci_high),
                 "graded": int(r.graded), "share_graded": json_number(r.share_graded)}
                for r in t.itertuples()]

    metrics = {
        "scheme": {"id": scheme.id, "calibrated_id": calibrated.id,
                   "dimensions": {i: d for d, dim in scheme.dimensions.items() for i in dim.indicators}},
        "horizon_days": h,
        "train_as_of": [str(d.date()) for d in train_dates],
        "test_as_of": str(test_date.date()),
        "data_end": str(pd.Timestamp(data_end).date()),
        "churn_definition": {**params.churn.model_dump(), "text": params.churn.describe()},
        "n_train": int(len(tr)),
        "n_train_customers": int(model.n_customers_),
        "n_test": int(len(te)),
        "churn_rate_train": json_number(v.y_tr.mean()),
        "churn_rate_test": json_number(v.y_te.mean()),
        "population": json_records(pd.concat([train.counts.assign(panel="train"), test.counts.assign(panel="test")])),
        "expert": {
            "weights": {i: json_number(expert[i]) for i in inds},
            "dimension_weights": {d: json_number(w) for d, w in exp_dims.items()},
            "cutoffs": {t.id: t.min_score for t in scheme.tiers if t.min_score is not None},
            "train": _perf(v.perf["expert"]["train"]), "test": _perf(v.perf["expert"]["test"]),
            "link": {"intercept": json_number(v.a_e), "slope": json_number(v.b_e[0])},
        },
        "calibrated": {
            "weights": {i: json_number(eff[i], 10) for i in inds},
            "weights_unrounded": {i: json_number(model.weights_[i]) for i in inds},
            "weights_ci": {i: [json_number(ci.loc[i, "low"]), json_number(ci.loc[i, "high"])] for i in inds},
            "dimension_weights": {d: json_number(w) for d, w in dims_r.items()},
            "dimension_weights_ci": {d: [json_number(dci.loc[d, "low"]), json_number(dci.loc[d, "high"])] for d in dims_r},
            "within_weights": {d: {i: json_number(w) for i, w in ws.items()} for d, ws in within_r.items()},
            "cutoffs": cutoffs,
            "cutoff_targets": cut_targets,
            "coefficients": json_records(model.coefficients()),
            "prior_strength": params.fit.prior_strength,
            "bootstrap": {"replicates": int(params.fit.bootstrap), "confidence": conf, "seed": params.fit.seed,
                          "degenerate": int(model.boot_degenerate_)},
            "no_variation": model.no_variation_,
            "train": _perf(v.perf["calibrated"]["train"]), "test": _perf(v.perf["calibrated"]["test"]),
            "link": {"intercept": json_number(v.a_c), "slope": json_number(v.b_c[0])},
            "calibration_table": json_records(v.deciles),
            "lift": json_records(v.lift),
            "distinct_scores_test": int(np.unique(v.s_te_cal[np.isfinite(v.s_te_cal)]).size),
        },
        "tiers": {
            "calibrated": _tiers(v.tiers_cal),
            "expert": _tiers(v.tiers_exp),
            "monotone": monotone(v.tiers_cal),
            "monotone_within_ci": all(v["intervals_overlap"] for v in monotone_violations(v.tiers_cal)),
            "monotone_expert": monotone(v.tiers_exp),
            "violations": monotone_violations(v.tiers_cal),
            "violations_expert": monotone_violations(v.tiers_exp),
            "adopted": {"tiers": v.tier_ids, "counts": v.adopted.tolist(), "graded": int(len(v.both)),
                        "changed": int(len(v.both) - np.trace(v.adopted)), "up": int((v.r_c < v.r_e).sum()),
                        "down": int((v.r_c > v.r_e).sum())},
        },
        "warnings": warn,
    }
    prov = {
        "generated_by": "segment calibrate",
        "input_scheme": scheme.id,
        **(provenance or {}),
        "train_as_of": metrics["train_as_of"],
        "test_as_of": metrics["test_as_of"],
        "horizon_days": h,
        "churn_definition": metrics["churn_definition"],
        "fit": {"model": "logit on indicator points, weights = −β / Σ −β with β ≤ 0", "prior_strength":
                params.fit.prior_strength, "bootstrap": int(params.fit.bootstrap), "seed": params.fit.seed,
                "n_train": metrics["n_train"], "n_train_customers": metrics["n_train_customers"]},
        "cutoffs": {**cut_targets, "reference": f"graded customers at {metrics['train_as_of'][-1]}"},
        "weights_ci": metrics["calibrated"]["weights_ci"],
        "metrics": {
            "n_test": metrics["n_test"], "churn_rate_test": metrics["churn_rate_test"],
            "expert_test_auc": metrics["expert"]["test"]["auc"], "calibrated_test_auc": metrics["calibrated"]["test"]["auc"],
            "expert_test_ks": metrics["expert"]["test"]["ks"], "calibrated_test_ks": metrics["calibrated"]["test"]["ks"],
            "calibrated_test_brier": metrics["calibrated"]["test"]["brier"],
            "calibrated_test_log_loss": metrics["calibrated"]["test"]["log_loss"],
            "tiers_monotone": metrics["tiers"]["monotone"],
        },
    }
    raw["provenance"] = json_ready(prov)
    metrics = json_ready(metrics)
    return CalibrationResult(metrics, raw, Scheme.model_validate(raw), scheme, model, train, test, v.deciles, v.lift,
                             v.tiers_cal, v.tiers_exp, warn)


def data_fingerprint(config_path: str | Path) -> dict:
    """sha256 over the data config and every file it names (SQL sources: their URL template and query,
    never credentials). Same bytes → same fingerprint."""

    path = Path(config_path)
    config = read_data_config(path)
    h = hashlib.sha256()
    conf_hash = sha256_file(path)
    h.update(b"config\0" + conf_hash.encode())
    files = {}
    for name in sorted(config.tables):
        src = config.tables[name]
        if src.path is not None:
            f = (path.parent / src.path).resolve()
            digest = sha256_file(f)
            files[name] = {"path": src.path, "sha256": digest}
        else:
            digest = hashlib.sha256((src.sql.url + "\0" + src.sql.query).encode()).hexdigest()
            files[name] = {"sql": True, "sha256": digest}
        h.update(f"{name}\0{digest}".encode())
    return {"sha256": h.hexdigest(), "config": str(path), "config_sha256": conf_hash, "tables": files}


def run_calibration(data, scheme, train_as_of: list, test_as_of, horizon_days: int | None, out_dir,
                    params_path=None, *, params: CalibrationParams | None = None,
                    loaded=None) -> CalibrationResult:
    """Calibrate ``scheme`` (a path or an id under params/schemes/) on the data config ``data`` and write
    ``out_dir/metrics.json`` and ``out_dir/<scheme id>.calibrated.yaml``.

    ``horizon_days`` None takes the params file's. Every input is checked before anything is written
    (``SegmentError`` otherwise); the analysts' scheme is never overwritten. ``loaded``: the data config's
    tables already loaded and validated by the caller (``segment report``), so they are not read twice."""

    from_file = params is None
    params_path = params_path if params_path is not None else params_file("calibration.yaml")
    params = params or load_calibration_params(params_path)
    scheme_path = resolve(scheme)
    scheme_obj = load_scheme(scheme)
    scheme_structure(scheme_obj)  # a scheme calibration cannot handle fails before the data is read
    raw = read_yaml(scheme_path)
    out_dir = Path(out_dir)
    target = out_dir / f"{scheme_obj.id}.calibrated.yaml"
    metrics_path = out_dir / QuarterFiles.METRICS
    if target.resolve() == scheme_path.resolve() or metrics_path.resolve() == scheme_path.resolve():
        raise SegmentError(f"--out {out_dir} would overwrite the scheme {scheme_path}; the analysts' scheme is "
                           "never replaced — write the calibration to another folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise SegmentError(f"--out {out_dir} is a file; give a folder")
    h = params.horizon_days if horizon_days is None else horizon_days
    if isinstance(train_as_of, str):
        train_as_of = [d for d in train_as_of.split(",") if d.strip()]
    # cheap checks first (data end comes with the data)
    check_dates(train_as_of, test_as_of, h, pd.Timestamp.max.normalize())
    loaded = loaded if loaded is not None else load_data(data)
    end = _data_end(loaded)
    fp = data_fingerprint(data)
    prov = {"input_scheme": scheme_obj.id, "input_scheme_path": str(scheme_path),
            "input_scheme_sha256": sha256_file(scheme_path),
            "data": {"config": str(data), "fingerprint": "sha256:" + fp["sha256"], "data_end": str(end.date()),
                     "tables": fp["tables"]},
            "params": str(params_path) if from_file else "given in code"}
    try:
        result = calibrate(loaded.tables, scheme_obj, train_as_of, test_as_of, h, params, end, scheme_raw=raw,
                           provenance=prov)
    except SegmentError as e:  # name the inputs: "the training panel has 0 churned" alone does not say of what
        msg = str(e)
        raise SegmentError(f"{data} with {scheme_path.name}: {msg}") from None
    result.metrics["data"] = json_ready(prov["data"])
    result.metrics["scheme"]["path"] = str(scheme_path)
    header = (f"# {scheme_obj.id} calibrated against churn by `segment calibrate` — a proposal, not the analysts' scheme.\n"
              f"# Trained on {', '.join(result.metrics['train_as_of'])}, tested on {result.metrics['test_as_of']}, "
              f"horizon {h} days. See metrics.json beside this file and docs/calibration.md.\n")
    scheme_text = scheme_yaml(result.scheme, header)
    metrics_text = json.dumps(result.metrics, indent=2, ensure_ascii=False, default=str) + "\n"
    with signals_deferred():  # the proposed scheme and its metrics are replaced together or not at all
        write_text(target, scheme_text)
        write_text(metrics_path, metrics_text)
    result.paths = {"scheme": target, "metrics": metrics_path}
    return result
