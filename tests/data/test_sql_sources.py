"""SQL sources without a server: a missing database driver is named with the package (and, for
PostgreSQL, the `postgres` extra) to install; plain `postgresql://` and `postgres://` URLs are read
with psycopg 3; DuckDB and SQLite files are found relative to the data config, whatever the current
folder, and opened read-only. (`make test-postgres` runs the same sources against a real server.)"""
from __future__ import annotations

import re
import sqlite3
import sys
import types

import duckdb
import pytest

from segment.data.config import read_data_config
from segment.data.sources import _read_source, _sql_url
from segment.data.validate import load_data
from segment.errors import ConfigError

from ..conftest import write


def _sql_config(folder, url: str, query: str = "select * from orders"):
    return write(folder / "data.yaml", f"tables:\n  transactions:\n    sql:\n      url: '{url}'\n"
                                       f"      query: {query}\n")


@pytest.mark.parametrize("url", ["postgresql://crm:secret@crm-db/crm", "postgres://crm@crm-db:5432/crm"])
def test_a_missing_postgresql_driver_names_the_extra(tmp_path, monkeypatch, capsys, url):
    """Neither psycopg nor psycopg2 installed: the message names psycopg and the `postgres` extra
    (not "check the URL"), and never prints the URL's password."""
    from segment.cli import main

    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    cfg = _sql_config(tmp_path, url)
    with pytest.raises(ConfigError) as e:
        load_data(cfg)
    message = str(e.value)
    assert "tables.transactions.sql.url" in message and "driver" in message and "`psycopg`" in message
    assert "pip install -e '.[postgres]'" in message and 'pip install "psycopg[binary]"' in message
    assert "check the URL" not in message and "secret" not in message
    assert main(["validate", "--data", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and ".[postgres]" in err and "Traceback" not in err


@pytest.mark.parametrize("url, module, package", [
    ("postgresql+psycopg2://crm@crm-db/crm", "psycopg2", "psycopg2-binary"),
    ("postgresql+psycopg://crm@crm-db/crm", "psycopg", "psycopg[binary]"),
    ("mysql+pymysql://crm@crm-db/crm", "pymysql", "PyMySQL"),
    ("mssql+pyodbc://crm@crm-dsn", "pyodbc", "pyodbc"),
])
def test_a_missing_driver_named_in_the_url_is_named(tmp_path, monkeypatch, url, module, package):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError) as e:
        load_data(_sql_config(tmp_path, url))
    message = str(e.value)
    assert f"`{module}`" in message and f'"{package}"' in message and "check the URL" not in message
    assert ("'.[postgres]'" in message) == (module == "psycopg")


def test_an_unknown_database_and_a_malformed_url_say_so(tmp_path):
    with pytest.raises(ConfigError, match="SQLAlchemy knows no database 'snowflake'"):
        load_data(_sql_config(tmp_path, "snowflake://acct/db"))
    with pytest.raises(ConfigError, match="tables.transactions.sql.url.*not a database URL"):
        load_data(_sql_config(tmp_path, "crm-db/crm"))


def test_plain_postgresql_urls_are_read_with_psycopg_3(tmp_path, monkeypatch):
    """`postgresql://` and `postgres://` (which SQLAlchemy itself refuses) without a driver: psycopg 3,
    the `postgres` extra; psycopg2 when only that is installed; a driver written in the URL is kept."""
    cfg = tmp_path / "data.yaml"
    monkeypatch.setitem(sys.modules, "psycopg", types.ModuleType("psycopg"))
    for url in ("postgresql://u:p@h:5432/db", "postgres://u:p@h:5432/db"):
        u = _sql_url(cfg, "k", url)
        assert (u.drivername, u.host, u.port, u.database, u.password) == ("postgresql+psycopg", "h", 5432, "db", "p")
    assert _sql_url(cfg, "k", "postgresql+pg8000://u@h/db").drivername == "postgresql+pg8000"
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setitem(sys.modules, "psycopg2", types.ModuleType("psycopg2"))
    assert _sql_url(cfg, "k", "postgres://u@h/db").drivername == "postgresql+psycopg2"


def _duckdb_file(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create table orders as select 'C1' as customer_id, date '2026-01-05' as date, 12.5 as amount")


def _sqlite_file(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as con:
        con.execute("create table orders (customer_id text, date text, amount real)")
        con.execute("insert into orders values ('C7', '2026-03-01', 99.0)")


@pytest.mark.parametrize("kind", ["duckdb", "sqlite"])
def test_database_files_are_found_relative_to_the_data_config(tmp_path, kind):
    """`duckdb:///crm/orders.db`, `sqlite:///../orders.db`: relative to the data config's folder (the
    tests run from the project root), like a file source's `path:`; an absolute path (four slashes) as
    written; a missing file names the path it looked for."""
    make = _duckdb_file if kind == "duckdb" else _sqlite_file
    expected = ["C1"] if kind == "duckdb" else ["C7"]
    config_dir = tmp_path / "configs" / "acme"
    make(config_dir / "crm" / "orders.db")
    make(tmp_path / "configs" / "shared.db")
    for written in ("crm/orders.db", "./crm/orders.db", "../shared.db", str(tmp_path / "configs" / "shared.db")):
        cfg = _sql_config(config_dir, f"{kind}:///{written}")
        assert load_data(cfg).tables.transactions["customer_id"].tolist() == expected, written
    with pytest.raises(ConfigError, match=rf"(?is){kind} file {re.escape(str(config_dir / 'nowhere.db'))} not found"
                                          r".*relative to the data config"):
        load_data(_sql_config(config_dir, f"{kind}:///nowhere.db"))
    assert not (config_dir / "nowhere.db").exists()


def test_a_sqlite_file_is_read_only_whatever_the_url_asks(tmp_path):
    """`?mode=rwc` in the URL does not lift the read-only guarantee; a path with spaces, `%` and `#` is
    still the file written."""
    folder = tmp_path / "odd name %20 #1"
    _sqlite_file(folder / "crm.sqlite")
    cfg = _sql_config(folder, "sqlite:///crm.sqlite?mode=rwc")
    assert load_data(cfg).tables.transactions["customer_id"].tolist() == ["C7"]
    config = read_data_config(cfg)
    config.tables["transactions"].sql.query = "create table x (a int)"  # bypassing the validator on purpose
    with pytest.raises(ConfigError, match="the query failed.*readonly"):
        _read_source(cfg, "transactions", config.tables["transactions"])
    with sqlite3.connect(folder / "crm.sqlite") as con:
        assert [r[0] for r in con.execute("select name from sqlite_master")] == ["orders"]


def test_a_duckdb_file_is_opened_read_only(tmp_path):
    _duckdb_file(tmp_path / "crm.duckdb")
    cfg = _sql_config(tmp_path, "duckdb:///crm.duckdb")
    config = read_data_config(cfg)
    config.tables["transactions"].sql.query = "create table x (a int)"  # bypassing the validator on purpose
    with pytest.raises(ConfigError, match="the query failed.*read-only"):
        _read_source(cfg, "transactions", config.tables["transactions"])
    with duckdb.connect(str(tmp_path / "crm.duckdb"), read_only=True) as con:
        assert [r[0] for r in con.execute("show tables").fetchall()] == ["orders"]
