"""Calibration against churn: labels, panel, statsmodels fit, weights, prior, bootstrap, cut-offs and
out-of-time validation (segment.calibration.churn, segment.calibration.run).

Tolerances: the numpy Newton fit and statsmodels agree to 1e-6 relative on every coefficient (both
iterate to convergence; seen: ~1e-12); the sign-constrained refit agrees with scipy's L-BFGS-B to
1e-4 absolute on the standardised slopes; metrics agree with scipy/statsmodels to 1e-12.
"""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import ks_2samp, mannwhitneyu
from statsmodels.stats.proportion import proportion_confint

from segment.calibration.params import CalibrationParams, FitParams, load_calibration_params
from segment.calibration.weights import WeightCalibrator
from segment.calibration.metrics import auc, brier, decile_table, ks, lift_table, log_loss, monotone, monotone_violations, tier_table, wilson
from segment.calibration.run import check_dates, data_fingerprint, run_calibration
from segment.calibration.cutoffs import choose_cutoffs
from segment.calibration.fit import logit_fit
from segment.calibration.churn import ChurnDefinition, build_panel, churn_labels
from segment.demo.world import END_DATE
from segment.demo.write import write_demo
from segment.errors import ConfigError, SegmentError
from segment.grading.engine import PTS
from segment.data.tables import Tables
from segment.grading.scheme import Scheme, load_scheme
from segment.data.validate import load_data

from ..conftest import ONLINE_RETAIL, ROOT, write

DEMO_CUSTOMERS = 3000
TRAIN = ["2024-09-30", "2025-03-31", "2025-06-30", "2025-09-30"]
TEST = "2026-03-31"
HORIZON = 180
S1 = ROOT / "params" / "schemes" / "s1_four_tier.yaml"
RFM = ROOT / "params" / "schemes" / "rfm_quantiles.yaml"
FAST = CalibrationParams(fit=FitParams(bootstrap=100))

# A diagnostic scheme whose indicators map onto the demo's documented churn mechanism (docs/demo.md):
# complaints, satisfaction, referrals, recency, spend trend and tenure have true effects;
# industry_growth and budget_growth have exactly none. Expert weights are (nearly) equal, so any
# difference in the calibrated weights comes from the data.
MECHANISM = textwrap.dedent("""\
    id: mechanism
    name: diagnostic — the demo's churn drivers and two that do nothing
    indicators:
      complaints_6m:
        bands: [{below: 1, points: 100}, {from: 1, below: 2, points: 50}, {from: 2, points: 0}]
      satisfaction_latest:
        bands: [{below: 5, points: 0}, {from: 5, below: 7, points: 40}, {from: 7, below: 9, points: 70}, {from: 9, points: 100}]
        missing_points: 70
      referrals_12m:
        bands: [{below: 1, points: 0}, {from: 1, below: 2, points: 60}, {from: 2, points: 100}]
      recency_days:
        bands: [{below: 30, points: 100}, {from: 30, below: 60, points: 80}, {from: 60, below: 120, points: 50},
                {from: 120, below: 180, points: 25}, {from: 180, points: 0}]
      amount_growth:
        bands: [{below: -0.5, points: 0}, {from: -0.5, below: -0.2, points: 40}, {from: -0.2, below: 0.2, points: 70},
                {from: 0.2, points: 100}]
        missing_points: 70
      tenure_years:
        bands: [{below: 1, points: 0}, {from: 1, below: 3, points: 50}, {from: 3, points: 100}]
      industry_growth:
        bands: [{below: 0.05, points: 40}, {from: 0.05, below: 0.10, points: 60}, {from: 0.10, below: 0.15, points: 80},
                {from: 0.15, points: 100}]
      budget_growth:
        bands: [{below: 0.10, points: 60}, {from: 0.10, below: 0.20, points: 80}, {from: 0.20, points: 100}]
        missing_points: 40
    dimensions:
      relationship: {weight: 0.34, indicators: {complaints_6m: 0.34, satisfaction_latest: 0.33, referrals_12m: 0.33}}
      behaviour: {weight: 0.33, indicators: {recency_days: 0.34, amount_growth: 0.33, tenure_years: 0.33}}
      potential: {weight: 0.33, indicators: {industry_growth: 0.5, budget_growth: 0.5}}
    tiers:
      - {id: a, label: best, min_score: 75}
      - {id: b, min_score: 55}
      - {id: c}
    """)
TRUE_DRIVERS = ["complaints_6m", "satisfaction_latest", "referrals_12m", "recency_days", "amount_growth"]
NO_EFFECT = ["industry_growth", "budget_growth"]


# ------------------------------------------------------------------------------------------------
# fixtures: one demo company for the module, calibrated once per scheme
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("demo"), customers=DEMO_CUSTOMERS)


@pytest.fixture(scope="module")
def loaded(demo):
    return load_data(demo)


@pytest.fixture(scope="module")
def mechanism(tmp_path_factory):
    return write(tmp_path_factory.mktemp("schemes") / "mechanism.yaml", MECHANISM)


@pytest.fixture(scope="module")
def mech(demo, mechanism, tmp_path_factory):
    return run_calibration(demo, mechanism, TRAIN, TEST, HORIZON, tmp_path_factory.mktemp("mech"), params=FAST)


