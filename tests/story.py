"""The two-year story (issue 16): eight quarters of the demo graded with S1 as a company would run them,
through the `segment` command line only — reviews whose decisions persist and expire, sign-offs, an
approval refused and then given, a spot check of the published list, and the audit log verified.

``make story`` runs it into ``reports/story/`` (open ``reports/story/index.html``);
``tests/test_story.py`` runs it into a temporary folder and checks every step. The people:
Wang Li (sales head), Zhao Min (service head), Chen Jie (leadership), Sun Yu (spot checker).

    python -m tests.story [--out reports/story] [--data data/demo/data.yaml]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from segment.cli import main
from segment.periods import Period

SCHEME = "s1_four_tier"
QUARTERS = [str(Period(2024, "quarter", 4).shift(k)) for k in range(8)]   # 2024Q4 … 2026Q3
FIRST_REVIEW, SECOND_REVIEW = "2025Q3", "2026Q1"


class StoryError(AssertionError):
    pass


@dataclass
class Story:
    """What the story did: the customers whose tiers the reviewers changed, and each command's output."""

    out: Path
    up: str = ""           # 2025Q3: ordinary → important, default expiry (through 2025Q4)
    down: str = ""         # 2025Q3: important → ordinary, expires 2026Q2 (set on the sheet)
    second: str = ""       # 2026Q1: moved down one tier, default expiry (through 2026Q2)
    log: list[str] = field(default_factory=list)


