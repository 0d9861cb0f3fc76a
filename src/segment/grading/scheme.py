"""Grading schemes as data: one YAML file per grading system, validated on load.

Public: param_number, Band, RubricRow, Indicator, check_bands, Dimension, Strategy, Choice, Tier, Override,
Adjustment, ChurnProbability, Scheme, resolve, load_scheme.
Reads: params/schemes/*.yaml. Writes: nothing.

The engine (``segment.grading.engine``) knows no scheme by name. A scheme declares (every key below is
optional unless marked)::

    id*, name, source                     identity; `source` cites the SEEDS.md section
    eligible: <condition>                 only these customers are graded (S8's four elements)
    group_by: product_line                grade each group separately (S8: never mix product lines)
    indicators:                           id → how points are given (one of):
        bands: [{from, below, points}]      fixed thresholds, [from, below), ascending, touching
        quantiles: [q…], points: [p…]       thresholds at quantiles of the graded population (RFM)
        map: {category: points}             categories
        rubric: [{points, when}]            1–5 rubric: first matching condition wins (S3)
      column: <snapshot column>             default: the indicator id (bands / quantiles / map)
      missing_points                        points when the value is missing / no rubric row matches
    dimensions: d → {weight, indicators: {id: weight}}    each level sums to 1
    score_factor: 3                        total = factor × weighted points (S2: RFM total 3–15)
    adjustments: [{id, when, multiply, reason}]     score multipliers (S8 bonus, margin penalty)
    axes: name → [{id, label, when}]       classifications, first match wins; conditions may use them
    tiers*: highest first, each {id, label, min_score, gate, when | all_of | any_of, subgrades, strategy}
      a customer gets the first tier whose cut-off, gate and stage rule it meets; the last tier is the
      floor. Stage schemes (S6, S7, S9) have rules and no dimensions.
    overrides: ordered [{id, when, action: promote|demote, by, reason, not_above, not_below}]
      or {id, when, action: propose, to, reason}: the tier stays; a customer whose final tier is below
      ``to`` is listed as proposed for designation as ``to`` (column ``proposal``; S4's "may be designated")
    optional: [names]                      inputs the scheme can do without: absent from the data, they
      are missing (missing_points, conditions on them false) with one warning, instead of stopping
    churn_probability: {scores, probabilities, horizon_days}   written by `segment calibrate` into its
      proposal: each customer's churn probability within the horizon (column ``churn_probability``)

See ``params/schemes/s1_four_tier.yaml`` for a complete, commented example.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Literal

import numpy as np

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from segment.errors import ConditionError, ConfigError
from segment.grading.conditions import number, parse
from segment.paths import root
from segment.plumbing.yamlfile import load_params

WEIGHT_TOLERANCE = 1e-6
SCHEMES_DIR = Path("params") / "schemes"


def param_number(v):
    """Numbers in params may be written 50万 (= 500000) or 15% (= 0.15)."""
    if isinstance(v, str):
        try:
            v = number(v.strip().replace(",", "").replace("_", ""))
        except ValueError:
            raise ValueError(f"{v!r} is not a number (write 500000, 50万 or 15%)") from None
    # .nan / .inf (or 'nan' text) would slip past every comparison: NaN points silently lower the top score
    if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isfinite(v):
        raise ValueError(f"{v!r} is not a finite number; write a plain number (500000, 50万 or 15%)")
    return v


Num = Annotated[float, BeforeValidator(param_number)]


def _condition(v):
    if v is None:
        return v
    if not isinstance(v, str):
        raise ValueError(f"a condition must be text in quotes, got {v!r}")
    try:
        parse(v)
    except ConditionError as e:
        raise ValueError(f"condition {v!r} does not parse: {e}") from None
    return v


Cond = Annotated[str, BeforeValidator(_condition)]


class Band(BaseModel):
    """Points for values in [from, below). Omit ``from`` on the lowest band, ``below`` on the highest."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    lower: Num | None = Field(None, alias="from")
    below: Num | None = None
    points: Num


class RubricRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: Num
    when: Cond
    label: str = ""


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = ""
    column: str | None = Field(None, description="the snapshot column read (default: the indicator id)")
    bands: list[Band] | None = None
    quantiles: list[float] | None = Field(None, description="cut points as quantiles of the graded population")
    points: list[Num] | None = Field(None, description="with quantiles: one more than the quantiles")
    map: dict[str, Num] | None = Field(None, description="category → points")
    rubric: list[RubricRow] | None = Field(None, description="first matching row gives the points")
    missing_points: Num = Field(0, description="points when the value is missing (or no rubric row matches)")

    @model_validator(mode="after")
    def _kind(self) -> "Indicator":
        kinds = [k for k in ("bands", "quantiles", "map", "rubric") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of `bands` (thresholds), `quantiles` + `points`, `map` "
                             f"(category → points) or `rubric` (conditions → points); found {kinds or 'none'}")
        if self.bands is not None:
            try:
                check_bands(self.bands)
            except ValueError as e:
                raise ValueError(f"bands: {e}") from None
        if self.quantiles is not None:
            q = self.quantiles
            if not q or any(not 0 < x < 1 for x in q) or any(a >= b for a, b in zip(q, q[1:])):
                raise ValueError(f"quantiles: must ascend strictly between 0 and 1, got {q}")
            if self.points is None or len(self.points) != len(q) + 1:
                raise ValueError(f"points: quantiles {q} make {len(q) + 1} bins; give {len(q) + 1} points, "
                                 "lowest-value bin first")
        elif self.points is not None:
            raise ValueError("points: only used with `quantiles`")
        if self.rubric is not None and self.column is not None:
            raise ValueError("column: a rubric reads its conditions, not one column; remove `column`")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("bands", "quantiles", "map", "rubric") if getattr(self, k) is not None)

    def point_values(self) -> list[float]:
        if self.bands is not None:
            pts = [b.points for b in self.bands]
        elif self.quantiles is not None:
            pts = list(self.points)
        elif self.map is not None:
            pts = list(self.map.values())
        else:
            pts = [r.points for r in self.rubric]
        return pts + [self.missing_points]

    def ascending(self) -> bool:
        """Points never fall as the value rises (bands and quantile bins only)."""
        pts = [b.points for b in self.bands] if self.bands is not None else list(self.points or [])
        return bool(pts) and all(a <= b for a, b in zip(pts, pts[1:]))


def check_bands(bands: list[Band]) -> None:
    """Bands must ascend, touch (no gap), not overlap; only the ends may be open."""
    if not bands:
        raise ValueError("`bands` is empty")
    for i, b in enumerate(bands):
        if b.lower is not None and b.below is not None and not b.lower < b.below:
            raise ValueError(f"band {i}: `from` ({b.lower:g}) must be below `below` ({b.below:g})")
        if i > 0 and b.lower is None:
            raise ValueError(f"band {i}: only the first band may omit `from`; write `from: {bands[i - 1].below}`")
        if i < len(bands) - 1 and b.below is None:
            raise ValueError(f"band {i}: only the last band may omit `below`; write `below: {bands[i + 1].lower}`")
        if i > 0:
            prev = bands[i - 1].below
            if b.lower < prev:
                raise ValueError(f"bands {i - 1} and {i} overlap ({prev:g} > {b.lower:g}); list bands in ascending "
                                 f"order with band {i} starting at {prev:g}")
            if b.lower > prev:
                raise ValueError(f"gap between bands {i - 1} and {i}: values in [{prev:g}, {b.lower:g}) get no points; "
                                 f"start band {i} at {prev:g}")


class Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = ""
    weight: Num
    indicators: dict[str, Num] = Field(description="indicator id → weight within the dimension")


class Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actions: list[str] = Field(default_factory=list)
    follow_up_days: int | None = Field(None, ge=1)
    owner: str = ""


