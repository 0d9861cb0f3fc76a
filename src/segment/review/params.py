"""The review's parameters and names: params/reports.yaml's `review:` section, the sheet's columns, the reasons a customer is re-checked.

Public: ReviewParams, load_review_params, SHEET_NAME, DECISION_COLUMNS, REQUIRED_DECISION_COLUMNS, SELECTION_COLUMNS, CONTACT_COLUMNS, REASONS.
Reads: params/reports.yaml. Writes: nothing.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from segment.errors import ConfigError
from segment.grading.scheme import Cond, param_number
from segment.paths import params_file
from segment.plumbing.yamlfile import pydantic_error, read_yaml

SHEET_NAME = "review_sheet"          # review_sheet.xlsx / review_sheet.csv
DECISION_COLUMNS = ("confirm", "new_tier", "reason", "reviewer", "expires")
#: a sheet exported before ``expires`` existed is still applied: only these are required
REQUIRED_DECISION_COLUMNS = DECISION_COLUMNS[:4]
SELECTION_COLUMNS = ("customer_id", "tier", "tier_label", "score", "previous_tier", "why", "explanation",
                     "overrides") + DECISION_COLUMNS
CONTACT_COLUMNS = ("name", "contact_name", "phone", "email")   # name: the company; the rest are PII
REASONS = ("sample", "borderline", "override", "big mover", "anomaly", "held decision")
_SAMPLE_BOUNDS = (0.10, 0.20)   # SEEDS step 5
_ROLE = re.compile(r"[a-z][a-z0-9_]*")


def _role_name(role: str) -> str:
    """A role as the audit log records it: lower-case letters, digits and _ (sales_head)."""
    if not _ROLE.fullmatch(role):
        raise ValueError(f"{role!r} is not a role name; write lower-case letters, digits and _ "
                         "(for example sales_head)")
    return role


class ReviewParams(BaseModel):
    """``review:`` in ``params/reports.yaml``."""

    model_config = ConfigDict(extra="forbid")
    sample_share: Annotated[float, BeforeValidator(param_number)] = Field(
        0.15, description="share of each tier drawn at random (SEEDS step 5: 0.10–0.20)")
    seed: int = Field(20260930, ge=0, description="random seed of the sample (the quarter is mixed in)")
    borderline_points: Annotated[float | None, BeforeValidator(param_number)] = Field(
        None, ge=0, description="review scores within this many points of a cut-off (default: borderline_share)")
    borderline_share: Annotated[float, BeforeValidator(param_number)] = Field(
        0.05, gt=0, le=0.5, description="the borderline margin as a share of the typical gap between the scheme's "
                                        "cut-offs: the same closeness on a 0–100 and a 1–5 scale")
    max_share: Annotated[float, BeforeValidator(param_number)] = Field(
        0.20, gt=0, le=1, description="the random sample and the borderline customers together are at most this "
                                      "share of the graded (SEEDS step 5: 10–20%); the nearest to a cut-off first")
    extras_max_share: Annotated[float, BeforeValidator(param_number)] = Field(
        0.05, ge=0, le=1, description="override, big-mover and anomaly customers outside the sample are at most "
                                      "this share of the graded (anomalies first, then big movers, then overrides)")
    big_mover_tiers: int = Field(2, ge=1, description="review customers who moved this many tiers or more")
    anomaly: Cond | None = Field("annual_amount >= 50万 and complaints_12m >= 3",
                                 description="review customers matching this condition (null: off)")
    include_pii_in_sheet: bool = Field(True, description="the sheet shows contact name, phone and e-mail")
    signoff_roles: list[str] = Field(
        default_factory=lambda: ["sales_head", "service_head"], min_length=1,
        description="the roles that sign off the period's review before it goes for approval (SEEDS step 5: the "
                    "review is done jointly by the sales head and the service head)")
    approver_role: str = Field("leadership", description="the role that approves or rejects the period's grading "
                                                         "(S4: leadership approves)")
    spot_check_size: int = Field(20, ge=1, description="customers of the published list spot-checked each month "
                                                       "(S4)")

    @field_validator("signoff_roles")
    @classmethod
    def _roles(cls, v: list[str]) -> list[str]:
        for role in v:
            _role_name(role)
        twice = sorted({r for r in v if v.count(r) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed twice; name each role once")
        return v

    @field_validator("approver_role")
    @classmethod
    def _approver(cls, v: str, info: ValidationInfo) -> str:
        if v in (info.data.get("signoff_roles") or []):
            raise ValueError(f"{v!r} is also a sign-off role; the approval is a second pair of eyes: name "
                             "another role")
        return _role_name(v)

    @field_validator("sample_share")
    @classmethod
    def _share(cls, v: float) -> float:
        lo, hi = _SAMPLE_BOUNDS
        if not (math.isfinite(v) and lo - 1e-12 <= v <= hi + 1e-12):
            raise ValueError(f"must be between {lo:.2f} and {hi:.2f} (SEEDS step 5: a 10–20% sample is "
                             f"re-checked), got {v:g}; write for example 0.15 or 15%")
        return v


class _ReportsFile(BaseModel):
    model_config = ConfigDict(extra="allow")   # privacy: and whatever else reports.py reads
    review: ReviewParams = Field(default_factory=ReviewParams)


def load_review_params(path: str | Path | None = None) -> ReviewParams:
    """``review:`` of a reports params file (default: the project's params/reports.yaml); a bad value
    raises ConfigError naming the file and key."""

    path = path if path is not None else params_file("reports.yaml")
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path, None, "expected a mapping with `review:` and `privacy:`", "see params/reports.yaml")
    if raw.get("review") is None:
        raw = {**raw, "review": {}}
    try:
        return _ReportsFile.model_validate(raw).review
    except ValidationError as e:
        raise pydantic_error(path, e) from None
