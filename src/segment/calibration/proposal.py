"""Calibration beyond weights: bands fitted to churn, churn timing by tier, and what the scheme misses.

Public: banded_indicators, bands_text, indicator_text, fit_band_proposal, add_indicators, band_gains, churn_timing,
indicator_ranking.
Reads: the tables (through the panels and the snapshots they kept). Writes: nothing.

``segment.calibration.run.calibrate`` calls these after the weights are fitted:

1. **Bands** (:func:`fit_band_proposal`): each indicator with numeric bands or quantile bins is re-banded
   by monotone binning against churn on the training panel (``segment.calibration.bands.fit_bands``), in
   the direction the expert's points run, with at most ``bands.max_bands`` bands and round thresholds.
   The scheme with those bands then goes through the same weight fit, cut-offs and probability link as
   the analysts' scheme (``segment.calibration.refit.fit_scheme``): that is the **proposal**, written
   as ``<scheme>.proposal.yaml`` with its ``churn_probability`` link. :func:`band_gains` gives each
   indicator's out-of-time AUC on its own with the expert's bands and with the fitted ones.
2. **Timing** (:func:`churn_timing`): Kaplan–Meier survival by tier and a Cox model of time to churn on
   the scheme's points, from the first training date to the end of the data
   (``segment.calibration.survival``).
3. **What the scheme misses** (:func:`indicator_ranking`): every indicator the snapshot provides, built
   in and declared, ranked by out-of-time AUC and information value (``segment.calibration.missing``),
   and the out-of-time AUC the calibrated scheme would reach with the best two it does not read."""
from __future__ import annotations

import numpy as np
import pandas as pd

from segment.calibration.bands import FittedBands, fit_bands, points_step, yaml_number
from segment.calibration.churn import Panel
from segment.calibration.metrics import auc
from segment.calibration.missing import best_unused, gain_from_adding, rank_indicators, repeats
from segment.calibration.params import CalibrationParams
from segment.calibration.result import json_number, json_ready, json_records
from segment.calibration.survival import churn_times, cox_on_points, survival_by_tier
from segment.data.tables import Tables
from segment.grading.engine import PTS
from segment.grading.published import HISTORY_INDICATORS
from segment.grading.scheme import Indicator, Scheme


def banded_indicators(scheme: Scheme) -> tuple[list[str], dict[str, str]]:
    """The weighted indicators whose bands can be fitted (numeric bands or quantile bins whose points
    run one way), and why each other weighted indicator is left as written."""
    ok, skipped = [], {}
    for ind in scheme.weights():
        spec = scheme.indicators[ind]
        pts = _band_points(spec)
        if spec.kind not in ("bands", "quantiles"):
            skipped[ind] = f"{spec.kind}: categories or a rubric, not thresholds on a number"
        elif len(set(pts)) < 2:
            skipped[ind] = "every band gives the same points"
        elif not (_runs_one_way(pts)):
            skipped[ind] = "its points rise and fall again with the value: no one direction to keep"
        else:
            ok.append(ind)
    return ok, skipped


def _band_points(spec: Indicator) -> list[float]:
    """The points of an indicator's bands or quantile bins (not its missing points)."""
    return [b.points for b in spec.bands] if spec.bands is not None else list(spec.points or [])


def _runs_one_way(pts: list[float]) -> bool:
    d = np.diff(np.asarray(pts, dtype="float64"))
    return bool(np.all(d >= 0) or np.all(d <= 0))


def bands_text(bands: list[dict], unit_scale: float = 1.0) -> str:
    """Bands as one line: ``< 10000: 40 · 10000–100000: 60 · ≥ 100000: 100``."""
    parts = []
    for b in bands:
        lo, hi = b.get("from"), b.get("below")
        rng = (f"< {_num(hi)}" if lo is None and hi is not None else f"≥ {_num(lo)}" if hi is None and lo is not None
               else "any" if lo is None else f"{_num(lo)}–{_num(hi)}")
        parts.append(f"{rng}: {_num(b['points'])}")
    return " · ".join(parts)


def _num(x) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return f"{v:,.0f}" if v.is_integer() else f"{v:g}"


