"""The review report (SEEDS step 5): which customers the sales and service heads re-check this
quarter and why, and how to send decisions back. What ``notebooks/review.ipynb`` shows.

The selection is the one ``segment review export`` writes to the sheet (same grading, params, seed
and quarter). The HTML carries no contact data: only the sheet may (``params/reports.yaml``)."""
from __future__ import annotations

import html


from .grading_report import Section, html_table, p
from .review import ReviewSelection, load_review_params, select_from_files

MAX_ROWS = 2_000  # rows of the customer list in the HTML; keeps a 1M-customer review report readable
SHOWN = ["customer_id", "tier", "tier_label", "score", "previous_tier", "why", "explanation", "overrides"]


class ReviewReport:
    def __init__(self, selection: ReviewSelection, quarter: str, sheet_hint: str):
        self.selection = selection
        self.quarter = quarter
        self.sheet_hint = sheet_hint

    @classmethod
    def load(cls, quarter: str, grading: str, scheme: str, previous: str = "",
             params: str = "") -> "ReviewReport":
        from .paths import project_path

        sel = select_from_files(str(project_path(grading)), scheme,
                                load_review_params(project_path(params) if params else None),
                                str(project_path(previous)) if previous else None)
        return cls(sel, quarter, f"reports/{quarter}/review_sheet.xlsx")

    def title(self) -> Section:
        s = self.selection.scheme
        return Section([f"<h1>Grading review — {html.escape(self.quarter)}</h1>",
                        p(f"Scheme {s.name or s.id}. The sales head and the service head re-check these customers "
                          "and confirm or change each tier, with a reason (SEEDS step 5).")])

    def summary(self) -> Section:
        return Section([self.selection._repr_html_()], [self.selection.counts()])

    def customers(self, limit: int = MAX_ROWS) -> Section:
        """The selected customers (at most ``limit`` rows in the HTML: the sheet has them all)."""
        f = self.selection.frame
        shown = f[[c for c in SHOWN if c in f]]
        parts = []
        if len(shown) > limit:
            parts.append(p(f"The first {limit:,} of {len(shown):,} customers to re-check, best tier first; the "
                           "review sheet lists them all."))
        parts.append(html_table(shown.head(limit), {"score": ".1f"}))
        return Section(parts, [shown])

    def how_to(self) -> Section:
        hint = html.escape(self.sheet_hint)
        return Section([f"<ol><li>Export the sheet: <code>segment review export --quarter {html.escape(self.quarter)}</code> "
                        f"(or <code>make review-export</code>) → <code>{hint}</code> and a .csv copy.</li>"
                        "<li>For each row fill <b>confirm</b> (yes / no), and when the tier should change "
                        "<b>new_tier</b> and a <b>reason</b>; every decided row needs a <b>reviewer</b>.</li>"
                        f"<li>Apply it: <code>segment review apply {hint}</code>. Bad rows are listed with their row "
                        "numbers and nothing is changed; a good sheet writes the approved grading and appends "
                        "each decision to <code>reports/audit_log.csv</code>, which is never rewritten.</li>"
                        "<li>Next quarter's grading report shows the changes.</li></ol>"])


def review_report(quarter: str, grading: str, scheme: str, previous: str = "") -> ReviewReport:
    """What the review notebook shows; ``grading`` is the quarter's grading.parquet."""
    if not grading:
        from .paths import reports_dir

        grading = str(reports_dir() / quarter / "grading.parquet")
    return ReviewReport.load(quarter, grading, scheme, previous)
