"""Calibration beyond weights (issue 17), end to end on a demo company: bands fitted to churn (the
proposal), isotonic probabilities in the grading, churn timing by tier, and what the scheme misses —
for S1 and rfm_quantiles. Numbers are checked against the pieces recomputed directly (the proposal
graded again, statsmodels called directly), never against themselves."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from segment.calibration.churn import build_panel
from segment.calibration.metrics import auc, brier
from segment.calibration.params import BandParams, CalibrationParams, FitParams
from segment.calibration.probability import fit_isotonic
from segment.calibration.run import run_calibration
from segment.errors import ConfigError
from segment.features.snapshot import snapshot
from segment.grading.engine import grade
from segment.grading.scheme import ChurnProbability, Scheme, load_scheme
from segment.reports.calibration import CalibrationReport

from ..conftest import ROOT, once

TRAIN = ["2025-03-31", "2025-06-30", "2025-09-30"]
TEST = "2026-03-31"
FAST = CalibrationParams(fit=FitParams(bootstrap=0))


@pytest.fixture(scope="module")
def demo1500(tmp_path_factory):
    from segment.demo.write import write_demo

    return once(tmp_path_factory, "demo-1500", lambda folder: write_demo(folder, customers=1500, seed=11))


@pytest.fixture(scope="module", params=["rfm_quantiles", "s1_four_tier"])
def calibrated(request, demo1500, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"cal-{request.param}")
    result = run_calibration(demo1500, request.param, TRAIN, TEST, 180, out, params=FAST)
    return request.param, out, result


def test_the_proposal_is_written_beside_the_weights_and_grades_with_churn_probabilities(calibrated, demo1500):
    scheme_id, out, r = calibrated
    m = json.loads((out / "metrics.json").read_text())
    prop = load_scheme(out / f"{scheme_id}.proposal.yaml")
    assert prop.id == f"{scheme_id}.proposal" and prop.churn_probability is not None
    assert prop.churn_probability.horizon_days == 180 and prop.churn_probability.fitted_on == ", ".join(TRAIN)
    # every banded indicator of the proposal has at most 6 bands, points on the expert's range
    expert = load_scheme(scheme_id)
    fitted = [b for b in m["bands"]["indicators"] if "fitted" in b]
    assert fitted
    for b in fitted:
        spec = prop.indicators[b["indicator"]]
        n_bands = len(spec.bands) if spec.bands is not None else len(spec.quantiles) + 1
        assert 1 <= n_bands <= 6
        pts = [x.points for x in spec.bands] if spec.bands is not None else spec.points
        e = expert.indicators[b["indicator"]]
        epts = [x.points for x in e.bands] if e.bands is not None else e.points
        assert min(epts) <= min(pts) and max(pts) <= max(epts)
        assert (np.all(np.diff(pts) >= 0) if e.ascending() else np.all(np.diff(pts) <= 0))  # the expert's direction
    # the proposal graded again at the test date: its AUC and Brier are what metrics.json says
    loaded = __import__("segment.data.validate", fromlist=["load_data"]).load_data(demo1500)
    panel = build_panel(loaded.tables, prop, [TEST], 180, FAST.churn, m["data_end"]).labelled()
    y = panel["churn"].to_numpy()
    assert auc(y, -panel["score"].to_numpy()) == pytest.approx(m["proposal"]["test"]["auc"], abs=1e-6)
    g = grade(snapshot(loaded.tables, TEST), prop, as_of=TEST).frame
    assert np.allclose(g["churn_probability"], prop.churn_probability.predict(g["score"]), equal_nan=True)
    assert brier(y, prop.churn_probability.predict(panel["score"])) == pytest.approx(m["proposal"]["test"]["brier"],
                                                                                      abs=1e-6)
    # the probability never rises with the score, and the calibrated (weights only) scheme carries one too
    assert np.all(np.diff(prop.churn_probability.probabilities) <= 0)
    assert load_scheme(out / f"{scheme_id}.calibrated.yaml").churn_probability is not None


def test_isotonic_link_is_fitted_on_the_training_rows(calibrated):
    scheme_id, out, r = calibrated
    tr = r.train.labelled()
    link = fit_isotonic(tr["score"].to_numpy(dtype="float64"), tr["churn"].to_numpy())
    got = r.metrics["expert"]["probability"]["link"]
    assert got["scores"] == pytest.approx(link.to_dict()["scores"]) and got["probabilities"] == pytest.approx(
        link.to_dict()["probabilities"])
    d = r.metrics["calibrated"]["probability"]["brier_decomposition"]
    assert d["brier"] == pytest.approx(d["reliability"] - d["resolution"] + d["uncertainty"] + d["within_bin"], abs=1e-5)
    assert d["brier"] == pytest.approx(r.metrics["calibrated"]["test"]["brier"], abs=1e-6)


def test_timing_by_tier_and_cox_against_statsmodels(calibrated):
    from statsmodels.duration.hazard_regression import PHReg

    from segment.calibration.survival import churn_times

    scheme_id, out, r = calibrated
    t = r.metrics["timing"]
    first = r.train.labelled()
    first = first[first["as_of"] == pd.Timestamp(TRAIN[0])]
    assert t["as_of"] == TRAIN[0] and t["n"] == len(first) == sum(row["n"] for row in t["by_tier"])
    # S(0) is the share who bought within the horizon after the first training date (the label's no_purchase)
    for row in t["by_tier"]:
        rows = first[first["tier"].astype(str) == row["tier"]]
        if len(rows) and t["curves"].get(row["tier"]):
            c = pd.DataFrame(t["curves"][row["tier"]])
            s0 = float(c.loc[c["time"] == 0, "survival"].iloc[0]) if (c["time"] == 0).any() else 1.0
            assert s0 == pytest.approx(1 - rows["no_purchase"].astype(float).mean(), abs=1e-9)
    loaded = __import__("segment.data.validate", fromlist=["load_data"]).load_data(r.metrics["data"]["config"])
    times = churn_times(loaded.tables, first["customer_id"], TRAIN[0], 180, r.metrics["data_end"]) \
        .set_index("customer_id").reindex(first["customer_id"].astype("string"))
    inds = [i for i in t["cox"]["coef"]]
    X = first[["pts__" + i for i in inds]].to_numpy(dtype="float64")
    ref = PHReg(times["time"].to_numpy(), X, status=times["event"].to_numpy().astype(int), ties="breslow").fit()
    assert [t["cox"]["coef"][i] for i in inds] == pytest.approx(list(ref.params), rel=1e-6, abs=1e-9)
    w = [v for v in t["cox"]["implied_weights"].values() if v is not None]
    assert sum(w) == pytest.approx(1.0) and min(w) >= 0


def test_the_ranking_flags_what_the_scheme_does_not_read(calibrated):
    scheme_id, out, r = calibrated
    ind = r.metrics["indicators"]
    rank = pd.DataFrame(ind["ranking"])
    assert list(rank["test_auc"]) == sorted(rank["test_auc"], reverse=True)
    used = set(load_scheme(scheme_id).inputs()) | {s.column or i for i, s in load_scheme(scheme_id).indicators.items()}
    assert set(rank.loc[rank["used"], "indicator"]) <= used
    unused = rank[~rank["used"]]
    alone, repeats = unused[unused["same_as"] == ""], unused[unused["same_as"] != ""]
    assert len(alone) and all("does not use it" in s for s in alone["says"])
    assert all("same information as" in s for s in repeats["says"])
    # an indicator counted as repeating another: their training values' rank correlation is ≥ 0.9
    x = r.train.labelled()
    if "months_since_last_order" in set(repeats["indicator"]) and "recency_days" in x:
        assert repeats.set_index("indicator").loc["months_since_last_order", "same_as"] == "recency_days"
    assert not set(ind["best_unused"]) & set(repeats["indicator"])
    # the demo's churn is driven by recency, which S1 does not read: it must be named first among the unused
    if scheme_id == "s1_four_tier":
        top = unused.iloc[0]
        assert top["test_auc"] > 0.75 and top["indicator"] in {"recency_days", "months_since_last_order",
                                                               "orders_90d", "amount_6m", "orders_12m"}
        assert ind["gain"]["gain"] > 0.05 and len(ind["best_unused"]) == 2


def test_the_calibration_report_shows_bands_probabilities_timing_and_missing_indicators(calibrated):
    scheme_id, out, r = calibrated
    rep = CalibrationReport.load("2026Q1", str(out))
    bands = rep.bands()._repr_html_()
    assert "fitted bands" in bands and "proposal.yaml" in bands
    prob = rep.probabilities()._repr_html_()
    assert "<svg" in prob and "Brier decomposition" in prob and "resolution" in prob
    timing = rep.timing()._repr_html_()
    assert "Kaplan–Meier" in timing and "Cox" in timing and "<svg" in timing
    missing = rep.missing()._repr_html_()
    assert "does not use it" in missing
    perf = rep.performance().table()
    names = list(perf["scheme"].unique())
    assert names[:2] == ["expert (the scheme as written)", "calibrated weights"] and names[2].startswith("proposal (fitted bands")
    added = [a["indicator"].replace("_", " ") for a in r.metrics["proposal"]["added"]]
    assert all(a in names[2] for a in added)
    if added:   # the bands alone are shown too, so the reader sees what the added indicators bring
        assert names[3] == "fitted bands + weights alone (without the added indicators)"


def test_bands_can_be_switched_off(demo1500, tmp_path):
    params = CalibrationParams(fit=FitParams(bootstrap=0), bands=BandParams(fit=False))
    (tmp_path / "rfm_quantiles.proposal.yaml").write_text("stale")
    r = run_calibration(demo1500, "rfm_quantiles", TRAIN, TEST, 180, tmp_path, params=params)
    assert "proposal" not in r.metrics and not (tmp_path / "rfm_quantiles.proposal.yaml").exists()
    assert "timing" in r.metrics and "indicators" in r.metrics
    assert "No bands were fitted" in CalibrationReport.load("2026Q1", str(tmp_path)).bands()._repr_html_()


def test_a_churn_probability_block_is_checked_when_the_scheme_is_read(tmp_path):
    base = (ROOT / "params" / "schemes" / "rfm_quantiles.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(base + "churn_probability: {scores: [3, 9, 15], probabilities: [0.5, 0.6, 0.1]}\n")
    with pytest.raises(ConfigError, match="must not rise with the score"):
        load_scheme(bad)
    ok = ChurnProbability(scores=[3, 15], probabilities=[0.5, 0.1])
    assert ok.predict([3, 9, 15, 20, np.nan])[:4] == pytest.approx([0.5, 0.3, 0.1, 0.1])
    assert np.isnan(ok.predict([np.nan])[0])
    s = Scheme.model_validate({**load_scheme("rfm_quantiles").model_dump(by_alias=True, exclude_none=True),
                               "churn_probability": ok.model_dump()})
    assert s.churn_probability.predict([9])[0] == pytest.approx(0.3)


def test_a_moved_churn_level_is_said_above_the_reliability_diagram(calibrated):
    import copy

    scheme_id, out, r = calibrated
    rep = CalibrationReport.load("2026Q1", str(out))
    assert "the churn level moved" not in rep.probabilities()._repr_html_()   # the demo's level holds
    m = copy.deepcopy(rep.m)
    for who in ("expert", "calibrated", "proposal"):   # as if the test date's churn doubled
        for row in m[who]["probability"]["reliability"]:
            row["churned"] = min(row["n"], 2 * row["churned"] + 5)
    m["churn_rate_test"] = 2 * m["churn_rate_test"]
    html = CalibrationReport(m, "2026Q1").probabilities()._repr_html_()
    assert "Careful: the churn level moved." in html and "recalibrate on later dates" in html


def test_a_proposal_that_cannot_be_fitted_leaves_the_weights_calibration_standing(demo1500, tmp_path, monkeypatch):
    from segment.calibration import run as calibration
    from segment.errors import SegmentError

    def collinear(*a, **kw):
        raise SegmentError("the indicators' points are collinear in the training panel (recency ~ months)")

    monkeypatch.setattr(calibration, "add_indicators", collinear)
    monkeypatch.setattr(calibration, "fit_band_proposal", collinear)
    r = run_calibration(demo1500, "rfm_quantiles", TRAIN, TEST, 180, tmp_path, params=FAST)
    assert "proposal" not in r.metrics and "bands" not in r.metrics and r.metrics["calibrated"]["test"]["auc"] > 0.7
    assert any(w.startswith("no proposal with fitted bands: the indicators' points are collinear") for w in r.warnings)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "rfm_quantiles.calibrated.yaml"]
    assert "timing" in r.metrics and "indicators" in r.metrics
