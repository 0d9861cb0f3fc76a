"""Schemes compiled to SQL: the grading engine's computing, as one SELECT.

Public: points_table, band_index, quantile_edges, quantile_index, map_index, rubric_index, points_layer,
score_layers, tier_layers, override_layers, subgrade_index, read_columns, code_columns, compile_scheme,
compile_ineligible, compile_points, column_kinds.
Reads: nothing. Writes: nothing.

:func:`compile_scheme` turns a :class:`~segment.grading.scheme.Scheme` into one query (a chain of CTEs, one
layer per concept) over a relation ``snap`` holding one row per customer. The query returns numbers
and small integer codes per graded row — points and their band index per indicator, dimension
scores, the score, the raw / gated / final tier rank, which gates failed, which adjustments applied,
the rank after each override, the sub-grade — and :func:`segment.grading.engine.decode` turns those codes
into the grading's text columns (tier ids, labels, strategies, override notes, explanations) once
per distinct combination, never once per customer. The same SQL runs on DuckDB and Spark SQL through
:class:`segment.plumbing.sql.Dialect`:

* every condition comes from the parsed tree (:meth:`Condition.to_sql`); indicator names reach the
  SQL only quoted (``d.q``), analysts' text (ids, category keys) only as escaped literals
  (``d.text``) — never pasted;
* the floating-point operations are those the numpy engine used (weighted sums left to right,
  ``np.round`` as ``rint(x · 10ⁿ) / 10ⁿ``, quantiles by numpy's linear interpolation from the ranked
  values), so scores are bit-identical to the gradings frozen before the switch (tests/reference).

Layers, in order (each reads the previous one): ``base`` (eligible rows, the columns the scheme
reads) → one layer per axis → quantile edges (per group) → ``points`` (band index, points) →
``dims`` → ``scored`` (score factor, adjustments, rounding) → ``tiers_a`` (cut-off/rule and gate per
tier) → ``tiers_b`` (raw and gated rank, failed gates) → two layers per override → the final SELECT.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from segment.errors import MissingInputs
from segment.grading.conditions import parse, sql_number
from segment.grading.scheme import Indicator, Scheme
from segment.plumbing.sql import DUCKDB, Dialect

REL = "snap"  # the relation compiled SQL reads
PTS, DIM, AX, IDX = "pts__", "dim__", "ax__", "idx__"
ROW = "__row"  # the input order (pandas frames)


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


def _first_match(ctx: _Ctx, conditions: list[str | None]) -> str:
    """Index of the first condition that holds; a ``None`` condition always holds; none → the last."""
    whens = [f"WHEN {ctx.cond(c)} THEN {j}" for j, c in enumerate(conditions[:-1]) if c is not None]
    last = len(conditions) - 1
    return f"(CASE {' '.join(whens)} ELSE {last} END)" if whens else str(last)


def _bits(conds: list[str]) -> str:
    """An integer with bit j set where condition j holds (0 when there are none)."""
    if len(conds) > 62:
        raise ValueError("more than 62 flags do not fit one code")
    return " + ".join(f"(CASE WHEN {c} THEN {1 << j} ELSE 0 END)" for j, c in enumerate(conds)) or "0"


# ------------------------------------------------------------------------------------------------
# points: a band index per indicator (the last index: missing points), then the points
# ------------------------------------------------------------------------------------------------

def points_table(spec: Indicator) -> list[float]:
    """The points of each band index of an indicator; the last entry is ``missing_points``."""
    if spec.rubric is not None:
        pts = [r.points for r in spec.rubric]
    elif spec.map is not None:
        pts = list(spec.map.values())
    elif spec.quantiles is not None:
        pts = list(spec.points)
    else:
        pts = [b.points for b in spec.bands]
    return [float(x) for x in pts] + [float(spec.missing_points)]


def _value(ctx: _Ctx, column: str) -> str:
    """An indicator's column as DOUBLE, like ``pd.to_numeric(errors='coerce')``."""
    if ctx.kinds.get(column) == "text":
        return ctx.d.try_double(ctx.q(column))
    return f"CAST({ctx.q(column)} AS DOUBLE)"


def band_index(ctx: _Ctx, spec: Indicator, column: str) -> str:
    """Fixed bands [from, below): the last band whose ``from`` the value reaches; outside → missing."""
    x, bands = _value(ctx, column), spec.bands
    miss = len(bands)
    whens = [f"WHEN {x} IS NULL THEN {miss}"]
    if bands[0].lower is not None:
        whens.append(f"WHEN {x} < {sql_number(bands[0].lower)} THEN {miss}")
    if bands[-1].below is not None:
        whens.append(f"WHEN {x} >= {sql_number(bands[-1].below)} THEN {miss}")
    for j in range(len(bands) - 1, 0, -1):
        whens.append(f"WHEN {x} >= {sql_number(bands[j].lower)} THEN {j}")
    return f"(CASE {' '.join(whens)} ELSE 0 END)"


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