def indicator_text(spec: Indicator) -> str:
    """An indicator's bands or quantile bins and their points, as one line."""
    if spec.bands is not None:
        return bands_text([{"from": b.lower, "below": b.below, "points": b.points} for b in spec.bands])
    return (f"quantile bins at {', '.join(f'{q:g}' for q in spec.quantiles)} of each date's customers → points "
            f"{', '.join(_num(p) for p in spec.points)}")


#: below this information value an indicator does not predict churn (the usual reading of IV: < 0.02
#: "not predictive"); bands fitted to it would only fit noise, so the expert's bands stay
USELESS_IV = 0.02


def fit_band_proposal(scheme: Scheme, raw: dict, train: Panel, params: CalibrationParams
                      ) -> tuple[dict, dict[str, FittedBands], dict[str, str]]:
    """The scheme (as a YAML dict) with each fittable indicator's bands fitted to churn on the training
    panel; the fitted bands; the indicators left as written, with why."""
    tr = train.labelled()
    y = tr["churn"].to_numpy(dtype="float64")
    inds, skipped = banded_indicators(scheme)
    out = dict(raw)
    out["indicators"] = {k: dict(v) for k, v in raw["indicators"].items()}
    fitted: dict[str, FittedBands] = {}
    labelled = train.rows["labelled"].to_numpy(dtype=bool)
    for ind in inds:
        spec = scheme.indicators[ind]
        values = _values(train.rows, train.rows[ind], spec.quantiles is not None)
        pts = _band_points(spec)
        fb = fit_bands(values[labelled], y, churn_falls=spec.ascending(), points_range=(min(pts), max(pts)),
                       missing_points=spec.missing_points, max_bands=params.bands.max_bands,
                       min_share=params.bands.min_share, indicator=ind)
        if fb.iv < USELESS_IV:
            skipped[ind] = (f"its churn-fitted bands carry no information (IV {fb.iv:.3f} < {USELESS_IV}): "
                            "the expert's bands are kept")
            continue
        bands = _bands_entry(fb, spec.quantiles is not None)
        if bands is None:
            skipped[ind] = "the fitted bands collapse into one"
            continue
        keep = {k: v for k, v in out["indicators"][ind].items() if k not in ("bands", "quantiles", "points", "missing_points")}
        out["indicators"][ind] = {**keep, **bands}
        fitted[ind] = fb
    return out, fitted, skipped


def _values(rows: pd.DataFrame, column: pd.Series, percentile: bool) -> np.ndarray:
    """An indicator's values on the panel's rows; with ``percentile``, each value's percentile among
    its date's graded customers (what quantile bins cut: bins relative to each date stay so)."""
    values = pd.to_numeric(column, errors="coerce").astype("float64")
    if percentile:
        values = values.groupby(rows["as_of"].to_numpy()).rank(pct=True, method="max")
    return values.to_numpy(dtype="float64", na_value=np.nan)


def _bands_entry(fb: FittedBands, quantile: bool) -> dict | None:
    """Fitted bands as a scheme indicator's keys: ``bands``, or ``quantiles`` + ``points`` with cut
    points on a grid of 0.05 (a twentieth of the customers; bands that meet there merge), and
    ``missing_points``. None when a single band is left."""
    if quantile:
        cuts = [round(round(c * 20) / 20, 2) for c in fb.thresholds()]
        keep = [i for i, c in enumerate(cuts) if 0 < c < 1 and (i == 0 or c > cuts[i - 1])]
        if not keep:
            return None
        pts = list(fb.table["points"])
        entry = {"quantiles": [cuts[i] for i in keep], "points": [yaml_number(pts[0])] + [yaml_number(pts[i + 1]) for i in keep]}
    else:
        if len(fb.table) < 2:
            return None
        entry = {"bands": fb.bands_yaml()}
    return {**entry, "missing_points": yaml_number(fb.missing["points"])}


#: the dimension the proposal puts the indicators it adds in
ADDED = "added"


