"""The grading engine: snapshot × scheme → points, scores, tiers, gates, overrides, explanations.

Public: row_key, indicator_points, Grading, absent_optional, check_inputs, duckdb_column, grade, grade_spark, decode,
read_designations, apply_designations.
Reads: a designations file (apply_designations). Writes: nothing.

The computing is SQL: :func:`segment.grading.compiler.compile_scheme` turns the scheme into one query, which
runs in DuckDB over a pandas frame (:func:`grade`) or on Spark over a Spark DataFrame
(:func:`grade_spark`). The engine knows no scheme by name. Order of work for one population:

1. ``eligible`` — customers failing it are not graded (``Grading.ineligible``);
2. ``axes`` — classifications (first match), usable by every later condition;
3. points per indicator (bands, quantiles of this population or of each group, category map, rubric);
4. score = score_factor × Σ dimension weight × Σ indicator weight × points, × adjustments;
5. tier = the first tier whose cut-off, gate and stage rule hold (the last tier is the floor);
6. overrides in order (promote / demote, bounded; propose lists the customer in ``proposal`` for a
   designation and moves nothing); 7. sub-grade of the final tier;
8. explanation (with any proposal); manual designations come last (``apply_designations``).

The query returns small integer codes (band index per indicator, ranks, failed-gate and adjustment
bits, sub-grade); :func:`decode` turns them into the grading's columns. Text is never built per
customer: every text column is a categorical whose texts are written once per distinct code, and
the explanation once per distinct combination of bands, adjustments and tier."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from segment.errors import MissingInputs, MissingOptional
from segment.grading.scheme import Indicator, Scheme
from segment.grading.published import HISTORY_INDICATORS, warn_no_history, with_history
from segment.plumbing.result import Result

PTS = "pts__"   # column prefix: an indicator's points


DIM = "dim__"   # column prefix: a dimension's score (on the indicators' point scale)


TEXT_COLUMNS = ("raw_tier", "gates_failed", "adjustments", "overrides", "tier", "tier_label", "subgrade",
                "subgrade_label", "strategy", "owner", "explanation", "top1", "top2", "top3", "designation", "proposal")


def row_key(*frames: pd.DataFrame) -> list[str]:
    """The columns that identify a graded row: (customer_id, group) for gradings per group (S8's
    product lines), else customer_id — the one grading key of history, review and reports."""
    return ["customer_id", "group"] if frames and all("group" in f.columns for f in frames) else ["customer_id"]


def indicator_points(values: pd.Series | None, spec: Indicator, frame: pd.DataFrame | None = None) -> np.ndarray:
    """Points of one indicator for every row of ``values`` (``frame``: the columns a rubric reads),
    computed by the grading engine's SQL."""
    import duckdb

    from segment.grading.compiler import (
        REL,
        ROW,
        column_kinds,
        compile_points,
        points_table,
    )

    data = {} if frame is None else {c: frame[c].to_numpy() if isinstance(frame[c].dtype, np.dtype) else frame[c].array
                                     for c in frame.columns}
    n = len(frame) if values is None else len(values)
    if values is not None:
        data[spec.column or "x"] = values.to_numpy() if isinstance(values.dtype, np.dtype) else values.array
    slim = pd.DataFrame({**data, ROW: np.arange(n, dtype=np.int64)})
    with duckdb.connect() as con:
        con.register(REL, slim)
        idx = con.sql(compile_points(spec, spec.column or "x", column_kinds(slim)) + f" ORDER BY {ROW}").fetchnumpy()["_i"]
    return np.asarray(points_table(spec))[np.asarray(idx, dtype=np.intp)]


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


