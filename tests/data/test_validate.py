"""Loading through a data config and validation: one test per failure kind, every message checked."""
from __future__ import annotations

import sqlite3
import textwrap

import duckdb
import pandas as pd
import pytest

from segment.cli import main
from segment.errors import ConfigError, DataError, SegmentError
from segment.data.validate import load_data

from ..conftest import write

CUSTOMERS = """customer_id,name,industry,region,created_date
C1,Alpha,retail,north,2020-01-15
C2,Beta,retail,south,2021-06-01
C3,Gamma,energy,east,2022-03-10
"""
TRANSACTIONS = """customer_id,date,amount,order_id
C1,2026-01-05,1000,O1
C1,2026-03-05,2500.5,O2
C2,2026-02-01,300,O3
C3,2026-04-01,50,O4
"""


def config(tmp_path, customers=CUSTOMERS, transactions=TRANSACTIONS, extra="", tx_extra=""):
    write(tmp_path / "customers.csv", customers)
    write(tmp_path / "transactions.csv", transactions)
    return write(tmp_path / "data.yaml", textwrap.dedent(f"""\
        name: t
        tables:
          customers: {{path: customers.csv}}
          transactions:
            path: transactions.csv
        {textwrap.indent(tx_extra, '    ')}
        {extra}
        """))


def problems(tmp_path, **kw) -> pd.DataFrame:
    with pytest.raises(DataError) as e:
        load_data(config(tmp_path, **kw))
    assert " failed validation: " in str(e.value) and not str(e.value).startswith("error")  # the CLI adds "error: "
    return e.value.report


def only(report: pd.DataFrame, problem: str) -> pd.Series:
    hit = report[report["problem"].str.contains(problem, regex=False)]
    assert len(hit) == 1, report.to_string()
    return hit.iloc[0]


def test_clean_data_loads_with_contract_types(tmp_path):
    loaded = load_data(config(tmp_path))
    t = loaded.tables
    assert t.present() == ["customers", "transactions"]
    assert t.transactions["amount"].tolist() == [1000.0, 2500.5, 300.0, 50.0]
    assert str(t.transactions["date"].dtype) == "datetime64[ns]"
    assert t.transactions["date"].iloc[1] == pd.Timestamp("2026-03-05")
    assert t.customers["customer_id"].tolist() == ["C1", "C2", "C3"]
    assert "_row" not in t.transactions
    assert loaded.report.empty


def test_missing_required_column_names_table_and_column(tmp_path):
    row = only(problems(tmp_path, transactions="customer_id,date\nC1,2026-01-05\n"), "required column missing")
    assert (row.table, row.column, row.severity) == ("transactions", "amount", "error")


def test_misspelt_column_suggests_the_mapping(tmp_path):
    tx = TRANSACTIONS.replace("customer_id,date,amount", "customer_id,date,Amount ")
    row = only(problems(tmp_path, transactions=tx), "required column missing")
    assert row.column == "amount" and "columns: {'Amount': amount}" in row.problem


def test_unparseable_dates_name_the_rows(tmp_path):
    tx = TRANSACTIONS.replace("2026-03-05", "2026-02-30").replace("2026-04-01", "soon")
    row = only(problems(tmp_path, transactions=tx), "unparseable date")
    assert (row.table, row.column, row["count"], row.rows) == ("transactions", "date", 2, "2, 4")
    assert row.example == "2026-02-30"


def test_text_in_amounts_is_not_a_number(tmp_path):
    tx = TRANSACTIONS.replace("2500.5", '"1,200"').replace(",300,", ",N/A,")
    row = only(problems(tmp_path, transactions=tx), "not a number")
    assert (row.column, row["count"], row.rows, row.example) == ("amount", 2, "2, 3", "1,200")


def test_duplicate_customer_ids(tmp_path):
    cu = CUSTOMERS + "C2,Beta Ltd,energy,west,2021-06-01\n"
    row = only(problems(tmp_path, customers=cu), "duplicate customer_id")
    assert (row.table, row.rows, row.example) == ("customers", "2, 4", "C2")
    assert "conflicting attributes" in row.problem


