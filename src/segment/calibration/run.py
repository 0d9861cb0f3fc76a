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

from segment.calibration.churn import (
    as_day,
    build_panel,
)
from segment.calibration.metrics import (
    monotone,
    monotone_violations,
)
from segment.calibration.params import CalibrationParams, load_calibration_params
from segment.calibration.proposal import (
    add_indicators,
    band_gains,
    churn_timing,
    fit_band_proposal,
    indicator_ranking,
    indicator_text,
)
from segment.calibration.refit import fit_scheme, perf_json, probability_json, tiers_json
from segment.calibration.result import (
    CalibrationResult,
    json_number,
    json_ready,
    json_records,
    scheme_dict,
    scheme_yaml,
)
from segment.calibration.weights import (
    scheme_structure,
)
from segment.data.config import read_data_config
from segment.data.tables import Tables
from segment.data.validate import load_data
from segment.errors import SegmentError
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

    snapshots: dict = {}   # each date's snapshot, shared by the fitted-bands scheme and the indicator ranking
    train = build_panel(tables, scheme, train_dates, h, params.churn, data_end, snapshots)
    test = build_panel(tables, scheme, [test_date], h, params.churn, data_end, snapshots)
    tr, te = train.labelled(), test.labelled()
    for panel, what in ((train, "training"), (test, "test")):
        empty = panel.counts[panel.counts["labelled"] == 0]
        if len(empty):
            raise SegmentError(f"no customer at risk at the {what} date(s) {', '.join(empty['as_of'])} "
                               f"({params.churn.describe()}); choose dates inside the data")
    fit = fit_scheme(tables, scheme, scheme_dict(scheme, scheme_raw), train, test, params, data_end, snapshots)
    model, v, eff, dims_r, within_r = fit.model, fit.v, fit.eff, fit.dims, fit.within
    cutoffs, cut_targets, raw, calibrated = fit.cutoffs, fit.cut_targets, fit.raw, fit.calibrated
    if model.fallback_:
        warn.append("no indicator's points fall with churn in the training panel: the expert weights are kept")
    if model.no_variation_:
        warn.append(f"no variation in the training panel (weight 0): {', '.join(model.no_variation_)}")
    # metrics.json
    ci = model.weights_ci_
    dci = model.dimension_weights_ci_
    exp_dims = {d: dim.weight for d, dim in scheme.dimensions.items()}

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
            "train": perf_json(v.perf["expert"]["train"]), "test": perf_json(v.perf["expert"]["test"]),
            "link": {"intercept": json_number(v.logistic["expert"][0]), "slope": json_number(v.logistic["expert"][1])},
            "probability": probability_json(v, "expert"),
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
            "train": perf_json(v.perf["calibrated"]["train"]), "test": perf_json(v.perf["calibrated"]["test"]),
            "link": {"intercept": json_number(v.logistic["calibrated"][0]), "slope": json_number(v.logistic["calibrated"][1])},
            "probability": probability_json(v, "calibrated"),
            "calibration_table": json_records(v.deciles),
            "lift": json_records(v.lift),
            "distinct_scores_test": int(np.unique(v.s_te_cal[np.isfinite(v.s_te_cal)]).size),
        },
        "tiers": {
            "calibrated": tiers_json(v.tiers_cal),
            "expert": tiers_json(v.tiers_exp),
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
    raw["churn_probability"] = json_ready(v.links["calibrated"].as_scheme(h, ", ".join(metrics["train_as_of"])).model_dump())
    proposal = _beyond_weights(tables, scheme, scheme_raw, train, test, fit, params, data_end, snapshots, metrics,
                               prov, warn)
    metrics = json_ready(metrics)
    return CalibrationResult(metrics, raw, Scheme.model_validate(raw), scheme, model, train, test, v.deciles, v.lift,
                             v.tiers_cal, v.tiers_exp, warn, proposal=proposal)


def _beyond_weights(tables: Tables, scheme: Scheme, scheme_raw: dict | None, train, test, fit, params: CalibrationParams,
                    data_end, snapshots: dict, metrics: dict, prov: dict, warn: list[str]) -> dict | None:
    """The indicator ranking, fitted bands and added indicators (the proposal) and churn timing, added
    to ``metrics``; the proposal's YAML dict (None when nothing could be fitted or bands are off). A
    proposal that cannot be fitted is a warning: the weights' calibration stands without it."""
    metrics["indicators"] = indicator_ranking(snapshots, train, test, scheme, fit.v.s_tr_cal, fit.v.s_te_cal)
    proposal = None
    if params.bands.fit:
        try:
            proposal = _proposal(tables, scheme, scheme_raw, train, test, params, data_end, snapshots, metrics, prov)
        except SegmentError as e:   # e.g. an added indicator collinear with the scheme's on a small panel
            metrics.pop("bands", None)
            metrics.pop("proposal", None)
            warn.append(f"no proposal with fitted bands: {e}")
    try:
        metrics["timing"] = churn_timing(tables, scheme, train, params, data_end)
    except (SegmentError, ValueError, np.linalg.LinAlgError) as e:
        warn.append(f"churn timing could not be estimated: {e}")
        metrics["timing"] = {"skipped": str(e)}
    return proposal


def _proposal(tables: Tables, scheme: Scheme, scheme_raw: dict | None, train, test, params: CalibrationParams,
              data_end, snapshots: dict, metrics: dict, prov: dict) -> dict | None:
    """Fitted bands and added indicators (the proposal): ``metrics['bands']`` and ``metrics['proposal']``,
    and the proposal's YAML dict (None when nothing could be fitted)."""
    h = train.horizon_days
    proposal = None
    banded_raw, fitted, kept = fit_band_proposal(scheme, scheme_dict(scheme, scheme_raw), train, params)
    gain = metrics["indicators"].get("gain") or {}
    names = (metrics["indicators"].get("best_unused") or [])[:params.bands.add_indicators]
    added_raw, added = banded_raw, {}
    if names and (gain.get("gain") or 0) >= params.bands.min_gain:
        added_raw, added = add_indicators(scheme, banded_raw, train, snapshots, names,
                                          metrics["indicators"]["ranking"], params)
    if fitted or added:
        bands_only = _propose(tables, banded_raw, train, test, params, data_end, snapshots) if fitted else None
        final = _propose(tables, added_raw, train, test, params, data_end, snapshots) if added else bands_only
        if fitted:
            metrics["bands"] = {"max_bands": params.bands.max_bands, "min_share": params.bands.min_share,
                                "indicators": band_gains(scheme, bands_only.banded, fitted, kept, test,
                                                         bands_only.test, train),
                                "scheme_test": perf_json(bands_only.fit.v.perf["calibrated"]["test"]),
                                "scheme_monotone": monotone(bands_only.fit.v.tiers_cal)}
        fb, vb = final.fit, final.fit.v
        metrics["proposal"] = {
            "id": f"{scheme.id}.proposal",
            "what": "fitted bands" * bool(fitted) + " + added indicators" * bool(added)
                    + " + fitted weights + cut-offs + isotonic probabilities",
            "added": [{"indicator": n, "label": final.banded.indicators[n].label,
                       "bands": indicator_text(final.banded.indicators[n])} for n in added],
            "weights": {i: json_number(w, 10) for i, w in fb.eff.items()},
            "dimension_weights": {d: json_number(w) for d, w in fb.dims.items()},
            "cutoffs": fb.cutoffs, "train": perf_json(vb.perf["calibrated"]["train"]),
            "test": perf_json(vb.perf["calibrated"]["test"]), "tiers": tiers_json(vb.tiers_cal),
            "monotone": monotone(vb.tiers_cal), "violations": monotone_violations(vb.tiers_cal),
            "probability": probability_json(vb, "calibrated"),
            "calibration_table": json_records(vb.deciles),
            "distinct_scores_test": int(np.unique(vb.s_te_cal[np.isfinite(vb.s_te_cal)]).size),
        }
        proposal = dict(fb.raw)
        proposal["id"] = f"{scheme.id}.proposal"
        prov = {k: v for k, v in prov.items() if k != "weights_ci"}   # the intervals of the weights-only fit
        proposal["name"] = (scheme.name or scheme.id) + " — proposal: " + metrics["proposal"]["what"].split(" + cut")[0]
        proposal["provenance"] = json_ready({**prov, "proposal": metrics["proposal"]["what"],
                                             "bands": f"fitted to churn on the training panel (monotone, ≤ "
                                                      f"{params.bands.max_bands} bands, round thresholds)",
                                             "added": list(added),
                                             "metrics": {"test_auc": metrics["proposal"]["test"]["auc"],
                                                         "test_brier": metrics["proposal"]["test"]["brier"],
                                                         "tiers_monotone": metrics["proposal"]["monotone"]}})
        proposal["churn_probability"] = json_ready(vb.links["calibrated"].as_scheme(
            h, ", ".join(metrics["train_as_of"])).model_dump())
    return proposal


def _propose(tables: Tables, raw: dict, train, test, params: CalibrationParams, data_end, snapshots: dict) -> SimpleNamespace:
    """A proposed scheme (``raw``, weights to be fitted) graded at the panel's dates and fitted like the
    analysts' scheme: the scheme as validated, its test panel and its fit."""
    banded = Scheme.model_validate({**raw, "provenance": None, "churn_probability": None})
    h = train.horizon_days
    train_b = build_panel(tables, banded, train.as_of, h, params.churn, data_end, snapshots)
    test_b = build_panel(tables, banded, test.as_of, h, params.churn, data_end, snapshots)
    return SimpleNamespace(banded=banded, test=test_b, fit=fit_scheme(tables, banded, raw, train_b, test_b, params,
                                                                       data_end, snapshots))


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
    proposal_path = out_dir / f"{scheme_obj.id}.proposal.yaml"
    proposal_text = None
    if result.proposal is not None:
        result.proposal["provenance"]["data"] = result.metrics["data"]
        proposal_text = scheme_yaml(result.proposal, header.replace(
            "calibrated against churn", "with bands and weights fitted to churn", 1))
    with signals_deferred():  # the proposed schemes and their metrics are replaced together or not at all
        write_text(target, scheme_text)
        if proposal_text is not None:
            write_text(proposal_path, proposal_text)
        else:
            proposal_path.unlink(missing_ok=True)   # an older run's proposal would not match these metrics
        write_text(metrics_path, metrics_text)
    result.paths = {"scheme": target, "metrics": metrics_path}
    if proposal_text is not None:
        result.paths["proposal"] = proposal_path
    return result
