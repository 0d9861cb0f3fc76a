"""Published gradings as history: every period's grading a scheme published is kept in its reports folder, and conditions read a customer's past from it (previous tier and score, periods in that tier, score change, best tier ever held).

Public: HISTORY_INDICATORS, Published, reads_history, history_columns, with_history, history_listing,
score_history, score_falls, warn_no_history.
Reads: reports/<period>/ (manifest.json, grading.approved.parquet or grading.parquet). Writes: nothing.

A period's **published** grading is the one its reports folder holds for this scheme on this data:
the approved grading once its review was applied, else the grading as computed (with the decisions
held in it). History is read from those files, never recomputed: what leadership saw is what the
next grading compares with. The periods read are of the scheme's cadence (``cadence:``) and end
before the grading's date; "previous" is the latest of them, and runs of periods count only while
each is the period just before the next (a gap ends a run).

The history indicators (``segment indicators`` lists them):

- ``previous_tier``: the tier published in the previous period (missing: not graded then);
- ``previous_score``: the score published then (missing for rule-based schemes);
- ``tier_periods``: how many consecutive periods, up to the previous one, the customer held
  ``previous_tier`` (0 when not graded then);
- ``score_change``: ``previous_score`` minus the score of the period before it — the trend of the
  last two published scores (S3 asks for it; a fall is negative);
- ``best_tier``: the best tier the customer ever held in the published periods (S9's D: "was A, B
  or C and gave up").

Without a published grading before the date, every history indicator is missing, with one warning
naming the folder and the command that publishes the periods before.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segment.errors import MissingOptional
from segment.features.registry import Indicator
from segment.grading.scheme import Scheme
from segment.paths import QuarterFiles
from segment.periods import Period, is_period, parse_period

_H = "published gradings"
HISTORY_INDICATORS: dict[str, Indicator] = {i.name: i for i in (
    Indicator("previous_tier", "tier id", "previous period", _H, "The tier published in the previous period of the "
              "scheme's cadence (missing: not graded then)", "string"),
    Indicator("previous_score", "points", "previous period", _H, "The score published in the previous period "
              "(missing for rule-based schemes)", "float64"),
    Indicator("tier_periods", "periods", "all published", _H, "Consecutive periods, up to the previous one, the "
              "customer held previous_tier (0 when not graded then)", "int64"),
    Indicator("score_change", "points", "last two published", _H, "previous_score minus the score published the "
              "period before it: the trend of the last two published scores", "float64"),
    Indicator("best_tier", "tier id", "all published", _H, "The best tier the customer held in any published "
              "period of this scheme (missing: never graded)", "string"),
)}


def reads_history(scheme: Scheme) -> bool:
    return bool(scheme.inputs() & set(HISTORY_INDICATORS))


def history_listing() -> list[tuple[str, str, str, str, str]]:
    """(name, unit, window, source, meaning) of each history indicator, for ``segment indicators``."""
    return [(i.name, i.unit, i.window, i.source, i.meaning) for i in HISTORY_INDICATORS.values()]


@dataclass(frozen=True)
class Published:
    """Where the published gradings of a scheme on one data config are: ``reports_dir`` (each period's
    folder), and the data config they were graded from (its resolved path, as the manifest keeps it)."""

    reports_dir: Path
    data: Path

    def manifest(self, scheme: Scheme, period) -> dict | None:
        """The manifest of ``period``'s reports when they are of ``scheme`` on this data; else None (no
        such folder, an unreadable manifest, another scheme or another data config)."""
        try:
            m = json.loads(QuarterFiles(Path(self.reports_dir) / str(period)).manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(m, dict) or m.get("scheme") != scheme.id or m.get("data") != str(Path(self.data).resolve()):
            return None
        return m

    def file(self, scheme: Scheme, period) -> Path | None:
        """The grading ``scheme`` published for ``period`` on this data (approved, else as computed), or None."""
        files = QuarterFiles(Path(self.reports_dir) / str(period))
        if not files.grading.is_file() or self.manifest(scheme, period) is None:
            return None
        return files.latest_grading()

    def periods(self, scheme: Scheme, before) -> list[tuple[Period, Path]]:
        """The published gradings of ``scheme`` of its cadence's kind ending before ``before``, oldest
        first, as (period, grading file)."""
        before = pd.Timestamp(before).normalize()
        folder = Path(self.reports_dir)
        if not folder.is_dir():
            return []
        out = []
        for sub in folder.iterdir():
            if not (sub.is_dir() and is_period(sub.name)):
                continue
            p = parse_period(sub.name)
            if p.kind == scheme.cadence and p.end < before and (f := self.file(scheme, p)) is not None:
                out.append((p, f))
        return sorted(out)


def score_history(scheme, customers=None, *, data: str | Path | None = None,
                  reports_dir: str | Path | None = None) -> pd.DataFrame:
    """Each customer's published tiers and scores, period by period (``segment.score_history``): one
    row per period and graded row — period, as_of, customer_id (group), tier, tier_label, score —
    oldest first, from the gradings ``scheme`` (an id, a path or a Scheme) published in ``reports_dir``
    (default: the project's reports/) on ``data`` (default: the demo). ``customers``: ids to keep."""
    from segment.grading.scheme import load_scheme
    from segment.paths import demo_data, project_path
    from segment.paths import reports_dir as project_reports

    scheme = scheme if isinstance(scheme, Scheme) else load_scheme(scheme)
    folder = project_path(reports_dir) if reports_dir is not None else project_reports()
    data = project_path(data) if data is not None else demo_data()
    keys = ["customer_id", "group"] if scheme.group_by else ["customer_id"]
    wanted = None if customers is None else {str(c) for c in ([customers] if isinstance(customers, str) else customers)}
    parts = []
    for p, f in Published(folder, data).periods(scheme, pd.Timestamp.max):
        g = _read(f, keys)
        if wanted is not None:
            g = g[g["customer_id"].isin(wanted)]
        parts.append(g.assign(period=str(p), as_of=p.end))
    cols = ["period", "as_of", *keys, "tier", "tier_label", "score"]
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    out["tier_label"] = out["tier"].map({t.id: t.label or t.id for t in scheme.tiers}).fillna(out["tier"])
    return out[cols].sort_values(["as_of", *keys], kind="stable").reset_index(drop=True)


def score_falls(current: pd.DataFrame, scheme: Scheme, as_of, published: Published | None,
                periods: int = 3, top: int = 20) -> pd.DataFrame:
    """The customers whose score fell most over the last ``periods`` published periods (S3: the trend
    of each customer's score): customer, score then (the earliest of those periods), each published
    score since, score now and the change; the largest falls first, at most ``top``."""
    keys = ["customer_id", "group"] if scheme.group_by and "group" in current.columns else ["customer_id"]
    found = published.periods(scheme, as_of)[-periods:] if published is not None and scheme.scored else []
    if not found or "score" not in current:
        return pd.DataFrame()
    now = current[keys + ["score"]].copy()
    for c in keys:
        now[c] = now[c].astype(object).where(now[c].notna(), "").astype(str)
    wide = now.rename(columns={"score": "score now"})
    for p, f in found:
        wide = wide.merge(_read(f, keys)[keys + ["score"]].rename(columns={"score": str(p)}), on=keys, how="left")
    first = str(found[0][0])
    wide["change"] = wide["score now"] - wide[first]
    falls = wide[wide["change"] < 0].sort_values(["change", *keys], kind="stable").head(top)
    return falls[keys + [str(p) for p, _ in found] + ["score now", "change"]].reset_index(drop=True)


def _read(path: Path, keys: list[str]) -> pd.DataFrame:
    cols = keys + ["tier", "score"]
    g = pd.read_parquet(path)
    for c in cols:
        if c not in g.columns:
            g[c] = np.nan if c == "score" else ""
    out = g[cols].copy()
    for c in keys + ["tier"]:
        out[c] = out[c].astype(object).where(out[c].notna(), "").astype(str)
    out["score"] = pd.to_numeric(out["score"], errors="coerce")
    return out.drop_duplicates(keys)


def history_columns(snap: pd.DataFrame, scheme: Scheme, as_of, published: Published | None) -> tuple[pd.DataFrame, str]:
    """The history indicators for each row of ``snap`` (same index), and a warning ('' when none).

    Long because each indicator walks the published periods once: the previous one, the run of
    periods in the same tier, the score of the period before, the best tier ever."""
    keys = ["customer_id", "group"] if "group" in snap.columns and scheme.group_by else ["customer_id"]
    me = snap[keys].astype(object).where(snap[keys].notna(), "").astype(str)
    n = len(snap)
    out = pd.DataFrame({"previous_tier": pd.array([pd.NA] * n, dtype="string"),
                        "previous_score": np.full(n, np.nan), "tier_periods": np.zeros(n, dtype="int64"),
                        "score_change": np.full(n, np.nan),
                        "best_tier": pd.array([pd.NA] * n, dtype="string")}, index=snap.index)
    found = published.periods(scheme, as_of) if published is not None else []
    if not found:
        return out, _no_history(scheme, as_of, published)
    rank = {t.id: i for i, t in enumerate(scheme.tiers)}
    frames = [(p, _read(f, keys).set_index(keys)) for p, f in found]
    idx = pd.MultiIndex.from_frame(me) if len(keys) > 1 else pd.Index(me["customer_id"])
    last_p, last = frames[-1]
    prev_tier = last["tier"].reindex(idx)
    out["previous_tier"] = pd.array(prev_tier.to_numpy(dtype=object), dtype="string")
    out["previous_score"] = last["score"].reindex(idx).to_numpy(dtype=float)
    # consecutive periods in previous_tier, walking back while each period is the one just before
    run = prev_tier.notna().to_numpy().astype("int64")
    alive = run.astype(bool)
    expect = last_p.previous()
    before_score = np.full(n, np.nan)
    for k, (p, f) in enumerate(reversed(frames[:-1])):
        if p != expect:
            break
        t = f["tier"].reindex(idx).to_numpy(dtype=object)
        if k == 0:
            before_score = f["score"].reindex(idx).to_numpy(dtype=float)
        alive &= t == prev_tier.to_numpy(dtype=object)
        run += alive
        expect = p.previous()
    out["tier_periods"] = run
    out["score_change"] = out["previous_score"].to_numpy() - before_score
    best = np.full(n, np.inf)
    for _, f in frames:
        r = f["tier"].map(rank).reindex(idx).to_numpy(dtype=float)
        best = np.fmin(best, np.where(np.isnan(r), np.inf, r))
    ids = np.array([t.id for t in scheme.tiers] + [None], dtype=object)
    pick = np.where(np.isfinite(best), best, len(scheme.tiers)).astype(int)
    out["best_tier"] = pd.array(ids[pick], dtype="string")
    return out, ""


def _no_history(scheme: Scheme, as_of, published: Published | None) -> str:
    """Why the history indicators the scheme reads are missing for every customer, and what to do."""
    names = sorted(scheme.inputs() & set(HISTORY_INDICATORS))
    are, them = ("it is", "it") if len(names) == 1 else ("they are", "them")
    if published is None:
        return (f"it reads {', '.join(names)} from the gradings it published, which a grading of a bare "
                f"snapshot does not see: {are} missing for every customer, so the rules that read {them} do "
                f"not hold; `segment grade` and `segment report` read {them} from the reports folder")
    return (f"it reads {', '.join(names)} from the gradings it published, and none was published in "
            f"{published.reports_dir} before {pd.Timestamp(as_of).date()}: {are} missing for every "
            f"customer, so the rules that read {them} do not hold; publish the periods in order, oldest "
            f"first (make report PERIOD=… SCHEME={scheme.id})")


def warn_no_history(scheme: Scheme, as_of, published: Published | None, source: str = "the scheme") -> None:
    """The one ``warning:`` line for a grading whose history indicators are all missing."""
    warnings.warn(f"{source} ({scheme.id}): {_no_history(scheme, as_of, published)}", MissingOptional, stacklevel=3)


def with_history(snap: pd.DataFrame, scheme: Scheme, as_of, published: Published | None,
                 source: str = "the scheme") -> pd.DataFrame:
    """``snap`` with the history indicators the scheme reads (all of them), from ``published`` (None:
    missing, with a warning); one ``warning:`` line when nothing was published before ``as_of``."""
    cols, warn = history_columns(snap, scheme, as_of, published)
    if warn:
        warn_no_history(scheme, as_of, published, source)
    return pd.concat([snap.drop(columns=[c for c in cols.columns if c in snap.columns]), cols], axis=1)