def quantile_index(ctx: _Ctx, spec: Indicator, column: str, edges: str) -> str:
    """The bin the value falls in: the number of thresholds at or below it (searchsorted right)."""
    x = _value(ctx, column)
    whens = [f"WHEN {x} IS NULL THEN {len(spec.points)}"]
    for k in reversed(range(len(spec.quantiles))):
        whens.append(f"WHEN {x} >= {edges}.e{k} THEN {k + 1}")
    return f"(CASE {' '.join(whens)} ELSE 0 END)"


def map_index(ctx: _Ctx, spec: Indicator, column: str) -> str:
    """Category → its place in the map; anything else (or missing) → missing."""
    x = ctx.q(column) if ctx.kinds.get(column) == "text" else f"CAST({ctx.q(column)} AS STRING)"
    whens = " ".join(f"WHEN {ctx.text(k)} THEN {j}" for j, k in enumerate(spec.map))
    return f"(CASE {x} {whens} ELSE {len(spec.map)} END)" if whens else str(len(spec.map))


def rubric_index(ctx: _Ctx, spec: Indicator) -> str:
    """The first rubric row whose condition holds; none → missing."""
    return _first_match(ctx, [r.when for r in spec.rubric] + [None])


def points_layer(ctx: _Ctx, q: _Query, group: str | None) -> None:
    joins, idx = [], []
    for ind, spec in ctx.scheme.indicators.items():
        column = spec.column or ind
        if spec.rubric is not None:
            expr = rubric_index(ctx, spec)
        elif spec.map is not None:
            expr = map_index(ctx, spec, column)
        elif spec.quantiles is not None:
            src = q.last
            edges = quantile_edges(ctx, q, ind, spec, column, group)
            q.last = src
            on = f"p.{ctx.q(group)} = {edges}.{ctx.q(group)}" if group else "TRUE"
            joins.append(f" LEFT JOIN {edges} ON {on}")
            expr = quantile_index(ctx, spec, column, edges)
        else:
            expr = band_index(ctx, spec, column)
        idx.append((IDX + ind, expr))
    q.extend("bands", idx, "".join(joins))
    q.extend("points", [(PTS + ind, ctx.pick(ctx.q(IDX + ind), [sql_number(x) for x in points_table(spec)]))
                        for ind, spec in ctx.scheme.indicators.items()])


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
    """Dimension scores, the total × score factor × adjustments, rounded to 9 decimals like numpy;
    ``_adj``: which adjustments applied (bit j: adjustment j)."""
    s, d = ctx.scheme, ctx.d
    if not s.scored:
        q.extend("scored", [("_score", "CAST(NULL AS DOUBLE)"), ("_adj", "0")])
        return
    q.extend("dims", [(DIM + dn, _weighted_sum([(w, d.q(PTS + i)) for i, w in dim.indicators.items()]))
                      for dn, dim in s.dimensions.items()])
    q.extend("adjusted", [("_adj", _bits([ctx.cond(a.when) for a in s.adjustments]))])
    total = f"({_weighted_sum([(dim.weight, d.q(DIM + dn)) for dn, dim in s.dimensions.items()])} " \
            f"* {sql_number(s.score_factor)})"
    for j, a in enumerate(s.adjustments):
        total = f"({total} * (CASE WHEN (_adj & {1 << j}) <> 0 THEN {sql_number(a.multiply)} ELSE 1e0 END))"
    q.extend("scored", [("_score", ctx.round(total, 9))])


# ------------------------------------------------------------------------------------------------
# tiers
# ------------------------------------------------------------------------------------------------

def tier_layers(ctx: _Ctx, q: _Query) -> None:
    """Per tier above the floor: cut-off and stage rule (``_b{j}``), gate (``_g{j}``); then the raw
    tier (first ``_b``), the gated tier ``_r0`` (first ``_b`` and ``_g``) and ``_gf``, the gates that
    held it back (bit j: tier j's cut-off and rule were met, its gate failed)."""
    s, tiers = ctx.scheme, ctx.scheme.tiers
    t = len(tiers)
    cols = []
    for j, tier in enumerate(tiers[:-1]):
        parts = []
        if s.scored and tier.min_score is not None:
            parts.append(f"COALESCE(_score >= {sql_number(tier.min_score)}, FALSE)")
        if tier.has_rule:
            parts.append(ctx.cond(tier.rule_text()))
        cols.append((f"_b{j}", " AND ".join(parts) or "TRUE"))
        cols.append((f"_g{j}", ctx.cond(tier.gate) if tier.gate else "TRUE"))
    q.extend("tiers_a", cols)

    def first(pred) -> str:
        whens = " ".join(f"WHEN {pred(j)} THEN {j}" for j in range(t - 1))
        return f"(CASE {whens} ELSE {t - 1} END)" if whens else str(t - 1)

    q.extend("tiers_b", [("_raw", first(lambda j: f"_b{j}")), ("_r0", first(lambda j: f"_b{j} AND _g{j}"))])
    gated = [j for j, tier in enumerate(tiers[:-1]) if tier.gate]
    q.extend("tiers_c", [("_gf", " + ".join(f"(CASE WHEN _r0 > {j} AND _b{j} AND NOT _g{j} THEN {1 << j} ELSE 0 END)"
                                            for j in gated) or "0")])