class Grading(Result):
    """A graded population. ``frame`` has one row per graded customer (per group for grouped schemes).

    A scored scheme's explanation columns (``top1``–``top3``, ``points_to_next_tier``, ``explanation``)
    are computed from the grading's codes the first time ``frame`` is read (a calibration panel, for
    one, never reads them): ``core`` is the frame without them until then."""

    def __init__(self, frame: pd.DataFrame, scheme: Scheme, as_of: pd.Timestamp,
                 ineligible: pd.DataFrame | None = None, lost: int = 0, band_counts: dict | None = None, *,
                 explain=None):
        self._frame = frame
        self._explain = explain  # () → {column: values} appended to the frame on first read
        self.scheme = scheme
        self.as_of = as_of
        self.ineligible = ineligible if ineligible is not None else pd.DataFrame(columns=["customer_id"])
        self.lost = lost  # customers left out because the CRM marks them lost (segment.grade)
        self.band_counts = band_counts if band_counts is not None else {}  # fixed-band indicator → per band

    @property
    def frame(self) -> pd.DataFrame:
        if self._explain is not None:
            explain, self._explain = self._explain, None
            for name, values in explain().items():
                self._frame[name] = values
        return self._frame

    @frame.setter
    def frame(self, value: pd.DataFrame) -> None:
        self._frame, self._explain = value, None

    @property
    def core(self) -> pd.DataFrame:
        """The frame as far as it is built: every column but the explanations not yet read."""
        return self._frame

    def __repr__(self) -> str:
        return f"Grading({self.scheme.id}, as of {self.as_of}, {len(self._frame):,} rows)"

    def warnings(self, share: float = 0.99) -> list[str]:
        """Fixed bands that do not spread the customers: ``share`` or more of those with a value fall in
        the lowest or the highest band — the signature of a wrong unit or scale (amounts in 万元
        without ``amount_unit``, a survey on 0–100 read as 0–10, shares written as percents)."""
        out = []
        for ind, counts in self.band_counts.items():
            spec = self.scheme.indicators[ind]
            known = counts[:-1]
            n = int(known.sum())
            if n < 20 or len(known) < 2:
                continue
            for j, where in ((0, "lowest"), (len(known) - 1, "highest")):
                if known[j] >= share * n:
                    b = spec.bands[j]
                    rng = (f"below {b.below:g}" if b.lower is None else f"{b.lower:g} or more" if b.below is None
                           else f"{b.lower:g} to {b.below:g}")
                    out.append(f"{ind}: {known[j] / n:.0%} of the {n:,} customers with a value fall in its {where} "
                               f"band ({rng}), so it does not separate them: if the source is in another unit or "
                               "scale, fix that (amounts in 万元 need `amount_unit: 10000`; a 0–100 survey is not a "
                               "0–10 one); otherwise the bands may not fit this data")
        return out

    def tier_counts(self) -> pd.DataFrame:
        t = [x.id for x in self.scheme.tiers]
        counts = self.frame["tier"].value_counts().reindex(t, fill_value=0)
        labels = {x.id: x.label or x.id for x in self.scheme.tiers}
        out = pd.DataFrame({"tier": t, "label": [labels[i] for i in t], "customers": counts.to_numpy()})
        out["share"] = (out["customers"] / max(len(self.frame), 1)).round(4)
        return out

    def table(self) -> pd.DataFrame:
        return self.tier_counts()

    def summary(self) -> str:
        counts = ", ".join(f"{r.tier} {r.customers:,}" for r in self.tier_counts().itertuples())
        return f"{len(self._frame):,} rows graded with {self.scheme.id} at {self.as_of:%Y-%m-%d}: {counts}"


def absent_optional(columns, scheme: Scheme, source: str = "the scheme") -> list[str]:
    """The scheme's ``optional`` inputs the snapshot lacks, with one warning naming them and what it
    changes (they are graded as missing: their indicators score ``missing_points``, conditions on them
    are false)."""
    absent = [n for n in scheme.optional if n not in set(columns)]
    if absent:
        one = len(absent) == 1
        it, them = ("it", "it is") if one else ("them", "they are")
        warnings.warn(f"{source} ({scheme.id}): the data does not provide {', '.join(absent)} (optional in this "
                      f"scheme), so {them} graded as missing: the points the scheme gives a missing value, and rules "
                      f"that test {it} do not hold (the scheme's header says what stands in). To grade on {it}, "
                      f"declare {it} in the data config; `segment indicators --data DATA.yaml` lists what the data "
                      "provides", MissingOptional, stacklevel=3)
    return absent