@pytest.fixture(scope="module")
def s1(demo, tmp_path_factory):
    return run_calibration(demo, S1, TRAIN, TEST, HORIZON, tmp_path_factory.mktemp("s1"),
                           params_path=ROOT / "params" / "calibration.yaml")


# ------------------------------------------------------------------------------------------------
# labels on a hand-made company
# ------------------------------------------------------------------------------------------------

def tiny_tables() -> Tables:
    """As-of 2024-06-30, horizon 30 days: the horizon is 2024-07-01 … 2024-07-30."""
    tx = [  # customer, date, amount
        ("A", "2024-05-10", 100.0), ("A", "2024-07-15", 50.0),                      # bought in the horizon
        ("B", "2023-05-10", 80.0), ("B", "2024-06-20", 200.0),                      # nothing after
        ("C", "2023-05-10", 80.0), ("C", "2024-06-10", 1000.0), ("C", "2024-07-20", 400.0),  # −60%
        ("D", "2023-05-10", 80.0), ("D", "2024-06-05", 100.0), ("D", "2024-07-05", 100.0),   # CRM lost 07-10
        ("E", "2023-05-10", 80.0), ("E", "2024-04-01", 100.0),                      # CRM lost before as-of
        ("F", "2023-05-10", 80.0), ("F", "2024-06-30 18:00", 70.0), ("F", "2024-07-31", 90.0),  # on as-of; day after
        ("G", "2024-05-10", 80.0), ("G", "2024-07-30 23:59", 60.0),                 # last day of the horizon
        ("H", "2023-05-10", 80.0), ("H", "2024-06-15", 100.0), ("H", "2024-07-10", -50.0),     # only a return
        ("Y", "2024-06-20", 300.0), ("Y", "2024-07-02", 10.0),                      # too young (10 days)
        ("Z", "2023-01-05", 500.0), ("Z", "2024-07-02", 10.0),                      # inactive: 542 days
    ]
    t = pd.DataFrame(tx, columns=["customer_id", "date", "amount"])
    t["customer_id"] = t["customer_id"].astype("string")
    t["date"] = pd.to_datetime(t["date"], format="ISO8601").astype("datetime64[ns]")
    ids = list("ABCDEFGHYZ") + ["P"]  # P: a prospect who never bought
    cu = pd.DataFrame({
        "customer_id": pd.array(ids, dtype="string"),
        "created_date": pd.to_datetime(["2023-05-01"] * 8 + ["2024-06-20", "2023-01-01", "2024-01-01"]).astype("datetime64[ns]"),
        "status": pd.array(["active"] * 3 + ["lost", "lost"] + ["active"] * 6, dtype="string"),
        "status_date": pd.to_datetime(["2023-05-01"] * 3 + ["2024-07-10", "2024-05-01"] + ["2023-05-01"] * 6)
        .astype("datetime64[ns]"),
    })
    return Tables(transactions=t, customers=cu)


TINY_SCHEME = Scheme.model_validate({
    "id": "tiny",
    "indicators": {"annual_amount": {"bands": [{"below": 500, "points": 0}, {"from": 500, "points": 100}]},
                   "recency_days": {"bands": [{"below": 30, "points": 100}, {"from": 30, "points": 0}]}},
    "dimensions": {"all": {"weight": 1, "indicators": {"annual_amount": 0.5, "recency_days": 0.5}}},
    "tiers": [{"id": "top", "min_score": 50}, {"id": "rest"}],
})


def test_labels_by_hand():
    tables = tiny_tables()
    d = ChurnDefinition(revenue_drop=None)
    lab = churn_labels(tables, "2024-06-30", 30, d, "2024-12-31", customers=list("ABCDEFGH")).set_index("customer_id")
    #                 no_purchase, revenue_drop (30%), lost_status, before, after, churn (no_purchase | lost)
    expected = {"A": (False, False, False, 0.0, 50.0, 0),
                "B": (True, True, False, 200.0, 0.0, 1),
                "C": (False, True, False, 1000.0, 400.0, 0),
                "D": (False, False, True, 100.0, 100.0, 1),
                "E": (True, False, False, 0.0, 0.0, 1),     # (CRM-lost before: never graded, see the panel)
                "F": (True, True, False, 70.0, 0.0, 1),     # the as-of day is history; 07-31 is after the horizon
                "G": (False, False, False, 0.0, 60.0, 0),   # 07-30 23:59 is inside
                "H": (True, True, False, 100.0, -50.0, 1)}  # a return is not a purchase
    for cid, (np_, rd, ls, before, after, churn) in expected.items():
        row = lab.loc[cid]
        assert (bool(row.no_purchase), bool(row.revenue_drop), bool(row.lost_status)) == (np_, rd, ls), cid
        assert (row.amount_before, row.amount_after, row.churn) == (before, after, churn), cid
    assert not lab["censored"].any()
    # the SEEDS churn-risk criterion turns C (−60%) into a churner; lost_status off turns D back
    lab2 = churn_labels(tables, "2024-06-30", 30, ChurnDefinition(revenue_drop=0.3, lost_status=False), "2024-12-31",
                        customers=list("ABCDEFGH")).set_index("customer_id")
    assert lab2["churn"].to_dict() == {"A": 0, "B": 1, "C": 1, "D": 0, "E": 1, "F": 1, "G": 0, "H": 1}
    with pytest.raises(ValueError, match="every criterion is off"):
        ChurnDefinition(no_purchase=False, lost_status=False)