def override_layers(ctx: _Ctx, q: _Query) -> str:
    """Overrides in order, each a pair of layers: the bounded new rank, then the rank ``_r{k}``
    (changed only where the rule holds). A ``propose`` rule keeps the rank; ``_prop`` (bit j: the
    j-th propose rule) marks where it holds and its ``to`` tier is above the final tier."""
    tiers = ctx.scheme.tiers
    t = len(tiers)
    pos = {x.id: i for i, x in enumerate(tiers)}
    rank = "_r0"
    proposals = []
    for k, rule in enumerate(ctx.scheme.overrides, start=1):
        if rule.action == "propose":
            q.extend(f"override_{k}a", [(f"_h{k}", ctx.cond(rule.when))])
            q.extend(f"override_{k}b", [(f"_r{k}", rank)])
            rank = f"_r{k}"
            proposals.append((k, pos[rule.to]))
            continue
        step = rule.by if rule.action == "demote" else -rule.by
        new = f"GREATEST(LEAST({rank} + ({step}), {t - 1}), 0)"
        if rule.not_below is not None and step > 0:
            new = f"LEAST({new}, GREATEST({rank}, {pos[rule.not_below]}))"
        if rule.not_above is not None and step < 0:
            new = f"GREATEST({new}, LEAST({rank}, {pos[rule.not_above]}))"
        q.extend(f"override_{k}a", [(f"_n{k}", new), (f"_h{k}", ctx.cond(rule.when))])
        q.extend(f"override_{k}b", [(f"_r{k}", f"(CASE WHEN _h{k} THEN _n{k} ELSE {rank} END)")])
        rank = f"_r{k}"
    if proposals:
        q.extend("proposals", [("_prop", _bits([f"(_h{k} AND {rank} > {to})" for k, to in proposals]))])
    return rank


def subgrade_index(ctx: _Ctx, rank: str) -> str | None:
    """The first sub-grade of the final tier whose condition holds (its index; NULL: no sub-grades)."""
    tiers = ctx.scheme.tiers
    if not any(x.subgrades for x in tiers):
        return None
    per_tier = [_first_match(ctx, [s.when for s in x.subgrades]) if x.subgrades else "NULL" for x in tiers]
    return ctx.pick(rank, per_tier)


# ------------------------------------------------------------------------------------------------
# the whole scheme
# ------------------------------------------------------------------------------------------------

def _check(scheme: Scheme, columns: Iterable[str]) -> None:

    missing = sorted(scheme.inputs() - set(columns))
    if missing:
        raise MissingInputs(f"the scheme ({scheme.id}) reads {', '.join(missing)}, which the relation "
                            f"{REL} does not have. Nothing was graded.")


def read_columns(scheme: Scheme) -> set[str]:
    """Every snapshot column grading with ``scheme`` reads (conditions and indicator values)."""
    return set(scheme.inputs()) | {spec.column or i for i, spec in scheme.indicators.items() if spec.rubric is None}


def _base(ctx: _Ctx, q: _Query, columns: list[str], keep: list[str], group: str | None) -> None:
    wanted = read_columns(ctx.scheme)
    cols = list(dict.fromkeys(keep + [c for c in columns if c in wanted]))
    where = [ctx.cond(ctx.scheme.eligible)] if ctx.scheme.eligible else []
    if group:
        where.append(f"{ctx.q(group)} IS NOT NULL")  # rows without a group are not graded
    q.add("base", f"SELECT {', '.join(ctx.q(c) for c in cols)} FROM {REL}"
                  + (f" WHERE {' AND '.join(where)}" if where else ""))