def check_inputs(snapshot: pd.DataFrame, scheme: Scheme, source: str = "the scheme") -> None:
    """Name every indicator the scheme reads that the snapshot lacks (its ``optional`` ones aside), and
    the table it comes from."""
    missing = sorted(scheme.inputs() - set(snapshot.columns) - set(scheme.optional))
    if not missing:
        return
    from segment.features.registry import INDICATORS

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
    raise MissingInputs(f"{source} ({scheme.id}) " + "; and ".join(parts) + ". Nothing was graded.")


def _slim(snapshot: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The columns grading reads and the row order, handed to DuckDB without copying."""
    from segment.grading.compiler import ROW

    data = {c: duckdb_column(snapshot[c]) for c in columns}
    return pd.DataFrame({**data, ROW: np.arange(len(snapshot), dtype=np.int64)}, copy=False)


def duckdb_column(col: pd.Series):
    """A column as DuckDB should see it: object columns by what they hold (numbers, booleans, text;
    all missing: numbers), so conditions compare them as pandas would."""
    if col.dtype != object:
        return col.to_numpy() if isinstance(col.dtype, np.dtype) else col.array
    kind = pd.api.types.infer_dtype(col, skipna=True)
    if kind in ("empty", "integer", "floating", "mixed-integer-float", "decimal"):
        return pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    if kind == "boolean":
        return pd.array(col, dtype="boolean")
    if kind == "string":
        return pd.array(col, dtype="string")
    return col.to_numpy()


def _fetch(con, sql: str, names: list[str], group: str | None) -> dict[str, np.ndarray]:
    """Columns ``names`` of a query's rows as numpy arrays, in the input order (``ROW``); grouped:
    by group, then input order."""
    from segment.grading.compiler import ROW

    if group:
        sql += f' ORDER BY "{group}", {ROW}'
    table = con.sql(sql).to_arrow_table()
    rows = table.column(ROW).to_numpy()
    order = None
    if not group and len(rows) > 1 and not bool((rows[1:] > rows[:-1]).all()):
        order = np.argsort(rows, kind="stable")
    out = {}
    for name in names:
        arr = table.column(name).to_numpy()
        out[name] = arr if order is None else arr[order]
    return out


def grade(snapshot: pd.DataFrame, scheme: Scheme, *, as_of=None, source: str | None = None) -> Grading:
    """Grade every row of ``snapshot`` (one row per customer; per customer and group when the scheme
    has ``group_by`` and the snapshot a ``group`` column) with ``scheme``. History indicators the
    snapshot does not carry (``segment.grading.published``) are missing, with a warning.

    The scheme's SQL (:func:`segment.grading.compiler.compile_scheme`) runs in DuckDB over the frame; the
    codes it returns become the grading's text columns in :func:`decode`. Rows keep the snapshot's
    order (grouped: by group, then the snapshot's order)."""
    import duckdb

    from segment.grading.compiler import (
        REL,
        ROW,
        code_columns,
        column_kinds,
        compile_ineligible,
        compile_scheme,
        read_columns,
    )

    if (scheme.inputs() & set(HISTORY_INDICATORS)) - set(snapshot.columns):   # a snapshot without its history
        snapshot = with_history(snapshot, scheme, as_of, None, source or "the scheme")
    check_inputs(snapshot, scheme, source or "the scheme")
    absent = absent_optional(snapshot.columns, scheme, source or "the scheme")
    if absent:
        snapshot = snapshot.assign(**{n: pd.Series(np.nan, index=snapshot.index, dtype="float64") for n in absent})
    as_of = pd.Timestamp(as_of) if as_of is not None else (
        pd.Timestamp(snapshot["as_of"].iloc[0]) if "as_of" in snapshot and len(snapshot) else pd.NaT)
    group = "group" if scheme.group_by and "group" in snapshot else None
    wanted = read_columns(scheme)
    cols = list(dict.fromkeys(["customer_id"] + ([group] if group else []) + [c for c in snapshot.columns if c in wanted]))
    slim = _slim(snapshot, cols)
    kinds = column_kinds(slim)
    with duckdb.connect() as con:
        con.register(REL, slim)
        codes = _fetch(con, compile_scheme(scheme, list(slim.columns), group_col=group, order_col=ROW, kinds=kinds,
                                           values=False), [ROW] + code_columns(scheme), group)
        ineligible = pd.DataFrame({"customer_id": pd.Series([], dtype="string")})
        if scheme.eligible:
            inel = _fetch(con, compile_ineligible(scheme, list(slim.columns), group_col=group, order_col=ROW,
                                                  kinds=kinds), [ROW], group)
            ineligible = pd.DataFrame({"customer_id": snapshot["customer_id"].array.take(inel[ROW])})
    rows = codes[ROW]
    values = {c: snapshot[c].array.take(rows) for c in
              ["customer_id"] + ([group] if group else [])
              + list(dict.fromkeys(spec.column or i for i, spec in scheme.indicators.items() if spec.rubric is None))}
    return decode(codes, values, scheme, as_of, ineligible)


def grade_spark(snapshot, scheme: Scheme, *, as_of=None, source: str | None = None) -> Grading:
    """:func:`grade` for a Spark DataFrame (one row per customer; per customer and group for
    ``group_by`` schemes): the same compiled SQL runs on Spark, and only the graded rows' codes and
    indicator values reach the driver (never the snapshot's other columns). Rows come out by group,
    then customer id."""
    from segment.grading.compiler import (
        REL,
        code_columns,
        compile_ineligible,
        compile_scheme,
    )
    from segment.plumbing.sql import SPARK

    history = sorted((scheme.inputs() & set(HISTORY_INDICATORS)) - set(snapshot.columns))
    if history:   # a snapshot without its history: missing, with the warning grade() gives
        from pyspark.sql import functions

        warn_no_history(scheme, as_of, None, source or "the scheme")
        for name in history:
            kind = HISTORY_INDICATORS[name].dtype
            snapshot = snapshot.withColumn(name, functions.lit(0).cast("long") if kind == "int64" else
                                           functions.lit(None).cast("string" if kind == "string" else "double"))
    check_inputs(pd.DataFrame(columns=list(snapshot.columns)), scheme, source or "the scheme")
    for name in absent_optional(snapshot.columns, scheme, source or "the scheme"):
        from pyspark.sql import functions

        snapshot = snapshot.withColumn(name, functions.lit(None).cast("double"))
    columns = list(snapshot.columns)
    kinds = {c: "bool" if t == "boolean" else "text" if t == "string" else "number" for c, t in snapshot.dtypes}
    group = "group" if scheme.group_by and "group" in columns else None
    spark = snapshot.sparkSession
    snapshot.createOrReplaceTempView(REL)
    by = ([group] if group else []) + ["customer_id"]
    rows = spark.sql(compile_scheme(scheme, columns, SPARK, group_col=group, kinds=kinds, values=True)).toPandas()
    rows = rows.sort_values(by, kind="stable").reset_index(drop=True)
    inel = pd.DataFrame({"customer_id": pd.Series([], dtype="string")})
    if scheme.eligible:
        inel = spark.sql(compile_ineligible(scheme, columns, SPARK, group_col=group, kinds=kinds)).toPandas()
        inel = inel.sort_values(by, kind="stable")[["customer_id"]].astype("string").reset_index(drop=True)
    codes = {c: rows[c].to_numpy() for c in code_columns(scheme)}
    values = {c: (rows[c].astype(pd.StringDtype()).array if pd.api.types.is_string_dtype(rows[c].dtype)
                  else rows[c].to_numpy()) for c in rows.columns if c not in codes}  # texts as DuckDB's: NA
    day = pd.Timestamp(as_of) if as_of is not None else pd.NaT
    return decode(codes, values, scheme, day, inel)


def decode(codes: dict[str, np.ndarray], values: dict[str, object], scheme: Scheme, as_of, ineligible) -> Grading:
    """The grading from the compiled SQL's codes (:func:`segment.grading.compiler.code_columns`) and the graded
    rows' customer id, group and indicator values (``values``, in the same row order): every text
    column is a categorical whose texts are written once per distinct code.

    Long because each code column becomes its text here, once per distinct code; the columns are decoded in
    the grading's column order."""
    from segment.grading.compiler import IDX, points_table

    n = len(codes["_r0"])
    out: dict[str, object] = {"customer_id": values["customer_id"]}
    if "group" in values:
        out["group"] = values["group"]
    for name, classes in scheme.axes.items():
        out[name] = pd.Categorical.from_codes(codes[IDX + name].astype(np.intp), [c.id for c in classes], validate=False)

    weights = scheme.weights()
    band_counts: dict[str, np.ndarray] = {}
    slots: dict[str, tuple[np.ndarray, int, np.ndarray]] = {}  # band index per row, table size, points table
    for ind, spec in scheme.indicators.items():
        if spec.rubric is None:
            out[ind] = values[spec.column or ind]
        table = np.asarray(points_table(spec))
        idx = codes[IDX + ind]
        slots[ind] = (idx, len(table), table)
        if spec.bands is not None:
            band_counts[ind] = np.bincount(np.asarray(idx, dtype=np.intp), minlength=len(table))
        out[PTS + ind] = table[idx]

    score = np.full(n, np.nan)
    state = k_state = score_s = pts_s = None
    if scheme.scored:
        # the score is a function of the indicators' bands and the adjustments that apply: one per
        # distinct combination ("state"), which the explanation reads
        adj = codes["_adj"].astype(np.int64)
        hits = [((adj >> j) & 1).astype(np.intp) for j in range(len(scheme.adjustments))]
        state, k_state, per_state = _codes([slots[i][:2] for i in weights] + [(h, 2) for h in hits], n)
        pts_s = {i: slots[i][2][v] for i, v in zip(weights, per_state)}
        first = np.full(k_state, n, dtype=np.intp)
        np.minimum.at(first, state, np.arange(n))
        score = codes["_score"].astype("float64")
        score_s = score[first] if n else np.zeros(0)
        for dname in scheme.dimensions:
            out[DIM + dname] = codes[DIM + dname]
        if scheme.adjustments:
            code, k_adj, applies = _codes([(h, 2) for h in hits], n)
            texts = ["; ".join(f"{a.id} ×{a.multiply:g}" for a, h in zip(scheme.adjustments, applies) if h[c])
                     for c in range(k_adj)]
            out["adjustments"] = _text_categorical(texts, code, np.ones(k_adj, dtype=bool))
    out["score"] = score
    if scheme.churn_probability is not None:  # fitted by `segment calibrate`: P(churn within its horizon)
        out["churn_probability"] = scheme.churn_probability.predict(score)

    tiers = scheme.tiers
    t = len(tiers)
    ids = np.array([x.id for x in tiers], dtype=object)
    cutoffs = np.array([x.min_score if x.min_score is not None else -np.inf for x in tiers])
    out["raw_tier"] = pd.Categorical.from_codes(codes["_raw"].astype(np.intp), list(ids), validate=False)
    gated_rank = codes["_r0"].astype(np.intp)
    gf, present_gf = _compact(codes["_gf"].astype(np.int64), 1 << max(t - 1, 0))
    out["gates_failed"] = _text_categorical([";".join(ids[j] for j in range(t - 1) if (int(m) >> j) & 1)
                                             for m in present_gf], gf, np.ones(len(present_gf), dtype=bool))

    # overrides: a row's note follows from its rank before and after each rule (few distinct paths)
    steps = [gated_rank] + [codes[f"_r{k}"].astype(np.intp) for k in range(1, len(scheme.overrides) + 1)]
    rank = steps[-1]
    if scheme.overrides:
        path, k_path, per_path = _codes([(r, t) for r in steps], n)
        notes = []
        for p in range(k_path):
            parts = [f"{rule.id}: {ids[per_path[k][p]]} → {ids[per_path[k + 1][p]]} ({rule.reason})"
                     for k, rule in enumerate(scheme.overrides) if per_path[k][p] != per_path[k + 1][p]]
            notes.append("; ".join(parts))
        out["overrides"] = _text_categorical(notes, path, np.ones(k_path, dtype=bool))
    else:
        out["overrides"] = _text_categorical([""], np.zeros(n, dtype=np.intp))
    proposal = _proposals(codes, scheme, n)
    if proposal is not None:
        out["proposal"] = proposal
    out["tier"] = pd.Categorical.from_codes(rank, list(ids), validate=False)
    out["tier_rank"] = rank
    present = np.bincount(rank, minlength=t) > 0
    out["tier_label"] = _text_categorical([x.label or x.id for x in tiers], rank, present)

    if "_sg" in codes:  # sub-grades of the final tier
        sg = np.nan_to_num(codes["_sg"].astype("float64"), nan=-1).astype(np.intp)
        pair, k_pair, (r_p, s_p) = _codes([(rank, t), (sg + 1, 1 + max(len(x.subgrades or ()) for x in tiers))], n)
        for name, of in (("subgrade", lambda x: x.id), ("subgrade_label", lambda x: x.label or x.id)):
            table = [of(tiers[r].subgrades[s - 1]) if s > 0 else "" for r, s in zip(r_p.tolist(), s_p.tolist())]
            out[name] = _text_categorical(table, pair, np.ones(k_pair, dtype=bool))

    out["strategy"] = _text_categorical(["; ".join(x.strategy.actions) for x in tiers], rank, present)
    out["follow_up_days"] = pd.array([x.strategy.follow_up_days for x in tiers], dtype="Int64")[rank]
    out["owner"] = _text_categorical([x.strategy.owner for x in tiers], rank, present)
    explain = None
    if scheme.scored:  # built from the codes when the frame is first read (Grading.frame)
        def explain():
            cols = _explain_scored(scheme, weights, pts_s, state, k_state, score_s, gated_rank, cutoffs, ids, n)
            if proposal is not None:
                cols["explanation"] = _with_proposals(cols["explanation"], proposal)
            return cols
    else:
        labels = [f"matched the rule of {x.id}" + (f" ({x.label})" if x.label else "")
                  if x.has_rule else f"no rule above {x.id} matched" for x in tiers]
        out["explanation"] = _text_categorical(labels, gated_rank, np.bincount(gated_rank, minlength=t) > 0)
        if proposal is not None:
            out["explanation"] = _with_proposals(out["explanation"], proposal)
    # (very wide frames are consolidated, as pandas would, so adding columns later stays fast)
    return Grading(pd.DataFrame(out, copy=len(out) > 90), scheme, as_of, ineligible, band_counts=band_counts,
                   explain=explain)


def _proposals(codes: dict[str, np.ndarray], scheme: Scheme, n: int) -> pd.Categorical | None:
    """The ``proposal`` column of a scheme with ``propose`` overrides (None without): per row, every
    proposal that applies ("proposed for designation as gold (rule: reason)"), "" for none."""
    rules = [o for o in scheme.overrides if o.action == "propose"]
    if not rules:
        return None
    bits = codes["_prop"].astype(np.int64)
    code, k, applies = _codes([(((bits >> j) & 1).astype(np.intp), 2) for j in range(len(rules))], n)
    texts = ["; ".join(f"proposed for designation as {o.to} ({o.id}: {o.reason})"
                       for o, hit in zip(rules, applies) if hit[c]) for c in range(k)]
    return _text_categorical(texts, code, np.ones(k, dtype=bool))


def _with_proposals(explanation: pd.Categorical, proposal: pd.Categorical) -> pd.Categorical:
    """The explanation with the row's proposal appended ("…; proposed for designation as gold (…)"),
    the text built once per distinct (explanation, proposal) pair."""
    e_cats, p_cats = list(explanation.categories), list(proposal.categories)
    if not any(p_cats):
        return explanation
    code, k, (e_k, p_k) = _codes([(np.asarray(explanation.codes, dtype=np.intp), max(len(e_cats), 1)),
                                  (np.asarray(proposal.codes, dtype=np.intp), max(len(p_cats), 1))], len(explanation))
    texts = []
    for e, p in zip(e_k.tolist(), p_k.tolist()):
        a, b = e_cats[e] if e_cats else "", p_cats[p] if p_cats else ""
        texts.append(f"{a}; {b}" if a and b else a or b)
    return _text_categorical(texts, code, np.ones(k, dtype=bool))


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
