"""Schemes compiled to SQL: the grading engine of :mod:`segment.grading`, as one SELECT.

:func:`compile_scheme` turns a :class:`~segment.schemes.Scheme` into one query (a chain of CTEs, one
layer per concept) over a relation ``snap`` holding one row per customer. The query returns what
``grading.grade(snap, scheme).frame`` holds — the same columns, in the same order, with the same
values — and runs on DuckDB and Spark SQL through :class:`segment.features.Dialect`:

* every condition comes from the parsed tree (:meth:`Condition.to_sql`); indicator names reach the
  SQL only quoted (``d.q``), analysts' text (ids, labels, reasons, strategies) only as escaped
  literals (``d.text``) — never pasted;
* the floating-point operations are those of the numpy engine, in the same order (weighted sums
  left to right, ``np.round`` as ``rint(x · 10ⁿ) / 10ⁿ``, quantiles by numpy's linear
  interpolation from the ranked values), so scores are bit-identical and cut-offs never flip.

:func:`grade_sql` grades a pandas frame in DuckDB (notebooks, tests); :func:`compile_ineligible`
lists the customers the ``eligible`` condition leaves out.

Status: this is the grading engine's replacement in progress (issue 11, deliverable 2). Commands and
reports still grade with :func:`segment.grading.grade`; ``tests/test_sqlgrade.py`` holds the two equal
on every built-in scheme, on random schemes and on the seeds' worked examples until the switch-over
makes ``grade()`` run this SQL and deletes the numpy path. Designations are applied after it, in pandas.

Layers, in order (each reads the previous one): ``base`` (eligible rows, the columns the scheme
reads) → one layer per axis → quantile edges (per group) → ``points`` → ``dims`` → ``scored``
(score factor, adjustments, rounding) → ``tiers_a`` (cut-off/rule and gate per tier) → ``tiers_b``
(raw and gated rank) → ``tiers_c`` (failed gates) → two layers per override, in order →
``explain_*`` (contributions, their ranks, points to the next tier) → the final SELECT.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from .conditions import parse, sql_number
from .features import DUCKDB, Dialect
from .schemes import Indicator, Scheme

REL = "snap"  # the relation compiled SQL reads
PTS, DIM, AX = "pts__", "dim__", "ax__"


@dataclass
class _Query:
    """A chain of CTE layers; each layer selects everything of the previous one plus new columns."""

    d: Dialect
    ctes: list[tuple[str, str]] = field(default_factory=list)
    last: str = REL

    def add(self, name: str, sql: str) -> str:
        self.ctes.append((name, sql))
        self.last = name
        return name

    def extend(self, name: str, columns: list[tuple[str, str]], joins: str = "") -> str:
        """A layer adding ``columns`` (alias, expression) to every row of the previous layer."""
        if not columns:
            return self.last
        cols = ", ".join(f"{expr} AS {self.d.q(alias)}" for alias, expr in columns)
        return self.add(name, f"SELECT p.*, {cols} FROM {self.last} AS p{joins}")

    def sql(self, final: str) -> str:
        return "WITH " + ",\n".join(f"{n} AS (\n  {s}\n)" for n, s in self.ctes) + "\n" + final


@dataclass
class _Ctx:
    """What every emitter needs: the dialect, the scheme, and how names are read."""

    d: Dialect
    scheme: Scheme
    kinds: dict[str, str]  # input column → "number" / "text" / "bool"

    def col(self, name: str) -> str:
        """SQL for a name a condition reads: an axis (computed) or a snapshot column."""
        return self.d.q(AX + name) if name in self.scheme.axes else self.d.q(name)

    def kind(self, name: str) -> str | None:
        return "text" if name in self.scheme.axes else self.kinds.get(name)

    def cond(self, text: str) -> str:
        return parse(text).to_sql(self.d, self.col, self.kind)

    def q(self, name: str) -> str:
        return self.d.q(name)

    def text(self, value: str) -> str:
        return self.d.text(value)

    def round(self, x: str, decimals: int) -> str:
        """``np.round(x, decimals)``: rint(x × 10ⁿ) / 10ⁿ, bit for bit."""
        f = sql_number(10.0 ** decimals)
        return f"({self.d.rint(f'({x} * {f})')} / {f})"

    def pick(self, index: str, values: list[str], default: str = "NULL") -> str:
        """``values[index]`` (SQL expressions) for an integer SQL expression ``index``."""
        whens = " ".join(f"WHEN {i} THEN {v}" for i, v in enumerate(values))
        return f"(CASE {index} {whens} ELSE {default} END)"

    def texts(self, index: str, values: Iterable[str]) -> str:
        return self.pick(index, [self.text(v) for v in values])


def _first_match(ctx: _Ctx, choices: list[tuple[str | None, str]]) -> str:
    """The value of the first choice whose condition holds; a ``None`` condition always holds (last)."""
    whens = [f"WHEN {ctx.cond(c)} THEN {v}" for c, v in choices[:-1] if c is not None]
    if not whens:
        return choices[-1][1]
    return f"(CASE {' '.join(whens)} ELSE {choices[-1][1]} END)"


def _concat_ws(ctx: _Ctx, sep: str, parts: list[tuple[str, str]]) -> str:
    """The texts whose condition holds, joined by ``sep`` ('' when none)."""
    if not parts:
        return ctx.text("")
    items = ", ".join(f"CASE WHEN {c} THEN {v} END" for c, v in parts)
    return f"concat_ws({ctx.text(sep)}, {items})"


# ------------------------------------------------------------------------------------------------
# points
# ------------------------------------------------------------------------------------------------

def _value(ctx: _Ctx, column: str) -> str:
    """An indicator's column as DOUBLE, like ``pd.to_numeric(errors='coerce')``."""
    if ctx.kinds.get(column) == "text":
        return ctx.d.try_double(ctx.q(column))
    return f"CAST({ctx.q(column)} AS DOUBLE)"


