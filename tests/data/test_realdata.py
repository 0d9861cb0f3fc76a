"""Online Retail II through the contract; reference figures from its README (../shared/data/online_retail_ii)."""
from __future__ import annotations

import pandas as pd
import pytest

from segment.cli import main
from segment.errors import DataError
from segment.data.validate import load_data

from ..conftest import ONLINE_RETAIL, ROOT

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not ONLINE_RETAIL.is_file(), reason=f"Online Retail II not found at {ONLINE_RETAIL} "
                       "(it ships in ../shared beside the project; CI has it)"),
]
CONFIG = ROOT / "params" / "data" / "online_retail.yaml"


@pytest.fixture(scope="module")
def raw_loaded(tmp_path_factory):
    """The file through the contract with no quirk handling: every README count must be visible."""
    text = CONFIG.read_text(encoding="utf-8").replace("    drop: [missing_customer_id, duplicate_lines]\n", "")
    text = text.replace("path: ../../../shared", f"path: {ROOT.parent / 'shared'}")
    path = tmp_path_factory.mktemp("or") / "raw.yaml"
    path.write_text(text, encoding="utf-8")
    return load_data(path, strict=False)


def test_readme_counts_through_the_contract(raw_loaded):
    tx = raw_loaded.tables.transactions
    assert len(tx) == 1_067_370
    assert tx["customer_id"].nunique() == 5_942
    assert tx["customer_id"].isna().sum() == 243_007
    assert tx["order_id"].nunique() == 53_628
    cancel = tx["order_id"].str.startswith("C")
    assert cancel.sum() == 19_494 and tx.loc[cancel, "order_id"].nunique() == 8_292
    assert tx["date"].min() == pd.Timestamp("2009-12-01 07:45") and tx["date"].max() == pd.Timestamp("2011-12-09 12:50")
    assert tx["amount"].sum() == pytest.approx(19_287_232.57, abs=0.01)
    assert tx["customer_id"].dropna().str.fullmatch(r"\d{5}").all()  # no "13085.0" float artefacts


def test_raw_quirks_are_reported_not_crashed(raw_loaded):
    rep = raw_loaded.report
    errors = rep[rep["severity"] == "error"]
    compl = errors[errors["problem"].str.contains("complete")].iloc[0]
    assert (compl.table, compl.column, compl["count"]) == ("transactions", "customer_id", 243_007)
    assert "77.2% complete" in compl.problem and "missing_customer_id" in compl.problem
    dups = errors[errors["problem"].str.contains("duplicate transaction lines")].iloc[0]
    assert dups["count"] == 34_335  # README: exact duplicate rows (copies after the first)


def test_shipped_config_validates_with_declared_drops(capsys, monkeypatch):
    seen = []   # the tables `segment validate` loaded (1M lines: not loaded a second time to count them)

    def keep(*args, **kwargs):
        seen.append(load_data(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr("segment.data.validate.load_data", keep)
    assert main(["validate", "--data", str(CONFIG)]) == 0
    out = capsys.readouterr().out
    # 1,067,370 − 243,007 without a customer − 26,479 further exact copies among the rest
    assert "797,884 rows" in out and "243007" in out and "26479" in out
    assert len(seen) == 1 and seen[0].path == CONFIG
    assert seen[0].tables.transactions["customer_id"].nunique() == 5_942


def test_without_the_drops_validation_fails_naming_the_quirks(tmp_path, raw_loaded):
    path = tmp_path / "raw.yaml"
    path.write_text(CONFIG.read_text(encoding="utf-8").replace("    drop: [missing_customer_id, duplicate_lines]\n", "")
                    .replace("path: ../../../shared", f"path: {ROOT.parent / 'shared'}"), encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_data(path)
    assert "customer_id" in str(e.value) and "duplicate transaction lines" in str(e.value)
