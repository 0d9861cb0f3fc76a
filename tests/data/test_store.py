"""segment.data.store: every source read, cast and checked in DuckDB, kept in memory or on disk.

Where the database lives (``storage: memory`` or ``disk``) must change nothing: the same validation
report, tables, snapshots, churn labels, gradings and calibration; the report build never fetches a
whole table into pandas; the problems of a file with every kind of quirk are frozen below.
"""
from __future__ import annotations

import gc
import shutil
from pathlib import Path

import pandas as pd
import pytest

from segment.data import database, rules, tables
from segment.calibration.churn import ChurnDefinition, churn_labels
from segment.errors import DataError
from segment.features.snapshot import snapshot
from segment.data.validate import load_data

DATES = ["2025-06-30", "2026-09-30"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A 1,200-customer demo with two data configs over the same files: memory.yaml and disk.yaml."""
    from segment.demo.write import write_demo

    out = tmp_path_factory.mktemp("demo")
    write_demo(out, customers=1200)
    text = (out / "data.yaml").read_text(encoding="utf-8")
    (out / "memory.yaml").write_text(text + "storage: memory\n", encoding="utf-8")
    (out / "disk.yaml").write_text(text + "storage: disk\n", encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def both(demo):
    return load_data(demo / "memory.yaml"), load_data(demo / "disk.yaml")


def test_demo_loads_the_same_either_way(both):
    mem, duck = both
    assert mem.tables.storage == "memory" and duck.tables.storage == "disk"
    pd.testing.assert_frame_equal(mem.report, duck.report)
    assert duck.tables.present() == mem.tables.present()
    for name in mem.tables.present():
        assert duck.tables.rows(name) == mem.tables.rows(name)
        assert duck.tables.columns(name) == mem.tables.columns(name)
    assert duck.tables.date_range() == mem.tables.date_range()
    assert duck.tables.fetched == []
    for name in mem.tables.present():  # fetching is possible (and recorded): the same frames, in file order
        a, b = mem.tables.get(name), duck.tables.get(name)
        pd.testing.assert_frame_equal(a, b[list(a.columns)], check_exact=False, rtol=1e-12)
    assert duck.tables.fetched == mem.tables.present()
    duck.tables.fetched.clear()


@pytest.mark.parametrize("day", DATES)
def test_snapshots_and_churn_labels_are_the_same(both, day):
    mem, duck = both
    a, b = snapshot(mem.tables, day), snapshot(duck.tables, day)
    assert len(a) > 900
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    some = a["customer_id"].iloc[::7].tolist()
    pd.testing.assert_frame_equal(snapshot(mem.tables, day, customers=some), snapshot(duck.tables, day, customers=some),
                                  check_exact=False, rtol=1e-9)
    for definition in (ChurnDefinition(), ChurnDefinition(revenue_drop=0.5, lost_status=True)):
        la = churn_labels(mem.tables, day, 180, definition, "2026-09-30")
        lb = churn_labels(duck.tables, day, 180, definition, "2026-09-30")
        assert la["churn"].notna().any() or day == "2026-09-30"
        pd.testing.assert_frame_equal(la, lb, check_exact=False, rtol=1e-9)
    assert duck.tables.fetched == []


@pytest.mark.parametrize("scheme", ["s1_four_tier", "s2_rfm_lifecycle", "s7_sales_stages",
                                    "s8_government_product_line", "s9_property_buyers", "rfm_quantiles"])
def test_gradings_are_the_same(demo, scheme):
    from segment.pipeline import grade_data

    a = grade_data(demo / "memory.yaml", scheme, "2026-06-30")
    b = grade_data(demo / "disk.yaml", scheme, "2026-06-30")
    assert b.loaded.tables.storage == "disk"
    assert len(a.frame) > 100
    pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=False, rtol=1e-9)
    assert a.lost_before == b.lost_before
    assert b.loaded.tables.fetched == []


def test_calibration_is_the_same(both):
    from segment.calibration.run import calibrate
    from segment.grading.scheme import load_scheme

    scheme = load_scheme("s1_four_tier")
    args = (["2025-03-31", "2025-06-30"], "2026-03-31", 180)
    a = calibrate(both[0].tables, scheme, *args)
    b = calibrate(both[1].tables, scheme, *args)
    for k in ("expert", "calibrated"):
        assert a.metrics[k]["test"]["auc"] == pytest.approx(b.metrics[k]["test"]["auc"], rel=1e-9)
    assert a.calibrated.weights() == pytest.approx(b.calibrated.weights(), rel=1e-9)
    pd.testing.assert_frame_equal(a.train.rows, b.train.rows, check_exact=False, rtol=1e-9)
    assert both[1].tables.fetched == []


QUIRKS = """\
cust,order_id,day,qty,price,channel,note
C1,O1,03/01/2026,2,0.5,online,a
C1,O1,03/01/2026,2,0.5,online,a
C2,O2,04/01/2026,1,1.2,store,
,O3,05/01/2026,1,1.0,online,no customer
C9,O4,06/01/2026,1,1.0,online,unknown customer
C2,O5,31/02/2026,1,1.0,online,impossible date
C2,O6,07/01/2026,"1,200",1.0,online,thousands separator
C2,O7,08/01/2026,1,inf,online,infinite price
C1,O8,09/01/2026,-1,0.5,online,return
C1,O9,10/01/2026,0,0.5,store,zero
C2,O10,01/12/2026,1,1.0,online,future
C1,O11,11/01/2026,1,9e9,online,implausible
C1,O12,12/01/2026,1,0.3,fax,bad channel
"""
CUSTOMERS = """\
customer_id,name,industry,size_employees,strategic,status,created_date
C1,甲,retail,12,yes,active,2020-01-01
C2,乙,retail,3.5,no,gone,2021-02-03
C2,乙二,energy,4,maybe,active,2021-02-03
C3,丙,energy,,, ,2022-13-01
"""


#: what validation says about QUIRKS / CUSTOMERS for each `drop:` (severity, table, column, problem, count,
#: rows, example): frozen from the pandas loader that preceded the DuckDB one (they gave the same)
_NUMBER = ("not a number (write plain digits such as 1200.5: no thousands separators, currency signs or units — "
           "declare `amount_unit:` for 万)")
_IMPLAUSIBLE = ("implausible amount (beyond ±1e+12 after amount_unit); check the unit, the decimal separator or a "
                "stray exponent in the source")
_CUSTOMER_VALUES = [
    ("error", "customers", "size_employees", "not a whole number", 1, "2", "3.5"),
    ("error", "customers", "created_date", "unparseable date (expected ISO YYYY-MM-DD)", 1, "4", "2022-13-01"),
    ("error", "customers", "strategic", "not true/false", 1, "3", "maybe"),
    ("error", "customers", "status", "unknown value (allowed: active, lost, closed)", 1, "2", "gone")]
_TX_VALUES = [
    ("transactions", "date", "unparseable date (expected %d/%m/%Y)", 1, "6", "31/02/2026"),
    ("transactions", "quantity", _NUMBER, 1, "7", "1,200"),
    ("transactions", "unit_price", _NUMBER, 1, "8", "inf"),
    ("transactions", "unit_price", _IMPLAUSIBLE, 1, "12", "9e+13")]
_DUPLICATE_IDS = ("error", "customers", "customer_id", "duplicate customer_id (1 ids on 2 rows, with conflicting "
                  "attributes); keep one row per id", 2, "2, 3", "C2")
_DROPPED = [
    ("warning", "transactions", "customer_id", "rows without a customer_id — dropped (drop: missing_customer_id)", 1,
     "4", ""),
    ("warning", "transactions", "", "duplicate transaction lines (every column equal to an earlier line) — dropped "
     "(drop: duplicate_lines)", 1, "2", "O1")]
_RETURNS_ZEROS = [
    ("warning", "transactions", "amount", "negative amounts (returns / cancellations): kept, they reduce revenue", 1,
     "9", "-5000"),
    ("warning", "transactions", "amount", "zero amounts: kept, but not purchases: no order, no revenue (a purchase "
     "is a line with amount > 0)", 1, "10", "0")]
_UNKNOWN_DROPPED = ("warning", "transactions", "customer_id", "customer_id not in the customers table — dropped "
                    "(drop: unknown_customers)", 1, "5", "C9")
_LATE = ("warning", "transactions", "date", "dated after the as-of date 2026-09-30: counted here, never used in "
         "features", 1, "11", "2026-12-01")
_INCOMPLETE = "; fill the field in the source"
QUIRK_PROBLEMS = {
    "": [*_CUSTOMER_VALUES, *(("error", *p) for p in _TX_VALUES), _DUPLICATE_IDS,
         ("error", "transactions", "", "duplicate transaction lines (every column equal to an earlier line); fix the "
          "source or add `duplicate_lines` to tables.transactions.drop", 1, "2", "O1"),
         ("error", "transactions", "customer_id", "customer_id not in the customers table; fix the source or add "
          "`unknown_customers` to tables.transactions.drop", 1, "5", "C9"),
         ("error", "transactions", "customer_id", "only 92.3% complete (at least 95% needed, SEEDS step 3)"
          + _INCOMPLETE + " or add `missing_customer_id` to drop:", 1, "4", ""),
         ("error", "transactions", "date", "only 92.3% complete (at least 95% needed, SEEDS step 3)" + _INCOMPLETE,
          1, "6", ""),
         ("error", "transactions", "amount", "only 76.9% complete (at least 95% needed, SEEDS step 3)" + _INCOMPLETE,
          3, "7, 8, 12", ""),
         *_RETURNS_ZEROS, _LATE],
    # rows 4 (no id), 2 (a duplicate) and 5 (unknown) dropped: 10 lines left, 1 without a date, 3 without amounts
    "missing_customer_id, duplicate_lines, unknown_customers": [
        *_CUSTOMER_VALUES, *(("error", *p) for p in _TX_VALUES), _DUPLICATE_IDS,
        ("error", "transactions", "date", "only 90.0% complete (at least 95% needed, SEEDS step 3)" + _INCOMPLETE,
         1, "6", ""),
        ("error", "transactions", "amount", "only 70.0% complete (at least 95% needed, SEEDS step 3)" + _INCOMPLETE,
         3, "7, 8, 12", ""),
        *_DROPPED, *_RETURNS_ZEROS, _UNKNOWN_DROPPED, _LATE],
    # and the four unparseable rows too: what is left is complete
    "missing_customer_id, duplicate_lines, unknown_customers, unparseable_rows": [
        *_CUSTOMER_VALUES, _DUPLICATE_IDS,
        *(("warning", t, c, p + " — rows dropped (drop: unparseable_rows)", n, r, e) for t, c, p, n, r, e in _TX_VALUES),
        *_DROPPED, *_RETURNS_ZEROS, _UNKNOWN_DROPPED, _LATE],
}

def _quirks(folder: Path, drop: str, fmt: str = "csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tx.csv").write_text(QUIRKS, encoding="utf-8")
    if fmt == "parquet":  # the same text cells in a Parquet file (kept as a view over the file, not copied)
        import io

        pd.read_csv(io.StringIO(QUIRKS), dtype=str, keep_default_na=False).to_parquet(folder / "tx.parquet")
        (folder / "tx.csv").unlink()
    (folder / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (folder / "data.yaml").write_text(f"""\
as_of: 2026-09-30
tables:
  customers: {{path: customers.csv}}
  transactions:
    path: tx.{fmt}
    date_format: "%d/%m/%Y"
    amount_unit: 10000
    columns: {{cust: customer_id, day: date, qty: quantity, price: unit_price}}
    drop: [{drop}]
""", encoding="utf-8")
    return folder / "data.yaml"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("drop", ["", "missing_customer_id, duplicate_lines, unknown_customers",
                                  "missing_customer_id, duplicate_lines, unknown_customers, unparseable_rows"])
def test_every_kind_of_problem_is_reported_the_same(tmp_path, drop, fmt, monkeypatch):
    config = _quirks(tmp_path, drop, fmt)
    monkeypatch.setenv("SEGMENT_STORAGE", "memory")
    mem = load_data(config, strict=False)
    monkeypatch.setenv("SEGMENT_STORAGE", "disk")
    duck = load_data(config, strict=False)
    assert duck.tables.storage == "disk" and mem.tables.storage == "memory"
    views = "SELECT count(*) FROM duckdb_views() WHERE view_name = 't_transactions'"
    assert duck.tables.con.execute(views).fetchone()[0] == (fmt == "parquet")  # Parquet: read in place, not copied
    pd.testing.assert_frame_equal(mem.report, duck.report)
    frozen = QUIRK_PROBLEMS[drop]
    got = [(r.severity, r.table, r.column, r.problem, r.count, r.rows, r.example) for r in mem.report.itertuples()]
    assert got == frozen
    kinds = set(mem.report["problem"].str.split(r" \(|;|:| —", regex=True).str[0])
    assert {"unparseable date", "not a number", "implausible amount", "unknown value", "not a whole number",
            "not true/false", "duplicate customer_id", "negative amounts", "zero amounts"} <= kinds, kinds
    for name in mem.tables.present():
        a, b = mem.tables.get(name), duck.tables.get(name)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b[list(a.columns)].reset_index(drop=True),
                                      check_exact=False, rtol=1e-12)
    # the snapshot over what was kept (duplicate customer rows: the first counts, on both paths)
    pd.testing.assert_frame_equal(snapshot(mem.tables, "2026-09-30"), snapshot(duck.tables, "2026-09-30"),
                                  check_exact=False, rtol=1e-9)
    # amounts derived as quantity × unit_price in 万: C1's first line is 2 × 0.5 × 10,000
    tx = duck.tables.get("transactions")
    assert tx.loc[tx["order_id"] == "O1", "amount"].tolist()[0] == 10000.0
    # strict: the same errors stop both
    monkeypatch.setenv("SEGMENT_STORAGE", "memory")
    with pytest.raises(DataError) as em:
        load_data(config)
    monkeypatch.setenv("SEGMENT_STORAGE", "disk")
    with pytest.raises(DataError) as ed:
        load_data(config)
    assert str(em.value) == str(ed.value)


def test_storage_auto_keeps_big_sources_on_disk_only(demo, monkeypatch):
    monkeypatch.delenv("SEGMENT_STORAGE", raising=False)
    assert load_data(demo / "data.yaml").tables.storage == "memory"  # 1,200 customers: well below AUTO_ROWS
    monkeypatch.setattr(database, "AUTO_ROWS", 1000)
    assert load_data(demo / "data.yaml").tables.storage == "disk"
    assert load_data(demo / "memory.yaml").tables.storage == "memory"  # `storage: memory` is obeyed
    monkeypatch.setenv("SEGMENT_STORAGE", "duckdb")  # the former name of disk
    monkeypatch.setattr(database, "AUTO_ROWS", 10**9)
    assert load_data(demo / "data.yaml").tables.storage == "disk"
    monkeypatch.setenv("SEGMENT_STORAGE", "cloud")
    with pytest.raises(Exception, match="SEGMENT_STORAGE='cloud': write auto, memory or disk"):
        load_data(demo / "data.yaml")


def test_excel_sources_load_into_either_storage(tmp_path, demo):
    """Excel (like SQL) is read into a frame and handed to DuckDB: the same checks, the same tables."""
    folder = tmp_path / "x"
    shutil.copytree(demo, folder)
    pd.read_csv(folder / "customers.csv", dtype=str).to_excel(folder / "customers.xlsx", index=False)
    csv = load_data(folder / "memory.yaml").tables.get("customers")
    for storage in ("disk", "memory", "auto"):
        (folder / "excel.yaml").write_text(f"storage: {storage}\ntables:\n  customers: {{path: customers.xlsx, fields: "
                                           "{agent: {type: bool}, strong_brand: {type: bool}}}\n"
                                           "  transactions: {path: transactions.parquet}\n", encoding="utf-8")
        loaded = load_data(folder / "excel.yaml")
        assert loaded.tables.storage == ("disk" if storage == "disk" else "memory")
        pd.testing.assert_frame_equal(loaded.tables.get("customers"), csv)


def test_the_temporary_database_is_removed(demo, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENT_TMPDIR", str(tmp_path))
    loaded = load_data(demo / "disk.yaml")
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("segment-tables-")
    assert (folders[0] / "tables.duckdb").is_file()
    sub = loaded.tables.where(transactions="amount > 0")  # a filtered view keeps the database alive
    del loaded
    gc.collect()
    assert sub.rows("transactions") > 0
    del sub
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_cli_validate_prints_the_same(demo, capsys, monkeypatch):
    from segment.cli import main

    outs = []
    for config in ("memory.yaml", "disk.yaml"):
        assert main(["validate", "--data", str(demo / config)]) == 0
        outs.append(capsys.readouterr().out.replace(config, "X"))
    assert outs[0] == outs[1]
    assert "transactions: " in outs[0] and " rows" in outs[0]


def test_report_build_never_fetches_a_whole_table(demo, tmp_path, monkeypatch):
    """``segment report`` on tables kept in DuckDB: grading, previous quarter, realised churn and the
    calibration all run in SQL — fetching a table into pandas would fail this test."""
    from segment.reports.build import build_reports

    def refuse(self, name):
        raise AssertionError(f"the report fetched the whole {name} table into pandas")

    monkeypatch.setattr(tables.Tables, "get", refuse)
    monkeypatch.setenv("SEGMENT_STORAGE", "disk")
    result = build_reports(quarter="2026Q2", data=demo / "data.yaml", reports_dir=tmp_path / "reports")
    assert {p.name for p in result.files} >= {"grading.html", "review.html", "calibration.html", "manifest.json"}
    import json

    manifest = json.loads((tmp_path / "reports" / "2026Q2" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["calibration"]["test_auc"]["calibrated"] > 0.5


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_during_a_duckdb_query_is_an_interrupt(demo, tmp_path, monkeypatch, capsys, sig):
    """DuckDB turns Ctrl-C / SIGTERM arriving during a query into its own RuntimeError("Query interrupted");
    the CLI still exits 130 with its message (no traceback), and the temporary database is removed."""
    import os
    import signal
    import threading

    from segment.cli import main

    real = rules._read_table

    def slow_read(db, *args):  # db: the engine validation runs on (store.DuckDBEngine)
        threading.Timer(0.3, os.kill, (os.getpid(), getattr(signal, sig))).start()
        db.con.execute("SELECT sum(hash(x)) FROM range(100000000000) AS a(x)").fetchall()  # minutes, unless interrupted
        return real(db, *args)

    monkeypatch.setattr(rules, "_read_table", slow_read)
    monkeypatch.setenv("SEGMENT_TMPDIR", str(tmp_path))
    assert main(["validate", "--data", str(demo / "disk.yaml")]) == 130
    err = capsys.readouterr().err
    assert err == "interrupted: nothing was replaced\n"
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_a_clear_error(demo, tmp_path, monkeypatch):
    """DuckDB's I/O errors (a full disk under SEGMENT_TMPDIR) name the folder and say what to do."""
    import duckdb

    from segment.errors import SegmentError

    def full(*args):
        raise duckdb.IOException("IO Error: Could not write file \"tables.duckdb\": No space left on device")

    monkeypatch.setattr(rules, "_check", full)
    monkeypatch.setenv("SEGMENT_TMPDIR", str(tmp_path))
    with pytest.raises(SegmentError) as e:
        load_data(demo / "disk.yaml")
    msg = str(e.value)
    assert msg.startswith(f"{demo / 'disk.yaml'}: DuckDB could not keep the tables in {tmp_path}")
    assert "No space left on device" in msg and "SEGMENT_TMPDIR" in msg
    assert list(tmp_path.iterdir()) == []


def test_what_a_killed_run_left_is_removed_by_the_next_run(demo, tmp_path, monkeypatch):
    """SIGKILL (or a power cut) skips every cleanup: the next run removes the dead run's temporary
    database folder and temporary output files — never those of a run still alive."""
    import os
    import subprocess

    from segment.plumbing.atomic import write_text

    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = os.getppid()
    (tmp_path / f"segment-tables-{dead.pid}-abc").mkdir()
    (tmp_path / f"segment-tables-{dead.pid}-abc" / "tables.duckdb").write_bytes(b"x" * 1000)
    (tmp_path / f"segment-tables-{alive}-def").mkdir()
    monkeypatch.setenv("SEGMENT_TMPDIR", str(tmp_path))
    loaded = load_data(demo / "disk.yaml")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert f"segment-tables-{dead.pid}-abc" not in names and f"segment-tables-{alive}-def" in names
    del loaded
    gc.collect()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"segment-tables-{alive}-def"]

    out = tmp_path / "out"
    out.mkdir()
    for pid in (dead.pid, alive):
        (out / f".grading.csv.{pid}.x1y2.tmp").write_text("half a file")
    (out / f".other.csv.{dead.pid}.x1y2.tmp").write_text("another target's")
    write_text(out / "grading.csv", "a,b\n")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f".grading.csv.{alive}.x1y2.tmp", f".other.csv.{dead.pid}.x1y2.tmp", "grading.csv"])