def band_points(ctx: _Ctx, spec: Indicator, column: str) -> str:
    """Fixed bands [from, below): the last band whose ``from`` the value reaches; outside → missing."""
    x, mp = _value(ctx, column), sql_number(spec.missing_points)
    bands = spec.bands
    whens = [f"WHEN {x} IS NULL THEN {mp}"]
    if bands[0].lower is not None:
        whens.append(f"WHEN {x} < {sql_number(bands[0].lower)} THEN {mp}")
    if bands[-1].below is not None:
        whens.append(f"WHEN {x} >= {sql_number(bands[-1].below)} THEN {mp}")
    for b in reversed(bands[1:]):
        whens.append(f"WHEN {x} >= {sql_number(b.lower)} THEN {sql_number(b.points)}")
    return f"(CASE {' '.join(whens)} ELSE {sql_number(bands[0].points)} END)"


def quantile_edges(ctx: _Ctx, q: _Query, ind: str, spec: Indicator, column: str, group: str | None) -> str:
    """CTEs with the value thresholds of a quantile indicator (one row per group): numpy's
    ``np.quantile(known, qs)`` (linear) — index (n − 1)·q, then ``_lerp`` — from the ranked values."""
    g = f"{ctx.q(group)}, " if group else ""
    part = f"PARTITION BY {ctx.q(group)} " if group else ""
    ranked = q.add(f"qr_{len(q.ctes)}", (
        f"SELECT {g}x, ROW_NUMBER() OVER ({part}ORDER BY x) - 1 AS i, COUNT(*) OVER ({part.strip()}) AS n "
        f"FROM (SELECT {g}{_value(ctx, column)} AS x FROM {q.last}) AS v WHERE x IS NOT NULL"))
    cols = []
    for k, qk in enumerate(spec.quantiles):
        v = f"(CAST(n - 1 AS DOUBLE) * {sql_number(qk)})"
        top = f"{v} >= CAST(n - 1 AS DOUBLE)"
        lo = f"CASE WHEN {top} THEN n - 1 ELSE CAST(FLOOR({v}) AS BIGINT) END"
        hi = f"CASE WHEN {top} THEN n - 1 ELSE CAST(FLOOR({v}) AS BIGINT) + 1 END"
        cols += [f"MAX(CASE WHEN i = {lo} THEN x END) AS a{k}", f"MAX(CASE WHEN i = {hi} THEN x END) AS b{k}"]
    by = f" GROUP BY {ctx.q(group)}" if group else ""
    ends = q.add(f"qa_{len(q.ctes)}", f"SELECT {g}MAX(n) AS n, {', '.join(cols)} FROM {ranked}{by}")
    edges = []
    for k, qk in enumerate(spec.quantiles):
        v = f"(CAST(n - 1 AS DOUBLE) * {sql_number(qk)})"
        t = f"CASE WHEN {v} >= CAST(n - 1 AS DOUBLE) THEN {v} + 1e0 ELSE {v} - FLOOR({v}) END"
        a, b = f"a{k}", f"b{k}"
        edges.append(f"CASE WHEN ({t}) >= 0.5e0 THEN {b} - ({b} - {a}) * (1e0 - ({t})) "
                     f"ELSE {a} + ({b} - {a}) * ({t}) END AS e{k}")
    name = f"qe_{ind}_{len(q.ctes)}"
    q.ctes.append((name, f"SELECT {g}{', '.join(edges)} FROM {ends}"))
    return name