def test_panel_population_by_hand():
    panel = build_panel(tiny_tables(), TINY_SCHEME, ["2024-06-30"], 30, ChurnDefinition(), "2024-12-31")
    rows = panel.rows.set_index("customer_id")
    assert "E" not in rows.index  # CRM-lost on 2024-05-01: not graded, counted
    # A and G registered 2023-05-01 but first bought 2024-05-10: 51 days of cooperation, too young
    assert rows["excluded"].to_dict() == {"A": "too_young", "B": "", "C": "", "D": "", "F": "", "G": "too_young",
                                          "H": "", "P": "never_bought", "Y": "too_young", "Z": "inactive"}
    assert rows.loc[["P", "Y", "Z"], "churn"].isna().all()  # not at risk: no label
    c = panel.table().iloc[0]
    assert (c.graded, c.lost_before, c.excluded_never_bought, c.excluded_too_young, c.excluded_inactive) == (10, 1, 1, 3, 1)
    assert (c.at_risk, c.labelled, c.churned) == (5, 5, 4)  # B, D, F, H
    lab = panel.labelled()
    assert set(lab["customer_id"]) == set("BCDFH")
    # points and score come from the grading at the as-of date
    assert rows.loc["C", PTS + "annual_amount"] == 100 and rows.loc["A", PTS + "recency_days"] == 0


def test_censored_rows_are_left_out_not_counted_retained():
    tables = tiny_tables()
    d = ChurnDefinition()
    # the horizon 2024-07-01 … 07-30 runs past a data end of 07-15: nobody's outcome is known
    lab = churn_labels(tables, "2024-06-30", 30, d, "2024-07-15", customers=list("ABG"))
    assert lab["censored"].all() and lab["churn"].isna().all() and lab["no_purchase"].isna().all()
    # the horizon ending exactly on the data end is observed
    assert not churn_labels(tables, "2024-06-30", 30, d, "2024-07-30", customers=["A"])["censored"].any()
    # a panel with one observed and one censored date: the censored rows are kept, flagged, unlabelled
    panel = build_panel(tables, TINY_SCHEME, ["2024-05-31", "2024-06-30"], 30, d, "2024-07-15")
    counts = panel.table().set_index("as_of")
    assert counts.loc["2024-06-30", "censored"] == counts.loc["2024-06-30", "at_risk"] > 0
    assert counts.loc["2024-06-30", "labelled"] == 0 and np.isnan(counts.loc["2024-06-30", "churn_rate"])
    assert (panel.labelled()["as_of"] == pd.Timestamp("2024-05-31")).all()
    cens = panel.rows[panel.rows["censored"]]
    assert cens["churn"].isna().all() and not cens["labelled"].any()
    # and a calibration whose test horizon runs past the data end is refused
    with pytest.raises(SegmentError, match="censored"):
        check_dates(["2024-01-31"], "2024-06-30", 30, "2024-07-15")


# ------------------------------------------------------------------------------------------------
# point in time: nothing after a training row's horizon can change it
# ------------------------------------------------------------------------------------------------

def test_future_data_never_changes_a_training_row(loaded):
    tables = loaded.tables
    base = build_panel(tables, S1_SCHEME(), TRAIN, HORIZON, ChurnDefinition(), END_DATE).rows
    cutoff = pd.Timestamp(TRAIN[-1]) + pd.Timedelta(days=HORIZON + 1)  # the last training label ends the day before
    rng = np.random.default_rng(0)
    tx = tables.transactions.copy()
    late = tx["date"] >= cutoff
    # move every later transaction by up to ±60 days (staying after the cut-off), double half the amounts
    shift = pd.to_timedelta(rng.integers(-60, 61, late.sum()), unit="D")
    tx.loc[late, "date"] = (tx.loc[late, "date"] + shift).clip(lower=cutoff)
    tx.loc[late, "amount"] *= np.where(rng.random(late.sum()) < 0.5, 2.0, 1.0)
    # add big later orders for existing customers and for a customer nobody has seen
    extra = tx.sample(500, random_state=1).assign(date=cutoff + pd.Timedelta(days=3), amount=1e7)
    stranger = tx.iloc[:1].assign(customer_id=pd.array(["C_FUTURE"], dtype="string"), date=cutoff, amount=1e6)
    tx2 = pd.concat([tx, extra, stranger], ignore_index=True)
    it = tables.interactions
    it2 = pd.concat([it, it.sample(300, random_state=2).assign(date=cutoff + pd.Timedelta(days=1), kind="complaint")],
                    ignore_index=True)
    moved = Tables(transactions=tx2, customers=tables.customers, interactions=it2, opportunities=tables.opportunities,
                   measures=tables.measures, declared=tables.declared)
    again = build_panel(moved, S1_SCHEME(), TRAIN, HORIZON, ChurnDefinition(), END_DATE).rows
    pd.testing.assert_frame_equal(base, again)

    # transactions inside the first date's horizon change its labels, never its features
    first = pd.Timestamp(TRAIN[0])
    inside = (tables.transactions["date"] > first + pd.Timedelta(days=1)) & \
             (tables.transactions["date"] < first + pd.Timedelta(days=HORIZON))
    cut = Tables(transactions=tables.transactions[~inside], customers=tables.customers,
                 interactions=tables.interactions, opportunities=tables.opportunities, measures=tables.measures,
                 declared=tables.declared)
    p1 = base[base["as_of"] == first].reset_index(drop=True)
    p2 = build_panel(cut, S1_SCHEME(), [TRAIN[0]], HORIZON, ChurnDefinition(), END_DATE).rows
    features = [c for c in p1.columns if c.startswith(PTS) or c in ("customer_id", "score", "tier", "excluded")]
    pd.testing.assert_frame_equal(p1[features], p2[features])
    assert p2["churn"].mean() > p1["churn"].mean()


