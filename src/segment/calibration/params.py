"""The calibration's parameters (params/calibration.yaml): churn definition, fit, cut-offs, fitted bands.

Public: CalibrationParams, FitParams, CutoffParams, BandParams, load_calibration_params.
Reads: params/calibration.yaml. Writes: nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from segment.calibration.churn import (
    ChurnDefinition,
)
from segment.paths import params_file
from segment.plumbing.yamlfile import load_params


class FitParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prior_strength: float = Field(0.0, ge=0, description="how many panel rows the expert weights' direction "
                                  "is worth: 0 = data only, very large = the expert weights")
    bootstrap: int = Field(200, ge=0, description="bootstrap replicates over customers (0 = no intervals)")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="level of every interval")
    seed: int = Field(20260930, description="random seed of the bootstrap")


class CutoffParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["expert_shares", "shares", "churn_rates", "keep"] = "expert_shares"
    shares: list[float] | dict[str, float] | None = Field(
        None, description="share of the graded customers in each scored tier (highest first, the floor takes the rest)")
    churn_rates: list[float] | dict[str, float] | None = Field(
        None, description="highest training churn rate tolerated in each scored tier (highest first)")
    max_customers: dict[str, int] = Field(default_factory=dict, description="tier → most customers it may hold")
    min_tier_rows: int = Field(30, ge=1, description="churn_rates: fewest labelled training rows in a tier")

    @model_validator(mode="after")
    def _targets(self) -> "CutoffParams":
        if self.method == "shares" and self.shares is None:
            raise ValueError("shares: method `shares` needs `shares:` (one share per scored tier, highest first)")
        if self.method == "churn_rates" and self.churn_rates is None:
            raise ValueError("churn_rates: method `churn_rates` needs `churn_rates:` (one rate per scored tier)")
        vals = self.shares.values() if isinstance(self.shares, dict) else (self.shares or [])
        if any(not 0 <= v <= 1 for v in vals) or sum(vals) > 1 + 1e-9:
            raise ValueError("shares: every share must be in [0, 1] and together at most 1")
        rates = self.churn_rates.values() if isinstance(self.churn_rates, dict) else (self.churn_rates or [])
        if any(not 0 <= v <= 1 for v in rates):
            raise ValueError("churn_rates: every rate must be in [0, 1]")
        if any(v < 0 for v in self.max_customers.values()):
            raise ValueError("max_customers: counts must be ≥ 0")
        return self


class BandParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fit: bool = Field(True, description="propose bands fitted to churn (<scheme>.proposal.yaml) beside the weights")
    max_bands: int = Field(6, ge=2, le=20, description="most bands a fitted indicator may have")
    min_share: float = Field(0.05, gt=0, lt=0.5, description="fewest training rows a fitted band may hold (share)")
    add_indicators: int = Field(2, ge=0, le=5, description="the proposal also reads this many of the best indicators "
                                "the scheme does not (0 = never), when they add at least min_gain of AUC")
    min_gain: float = Field(0.005, ge=0, lt=1, description="out-of-time AUC the added indicators must gain (logistic "
                            "estimate on the calibrated score) before the proposal reads them")


class CalibrationParams(BaseModel):
    """``params/calibration.yaml``: the churn definition, the default horizon, the fit and the cut-offs."""

    model_config = ConfigDict(extra="forbid")
    horizon_days: int = Field(180, ge=1, description="default horizon when the command line gives none")
    churn: ChurnDefinition = Field(default_factory=ChurnDefinition)
    fit: FitParams = Field(default_factory=FitParams)
    cutoffs: CutoffParams = Field(default_factory=CutoffParams)
    bands: BandParams = Field(default_factory=BandParams)


def load_calibration_params(path: str | Path | None = None) -> CalibrationParams:
    """Read and validate a calibration params file (default: the project's params/calibration.yaml);
    errors name the file and the key."""

    return load_params(path if path is not None else params_file("calibration.yaml"), CalibrationParams, "expected a mapping (churn:, fit:, cutoffs:)",
                       "see params/calibration.yaml", empty_ok=True)