def test_transactions_for_unknown_customers(tmp_path):
    tx = TRANSACTIONS + "C9,2026-05-01,10,O5\n"
    row = only(problems(tmp_path, transactions=tx), "not in the customers table")
    assert (row.table, row.column, row.rows, row.example) == ("transactions", "customer_id", "5", "C9")
    assert "unknown_customers" in row.problem  # says how to declare the drop instead


def test_unknown_customers_can_be_dropped_with_a_warning(tmp_path):
    tx = TRANSACTIONS + "C9,2026-05-01,10,O5\n"
    loaded = load_data(config(tmp_path, transactions=tx, tx_extra="drop: [unknown_customers]"))
    assert "C9" not in set(loaded.tables.transactions["customer_id"])
    row = only(loaded.report, "not in the customers table")
    assert row.severity == "warning" and row["count"] == 1


def test_duplicate_transaction_lines(tmp_path):
    tx = TRANSACTIONS + "C1,2026-01-05,1000,O1\n"
    row = only(problems(tmp_path, transactions=tx), "duplicate transaction lines")
    assert (row.table, row.rows, row["count"]) == ("transactions", "5", 1)


def test_completeness_of_key_fields_below_95_percent(tmp_path):
    lines = [f"C1,2026-01-{d:02d},{d},O{d}" for d in range(1, 21)]
    lines[3] = "C1,2026-01-04,,O4"  # 19/20 = 95% is fine
    loaded = load_data(config(tmp_path, transactions="customer_id,date,amount,order_id\n" + "\n".join(lines) + "\n"))
    assert loaded.tables.transactions["amount"].isna().sum() == 1
    lines[4] = "C1,2026-01-05,,O5"  # 18/20 = 90%
    row = only(problems(tmp_path, transactions="customer_id,date,amount,order_id\n" + "\n".join(lines) + "\n"),
               "complete")
    assert (row.table, row.column, row.rows) == ("transactions", "amount", "4, 5")
    assert "90.0% complete" in row.problem and "95%" in row.problem


def test_dates_after_as_of_are_counted_not_fatal(tmp_path):
    loaded = load_data(config(tmp_path), as_of="2026-03-05")
    row = only(loaded.report, "dated after the as-of date 2026-03-05")
    assert (row.severity, row.table, row["count"], row.rows) == ("warning", "transactions", 1, "4")


def test_unknown_category_value(tmp_path):
    write(tmp_path / "interactions.csv", "customer_id,date,kind\nC1,2026-01-01,visit\nC2,2026-01-02,telepathy\n")
    path = config(tmp_path, extra="  interactions: {path: interactions.csv}")
    with pytest.raises(DataError) as e:
        load_data(path)
    row = only(e.value.report, "unknown value")
    assert (row.table, row.column, row.rows, row.example) == ("interactions", "kind", "2", "telepathy")


def test_every_failure_is_listed_at_once(tmp_path):
    tx = TRANSACTIONS.replace("2026-03-05", "bad").replace(",300,", ",x,") + "C9,2026-05-01,10,O5\n"
    cu = CUSTOMERS + "C1,Again,retail,north,2020-01-15\n"
    report = problems(tmp_path, transactions=tx, customers=cu)
    found = set(zip(report["table"], report["column"], report["problem"].str.split(" ").str[0]))
    # an unparseable value also counts as missing: 4 of 5 rows leave date and amount 80% complete
    assert found == {("transactions", "date", "unparseable"), ("transactions", "amount", "not"),
                     ("customers", "customer_id", "duplicate"), ("transactions", "customer_id", "customer_id"),
                     ("transactions", "date", "only"), ("transactions", "amount", "only")}
    assert (report["severity"] == "error").all()
    # each problem carries its rule's machine-readable name (pandera's failure `check`), last in the table
    assert list(report.columns)[-1] == "check"
    assert set(zip(report["column"], report["check"])) == {
        ("date", "unparseable_date"), ("amount", "not_a_number"), ("customer_id", "duplicate_id"),
        ("customer_id", "unknown_customer"), ("date", "incomplete"), ("amount", "incomplete")}


