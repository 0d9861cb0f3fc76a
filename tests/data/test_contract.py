"""The contract is declared once; docs/data_contract.md is generated from it and must match."""
from __future__ import annotations

from segment.data.contract import DTYPES, TABLES, markdown

from ..conftest import ROOT


def test_docs_match_the_contract():
    assert (ROOT / "docs" / "data_contract.md").read_text(encoding="utf-8") == markdown() + "\n", \
        "docs/data_contract.md is stale: run `make docs`"


def test_contract_shape():
    assert list(TABLES) == ["customers", "transactions", "interactions", "opportunities", "measures"]
    assert [t.name for t in TABLES.values() if t.mandatory] == ["transactions"]
    for t in TABLES.values():
        assert all(c.dtype in DTYPES for c in t.columns)
        assert "customer_id" in t.required
    assert {c.name for c in TABLES["customers"].columns if c.pii} == {"contact_name", "phone", "email"}
    kinds = TABLES["interactions"].by_name["kind"].values
    assert {"consultation", "visit", "complaint", "survey", "referral", "campaign"} <= set(kinds)