def test_zoned_parquet_timestamps_keep_their_wall_clock_time(tmp_path, monkeypatch):
    """A Parquet export with Asia/Shanghai timestamps: both paths keep the local time the order was
    placed at (an order at 00:30 in Shanghai is on that day, not the evening before in UTC)."""
    tx = pd.DataFrame({"customer_id": ["C1", "C1", "C2"], "amount": [10.0, 20.0, 5.0],
                       "date": pd.to_datetime(["2026-06-30 00:30", "2026-07-01 00:10", "2026-05-02 23:50"])
                       .tz_localize("Asia/Shanghai")})
    tx.to_parquet(tmp_path / "tx.parquet")
    (tmp_path / "data.yaml").write_text("tables:\n  transactions: {path: tx.parquet}\n", encoding="utf-8")
    loaded = {}
    for storage in ("memory", "disk"):
        monkeypatch.setenv("SEGMENT_STORAGE", storage)
        loaded[storage] = load_data(tmp_path / "data.yaml")
    dates = loaded["disk"].tables.get("transactions")["date"]
    assert dates.tolist() == [pd.Timestamp("2026-06-30 00:30"), pd.Timestamp("2026-07-01 00:10"),
                              pd.Timestamp("2026-05-02 23:50")]
    pd.testing.assert_frame_equal(loaded["memory"].tables.get("transactions"), loaded["disk"].tables.get("transactions"))
    a, b = (snapshot(loaded[s].tables, "2026-06-30") for s in ("memory", "disk"))
    pd.testing.assert_frame_equal(a, b)
    assert a.set_index("customer_id").loc["C1", "annual_amount"] == 10.0  # the 07-01 order is after the cut