def test_mapping_date_format_and_amount_unit(tmp_path):
    write(tmp_path / "tx.csv", "客户编号,日期,金额(万元)\nC1,05/01/2026,1.5\nC2,28/02/2026,0.03\n")
    path = write(tmp_path / "data.yaml", textwrap.dedent("""\
        tables:
          transactions:
            path: tx.csv
            columns: {客户编号: customer_id, 日期: date, 金额(万元): amount}
            date_format: "%d/%m/%Y"
            amount_unit: 10000
        """))
    t = load_data(path).tables
    assert t.transactions["amount"].tolist() == [15000.0, 300.0]
    assert t.transactions["date"].tolist() == [pd.Timestamp("2026-01-05"), pd.Timestamp("2026-02-28")]
    assert t.customers is None


def test_amount_derived_from_quantity_and_price(tmp_path):
    write(tmp_path / "tx.csv", "cust,when,qty,price\nC1,2026-01-05,3,2.5\nC1,2026-01-06,-1,2.5\n")
    path = write(tmp_path / "data.yaml", "tables:\n  transactions:\n    path: tx.csv\n"
                 "    columns: {cust: customer_id, when: date, qty: quantity, price: unit_price}\n")
    loaded = load_data(path)
    assert loaded.tables.transactions["amount"].tolist() == [7.5, -2.5]
    assert only(loaded.report, "negative amounts")["count"] == 1


def test_excel_and_parquet_sources(tmp_path):
    tx = pd.DataFrame({"customer_id": ["C1", "C2"], "date": pd.to_datetime(["2026-01-05", "2026-02-01"]),
                       "amount": [10.0, 20.0]})
    tx.to_excel(tmp_path / "tx.xlsx", index=False, sheet_name="orders")
    tx.to_parquet(tmp_path / "tx.parquet")
    for src in ("{path: tx.xlsx, sheet: orders}", "{path: tx.parquet}"):
        path = write(tmp_path / "data.yaml", f"tables:\n  transactions: {src}\n")
        t = load_data(path).tables.transactions
        assert t["amount"].tolist() == [10.0, 20.0] and t["customer_id"].tolist() == ["C1", "C2"]


def test_sql_sources_duckdb_file_and_sqlalchemy_url_with_env_credentials(tmp_path, monkeypatch):
    with duckdb.connect(str(tmp_path / "crm.duckdb")) as con:
        con.execute("create table orders as select 'C1' as cust, date '2026-01-05' as d, 12.5 as amt")
    path = write(tmp_path / "data.yaml", "tables:\n  transactions:\n    sql:\n      url: duckdb:///crm.duckdb\n"
                 "      query: select cust, d, amt from orders\n    columns: {cust: customer_id, d: date, amt: amount}\n")
    assert load_data(path).tables.transactions["amount"].tolist() == [12.5]

    db = tmp_path / "crm.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("create table orders (customer_id text, date text, amount real)")
        con.execute("insert into orders values ('C7', '2026-03-01', 99.0)")
    path = write(tmp_path / "data2.yaml", "tables:\n  transactions:\n    sql:\n      url: sqlite:///${CRM_DB}\n"
                 "      query: select * from orders\n")
    monkeypatch.delenv("CRM_DB", raising=False)
    with pytest.raises(ConfigError, match="environment variable CRM_DB is not set"):
        load_data(path)
    monkeypatch.setenv("CRM_DB", str(db))
    assert load_data(path).tables.transactions["customer_id"].tolist() == ["C7"]