def S1_SCHEME() -> Scheme:  # noqa: N802 - reads like a constant
    return load_scheme(S1)


# ------------------------------------------------------------------------------------------------
# the fit: statsmodels, the numpy refit, the prior, the bootstrap
# ------------------------------------------------------------------------------------------------

def _design(result):
    lab = result.train.labelled()
    inds = list(result.expert.weights())
    return lab, inds, lab[[PTS + i for i in inds]].set_axis(inds, axis=1)


def test_coefficients_equal_a_direct_statsmodels_fit(mech):
    lab, inds, X = _design(mech)
    y = lab["churn"].to_numpy()
    direct = sm.Logit(y, sm.add_constant(X)).fit(disp=0, cov_type="cluster",
                                                 cov_kwds={"groups": pd.factorize(lab["customer_id"])[0]})
    model = mech.model
    np.testing.assert_allclose(model.coef_.to_numpy(), direct.params.to_numpy(), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(model.bse_.to_numpy(), direct.bse.to_numpy(), rtol=1e-6)
    assert list(model.coef_.index) == ["const"] + inds
    # the numpy Newton fit (used for the weights and every bootstrap replicate) is the same estimator
    a, b = logit_fit(X.to_numpy(), y)
    np.testing.assert_allclose(np.r_[a, b], direct.params.to_numpy(), rtol=1e-6, atol=1e-10)
    # clustered standard errors differ from the naive ones: customers repeat across dates
    naive = sm.Logit(y, sm.add_constant(X)).fit(disp=0).bse
    assert not np.allclose(naive.to_numpy(), direct.bse.to_numpy(), rtol=1e-3)
    # the coefficient table reports statsmodels' numbers
    table = model.coefficients().set_index("term")
    np.testing.assert_allclose(table["coef"].to_numpy(), direct.params.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(table["p"].to_numpy(), direct.pvalues.to_numpy(), rtol=1e-12)


def test_sign_constrained_refit_is_the_constrained_maximum(mech):
    lab, inds, X = _design(mech)
    Xa, y = X.to_numpy(), lab["churn"].to_numpy()
    m, sd = Xa.mean(axis=0), Xa.std(axis=0)
    Z = (Xa - m) / sd

    def f(th):
        e = th[0] + Z @ th[1:]
        return -(y @ e - np.logaddexp(0, e).sum())

    def g(th):
        r = y - expit(th[0] + Z @ th[1:])
        return -np.r_[r.sum(), Z.T @ r]

    ref = minimize(f, np.zeros(len(inds) + 1), jac=g, method="L-BFGS-B",
                   bounds=[(None, None)] + [(None, 0.0)] * len(inds), options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 10000})
    beta = mech.model.beta_.reindex(inds).to_numpy()
    np.testing.assert_allclose(beta * sd, ref.x[1:], atol=1e-4)
    assert (beta <= 0).all()
    # where the constraint does not bind, the refit is the unconstrained fit
    free = beta < 0
    a, b = logit_fit(Xa, y, constrained=True)
    np.testing.assert_allclose(b, beta, rtol=1e-8, atol=1e-12)
    # weights: −β / Σ −β
    np.testing.assert_allclose(mech.model.weights_.reindex(inds).to_numpy(), -beta / (-beta).sum(), rtol=1e-12)
    assert free.sum() >= 6


def test_prior_strength_moves_weights_from_the_data_to_the_expert(mech):
    lab, inds, X = _design(mech)
    y, g = lab["churn"].to_numpy(), lab["customer_id"].to_numpy()
    scheme = mech.expert
    expert = np.array([scheme.weights()[i] for i in inds])
    fits = {k: WeightCalibrator(scheme, prior_strength=k, n_bootstrap=0).fit(X, y, g) for k in (0, 1e3, 1e5, 1e12)}
    data_only = fits[0].weights_.reindex(inds).to_numpy()
    a, b = logit_fit(X.to_numpy(), y, constrained=True)
    np.testing.assert_allclose(data_only, -b / (-b).sum(), atol=1e-9)  # 0 = the data alone
    np.testing.assert_allclose(fits[1e12].weights_.reindex(inds).to_numpy(), expert, atol=1e-5)  # huge = the expert
    dist = [np.abs(fits[k].weights_.reindex(inds).to_numpy() - expert).sum() for k in (0, 1e3, 1e5, 1e12)]
    assert dist[0] > dist[1] > dist[2] > dist[3]
    for f in fits.values():  # every level sums to 1, nothing negative
        assert f.weights_.min() >= 0 and f.weights_.sum() == pytest.approx(1)
        assert f.dimension_weights_.sum() == pytest.approx(1)
        for d, w in f.within_weights_.items():
            assert sum(w.values()) == pytest.approx(1)


def test_bootstrap_intervals_cover_the_weights(mech):
    ci = mech.model.weights_ci_
    w = mech.model.weights_
    assert len(mech.model.weights_boot_) == 100
    assert ((ci["low"] <= w + 1e-12) & (w <= ci["high"] + 1e-12)).all()
    # same seed, same intervals (resampling is over customers and deterministic)
    lab, inds, X = _design(mech)
    again = WeightCalibrator(mech.expert, n_bootstrap=100, random_state=FAST.fit.seed).fit(
        X, lab["churn"].to_numpy(), lab["customer_id"].to_numpy())
    pd.testing.assert_frame_equal(again.weights_ci_, ci)


# ------------------------------------------------------------------------------------------------
# the demo's documented mechanism, and S1
# ------------------------------------------------------------------------------------------------

def test_calibration_recovers_the_demo_mechanism(mech):
    w = mech.model.weights_
    ci = mech.model.weights_ci_
    zero = w[NO_EFFECT].max()
    # drivers with a true effect weigh clearly more than the two with none
    for d in TRUE_DRIVERS:
        assert w[d] > 2 * zero + 0.02, (d, w.to_dict())
    # the strongest drivers' whole interval lies above the no-effect indicators' intervals
    for d in ("recency_days", "satisfaction_latest"):
        assert ci.loc[d, "low"] > ci.loc[NO_EFFECT, "high"].max(), ci
    # the potential dimension (industry and budget growth) falls from a third to next to nothing
    dims = mech.metrics["calibrated"]["dimension_weights"]
    assert dims["potential"] < 0.05 and mech.metrics["calibrated"]["dimension_weights_ci"]["potential"][0] == 0
    # recency (months since the last order, the largest term of the hazard) weighs most
    assert w.idxmax() == "recency_days"
    m = mech.metrics
    assert m["calibrated"]["test"]["auc"] > m["expert"]["test"]["auc"] + 0.03
    assert m["calibrated"]["test"]["brier"] < m["expert"]["test"]["brier"]
    assert m["tiers"]["monotone"]


def test_calibrated_s1_beats_expert_s1_out_of_time(s1):
    m = s1.metrics
    assert m["calibrated"]["test"]["auc"] > m["expert"]["test"]["auc"]
    assert m["calibrated"]["test"]["ks"] > m["expert"]["test"]["ks"]
    # S1 gives potential (industry and budget growth: no effect in the demo) 30%; the data does not
    assert m["calibrated"]["dimension_weights"]["potential"] < 0.1 < m["expert"]["dimension_weights"]["potential"]
    assert m["n_test"] > 1000 and 0 < m["churn_rate_test"] < 0.5


def test_out_of_time_metrics_are_what_they_say(mech):
    m = mech.metrics
    te = mech.test.labelled()
    y = te["churn"].to_numpy()
    assert m["n_test"] == len(te) and m["churn_rate_test"] == pytest.approx(y.mean(), abs=1e-6)
    assert m["expert"]["test"]["auc"] == pytest.approx(auc(y, -te["score"].to_numpy()), abs=1e-6)
    assert m["calibrated"]["test"]["gini"] == pytest.approx(2 * m["calibrated"]["test"]["auc"] - 1, abs=1e-6)
    deciles = pd.DataFrame(m["calibrated"]["calibration_table"])
    assert deciles["n"].sum() == len(te) and deciles["churned"].sum() == y.sum()
    assert deciles["observed"].iloc[-1] > deciles["observed"].iloc[0]
    lift = pd.DataFrame(m["calibrated"]["lift"])
    assert lift["lift"].iloc[0] > 2 and lift["captured"].iloc[-1] == pytest.approx(1)
    tiers = pd.DataFrame(m["tiers"]["calibrated"])
    assert tiers["n"].sum() == len(te) and list(tiers["tier"]) == ["a", "b", "c"]


# ------------------------------------------------------------------------------------------------
# metrics against scipy / statsmodels
# ------------------------------------------------------------------------------------------------

def test_auc_ks_brier_log_loss_against_references():
    rng = np.random.default_rng(5)
    y = (rng.random(2000) < 0.2).astype(float)
    risk = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounded: many ties
    u = mannwhitneyu(risk[y == 1], risk[y == 0]).statistic
    assert auc(y, risk) == pytest.approx(u / (y.sum() * (len(y) - y.sum())), abs=1e-12)
    assert auc(y, -risk) == pytest.approx(1 - auc(y, risk), abs=1e-12)
    assert auc(y, np.zeros(len(y))) == 0.5 and np.isnan(auc(np.zeros(5), np.arange(5)))
    assert ks(y, risk) == pytest.approx(ks_2samp(risk[y == 1], risk[y == 0]).statistic, abs=1e-12)
    p = expit(risk - 1.5)
    assert brier(y, p) == pytest.approx(np.mean((p - y) ** 2), abs=1e-15)
    assert log_loss(y, p) == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), abs=1e-12)
    dec = decile_table(y, p)
    assert len(dec) == 10 and dec["n"].sum() == 2000 and (dec["predicted"].diff().dropna() >= 0).all()
    lift = lift_table(y, p)
    assert lift["cumulative_lift"].iloc[-1] == pytest.approx(1)