def add_indicators(scheme: Scheme, raw: dict, train: Panel, snapshots: dict, names: list[str],
                   ranking: list[dict], params: CalibrationParams) -> tuple[dict, dict[str, FittedBands]]:
    """``raw`` (a scheme as a YAML dict) with the indicators ``names`` added in a dimension of their own
    (weight 0.2 before the weights are fitted), each with bands fitted to churn in the direction the
    ranking found: quantile bins when the scheme bins by quantiles, fixed bands otherwise, on the
    scheme's point scale."""
    out = dict(raw)
    out["indicators"] = {k: dict(v) for k, v in raw["indicators"].items()}
    out["dimensions"] = {k: dict(v) for k, v in raw["dimensions"].items()}
    banded = [scheme.indicators[i] for i in scheme.weights() if scheme.indicators[i].kind in ("bands", "quantiles")]
    quantile_style = bool(banded) and all(spec.quantiles is not None for spec in banded)
    pts = [p for spec in banded for p in _band_points(spec)] or [0.0, 100.0]
    rows = train.rows
    x_all = _features(snapshots, rows)
    labelled = rows["labelled"].to_numpy(dtype=bool)
    y = rows.loc[labelled, "churn"].to_numpy(dtype="float64")
    direction = {r["indicator"]: r.get("direction", "") for r in ranking}
    fitted: dict[str, FittedBands] = {}
    for name in names:
        if name in out["indicators"] or name not in x_all:
            continue
        fb = fit_bands(_values(rows, x_all[name], quantile_style)[labelled], y,
                       churn_falls=direction.get(name) != "higher is riskier", points_range=(min(pts), max(pts)),
                       max_bands=params.bands.max_bands, min_share=params.bands.min_share, indicator=name)
        bands = _bands_entry(fb, quantile_style)
        if bands is None:
            continue
        out["indicators"][name] = {"label": name.replace("_", " "), **bands}
        fitted[name] = fb
    if fitted:
        for dim in out["dimensions"].values():
            dim["weight"] = round(float(dim["weight"]) * 0.8, 6)
        out["dimensions"][ADDED] = {"label": "added: what the scheme did not read", "weight": 0.2,
                                    "indicators": {n: round(1 / len(fitted), 6) for n in fitted}}
        total = sum(float(d["weight"]) for d in out["dimensions"].values())
        first = next(iter(out["dimensions"]))
        out["dimensions"][first]["weight"] = round(float(out["dimensions"][first]["weight"]) + 1 - total, 6)
        inner = out["dimensions"][ADDED]["indicators"]
        inner[next(iter(inner))] = round(inner[next(iter(inner))] + 1 - sum(inner.values()), 6)
    return out, fitted


def band_gains(scheme: Scheme, banded: Scheme, fitted: dict[str, FittedBands], skipped: dict[str, str], test: Panel,
               test_banded: Panel, train: Panel) -> list[dict]:
    """Per indicator: the expert's and the fitted bands, their training churn per band, and the
    out-of-time AUC of the indicator's points on their own with each."""
    te, teb, tr = test.labelled(), test_banded.labelled(), train.labelled()
    y_te = te["churn"].to_numpy(dtype="float64")
    out = []
    for ind, fb in fitted.items():
        spec = scheme.indicators[ind]
        a_exp = auc(y_te, -te[PTS + ind].to_numpy(dtype="float64"))
        a_fit = auc(y_te, -teb[PTS + ind].to_numpy(dtype="float64"))
        expert_bins = tr.groupby(tr[PTS + ind].to_numpy(dtype="float64"))["churn"].agg(["size", "mean"])
        out.append({
            "indicator": ind, "label": spec.label or ind, "expert": indicator_text(spec),
            "expert_churn_by_points": [{"points": json_number(p), "n": int(r["size"]), "churn_rate": json_number(r["mean"])}
                                       for p, r in expert_bins.iterrows()],
            "fitted": indicator_text(banded.indicators[ind]), "fitted_bands": json_ready(fb.bands_yaml()),
            "table": json_records(fb.table), "missing": json_ready(fb.missing), "iv": json_number(fb.iv),
            "test_auc_expert": json_number(a_exp), "test_auc_fitted": json_number(a_fit),
            "gain": json_number(a_fit - a_exp),
        })
    out += [{"indicator": ind, "label": scheme.indicators[ind].label or ind, "kept": reason} for ind, reason in skipped.items()]
    return out