def test_config_errors_name_file_and_key(tmp_path):
    write(tmp_path / "transactions.csv", TRANSACTIONS)
    path = write(tmp_path / "data.yaml", "tables:\n  transactions: {path: transactions.csv, drop: [everything]}\n")
    with pytest.raises(ConfigError) as e:
        load_data(path)
    assert str(data_yaml := path) in str(e.value) and "tables.transactions.drop.0" in str(e.value)
    path = write(tmp_path / "data.yaml", "tables:\n  customers: {path: transactions.csv}\n")
    with pytest.raises(ConfigError, match="tables.transactions` is missing|mandatory"):
        load_data(path)
    path = write(tmp_path / "data.yaml", "tables:\n\ttransactions: {path: transactions.csv}\n")
    with pytest.raises(ConfigError, match="invalid YAML at line 2"):
        load_data(data_yaml)
    path = write(tmp_path / "data.yaml", "tables:\n  transactions: {path: nowhere.csv}\n")
    with pytest.raises(ConfigError, match="nowhere.csv not found"):
        load_data(path)


def test_empty_file_and_header_only(tmp_path):
    write(tmp_path / "transactions.csv", "")
    path = write(tmp_path / "data.yaml", "tables:\n  transactions: {path: transactions.csv}\n")
    with pytest.raises(SegmentError, match="the file is empty"):
        load_data(path)
    write(tmp_path / "transactions.csv", "customer_id,date,amount\n")
    with pytest.raises(DataError) as e:
        load_data(path)
    assert "no rows in" in e.value.report["problem"].iloc[0]