def test_wilson_intervals_are_statsmodels():
    k, n = np.array([0, 3, 50, 7]), np.array([10, 40, 60, 7])
    lo, hi = wilson(k, n, 0.9)
    ref_lo, ref_hi = proportion_confint(k, n, alpha=0.1, method="wilson")
    np.testing.assert_allclose(lo, ref_lo, rtol=1e-12)
    np.testing.assert_allclose(hi, ref_hi, rtol=1e-12)
    t = tier_table(["a", "a", "b", "b", "b"], [0, 1, 1, 1, 0], ["a", "b", "c"])
    assert t["n"].tolist() == [2, 3, 0] and np.isnan(t.loc[2, "ci_low"])
    assert t.loc[1, "ci_low"] == pytest.approx(proportion_confint(2, 3, method="wilson")[0])
    assert monotone(t)
    bad = tier_table(["a"] * 10 + ["b"] * 10, [1] * 5 + [0] * 5 + [1] * 2 + [0] * 8, ["a", "b"])
    assert not monotone(bad)
    v = monotone_violations(bad)
    assert v[0]["better"] == "a" and v[0]["intervals_overlap"]


# ------------------------------------------------------------------------------------------------
# cut-offs
# ------------------------------------------------------------------------------------------------

def test_cutoffs_hit_target_shares_exactly_without_ties():
    scores = np.random.default_rng(1).permutation(np.arange(1000) / 10)  # 0.0 … 99.9, all distinct
    cuts = choose_cutoffs(scores, ["core", "important", "ordinary"], shares=[0.1, 0.2, 0.3], max_score=100)
    counts = [int(((scores >= cuts["core"])).sum()),
              int(((scores >= cuts["important"]) & (scores < cuts["core"])).sum()),
              int(((scores >= cuts["ordinary"]) & (scores < cuts["important"])).sum())]
    assert counts == [100, 200, 300]
    assert cuts == {"core": 90.0, "important": 70.0, "ordinary": 40.0}  # round numbers between scores
    # shares given by tier, and a capacity cap: core holds at most 60
    cap = choose_cutoffs(scores, ["core", "important", "ordinary"], shares={"core": 0.1, "important": 0.2, "ordinary": 0.3},
                         max_customers={"core": 60}, max_score=100)
    assert int((scores >= cap["core"]).sum()) == 60 and cap["important"] == 70.0
    # an empty top tier is placed above the best score, below the highest possible one
    empty = choose_cutoffs(scores, ["core", "important"], shares=[0.0, 0.5], max_score=100)
    assert 99.9 < empty["core"] <= 100 and not (scores >= empty["core"]).any()