def churn_timing(tables: Tables, scheme: Scheme, train: Panel, params: CalibrationParams, data_end) -> dict:
    """Kaplan–Meier survival by tier and the Cox model on the scheme's points, for the customers at risk
    at the first training date, followed to the end of the data. JSON-ready."""
    day = train.as_of[0]
    rows = train.labelled()
    rows = rows[rows["as_of"] == day].reset_index(drop=True)
    times = churn_times(tables, rows["customer_id"], day, train.horizon_days, data_end,
                        lost_status=params.churn.lost_status)
    times = times.set_index("customer_id").reindex(rows["customer_id"].astype("string")).reset_index()
    tier_ids = [t.id for t in scheme.tiers]
    labels = {t.id: t.label or t.id for t in scheme.tiers}
    by_tier, curves = survival_by_tier(times, rows["tier"].astype("string"), tier_ids, labels)
    inds = list(scheme.weights())
    cox = cox_on_points(times, rows[[PTS + i for i in inds]].set_axis(inds, axis=1))
    # hazard ratios per a readable step of the scheme's points: 10 on a 40–100 scale, 1 on RFM's 1–5
    pts = [float(x) for i in inds for x in scheme.indicators[i].point_values() if x is not None]
    cox["point_unit"] = 10 * points_step(min(pts), max(pts)) if pts else 10.0
    return json_ready({
        "as_of": str(day.date()), "horizon_days": train.horizon_days, "n": int(len(rows)),
        "events": int(times["event"].sum()),
        "follow_up_days": json_number(float((pd.Timestamp(data_end) - day).days - train.horizon_days)),
        "by_tier": json_records(by_tier),
        "curves": {t: json_records(c) for t, c in curves.items()},
        "cox": cox,
    })


#: snapshot columns that are not indicators of a customer's behaviour
_NOT_INDICATORS = {"customer_id", "as_of", "group"} | set(HISTORY_INDICATORS)


def indicator_ranking(snapshots: dict, train: Panel, test: Panel, scheme: Scheme, s_tr: np.ndarray,
                      s_te: np.ndarray) -> dict:
    """Every numeric indicator of the snapshots ranked by out-of-time AUC and information value against
    churn, the ones ``scheme`` does not read flagged, and the out-of-time AUC the calibrated score
    (``s_tr`` on the training rows, ``s_te`` on the test rows) reaches with the best two added."""
    tr, te = train.labelled(), test.labelled()
    x_tr, x_te = _features(snapshots, tr), _features(snapshots, te)
    candidates = [c for c in x_tr.columns if c not in _NOT_INDICATORS]
    used = set(scheme.inputs()) | {spec.column or i for i, spec in scheme.indicators.items()}
    y_tr, y_te = tr["churn"].to_numpy(dtype="float64"), te["churn"].to_numpy(dtype="float64")
    ranking = rank_indicators(x_tr, x_te, y_tr, y_te, candidates, used)   # named in words from their ids
    used_cols = [c for c in used if c in x_tr]
    ranking["same_as"] = repeats(ranking, x_tr, used_cols)
    for i in ranking.index[ranking["same_as"].ne("") & ~ranking["used"].astype(bool)]:
        ranking.loc[i, "says"] = (ranking.loc[i, "says"].split(";")[0] + f"; it carries the same information as "
                                  f"{ranking.loc[i, 'same_as'].replace('_', ' ')}.")
    add = best_unused(ranking, 2)
    gain = gain_from_adding(s_tr, s_te, x_tr, x_te, y_tr, y_te, add) if add else None
    return json_ready({"ranking": json_records(ranking), "skipped": ranking.attrs.get("skipped", {}),
                       "best_unused": add, "gain": gain})


def _features(snapshots: dict, rows: pd.DataFrame) -> pd.DataFrame:
    """The snapshot row of each panel row (customer × as-of), numeric and boolean columns only."""
    parts = []
    for day, idx in rows.groupby("as_of", sort=False).groups.items():
        snap = snapshots[pd.Timestamp(day)]
        keep = [c for c in snap.columns if pd.api.types.is_numeric_dtype(snap[c]) or pd.api.types.is_bool_dtype(snap[c])]
        ids = rows.loc[idx, "customer_id"].astype("string")
        part = snap.assign(customer_id=snap["customer_id"].astype("string")).set_index("customer_id")[keep].reindex(ids)
        part.index = idx
        parts.append(part)
    return pd.concat(parts).sort_index().reset_index(drop=True) if parts else pd.DataFrame(index=rows.index)
