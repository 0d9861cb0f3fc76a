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

Text is never built per customer: every text column is a categorical whose codes come from a few
small integer arrays (band index per indicator, gate failures, override steps), and each distinct
text is written once. The score, dimension scores and explanation are computed once per distinct
combination of band indices (a few thousand at 1M customers) and taken by code.
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
    idx, table = point_codes(values, spec, frame, cuts_out)
    return table[idx]


def point_codes(values: pd.Series | None, spec: Indicator, frame: pd.DataFrame | None = None,
                cuts_out: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(index per row, points table): the points of row i are ``table[index[i]]``; the last entry of
    the table is ``missing_points`` (missing values, values outside every band, no rubric row)."""
    if spec.rubric is not None:
        n = len(frame)
        table = np.array([r.points for r in spec.rubric] + [spec.missing_points], dtype="float64")
        idx = np.full(n, len(spec.rubric), dtype=np.intp)
        done = np.zeros(n, dtype=bool)
        for j, row in enumerate(spec.rubric):
            hit = _holds(row.when, frame) & ~done
            idx[hit] = j
            done |= hit
        return idx, table
    if spec.map is not None:
        table = np.array(list(spec.map.values()) + [spec.missing_points], dtype="float64")
        pos = values.astype("string").map({k: i for i, k in enumerate(spec.map)})
        idx = pd.to_numeric(pos, errors="coerce").fillna(len(spec.map)).to_numpy(dtype=np.intp)
        return idx, table
    if isinstance(values.dtype, np.dtype) and values.dtype == np.float64:
        x = values.to_numpy()  # read only
    else:
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    miss = np.isnan(x)
    if spec.quantiles is not None:
        known = x[~miss]
        edges = np.quantile(known, spec.quantiles) if len(known) else np.full(len(spec.quantiles), np.nan)
        if cuts_out is not None:
            cuts_out["edges"] = edges.tolist()
        table = np.array(list(spec.points) + [spec.missing_points], dtype="float64")
        if not len(known):
            return np.full(len(x), len(table) - 1, dtype=np.intp), table
        idx = _bin(edges, x) if np.isfinite(edges).all() else np.searchsorted(edges, x, side="right")
        np.putmask(idx, miss, len(table) - 1)
        return idx, table
    table = np.array([b.points for b in spec.bands] + [spec.missing_points], dtype="float64")
    idx = _bin(np.array([b.lower for b in spec.bands[1:]], dtype="float64"), x)
    # values below an explicit lower bound of the first band, or at/above an explicit upper bound
    # of the last, are outside every band: they score like missing values
    first, last = spec.bands[0], spec.bands[-1]
    if first.lower is not None:
        miss |= x < first.lower
    if last.below is not None:
        miss |= x >= last.below
    np.putmask(idx, miss, len(table) - 1)
    return idx, table


def _bin(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``np.searchsorted(edges, x, side="right")`` for finite ascending edges (NaN rows: any value;
    callers overwrite them): a sum of comparisons when there are few edges, several times faster."""
    if len(edges) > 16:
        return np.searchsorted(edges, x, side="right")
    idx = np.zeros(len(x), dtype=np.int8)
    for e in edges:
        idx += (x >= e).view(np.int8)
    return idx


# ------------------------------------------------------------------------------------------------
# conditions, parsed once per text (a scheme's conditions are evaluated for every population it grades)
# ------------------------------------------------------------------------------------------------

_PARSED: dict[str, object] = {}


def _holds(text: str, frame: pd.DataFrame) -> np.ndarray:
    """``parse(text).evaluate(frame)``, the parse kept."""
    cond = _PARSED.get(text)
    if cond is None:
        if len(_PARSED) > 4096:
            _PARSED.clear()
        cond = _PARSED[text] = parse(text)
    return cond.evaluate(frame)


# ------------------------------------------------------------------------------------------------
# codes: small integer arrays combined into one dense code per row
# ------------------------------------------------------------------------------------------------

def _dense(n: int) -> int:
    """Code ranges up to this size are compacted with a lookup table, larger ones by sorting."""
    return max(1 << 16, 4 * n)


def _compact(code: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes in [0, size) → dense codes 0..k-1 in the same order, and the k codes present (ascending)."""
    if size <= _dense(len(code)):
        seen = np.zeros(size, dtype=bool)
        seen[code] = True
        present = np.flatnonzero(seen)
        lookup = np.zeros(size, dtype=code.dtype)
        lookup[present] = np.arange(len(present))
        return lookup[code], present
    present, inv = np.unique(code, return_inverse=True)
    return inv.reshape(-1).astype(code.dtype), present


def _codes(parts: list[tuple[np.ndarray, int]], n: int) -> tuple[np.ndarray, int, list[np.ndarray]]:
    """One dense code per row for the combination of ``parts`` (array of values in [0, m), m); the
    number of codes k; per part, its value for each of the k codes (all rows of a code agree)."""
    limit = _dense(n)
    code, k = np.zeros(n, dtype=np.int32), 1
    steps: list[tuple[str, object]] = []  # ("mix", m) and ("compact", codes present), to decode
    for values, m in parts:
        if k * m > limit:
            code, present = _compact(code, k)
            k = len(present)
            steps.append(("compact", present))
        if k * m >= 2**31 and code.dtype != np.int64:
            code = code.astype(np.int64)
        if k == 1:
            code = values.astype(code.dtype)  # the first part: no multiply
        else:
            np.multiply(code, m, out=code)
            np.add(code, values, out=code, casting="unsafe")  # values < m: no overflow
        k *= m
        steps.append(("mix", m))
    code, present = _compact(code, k)
    k = len(present)
    steps.append(("compact", present))
    cur, values_of = np.arange(k), []
    for kind, x in reversed(steps):
        if kind == "compact":
            cur = x[cur]
        else:
            cur, v = np.divmod(cur, x)
            values_of.append(v)
    return code, k, values_of[::-1]


def _text_categorical(table: list[str], codes: np.ndarray, present: np.ndarray | None = None) -> pd.Categorical:
    """``pd.Categorical(np.asarray(table, dtype=object)[codes])`` (categories: the texts present,
    sorted) without building one string per row. ``present``: which entries of the table occur
    (default: counted; codes from ``_codes`` all occur)."""
    if present is None:
        present = np.bincount(codes, minlength=len(table)) > 0 if len(codes) else np.zeros(len(table), dtype=bool)
    cats = sorted({table[j] for j in np.flatnonzero(present)})
    if not cats:
        return pd.Categorical(np.asarray([], dtype=object))
    pos = {v: i for i, v in enumerate(cats)}
    remap = np.array([pos.get(v, -1) for v in table], dtype=np.int8 if len(cats) < 127 else np.intp)
    return pd.Categorical.from_codes(remap[codes], cats, validate=False)


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
        hit = (np.ones(n, dtype=bool) if cond is None else _holds(cond, frame)) & ~done
        out[hit] = j
        done |= hit
    return out


def grade(snapshot: pd.DataFrame, scheme: Scheme, *, as_of=None, source: str | None = None) -> Grading:
    """Grade every row of ``snapshot`` (one row per customer) with ``scheme``."""
    check_inputs(snapshot, scheme, source or "the scheme")
    as_of = pd.Timestamp(as_of) if as_of is not None else (
        pd.Timestamp(snapshot["as_of"].iloc[0]) if "as_of" in snapshot and len(snapshot) else pd.NaT)
    ineligible = pd.DataFrame({"customer_id": pd.Series([], dtype="string")})
    if scheme.eligible:
        ok = _holds(scheme.eligible, snapshot)
        ineligible = snapshot.loc[~ok, ["customer_id"]].reset_index(drop=True)
        snapshot = snapshot.loc[ok].reset_index(drop=True)
    else:
        snapshot = snapshot.reset_index(drop=True)
    n = len(snapshot)
    # every array in `out` is the grading's own (columns of the snapshot are copied), so the frame is
    # built without copying and consolidating them again
    out: dict[str, object] = {"customer_id": snapshot["customer_id"].array.copy()}
    if "group" in snapshot:
        out["group"] = snapshot["group"].array.copy()

    # axes: classifications that later conditions may read
    frame = snapshot
    if scheme.axes:
        frame = snapshot.copy()
        for name, classes in scheme.axes.items():
            idx = _first_match([c.when for c in classes], frame)
            frame[name] = pd.array(np.array([c.id for c in classes], dtype=object)[idx], dtype="string")
            out[name] = pd.Categorical.from_codes(idx, [c.id for c in classes], validate=False)

    # points: per indicator an index into its points table (band, quantile bin, category, rubric row)
    weights = scheme.weights()
    cuts: dict[str, list] = {}
    points: dict[str, np.ndarray] = {}
    slots: dict[str, tuple[np.ndarray, int, np.ndarray]] = {}  # index per row, table size, table
    for ind, spec in scheme.indicators.items():
        col = spec.column or ind
        if spec.rubric is None:
            out[ind] = snapshot[col].array.copy()
        box: dict = {}
        idx, table = point_codes(None if spec.rubric is not None else snapshot[col], spec, frame, box)
        if "edges" in box:
            cuts[ind] = box["edges"]
        points[ind] = table[idx]
        slots[ind] = (idx, len(table), table)
        out[PTS + ind] = points[ind]

    # score: a function of the indicators' slots and the adjustments that apply, so it is computed
    # once per distinct combination ("state") — the same arithmetic as per row — and taken by code
    score = np.full(n, np.nan)
    state = k_state = score_s = None
    if scheme.scored:
        hits = [_holds(a.when, frame) for a in scheme.adjustments]
        state, k_state, per_state = _codes([slots[i][:2] for i in weights] + [(h, 2) for h in hits], n)
        pts_s = {i: slots[i][2][v] for i, v in zip(weights, per_state)}  # the points of each state
        score_s = np.zeros(k_state)
        for dname, dim in scheme.dimensions.items():
            ds = np.zeros(k_state)
            for ind, w in dim.indicators.items():
                ds += w * pts_s[ind]
            out[DIM + dname] = ds[state]
            score_s += dim.weight * ds
        score_s *= scheme.score_factor
        for a, h in zip(scheme.adjustments, per_state[len(weights):]):
            score_s = np.where(h.astype(bool), score_s * a.multiply, score_s)
        if scheme.adjustments:
            adj, k_adj, applies = _codes([(h, 2) for h in hits], n)
            texts = ["; ".join(f"{a.id} ×{a.multiply:g}" for a, h in zip(scheme.adjustments, applies) if h[c])
                     for c in range(k_adj)]
            out["adjustments"] = _text_categorical(texts, adj, np.ones(k_adj, dtype=bool))
        score_s = np.round(score_s, 9)  # 0.5*90 + 0.3*70 … must not fall below a cut-off by float noise
        score = score_s[state]
    out["score"] = score

    # tiers: the first tier whose cut-off, gate and stage rule hold
    tiers = scheme.tiers
    t = len(tiers)
    ids = np.array([x.id for x in tiers], dtype=object)
    cutoffs = np.array([x.min_score if x.min_score is not None else -np.inf for x in tiers])
    gates: dict[int, np.ndarray] = {}
    rules: dict[int, np.ndarray] = {}
    for j, tier in enumerate(tiers[:-1]):
        if tier.gate:
            gates[j] = _holds(tier.gate, frame)
        if tier.has_rule:
            rules[j] = _holds(tier.rule_text(), frame)
    raw_rank = np.full(n, t - 1, dtype=np.intp)
    rank = np.full(n, t - 1, dtype=np.intp)
    blocked: dict[int, np.ndarray] = {}  # tier j: cut-off and rule met, gate failed
    for j in range(t - 2, -1, -1):
        base = score >= cutoffs[j] if scheme.scored else np.ones(n, dtype=bool)
        if j in rules:
            base &= rules[j]
        np.putmask(raw_rank, base, j)
        if j in gates:
            np.putmask(rank, base & gates[j], j)
            blocked[j] = base & ~gates[j]
        else:
            np.putmask(rank, base, j)
    out["raw_tier"] = pd.Categorical.from_codes(raw_rank, list(ids), validate=False)
    failed = [(j, blocked[j] & (j < rank)) for j in sorted(blocked)]  # gates failed on the way down
    code, k_failed, fails = _codes([(f, 2) for _, f in failed], n)
    texts = [";".join(ids[j] for (j, _), f in zip(failed, fails) if f[c]) for c in range(k_failed)]
    out["gates_failed"] = _text_categorical(texts, code, np.ones(k_failed, dtype=bool))
    gated_rank = rank.copy()

    # overrides, in order; the text of a row is set by the steps it took (few distinct ones)
    applied = np.zeros(n, dtype=np.intp)
    notes = [""]
    known = {"": 0}
    pos = {x.id: i for i, x in enumerate(tiers)}
    for rule in scheme.overrides:
        hit = _holds(rule.when, frame)
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
            rows = np.flatnonzero(changed)
            keys, inv = np.unique((applied[rows] * t + rank[rows]) * t + new[rows], return_inverse=True)
            to_code = []
            for key in keys.tolist():
                before, frm, to = key // (t * t), key // t % t, key % t
                note = f"{rule.id}: {ids[frm]} → {ids[to]} ({rule.reason})"
                text = note if notes[before] == "" else notes[before] + "; " + note
                if text not in known:
                    known[text] = len(notes)
                    notes.append(text)
                to_code.append(known[text])
            applied[rows] = np.asarray(to_code, dtype=np.intp)[inv.reshape(-1)]
            rank = np.where(changed, new, rank)
    out["overrides"] = _text_categorical(notes, applied)
    out["tier"] = pd.Categorical.from_codes(rank, list(ids), validate=False)
    out["tier_rank"] = rank
    present = np.bincount(rank, minlength=t) > 0
    out["tier_label"] = _text_categorical([x.label or x.id for x in tiers], rank, present)

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

    out["strategy"] = _text_categorical(["; ".join(x.strategy.actions) for x in tiers], rank, present)
    out["follow_up_days"] = pd.array([x.strategy.follow_up_days for x in tiers], dtype="Int64")[rank]
    out["owner"] = _text_categorical([x.strategy.owner for x in tiers], rank, present)
    if scheme.scored:
        out.update(_explain_scored(scheme, weights, pts_s, state, k_state, score_s, gated_rank, cutoffs, ids, n))
    else:
        labels = [f"matched the rule of {x.id}" + (f" ({x.label})" if x.label else "")
                  if x.has_rule else f"no rule above {x.id} matched" for x in tiers]
        out["explanation"] = _text_categorical(labels, gated_rank, np.bincount(gated_rank, minlength=t) > 0)

    for c in TEXT_COLUMNS:  # few distinct values: categoricals are fast to build and small on disk
        v = out.get(c)
        if isinstance(v, np.ndarray):
            out[c] = pd.Categorical(v)
    # (very wide frames are consolidated, as pandas would, so adding columns later stays fast)
    result = pd.DataFrame(out, copy=len(out) > 90)
    return Grading(result, scheme, as_of, ineligible, cuts)


def _explain_scored(scheme: Scheme, weights: dict, pts_s: dict, state: np.ndarray, k_state: int,
                    score_s: np.ndarray, rank: np.ndarray, cutoffs: np.ndarray, ids: np.ndarray, n: int) -> dict:
    """The three largest contributions and the points missing for the next tier up.

    Contributions depend on the score state alone, the gap on the state and the tier: both are
    computed once per distinct (state, tier) pair and taken by code. The text is built once per
    distinct (top three, their points, gap, next tier, why) key, keys numbered in order of first
    appearance."""
    out: dict[str, object] = {}
    names = np.array(list(weights), dtype=object)
    factor = scheme.score_factor
    # contributions per state (the indicators' points of each state: ``pts_s``)
    contrib = np.column_stack([factor * weights[i] * pts_s[i] for i in names])
    order_s = np.argsort(-contrib, axis=1, kind="stable")[:, :3]
    vals_s = np.round(np.take_along_axis(contrib, order_s, axis=1), 1)
    top = order_s.shape[1]
    small = np.int8 if len(names) < 127 else np.intp
    for k in range(top):
        out[f"top{k + 1}"] = pd.Categorical.from_codes(order_s[:, k].astype(small)[state], list(names), validate=False)
    # per (state, tier) pair
    pair, k_pair, (s_rep, r_p) = _codes([(state, k_state), (rank, len(ids))], n)
    score_p = score_s[s_rep]
    next_rank = np.maximum(r_p - 1, 0)
    has_cut = np.isfinite(cutoffs[next_rank]) & (r_p > 0)
    gap = np.where(has_cut, cutoffs[next_rank] - score_p, np.nan)
    gap = np.where(np.isfinite(gap), np.maximum(gap, 0), np.nan)
    out["points_to_next_tier"] = np.round(gap, 6)[pair]
    why = np.where(~has_cut, 0, np.where(gap > 0, 1, 2))  # 0 top tier, 1 points short, 2 gate/rule blocks
    # the pairs in order of their first row; the keys (as a per-customer group-by would see them)
    first = np.full(k_pair, n, dtype=np.intp)
    np.minimum.at(first, pair, np.arange(n))
    by_first = np.argsort(first, kind="stable")
    order_p, vals_p = order_s[s_rep][by_first], vals_s[s_rep][by_first]
    keys = pd.DataFrame({**{f"o{k}": order_p[:, k] for k in range(top)},
                         **{f"v{k}": vals_p[:, k] for k in range(top)},
                         "gap": np.round(np.nan_to_num(gap[by_first], nan=-1.0), 1), "next": next_rank[by_first],
                         "state": why[by_first]})
    group = keys.groupby(list(keys.columns), sort=False).ngroup().to_numpy()
    lead = np.unique(group, return_index=True)[1]  # each key's first pair, i.e. its first customer
    blocker = ["gate" if x.gate else "rule" for x in scheme.tiers]
    texts = []
    q = by_first[lead]
    names_l, ids_l = names.tolist(), ids.tolist()
    tops: dict[int, str] = {}  # state → its top-three text (states recur across tiers)
    for st, nr, w, g in zip(s_rep[q].tolist(), next_rank[q].tolist(), why[q].tolist(), gap[q].tolist()):
        parts = tops.get(st)
        if parts is None:
            o, v = order_s[st].tolist(), vals_s[st].tolist()
            parts = tops[st] = ", ".join(f"{names_l[o[k]]} +{v[k]:.1f}" for k in range(top))
        if w == 1:
            parts += f"; {g:.1f} points short of {ids_l[nr]}"
        elif w == 2:
            parts += f"; score reaches {ids_l[nr]} but its {blocker[nr]} fails"
        texts.append(parts)
    group_of_pair = np.empty(k_pair, dtype=np.intp)
    group_of_pair[by_first] = group
    codes = group_of_pair[pair]
    if len(set(texts)) == len(texts):
        out["explanation"] = pd.Categorical.from_codes(codes, texts, validate=False)
    else:
        out["explanation"] = _text_categorical(texts, codes)
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
