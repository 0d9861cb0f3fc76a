"""The review report (SEEDS step 5): which customers the sales and service heads re-check this
quarter and why, and how to send decisions back. What ``notebooks/review.ipynb`` shows.

Public: ReviewReport, review_report.
Reads: the quarter's grading file, params/reports.yaml. Writes: nothing.

The selection is the one ``segment review export`` writes to the sheet (same grading, params, seed
and quarter). The HTML carries no contact data: only the sheet may (``params/reports.yaml``)."""
from __future__ import annotations

import html
import json

import pandas as pd
import pyarrow.parquet as pq

from segment.paths import QuarterFiles, project_path, reports_dir
from segment.reports.html import Section, html_table, money_unit, p
from segment.review.params import load_review_params
from segment.review.select import ReviewSelection, select_from_files

MAX_ROWS = 2_000  # rows of the customer list in the HTML; keeps a 1M-customer review report readable
SHOWN = ["customer_id", "tier", "tier_label", "score", "previous_tier", "why", "explanation", "overrides"]
#: what the grading file adds to each selected row for the reviewers (never contact data)
CONTEXT = ["name", "account_manager", "region", "annual_amount"]


class ReviewReport:
    def __init__(self, selection: ReviewSelection, quarter: str, sheet_hint: str,
                 context: pd.DataFrame | None = None, currency: str = "CNY"):
        self.selection = selection
        self.quarter = quarter
        self.sheet_hint = sheet_hint
        self.context = context
        self.currency = currency

    @classmethod
    def load(cls, quarter: str, grading: str, scheme: str, previous: str = "",
             params: str = "") -> "ReviewReport":

        path = project_path(grading)
        sel = select_from_files(str(path), scheme, load_review_params(project_path(params) if params else None),
                                str(project_path(previous)) if previous else None)
        keys = [k for k in ("customer_id", "group") if k in sel.frame]
        have = pq.read_schema(path).names if path.suffix == ".parquet" else []
        context = pd.read_parquet(path, columns=keys + [c for c in CONTEXT if c in have]) if have else None
        try:
            currency = json.loads((path.parent / QuarterFiles.MANIFEST).read_text(encoding="utf-8"))["headline"]["currency"]
        except (OSError, ValueError, KeyError, TypeError):
            currency = "CNY"
        return cls(sel, quarter, f"reports/{quarter}/review_sheet.xlsx", context, str(currency))

    def title(self) -> Section:
        s = self.selection.scheme
        return Section([f"<h1>Grading review — {html.escape(self.quarter)}</h1>",
                        p(f"Scheme {s.name or s.id}. The sales head and the service head re-check these customers "
                          "together and confirm or change each tier, with a reason (SEEDS step 5). "
                          f"{len(self.selection.frame):,} customers to re-check, listed by account manager.")])

    def summary(self) -> Section:
        return Section([self.selection._repr_html_(), p("What each tier asks for (a customer below a gate drops a "
                                                        "tier whatever its score):"), html_table(self.rules())],
                       [self.selection.counts(), self.rules()])

    def rules(self) -> pd.DataFrame:
        """Each tier's cut-off next to its gate (the condition in the scheme's words)."""
        rows = []
        for t in self.selection.scheme.tiers:
            rows.append({"tier": t.id, "label": t.label or "", "score at least": "" if t.min_score is None
                         else f"{float(t.min_score):g}", "gate": self.selection.scheme.in_words(t.gate or ""),
                         "stage rule": self.selection.scheme.in_words(_rule(t))})
        out = pd.DataFrame(rows)
        return out[[c for c in out.columns if c in ("tier", "label") or (out[c] != "").any()]]

    def table(self) -> pd.DataFrame:
        """The customers to re-check with the reviewers' context: name, account manager, region,
        revenue (the sheet has the same rows)."""
        f = self.selection.frame
        keys = [k for k in ("customer_id", "group") if k in f]
        shown = f[keys + [c for c in SHOWN if c in f and c not in keys]]
        if self.context is not None and len(self.context.columns) > len(keys):
            ctx = self.context.copy()
            for k in keys:
                ctx[k], shown[k] = ctx[k].astype(str), shown[k].astype(str)
            shown = shown.merge(ctx.drop_duplicates(keys), on=keys, how="left")
        return shown

    def how_to(self) -> Section:
        hint, q = html.escape(self.sheet_hint), html.escape(self.quarter)
        return Section([f"<ol><li>Export the sheet: <code>segment review export --period {q}</code> "
                        f"(or <code>make review-export</code>) → <code>{hint}</code> and a .csv copy.</li>"
                        "<li>For each row fill <b>confirm</b> (yes / no), and when the tier should change "
                        "<b>new_tier</b> and a <b>reason</b>; every decided row needs a <b>reviewer</b>. A changed "
                        "tier holds in later gradings until the next regular review, or until the date or period "
                        "written in <b>expires</b>; confirming a tier a reviewer set earlier renews it.</li>"
                        f"<li>Apply it: <code>segment review apply {hint}</code>. Bad rows are listed with their row "
                        "numbers and nothing is changed; a good sheet writes the approved grading and appends "
                        "each decision to <code>reports/audit_log.csv</code>, which is never rewritten.</li>"
                        "<li>The sales head and the service head each sign off: <code>segment review signoff "
                        f"--period {q} --role sales_head --name …</code> (and <code>--role service_head</code>).</li>"
                        f"<li>Leadership approves: <code>segment approve --period {q} --name …</code> (or "
                        "<code>--reject --reason …</code>); the reports lose their DRAFT banner.</li>"
                        "<li>The next period's grading report shows the decisions in force and those that "
                        "expired.</li></ol>"])

    def customers(self, limit: int = MAX_ROWS) -> Section:
        """The selected customers grouped by account manager (most customers first), at most ``limit``
        rows in the HTML: the sheet has them all."""
        full = self.table()
        shown = full.copy()
        div, unit = money_unit(self.currency)
        revenue = f"revenue 12m ({unit})"
        if "annual_amount" in shown:
            shown[revenue] = (pd.to_numeric(shown.pop("annual_amount"), errors="coerce") / div).round(1)
        order = ["customer_id", "group", "name", "region", "tier", "tier_label", "score", revenue, "previous_tier",
                 "why", "explanation", "overrides"]
        fmt = {"score": ".1f", revenue: ",.1f"}
        parts = []
        if len(shown) > limit:
            parts.append(p(f"The first {limit:,} of {len(shown):,} customers to re-check; the review sheet lists "
                           "them all."))
            shown = shown.head(limit)
        words = self.selection.scheme.in_words  # indicators by the scheme's names for them
        shown = shown.assign(**{c: shown[c].astype(str).map(words) for c in ("why", "explanation") if c in shown})
        if "account_manager" not in shown:
            return Section(parts + [html_table(shown[[c for c in order if c in shown]], fmt)], [full])
        manager = shown["account_manager"].astype("string").fillna("(no account manager)")
        sizes = manager.value_counts()
        parts.append(p(f"{len(sizes):,} account managers: " + ", ".join(f"{m} {n:,}" for m, n in sizes.items()) + "."))
        for m in sizes.index:
            rows = shown[manager == m]
            parts.append(f"<h3>{html.escape(str(m))} — {len(rows):,} customer{'s' if len(rows) != 1 else ''}</h3>")
            parts.append(html_table(rows[[c for c in order if c in rows]], fmt))
        return Section(parts, [full])


def _rule(tier) -> str:
    """A tier's stage rule in the scheme's words ('' without one)."""
    if tier.when:
        return str(tier.when)
    if tier.all_of:
        return " and ".join(f"({c})" for c in tier.all_of)
    if tier.any_of:
        return " or ".join(f"({c})" for c in tier.any_of)
    return ""


def review_report(quarter: str, grading: str, scheme: str, previous: str = "") -> ReviewReport:
    """What the review notebook shows; ``grading`` is the quarter's grading.parquet."""
    if not grading:

        grading = str(QuarterFiles(reports_dir() / quarter).grading)
    return ReviewReport.load(quarter, grading, scheme, previous)
