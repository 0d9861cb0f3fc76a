"""Broken or unusual source files and configs, by class: each ends in an error naming the file or key
and what to do — never a traceback, never a silently ignored column."""
from __future__ import annotations

import gzip
import os

from segment.cli import main

HEADER = "customer_id,date,amount\n"


def _config(folder, table_line: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.yaml").write_text(f"tables:\n  transactions: {table_line}\n", encoding="utf-8")
    return folder / "data.yaml"


def _run(cfg, capsys):
    code = main(["validate", "--data", str(cfg)])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_header_naming_a_column_twice(tmp_path, capsys):
    cfg = _config(tmp_path, "{path: t.csv}")
    (tmp_path / "t.csv").write_text("customer_id,date,amount,amount\nC1,2026-01-01,5,7\n", encoding="utf-8")
    code, text = _run(cfg, capsys)
    assert code == 2 and "names `amount` more than once" in text and "Traceback" not in text


def test_two_source_columns_onto_one_contract_column(tmp_path, capsys):
    cfg = _config(tmp_path, "{path: t.csv, columns: {amt1: amount, amt2: amount}}")
    (tmp_path / "t.csv").write_text("customer_id,date,amt1,amt2\nC1,2026-01-01,5,7\n", encoding="utf-8")
    code, text = _run(cfg, capsys)
    assert code == 2 and "tables.transactions.columns" in text and "`amt1` and `amt2` both map onto `amount`" in text


def test_an_encoding_python_does_not_know(tmp_path, capsys):
    cfg = _config(tmp_path, "{path: t.csv, encoding: klingon}")
    (tmp_path / "t.csv").write_text(HEADER + "C1,2026-01-01,5\n", encoding="utf-8")
    code, text = _run(cfg, capsys)
    assert code == 2 and "tables.transactions.encoding" in text and "unknown encoding 'klingon'" in text


def test_an_invalid_date_format_directive(tmp_path, capsys):
    cfg = _config(tmp_path, '{path: t.csv, date_format: "%Q-%m"}')
    (tmp_path / "t.csv").write_text(HEADER + "C1,2026-01-01,5\n", encoding="utf-8")
    code, text = _run(cfg, capsys)
    assert code == 2 and "tables.transactions.date_format" in text and "is not a strftime format" in text


def test_a_symlink_loop(tmp_path, capsys):
    cfg = _config(tmp_path, "{path: t.csv}")
    os.symlink("u.csv", tmp_path / "t.csv")
    os.symlink("t.csv", tmp_path / "u.csv")
    code, text = _run(cfg, capsys)
    assert code == 2 and "ymlink loop" in text and "Traceback" not in text


def test_a_truncated_compressed_csv(tmp_path, capsys):
    cfg = _config(tmp_path, "{path: t.csv.gz}")
    full = gzip.compress((HEADER + "".join(f"C{i % 50},2026-01-01,{i}\n" for i in range(20000))).encode())
    (tmp_path / "t.csv.gz").write_bytes(full[: len(full) // 2])
    code, text = _run(cfg, capsys)
    assert code == 2 and "t.csv.gz" in text and "Traceback" not in text


def test_parquet_list_or_struct_columns_mapped_onto_the_contract(tmp_path, capsys):
    """A list column mapped onto amount, or onto a text column: an error naming both columns — not a
    DuckDB conversion traceback, not '[1, 2]' as a product line. Unmapped nested columns are ignored."""
    import pandas as pd

    pd.DataFrame({"customer_id": ["C1", "C2"], "date": pd.to_datetime(["2026-01-01", "2026-02-01"]),
                  "amount": [1.0, 2.0], "tags": [[1, 2], [3]], "meta": [{"a": 1}, {"a": 2}]}).to_parquet(tmp_path / "t.parquet")
    pd.DataFrame({"customer_id": ["C1"], "date": pd.to_datetime(["2026-01-01"]), "amount": [[1.0]]}).to_parquet(
        tmp_path / "u.parquet")
    code, text = _run(_config(tmp_path / "a", f"{{path: {tmp_path / 't.parquet'}}}"), capsys)
    assert code == 0, text
    code, text = _run(_config(tmp_path / "b", f"{{path: {tmp_path / 'u.parquet'}}}"), capsys)
    assert code == 2 and "source column `amount`" in text and "holds lists or records (DOUBLE[])" in text
    code, text = _run(_config(tmp_path / "c", f"{{path: {tmp_path / 't.parquet'}, columns: {{tags: product_line}}}}"),
                      capsys)
    assert code == 2 and "source column `tags`" in text and "`product_line`" in text and "Traceback" not in text
