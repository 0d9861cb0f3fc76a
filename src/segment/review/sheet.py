"""The review sheet: written for reviewers (.xlsx with dropdowns and instructions, .csv) and read back.

Public: export_review.
Reads: a filled sheet (.xlsx or .csv). Writes: review_sheet.xlsx, review_sheet.csv.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from segment.errors import SegmentError
from segment.plumbing.atomic import (
    atomic_path,
    restore,
    write_csv,
)
from segment.review.params import (
    CONTACT_COLUMNS,
    DECISION_COLUMNS,
    SHEET_NAME,
    ReviewParams,
)
from segment.review.select import (
    ReviewSelection,
    as_scheme,
    points_text,
    row_keys,
    select_from_files,
    texts_of,
)


def _has_decisions(path: Path) -> int:
    """How many rows of an existing sheet carry a decision (0 if unreadable or none)."""
    try:
        df = read_filled_sheet(path)
    except SegmentError:
        return 0
    cols = [c for c in DECISION_COLUMNS if c in df.columns]
    if not cols:
        return 0
    return int((df[cols].fillna("").astype(str).apply(lambda s: s.str.strip()) != "").any(axis=1).sum())


def export_review(grading_path: str | Path, scheme, out_dir: str | Path, params: ReviewParams,
                  previous_path: str | Path | None = None, customers: pd.DataFrame | None = None, *,
                  context: pd.DataFrame | None = None, overwrite: bool = False) -> list[Path]:
    """Write ``review_sheet.xlsx`` and ``review_sheet.csv`` into ``out_dir``; return their paths.

    With ``customers`` (the customers table), the sheet shows the company name and — when
    ``params.include_pii_in_sheet`` — contact name, phone and e-mail. An existing sheet that already
    holds decisions is never overwritten unless ``overwrite``."""
    scheme = as_scheme(scheme)
    out_dir = Path(out_dir)
    xlsx, csv_path = out_dir / f"{SHEET_NAME}.xlsx", out_dir / f"{SHEET_NAME}.csv"
    if not overwrite:
        for p in (xlsx, csv_path):
            if p.is_file() and (k := _has_decisions(p)):
                raise SegmentError(f"{p} already holds {k} reviewer decision(s); apply it with `segment "
                                   "review apply`, or move it away (or pass --force) to export a fresh sheet")
    sel = select_from_files(grading_path, scheme, params, previous_path, context=context)
    sheet = sel.table().copy()
    keys = row_keys(sheet)
    contact_cols: list[str] = []
    if customers is not None and "customer_id" in customers.columns:
        wanted = ["name"] + (list(CONTACT_COLUMNS[1:]) if params.include_pii_in_sheet else [])
        contact_cols = [c for c in wanted if c in customers.columns]
        if contact_cols:
            cust = customers[["customer_id"] + contact_cols].copy()
            cust["customer_id"] = texts_of(cust["customer_id"])
            for c in contact_cols:
                cust[c] = texts_of(cust[c])
            cust = cust.drop_duplicates("customer_id")
            sheet = sheet.merge(cust, on="customer_id", how="left")
            for c in contact_cols:
                sheet[c] = sheet[c].fillna("")
            order = keys + contact_cols + [c for c in sheet.columns if c not in keys + contact_cols]
            sheet = sheet[order]
    with atomic_path(xlsx) as tmp:
        _write_xlsx(sheet, sel, tmp, contact_cols)
    with atomic_path(csv_path) as tmp:
        write_csv(sheet, tmp, bom=True)  # every text cell neutralised for spreadsheets
    return [xlsx, csv_path]
_COLUMN_HELP = {
    "customer_id": ("客户编号", "The customer's id in the CRM. Do not change it."),
    "group": ("产品线", "The product line graded (schemes that grade each line separately)."),
    "name": ("客户名称", "The company's name."),
    "contact_name": ("联系人", "Main contact (personal data: do not forward this sheet)."),
    "phone": ("电话", "Main contact's phone (personal data)."),
    "email": ("邮箱", "Main contact's e-mail (personal data)."),
    "tier": ("等级", "The tier the grading gave. Do not edit it: write a different tier in new_tier."),
    "tier_label": ("等级名称", "The tier's name."),
    "score": ("得分", "The total score (empty for schemes that grade by rules, not scores)."),
    "previous_tier": ("上期等级", "The tier in the previous period (empty: not graded then)."),
    "why": ("入选原因", "Why this customer is on the sheet: sample = drawn at random; borderline = the score "
            "is close to a tier's cut-off; override = a rule moved the tier; big mover = moved two or more "
            "tiers since the previous period; anomaly = matches the anomaly rule below; held decision = the tier "
            "a reviewer set earlier still holds (confirm renews it until the next regular review)."),
    "explanation": ("评分说明", "The largest contributions to the score and how far the next tier is."),
    "overrides": ("规则调整", "Which rule moved the tier, from what to what, and why."),
    "confirm": ("确认", "yes = the tier is right; no = it is wrong (then write new_tier and reason). "
                "Leave empty if you did not review the customer."),
    "new_tier": ("新等级", "Only when the tier is wrong: the tier id it should have (the dropdown lists them)."),
    "reason": ("原因", "Required when the tier changes: why (e.g. high spend but frequent complaints)."),
    "reviewer": ("审核人", "Your name, on every row you decided."),
    "expires": ("有效期至", "Optional, with a changed tier: until when your tier holds in later gradings — a date "
                "(2027-03-31) or a period (2027Q1). Empty: until the next regular review. Confirming a tier a "
                "reviewer set earlier renews it."),
}


def _write_xlsx(sheet: pd.DataFrame, sel: ReviewSelection, path: Path, contact_cols: list[str]) -> None:
    """The review sheet as an .xlsx workbook for reviewers.

    Long because it lays out the workbook cell by cell (header, widths, dropdowns, frozen panes, the
    instructions sheet) with openpyxl."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter, quote_sheetname
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = "review"
    cols = list(sheet.columns)
    ws.append(cols)
    bold = Font(bold=True)
    decide = PatternFill("solid", fgColor="FFF2CC")
    for row in sheet.itertuples(index=False):
        values = []
        for v in row:
            if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
                values.append(None)
            elif isinstance(v, (np.floating, float)):
                values.append(float(v))
            else:
                values.append(v if isinstance(v, (int, np.integer)) else str(v))
        ws.append(values)
    n = len(sheet)
    for j, c in enumerate(cols, start=1):
        head = ws.cell(row=1, column=j)
        head.font = bold
        letter = get_column_letter(j)
        if c in DECISION_COLUMNS:
            head.fill = decide
            for i in range(2, n + 2):
                ws.cell(row=i, column=j).fill = decide
        width = {"why": 40, "explanation": 60, "overrides": 40, "reason": 40, "name": 30, "email": 30}.get(c, 14)
        ws.column_dimensions[letter].width = width
        if c == "score":
            for i in range(2, n + 2):
                ws.cell(row=i, column=j).number_format = "0.0"
    # text must stay text in every column (openpyxl would store "=..." as a formula); a string cell
    # starting with + - @ is text to Excel already
    for row in ws.iter_rows(min_row=2, max_row=n + 1):
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"
    ws.freeze_panes = "B2"
    if n:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{n + 1}"

    # instructions (and the tier list the new_tier dropdown reads)
    ins = wb.create_sheet("instructions")
    ins.column_dimensions["A"].width = 18
    ins.column_dimensions["B"].width = 16
    ins.column_dimensions["C"].width = 100
    p = sel.params
    lines = [
        ("客户分级复核 Review of the customer grading", "", ""),
        ("", "", f"Scheme: {sel.scheme.name or sel.scheme.id} ({sel.scheme.id}). {sel.summary()}"),
        ("", "", "For each row: if the tier is right, write yes in confirm. If it is wrong, write no in confirm, "
                 "the tier it should have in new_tier, and why in reason. Write your name in reviewer on every "
                 "row you decided. Leave rows you did not review empty. Do not change the other columns or "
                 "delete rows. Return the file (xlsx or csv) to the CRM team, who run `segment review apply`."),
        ("", "", "Every decision is recorded in the audit log (who, when, from, to, why)."),
        ("", "", ""),
        ("column", "中文", "meaning"),
    ]
    for c in cols:
        zh, text = _COLUMN_HELP.get(c, ("", ""))
        lines.append((c, zh, text))
    lines += [("", "", ""), ("rule", "", "setting")]
    lines += [("sample", "抽样", f"{p.sample_share:.0%} of each tier at random (at least one per tier), seed {p.seed}"),
              ("borderline", "临界", f"score within {points_text(sel.margin)} of a tier cut-off, nearest first; "
                                     f"sample and borderline together at most {p.max_share:.0%}"),
              ("override", "规则调整", "a scheme rule promoted or demoted the customer"),
              ("big mover", "大幅变动", f"moved {p.big_mover_tiers} or more tiers since the previous period"),
              ("anomaly", "异常", p.anomaly or "(off)")]
    for note in sel.notes:
        lines.append(("note", "", note))
    lines += [("", "", ""), ("tier id", "等级", "cut-off / strategy")]
    first_tier_row = len(lines) + 1
    for t in sel.scheme.tiers:
        cut = f"score ≥ {t.min_score:g}; " if t.min_score is not None else ""
        lines.append((t.id, t.label, cut + "; ".join(t.strategy.actions)))
    for r in lines:
        ins.append(list(r))
    for r in (1, 6, 6 + len(cols) + 2, first_tier_row - 1):
        for cell in ins[r]:
            cell.font = bold
    for row in ins.iter_rows(min_col=3, max_col=3):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")

    if n:
        if "confirm" in cols:
            dv = DataValidation(type="list", formula1='"yes,no,是,否"', allow_blank=True, showErrorMessage=True,
                                errorTitle="confirm", error="Write yes or no (是 / 否), or leave it empty.")
            ws.add_data_validation(dv)
            letter = get_column_letter(cols.index("confirm") + 1)
            dv.add(f"{letter}2:{letter}{n + 1}")
        if "new_tier" in cols:
            last = first_tier_row + len(sel.scheme.tiers) - 1
            ref = f"={quote_sheetname('instructions')}!$A${first_tier_row}:$A${last}"
            dv = DataValidation(type="list", formula1=ref, allow_blank=True, showErrorMessage=True,
                                errorTitle="new_tier", error="Pick one of the tier ids (see the instructions sheet).")
            ws.add_data_validation(dv)
            letter = get_column_letter(cols.index("new_tier") + 1)
            dv.add(f"{letter}2:{letter}{n + 1}")
    wb.save(path)