def quantile_points(ctx: _Ctx, spec: Indicator, column: str, edges: str) -> str:
    """Points of the bin the value falls in: the number of thresholds at or below it (searchsorted right)."""
    x, mp = _value(ctx, column), sql_number(spec.missing_points)
    whens = [f"WHEN {x} IS NULL THEN {mp}"]
    for k in reversed(range(len(spec.quantiles))):
        whens.append(f"WHEN {x} >= {edges}.e{k} THEN {sql_number(spec.points[k + 1])}")
    return f"(CASE {' '.join(whens)} ELSE {sql_number(spec.points[0])} END)"


def map_points(ctx: _Ctx, spec: Indicator, column: str) -> str:
    """Category → points; anything else (or missing) → missing points."""
    x = ctx.q(column) if ctx.kinds.get(column) == "text" else f"CAST({ctx.q(column)} AS STRING)"
    whens = " ".join(f"WHEN {ctx.text(k)} THEN {sql_number(v)}" for k, v in spec.map.items())
    mp = sql_number(spec.missing_points)
    return f"(CASE {x} {whens} ELSE {mp} END)" if whens else mp


def rubric_points(ctx: _Ctx, spec: Indicator) -> str:
    """The points of the first rubric row whose condition holds; none → missing points."""
    return _first_match(ctx, [(r.when, sql_number(r.points)) for r in spec.rubric]
                        + [(None, sql_number(spec.missing_points))])


def points_layer(ctx: _Ctx, q: _Query, group: str | None) -> None:
    joins, cols = [], []
    for ind, spec in ctx.scheme.indicators.items():
        column = spec.column or ind
        if spec.rubric is not None:
            expr = rubric_points(ctx, spec)
        elif spec.map is not None:
            expr = map_points(ctx, spec, column)
        elif spec.quantiles is not None:
            src = q.last
            edges = quantile_edges(ctx, q, ind, spec, column, group)
            q.last = src
            on = f"p.{ctx.q(group)} = {edges}.{ctx.q(group)}" if group else "TRUE"
            joins.append(f" LEFT JOIN {edges} ON {on}")
            expr = quantile_points(ctx, spec, column, edges)
        else:
            expr = band_points(ctx, spec, column)
        cols.append((PTS + ind, expr))
    q.extend("points", cols, "".join(joins))


# ------------------------------------------------------------------------------------------------
# score
# ------------------------------------------------------------------------------------------------

def _weighted_sum(terms: list[tuple[float, str]]) -> str:
    """Σ w·x left to right, as numpy's ``acc += w * x`` from zero (0 + y is y)."""
    out = ""
    for w, x in terms:
        term = f"({sql_number(w)} * {x})"
        out = term if not out else f"({out} + {term})"
    return out


def score_layers(ctx: _Ctx, q: _Query) -> None:
    """Dimension scores, the total × score factor × adjustments, rounded to 9 decimals like numpy."""
    s, d = ctx.scheme, ctx.d
    if not s.scored:
        q.extend("scored", [("_score", "CAST(NULL AS DOUBLE)")])
        return
    q.extend("dims", [(DIM + dn, _weighted_sum([(w, d.q(PTS + i)) for i, w in dim.indicators.items()]))
                      for dn, dim in s.dimensions.items()])
    total = f"({_weighted_sum([(dim.weight, d.q(DIM + dn)) for dn, dim in s.dimensions.items()])} " \
            f"* {sql_number(s.score_factor)})"
    hits = [(ctx.cond(a.when), a) for a in s.adjustments]
    for h, a in hits:
        total = f"({total} * (CASE WHEN {h} THEN {sql_number(a.multiply)} ELSE 1e0 END))"
    cols = [("_score", ctx.round(total, 9))]
    if s.adjustments:
        cols.append(("_adjustments", _concat_ws(ctx, "; ", [(h, ctx.text(f"{a.id} ×{a.multiply:g}")) for h, a in hits])))
    q.extend("scored", cols)


