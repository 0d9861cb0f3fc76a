"""The calibration report: does the grading predict churn out of time, and what do the data suggest?
What ``notebooks/calibration.ipynb`` shows, read from the ``metrics.json`` a calibration wrote.

Public: calibration_dates, CalibrationReport, calibration_report.
Reads: metrics.json of a calibration. Writes: nothing.

``calibration_dates`` picks, for a reported quarter, the out-of-time design that the data allow:
the test date is the latest quarter end whose horizon is fully observed; training dates are the
quarter ends whose horizon ends before the test date (no leakage), at least a year into the data —
or, when the data are too short for that, half a year (the calibration warns that 12-month
indicators see a partial year there)."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from segment.errors import SegmentError
from segment.paths import QuarterFiles, project_path, reports_dir
from segment.reports import charts
from segment.reports.html import Section, html_table, p


def calibration_dates(as_of, data_start, horizon_days: int, n_train: int = 3) -> tuple[list[str], str] | None:
    """(train dates, test date) as ISO strings, or None when the history is too short."""
    as_of, start = pd.Timestamp(as_of).normalize(), pd.Timestamp(data_start).normalize()
    h = pd.Timedelta(days=int(horizon_days))
    q = pd.Period(as_of, freq="Q")
    while q.end_time.normalize() + h > as_of:
        q -= 1
    test = q.end_time.normalize()
    last = pd.Period(test - h, freq="Q")
    if last.end_time.normalize() > test - h:
        last -= 1
    # training dates a year into the data (12-month indicators see a whole year); when the data are too
    # short for that (Online Retail II: two years), half a year, which the calibration then warns about
    for history in (365, 182):
        train, t = [], last
        while len(train) < n_train and t.end_time.normalize() >= start + pd.Timedelta(days=history):
            train.append(t.end_time.normalize())
            t -= 1
        if train:
            return [str(d.date()) for d in sorted(train)], str(test.date())
    return None


class CalibrationReport:
    def __init__(self, metrics: dict | None, quarter: str, reason: str = "", calibrated_path: str = ""):
        self.m = metrics
        self.quarter = quarter
        self.reason = reason
        self.calibrated_path = calibrated_path

    @classmethod
    def load(cls, quarter: str, folder: str) -> "CalibrationReport":
        folder = Path(folder)
        skipped = folder / "skipped.json"
        if skipped.is_file():
            return cls(None, quarter, json.loads(skipped.read_text(encoding="utf-8"))["reason"])
        metrics = json.loads((folder / QuarterFiles.METRICS).read_text(encoding="utf-8"))
        return cls(metrics, quarter, calibrated_path=str(folder / f"{metrics['scheme']['id']}.calibrated.yaml"))

    #: fewer distinct scores than this on the test date: deciles and lift would only repeat the tiers
    MIN_DISTINCT_SCORES = 10

    def title(self) -> Section:
        head = f"<h1>Calibration against churn — {html.escape(self.quarter)}</h1>"
        if self.m is None:
            return Section([head, p(f"No calibration this period: {self.reason}")])
        m = self.m
        return Section([head, p(f"Scheme {m['scheme']['id']}: trained on {m['n_train']:,} customer-dates "
                                f"({', '.join(m['train_as_of'])}), tested out of time on {m['n_test']:,} customers "
                                f"at {m['test_as_of']}; {m['churn_definition']['text']}; horizon "
                                f"{m['horizon_days']} days. Churn in the test period: {m['churn_rate_test']:.1%}.")])

    def recommendation(self) -> Section | None:
        if self.m is None:  # said once, under the title; the page leaves the section out
            return None
        m = self.m
        e, c = m["expert"]["test"], m["calibrated"]["test"]
        gain = c["auc"] - e["auc"]
        w, ew, ci = m["calibrated"]["weights"], m["expert"]["weights"], m["calibrated"]["weights_ci"]
        no_evidence = [i for i in w if ci.get(i) and ci[i][1] is not None and ci[i][1] < 0.02 and ew.get(i, 0) > 0]
        up = sorted((i for i in w if ci.get(i) and ci[i][0] is not None and ci[i][0] > ew.get(i, 0)), key=lambda i: -w[i])
        lines = []
        if gain >= 0.01:
            lines.append(f"The weights fitted to past churn rank customers by churn risk better than the current "
                         f"expert weights on a later quarter they never saw (AUC {e['auc']:.3f} → {c['auc']:.3f}, "
                         f"KS {e['ks']:.3f} → {c['ks']:.3f}). Consider adopting them after review.")
        elif gain > -0.01:
            lines.append(f"The fitted weights predict churn about as well as the expert weights (AUC {e['auc']:.3f} vs "
                         f"{c['auc']:.3f}): the data do not argue for changing the weights.")
        else:
            lines.append(f"The fitted weights predict churn worse out of time than the expert weights (AUC "
                         f"{e['auc']:.3f} → {c['auc']:.3f}): keep the expert weights.")
        if no_evidence:
            lines.append("No evidence that these indicators predict churn (their weight's 95% interval stays near "
                         f"zero): {', '.join(no_evidence)}. Their expert weight could go to indicators that do.")
        gone = [d for d, v in m["calibrated"].get("dimension_weights", {}).items()
                if v == 0 and m["expert"].get("dimension_weights", {}).get(d, 0) > 0]
        for d in gone:
            inside = [i for i, dim in (m["scheme"].get("dimensions") or {}).items() if dim == d]
            lines.append(f"The {d} dimension gets no weight at all in the fit (expert: "
                         f"{m['expert']['dimension_weights'][d]:.0%})" + (f": none of {', '.join(inside)} told churners "
                                                                          "from stayers in the training panel" if inside else "")
                         + ". Drop it from the churn view or re-band it; it may still matter for value.")
        if up:
            lines.append(f"The data give more weight than the experts to: {', '.join(up)} (the whole interval lies "
                         "above the expert weight).")
        down = [i for i in w if ci.get(i) and ci[i][1] is not None and ci[i][1] < ew.get(i, 0) and i not in no_evidence]
        if down:
            lines.append(f"The data give less weight than the experts to: {', '.join(down)} (the whole interval lies "
                         "below the expert weight).")
        if not m["tiers"]["monotone"]:
            viol = "; ".join(f"{v['better']} {v['churn_better']:.1%} vs {v['worse']} {v['churn_worse']:.1%}"
                             for v in m["tiers"].get("violations", []))
            within = m["tiers"].get("monotone_within_ci")
            lines.append("Churn does not rise steadily from the best calibrated tier to the worst"
                         + (f" ({viol})" if viol else "")
                         + ("; the difference lies within the intervals (small tiers)." if within else
                            ": the cut-offs deserve a look."))
        else:
            lines.append("Churn rises steadily from the best calibrated tier to the worst.")
        prop = m.get("proposal")
        if prop:
            d = prop["test"]["auc"] - c["auc"]
            verdict = ("worth a look: it ranks churn risk better" if d >= 0.01 else
                       "no better than the calibrated weights: keep them" if d < 0 else "about as good as the calibrated weights")
            lines.append(f"The proposal with {self._proposal_words()} (AUC {prop['test']['auc']:.3f}, Brier "
                         f"{prop['test']['brier']:.4f}) is {verdict}; see Bands fitted to churn.")
        lines.append(f"The analysts' scheme is unchanged; the proposals are {Path(self.calibrated_path).name} (weights "
                     "and cut-offs)" + (f" and {m['scheme']['id']}.proposal.yaml" if prop else "")
                     + ", same format, with their provenance.")
        return Section(["<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>"])

    def weights(self) -> Section | None:
        if self.m is None:  # said once, under the title; the page leaves the section out
            return None
        m = self.m
        w, ci, ew = m["calibrated"]["weights"], m["calibrated"]["weights_ci"], m["expert"]["weights"]
        df = pd.DataFrame({"indicator": list(w), "expert weight": [ew.get(i) for i in w],
                           "calibrated weight": [w[i] for i in w],
                           "95% interval": [f"{ci[i][0]:.3f} – {ci[i][1]:.3f}" if ci.get(i) and ci[i][0] is not None
                                            else "" for i in w]})
        dims = pd.DataFrame({"dimension": list(m["calibrated"]["dimension_weights"]),
                             "expert weight": [m["expert"]["dimension_weights"].get(d) for d in m["calibrated"]["dimension_weights"]],
                             "calibrated weight": list(m["calibrated"]["dimension_weights"].values())})
        chart = charts.grouped_bars(list(w), {"expert": [ew.get(i, 0) for i in w], "calibrated": [w[i] for i in w]},
                                    alt="Expert and calibrated weight per indicator: "
                                        + ", ".join(f"{i} {ew.get(i, 0):.2f} → {w[i]:.2f}" for i in w), percent=False)
        return Section([html_table(df, {"expert weight": ".3f", "calibrated weight": ".3f"}),
                        html_table(dims, {"expert weight": ".3f", "calibrated weight": ".3f"}), chart], [df, dims])

    #: the schemes compared, in the order the report lists them
    WHO = {"expert": "expert (the scheme as written)", "calibrated": "calibrated weights",
           "proposal": "proposal (fitted bands + weights)"}

    def _who(self) -> list[str]:
        return [w for w in self.WHO if w in self.m]

    def _proposal_words(self) -> str:
        """What the proposal changes, in words: fitted bands, and the indicators it adds."""
        prop = self.m.get("proposal") or {}
        added = [a["indicator"].replace("_", " ") for a in prop.get("added", [])]
        return ("fitted bands" if self.m.get("bands") else "the scheme's bands") + (
            f" and {' and '.join(added)} added" if added else "")

    def _label(self, who: str) -> str:
        return f"proposal ({self._proposal_words()})" if who == "proposal" else self.WHO[who]

    def performance(self) -> Section | None:
        if self.m is None:  # said once, under the title; the page leaves the section out
            return None
        m = self.m
        rows = [{"scheme": self._label(who), "panel": part,
                 **{k: m[who][part].get(k) for k in ("auc", "gini", "ks", "brier", "log_loss")},
                 "brier, one logistic curve": m[who][part].get("brier_logistic")}
                for who in self._who() for part in ("train", "test")]
        b = m.get("bands") or {}
        if b.get("scheme_test") and (m.get("proposal") or {}).get("added"):
            rows.append({"scheme": "fitted bands + weights alone (without the added indicators)", "panel": "test",
                         **{k: b["scheme_test"].get(k) for k in ("auc", "gini", "ks", "brier", "log_loss")},
                         "brier, one logistic curve": b["scheme_test"].get("brier_logistic")})
        df = pd.DataFrame(rows)
        if df["brier, one logistic curve"].isna().all():
            df = df.drop(columns=["brier, one logistic curve"])
        return Section([p("Out of time = the test date, after every training horizon has ended. AUC 0.5 is a coin "
                          "toss, 1 a perfect ranking; KS the largest gap between churners' and stayers' score "
                          "distributions; Brier and log loss measure the predicted probabilities (lower is better). "
                          "Each score's probability is fitted on the training rows by isotonic regression (monotone, "
                          "as flexible as the data); the last column shows the Brier a single logistic curve gives."),
                        html_table(df, {k: ".3f" for k in ("auc", "gini", "ks", "log_loss")}
                                   | {"brier": ".4f", "brier, one logistic curve": ".4f"})], [df])

    def bands(self) -> Section | None:
        """Expert bands against bands fitted to churn, indicator by indicator, and what the proposal gains."""
        if self.m is None:
            return None
        b, prop = self.m.get("bands"), self.m.get("proposal")
        if not b and not prop:
            return Section([p("No bands were fitted: the scheme has no indicator with numeric bands or quantile "
                              "bins, or `bands: fit: false` in params/calibration.yaml.")])
        b = b or {"indicators": [], "max_bands": 0, "min_share": 0}
        fitted = [r for r in b["indicators"] if "fitted" in r]
        kept = [r for r in b["indicators"] if "kept" in r]
        df = pd.DataFrame({"indicator": [r["label"] for r in fitted], "expert bands → points": [r["expert"] for r in fitted],
                           "fitted bands → points": [r["fitted"] for r in fitted],
                           "IV": [r["iv"] for r in fitted], "AUC expert bands": [r["test_auc_expert"] for r in fitted],
                           "AUC fitted bands": [r["test_auc_fitted"] for r in fitted],
                           "gain": [r["gain"] for r in fitted]})
        parts = [p(f"Each banded indicator re-banded against churn on the training panel: monotone in the direction "
                   f"the expert's points run, at most {b['max_bands']} bands of at least {b['min_share']:.0%} of the "
                   "rows, thresholds rounded to the fewest digits that keep every training row in its band; points "
                   "follow each band's churn log-odds on the expert's point scale. AUC: the indicator's points on "
                   "their own, out of time (test date)."),
                 html_table(df, {"IV": ".3f", "AUC expert bands": ".3f", "AUC fitted bands": ".3f", "gain": "+.3f"})]
        if kept:
            parts.append(p("Kept as written: " + "; ".join(f"{r['label']} ({r['kept']})" for r in kept) + "."))
        frames = [df]
        if prop:
            c, q = self.m["calibrated"]["test"], prop["test"]
            verdict = ("rises from the best tier to the worst" if prop["monotone"] else
                       "does not rise at every tier (" + "; ".join(f"{v['better']} {v['churn_better']:.1%} vs "
                                                                  f"{v['worse']} {v['churn_worse']:.1%}"
                                                                  for v in prop.get("violations", [])) + ")")
            added = prop.get("added") or []
            if added:
                parts.append(p("The proposal also reads the indicators the scheme misses most (see What the scheme "
                               "misses), in a dimension of their own, banded the same way: "
                               + "; ".join(f"{a['indicator'].replace('_', ' ')}: {a['bands']}" for a in added) + "."))
            if b.get("scheme_test") and added:
                parts.append(p(f"The fitted bands alone (with weights fitted on them) reach AUC {b['scheme_test']['auc']:.3f}; "
                               f"the added indicators take it to {q['auc']:.3f}."))
            parts.append(p(f"The proposal — {self._proposal_words()}, weights fitted on them, cut-offs by the same rule "
                           f"and isotonic probabilities — on the test date: AUC {c['auc']:.3f} (calibrated weights "
                           f"alone) → {q['auc']:.3f}, Brier {c['brier']:.4f} → {q['brier']:.4f}; churn {verdict}. It "
                           f"is {self.m['scheme']['id']}.proposal.yaml beside metrics.json: a proposal, the analysts' "
                           "scheme is unchanged. Its weights:"))
            wt = pd.DataFrame({"indicator": list(prop["weights"]),
                               "weight in the proposal": list(prop["weights"].values()),
                               "calibrated weight (bands as written)": [self.m["calibrated"]["weights"].get(i)
                                                                        for i in prop["weights"]]})
            parts.append(html_table(wt, {"weight in the proposal": ".3f", "calibrated weight (bands as written)": ".3f"}))
            frames.append(wt)
            parts.append(p("Churn on the test date by the proposal's tiers:"))
            t = pd.DataFrame(prop["tiers"])
            keep = [k for k in ("tier", "label", "n", "churned", "churn_rate", "predicted", "ci_low", "ci_high") if k in t]
            parts.append(html_table(t[keep], {"churn_rate": ".1%", "predicted": ".1%", "ci_low": ".1%", "ci_high": ".1%"}))
            frames.append(t)
        return Section(parts, frames)

    def probabilities(self) -> Section | None:
        """Reliability diagram, Brier decomposition, and predicted against observed churn per tier."""
        if self.m is None:
            return None
        m = self.m
        who = [w for w in self._who() if m[w].get("probability")]
        if not who:
            return None
        series = {self._label(w): (pd.DataFrame(m[w]["probability"]["reliability"])["predicted"],
                                pd.DataFrame(m[w]["probability"]["reliability"])["observed"]) for w in who}
        chart = charts.calibration_curve(None, None, series=series,
                                         alt="Reliability diagram: predicted vs observed churn by tenth of predicted "
                                             "risk on the test date, for " + ", ".join(self._label(w) for w in who))
        dec = pd.DataFrame([{"scheme": self._label(w), **{k: m[w]["probability"]["brier_decomposition"].get(k)
                                                      for k in ("brier", "reliability", "resolution", "uncertainty")}}
                            for w in who])
        best = who[-1]
        rel = pd.DataFrame(m[best]["probability"]["reliability"])
        keep = [k for k in ("decile", "n", "predicted", "observed", "ci_low", "ci_high") if k in rel]
        drift = []
        mean_p = float((rel["predicted"] * rel["n"]).sum() / max(rel["n"].sum(), 1))
        obs = float(rel["churned"].sum() / max(rel["n"].sum(), 1)) if "churned" in rel else m["churn_rate_test"]
        if abs(mean_p - obs) > max(0.02, 0.15 * obs):
            drift.append("<p><b>Careful: the churn level moved.</b> " + html.escape(f"Churn was {m['churn_rate_train']:.1%} on the "
                           f"training dates and {m['churn_rate_test']:.1%} on the test date; the probabilities carry "
                           f"the training level (predicted {mean_p:.1%} on average, observed {obs:.1%}). They rank "
                           "customers as well as the AUC says, but their level is off: read them as relative risk, "
                           "and recalibrate on later dates before quoting them as rates.") + "</p>")
        return Section(drift + [p("Each score's churn probability is fitted on the training panel by isotonic regression: it "
                          "never rises for a better score and follows the data, so a coarse score is not bent onto one "
                          "curve. On the test date, customers are split into tenths of predicted risk; a well-calibrated "
                          "probability lies on the diagonal."), chart,
                        p("Brier decomposition (lower Brier is better): reliability is the gap between predicted and "
                          "observed churn (0 is perfect), resolution how far the groups' churn spreads around the "
                          "average (higher is better), uncertainty the churn rate's own variance. Brier ≈ reliability − "
                          "resolution + uncertainty (tenths of predicted risk)."),
                        html_table(dec, {k: ".4f" for k in ("brier", "reliability", "resolution", "uncertainty")}),
                        p(f"Tenths of predicted risk, {self._label(best)}:"),
                        html_table(rel[keep], {"predicted": ".1%", "observed": ".1%", "ci_low": ".1%", "ci_high": ".1%"})],
                       [dec, rel])

    def timing(self) -> Section | None:
        """Kaplan–Meier survival by tier, median time to churn, and the Cox model on the points.

        Long because the survival table, the chart, the Cox table and the sentences that read them are
        written from the same numbers here."""
        if self.m is None:
            return None
        t = self.m.get("timing")
        if not t:
            return None
        if "skipped" in t:
            return Section([p(f"Churn timing could not be estimated: {t['skipped']}")])
        h, follow = t["horizon_days"], t["follow_up_days"]
        rows = [r for r in t["by_tier"] if r.get("n")]
        curves = {(r.get("label") or r["tier"]): ([c["time"] for c in t["curves"].get(r["tier"], [])],
                                                  [c["survival"] for c in t["curves"].get(r["tier"], [])]) for r in rows}

        def median(r) -> str:
            if r.get("median_days") is None:
                return f"not reached (fewer than half churned in {follow:.0f} days)"
            if r["median_days"] == 0:
                return f"0 (more than half bought nothing in the {h} days after)"
            return f"{r['median_days']:.0f}"

        table = pd.DataFrame({"tier": [r.get("label") or r["tier"] for r in rows], "customers": [r["n"] for r in rows],
                              "churned by the end": [r["events"] for r in rows],
                              "median days to churn": [median(r) for r in rows]})
        for d in (90, 180, 365):
            col = f"s_{d}"
            if any(col in r for r in rows) and d <= follow:
                table[f"still buying after {d} days"] = [r.get(col) for r in rows]
        chart = charts.survival_curves(curves, horizon=h, follow_up=follow,
                                       alt=f"Share of customers still buying by days after {t['as_of']}, by tier; "
                                           "median time to churn: " + ", ".join(f"{a} {b}" for a, b in
                                                                                zip(table["tier"], table["median days to churn"])))
        fmt = {c: ".1%" for c in table.columns if c.startswith("still buying")} | {"customers": ",", "churned by the end": ","}
        parts = [p(f"The {t['n']:,} customers at risk on {t['as_of']} (the first training date), followed for "
                   f"{follow:.0f} days: until one horizon ({h} days) before the end of the data, the last day a "
                   f"{h}-day gap can be seen complete. A customer churns on the day of the last purchase before "
                   f"{h} days without one — day 0 for those who bought nothing in the {h} days after "
                   f"{t['as_of']} — or on the day the CRM marks them lost. Kaplan–Meier by tier (statsmodels "
                   "SurvfuncRight); customers still buying at the end are censored."), chart, html_table(table, fmt),
                 p(f"These shares differ from churn by tier above: there, churn is \"no purchase in the {h} days after "
                   f"a date\"; here a customer who bought within those days and then stopped for {h} days has churned "
                   "on the day of that last purchase, so the share still buying falls further, and keeps falling.")]
        frames = [table]
        cox = t.get("cox") or {}
        if cox.get("coef"):
            w = self.m["calibrated"]["weights"]
            span = float(cox.get("point_unit") or 10.0)
            cx = pd.DataFrame({"indicator": list(cox["coef"]), "coefficient": list(cox["coef"].values()),
                               f"hazard ratio per {span:g} point{'s' if span != 1 else ''}":
                                   [float(np.exp(cox["coef"][i] * span)) for i in cox["coef"]],
                               "p": [_p_value(cox.get("p", {}).get(i)) for i in cox["coef"]],
                               "weight implied by Cox": [cox.get("implied_weights", {}).get(i) for i in cox["coef"]],
                               "calibrated weight (horizon)": [w.get(i) for i in cox["coef"]]})
            conc = cox.get("concordance")
            if cox.get("converged") is False:
                parts.append(p("The Cox fit did not converge (too few churners for this many indicators, or an "
                               "indicator that separates them): read its coefficients with caution."))
            parts += [p("Cox proportional hazards of time to churn on the scheme's points (statsmodels PHReg, Breslow "
                        "ties): a horizon-free check of the weights. A hazard ratio below 1 means more points, later "
                        "churn; the implied weight is −β / Σ −β over the indicators that lower the hazard"
                        + (f"; concordance {conc:.3f}" if conc is not None else "") + ". Where it differs from the "
                        "calibrated weight, the indicator predicts churn soon (calibrated) more or less than churn at "
                        "any time (Cox)."),
                      html_table(cx, {"coefficient": ".4f", "weight implied by Cox": ".3f",
                                      "calibrated weight (horizon)": ".3f"} | {c: ".3f" for c in cx.columns if c.startswith("hazard")})]
            frames.append(cx)
        return Section(parts, frames)

    #: rows of the indicator ranking shown (the whole ranking is in metrics.json)
    TOP_INDICATORS = 15

    def missing(self) -> Section | None:
        """Every indicator the data provides ranked against churn; the ones the scheme does not read, in words."""
        if self.m is None:
            return None
        ind = self.m.get("indicators")
        if not ind or not ind.get("ranking"):
            return None
        r = pd.DataFrame(ind["ranking"])
        same = r["same_as"].fillna("") if "same_as" in r else pd.Series("", index=r.index)
        unused = r[~r["used"].astype(bool) & same.eq("") & (r["test_auc"] > 0.55)].head(3)
        lines = list(unused["says"]) if "says" in r else []
        g = ind.get("gain")
        added = [a["indicator"] for a in (self.m.get("proposal") or {}).get("added", [])]
        if g:
            words = " and ".join(x.replace("_", " ") for x in g["indicators"])
            lines.append(f"Adding {words} to the calibrated score would take its out-of-time AUC from "
                         f"{g['auc_scheme']:.3f} to {g['auc_with']:.3f} ({g['gain']:+.3f})"
                         + ("; the proposal reads them (see Bands fitted to churn)." if added else
                            ": too little to be worth a new indicator; the proposal does not add them."))
        elif not len(unused):
            lines.append("Nothing the scheme leaves out predicts churn on its own here: every indicator that does "
                         "is one the scheme reads, or repeats one.")
        shown = r.head(self.TOP_INDICATORS)
        table = pd.DataFrame({"indicator": shown["indicator"].str.replace("_", " "),
                              "read by the scheme": shown["used"].map({True: "yes", False: "no"}),
                              "same information as": same.loc[shown.index].str.replace("_", " "),
                              "direction": shown.get("direction"), "out-of-time AUC": shown["test_auc"],
                              "IV": shown["iv"], "training AUC": shown.get("train_auc")})
        return Section(["<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>",
                        p(f"The {min(len(r), self.TOP_INDICATORS)} indicators with the highest out-of-time AUC of "
                          f"{len(r)} (each coded by its own churn-fitted bands; IV = information value on the training "
                          "panel; metrics.json has them all):"),
                        html_table(table, {"out-of-time AUC": ".3f", "IV": ".3f", "training AUC": ".3f"})], [r])

    def calibration_plot(self) -> Section | None:
        if self.m is None:  # said once, under the title; the page leaves the section out
            return None
        t = pd.DataFrame(self.m["calibrated"]["calibration_table"])
        distinct = self.m["calibrated"].get("distinct_scores_test")
        if distinct is not None and distinct < self.MIN_DISTINCT_SCORES:
            return Section([p(f"The score takes only {distinct} distinct values on the test date: deciles of predicted "
                              "risk and lift would repeat the tiers (see Churn by tier).")])
        chart = charts.calibration_curve(t["predicted"], t["observed"],
                                         alt="Predicted vs observed churn by decile of predicted risk on the test date")
        lift = pd.DataFrame(self.m["calibrated"]["lift"])
        return Section([chart, html_table(t, {"predicted": ".1%", "observed": ".1%", "ci_low": ".1%", "ci_high": ".1%"}),
                        p("Lift: churn in each tenth of customers, riskiest first, against the average."),
                        html_table(lift, {"churn_rate": ".1%", "lift": ".2f", "captured": ".1%", "cumulative_lift": ".2f"})],
                       [t, lift])

    def tiers(self) -> Section | None:
        if self.m is None:  # said once, under the title; the page leaves the section out
            return None
        m = self.m
        c = pd.DataFrame(m["tiers"]["calibrated"])
        e = pd.DataFrame(m["tiers"]["expert"])
        cut = pd.DataFrame({"tier": list(m["calibrated"]["cutoffs"]),
                            "expert cut-off": [m["expert"]["cutoffs"].get(t) for t in m["calibrated"]["cutoffs"]],
                            "calibrated cut-off": list(m["calibrated"]["cutoffs"].values())})
        chart = charts.rates_with_intervals(list(c["tier"]), c["churn_rate"], c["ci_low"], c["ci_high"],
                                            alt="Test-date churn by calibrated tier with 95% intervals: "
                                                + ", ".join(f"{r.tier} {r.churn_rate:.1%}" for r in c.itertuples()
                                                            if r.n))
        keep = ["tier", "label", "n", "churned", "churn_rate", "ci_low", "ci_high"]
        fmt = {"churn_rate": ".1%", "ci_low": ".1%", "ci_high": ".1%"}
        parts = [p("Calibrated tiers on the test date (95% Wilson intervals):"),
                 html_table(c[[k for k in keep if k in c]], fmt), chart,
                 p("Expert tiers on the same customers:"), html_table(e[[k for k in keep if k in e]], fmt),
                 p("Cut-offs:"), html_table(cut)]
        frames = [c, e, cut]
        a = m["tiers"].get("adopted")
        if a:  # what adopting the proposal would change, customer by customer
            moves = pd.DataFrame(a["counts"], index=pd.Index(a["tiers"], name="expert \\ calibrated"),
                                 columns=a["tiers"])
            share = a["changed"] / max(a["graded"], 1)
            parts += [p(f"If the calibrated weights and cut-offs were adopted, {a['changed']:,} of the {a['graded']:,} customers graded at "
                        f"the test date ({share:.1%}) would change tier: {a['up']:,} up, {a['down']:,} down. "
                        "Rows: tier now (expert); columns: tier under the calibrated weights."),
                      html_table(moves.reset_index(), {t: "," for t in a["tiers"]})]
            frames.append(moves)
        return Section(parts, frames)

    def caveats(self) -> Section | None:
        if self.m is None:  # said once, under the title; the page leaves the section out
            return None
        pop = pd.DataFrame(self.m["population"])
        warn = self.m.get("warnings") or []
        return Section([p("Who was labelled at each date (customers not at risk are left out, never counted as "
                          "retained; censored customers, whose horizon runs past the data, are left out too):"),
                        html_table(pop, {"churn_rate": ".1%"})]
                       + ([f"<ul>{''.join(f'<li>{html.escape(w)}</li>' for w in warn)}</ul>"] if warn else []), [pop])


def _p_value(x) -> str:
    """A p-value as readers take it: "< 0.001" below a thousandth."""
    if x is None or not np.isfinite(x):
        return ""
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def calibration_report(quarter: str, folder: str = "") -> CalibrationReport:
    """What the calibration notebook shows. ``folder``: a calibration's output (metrics.json and the
    proposed scheme, or skipped.json); empty: the quarter's own (``reports/<quarter>/calibration``, what
    `make report` writes), else ``reports/calibration`` (what `make calibrate` writes)."""
    candidates = [project_path(folder)] if folder else [QuarterFiles(reports_dir() / quarter).calibration,
                                                        reports_dir() / "calibration"]
    for c in candidates:
        if (c / QuarterFiles.METRICS).is_file() or (c / "skipped.json").is_file():
            return CalibrationReport.load(quarter, str(c))
    raise SegmentError(f"no calibration in {' or '.join(map(str, candidates))} (neither metrics.json nor "
                       f"skipped.json); run `make report PERIOD={quarter}` or `make calibrate` first")
