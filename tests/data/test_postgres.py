"""SQL sources on a real PostgreSQL server: time-zone-aware timestamps are read as the CRM shows them
(the session's TimeZone) or in the declared `timezone:`, never shifted to UTC silently; a query that
would change the database changes nothing; the demo company loaded into PostgreSQL and read through
plain `postgresql://` / `postgres://` URLs validates, snapshots, grades and reports exactly as its files.

Run with `make test-postgres` (installs the `postgres` extra and PostgreSQL if missing). A throwaway
cluster is started in a temporary folder (initdb + pg_ctl, a Unix socket, no TCP port) and removed
afterwards; the module skips, saying why, when no PostgreSQL server binaries are installed or the server
cannot start."""
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
    def start(*cmd: str) -> None:  # a server that cannot start here: the module skips, saying why
        r = subprocess.run([*run_as, *cmd], capture_output=True, text=True)
        if r.returncode != 0:
            log = (root / "log").read_text(errors="replace") if (root / "log").is_file() else ""
            pytest.skip(f"PostgreSQL could not start ({Path(cmd[0]).name} exited {r.returncode}): "
                        f"{(r.stderr + log).strip()[-400:]}")

    start(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
    start(pg_ctl, "-D", str(data), "-w", "-l", str(root / "log"), "-o",
          f"-k {sock} -c listen_addresses='' -c timezone=Asia/Shanghai -c fsync=off", "start")
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


# --------------------------------------------------------------------------------------------
# the demo company in PostgreSQL: the same validation, snapshot, grading and report as its files
# --------------------------------------------------------------------------------------------

def _read_file(path: Path) -> pd.DataFrame:
    """A demo file as its columns are stored: a CSV's as text (blank: NULL), a Parquet file's typed."""
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    return pd.read_parquet(path)


def _into_postgres(server: str, folder: Path, database: str, scheme: str = "postgresql") -> Path:
    """Every file table of ``folder/data.yaml`` (the demo's four, and any other it lists) as a table of
    a new ``database`` (a `line` column keeps the file's order); returns ``folder/postgres.yaml``: the
    same data config with each of those tables a `sql:` source read through a plain ``scheme://`` URL
    (no driver named)."""
    import sqlalchemy
    import yaml

    with psycopg.connect(_conninfo(server, "postgres"), autocommit=True) as con:
        con.execute(f"CREATE DATABASE {database}")
    url = server.replace("postgresql+psycopg://", f"{scheme}://").replace("/postgres?", f"/{database}?")
    config = yaml.safe_load((folder / "data.yaml").read_text(encoding="utf-8"))
    engine = sqlalchemy.create_engine(server.replace("/postgres?", f"/{database}?"))
    try:
        for table, src in config["tables"].items():
            if isinstance(src, str):
                src = config["tables"][table] = {"path": src}
            frame = _read_file(folder / src.pop("path"))
            columns = ", ".join(f'"{c}"' for c in frame.columns)
            frame.insert(0, "line", range(1, len(frame) + 1))
            frame.to_sql(table, engine, index=False, chunksize=5000)
            src["sql"] = {"url": url, "query": f"SELECT {columns} FROM {table} ORDER BY line"}
    finally:
        engine.dispose()
    assert {"customers", "transactions", "interactions", "opportunities"} <= set(config["tables"])
    (folder / "postgres.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder / "postgres.yaml"


def _conninfo(server: str, database: str) -> str:
    return server.replace("postgresql+psycopg://postgres@/postgres?host=", "host=") + f" user=postgres dbname={database}"


@pytest.fixture(scope="module")
def demo_in_postgres(server, demo, tmp_path_factory):
    """A copy of the shared demo (400 customers, seed 7) and its config read from PostgreSQL:
    ``(files_config, postgres_config)``."""
    folder = tmp_path_factory.mktemp("demo-pg")
    shutil.copytree(demo.parent, folder, dirs_exist_ok=True)
    return folder / "data.yaml", _into_postgres(server, folder, "crm")


def _same_loaded(files_cfg: Path, pg_cfg: Path, as_of: str) -> None:
    from segment.data.validate import load_data

    on_files, on_pg = load_data(files_cfg, strict=False), load_data(pg_cfg, strict=False)
    pd.testing.assert_frame_equal(on_pg.report, on_files.report)
    assert {n: on_pg.tables.rows(n) for n in on_pg.tables.present()} == {
        n: on_files.tables.rows(n) for n in on_files.tables.present()}
    assert len(on_files.tables.present()) >= 4
    for name in on_files.tables.present():
        pd.testing.assert_frame_equal(on_pg.tables.get(name), on_files.tables.get(name), check_exact=True)
    pd.testing.assert_frame_equal(on_pg.tables.snapshot(as_of), on_files.tables.snapshot(as_of), check_exact=True)


def test_the_demo_in_postgresql_validates_and_snapshots_as_its_files(demo_in_postgres):
    files_cfg, pg_cfg = demo_in_postgres
    assert "url: postgresql://postgres@/crm?host=" in pg_cfg.read_text()  # the plain URL users write
    for as_of in ("2026-09-30", "2025-06-30"):
        _same_loaded(files_cfg, pg_cfg, as_of)


def test_a_dirty_demo_in_postgresql_gives_the_files_validation_report(server, demo, tmp_path):
    """Bad numbers, dates and categories, a duplicate customer, an unknown one — read through
    `postgres://` (the scheme SQLAlchemy itself refuses): every problem, row and example as the files'."""
    shutil.copytree(demo.parent, tmp_path, dirs_exist_ok=True)
    op = _read_file(tmp_path / "opportunities.csv")
    op.loc[3, "amount"], op.loc[5, "created_date"], op.loc[8, "status"] = "1,200", "2026-02-30", "gone"
    op.loc[9, "customer_id"] = "nobody"
    op.to_csv(tmp_path / "opportunities.csv", index=False)
    cu = _read_file(tmp_path / "customers.csv")
    pd.concat([cu, cu.iloc[[4]]], ignore_index=True).to_csv(tmp_path / "customers.csv", index=False)
    pg_cfg = _into_postgres(server, tmp_path, "dirty", scheme="postgres")
    from segment.data.validate import load_data

    report = load_data(tmp_path / "data.yaml", strict=False).report
    assert (report["severity"] == "error").sum() >= 4, report
    _same_loaded(tmp_path / "data.yaml", pg_cfg, "2026-09-30")


def test_segment_grade_on_postgresql_writes_the_files_grading(demo_in_postgres, tmp_path):
    from segment.cli import main

    files_cfg, pg_cfg = demo_in_postgres
    for cfg, out in ((files_cfg, "files.csv"), (pg_cfg, "pg.csv")):
        assert main(["grade", "--data", str(cfg), "--scheme", "s1_four_tier", "--out", str(tmp_path / out)]) == 0
    assert (tmp_path / "pg.csv").read_bytes() == (tmp_path / "files.csv").read_bytes()
    assert pd.read_csv(tmp_path / "pg.csv")["tier"].nunique() >= 2


def test_segment_report_on_postgresql_writes_the_files_grading(demo_in_postgres, built, tmp_path):
    """`segment report` reading every table from PostgreSQL: the quarter's grading equals the one built
    from the files (tests/conftest.py `built`: the same demo, the same quarter and scheme)."""
    from segment.cli import main
    from segment.paths import QuarterFiles

    _, pg_cfg = demo_in_postgres
    reports, result = built
    assert main(["report", "--quarter", result.quarter, "--data", str(pg_cfg), "--reports-dir",
                 str(tmp_path / "reports")]) == 0
    got = pd.read_parquet(QuarterFiles(tmp_path / "reports" / result.quarter).grading)
    want = pd.read_parquet(QuarterFiles(reports / result.quarter).grading)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    manifest = QuarterFiles(tmp_path / "reports" / result.quarter).manifest.read_text()
    assert "postgresql://postgres@/crm?host=" in manifest