DATE_TEXTS = ["2026-09-30", "2026-09-30 10:00", "2026-09-30T10:00:00", "2026-09-30 10:00:00.123", "20260930",
              "2026/09/30", "2026-9-3", "2026-09-30T10:00:00Z", "2026-09-30 10:00:00+08:00", "2026-09-30T10:00-0500",
              "30/09/2026", "2026-09", "2026", "2026-02-30", "2026-09-30 25:00", " 2026-09-30 ", "2026-09-30 10",
              "2026-09-30T23:59:59.999999+0800", "yesterday", "2026-13-01", "0000-01-01", ""]


def test_date_texts_parse_the_same_either_way(tmp_path, monkeypatch):
    """Every spelling of a date a CSV may hold: the same value (or the same 'unparseable date') on both
    paths. A UTC offset is dropped (the wall-clock time where it was recorded): before, a 'Z' or
    '+08:00' crashed the pandas path with a TypeError."""
    rows = "".join(f'C1,"{d}",{i + 1}\n' for i, d in enumerate(DATE_TEXTS))
    (tmp_path / "tx.csv").write_text("customer_id,date,amount\n" + rows, encoding="utf-8")
    (tmp_path / "data.yaml").write_text("tables:\n  transactions: {path: tx.csv}\n", encoding="utf-8")
    got = {}
    for storage in ("memory", "disk"):
        monkeypatch.setenv("SEGMENT_STORAGE", storage)
        got[storage] = load_data(tmp_path / "data.yaml", strict=False)
    pd.testing.assert_frame_equal(got["memory"].report, got["disk"].report)
    a, b = (got[s].tables.get("transactions") for s in ("memory", "disk"))
    pd.testing.assert_frame_equal(a, b)
    by_text = dict(zip(DATE_TEXTS, a["date"]))
    assert by_text["2026-09-30T10:00:00Z"] == by_text["2026-09-30 10:00:00+08:00"] == pd.Timestamp("2026-09-30 10:00")
    assert by_text["20260930"] == pd.Timestamp("2026-09-30")
    assert all(pd.isna(by_text[t]) for t in ("30/09/2026", "2026-02-30", "2026-09-30 25:00", "yesterday", "2026-13-01"))
    bad = got["memory"].report.query("problem.str.startswith('unparseable date')")
    assert bad["count"].tolist() == [6]