class Choice(BaseModel):
    """One of an ordered list of choices (sub-grades, axis classes): the first whose `when` holds."""

    model_config = ConfigDict(extra="forbid")
    id: str
    label: str = ""
    when: Cond | None = Field(None, description="omit on the last choice: the default")


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    label: str = ""
    min_score: Num | None = Field(None, description="cut-off (inclusive); omit on the lowest tier")
    gate: Cond | None = Field(None, description="entry criteria: a condition the customer must also meet")
    when: Cond | None = Field(None, description="stage rule: the tier applies when this holds")
    all_of: list[Cond] | None = Field(None, description="stage rule: every condition holds")
    any_of: list[Cond] | None = Field(None, description="stage rule: at least one condition holds")
    subgrades: list[Choice] | None = Field(None, description="first matching sub-grade; the last is the default")
    strategy: Strategy = Field(default_factory=Strategy)

    @property
    def has_rule(self) -> bool:
        return bool(self.when or self.all_of or self.any_of)

    def rule_text(self) -> str | None:
        """The stage rule as one condition (all of: and; any of: or)."""
        parts = []
        if self.when:
            parts.append(f"({self.when})")
        if self.all_of:
            parts.append("(" + " and ".join(f"({c})" for c in self.all_of) + ")")
        if self.any_of:
            parts.append("(" + " or ".join(f"({c})" for c in self.any_of) + ")")
        return " and ".join(parts) if parts else None

    @model_validator(mode="after")
    def _subgrades(self) -> "Tier":
        if self.subgrades:
            if self.subgrades[-1].when is not None:
                raise ValueError("subgrades: the last sub-grade is the default; remove its `when`")
            if any(s.when is None for s in self.subgrades[:-1]):
                raise ValueError("subgrades: every sub-grade but the last needs `when`")
        return self


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    when: Cond
    action: Literal["promote", "demote", "propose"]
    by: int = Field(1, ge=1)
    reason: str = Field(min_length=1)
    not_above: str | None = Field(None, description="a promotion never lifts above this tier")
    not_below: str | None = Field(None, description="a demotion never drops below this tier")
    to: str | None = Field(None, description="propose: the tier proposed for designation (the tier itself stays)")

    @model_validator(mode="after")
    def _propose(self) -> "Override":
        if self.action == "propose":
            if self.to is None:
                raise ValueError("action: propose needs `to:` (the tier proposed for designation)")
            if self.not_above is not None or self.not_below is not None or "by" in self.model_fields_set:
                raise ValueError("action: propose moves no tier: remove `by`, `not_above` and `not_below` "
                                 "(`to:` names the proposed tier)")
        elif self.to is not None:
            raise ValueError(f"`to:` is only for action: propose; a {self.action} moves `by` tiers")
        return self


class Adjustment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    when: Cond
    multiply: Num = Field(gt=0)
    reason: str = ""


class ChurnProbability(BaseModel):
    """A score's churn probability over the next ``horizon_days``, fitted by ``segment calibrate`` on past
    churn (``segment.calibration.probability.fit_isotonic``): knots of ascending score, each with the
    probability of churn there; between knots the probability is linear, outside it is flat. A grading
    by a scheme that carries it has a ``churn_probability`` column."""

    model_config = ConfigDict(extra="forbid")
    scores: list[float] = Field(min_length=1, description="knots, ascending")
    probabilities: list[float] = Field(min_length=1, description="churn probability at each knot, never rising")
    horizon_days: int = Field(180, ge=1, description="the churn horizon the probabilities are for")
    method: str = "isotonic"
    fitted_on: str = Field("", description="the training as-of dates")

    @model_validator(mode="after")
    def _knots(self) -> "ChurnProbability":
        s, p = self.scores, self.probabilities
        if len(s) != len(p):
            raise ValueError(f"scores and probabilities differ in length ({len(s)} vs {len(p)})")
        if any(math.isnan(x) for x in s):
            raise ValueError("scores: every knot must be a number")
        if any(b <= a for a, b in zip(s, s[1:])):
            raise ValueError("scores: must ascend strictly")
        if any(not 0 <= x <= 1 for x in p):
            raise ValueError("probabilities: every probability must be in [0, 1]")
        if any(b > a + 1e-12 for a, b in zip(p, p[1:])):
            raise ValueError("probabilities: must not rise with the score (a higher score is a better customer)")
        return self

    def predict(self, score) -> np.ndarray:
        """The churn probability of each score (NaN for a missing score)."""
        x = np.asarray(score, dtype="float64")
        out = np.interp(x, np.asarray(self.scores, dtype="float64"), np.asarray(self.probabilities, dtype="float64"))
        return np.where(np.isnan(x), np.nan, out)