def test_cutoffs_with_ties_and_target_churn_rates(mech):
    latest = mech.train.rows[mech.train.rows["as_of"] == pd.Timestamp(TRAIN[-1])]
    scores = latest["score"].to_numpy()
    cuts = choose_cutoffs(scores, ["a", "b"], shares=[0.2, 0.5], max_score=100)
    top = (scores >= cuts["a"]).mean()
    both = (scores >= cuts["b"]).mean()
    # ties among scores make exact shares impossible: the closest achievable cumulative share is chosen
    achievable = np.array([(scores >= v).mean() for v in np.unique(scores)])
    assert abs(top - 0.2) == pytest.approx(np.min(np.abs(achievable - 0.2)))
    assert abs(both - 0.7) == pytest.approx(np.min(np.abs(achievable - 0.7)))
    # target churn rates on the labelled training rows
    lab = mech.train.labelled()
    ls, ly = lab["score"].to_numpy(), lab["churn"].to_numpy()
    rc = choose_cutoffs(scores, ["a", "b"], method="churn_rates", churn_rates=[0.06, 0.12], labelled_scores=ls,
                        labelled_y=ly, max_score=100)
    assert ly[ls >= rc["a"]].mean() <= 0.06
    assert ly[(ls >= rc["b"]) & (ls < rc["a"])].mean() <= 0.12
    # and each tier is the widest that keeps its rate: any lower cut-off breaks it
    assert all(ly[ls >= v].mean() > 0.06 for v in np.unique(scores[scores < rc["a"]]) if (ls >= v).sum() >= 30)
    with pytest.raises(SegmentError, match="cannot keep its training churn rate"):
        choose_cutoffs(scores, ["a", "b"], method="churn_rates", churn_rates=[0.06, 0.0001], labelled_scores=ls,
                       labelled_y=ly, max_score=100)


def test_expert_shares_keep_tier_sizes(s1):
    # the default method: as many customers above each calibrated cut-off as above the expert one
    latest = s1.train.rows[s1.train.rows["as_of"] == pd.Timestamp(TRAIN[-1])]
    pts = latest[[PTS + i for i in s1.expert.weights()]].to_numpy()
    w = np.array([s1.calibrated.weights()[i] for i in s1.expert.weights()])
    cal = pts @ w
    for t_exp, t_cal in zip(s1.expert.tiers[:-1], s1.calibrated.tiers[:-1]):
        share_exp = (latest["score"] >= t_exp.min_score).mean()
        share_cal = (cal >= t_cal.min_score - 1e-9).mean()
        assert abs(share_cal - share_exp) < 0.03, (t_exp.id, share_exp, share_cal)