def test_placeholder_dates_in_parquet_are_an_error_on_both_paths(tmp_path, monkeypatch):
    """0001-01-01 (a CRM's 'no date') in a Parquet timestamp column: before, the pandas path crashed
    with OutOfBoundsDatetime; now both paths report it, with its row."""
    tx = pd.DataFrame({"customer_id": ["C1", "C2", "C3"], "amount": [1.0, 2.0, 3.0],
                       "date": pd.array([pd.Timestamp("2026-01-02"), pd.Timestamp("0001-01-01"),
                                         pd.Timestamp("2026-01-03")], dtype="datetime64[us]")})
    tx.to_parquet(tmp_path / "tx.parquet")
    (tmp_path / "data.yaml").write_text("tables:\n  transactions: {path: tx.parquet}\n", encoding="utf-8")
    errors = []
    for storage in ("memory", "disk"):
        monkeypatch.setenv("SEGMENT_STORAGE", storage)
        with pytest.raises(DataError) as e:
            load_data(tmp_path / "data.yaml")
        errors.append(str(e.value))
        assert "date outside 1677-09-22 … 2262-04-11" in str(e.value) and "0001-01-01" in str(e.value)
    assert errors[0] == errors[1]


def test_a_declared_timezone_reads_instants_as_its_wall_clock(tmp_path, monkeypatch, capsys):
    """`timezone:` (per table, or the data config's for every table) turns zone-aware timestamps into
    that zone's wall-clock time: a UTC export of a CRM in Asia/Shanghai is not shifted 8 hours."""
    from segment.cli import main

    tx = pd.DataFrame({"customer_id": ["C1", "C1", "C2"], "amount": [10.0, 20.0, 5.0],
                       "date": pd.to_datetime(["2026-06-29 16:30", "2026-06-30 16:10", "2026-05-02 15:50"])
                       .tz_localize("UTC")})
    tx.to_parquet(tmp_path / "tx.parquet")
    wall = [pd.Timestamp("2026-06-30 00:30"), pd.Timestamp("2026-07-01 00:10"), pd.Timestamp("2026-05-02 23:50")]
    for text in ("tables:\n  transactions: {path: tx.parquet, timezone: Asia/Shanghai}\n",
                 "timezone: Asia/Shanghai\ntables:\n  transactions: {path: tx.parquet}\n",
                 "timezone: Europe/Berlin\ntables:\n  transactions: {path: tx.parquet, timezone: Asia/Shanghai}\n"):
        (tmp_path / "data.yaml").write_text(text, encoding="utf-8")
        for storage in ("memory", "disk"):
            monkeypatch.setenv("SEGMENT_STORAGE", storage)
            tables = load_data(tmp_path / "data.yaml").tables
            assert tables.get("transactions")["date"].tolist() == wall, text
    snap = snapshot(tables, "2026-06-30").set_index("customer_id")
    assert snap.loc["C1", "annual_amount"] == 10.0  # the order at 00:10 on 07-01 in Shanghai is after the cut
    # undeclared: the zone the file records (UTC) — as written in the file
    (tmp_path / "data.yaml").write_text("tables:\n  transactions: {path: tx.parquet}\n", encoding="utf-8")
    assert load_data(tmp_path / "data.yaml").tables.get("transactions")["date"].tolist() == \
        list(tx["date"].dt.tz_localize(None))
    # a zone nobody knows: exit 2 naming the key
    (tmp_path / "data.yaml").write_text("tables:\n  transactions: {path: tx.parquet, timezone: China/Beijing}\n",
                                        encoding="utf-8")
    assert main(["validate", "--data", str(tmp_path / "data.yaml")]) == 2
    err = capsys.readouterr().err
    assert "timezone" in err and "unknown time zone 'China/Beijing'" in err and "Asia/Shanghai" in err