def read_filled_sheet(path: Path) -> pd.DataFrame:
    """A review sheet (.xlsx: the `review` sheet, else the first; .csv: UTF-8, else GB18030 as Excel
    on a Chinese Windows saves it) as text, '' for empty cells."""
    path = Path(path)
    if not path.is_file():
        raise SegmentError(f"{path}: review sheet not found; check the path")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            import warnings

            from openpyxl import load_workbook

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)   # "Data Validation extension is not supported"
                names = load_workbook(path, read_only=True).sheetnames
                df = pd.read_excel(path, sheet_name="review" if "review" in names else 0, dtype=str, engine="openpyxl")
        elif suffix in (".csv", ".txt"):
            try:
                df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
            except UnicodeDecodeError:
                df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="gb18030")
        else:
            raise SegmentError(f"{path}: a review sheet is an .xlsx or .csv file")
    except SegmentError:
        raise
    except (ValueError, OSError, KeyError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SegmentError(f"{path}: cannot read the review sheet: {str(e).splitlines()[0]}; fill in the "
                           "sheet `segment review export` wrote (it must keep its header row)") from None
    except Exception as e:  # openpyxl's BadZipFile / InvalidFileException on a corrupt or renamed file
        raise SegmentError(f"{path}: cannot read the review sheet ({type(e).__name__}); save it again as "
                           ".xlsx or .csv") from None
    df.columns = [str(c).strip() for c in df.columns]
    df = df.fillna("").astype(str).apply(lambda s: s.str.strip())
    return restore(df)  # the ' the export put before a formula-like cell