def test_cli_validate_exit_codes_and_messages(tmp_path, capsys):
    good = config(tmp_path)
    assert main(["validate", "--data", str(good)]) == 0
    assert capsys.readouterr().out.startswith("ok:")
    bad = config(tmp_path, transactions=TRANSACTIONS.replace("2026-03-05", "never"))
    assert main(["validate", "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "unparseable date" in err and "Traceback" not in err
    assert "transactions" in err and " 2 " in err


def test_load_table_reads_one_table_alone(tmp_path):
    """`segment review export` reads the customers table alone: the same frame load_data gives, even
    when another table's file is gone; its own errors still stop it."""
    import shutil

    import pytest

    from segment.demo.write import write_demo
    from segment.errors import DataError
    from segment.data.validate import load_data, load_table

    config = write_demo(tmp_path / "d", customers=300)
    whole = load_data(config).tables.customers
    pd.testing.assert_frame_equal(load_table(config, "customers"), whole)
    (config.parent / "transactions.parquet").unlink()
    pd.testing.assert_frame_equal(load_table(config, "customers"), whole)
    assert load_table(config, "no_such_table") is None
    bad = tmp_path / "bad"
    shutil.copytree(config.parent, bad)
    cu = pd.read_csv(bad / "customers.csv", dtype=str, keep_default_na=False)
    cu.loc[0, "status"] = "gone"
    cu.to_csv(bad / "customers.csv", index=False)
    with pytest.raises(DataError) as e:
        load_table(bad / "data.yaml", "customers")
    assert "unknown value" in str(e.value) and "gone" in str(e.value)


@pytest.mark.parametrize("query, message", [
    ("DROP TABLE orders", "must be a SELECT"),
    ("select * from orders; drop table orders", "must be one statement"),
    ("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", "contains DELETE"),
    ("SELECT * INTO copy FROM orders", "contains INTO"),
    ("COPY (SELECT 1) TO 'leak.csv'", "must be a SELECT"),
])
def test_sql_source_queries_only_read(tmp_path, query, message):
    """A source query that would change the source (or write a file) is refused before it runs, naming
    the key; the database is untouched."""
    db = tmp_path / "crm.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("create table orders (customer_id text, date text, amount real)")
        con.execute("insert into orders values ('C7', '2026-03-01', 99.0)")
    before = db.read_bytes()
    path = write(tmp_path / "data.yaml", f"tables:\n  transactions:\n    sql:\n      url: sqlite:///{db}\n"
                 f"      query: \"{query}\"\n")
    with pytest.raises(ConfigError, match=rf"tables\.transactions\.sql\.query.*{message}"):
        load_data(path)
    assert db.read_bytes() == before and not (tmp_path / "leak.csv").exists()


def test_sqlite_sources_are_opened_read_only(tmp_path):
    """Even a query that slips past the text check cannot write: the SQLite file is opened read-only."""
    from segment.data.sources import _read_source
    from segment.data.config import read_data_config

    db = tmp_path / "crm.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("create table orders (customer_id text, date text, amount real)")
    path = write(tmp_path / "data.yaml", f"tables:\n  transactions:\n    sql:\n      url: sqlite:///{db}\n"
                 "      query: select * from orders\n")
    config = read_data_config(path)
    config.tables["transactions"].sql.query = "create table x (a int)"  # bypassing the validator on purpose
    with pytest.raises(ConfigError, match="the query failed.*readonly"):
        _read_source(path, "transactions", config.tables["transactions"])
    with sqlite3.connect(db) as con:
        assert [r[0] for r in con.execute("select name from sqlite_master")] == ["orders"]


def test_common_slips_are_warned_not_graded_silently(tmp_path, capsys):
    """Amounts in 万元 without amount_unit, growth rates and shares written as percents, a 0–100
    survey: each a warning naming the column, its count, rows and an example — and the fix."""
    from segment.cli import main

    n = 40
    (tmp_path / "tx.csv").write_text("customer_id,date,amount\n" + "".join(
        f"C{i % 8},2026-0{1 + i % 9}-1{i % 10},{0.5 + (i % 7) * 1.1:.2f}\n" for i in range(n)), encoding="utf-8")
    (tmp_path / "cu.csv").write_text("customer_id,industry_growth,budget_growth,market_share\n" + "".join(
        f"C{i},{12 + i},{0.1 * i:.1f},{35 if i == 3 else 0.2}\n" for i in range(8)), encoding="utf-8")
    (tmp_path / "it.csv").write_text("customer_id,date,kind,score\n" + "".join(
        f"C{i},2026-05-0{1 + i},survey,{80 if i < 4 else 8}\n" for i in range(8)), encoding="utf-8")
    (tmp_path / "data.yaml").write_text("tables:\n  transactions: {path: tx.csv}\n  customers: {path: cu.csv}\n"
                                        "  interactions: {path: it.csv}\n", encoding="utf-8")
    report = load_data(tmp_path / "data.yaml").report  # warnings only: loads
    got = {(r.table, r.column): r for r in report.itertuples()}
    small = got[("transactions", "amount")]
    assert small.severity == "warning" and small.count == n and "100% of the purchase lines are below 10" in small.problem
    assert "amount_unit: 10000" in small.problem
    growth = got[("customers", "industry_growth")]
    assert growth.count == 8 and "above 1 (100% a year) on 8 of 8 rows" in growth.problem and "0.12" in growth.problem
    assert ("customers", "budget_growth") not in got  # 0.0 … 0.7: fractions
    share = got[("customers", "market_share")]
    assert share.count == 1 and share.rows == "4" and share.example == "35" and "0.35 for 35%" in share.problem
    scale = got[("interactions", "score")]
    assert scale.count == 4 and scale.rows == "1, 2, 3, 4" and "0–10 scale" in scale.problem
    # with amount_unit declared the amounts are plausible
    (tmp_path / "data.yaml").write_text("tables:\n  transactions: {path: tx.csv, amount_unit: 10000}\n",
                                        encoding="utf-8")
    assert load_data(tmp_path / "data.yaml").report.empty
    # every command prints them: segment validate lists them and exits 0
    (tmp_path / "data.yaml").write_text("tables:\n  transactions: {path: tx.csv}\n  interactions: {path: it.csv}\n",
                                        encoding="utf-8")
    assert main(["validate", "--data", str(tmp_path / "data.yaml")]) == 0
    out = capsys.readouterr().out
    assert "below 10 currency units" in out and "0–10 scale" in out
