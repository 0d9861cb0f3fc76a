"""Grading schemes as data: one YAML file per grading system, validated on load.

The engine (``segment.grading``) knows no scheme by name. A scheme declares::

    id, name, source (SEEDS section), indicators (bands → points, or a category map),
    dimensions (weight, indicators with weights; each level sums to 1),
    tiers (highest first: id, label, min_score, optional gate condition, strategy),
    overrides (ordered: when condition → promote / demote by n tiers, with a reason)

See ``params/schemes/s1_four_tier.yaml`` for a complete, commented example.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from .conditions import ConditionError, parse
from .errors import ConfigError
from .io import pydantic_error, read_yaml

WEIGHT_TOLERANCE = 1e-6
SCHEMES_DIR = Path("params") / "schemes"


def _num(v):
    """Numbers in params may be written 50万 (= 500000) or 15% (= 0.15)."""
    if isinstance(v, str):
        t = v.strip().replace(",", "").replace("_", "")
        try:
            if t.endswith("万"):
                return float(t[:-1]) * 10_000
            if t.endswith("%"):
                return float(t[:-1]) / 100
            return float(t)
        except ValueError:
            raise ValueError(f"{v!r} is not a number (write 500000, 50万 or 15%)") from None
    return v


Num = Annotated[float, BeforeValidator(_num)]


class Band(BaseModel):
    """Points for values in [from, below). Omit ``from`` on the lowest band, ``below`` on the highest."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    lower: Num | None = Field(None, alias="from")
    below: Num | None = None
    points: Num


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = ""
    bands: list[Band] | None = None
    map: dict[str, float] | None = Field(None, description="category → points")
    missing_points: float = Field(0, description="points when the value is missing")

    @model_validator(mode="after")
    def _kind(self) -> "Indicator":
        if (self.bands is None) == (self.map is None):
            raise ValueError("give exactly one of `bands` (numeric thresholds) or `map` (category → points)")
        if self.bands is not None:
            try:
                check_bands(self.bands)
            except ValueError as e:
                raise ValueError(f"bands: {e}") from None
        return self


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
    weight: float
    indicators: dict[str, float] = Field(description="indicator id → weight within the dimension")


class Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actions: list[str] = Field(default_factory=list)
    follow_up_days: int | None = Field(None, ge=1)
    owner: str = ""


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    label: str = ""
    min_score: Num | None = Field(None, description="cut-off (inclusive); omit on the lowest tier")
    gate: str | None = Field(None, description="entry criteria: a condition the customer must also meet")
    strategy: Strategy = Field(default_factory=Strategy)

    @field_validator("gate")
    @classmethod
    def _gate(cls, v):
        if v is not None:
            try:
                parse(v)
            except ConditionError as e:
                raise ValueError(f"condition does not parse: {e}") from None
        return v


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    when: str
    action: Literal["promote", "demote"]
    by: int = Field(1, ge=1)
    reason: str
    not_above: str | None = Field(None, description="a promotion never lifts above this tier")
    not_below: str | None = Field(None, description="a demotion never drops below this tier")

    @field_validator("when")
    @classmethod
    def _when(cls, v):
        try:
            parse(v)
        except ConditionError as e:
            raise ValueError(f"condition does not parse: {e}") from None
        return v


class Scheme(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str = ""
    source: str = ""
    score_scale: float | None = Field(None, description="maximum possible score, for documentation/checks")
    indicators: dict[str, Indicator]
    dimensions: dict[str, Dimension]
    tiers: list[Tier]
    overrides: list[Override] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "Scheme":
        total = sum(d.weight for d in self.dimensions.values())
        if any(not math.isfinite(d.weight) or d.weight < 0 for d in self.dimensions.values()):
            raise ValueError("dimensions: every weight must be a finite number ≥ 0")
        if abs(total - 1) > WEIGHT_TOLERANCE:
            raise ValueError(f"dimensions: weights sum to {total:g}, not 1; rescale them so they add up to 1")
        for dname, d in self.dimensions.items():
            if not d.indicators:
                raise ValueError(f"dimensions.{dname}.indicators: empty")
            for ind, w in d.indicators.items():
                if ind not in self.indicators:
                    raise ValueError(f"dimensions.{dname}.indicators.{ind}: unknown indicator; define it under "
                                     f"`indicators:` (defined: {', '.join(self.indicators)})")
                if not math.isfinite(w) or w < 0:
                    raise ValueError(f"dimensions.{dname}.indicators.{ind}: weight must be a finite number ≥ 0")
            s = sum(d.indicators.values())
            if abs(s - 1) > WEIGHT_TOLERANCE:
                raise ValueError(f"dimensions.{dname}.indicators: weights sum to {s:g}, not 1; rescale them")
        if not self.tiers:
            raise ValueError("tiers: at least one tier is needed")
        ids = [t.id for t in self.tiers]
        if len(set(ids)) != len(ids):
            raise ValueError(f"tiers: duplicate tier id in {ids}")
        cuts = [t.min_score for t in self.tiers[:-1]]
        if any(c is None for c in cuts):
            raise ValueError("tiers: every tier but the last needs `min_score` (highest tier first)")
        if any(a <= b for a, b in zip(cuts, cuts[1:])):
            raise ValueError(f"tiers: cut-offs must fall strictly from the first tier to the last, got {cuts}")
        top = self.max_score()
        if cuts and cuts[0] > top + 1e-9:
            raise ValueError(f"tiers.0.min_score: {cuts[0]:g} is above the highest possible score {top:g}; "
                             f"no customer could reach tier {ids[0]!r}")
        for i, o in enumerate(self.overrides):
            for key in ("not_above", "not_below"):
                v = getattr(o, key)
                if v is not None and v not in ids:
                    raise ValueError(f"overrides.{i}.{key}: unknown tier {v!r}; write one of {', '.join(ids)}")
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
        total = 0.0
        for ind, w in self.weights().items():
            spec = self.indicators[ind]
            pts = [b.points for b in spec.bands] if spec.bands else list(spec.map.values())
            total += w * max(pts + [spec.missing_points])
        return total

    def conditions(self) -> dict[str, str]:
        out = {f"tiers.{i}.gate": t.gate for i, t in enumerate(self.tiers) if t.gate}
        out.update({f"overrides.{i}.when": o.when for i, o in enumerate(self.overrides)})
        return out

    def inputs(self) -> set[str]:
        """Every snapshot column the scheme reads (indicators and condition names)."""
        names = set(self.weights())
        for text in self.conditions().values():
            names |= parse(text).names
        return names


def resolve(scheme: str | Path, base: Path | None = None) -> Path:
    """A scheme path, or the id of a scheme under params/schemes/."""
    p = Path(scheme)
    if p.suffix in (".yaml", ".yml"):
        return p
    base = base or Path.cwd()
    cand = base / SCHEMES_DIR / f"{scheme}.yaml"
    if not cand.is_file():
        known = sorted(x.stem for x in (base / SCHEMES_DIR).glob("*.yaml"))
        raise ConfigError(cand, None, f"no scheme {scheme!r}",
                          f"give a path to a .yaml file or one of: {', '.join(known) or '(none found)'}")
    return cand


def load_scheme(scheme: str | Path) -> Scheme:
    path = resolve(scheme)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(path, None, "a scheme must be a mapping (id, indicators, dimensions, tiers …)")
    try:
        return Scheme.model_validate(raw)
    except ValidationError as e:
        raise pydantic_error(path, e) from None