# ------------------------------------------------------------------------------------------------
# files: metrics.json, the calibrated scheme, refusals
# ------------------------------------------------------------------------------------------------

MANDATORY = ["horizon_days", "train_as_of", "test_as_of", "n_train", "n_test", "churn_rate_test", "expert.test.auc",
             "expert.test.ks", "expert.weights", "calibrated.test.auc", "calibrated.test.ks", "calibrated.test.brier",
             "calibrated.test.log_loss", "calibrated.weights", "calibrated.weights_ci", "tiers.calibrated",
             "tiers.monotone"]


def test_metrics_json_and_calibrated_scheme(s1, demo):
    m = json.loads(s1.paths["metrics"].read_text(encoding="utf-8"))
    for key in MANDATORY:
        node = m
        for part in key.split("."):
            assert part in node, key
            node = node[part]
    assert m["train_as_of"] == TRAIN and m["test_as_of"] == TEST and m["horizon_days"] == HORIZON
    assert set(m["calibrated"]["weights"]) == set(s1.expert.weights())
    assert sum(m["calibrated"]["weights"].values()) == pytest.approx(1, abs=1e-9)
    assert all(lo <= hi for lo, hi in m["calibrated"]["weights_ci"].values())
    assert set(m["tiers"]["calibrated"][0]) >= {"tier", "n", "churn_rate", "ci_low", "ci_high"}
    assert isinstance(m["tiers"]["monotone"], bool)

    path = s1.paths["scheme"]
    assert path.name == "s1_four_tier.calibrated.yaml"
    cal = load_scheme(path)  # the same format as the input scheme: it loads and grades
    expert = load_scheme(S1)
    assert cal.id == "s1_four_tier.calibrated"
    assert cal.indicators == expert.indicators and cal.overrides == expert.overrides
    assert [t.gate for t in cal.tiers] == [t.gate for t in expert.tiers]
    assert all(abs(sum(d.indicators.values()) - 1) < 1e-9 for d in cal.dimensions.values())
    assert cal.weights() == pytest.approx(m["calibrated"]["weights"])
    assert [t.min_score for t in cal.tiers[:-1]] == list(m["calibrated"]["cutoffs"].values())
    prov = cal.provenance
    assert prov["data"]["fingerprint"] == "sha256:" + data_fingerprint(demo)["sha256"]
    assert prov["train_as_of"] == TRAIN and prov["test_as_of"] == TEST and prov["horizon_days"] == HORIZON
    assert prov["churn_definition"]["no_purchase"] is True and "text" in prov["churn_definition"]
    assert prov["metrics"]["calibrated_test_auc"] == m["calibrated"]["test"]["auc"]
    # the tiers reported are what the written scheme gives at the test date
    again = build_panel(load_data(demo).tables, cal, [TEST], HORIZON, ChurnDefinition(), END_DATE).labelled()
    counts = again["tier"].astype("string").value_counts()
    assert {r["tier"]: r["n"] for r in m["tiers"]["calibrated"]} == {t.id: int(counts.get(t.id, 0)) for t in cal.tiers}
    # adopting the proposal: the test date's graded customers, expert tier (rows) → calibrated tier (columns)
    a = m["tiers"]["adopted"]
    mat = np.array(a["counts"])
    assert a["tiers"] == [t.id for t in cal.tiers] and mat.sum() == a["graded"] > 0
    assert mat.sum(axis=1).tolist() == [r["graded"] for r in m["tiers"]["expert"]]
    assert mat.sum(axis=0).tolist() == [r["graded"] for r in m["tiers"]["calibrated"]]
    assert a["changed"] == a["up"] + a["down"] == mat.sum() - np.trace(mat)
    assert a["up"] == int(np.tril(mat, -1).sum())  # a better (earlier) calibrated tier
    # a notebook cell is one call
    assert "<table" in s1._repr_html_() and {"indicator", "weight", "ci_low", "ci_high"} <= set(s1.table().columns)


def test_fingerprint_follows_the_bytes(tmp_path):
    out = write_demo(tmp_path / "d", customers=50)
    a = data_fingerprint(out)
    assert a == data_fingerprint(out)
    with open(tmp_path / "d" / "customers.csv", "a", encoding="utf-8") as f:
        f.write("\n")
    assert data_fingerprint(out)["sha256"] != a["sha256"]


