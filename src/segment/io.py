"""Loading tables through a data config (DATA.yaml) onto the contract."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass
class Tables:
    """The contract's four tables, loaded and coerced. Only ``transactions`` is mandatory.

    Column dtypes after loading: string → pandas string dtype, float → float64, int → Int64,
    bool → boolean, date/datetime → datetime64[ns]. Missing values are NA/NaN/NaT."""

    transactions: pd.DataFrame
    customers: pd.DataFrame | None = None
    interactions: pd.DataFrame | None = None
    opportunities: pd.DataFrame | None = None

    def get(self, name: str) -> pd.DataFrame | None:
        return getattr(self, name)

    def present(self) -> list[str]:
        return [n for n in ("customers", "transactions", "interactions", "opportunities") if self.get(n) is not None]
