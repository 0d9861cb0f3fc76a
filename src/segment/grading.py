"""The grading engine: snapshot × scheme → points, scores, tiers, gates, overrides, explanations.

Vectorised over customers (numpy): bands by ``searchsorted``, tiers as the first eligible column
of a customers × tiers matrix, overrides as rank arithmetic, text columns built column-wise. The
engine knows no scheme by name. Order of work for one population:

1. ``eligible`` — customers failing it are not graded (``Grading.ineligible``);
2. ``axes`` — classifications (first match), usable by every later condition;
3. points per indicator (bands, quantiles of this population, category map, rubric);
4. score = score_factor × Σ dimension weight × Σ indicator weight × points, × adjustments;
5. tier = the first tier whose cut-off, gate and stage rule hold (the last tier is the floor);
6. overrides in order (promote / demote, bounded); 7. sub-grade of the final tier;
8. explanation; manual designations come last (``apply_designations``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .conditions import parse
from .errors import SegmentError
from .schemes import Indicator, Scheme

PTS = "pts__"   # column prefix: an indicator's points
DIM = "dim__"   # column prefix: a dimension's score (on the indicators' point scale)
TEXT_COLUMNS = ("raw_tier", "gates_failed", "adjustments", "overrides", "tier", "tier_label", "subgrade",
                "subgrade_label", "strategy", "owner", "explanation", "top1", "top2", "top3", "designation")


class MissingInputs(SegmentError):
    """The scheme reads indicators the data does not provide."""


def indicator_points(values: pd.Series | None, spec: Indicator, frame: pd.DataFrame | None = None,
                     cuts_out: dict | None = None) -> np.ndarray:
    """Points of one indicator for every row. ``frame`` is needed for rubrics (their conditions)."""
    if spec.rubric is not None:
        n = len(frame)
        out = np.full(n, float(spec.missing_points))
        done = np.zeros(n, dtype=bool)
        for row in spec.rubric:
            hit = parse(row.when).evaluate(frame) & ~done
            out[hit] = row.points
            done |= hit
        return out
    if spec.map is not None:
        mapped = values.astype("string").map(spec.map)
        return pd.to_numeric(mapped, errors="coerce").fillna(spec.missing_points).to_numpy(dtype="float64")
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    if spec.quantiles is not None:
        known = x[~np.isnan(x)]
        edges = np.quantile(known, spec.quantiles) if len(known) else np.full(len(spec.quantiles), np.nan)
        if cuts_out is not None:
            cuts_out["edges"] = edges.tolist()
        pts = np.asarray(spec.points, dtype="float64")
        out = pts[np.searchsorted(edges, x, side="right")] if len(known) else np.full(len(x), spec.missing_points)
        out = np.asarray(out, dtype="float64")
        out[np.isnan(x)] = spec.missing_points
        return out
    edges = np.array([b.lower for b in spec.bands[1:]], dtype="float64")
    pts = np.array([b.points for b in spec.bands], dtype="float64")
    out = pts[np.minimum(np.searchsorted(edges, x, side="right"), len(pts) - 1)]
    # values below an explicit lower bound of the first band, or at/above an explicit upper bound
    # of the last, are outside every band: they score like missing values
    first, last = spec.bands[0], spec.bands[-1]
    outside = np.isnan(x)
    if first.lower is not None:
        outside |= x < first.lower
    if last.below is not None:
        outside |= x >= last.below
    out[outside] = spec.missing_points
    return out


@dataclass
class Grading:
    """A graded population. ``frame`` has one row per graded customer (per group for grouped schemes)."""

    frame: pd.DataFrame
    scheme: Scheme
    as_of: pd.Timestamp
    ineligible: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["customer_id"]))
    quantile_cuts: dict = field(default_factory=dict)  # indicator → the value thresholds used

    def tier_counts(self) -> pd.DataFrame:
        t = [x.id for x in self.scheme.tiers]
        counts = self.frame["tier"].value_counts().reindex(t, fill_value=0)
        labels = {x.id: x.label or x.id for x in self.scheme.tiers}
        out = pd.DataFrame({"tier": t, "label": [labels[i] for i in t], "customers": counts.to_numpy()})
        out["share"] = (out["customers"] / max(len(self.frame), 1)).round(4)
        return out

    def table(self) -> pd.DataFrame:
        return self.tier_counts()

    def _repr_html_(self) -> str:
        return self.table().to_html(index=False)


def check_inputs(snapshot: pd.DataFrame, scheme: Scheme, source: str = "the scheme") -> None:
    """Name every indicator the scheme reads that the snapshot lacks, and the table it comes from."""
    missing = sorted(scheme.inputs() - set(snapshot.columns))
    if not missing:
        return
    from .features import INDICATORS

    needs = {m: INDICATORS[m].source for m in missing if m in INDICATORS}
    unknown = [m for m in missing if m not in needs]
    parts = []
    if needs:
        tables = sorted(set(needs.values()))
        parts.append(f"needs {', '.join(sorted(needs))} from the {', '.join(tables)} table(s) (or their optional "
                     f"columns), which the data does not provide; add them to the data config (docs/data_contract.md)")
    if unknown:
        close = {}
        import difflib

        for m in unknown:
            hit = difflib.get_close_matches(m, list(INDICATORS), n=1)
            if hit:
                close[m] = hit[0]
        hint = "; ".join(f"{m} → did you mean {c}?" for m, c in close.items())
        parts.append(f"reads unknown indicator(s) {', '.join(unknown)}" + (f" ({hint})" if hint else "")
                     + "; the known ones are listed by `segment indicators`")
    raise MissingInputs(f"error: {source} ({scheme.id}) " + "; and ".join(parts) + ". Nothing was graded.")


def _first_match(conditions: list[str | None], frame: pd.DataFrame) -> np.ndarray:
    """Index of the first condition that holds per row; a ``None`` condition always holds."""
    n = len(frame)
    out = np.full(n, len(conditions) - 1)
    done = np.zeros(n, dtype=bool)
    for j, cond in enumerate(conditions):
        hit = (np.ones(n, dtype=bool) if cond is None else parse(cond).evaluate(frame)) & ~done
        out[hit] = j
        done |= hit
    return out


def _join(a: np.ndarray, b: np.ndarray, sep: str) -> np.ndarray:
    """Element-wise a + sep + b for object arrays, skipping empty sides."""
    return np.where(a == "", b, np.where(b == "", a, a + sep + b))


def grade(snapshot: pd.DataFrame, scheme: Scheme, *, as_of=None, source: str | None = None) -> Grading:
    """Grade every row of ``snapshot`` (one row per customer) with ``scheme``."""
    check_inputs(snapshot, scheme, source or "the scheme")
    as_of = pd.Timestamp(as_of) if as_of is not None else (
        pd.Timestamp(snapshot["as_of"].iloc[0]) if "as_of" in snapshot and len(snapshot) else pd.NaT)
    ineligible = pd.DataFrame({"customer_id": pd.Series([], dtype="string")})
    if scheme.eligible:
        ok = parse(scheme.eligible).evaluate(snapshot)
        ineligible = snapshot.loc[~ok, ["customer_id"]].reset_index(drop=True)
        snapshot = snapshot.loc[ok].reset_index(drop=True)
    else:
        snapshot = snapshot.reset_index(drop=True)
    n = len(snapshot)
    out: dict[str, object] = {"customer_id": snapshot["customer_id"].array}
    if "group" in snapshot:
        out["group"] = snapshot["group"].array

    # axes: classifications that later conditions may read
    frame = snapshot
    if scheme.axes:
        frame = snapshot.copy()
        for name, classes in scheme.axes.items():
            idx = _first_match([c.when for c in classes], frame)
            frame[name] = pd.array(np.array([c.id for c in classes], dtype=object)[idx], dtype="string")
            out[name] = pd.Categorical.from_codes(idx, [c.id for c in classes])

    # points and score
    weights = scheme.weights()
    cuts: dict[str, list] = {}
    points: dict[str, np.ndarray] = {}
    for ind, spec in scheme.indicators.items():
        col = spec.column or ind
        if spec.rubric is None:
            out[ind] = snapshot[col].array
        box: dict = {}
        points[ind] = indicator_points(None if spec.rubric is not None else snapshot[col], spec, frame, box)
        if "edges" in box:
            cuts[ind] = box["edges"]
        out[PTS + ind] = points[ind]
    score = np.full(n, np.nan)
    if scheme.scored:
        score = np.zeros(n)
        for dname, dim in scheme.dimensions.items():
            ds = np.zeros(n)
            for ind, w in dim.indicators.items():
                ds += w * points[ind]
            out[DIM + dname] = ds
            score += dim.weight * ds
        score *= scheme.score_factor
        adj_txt = np.full(n, "", dtype=object)
        for a in scheme.adjustments:
            hit = parse(a.when).evaluate(frame)
            score = np.where(hit, score * a.multiply, score)
            adj_txt[hit] = _join(adj_txt[hit], np.full(int(hit.sum()), f"{a.id} ×{a.multiply:g}", dtype=object), "; ")
        if scheme.adjustments:
            out["adjustments"] = adj_txt
        score = np.round(score, 9)  # 0.5*90 + 0.3*70 … must not fall below a cut-off by float noise
    out["score"] = score

    # tiers: the first tier whose cut-off, gate and stage rule hold
    tiers = scheme.tiers
    t = len(tiers)
    ids = np.array([x.id for x in tiers], dtype=object)
    cutoffs = np.array([x.min_score if x.min_score is not None else -np.inf for x in tiers])
    meets_cut = np.ones((n, t), dtype=bool) if not scheme.scored else (score[:, None] >= cutoffs[None, :])
    gate_ok = np.ones((n, t), dtype=bool)
    rule_ok = np.ones((n, t), dtype=bool)
    for j, tier in enumerate(tiers[:-1]):
        if tier.gate:
            gate_ok[:, j] = parse(tier.gate).evaluate(frame)
        if tier.has_rule:
            rule_ok[:, j] = parse(tier.rule_text()).evaluate(frame)
    base = meets_cut & rule_ok
    base[:, -1] = True
    raw_rank = base.argmax(axis=1)
    eligible = base & gate_ok
    eligible[:, -1] = True
    rank = eligible.argmax(axis=1)
    out["raw_tier"] = pd.Categorical.from_codes(raw_rank, list(ids))
    failed = base & ~gate_ok
    failed_txt = np.full(n, "", dtype=object)
    for j in range(t - 1):
        hit = failed[:, j] & (j < rank)
        if hit.any():
            failed_txt[hit] = _join(failed_txt[hit], np.full(int(hit.sum()), ids[j], dtype=object), ";")
    out["gates_failed"] = failed_txt
    gated_rank = rank.copy()

    # overrides, in order
    applied = np.full(n, "", dtype=object)
    pos = {x.id: i for i, x in enumerate(tiers)}
    for rule in scheme.overrides:
        hit = parse(rule.when).evaluate(frame)
        if not hit.any():
            continue
        step = rule.by if rule.action == "demote" else -rule.by
        new = np.clip(rank + step, 0, t - 1)
        if rule.not_below is not None and step > 0:
            new = np.minimum(new, np.maximum(rank, pos[rule.not_below]))
        if rule.not_above is not None and step < 0:
            new = np.maximum(new, np.minimum(rank, pos[rule.not_above]))
        changed = hit & (new != rank)
        if changed.any():
            note = f"{rule.id}: " + ids[rank[changed]] + " → " + ids[new[changed]] + f" ({rule.reason})"
            applied[changed] = _join(applied[changed], note, "; ")
            rank = np.where(changed, new, rank)
    out["overrides"] = applied
    out["tier"] = pd.Categorical.from_codes(rank, list(ids))
    out["tier_rank"] = rank
    out["tier_label"] = np.array([x.label or x.id for x in tiers], dtype=object)[rank]

    # sub-grades of the final tier
    if any(x.subgrades for x in tiers):
        sub = np.full(n, "", dtype=object)
        sub_label = np.full(n, "", dtype=object)
        for j, tier in enumerate(tiers):
            rows = rank == j
            if not tier.subgrades or not rows.any():
                continue
            idx = _first_match([s.when for s in tier.subgrades], frame.loc[rows])
            sub[rows] = np.array([s.id for s in tier.subgrades], dtype=object)[idx]
            sub_label[rows] = np.array([s.label or s.id for s in tier.subgrades], dtype=object)[idx]
        out["subgrade"] = sub
        out["subgrade_label"] = sub_label

    out["strategy"] = np.array(["; ".join(x.strategy.actions) for x in tiers], dtype=object)[rank]
    out["follow_up_days"] = pd.array([x.strategy.follow_up_days for x in tiers], dtype="Int64")[rank]
    out["owner"] = np.array([x.strategy.owner for x in tiers], dtype=object)[rank]
    out.update(_explain(scheme, weights, points, score, gated_rank, cutoffs, ids, n))

    for c in TEXT_COLUMNS:  # few distinct values: categoricals are fast to build and small on disk
        v = out.get(c)
        if isinstance(v, np.ndarray):
            out[c] = pd.Categorical(v)
    result = pd.DataFrame(out)
    return Grading(result, scheme, as_of, ineligible, cuts)


def _explain(scheme: Scheme, weights: dict, points: dict, score: np.ndarray, rank: np.ndarray,
             cutoffs: np.ndarray, ids: np.ndarray, n: int) -> dict:
    """The three largest contributions and the points missing for the next tier up (scored schemes);
    the matched stage rule (stage schemes)."""
    out: dict[str, object] = {}
    if not scheme.scored:
        labels = np.array([f"matched the rule of {x.id}" + (f" ({x.label})" if x.label else "")
                           if x.has_rule else f"no rule above {x.id} matched" for x in scheme.tiers], dtype=object)
        out["explanation"] = pd.Categorical(labels[rank])
        return out
    names = np.array(list(weights), dtype=object)
    factor = scheme.score_factor
    contrib = np.column_stack([factor * weights[i] * points[i] for i in names])
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :3]
    top_vals = np.round(np.take_along_axis(contrib, order, axis=1), 1)
    for k in range(order.shape[1]):
        out[f"top{k + 1}"] = pd.Categorical.from_codes(order[:, k], list(names))
    next_rank = np.maximum(rank - 1, 0)
    has_cut = np.isfinite(cutoffs[next_rank]) & (rank > 0)
    gap = np.where(has_cut, cutoffs[next_rank] - score, np.nan)
    gap = np.where(np.isfinite(gap), np.maximum(gap, 0), np.nan)
    out["points_to_next_tier"] = np.round(gap, 6)
    state = np.where(~has_cut, 0, np.where(gap > 0, 1, 2))  # 0 top tier, 1 points short, 2 gate/rule blocks
    # the text is built once per distinct combination (scores are sums of a few band points, so
    # there are few), then taken by code: 1M customers cost a group-by, not 1M string builds
    keys = pd.DataFrame({**{f"o{k}": order[:, k] for k in range(order.shape[1])},
                         **{f"v{k}": top_vals[:, k] for k in range(order.shape[1])},
                         "gap": np.round(np.nan_to_num(gap, nan=-1.0), 1), "next": next_rank, "state": state})
    codes = keys.groupby(list(keys.columns), sort=False).ngroup().to_numpy()
    first = np.unique(codes, return_index=True)[1]
    blocker = ["gate" if x.gate else "rule" for x in scheme.tiers]
    texts = []
    for r in first:
        parts = ", ".join(f"{names[order[r, k]]} +{top_vals[r, k]:.1f}" for k in range(order.shape[1]))
        nxt = ids[next_rank[r]]
        if state[r] == 1:
            parts += f"; {gap[r]:.1f} points short of {nxt}"
        elif state[r] == 2:
            parts += f"; score reaches {nxt} but its {blocker[next_rank[r]]} fails"
        texts.append(parts)
    out["explanation"] = pd.Categorical.from_codes(codes, texts) if len(set(texts)) == len(texts) else \
        pd.Categorical(np.asarray(texts, dtype=object)[codes])
    return out


# ------------------------------------------------------------------------------------------------
# manual designations (S4 special designation): applied last, audited in the output
# ------------------------------------------------------------------------------------------------

DESIGNATION_COLUMNS = ("customer_id", "tier", "reason", "approver", "expires")


def read_designations(path) -> pd.DataFrame:
    """A designation file (.csv or .xlsx): customer_id, tier, reason, approver, expires (YYYY-MM-DD)."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise SegmentError(f"error: designation file {path} not found; check the path")
    try:
        df = (pd.read_excel(path, dtype=str) if path.suffix.lower() in (".xlsx", ".xls")
              else pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]))
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SegmentError(f"error: {path}: cannot read the designation file: {str(e).splitlines()[0]}") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in DESIGNATION_COLUMNS if c not in df.columns]
    if missing:
        raise SegmentError(f"error: {path}: missing column(s) {', '.join(missing)}; a designation file has the "
                           f"columns {', '.join(DESIGNATION_COLUMNS)}")
    df.attrs["path"] = str(path)
    return df