def test_arguments_and_params_are_checked(demo, tmp_path):
    def run(**kw):
        args = {"data": demo, "scheme": S1, "train_as_of": TRAIN, "test_as_of": TEST, "horizon_days": HORIZON,
                "out_dir": tmp_path / "out", "params": FAST}
        args.update(kw)
        return run_calibration(**args)

    with pytest.raises(SegmentError, match="must come after every --train-as-of"):
        run(test_as_of="2025-06-30")
    with pytest.raises(SegmentError, match="leakage"):
        run(train_as_of=["2025-12-31"])
    with pytest.raises(SegmentError, match="censored"):
        run(test_as_of="2026-06-30")
    with pytest.raises(SegmentError, match="twice"):
        run(train_as_of=["2025-03-31", "2025-03-31"])
    with pytest.raises(SegmentError, match="horizon-days"):
        run(horizon_days=0)
    with pytest.raises(SegmentError, match="not a date"):
        run(train_as_of=["2025-13-45"])
    with pytest.raises(SegmentError, match="before the first transaction"):
        run(train_as_of=["2020-01-31"])
    with pytest.raises(SegmentError, match="no weighted dimensions"):
        run(scheme=ROOT / "params" / "schemes" / "s6_time_to_close.yaml")
    # the analysts' scheme is never overwritten
    scheme_dir = tmp_path / "schemes"
    own = write(scheme_dir / "s1_four_tier.calibrated.yaml", S1.read_text(encoding="utf-8"))  # id s1_four_tier
    before = own.read_text(encoding="utf-8")
    with pytest.raises(SegmentError, match="never replaced"):
        run(scheme=own, out_dir=scheme_dir)
    assert own.read_text(encoding="utf-8") == before
    assert not (tmp_path / "out").exists()  # nothing written by any refused run
    # params files: every key checked, errors name the file and the key
    bad = write(tmp_path / "calibration.yaml", "churn:\n  no_purchse: true\n")
    with pytest.raises(ConfigError, match=r"calibration.yaml, key `churn.no_purchse`: unknown key"):
        load_calibration_params(bad)
    bad2 = write(tmp_path / "c2.yaml", "cutoffs:\n  method: shares\n")
    with pytest.raises(ConfigError, match="needs `shares:`"):
        load_calibration_params(bad2)
    bad3 = write(tmp_path / "c3.yaml", "cutoffs:\n  method: shares\n  shares: [0.5, 0.1]\n")
    with pytest.raises(SegmentError, match="2 value"):
        run(params=load_calibration_params(bad3))
    shipped = load_calibration_params(ROOT / "params" / "calibration.yaml")
    assert shipped.horizon_days == 180 and shipped.churn.revenue_drop is None and shipped.cutoffs.method == "expert_shares"


def test_check_dates_states_the_leakage_rule():
    train, test, warn = check_dates(["2025-09-30", "2025-03-31"], "2026-03-29", 180, "2026-09-30", "2024-06-01")
    assert train == [pd.Timestamp("2025-03-31"), pd.Timestamp("2025-09-30")]  # sorted
    assert warn and "partial year" in warn[0]
    # 2025-09-30 + 180 days = 2026-03-29: the training labels end on the test date — allowed
    with pytest.raises(SegmentError, match="on or before 2025-09-29"):
        check_dates(["2025-09-30"], "2026-03-28", 180, "2026-09-30")


# ------------------------------------------------------------------------------------------------
# transactions only
# ------------------------------------------------------------------------------------------------

def test_transactions_only_with_quantile_bands(loaded, tmp_path):
    tx_only = Tables(transactions=loaded.tables.transactions)
    from segment.calibration.run import calibrate

    r = calibrate(tx_only, load_scheme(RFM), TRAIN, TEST, HORIZON, FAST, END_DATE)
    m = r.metrics
    assert m["calibrated"]["test"]["auc"] > 0.7 and m["calibrated"]["test"]["auc"] >= m["expert"]["test"]["auc"] - 0.01
    assert m["calibrated"]["weights"]["recency"] > 0.2  # recency drives the demo's churn
    assert r.calibrated.indicators["recency"].quantiles == [0.2, 0.4, 0.6, 0.8]
    assert r.calibrated.score_factor == 3


@pytest.mark.realdata
@pytest.mark.skipif(not ONLINE_RETAIL.is_file(), reason=f"Online Retail II not found at {ONLINE_RETAIL} "
                    "(it ships in ../shared beside the project; CI has it)")
def test_online_retail_out_of_time_on_transactions_alone(tmp_path):
    config = ROOT / "params" / "data" / "online_retail.yaml"
    r = run_calibration(config, RFM, ["2010-12-01", "2011-03-01", "2011-06-01"], "2011-09-01", 90, tmp_path,
                        params=FAST)
    m = r.metrics
    assert r.train.table()["labelled"].min() > 3000 and m["n_test"] > 3000
    assert m["calibrated"]["test"]["auc"] > 0.72 and m["expert"]["test"]["auc"] > 0.72
    assert m["calibrated"]["test"]["brier"] < 0.23
    assert m["tiers"]["monotone"]
    assert set(m["data"]["tables"]) == {"transactions"}
    cal = load_scheme(tmp_path / "rfm_quantiles.calibrated.yaml")
    assert cal.indicators == load_scheme(RFM).indicators and cal.weights() == pytest.approx(m["calibrated"]["weights"])


def test_churn_rate_cutoffs_never_let_in_labelled_rows_between_population_scores():
    """The population (latest date) scores 10 or 0; earlier dates' labelled rows also score 6, and all of
    those churned. A cut-off anywhere in (0, 10] keeps the population split, but only one above 6 keeps
    the top tier's training churn rate at its 1% target."""
    scores = np.r_[np.full(40, 10.0), np.zeros(40)]
    ls = np.r_[np.full(40, 10.0), np.full(40, 6.0), np.zeros(40)]
    ly = np.r_[np.zeros(40), np.ones(40), np.zeros(40)]
    cut = choose_cutoffs(scores, ["a"], method="churn_rates", churn_rates=[0.01], labelled_scores=ls,
                         labelled_y=ly, max_score=10)["a"]
    assert 6 < cut <= 10 and ly[ls >= cut].mean() <= 0.01
