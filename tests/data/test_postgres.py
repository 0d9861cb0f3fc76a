"""SQL sources on a real PostgreSQL server: time-zone-aware timestamps are read as the CRM shows them
(the session's TimeZone) or in the declared `timezone:`, never shifted to UTC silently; a query that
would change the database changes nothing.

Run with `make test-postgres` (installs the `postgres` extra and PostgreSQL if missing). A throwaway
cluster is started in a temporary folder (initdb + pg_ctl, a Unix socket, no TCP port) and removed
afterwards; the module skips, saying why, when no PostgreSQL server binaries are installed."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.postgres
psycopg = pytest.importorskip("psycopg", reason="psycopg missing: pip install -e '.[postgres]' (make test-postgres does)")


def _bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A PostgreSQL cluster whose TimeZone is Asia/Shanghai; yields the SQLAlchemy URL."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    root = tmp_path_factory.mktemp("pg")
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        root.chmod(0o755)
        for parent in list(root.parents)[:-1]:
            parent.chmod(parent.stat().st_mode | 0o005)  # the postgres user walks to its folder
    subprocess.run([*run_as, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"],
                   check=True, capture_output=True)
    subprocess.run([*run_as, pg_ctl, "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                    f"-k {sock} -c listen_addresses='' -c timezone=Asia/Shanghai -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        with psycopg.connect(host=str(sock), user="postgres", dbname="postgres", autocommit=True) as con:
            con.execute("CREATE TABLE tx (customer_id text, placed timestamptz, amount double precision)")
            con.execute("INSERT INTO tx VALUES ('C1', '2026-06-30 00:30+08', 10), ('C1', '2026-07-01 00:10+08', 20), "
                        "('C2', '2026-05-02 23:50+08', 5)")
        yield f"postgresql+psycopg://postgres@/postgres?host={sock}"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)


def _config(tmp_path: Path, url: str, query: str, extra: str = "") -> Path:
    (tmp_path / "data.yaml").write_text(f"""\
tables:
  transactions:
    sql: {{url: "{url}", query: "{query}"}}
    columns: {{placed: date}}
{extra}""", encoding="utf-8")
    return tmp_path / "data.yaml"


def test_timestamptz_is_read_as_the_crm_shows_it(server, tmp_path):
    from segment.features.snapshot import snapshot
    from segment.data.validate import load_data

    cfg = _config(tmp_path, server, "SELECT * FROM tx ORDER BY placed")
    tables = load_data(cfg).tables
    wall = [pd.Timestamp("2026-05-02 23:50"), pd.Timestamp("2026-06-30 00:30"), pd.Timestamp("2026-07-01 00:10")]
    assert tables.get("transactions")["date"].tolist() == wall  # Shanghai's wall clock, not UTC's
    assert snapshot(tables, "2026-06-30").set_index("customer_id").loc["C1", "annual_amount"] == 10.0
    # declared: the instants in that zone
    cfg = _config(tmp_path, server, "SELECT * FROM tx ORDER BY placed", "    timezone: UTC\n")
    assert load_data(cfg).tables.get("transactions")["date"].tolist() == [t - pd.Timedelta(hours=8) for t in wall]


@pytest.mark.parametrize("query", ["DROP TABLE tx", "DELETE FROM tx RETURNING *", "UPDATE tx SET amount = 0 RETURNING *"])
def test_a_query_that_would_change_the_database_changes_nothing(server, tmp_path, capsys, query):
    from segment.cli import main

    cfg = _config(tmp_path, server, query)
    assert main(["validate", "--data", str(cfg)]) == 2
    assert "error:" in capsys.readouterr().err
    with psycopg.connect(server.replace("postgresql+psycopg://postgres@/postgres?host=", "host=") + " user=postgres "
                         "dbname=postgres") as con:
        assert con.execute("SELECT count(*), sum(amount) FROM tx").fetchone() == (3, 35.0)
