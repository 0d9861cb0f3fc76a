"""The leadership grading report's sections: what each section of ``notebooks/grading.ipynb`` shows.

Public: GradingReport (its sections, save / load), per_tier.
Reads: the bundle written by ``segment report`` (GradingReport.load). Writes: that bundle (save).

``segment.reports.grading_data.prepare_grading_report`` computes everything once (the quarter's
grading, the previous quarter's, realised churn of an earlier grading, reviewer changes);
``GradingReport.save`` / ``load`` move it between ``segment report`` and the notebook as a folder of
parquet files; each section method returns a ``Section`` (HTML + the table behind it), so a notebook
cell is one call."""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from segment.calibration.metrics import churn_order_verdict
from segment.grading import history
from segment.grading.engine import row_key
from segment.grading import followup
from segment.grading.scheme import Scheme, load_scheme
from segment.paths import QuarterFiles
from segment.plumbing.atomic import write_frame, write_text
from segment.reports import charts
from segment.reports.html import (
    Section,
    arrow,
    html_table,
    money,
    money_unit,
    p,
    readable_number,
)


def per_tier(grading: pd.DataFrame, tier_ids: list[str]) -> pd.DataFrame:
    """Graded rows and 12-month revenue (``annual_amount``; 0 without it) per tier, in ``tier_ids``' order."""
    tiers = grading["tier"].astype(str)
    rev = pd.to_numeric(grading["annual_amount"], errors="coerce").fillna(0.0) if "annual_amount" in grading \
        else pd.Series(0.0, index=grading.index)
    return pd.DataFrame({"tier": tier_ids,
                         "customers": [int(x) for x in pd.Series(tier_ids).map(tiers.value_counts()).fillna(0)],
                         "revenue_12m": pd.Series(tier_ids).map(rev.groupby(tiers).sum()).fillna(0.0).to_numpy()})