def _segment(story: Story, *args, expect: int = 0) -> str:
    """One `segment` command, in-process, as a user types it; its output is kept in the story's log."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    text = out.getvalue() + err.getvalue()
    story.log.append(f"$ segment {' '.join(map(str, args))}\n{text}")
    print(f"$ segment {' '.join(map(str, args))}\n{text}", end="" if text.endswith("\n") else "\n")
    if code != expect:
        raise StoryError(f"`segment {' '.join(map(str, args))}` exited {code}, expected {expect}:\n{text}")
    return text


def _future_tiers(data: Path, quarters: list[str]) -> pd.DataFrame:
    """Each customer's tier as S1 computes it at the end of ``quarters`` (one column each): how the
    reviewers of the story choose customers whose decisions the data will not overtake."""
    import segment

    tables = segment.load_data(data).tables
    cols = {}
    for q in quarters:
        g = segment.grade(segment.snapshot(tables, Period(int(q[:4]), "quarter", int(q[-1])).end), SCHEME)
        cols[q] = g.frame.set_index("customer_id")["tier"].astype(str)
    return pd.DataFrame(cols)


def _sheet(story: Story, quarter: str) -> tuple[Path, pd.DataFrame]:
    _segment(story, "review", "export", "--period", quarter, "--reports-dir", story.out)
    path = story.out / quarter / "review_sheet.csv"
    return path, pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _pick(sheet: pd.DataFrame, tier: str, stays: pd.DataFrame, taken: set[str]) -> str:
    """A customer of ``tier`` on the sheet whose computed tier stays ``tier`` in every column of ``stays``."""
    for cid in sheet.loc[sheet["tier"] == tier, "customer_id"]:
        if cid in stays.index and cid not in taken and (stays.loc[cid] == tier).all():
            return cid
    raise StoryError(f"no {tier} customer on the sheet keeps its tier through {', '.join(stays.columns)}")


def run_story(out: str | Path, data: str | Path) -> Story:
    """Long because it is the story, step by step: each step one or two `segment` commands."""
    story = Story(Path(out))
    data = Path(data)
    report = lambda q: _segment(story, "report", "--period", q, "--data", data, "--scheme", SCHEME,  # noqa: E731
                                "--reports-dir", story.out)
    people = {"sales_head": "Wang Li", "service_head": "Zhao Min"}
    signoff = lambda q, role: _segment(story, "review", "signoff", "--period", q, "--role", role,  # noqa: E731
                                       "--name", people[role], "--reports-dir", story.out)
    future = _future_tiers(data, ["2025Q4", "2026Q1", "2026Q2", "2026Q3"])

    # year one: four quarters graded and published as drafts
    for q in QUARTERS[:4]:
        report(q)

    # the 2025Q3 review: one customer up (default expiry), one down until 2026Q2, two confirmed
    path, sheet = _sheet(story, FIRST_REVIEW)
    story.up = _pick(sheet, "ordinary", future[["2025Q4", "2026Q1"]], set())
    story.down = _pick(sheet, "important", future[["2025Q4", "2026Q1", "2026Q2", "2026Q3"]], {story.up})
    decide = {story.up: ["no", "important", "framework contract signed: strategic partner", "Wang Li", ""],
              story.down: ["no", "ordinary", "two major complaints this quarter", "Zhao Min", "2026Q2"]}
    for cid in [c for c in sheet["customer_id"] if c not in decide][:2]:
        decide[cid] = ["yes", "", "", "Wang Li", ""]
    for cid, values in decide.items():
        sheet.loc[sheet["customer_id"] == cid, ["confirm", "new_tier", "reason", "reviewer", "expires"]] = values
    sheet.to_csv(path, index=False, encoding="utf-8-sig")
    _segment(story, "review", "apply", path, "--reports-dir", story.out)
    signoff(FIRST_REVIEW, "sales_head")
    # leadership will not approve before the service head signs off …
    _segment(story, "approve", "--period", FIRST_REVIEW, "--name", "Chen Jie", "--reports-dir", story.out, expect=2)
    signoff(FIRST_REVIEW, "service_head")
    # … and then refuses it, then approves it after the reviewers checked the complaint demotion again
    _segment(story, "approve", "--period", FIRST_REVIEW, "--name", "Chen Jie", "--reject", "--reason",
             "the complaint demotion needs the complaint records attached", "--reports-dir", story.out)
    signoff(FIRST_REVIEW, "service_head")
    _segment(story, "approve", "--period", FIRST_REVIEW, "--name", "Chen Jie", "--reports-dir", story.out)

    # 2025Q4 holds both decisions; 2026Q1 lets the default one expire and keeps the other
    report("2025Q4")
    report("2026Q1")

    # the 2026Q1 review: one customer down one tier (default expiry: through 2026Q2)
    path, sheet = _sheet(story, SECOND_REVIEW)
    story.second = _pick(sheet, "ordinary", future[["2026Q2", "2026Q3"]], {story.up, story.down})
    sheet.loc[sheet["customer_id"] == story.second, ["confirm", "new_tier", "reason", "reviewer"]] = [
        "no", "potential", "stopped ordering: moved production abroad", "Zhao Min"]
    sheet.to_csv(path, index=False, encoding="utf-8-sig")
    _segment(story, "review", "apply", path, "--reports-dir", story.out)
    signoff(SECOND_REVIEW, "sales_head")
    signoff(SECOND_REVIEW, "service_head")
    _segment(story, "approve", "--period", SECOND_REVIEW, "--name", "Chen Jie", "--reports-dir", story.out)

    # 2026Q2 holds both; 2026Q3: both have expired
    report("2026Q2")
    report("2026Q3")

    # the monthly spot check of the published list (S4), one mis-grade found
    _segment(story, "review", "spot-check", "export", "--period", "2026Q3", "--size", "10", "--reports-dir", story.out)
    spot = story.out / "2026Q3" / "spot_check.csv"
    s = pd.read_csv(spot, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    s["result"], s["checker"] = "ok", "Sun Yu"
    s.loc[0, ["result", "note"]] = ["wrong", "the customer closed its account in September"]
    s.to_csv(spot, index=False, encoding="utf-8-sig")
    _segment(story, "review", "spot-check", "apply", spot, "--reports-dir", story.out)
    _segment(story, "audit", "--reports-dir", story.out)
    return story


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("reports/story"))
    ap.add_argument("--data", type=Path, default=Path("data/demo/data.yaml"))
    a = ap.parse_args()
    try:
        story = run_story(a.out, a.data)
    except StoryError as e:
        sys.exit(f"the story stopped: {e}")
    print(f"\nthe story is in {a.out}/ (open {a.out}/index.html): {story.up} held then expired, {story.down} held "
          f"until 2026Q2, {story.second} held through 2026Q2")