# ------------------------------------------------------------------------------------------------
# tiers
# ------------------------------------------------------------------------------------------------

def tier_layers(ctx: _Ctx, q: _Query) -> None:
    """Per tier above the floor: cut-off and stage rule (``_b{j}``), gate (``_g{j}``); then the raw
    tier (first ``_b``), the gated tier (first ``_b`` and ``_g``) and the gates that held it back."""
    s, tiers = ctx.scheme, ctx.scheme.tiers
    t = len(tiers)
    cols = []
    for j, tier in enumerate(tiers[:-1]):
        parts = []
        if s.scored and tier.min_score is not None:
            parts.append(f"_score >= {sql_number(tier.min_score)}")
        if tier.has_rule:
            parts.append(ctx.cond(tier.rule_text()))
        cols.append((f"_b{j}", " AND ".join(parts) or "TRUE"))
        cols.append((f"_g{j}", ctx.cond(tier.gate) if tier.gate else "TRUE"))
    q.extend("tiers_a", cols)

    def first(pred) -> str:
        whens = " ".join(f"WHEN {pred(j)} THEN {j}" for j in range(t - 1))
        return f"(CASE {whens} ELSE {t - 1} END)" if whens else str(t - 1)

    q.extend("tiers_b", [("_raw", first(lambda j: f"_b{j}")), ("_r0", first(lambda j: f"_b{j} AND _g{j}"))])
    failed = [(f"_r0 > {j} AND _b{j} AND NOT _g{j}", ctx.text(tiers[j].id)) for j in range(t - 1)]
    q.extend("tiers_c", [("_gates_failed", _concat_ws(ctx, ";", failed)), ("_o0", ctx.text(""))])


def override_layers(ctx: _Ctx, q: _Query) -> str:
    """Overrides in order, each a pair of layers: the bounded new rank, then rank and note."""
    tiers = ctx.scheme.tiers
    t, ids = len(tiers), [x.id for x in tiers]
    pos = {x.id: i for i, x in enumerate(tiers)}
    rank, note = "_r0", "_o0"
    for k, rule in enumerate(ctx.scheme.overrides, start=1):
        step = rule.by if rule.action == "demote" else -rule.by
        new = f"GREATEST(LEAST({rank} + ({step}), {t - 1}), 0)"
        if rule.not_below is not None and step > 0:
            new = f"LEAST({new}, GREATEST({rank}, {pos[rule.not_below]}))"
        if rule.not_above is not None and step < 0:
            new = f"GREATEST({new}, LEAST({rank}, {pos[rule.not_above]}))"
        q.extend(f"override_{k}a", [(f"_n{k}", new), (f"_h{k}", ctx.cond(rule.when))])
        changed = f"(_h{k} AND _n{k} <> {rank})"
        text = (f"{ctx.text(rule.id + ': ')} || {ctx.texts(rank, ids)} || {ctx.text(' → ')} || "
                f"{ctx.texts(f'_n{k}', ids)} || {ctx.text(f' ({rule.reason})')}")
        joined = f"(CASE WHEN {note} = '' THEN {text} ELSE {note} || {ctx.text('; ')} || {text} END)"
        q.extend(f"override_{k}b", [(f"_r{k}", f"(CASE WHEN {changed} THEN _n{k} ELSE {rank} END)"),
                                    (f"_o{k}", f"(CASE WHEN {changed} THEN {joined} ELSE {note} END)")])
        rank, note = f"_r{k}", f"_o{k}"
    return rank


def subgrade_columns(ctx: _Ctx, rank: str) -> list[tuple[str, str]]:
    """The sub-grade (id and label) of the final tier: its first sub-grade whose condition holds."""
    tiers = ctx.scheme.tiers
    if not any(x.subgrades for x in tiers):
        return []
    out = []
    for name, value in (("subgrade", lambda s: s.id), ("subgrade_label", lambda s: s.label or s.id)):
        per_tier = [_first_match(ctx, [(s.when, ctx.text(value(s))) for s in x.subgrades]) if x.subgrades
                    else ctx.text("") for x in tiers]
        out.append((name, ctx.pick(rank, per_tier, ctx.text(""))))
    return out


# ------------------------------------------------------------------------------------------------
# explanation
# ------------------------------------------------------------------------------------------------