@dataclass
class GradingReport:
    quarter: str
    scheme: Scheme
    scheme_path: str
    grading: pd.DataFrame
    previous: pd.DataFrame | None = None
    previous_quarter: str | None = None
    previous_reviewed: bool = False
    churn: pd.DataFrame | None = None
    churn_quarter: str | None = None
    churn_text: str = ""
    data_report: pd.DataFrame = field(default_factory=pd.DataFrame)
    changes: pd.DataFrame | None = None
    decisions: pd.DataFrame | None = None  # last period's reviewer decisions: held in this grading or released
    lost_before: int = 0
    meta: dict = field(default_factory=dict)
    trend: pd.DataFrame | None = None  # customers per tier and revenue per reported period, oldest first
    falls: pd.DataFrame | None = None  # the largest score falls over the last published periods (S3's trend)

    # -- persistence between `segment report` and the notebook ---------------------------------
    _FRAMES = ("grading", "previous", "churn", "data_report", "changes", "decisions", "trend", "falls")

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in self._FRAMES:
            df = getattr(self, name)
            if df is not None:
                write_frame(df if name != "data_report" else df.astype(str), folder / f"{name}.parquet")
        meta = {"quarter": self.quarter, "scheme_path": self.scheme_path, "previous_quarter": self.previous_quarter,
                "previous_reviewed": self.previous_reviewed, "churn_quarter": self.churn_quarter,
                "churn_text": self.churn_text, "lost_before": self.lost_before, "meta": self.meta}
        write_text(folder / "report.json", json.dumps(meta, ensure_ascii=False, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "GradingReport":
        folder = Path(folder)
        meta = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        frames = {n: pd.read_parquet(folder / f"{n}.parquet") if (folder / f"{n}.parquet").is_file() else None
                  for n in cls._FRAMES}
        return cls(quarter=meta["quarter"], scheme=load_scheme(meta["scheme_path"]), scheme_path=meta["scheme_path"],
                   grading=frames["grading"], previous=frames["previous"], previous_quarter=meta["previous_quarter"],
                   previous_reviewed=meta["previous_reviewed"], churn=frames["churn"],
                   churn_quarter=meta["churn_quarter"], churn_text=meta["churn_text"],
                   data_report=frames["data_report"] if frames["data_report"] is not None else pd.DataFrame(),
                   changes=frames["changes"], decisions=frames["decisions"], lost_before=meta["lost_before"],
                   meta=meta["meta"], trend=frames["trend"], falls=frames["falls"])

    # -- helpers ----------------------------------------------------------------------------
    @property
    def tier_ids(self) -> list[str]:
        return [t.id for t in self.scheme.tiers]

    @property
    def currency(self) -> str:
        return str(self.meta.get("currency") or "CNY")

    def money(self, x: float) -> str:
        return money(x, self.currency)

    @property
    def labels(self) -> dict[str, str]:
        return {t.id: t.label or t.id for t in self.scheme.tiers}

    def tier_table(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """Customers and 12-month revenue per tier, best tier first, with shares."""
        g = self.grading if frame is None else frame
        out = per_tier(g, self.tier_ids)
        out.insert(1, "label", [self.labels[t] for t in self.tier_ids])
        out.insert(3, "customer_share", out["customers"] / max(len(g), 1))
        total = out["revenue_12m"].sum()
        out["revenue_share"] = out["revenue_12m"] / total if total else 0.0
        return out

    # -- sections ---------------------------------------------------------------------------
    def title(self) -> Section:
        name = html.escape(self.scheme.name or self.scheme.id)
        what = "customer × product-line grades" if "group" in self.grading else "customers"
        return Section([f"<h1>Customer grading — {html.escape(self.quarter)}</h1>",
                        f"<p class='lead'>Scheme <b>{name}</b> ({html.escape(self.scheme.source)}), graded at "
                        f"{html.escape(str(self.meta.get('as_of', '')))}: {len(self.grading):,} {what}.</p>",
                        self.tiles()])

    def tiles(self) -> str:
        """The first screen: customers graded, 12-month revenue, the tier mix, moves since the previous
        period and realised churn of the best and worst tier, each with its change."""
        t = self.tier_table()
        grouped = "group" in self.grading
        rows = "grades" if grouped else "customers"
        total = float(t["revenue_12m"].sum())
        since = f" vs {html.escape(self.previous_quarter)}" if self.previous is not None else ""
        out = []

        def tile(name: str, value: str, note: str = "", extra: str = "") -> None:
            out.append(f'<div class="tile"><div class="tile-name">{html.escape(name)}</div>'
                       f'<div class="tile-value">{value}</div>{extra}'
                       + (f'<div class="tile-note">{note}</div>' if note else "") + "</div>")

        def change(now: float, before: float, text: str) -> str:
            d = now - before
            cls = "up" if d > 0 else "down" if d < 0 else "same"
            return f'<span class="{cls}">{arrow(d)} {html.escape(text)}</span>{since}'

        prev = self.tier_table(self.previous) if self.previous is not None else None
        n, n_prev = len(self.grading), (len(self.previous) if self.previous is not None else None)
        tile(f"{rows.capitalize()} graded", f"{n:,}", change(n, n_prev, f"{n - n_prev:+,}") if n_prev is not None else "")
        before = float(prev["revenue_12m"].sum()) if prev is not None else None
        tile("Revenue, last 12 months", html.escape(self.money(total)),
             change(total, before, f"{(total - before) / before:+.1%}") if before else "")
        bar = "".join(f'<span class="mix-{i % 12}" style="width:{r.customer_share * 100:.2f}%" '
                      f'title="{html.escape(str(r.label))} {r.customer_share:.1%}"></span>'
                      for i, r in enumerate(t.itertuples()) if r.customers)
        legend = " · ".join(f'<span class="mix-key mix-{i % 12}"></span>{html.escape(str(r.label))} {r.customer_share:.1%}'
                            for i, r in enumerate(t.itertuples()))
        tile("Tier mix", f'<div class="mix">{bar}</div>', legend)
        if self.previous is not None:
            moves = self._movers()
            up, down = int((moves["move"] == "up").sum()), int((moves["move"] == "down").sum())
            tile(f"Moved since {self.previous_quarter}",
                 f'<span class="up">▲ {up:,}</span> <span class="down">▼ {down:,}</span>', f"{rows} up · down")
        if self.churn is not None and len(self.churn):
            c = self.churn[self.churn["n"] > 0]
            best, worst = c.iloc[0], c.iloc[-1]
            label = (lambda r: html.escape(str(r["label"] if "label" in c else r["tier"])))
            tile("Churn, best · worst tier", f"{best['churn_rate']:.1%} · {worst['churn_rate']:.1%}",
                 f"{label(best)} · {label(worst)}, graded at {html.escape(str(self.churn_quarter))}")
        return '<div class="tiles">' + "".join(out) + "</div>"

    def summary(self) -> Section:
        t = self.tier_table()
        total_rev = t["revenue_12m"].sum()
        grouped = "group" in self.grading  # one row per customer and product line (S8): say so, count both
        rows = "grades" if grouped else "customers"
        parts = [f"{r.label} {r.customers:,} ({r.customer_share:.1%} of {rows}, {r.revenue_share:.1%} of revenue)"
                 for r in t.itertuples()]
        if grouped:
            per = (self.scheme.group_by or "group").replace("_", " ")
            head = (f"{len(self.grading):,} customer × {per} grades were made for "
                    f"{self.grading['customer_id'].nunique():,} customers")
        else:
            head = f"{len(self.grading):,} customers were graded"
        text = f"{head}, bringing {self.money(total_rev)} of revenue over the last 12 months. By tier: {'; '.join(parts)}."
        if self.lost_before:
            text += f" {self.lost_before:,} customers the CRM marks lost were not graded."
        out = [p(text)]
        if self.previous is not None:
            prev = self.tier_table(self.previous)
            d = t["customers"] - prev["customers"]
            moves = self._movers()
            up, down = int((moves["move"] == "up").sum()), int((moves["move"] == "down").sum())
            key = row_key(self.previous, self.grading)
            now, before = (set(map(tuple, f[key].astype(str).to_numpy())) for f in (self.grading, self.previous))
            new, gone = len(now - before), len(before - now)
            change = ", ".join(f"{lab} {dd:+,}" for lab, dd in zip(t["label"], d))
            rev_change = total_rev - prev["revenue_12m"].sum()
            out.append(p(f"Since {self.previous_quarter}{' (after review)' if self.previous_reviewed else ''}: "
                         f"{up:,} {rows} moved up and {down:,} down; {new:,} are graded for the first time and "
                         f"{gone:,} are no longer graded. Tier sizes changed by {change}. Revenue over 12 months "
                         f"changed by {self.money(rev_change)} ({rev_change / max(prev['revenue_12m'].sum(), 1):+.1%})."))
        if self.churn is not None and len(self.churn):

            c = self.churn[self.churn["n"] > 0]
            out.append(p(f"Of the customers graded at {self.churn_quarter}, "
                         + ", ".join(f"{r.label if 'label' in c else r.tier} churned {r.churn_rate:.1%} of {r.n:,}"
                                     for r in c.itertuples())
                         + f" ({self.churn_text}). " + churn_order_verdict(self.churn)[1]))
        return Section(out, [t])

    def over_time(self) -> Section:
        """Customers per tier and revenue for every reported period of this scheme on this data."""
        tr = self.trend
        if tr is None or len(tr) < 2:
            return Section([p("The trend starts with this period: it grows with every period reported.")])
        labels = [self.labels[t] for t in self.tier_ids]
        div, unit = money_unit(self.currency)
        shown = tr.rename(columns=dict(zip(self.tier_ids, labels)))
        shown[f"revenue, 12 months ({unit})"] = (shown.pop("revenue_12m") / div).round(1)
        chart = charts.stacked_bars(list(tr["period"]), {lab: list(tr[t]) for t, lab in zip(self.tier_ids, labels)},
                                    alt="Customers per tier by period: " + "; ".join(
                                        f"{r['period']} " + ", ".join(f"{lab} {int(r[t])}" for t, lab in zip(self.tier_ids, labels))
                                        for _, r in tr.iterrows()), ylabel="graded")
        fmt = {lab: "," for lab in labels} | {"graded": ",", f"revenue, 12 months ({unit})": ",.1f"}
        return Section([p(f"Graded {'grades' if 'group' in self.grading else 'customers'} per tier at the end of each "
                          "period (earlier periods as reported; the previous one after review when it was reviewed)."),
                        chart, html_table(shown, fmt)], [tr])

    def tiers(self) -> Section:
        t = self.tier_table()
        shown = t.rename(columns={"customer_share": "share of customers", "revenue_12m": f"revenue (12 months, {self._unit_name()})",
                                  "revenue_share": "share of revenue"})
        chart = charts.grouped_bars(list(t["tier"]), {"share of customers": list(t["customer_share"]),
                                                      "share of revenue": list(t["revenue_share"])},
                                    alt="Share of customers and of revenue per tier: "
                                        + ", ".join(f"{r.tier} {r.customer_share:.0%} / {r.revenue_share:.0%}"
                                                    for r in t.itertuples()))
        fmt = {"share of customers": ".1%", "share of revenue": ".1%",
               f"revenue (12 months, {self._unit_name()})": ",.0f", "customers": ","}
        parts = []
        if "churn_probability" in self.grading:  # from the period's calibration (or the scheme's own link)
            prob = pd.to_numeric(self.grading["churn_probability"], errors="coerce")
            shown["predicted churn"] = t["tier"].map(prob.groupby(self.grading["tier"].astype(str)).mean()).to_numpy()
            fmt["predicted churn"] = ".1%"
            parts.append(p("Predicted churn: the mean churn probability of the tier's customers over the "
                           "calibration's horizon, fitted on past churn (see the calibration report). Customers the "
                           "calibration cannot judge (never bought, no purchase for a year, too new) have none. Each "
                           "customer's is in the grading file (column churn_probability)."))
        return Section([html_table(shown, fmt), chart] + parts, [t])

    def _unit_name(self) -> str:
        return "元" if self.currency == "CNY" else self.currency

    def migration(self, top: int = 15) -> Section:
        if self.previous is None:
            return Section([p("No earlier grading in the data: migration starts next period.")])
        counts, revenue = history.migration(self.previous, self.grading, self.tier_ids)
        moves = self._movers()
        div, unit = money_unit(self.currency)
        rev_table = (revenue / div).round(1).reset_index().rename(columns={"previous tier": f"previous \\ now ({unit})"})
        parts = [p(f"Customers by tier at {self.previous_quarter} (rows) and now (columns)."),
                 html_table(counts.reset_index().rename(columns={"previous tier": "previous \\ now"})),
                 p("Revenue over the last 12 months (current; previous for customers no longer graded)."),
                 html_table(rev_table, {c: ",.1f" for c in rev_table.columns[1:]})]
        for direction, title in (("up", "Largest upgrades"), ("down", "Largest downgrades")):
            m = moves[moves["move"] == direction].head(top)
            if "why" in m:  # indicators by the scheme's names for them
                m = m.assign(why=m["why"].astype(str).map(self.scheme.in_words))
            if len(m):
                parts += [f"<h3>{title}</h3>", html_table(m.drop(columns=["move"]), {"score_before": ".1f", "score": ".1f"})]
        return Section(parts, [counts, revenue, moves])

    def _movers(self) -> pd.DataFrame:
        """Who moved since the previous grading and why (computed once: the summary, the tiles and the
        migration section all read it)."""
        if getattr(self, "_moves", None) is None:
            self._moves = self._compute_movers()
        return self._moves

    def _compute_movers(self) -> pd.DataFrame:
        s = self.scheme
        return history.movers(self.previous, self.grading, self.tier_ids, s.weights() if s.scored else {},
                              s.score_factor, {t.id: t.gate for t in s.tiers if t.gate})

    def churn_by_tier(self) -> Section:
        if self.churn is None or not len(self.churn):
            return Section([p(self.churn_text or "Not enough history yet to see what happened after an earlier "
                                                 "grading.")])
        c = self.churn
        chart = charts.rates_with_intervals(list(c["tier"]), c["churn_rate"], c["ci_low"], c["ci_high"],
                                            alt=f"Churn rate by tier of the {self.churn_quarter} grading with 95% "
                                                "intervals: " + ", ".join(f"{r.tier} {r.churn_rate:.1%}"
                                                                          for r in c.itertuples() if r.n))
        return Section([p(f"Customers graded at {self.churn_quarter} and what happened in the following "
                          f"{self.churn_text}; 95% Wilson intervals."),
                        html_table(c, {"churn_rate": ".1%", "ci_low": ".1%", "ci_high": ".1%"}), chart], [c])

    def stability(self) -> Section:
        if self.previous is None:
            return Section([p("No earlier grading to compare with.")])
        s = history.stability(self.previous, self.grading, self.tier_ids)
        return Section([p(f"Population stability index of the tier distribution, {self.previous_quarter} → "
                          f"{self.quarter} (below {history.PSI_STABLE} stable, above {history.PSI_SHIFT} a major "
                          "shift)."), html_table(s, {"psi": ".3f"})], [s])

    def breakdown(self, by: str, top: int = 15) -> Section:
        """Customers and revenue per tier by an attribute; ``"group"``: by the scheme's groups (S8's
        product lines), each (customer, group) row counted once."""
        g = self.grading
        if by == "group" and by not in g:
            return Section([p(f"{self.scheme.name or self.scheme.id} grades each customer once, not per product line.")])
        if by not in g:
            return Section([p(f"The data has no {by.replace('_', ' ')}.")])
        key = g[by].astype("string").fillna("(unknown)")
        rev = pd.to_numeric(g.get("annual_amount", pd.Series(0.0, index=g.index)), errors="coerce").fillna(0.0)
        table = pd.crosstab(key, g["tier"].astype(str)).reindex(columns=self.tier_ids, fill_value=0)
        table["customers"] = table.sum(axis=1)
        div, unit = money_unit(self.currency)
        revenue = f"revenue ({unit})"
        table[revenue] = (rev.groupby(key).sum() / div).round(1)
        table = table.sort_values(revenue, ascending=False)
        note = f" (top {top} of {len(table)} by revenue)" if len(table) > top else ""
        name = self.scheme.group_by.replace("_", " ") if by == "group" and self.scheme.group_by else by.replace("_", " ")
        table.index.name, table.columns.name = name, None
        return Section([p(f"Customers per tier by {name}{note}."),
                        html_table(table.head(top).reset_index(), {revenue: ",.1f"} | {t: "," for t in self.tier_ids}
                                   | {"customers": ","})], [table])

    def strategies(self) -> Section:
        t = self.tier_table()
        rows = []
        for tier, n in zip(self.scheme.tiers, t["customers"]):
            days = tier.strategy.follow_up_days
            rows.append({"tier": tier.label or tier.id, "actions": "; ".join(tier.strategy.actions),
                         "owner": tier.strategy.owner, "follow-up (days)": days, "customers": int(n),
                         "contacts a year": int(round(n * 365 / days)) if days else None})
        df = pd.DataFrame(rows)
        total = df["contacts a year"].fillna(0).sum()
        text = (f"Following each tier's cadence means about {int(total):,} follow-ups a year "
                f"(about {total / 52:,.0f} a week).")
        if "account_manager" in self.grading:
            per_am = self.grading.assign(_c=self.grading["follow_up_days"].astype(float).rdiv(365)) \
                .groupby(self.grading["account_manager"].astype("string").fillna("(none)"))["_c"].sum()
            text += (f" Spread over {len(per_am):,} account managers, the busiest carries {per_am.max():,.0f} "
                     f"a year and the median {per_am.median():,.0f}.")
        return Section([html_table(df, {"customers": ","}), p(text)], [df])

    def follow_up_table(self) -> pd.DataFrame:
        """Each graded row whose tier sets a follow-up cadence, with its last and next contact and days
        overdue (``segment.grading.followup.follow_ups``), the most overdue first; empty when the scheme
        sets no cadence or the grading carries no contact data."""
        g = self.grading
        if "follow_up_days" not in g or "days_since_contact" not in g or not self.meta.get("as_of"):
            return pd.DataFrame()
        fu = followup.follow_ups(g, self.meta["as_of"])
        fu = fu[fu["status"] != followup.NO_CADENCE]
        return fu.sort_values(["days_overdue", "next_contact", "customer_id"], ascending=[False, True, True],
                              kind="stable")

    def follow_ups(self, top: int = 15) -> Section:
        """Who is overdue for the follow-up their tier asks for, per account manager, and the most overdue
        (every manager's list is the period's follow_ups.xlsx)."""
        f = self.follow_up_table()
        if not len(f):
            return Section([p("No tier of this scheme sets a follow-up cadence, or the data has no contacts "
                              "(interactions): nothing to schedule.")])
        due = f[f["status"] == followup.OVERDUE]
        if not len(due):
            return Section([p(f"All {len(f):,} customers with a follow-up cadence were contacted within it.")])
        per = followup.overdue_by_manager(f)
        per = per[per["overdue"] > 0].rename(columns={"account_manager": "account manager", "share_overdue": "share overdue",
                                                      "most_overdue_days": "most overdue (days)"})
        shown = due.head(top).drop(columns=["tier", "status"]).rename(columns={
            "tier_label": "tier", "account_manager": "account manager", "follow_up_days": "cadence (days)",
            "last_contact": "last contact", "next_contact": "next contact", "days_overdue": "overdue (days)"})
        return Section([p(f"{len(due):,} of {len(f):,} customers with a follow-up cadence are past it at "
                          f"{self.meta.get('as_of', '')} (the last consultation, visit or call plus their tier's "
                          "follow-up days; never contacted counts as a whole cadence overdue). Each account "
                          f"manager's list is a sheet of {QuarterFiles.FOLLOW_UPS} beside this report."),
                        html_table(per, {"share overdue": ".0%", "most overdue (days)": ",.0f"}),
                        p(f"The {min(top, len(due))} most overdue:"),
                        html_table(shown, {"cadence (days)": ",.0f", "overdue (days)": ",.0f"})], [per, due])

    def score_trend(self) -> Section:
        """The customers whose score fell most over the last published periods (S3: "history of scores
        kept to show the trend"); each customer's full history is ``segment.score_history``."""
        f = self.falls
        if not self.scheme.scored:
            return Section([p(f"{self.scheme.name or self.scheme.id} grades by rules, not by a score: no score trend.")])
        if f is None or not len(f):
            return Section([p("No published grading of this scheme before this period, or no score fell: the trend "
                              "starts once earlier periods are published (make report PERIOD=…, oldest first).")])
        periods = [c for c in f.columns if c not in ("customer_id", "group", "score now", "change")]
        shown = f.rename(columns={"customer_id": "customer", "change": f"change since {periods[0]}"})
        fmt = {c: ",.1f" for c in [*periods, "score now", f"change since {periods[0]}"]}
        return Section([p(f"The {len(f)} largest score falls since {periods[0]} (published scores, then this period's); "
                          "each customer's full history: segment.score_history(scheme, [customer_id])."),
                        html_table(shown, fmt)], [f])

    def reviewer_changes(self) -> Section:
        """Reviewers' decisions: those in force in this grading (held), those that expired and those the
        data released, each with why; then the tier changes the previous period's review logged."""
        d = self.decisions
        parts, frames = [], []
        if d is not None and len(d):
            by = {s: d[d["status"] == s] for s in ("held", "expired", "released")}
            parts.append(p(f"{len(d):,} reviewer decisions reached this grading: {len(by['held']):,} in force "
                           f"(the customer keeps the reviewer's tier), {len(by['expired']):,} expired and "
                           f"{len(by['released']):,} released (the data now agrees, or the customer is no longer "
                           "graded). Customers whose decision holds are not counted as movers."))
            shown = ["customer_id"] + (["group"] if "group" in d else []) + [
                "decided_in", "reviewer", "reason", "computed_before", "reviewer_tier", "computed_now", "expires", "why"]
            names = {"decided_in": "decided in", "computed_before": "computed then", "reviewer_tier": "reviewer's tier",
                     "computed_now": "computed now"}
            for title, key in (("Decisions in force", "held"), ("Decisions expired", "expired"),
                               ("Decisions released", "released")):
                part = by[key]
                if len(part):
                    more = f" (the first 50 of {len(part):,})" if len(part) > 50 else ""
                    parts += [f"<h3>{title}{more}</h3>", html_table(part[shown].rename(columns=names).head(50))]
            frames.append(d)
        if self.changes is not None and len(self.changes):
            parts += [p(f"{len(self.changes):,} decisions by the reviewers of {html.escape(str(self.previous_quarter))} "
                        "changed a tier (audit log):"), html_table(self.changes)]
            frames.append(self.changes)
        return Section(parts or [p("No reviewer decision reaches this grading.")], frames)

    def data_quality(self) -> Section:
        dq = self.data_report
        bands = self.meta.get("band_warnings") or []
        parts = [f"<ul>{''.join(f'<li>{html.escape(w)}</li>' for w in bands)}</ul>"] if bands else []
        if dq is None or dq.empty:
            return Section([p("The data passed every validation check with no warnings.")] + parts, [pd.DataFrame()])
        shown = dq.drop(columns=["rows"], errors="ignore")
        if "example" in shown:  # a number from the source, written for people (-4,549.89)
            shown = shown.assign(example=shown["example"].map(readable_number))
        return Section([p(f"{len(dq)} warning(s) from validation (errors stop the report):"), html_table(shown)]
                       + parts, [dq])
