"""Declared fields and indicators (issue 15, deliverables 1–4): a company's own columns validated like
the contract's, measures over the point-in-time facts table, windowed aggregates with a filter and
expressions — each value checked against a hand computation on a tiny company.

as_of = 2026-06-30: the cut-off is 2026-07-01 00:00; a 90d window is [2026-04-02, 2026-07-01)."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd
import pytest

from segment.data.contract import field_column
from segment.data.tables import Tables
from segment.data.validate import load_data
from segment.errors import ConfigError, DataError, MissingInputs, MissingOptional
from segment.features.declared import Declared, DeclaredIndicator, window_days
from segment.grading.engine import grade
from segment.grading.scheme import Scheme
from segment.data.config import read_data_config
from segment.cli import main

AS_OF = "2026-06-30"


def _tables(indicators: dict[str, dict], **extra) -> Tables:
    tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "b"],
                       "date": pd.to_datetime(["2024-05-01", "2026-03-01", "2026-06-30 23:00", "2026-05-01",
                                               "2026-07-01"], format="ISO8601"),
                       "amount": [100.0, 50.0, 20.0, 30.0, 999.0],
                       "product_line": ["A", "A", "B", "A", "A"]})
    cu = pd.DataFrame({"customer_id": ["a", "b", "c"], "market_share": [0.10, 0.20, 0.30],
                       "agent": pd.array([True, False, None], dtype="boolean")})
    ms = pd.DataFrame({
        "customer_id": ["a", "a", "a", "a", "b", "b", "b", "c"],
        "date": pd.to_datetime(["2025-12-31", "2026-03-31", "2026-06-30", "2026-07-01", "2026-03-31",
                                "2026-03-31", "2026-06-01", "2027-01-01"]),
        "measure": ["deposits", "deposits", "deposits", "deposits", "deposits", "deposits", "market_share",
                    "market_share"],
        "value": [100.0, 250.0, 300.0, 9999.0, 40.0, 60.0, 0.25, 0.9]})
    declared = Declared(fields={"customers": (field_column("agent", "bool"),)},
                        indicators={n: DeclaredIndicator(**spec) for n, spec in indicators.items()})
    return Tables(transactions=tx, customers=cu, measures=ms, declared=declared, **extra)


SPECS = {
    "deposits": {"measure": "deposits"},
    "deposits_90d": {"measure": "deposits", "window": "90d"},
    "dep_mean_12m": {"measure": "deposits", "agg": "mean", "window": "12m"},
    "dep_sum": {"measure": "deposits", "agg": "sum", "window": "all"},
    "dep_min": {"measure": "deposits", "agg": "min"},
    "dep_max": {"measure": "deposits", "agg": "max"},
    "dep_n": {"measure": "deposits", "agg": "count", "window": "365d"},
    "dep_change_6m": {"measure": "deposits", "agg": "change", "window": "6m"},
    "line_a_2y": {"table": "transactions", "column": "amount", "agg": "sum", "window": "730d",
                  "where": "product_line == 'A'"},
    "lines_90d": {"table": "transactions", "agg": "count", "window": "90d", "where": "amount > 0"},
    "wealth": {"expr": "deposits + annual_amount / 2"},
    "per_line": {"expr": "line_a_2y / lines_90d"},
}


@pytest.fixture(scope="module")
def snap():
    return _tables(SPECS).snapshot(AS_OF).set_index("customer_id")


def test_measures_are_read_as_of_the_date(snap):
    # a: deposits 100 (2025-12-31), 250 (2026-03-31), 300 (2026-06-30); 9999 on 2026-07-01 is after the cut-off
    a, b, c = snap.loc["a"], snap.loc["b"], snap.loc["c"]
    assert a["deposits"] == 300.0
    assert b["deposits"] == 60.0  # two values on one day: the larger (deterministic)
    assert math.isnan(c["deposits"])  # no deposits row
    # 90d window [2026-04-02, 2026-07-01): a's 300 is in; b's last value (2026-03-31) is not
    assert a["deposits_90d"] == 300.0 and math.isnan(b["deposits_90d"])
    # 12m window [2025-07-01, 2026-07-01): mean of 100, 250, 300
    assert a["dep_mean_12m"] == pytest.approx(650 / 3)
    assert a["dep_sum"] == 650.0 and b["dep_sum"] == 100.0 and c["dep_sum"] == 0.0  # sums: 0 without rows
    assert (a["dep_min"], a["dep_max"]) == (100.0, 300.0)
    assert (a["dep_n"], b["dep_n"], c["dep_n"]) == (3, 2, 0)
    # change over 6m (182 days): latest before the cut-off (300) − latest before 2025-12-31 00:00 (none) → missing;
    # b: 60 − nothing before 2025-12-31 → missing
    assert math.isnan(a["dep_change_6m"])


def test_change_over_a_window_is_the_difference_of_two_latest_values():
    t = _tables({"dep_change_5m": {"measure": "deposits", "agg": "change", "window": "150d"}})
    s = t.snapshot(AS_OF).set_index("customer_id")
    # 150 days before 2026-07-01 is 2026-02-01: latest before it is 100 (2025-12-31); now 300
    assert s.loc["a", "dep_change_5m"] == 200.0
    assert math.isnan(s.loc["b", "dep_change_5m"])  # nothing before 2026-02-01


def test_windowed_aggregates_with_a_filter_and_expressions(snap):
    a, b = snap.loc["a"], snap.loc["b"]
    # line A in [2024-07-01, 2026-07-01): a's 50 (2026-03-01); its 100 of 2024-05-01 is older; b's 30; b's 999 is after
    assert a["line_a_2y"] == 50.0 and b["line_a_2y"] == 30.0
    assert a["lines_90d"] == 1 and b["lines_90d"] == 1  # a: 2026-06-30 23:00; b: 2026-05-01
    # annual_amount (12m): a = 50 + 20, b = 30
    assert a["wealth"] == pytest.approx(300 + 70 / 2)
    assert b["wealth"] == pytest.approx(60 + 30 / 2)
    assert math.isnan(snap.loc["c", "wealth"])  # c has no deposits: the sum is missing
    assert a["per_line"] == 50.0 and b["per_line"] == 30.0

def test_expression_arithmetic_and_division_by_zero():
    t = _tables({"line_a_2y": SPECS["line_a_2y"], "none_90d": {"table": "transactions", "agg": "count",
                                                             "window": "90d", "where": "amount > 10000"},
                 "ratio": {"expr": "line_a_2y / none_90d"}, "deposits": SPECS["deposits"],
                 "wealth": SPECS["wealth"]})
    s = t.snapshot(AS_OF).set_index("customer_id")
    assert s["ratio"].isna().all()  # division by zero is missing, not inf
    assert s.loc["b", "wealth"] == pytest.approx(60 + 30 / 2)
    assert math.isnan(s.loc["c", "wealth"])  # c has no deposits
    assert s["ratio"].dtype == "float64" and s["none_90d"].dtype == "int64"


def test_declared_customer_fields_are_indicators_and_attribute_history_wins(snap):
    assert snap["agent"].dtype == "boolean"
    assert snap.loc["a", "agent"] is True or snap.loc["a", "agent"] == True  # noqa: E712
    # market_share: b has history 0.25 on 2026-06-01 → 0.25 (not the customers table's 0.20); a and c have
    # none by the cut-off (c's 0.9 is dated 2027) → the customers table's value
    assert snap.loc["b", "market_share"] == 0.25
    assert snap.loc["a", "market_share"] == 0.10 and snap.loc["c", "market_share"] == 0.30
    past = _tables(SPECS).snapshot("2026-04-30").set_index("customer_id")
    assert past.loc["b", "market_share"] == 0.20  # before the 2026-06-01 record


def test_nothing_after_the_as_of_date_changes_a_value():
    base = _tables(SPECS).snapshot(AS_OF)
    t = _tables(SPECS)
    ms = t.measures
    later = pd.DataFrame({"customer_id": ["a", "b", "c"], "date": pd.to_datetime(["2026-07-01"] * 3),
                          "measure": ["deposits", "market_share", "deposits"], "value": [1e9, 0.99, 5.0]})
    t.measures = pd.concat([ms, later], ignore_index=True)
    pd.testing.assert_frame_equal(t.snapshot(AS_OF), base)


def test_windows_are_days_or_months():
    assert window_days("90d") == 90 and window_days("12m") == 365 and window_days("3m") == 91
    assert window_days("all") is None and window_days(None) is None
    for bad in ("0d", "1y", "12 months", "-3d"):
        with pytest.raises(ValueError, match="write days"):
            window_days(bad)


@pytest.mark.parametrize("spec, words", [
    ({"measure": "x", "table": "transactions", "column": "amount", "agg": "sum"}, "exactly one of"),
    ({"table": "transactions", "column": "amount"}, "`agg` is missing"),
    ({"table": "transactions", "agg": "sum"}, "needs a `column`"),
    ({"measure": "x", "agg": "change"}, "needs a `window`"),
    ({"expr": "a + b", "window": "90d"}, "takes no agg"),
    ({"expr": "a +"}, "does not parse"),
    ({"measure": "x", "where": "value >"}, "does not parse"),
])
def test_a_malformed_declaration_says_what_to_write(spec, words):
    with pytest.raises(ValueError, match=words):
        DeclaredIndicator(**spec)


def _config(tmp_path: Path, body: str) -> Path:
    (tmp_path / "tx.csv").write_text("customer_id,date,amount,deposit_total,channel_share\n"
                                     "a,2026-01-05,10,5,0.5\nb,2026-02-01,20,7,1.5\n", encoding="utf-8")
    (tmp_path / "cu.csv").write_text("customer_id,tier_hint,agent\na,gold,yes\nb,silver,maybe\n", encoding="utf-8")
    (tmp_path / "ms.csv").write_text("customer_id,date,measure,value\na,2026-01-31,deposits,100\n", encoding="utf-8")
    path = tmp_path / "data.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_declared_fields_are_validated_like_contract_columns(tmp_path):
    path = _config(tmp_path, """
