"""One scheme fitted to churn: weights, cut-offs, the score's churn probability, and its out-of-time validation.

Public: SchemeFit, fit_scheme, out_of_time, perf_json, tiers_json, probability_json.
Reads: the tables (through the panels). Writes: nothing.

``segment.calibration.run.calibrate`` calls :func:`fit_scheme` on the analysts' scheme (weights and
cut-offs) and, when bands are fitted (``segment.calibration.proposal``), once more on the scheme with
fitted bands: the same weight fit, the same cut-off rule and the same validation, so the two proposals
are compared on equal terms.

Probabilities: each score's churn probability is an isotonic regression of churn on the score over the
training rows (``segment.calibration.probability.fit_isotonic``): monotone and as flexible as the data,
so a coarse score is not bent onto one logistic curve. The logistic link is kept in metrics.json
(``link``, ``brier_logistic``) to show what the isotonic link changes."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
from pydantic import ValidationError
from scipy.special import expit

from segment.calibration.churn import Panel, build_panel, linear_score
from segment.calibration.cutoffs import calibrated_cutoffs
from segment.calibration.fit import logit_fit
from segment.calibration.metrics import brier, decile_table, discrimination, lift_table, log_loss, tier_table
from segment.calibration.params import CalibrationParams
from segment.calibration.probability import brier_decomposition, fit_isotonic
from segment.calibration.result import json_number, json_records
from segment.calibration.weights import WeightCalibrator, round_simplex, scheme_structure, split_weights
from segment.data.tables import Tables
from segment.errors import SegmentError
from segment.grading.engine import PTS
from segment.grading.scheme import Scheme


#: fewest training rows behind each knot of a score's churn probability: a block of a handful of rows
#: at the edge of the scores (all churned) would otherwise give its scores a probability near 1
MIN_ROWS_PER_KNOT = 30


@dataclass
class SchemeFit:
    """What :func:`fit_scheme` learned: the fitted model, the weights as written, the cut-offs, the
    calibrated scheme (``raw`` as a dict, ``calibrated`` validated) and the validation (``v``)."""

    model: WeightCalibrator
    inds: list[str]
    eff: dict[str, float]
    dims: dict[str, float]
    within: dict[str, dict[str, float]]
    cutoffs: dict
    cut_targets: dict
    raw: dict
    calibrated: Scheme
    v: SimpleNamespace


def fit_scheme(tables: Tables, scheme: Scheme, raw: dict, train: Panel, test: Panel, params: CalibrationParams,
               data_end, snapshots: dict | None = None) -> SchemeFit:
    """Weights, cut-offs and validation of ``scheme`` (``raw``: its YAML as a dict, whose weights and
    cut-offs are replaced) on the training and test panels.

    Long because the fit, the weights as written, the cut-offs and the calibrated scheme are one chain
    over the same arrays."""
    inds, home, expert = scheme_structure(scheme)
    tr = train.labelled()
    pcols = [PTS + i for i in inds]
    model = WeightCalibrator(scheme, params.fit.prior_strength, params.fit.bootstrap, params.fit.confidence,
                             params.fit.seed)
    model.fit(tr[pcols].set_axis(inds, axis=1), tr["churn"].to_numpy(), tr["customer_id"].to_numpy())

    # weights as written (rounded, each level summing to 1) and the scores they give
    dims, within = split_weights(model.weights_.to_dict(), scheme)
    dims_r = round_simplex(dims, 4)
    within_r = {d: round_simplex(w, 4) for d, w in within.items()}
    eff = {i: dims_r[home[i]] * within_r[home[i]][i] for i in inds}
    e_vec = np.array([eff[i] for i in inds])

    # cut-offs, on the latest training date's graded population (customers at risk or not)
    raw = dict(raw)
    raw["dimensions"] = {d: dict(dim) for d, dim in raw["dimensions"].items()}
    raw["tiers"] = [dict(t) for t in raw["tiers"]]
    for d, dim in raw["dimensions"].items():
        dim["weight"] = dims_r[d]
        dim["indicators"] = {i: within_r[d][i] for i in dim["indicators"]}
    probe = Scheme.model_validate({**raw, "tiers": [raw["tiers"][-1]], "overrides": [], "optional": [],
                                   "provenance": None, "churn_probability": None})
    last = train.as_of[-1]
    latest = train.rows[train.rows["as_of"] == last]
    ref_cal = linear_score(latest[pcols].to_numpy(dtype="float64"), e_vec, scheme, latest["adj_mult"].to_numpy())
    ref_exp = latest["score"].to_numpy(dtype="float64")
    cutoffs, cut_targets = calibrated_cutoffs(scheme, params.cutoffs, probe.max_score(), ref_exp, ref_cal,
                                              tr_cal=lambda: linear_score(tr[pcols].to_numpy(dtype="float64"), e_vec,
                                                                          scheme, tr["adj_mult"].to_numpy()),
                                              y_tr=tr["churn"].to_numpy())
    for t in raw["tiers"]:
        if t.get("id") in cutoffs:
            c = float(cutoffs[t["id"]])
            t["min_score"] = int(c) if c.is_integer() else c
    raw["id"] = f"{scheme.id}.calibrated"
    raw["name"] = (raw.get("name") or scheme.id) + " — calibrated"
    raw.pop("churn_probability", None)
    try:
        calibrated = Scheme.model_validate({**raw, "provenance": None})
    except ValidationError as e:  # pragma: no cover - the weights and cut-offs above are valid by construction
        raise SegmentError(f"the calibrated scheme is invalid: {e.errors()[0]['msg']}") from None
    v = out_of_time(tables, scheme, calibrated, train, test, pcols, e_vec, params, data_end, snapshots)
    return SchemeFit(model, inds, eff, dims_r, within_r, cutoffs, cut_targets, raw, calibrated, v)


def out_of_time(tables: Tables, scheme: Scheme, calibrated: Scheme, train: Panel, test: Panel, pcols: list[str],
                e_vec: np.ndarray, params: CalibrationParams, data_end, snapshots: dict | None = None) -> SimpleNamespace:
    """Out-of-time validation: the scheme as given and the calibrated scheme graded at the test date
    against the churn that followed (each score's link to churn fitted on the training rows), churn per
    tier, and what adopting the proposal would move (tier as given → calibrated tier). Results by name.

    Long because both schemes' probabilities, metrics and tier tables are built side by side here."""
    conf = params.fit.confidence
    tr, te = train.labelled(), test.labelled()
    test_cal_panel = build_panel(tables, calibrated, test.as_of, test.horizon_days, params.churn, data_end, snapshots)
    test_cal_rows, test_cal = test_cal_panel.rows, test_cal_panel.labelled()
    if not test_cal["customer_id"].equals(te["customer_id"]):  # pragma: no cover - same data, same population
        raise AssertionError("calibrated and expert test panels differ")
    y_tr, y_te = tr["churn"].to_numpy(), te["churn"].to_numpy()
    s_tr_exp, s_te_exp = tr["score"].to_numpy(dtype="float64"), te["score"].to_numpy(dtype="float64")
    s_tr_cal = linear_score(tr[pcols].to_numpy(dtype="float64"), e_vec, scheme, tr["adj_mult"].to_numpy())
    s_te_cal = test_cal["score"].to_numpy(dtype="float64")
    scores = {"expert": (s_tr_exp, s_te_exp), "calibrated": (s_tr_cal, s_te_cal)}
    links, logistic, p = {}, {}, {}
    for who, (s_tr, s_te) in scores.items():
        links[who] = fit_isotonic(s_tr, y_tr, min_rows_per_knot=MIN_ROWS_PER_KNOT)
        a, b = logit_fit(s_tr[:, None], y_tr)
        logistic[who] = (a, float(b[0]), expit(a + b[0] * s_te))
        p[who] = (links[who].predict(s_tr), links[who].predict(s_te))
    perf = {}
    for who in scores:
        perf[who] = {"train": discrimination(y_tr, -scores[who][0], p[who][0]),
                     "test": discrimination(y_te, -scores[who][1], p[who][1])}
        perf[who]["test"]["brier_logistic"] = brier(y_te, logistic[who][2])
        perf[who]["test"]["log_loss_logistic"] = log_loss(y_te, logistic[who][2])
    decomposition = {who: brier_decomposition(y_te, p[who][1], bins=10) for who in scores}
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
    for t, who, panel in ((tiers_cal, "calibrated", test_cal), (tiers_exp, "expert", te)):
        mean_p = pd.Series(p[who][1]).groupby(panel["tier"].astype("string").to_numpy()).mean()
        t["predicted"] = [float(mean_p.get(i, np.nan)) for i in tier_ids]

    # what adopting the proposal would do: the test date's graded customers, tier as given → calibrated tier
    both = test.rows[["customer_id", "tier"]].merge(test_cal_rows[["customer_id", "tier"]], on="customer_id",
                                                    suffixes=("_e", "_c"))
    rank = {t: i for i, t in enumerate(tier_ids)}  # best tier first
    r_e = both["tier_e"].astype(str).map(rank).to_numpy(dtype=np.intp)
    r_c = both["tier_c"].astype(str).map(rank).to_numpy(dtype=np.intp)
    adopted = np.zeros((len(tier_ids), len(tier_ids)), dtype=np.int64)
    np.add.at(adopted, (r_e, r_c), 1)

    return SimpleNamespace(y_tr=y_tr, y_te=y_te, s_tr_cal=s_tr_cal, s_te_cal=s_te_cal, s_tr_exp=s_tr_exp,
                           s_te_exp=s_te_exp, p=p, links=links, logistic=logistic, perf=perf,
                           decomposition=decomposition, deciles=deciles, lift=lift, tiers_cal=tiers_cal,
                           tiers_exp=tiers_exp, tier_ids=tier_ids, adopted=adopted,
                           both=both, r_e=r_e, r_c=r_c, test_cal=test_cal, test_cal_rows=test_cal_rows)


def perf_json(d: dict) -> dict:
    return {k: json_number(v) for k, v in d.items()}


def tiers_json(t: pd.DataFrame) -> list[dict]:
    return [{"tier": r.tier, "label": r.label, "n": int(r.n), "churned": int(r.churned),
             "churn_rate": json_number(r.churn_rate), "ci_low": json_number(r.ci_low), "ci_high": json_number(r.ci_high),
             "graded": int(r.graded), "share_graded": json_number(r.share_graded),
             "predicted": json_number(getattr(r, "predicted", None))}
            for r in t.itertuples()]


def probability_json(v: SimpleNamespace, who: str) -> dict:
    """metrics.json's account of one score's probabilities: the isotonic link, the Brier decomposition
    on the test date and the reliability table (deciles of predicted churn)."""
    return {"link": v.links[who].to_dict(), "brier_decomposition": {k: json_number(x) for k, x in v.decomposition[who].items()},
            "reliability": json_records(decile_table(v.y_te, v.p[who][1], 0.95))}