class Scheme(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _words: tuple[dict[str, str], re.Pattern | None] | None = PrivateAttr(default=None)  # in_words' cache
    id: str
    name: str = ""
    source: str = ""
    eligible: Cond | None = None
    group_by: Literal["product_line"] | None = None
    indicators: dict[str, Indicator] = Field(default_factory=dict)
    dimensions: dict[str, Dimension] = Field(default_factory=dict)
    score_factor: Num = Field(1.0, gt=0)
    adjustments: list[Adjustment] = Field(default_factory=list)
    axes: dict[str, list[Choice]] = Field(default_factory=dict)
    tiers: list[Tier]
    overrides: list[Override] = Field(default_factory=list)
    provenance: dict | None = Field(None, description="where a generated scheme came from (calibration)")
    churn_probability: ChurnProbability | None = Field(
        None, description="the score's churn probability, fitted by `segment calibrate`: gradings carry it")
    optional: list[str] = Field(default_factory=list, description="snapshot columns the scheme can do without: "
                                "absent from the data, they are missing (their missing_points) with one warning")
    cadence: Literal["month", "quarter", "half", "year"] = Field(
        "quarter", description="how often the scheme re-grades (SEEDS: S3 monthly, S1 quarterly, S8 yearly): the "
                               "default period of `segment report`, and what its comparisons step back by")

    @model_validator(mode="after")
    def _consistent(self) -> "Scheme":
        stray = [n for n in self.optional if n not in self.inputs()]
        if stray:
            raise ValueError(f"optional: {', '.join(stray)} not read by the scheme (it reads "
                             f"{', '.join(sorted(self.inputs()))}); list only names the scheme reads")
        if self.dimensions:
            bad = [d for d, x in self.dimensions.items() if not math.isfinite(x.weight) or x.weight < 0]
            if bad:
                raise ValueError(f"dimensions.{bad[0]}.weight: must be a finite number ≥ 0")
            total = sum(d.weight for d in self.dimensions.values())
            if abs(total - 1) > WEIGHT_TOLERANCE:
                raise ValueError(f"dimensions: weights sum to {total:g}, not 1; rescale them so they add up to 1")
        for dname, d in self.dimensions.items():
            if not d.indicators:
                raise ValueError(f"dimensions.{dname}.indicators: empty; list indicator ids with weights")
            for ind, w in d.indicators.items():
                if ind not in self.indicators:
                    raise ValueError(f"dimensions.{dname}.indicators.{ind}: unknown indicator; define it under "
                                     f"`indicators:` (defined: {', '.join(self.indicators) or 'none'})")
                if not math.isfinite(w) or w < 0:
                    raise ValueError(f"dimensions.{dname}.indicators.{ind}: weight must be a finite number ≥ 0")
            s = sum(d.indicators.values())
            if abs(s - 1) > WEIGHT_TOLERANCE:
                raise ValueError(f"dimensions.{dname}.indicators: weights sum to {s:g}, not 1; rescale them")
        for name, classes in self.axes.items():
            if not classes or classes[-1].when is not None:
                raise ValueError(f"axes.{name}: the last class is the default; remove its `when`")
            if any(c.when is None for c in classes[:-1]):
                raise ValueError(f"axes.{name}: every class but the last needs `when`")
        if not self.tiers:
            raise ValueError("tiers: at least one tier is needed")
        ids = [t.id for t in self.tiers]
        if len(set(ids)) != len(ids):
            raise ValueError(f"tiers: duplicate tier id in {ids}")
        for i, t in enumerate(self.tiers[:-1]):
            if t.min_score is None and not t.has_rule:
                raise ValueError(f"tiers.{i}: tier {t.id!r} needs `min_score` or a stage rule (when / all_of / any_of); "
                                 "only the last tier is the floor")
        if self.tiers[-1].min_score is not None or self.tiers[-1].has_rule or self.tiers[-1].gate:
            raise ValueError(f"tiers.{len(ids) - 1}: the last tier ({ids[-1]!r}) is the floor: remove its min_score, "
                             "gate and rule")
        scored = [(i, t.min_score) for i, t in enumerate(self.tiers) if t.min_score is not None]
        if scored and not self.dimensions:
            raise ValueError(f"tiers.{scored[0][0]}.min_score: the scheme has no `dimensions`, so there is no score; "
                             "add dimensions or use stage rules (when / all_of / any_of)")
        cuts = [c for _, c in scored]
        if any(a <= b for a, b in zip(cuts, cuts[1:])):
            raise ValueError(f"tiers: cut-offs must fall strictly from the first tier to the last, got {cuts}")
        if scored:
            top = self.max_score()
            i, first = scored[0]
            if first > top + 1e-9:
                raise ValueError(f"tiers.{i}.min_score: {first:g} is above the highest possible score {top:g}; "
                                 f"no customer could reach tier {ids[i]!r}; lower it to at most {top:g}")
        for i, o in enumerate(self.overrides):
            for key in ("not_above", "not_below", "to"):
                v = getattr(o, key)
                if v is not None and v not in ids:
                    raise ValueError(f"overrides.{i}.{key}: unknown tier {v!r}; write one of {', '.join(ids)}")
        names = self.inputs()
        clash = sorted(names & set(self.axes))
        if clash:
            raise ValueError(f"axes: {clash[0]!r} is also read as an indicator; rename the axis")
        return self

    # -- derived -------------------------------------------------------------------------
    def weights(self) -> dict[str, float]:
        """Effective weight of each indicator in the total score (dimension × indicator)."""
        out: dict[str, float] = {}
        for d in self.dimensions.values():
            for ind, w in d.indicators.items():
                out[ind] = out.get(ind, 0.0) + d.weight * w
        return out

    def max_score(self) -> float:
        total = sum(w * max(self.indicators[i].point_values()) for i, w in self.weights().items())
        boost = 1.0
        for a in self.adjustments:
            boost *= max(a.multiply, 1.0)
        return total * self.score_factor * boost

    def conditions(self) -> dict[str, str]:
        """Every condition in the scheme by its key path."""
        out: dict[str, str] = {}
        if self.eligible:
            out["eligible"] = self.eligible
        for ind, spec in self.indicators.items():
            for j, row in enumerate(spec.rubric or []):
                out[f"indicators.{ind}.rubric.{j}.when"] = row.when
        for j, a in enumerate(self.adjustments):
            out[f"adjustments.{j}.when"] = a.when
        for name, classes in self.axes.items():
            for j, c in enumerate(classes):
                if c.when:
                    out[f"axes.{name}.{j}.when"] = c.when
        for i, t in enumerate(self.tiers):
            if t.gate:
                out[f"tiers.{i}.gate"] = t.gate
            if t.has_rule:
                out[f"tiers.{i}.rule"] = t.rule_text()
            for j, s in enumerate(t.subgrades or []):
                if s.when:
                    out[f"tiers.{i}.subgrades.{j}.when"] = s.when
        out.update({f"overrides.{i}.when": o.when for i, o in enumerate(self.overrides)})
        return out

    def inputs(self) -> set[str]:
        """Every snapshot column the scheme reads (indicator columns and condition names, minus axes)."""
        names = {spec.column or ind for ind, spec in self.indicators.items() if spec.rubric is None}
        for text in self.conditions().values():
            names |= parse(text).names
        return names - set(self.axes)

    @property
    def scored(self) -> bool:
        return bool(self.dimensions)

    def names_in_words(self) -> dict[str, str]:
        """Each indicator and condition input the scheme reads → its name for people: the indicator's
        ``label`` where the scheme gives one, else the id with spaces (``major_complaints_12m`` →
        ``major complaints 12m``)."""
        words = {n: n.replace("_", " ") for n in self.inputs() | set(self.indicators)}
        for ind, spec in self.indicators.items():
            if spec.label:
                words[ind] = spec.label
                if spec.column:
                    words[spec.column] = spec.label
        return words

    def in_words(self, text: str) -> str:
        """``text`` (an explanation, a gate, a reason) with every indicator id written as its name. The
        names and their pattern are made once per scheme (reports call this once per row)."""
        if self._words is None:
            words = self.names_in_words()
            pattern = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, sorted(words, key=len, reverse=True)))
                                 + r")(?![\w.])") if words else None
            self._words = (words, pattern)
        words, pattern = self._words
        if pattern is None or not text:
            return text
        return pattern.sub(lambda m: words[m.group(1)], text)


def resolve(scheme: str | Path, base: Path | None = None) -> Path:
    """A scheme path, or the id of a scheme under params/schemes/."""
    p = Path(scheme)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise ConfigError(p, None, "scheme file not found", "check the path, or give the id of a scheme under "
                              "params/schemes/")
        return p
    if base is None:

        base = root()
    cand = base / SCHEMES_DIR / f"{scheme}.yaml"
    if not cand.is_file():
        known = sorted(x.stem for x in (base / SCHEMES_DIR).glob("*.yaml"))
        raise ConfigError(cand, None, f"no scheme {scheme!r}",
                          f"give a path to a .yaml file or one of: {', '.join(known) or '(none found)'}")
    return cand


def load_scheme(scheme: str | Path) -> Scheme:
    return load_params(resolve(scheme), Scheme, "a scheme must be a mapping (id, indicators, dimensions, tiers …)",
                       "start from params/schemes/s1_four_tier.yaml")