def apply_designations(grading: Grading, designations: pd.DataFrame) -> Grading:
    """Set the tier of designated customers (unexpired at the grading's as-of), recording who and why.

    Every row is checked first — unknown customer, unknown tier, missing reason or approver, a bad
    expiry date, a customer designated twice: exit 2 naming the rows, nothing applied."""
    path = designations.attrs.get("path", "the designation file")
    scheme = grading.scheme
    ids = [t.id for t in scheme.tiers]
    d = designations.copy()
    for c in DESIGNATION_COLUMNS:
        d[c] = d[c].astype("string").str.strip()
    expires = pd.to_datetime(d["expires"], errors="coerce", format="ISO8601")
    known = set(grading.frame["customer_id"])
    problems = []

    def rows(mask) -> str:
        return ", ".join(str(i + 2) for i in np.flatnonzero(np.asarray(mask)))  # +2: header line, 1-based

    checks = [
        (d["customer_id"].isna() | ~d["customer_id"].isin(known), "customer not in this grading"),
        (~d["tier"].isin(ids), f"unknown tier (write one of {', '.join(ids)})"),
        (d["reason"].isna() | (d["reason"] == ""), "reason is empty (every designation needs one)"),
        (d["approver"].isna() | (d["approver"] == ""), "approver is empty"),
        (expires.isna(), "expires is not a date (YYYY-MM-DD)"),
        (d["customer_id"].duplicated(keep=False) & d["customer_id"].notna(), "customer designated more than once"),
    ]
    for mask, what in checks:
        mask = mask.fillna(True).to_numpy(dtype=bool)
        if mask.any():
            problems.append(f"  lines {rows(mask)}: {what}")
    if problems:
        raise SegmentError(f"error: {path}: {len(problems)} problem(s); nothing was applied:\n" + "\n".join(problems))
    live = d[expires >= grading.as_of.normalize()]
    frame = grading.frame.copy()
    frame["designation"] = pd.array([""] * len(frame), dtype="string")
    if len(live):
        # every row of a designated customer (one per group for grouped schemes)
        by_id = live.set_index("customer_id")
        hit = frame["customer_id"].isin(by_id.index).to_numpy(dtype=bool)
        cid = frame.loc[hit, "customer_id"]
        new = cid.map(by_id["tier"]).to_numpy(dtype=object)
        before = frame.loc[hit, "tier"].to_numpy(dtype=object)
        frame.loc[hit, "designation"] = ("designated " + new + " (was " + before + "; "
                                         + cid.map(by_id["reason"]).to_numpy(dtype=object) + "; approved by "
                                         + cid.map(by_id["approver"]).to_numpy(dtype=object) + ", until "
                                         + cid.map(by_id["expires"]).to_numpy(dtype=object) + ")")
        info = {t.id: (i, t.label or t.id, "; ".join(t.strategy.actions), t.strategy.follow_up_days, t.strategy.owner)
                for i, t in enumerate(scheme.tiers)}
        for col, k in (("tier", None), ("tier_rank", 0), ("tier_label", 1), ("strategy", 2), ("follow_up_days", 3),
                       ("owner", 4)):
            values = list(new) if k is None else [info[x][k] for x in new]
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                extra = sorted(set(values) - set(frame[col].cat.categories))
                if extra:
                    frame[col] = frame[col].cat.add_categories(extra)
            frame.loc[hit, col] = pd.array(values, dtype="Int64") if col == "follow_up_days" else values
    return Grading(frame, scheme, grading.as_of, grading.ineligible, grading.quantile_cuts)