def code_columns(scheme: Scheme) -> list[str]:
    """The columns :func:`compile_scheme` returns besides customer_id, group, order and values: band
    index per axis and indicator, dimension scores, score, adjustment and failed-gate bits, ranks,
    sub-grade (the points are ``points_table(spec)[index]``)."""
    out = [IDX + n for n in scheme.axes] + [IDX + i for i in scheme.indicators]
    if scheme.scored:
        out += [DIM + dn for dn in scheme.dimensions]
    out += ["_score", "_adj", "_raw", "_r0", "_gf"] + [f"_r{k}" for k in range(1, len(scheme.overrides) + 1)]
    if any(o.action == "propose" for o in scheme.overrides):
        out.append("_prop")
    if any(x.subgrades for x in scheme.tiers):
        out.append("_sg")
    return out


def compile_scheme(scheme: Scheme, columns: list[str], d: Dialect = DUCKDB, *, group_col: str | None = None,
                   order_col: str | None = None, kinds: dict[str, str] | None = None, values: bool = True) -> str:
    """One SELECT over ``snap`` (one row per customer, with ``columns``) grading every eligible row.

    Returns customer_id, the group and order columns when given, the indicators' values (``values``)
    and :func:`code_columns`. ``group_col``: the column of the group (product line) of each row;
    quantile bands are then computed per group (``group_by`` schemes). ``order_col``: a column
    passed through (the input order; the rows come out in the engine's order). ``kinds``: column →
    "number" / "text" / "bool" (what conditions need to compare like pandas)."""
    _check(scheme, columns)
    ctx = _Ctx(d, scheme, dict(kinds or {}))
    q = _Query(d)
    keep = ["customer_id"] + [c for c in (group_col, order_col) if c]
    _base(ctx, q, list(columns), keep, group_col)
    for name, classes in scheme.axes.items():  # one layer per axis: later axes may read earlier ones
        idx = _first_match(ctx, [c.when for c in classes])
        q.extend(f"axis_{len(q.ctes)}", [(IDX + name, idx)])
        q.extend(f"axis_{len(q.ctes)}", [(AX + name, ctx.pick(ctx.q(IDX + name), [ctx.text(c.id) for c in classes]))])
    points_layer(ctx, q, group_col if scheme.group_by else None)
    score_layers(ctx, q)
    tier_layers(ctx, q)
    rank = override_layers(ctx, q)
    sub = subgrade_index(ctx, rank)
    if sub is not None:
        q.extend("subgrades", [("_sg", sub)])
    out = [c for c in keep]
    if values:
        out += list(dict.fromkeys(spec.column or ind for ind, spec in scheme.indicators.items() if spec.rubric is None))
    out += code_columns(scheme)
    small = {IDX + n for n in scheme.axes} | {IDX + i for i in scheme.indicators} | \
        {"_raw", "_r0", "_sg"} | {f"_r{k}" for k in range(1, len(scheme.overrides) + 1)}
    return q.sql("SELECT " + ", ".join(f"CAST({ctx.q(c)} AS SMALLINT) AS {ctx.q(c)}" if c in small else ctx.q(c)
                                       for c in out) + f" FROM {q.last}")


def compile_ineligible(scheme: Scheme, columns: list[str], d: Dialect = DUCKDB, *, group_col: str | None = None,
                       order_col: str | None = None, kinds: dict[str, str] | None = None) -> str:
    """The customers ``eligible`` leaves out (``Grading.ineligible``): customer_id (and the order column)."""
    ctx = _Ctx(d, scheme, dict(kinds or {}))
    where = [f"NOT {ctx.cond(scheme.eligible)}" if scheme.eligible else "FALSE"]
    if group_col:
        where.append(f"{ctx.q(group_col)} IS NOT NULL")
    cols = ["customer_id"] + [c for c in (group_col, order_col) if c]
    return f"SELECT {', '.join(ctx.q(c) for c in cols)} FROM {REL} WHERE {' AND '.join(where)}"


def compile_points(spec: Indicator, column: str, kinds: dict[str, str], d: Dialect = DUCKDB) -> str:
    """The band index of one indicator for every row of ``snap`` (column ``_i``), in input order
    (``ROW``): what :func:`segment.grading.engine.indicator_points` shows for a single indicator."""
    from types import SimpleNamespace

    one = SimpleNamespace(axes={}, indicators={"x": spec}, eligible=None, inputs=lambda: set())
    ctx = _Ctx(d, one, dict(kinds))
    q = _Query(d)
    q.add("base", f"SELECT * FROM {REL}")
    points_layer(ctx, q, None)
    return q.sql(f"SELECT {ctx.q(ROW)}, {ctx.q(IDX + 'x')} AS _i FROM {q.last}")


def column_kinds(frame) -> dict[str, str]:
    """Each column of a pandas frame as conditions compare it: "bool", "number" or "text"."""
    import pandas as pd

    out = {}
    for c in frame.columns:
        dt = frame[c].dtype
        out[c] = ("bool" if pd.api.types.is_bool_dtype(dt) else
                  "number" if pd.api.types.is_numeric_dtype(dt) else "text")
    return out