def explain_layers(ctx: _Ctx, q: _Query, first_by: tuple[str | None, str] | None = None) -> list[tuple[str, str]]:
    """Scored schemes: the three largest contributions (factor × effective weight × points; ties keep
    indicator order) and the points missing for the next tier up — or the gate / rule that blocks it.
    Stage schemes: the rule the (gated) tier matched."""
    s, d = ctx.scheme, ctx.d
    tiers = s.tiers
    if not s.scored:
        labels = [f"matched the rule of {x.id}" + (f" ({x.label})" if x.label else "") if x.has_rule
                  else f"no rule above {x.id} matched" for x in tiers]
        return [("explanation", ctx.texts("_r0", labels))]
    weights = s.weights()
    names = list(weights)
    m = len(names)
    q.extend("explain_a", [(f"_c{i}", f"({sql_number(s.score_factor * weights[n])} * {d.q(PTS + n)})")
                           for i, n in enumerate(names)])
    # place of each indicator in a stable sort by falling contribution
    ranks = []
    for i in range(m):
        terms = [f"CASE WHEN _c{j} > _c{i} THEN 1 ELSE 0 END" for j in range(m) if j != i]
        terms += [f"CASE WHEN _c{j} = _c{i} THEN 1 ELSE 0 END" for j in range(i)]
        ranks.append((f"_k{i}", " + ".join(terms) or "0"))
    cutoffs = [sql_number(x.min_score) if x.min_score is not None else "NULL" for x in tiers]
    nxt = "GREATEST(_r0 - 1, 0)"
    cut = ctx.pick(nxt, cutoffs)  # NULL: the tier above has no cut-off (GREATEST would skip the NULL)
    gap = f"(CASE WHEN _r0 > 0 AND {cut} IS NOT NULL THEN GREATEST({cut} - _score, 0e0) END)"
    q.extend("explain_b", ranks + [("_next", nxt), ("_gap", gap)])
    top = min(3, m)
    cols = []
    for k in range(top):
        cols.append((f"top{k + 1}", f"(CASE {' '.join(f'WHEN _k{i} = {k} THEN {ctx.text(n)}' for i, n in enumerate(names))} END)"))
        value = f"(CASE {' '.join(f'WHEN _k{i} = {k} THEN _c{i}' for i in range(m))} END)"
        cols.append((f"_v{k + 1}", ctx.round(value, 1)))
    q.extend("explain_c", cols)
    # The text is built once per combination of (top contributions, np.round(gap, 1), next tier,
    # state) — few of them — and joined back, as the numpy engine builds it once per combination
    # from the combination's first row. That row's gap gives the digits: a gap that '%.1f' and
    # np.round(·, 1) read differently (0.8500000000000001: "0.9" vs 0.8) shows for the whole
    # combination when it comes first. With the input order known, so does this; without it the
    # rounded gap is shown (the same for every order).
    group, order = first_by if first_by is not None else (None, None)
    state = "(CASE WHEN _gap IS NULL THEN 0 WHEN _gap > 0 THEN 1 ELSE 2 END)"
    q.extend("explain_d", [("_gk", f"COALESCE({ctx.round('_gap', 1)}, -1e0)"), ("_state", state)])
    key = ([ctx.q(group)] if group else []) + [f"top{k + 1}" for k in range(top)] \
        + [f"_v{k + 1}" for k in range(top)] + ["_gk", "_next", "_state"]
    shown = d.arg_min("_gap", ctx.q(order)) if order else "MIN(_gk)"
    combos = f"explain_texts_{len(q.ctes)}"
    q.ctes.append((combos, f"SELECT {', '.join(key)}, {shown} AS _g FROM {q.last} GROUP BY {', '.join(key)}"))
    blocker = ["gate" if x.gate else "rule" for x in tiers]
    parts = f" || {ctx.text(', ')} || ".join(f"top{k + 1} || {ctx.text(' +')} || {d.fmt1(f'_v{k + 1}')}"
                                              for k in range(top))
    suffix = (f"(CASE _state WHEN 0 THEN '' "
              f"WHEN 1 THEN {ctx.text('; ')} || {d.fmt1('_g')} || {ctx.text(' points short of ')} || "
              f"{ctx.texts('_next', [x.id for x in tiers])} "
              f"ELSE {ctx.text('; score reaches ')} || {ctx.texts('_next', [x.id for x in tiers])} || "
              f"{ctx.text(' but its ')} || {ctx.texts('_next', blocker)} || {ctx.text(' fails')} END)")
    texts = f"explain_text_{len(q.ctes)}"
    q.ctes.append((texts, f"SELECT {', '.join(key)}, ({parts} || {suffix}) AS _text FROM {combos}"))
    on = " AND ".join(f"p.{k} = {texts}.{k}" for k in key)
    q.extend("explained", [("_explanation", f"{texts}._text")], f" LEFT JOIN {texts} ON {on}")
    return ([(f"top{k + 1}", f"top{k + 1}") for k in range(top)]
            + [("points_to_next_tier", ctx.round("_gap", 6)), ("explanation", "_explanation")])