tables:
  transactions:
    path: tx.csv
    amount_unit: 10000
    fields:
      deposit_total: {type: money, meaning: deposits on the order}
      channel_share: {type: share}
  customers:
    path: cu.csv
    fields:
      tier_hint: {type: category, values: [gold, silver, bronze]}
      agent: {type: bool}
""")
    with pytest.raises(DataError) as e:
        load_data(path)
    report = e.value.report
    bad_bool = report[(report["table"] == "customers") & (report["column"] == "agent")]
    assert len(bad_bool) == 1 and "maybe" in str(bad_bool["example"].iloc[0])
    share = report[report["check"] == "share_out_of_range"]
    assert list(share["column"]) == ["channel_share"]
    loaded = load_data(path, strict=False)
    tx = loaded.tables.transactions
    assert list(tx["deposit_total"]) == [50000.0, 70000.0]  # money is scaled by amount_unit, as amount is
    assert list(tx["amount"]) == [100000.0, 200000.0]
    s = loaded.tables.snapshot("2026-03-31").set_index("customer_id")
    assert list(s["tier_hint"]) == ["gold", "silver"] and s.loc["a", "agent"] == True  # noqa: E712


def test_config_errors_name_the_key_and_the_fix(tmp_path):
    cases = [
        ("tables: {transactions: {path: tx.csv, fields: {amount: {type: money}}}}", "tables.transactions.fields.amount",
         "already a contract column"),
        ("tables: {transactions: {path: tx.csv}, customers: {path: cu.csv, fields: {annual_amount: {type: number}}}}",
         "tables.customers.fields.annual_amount", "built-in indicator"),
        ("tables: {transactions: {path: tx.csv}}\nindicators: {recency_days: {expr: 'annual_amount'}}",
         "indicators.recency_days", "already a built-in"),
        ("tables: {transactions: {path: tx.csv}}\nindicators: {dep: {measure: deposits}}", "indicators.dep",
         "does not load"),
        ("tables: {transactions: {path: tx.csv}}\nindicators: {x: {expr: 'annual_amount + nope'}}", "indicators.x.expr",
         "nope"),
        ("tables: {transactions: {path: tx.csv}}\nindicators: {x: {table: transactions, column: nope, agg: sum}}",
         "indicators.x", "no column 'nope'"),
        ("tables: {transactions: {path: tx.csv}}\nindicators: missing.yaml", "indicators", "does not exist"),
        ("tables: {transactions: {path: tx.csv, fields: {Bad-Name: {type: number}}}}", "Bad-Name", "not a usable name"),
    ]
    for body, key, words in cases:
        path = _config(tmp_path, body)
        with pytest.raises(ConfigError) as e:
            read_data_config(path)
        assert key in str(e.value) and words in str(e.value), (body, str(e.value))


def test_an_indicators_file_beside_the_config_and_the_cli_listing(tmp_path, capsys):
    (tmp_path / "ind").mkdir()
    (tmp_path / "ind" / "company.yaml").write_text(
        "indicators:\n  deposits: {measure: deposits, unit: currency, meaning: deposit balance}\n"
        "  big: {expr: 'deposits / 10000', unit: 万}\n", encoding="utf-8")
    path = _config(tmp_path, "tables: {transactions: {path: tx.csv}, measures: {path: ms.csv}}\n"
                             "indicators: ind/company.yaml\n")
    assert main(["indicators", "--data", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in out}
    assert "annual_amount" in rows  # the built-ins stay listed
    assert "deposit balance" in rows["deposits"] and "measures" in rows["deposits"] and "latest" in rows["deposits"]
    assert "expression" in rows["big"] and "as its inputs" in rows["big"]
    s = load_data(path).tables.snapshot("2026-03-31").set_index("customer_id")
    assert s.loc["a", "deposits"] == 100.0 and s.loc["a", "big"] == 0.01


def _scheme(optional: list[str]) -> Scheme:
    return Scheme.model_validate({
        "id": "t", "optional": optional,
        "indicators": {"assets": {"column": "customer_assets", "bands": [{"from": 0, "below": 100, "points": 1},
                                                                         {"from": 100, "points": 5}],
                                  "missing_points": 0},
                       "amount": {"column": "annual_amount", "bands": [{"from": 0, "points": 3}], "missing_points": 0}},
        "dimensions": {"v": {"weight": 1, "indicators": {"assets": 0.5, "amount": 0.5}}},
        "tiers": [{"id": "hi", "min_score": 3.5}, {"id": "lo"}]})


def test_an_optional_input_missing_from_the_data_is_graded_as_missing_with_one_warning():
    snap = _tables({}).snapshot(AS_OF)
    with pytest.raises(MissingInputs, match="customer_assets"):
        grade(snap, _scheme([]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = grade(snap, _scheme(["customer_assets"]))
    texts = [str(w.message) for w in caught if issubclass(w.category, MissingOptional)]
    assert len(texts) == 1 and "customer_assets" in texts[0] and "it is graded as missing" in texts[0]
    assert "segment indicators --data" in texts[0]
    assert (g.frame["score"] == 1.5).all()  # 0.5 × 0 (missing) + 0.5 × 3
    with pytest.raises(ValueError, match="not read by the scheme"):
        _scheme(["nope"])


def test_present_optional_inputs_are_graded_normally():
    t = _tables({"deposits": SPECS["deposits"], "customer_assets": {"expr": "deposits * 1"}})
    g = grade(t.snapshot(AS_OF), _scheme(["customer_assets"])).frame.set_index("customer_id")
    assert g.loc["a", "score"] == pytest.approx(0.5 * 5 + 0.5 * 3)  # a: deposits 300 ≥ 100
    assert g.loc["c", "score"] == pytest.approx(1.5)


def test_the_cli_prints_one_warning_line_for_absent_optional_inputs(tmp_path, capsys):
    import yaml

    path = _config(tmp_path, "tables: {transactions: {path: tx.csv}}\n")
    scheme = tmp_path / "s.yaml"
    scheme.write_text(yaml.safe_dump(_scheme(["customer_assets"]).model_dump(exclude_defaults=True)), encoding="utf-8")
    assert main(["grade", "--data", str(path), "--scheme", str(scheme), "--as-of", "2026-03-31",
                 "--out", str(tmp_path / "g.csv")]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "customer_assets" in line]
    assert len(err) == 1 and err[0].startswith("warning: ") and "optional" in err[0]
    assert (tmp_path / "g.csv").is_file()


def test_declarations_are_checked_against_the_loaded_data(tmp_path):
    """A misspelt measure, a `where` or column the table does not have: an error naming the key, at load."""
    cases = [
        ("indicators: {dep: {measure: deposit}}", "indicators.dep.measure", "holds: deposits"),
        ("indicators: {x: {table: transactions, column: amount, agg: sum, where: \"prod_line == 'A'\"}}",
         "indicators.x.where", "prod_line"),
        ("indicators: {x: {table: transactions, column: margin, agg: sum}}", "indicators.x.column", "margin"),
    ]
    for extra, key, words in cases:
        path = _config(tmp_path, "tables: {transactions: {path: tx.csv}, measures: {path: ms.csv}}\n" + extra + "\n")
        with pytest.raises(ConfigError) as e:
            load_data(path)
        assert key in str(e.value) and words in str(e.value), (extra, str(e.value))


def test_a_mistake_inside_the_inline_indicators_names_a_readable_key(tmp_path):
    path = _config(tmp_path, "tables: {transactions: {path: tx.csv}, measures: {path: ms.csv}}\n"
                             "indicators: {dep: {measure: deposits, window: 1y}}\n")
    with pytest.raises(ConfigError) as e:
        read_data_config(path)
    assert "key `indicators.dep.window`" in str(e.value) and "more problem" not in str(e.value)


def test_categories_have_history_too_industry_and_the_opportunities_stage():
    """A measure with a `text`: `column: text` reads it; a measure named like a customers category column
    (industry) is its history; the measure `stage` is the history of latest_stage."""
    tx = pd.DataFrame({"customer_id": ["a", "b"], "date": pd.to_datetime(["2026-01-05", "2026-02-01"]),
                       "amount": [10.0, 20.0]})
    cu = pd.DataFrame({"customer_id": ["a", "b"], "industry": ["Retail", "Energy"]})
    op = pd.DataFrame({"opportunity_id": ["o1", "o2"], "customer_id": ["a", "b"],
                       "created_date": pd.to_datetime(["2025-10-01", "2025-11-01"]), "stage": ["A02", "A05"]})
    ms = pd.DataFrame({"customer_id": ["a", "a", "a", "a", "b"],
                       "date": pd.to_datetime(["2025-10-01", "2026-03-01", "2026-06-01", "2025-01-01", "2025-12-01"]),
                       "measure": ["stage", "stage", "stage", "industry", "tier_hint"],
                       "value": [None, None, None, None, 3.0],
                       "text": ["A21", "A05", "A02", "Wholesale", "gold"]})
    declared = Declared(indicators={"hint": DeclaredIndicator(measure="tier_hint", column="text"),
                                    "hint_value": DeclaredIndicator(measure="tier_hint")})
    t = Tables(transactions=tx, customers=cu, opportunities=op, measures=ms, declared=declared)
    now = t.snapshot("2026-09-30").set_index("customer_id")
    past = t.snapshot("2026-03-31").set_index("customer_id")
    assert now.loc["a", "latest_stage"] == "A02" and past.loc["a", "latest_stage"] == "A05"  # was A02 (last record)
    assert now.loc["b", "latest_stage"] == "A05"  # no stage history: the opportunities table's stage
    assert now.loc["a", "industry"] == "Wholesale" and now.loc["b", "industry"] == "Energy"
    assert now.loc["b", "hint"] == "gold" and now["hint"].dtype == "string" and now.loc["b", "hint_value"] == 3.0
    with pytest.raises(ValueError, match="latest or count"):
        DeclaredIndicator(measure="tier_hint", column="text", agg="mean")