# ------------------------------------------------------------------------------------------------
# the whole scheme
# ------------------------------------------------------------------------------------------------

def _check(scheme: Scheme, columns: Iterable[str]) -> None:
    from .grading import MissingInputs

    missing = sorted(scheme.inputs() - set(columns))
    if missing:
        raise MissingInputs(f"error: the scheme ({scheme.id}) reads {', '.join(missing)}, which the relation "
                            f"{REL} does not have. Nothing was graded.")


def _base(ctx: _Ctx, q: _Query, columns: list[str], keep: list[str], group: str | None) -> None:
    wanted = set(ctx.scheme.inputs()) | {spec.column or i for i, spec in ctx.scheme.indicators.items()
                                         if spec.rubric is None}
    cols = list(dict.fromkeys(keep + [c for c in columns if c in wanted]))
    where = [ctx.cond(ctx.scheme.eligible)] if ctx.scheme.eligible else []
    if group:
        where.append(f"{ctx.q(group)} IS NOT NULL")  # pandas' groupby leaves rows without a group out
    q.add("base", f"SELECT {', '.join(ctx.q(c) for c in cols)} FROM {REL}"
                  + (f" WHERE {' AND '.join(where)}" if where else ""))


def compile_scheme(scheme: Scheme, columns: list[str], d: Dialect = DUCKDB, *, group_col: str | None = None,
                   order_col: str | None = None, kinds: dict[str, str] | None = None) -> str:
    """One SELECT over ``snap`` (one row per customer, with ``columns``) grading every eligible row.

    ``group_col``: the column of the group (product line) of each row; quantile bands are then
    computed per group and rows come out by group (``group_by`` schemes), as the pipeline grades
    them. ``order_col``: an integer column giving the input order (rows come out in it; without it
    the order is the engine's). ``kinds``: column → "number" / "text" / "bool" (what conditions need
    to compare like pandas; default: written as is)."""
    _check(scheme, columns)
    ctx = _Ctx(d, scheme, dict(kinds or {}))
    q = _Query(d)
    keep = ["customer_id"] + [c for c in (group_col, order_col) if c]
    _base(ctx, q, list(columns), keep, group_col)
    for name, classes in scheme.axes.items():  # one layer per axis: later axes may read earlier ones
        q.extend(f"axis_{len(q.ctes)}", [(AX + name, _first_match(ctx, [(c.when, ctx.text(c.id)) for c in classes]))])
    points_layer(ctx, q, group_col if scheme.group_by else None)
    score_layers(ctx, q)
    tier_layers(ctx, q)
    rank = override_layers(ctx, q)
    explanation = explain_layers(ctx, q, ((group_col if scheme.group_by else None), order_col) if order_col else None)

    tiers = scheme.tiers
    ids = [x.id for x in tiers]
    out = [("customer_id", ctx.q("customer_id"))]
    if group_col:
        out.append(("group", ctx.q(group_col)))
    out += [(name, ctx.q(AX + name)) for name in scheme.axes]
    for ind, spec in scheme.indicators.items():
        if spec.rubric is None:
            out.append((ind, ctx.q(spec.column or ind)))
        out.append((PTS + ind, ctx.q(PTS + ind)))
    if scheme.scored:
        out += [(DIM + dn, ctx.q(DIM + dn)) for dn in scheme.dimensions]
        if scheme.adjustments:
            out.append(("adjustments", "_adjustments"))
    out += [("score", "_score"), ("raw_tier", ctx.texts("_raw", ids)), ("gates_failed", "_gates_failed"),
            ("overrides", f"_o{len(scheme.overrides)}"), ("tier", ctx.texts(rank, ids)), ("tier_rank", rank),
            ("tier_label", ctx.texts(rank, [x.label or x.id for x in tiers]))]
    out += subgrade_columns(ctx, rank)
    days = [str(x.strategy.follow_up_days) if x.strategy.follow_up_days is not None else "NULL" for x in tiers]
    out += [("strategy", ctx.texts(rank, ["; ".join(x.strategy.actions) for x in tiers])),
            ("follow_up_days", f"CAST({ctx.pick(rank, days)} AS BIGINT)"),
            ("owner", ctx.texts(rank, [x.strategy.owner for x in tiers]))]
    out += explanation
    order = [c for c in ((group_col if scheme.group_by else None), order_col) if c]
    final = (f"SELECT {', '.join(f'{e} AS {ctx.q(a)}' for a, e in out)} FROM {q.last}"
             + (f" ORDER BY {', '.join(ctx.q(c) for c in order)}" if order else ""))
    return q.sql(final)


def compile_ineligible(scheme: Scheme, columns: list[str], d: Dialect = DUCKDB, *, group_col: str | None = None,
                       order_col: str | None = None, kinds: dict[str, str] | None = None) -> str:
    """The customers ``eligible`` leaves out (``Grading.ineligible``): customer_id, in input order."""
    ctx = _Ctx(d, scheme, dict(kinds or {}))
    where = [f"NOT {ctx.cond(scheme.eligible)}" if scheme.eligible else "FALSE"]
    if group_col and scheme.group_by:
        where.append(f"{ctx.q(group_col)} IS NOT NULL")
    order = [c for c in ((group_col if scheme.group_by else None), order_col) if c]
    return (f"SELECT {ctx.q('customer_id')} FROM {REL} WHERE {' AND '.join(where)}"
            + (f" ORDER BY {', '.join(ctx.q(c) for c in order)}" if order else ""))


# ------------------------------------------------------------------------------------------------
# pandas in, pandas out (DuckDB)
# ------------------------------------------------------------------------------------------------

ROW = "__row"


def column_kinds(frame: pd.DataFrame) -> dict[str, str]:
    out = {}
    for c in frame.columns:
        dt = frame[c].dtype
        out[c] = ("bool" if pd.api.types.is_bool_dtype(dt) else
                  "number" if pd.api.types.is_numeric_dtype(dt) else "text")
    return out


def _to_pandas(table) -> pd.DataFrame:
    """Arrow → pandas without a Python object per text value (strings stay Arrow-backed)."""
    import pyarrow as pa

    mapper = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype(), pa.string_view(): pd.StringDtype(),
              pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype()}.get
    return table.to_pandas(types_mapper=mapper, split_blocks=True)


def grade_sql(frame: pd.DataFrame, scheme: Scheme, *, as_of=None, con=None) -> pd.DataFrame:
    """Grade a pandas frame (one row per customer) with the compiled SQL, in DuckDB.

    Returns the same columns and values as ``grading.grade(frame, scheme).frame`` (text columns as
    plain strings). With a ``group`` column and a ``group_by`` scheme, each group is graded on its own
    (quantiles per group), as the pipeline does. The customers ``eligible`` leaves out are in
    ``result.attrs["ineligible"]``."""
    import duckdb

    from .grading import check_inputs

    check_inputs(frame, scheme)
    group = "group" if "group" in frame.columns else None
    needed = set(scheme.inputs()) | {spec.column or i for i, spec in scheme.indicators.items() if spec.rubric is None}
    cols = list(dict.fromkeys(["customer_id"] + ([group] if group else []) + [c for c in frame.columns if c in needed]))
    slim = pd.DataFrame({**{c: frame[c].to_numpy() if isinstance(frame[c].dtype, np.dtype) else frame[c].array
                            for c in cols}, ROW: np.arange(len(frame), dtype=np.int64)})
    kinds = column_kinds(slim)
    sql = compile_scheme(scheme, cols + [ROW], DUCKDB, group_col=group, order_col=ROW, kinds=kinds)
    inel_sql = compile_ineligible(scheme, cols + [ROW], DUCKDB, group_col=group, order_col=ROW, kinds=kinds)
    own = con is None
    con = con or duckdb.connect()
    try:
        con.register(REL, slim)
        result = _to_pandas(con.sql(sql).to_arrow_table())
        inel = _to_pandas(con.sql(inel_sql).to_arrow_table())
        con.unregister(REL)
    finally:
        if own:
            con.close()
    result.attrs["ineligible"] = inel
    result.attrs["as_of"] = pd.Timestamp(as_of) if as_of is not None else None
    result.attrs["sql"] = sql
    return result
