"""Output paths, by class: an output that names a folder, a file under a file, a folder that is a
file, or one of the run's own inputs is refused before any work, with the option named; nothing is
written and no input changes."""
from __future__ import annotations

import hashlib

import pytest

from segment.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from segment.demo.write import write_demo

    return write_demo(tmp_path_factory.mktemp("demo"), customers=150)


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("out, message", [
    ("{d}/customers.csv", "is one of this run's inputs"),
    ("{d}/data.yaml", "must end in .parquet or .csv"),
    ("{d}/../{n}/transactions.parquet", "is one of this run's inputs"),
    ("{d}", "must end in .parquet or .csv"),
    ("{d}/sub.csv", "is a folder; name a file in it"),
    ("{d}/data.yaml/x.csv", "data.yaml is a file, not a folder"),
])
def test_grade_out_is_checked_before_any_work(demo, out, message, capsys):
    d = demo.parent
    (d / "sub.csv").mkdir(exist_ok=True)
    before = _digest(d)
    code = main(["grade", "--data", str(demo), "--scheme", "s1_four_tier",
                 "--out", out.format(d=d, n=d.name)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert _digest(d) == before


@pytest.mark.parametrize("argv", [
    ["demo", "--out", "{d}/data.yaml"],
    ["report", "--data", "{d}/data.yaml", "--reports-dir", "{d}/customers.csv"],
    ["calibrate", "--data", "{d}/data.yaml", "--scheme", "s1_four_tier", "--train-as-of", "2025-06-30",
     "--test-as-of", "2025-12-31", "--out", "{d}/customers.csv"],
])
def test_folder_outputs_that_are_files_are_refused(demo, argv, capsys):
    d = demo.parent
    before = _digest(d)
    code = main([a.format(d=d) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "is a file; name a folder" in err
    assert _digest(d) == before


@pytest.mark.parametrize("as_of, message", [
    ("2031-01-01", "--as-of 2031-01-01 is after the data's end: the data covers"),
    ("2027-12-31", "the latest is 2027-09-30"),
    ("2001-01-01", "--as-of 2001-01-01 is before the data's first transaction"),
    ("9999-12-31", "outside the dates segment grades"),
    ("2026-02-30", "is not a date"),
    ("1850-01-01", "outside the dates segment grades"),
])
def test_as_of_outside_the_data_is_refused(demo, tmp_path, as_of, message, capsys):
    out = tmp_path / "g.csv"
    code = main(["grade", "--data", str(demo), "--scheme", "s1_four_tier", "--as-of", as_of, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("env, message", [
    ({"SEGMENT_DUCKDB_MEMORY": "lots"}, "SEGMENT_DUCKDB_MEMORY='lots' is not a valid DuckDB memory_limit"),
    ({"SEGMENT_DUCKDB_THREADS": "-3"}, "SEGMENT_DUCKDB_THREADS='-3' is not a valid DuckDB threads"),
    ({"SEGMENT_TMPDIR": "{d}/data.yaml", "SEGMENT_STORAGE": "disk"}, "is a file, not a folder"),
    ({"SEGMENT_STORAGE": "banana"}, "SEGMENT_STORAGE='banana': write auto, memory or disk"),
])
def test_bad_environment_values_are_named(demo, monkeypatch, env, message, capsys):
    for k, v in env.items():
        monkeypatch.setenv(k, v.format(d=demo.parent))
    code = main(["validate", "--data", str(demo)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_csv_outputs_are_the_text_pandas_writes(tmp_path):
    """CSV files are written by DuckDB for speed; the text is pandas' own, cell for cell."""
    import numpy as np
    import pandas as pd

    from segment.plumbing.atomic import write_frame

    n = 7
    df = pd.DataFrame({
        "id": pd.array([f"C{i}" for i in range(n)], dtype="string"),
        "x": [1e16, 1.5e-7, 123456789012345678.0, -0.0, np.inf, np.nan, 0.1 + 0.2],
        "k": pd.array([1, None, 3, 4, 5, 6, 7], dtype="Int64"),
        "n": np.arange(n, dtype="int64"),
        "s": pd.array(["a,b", 'q"t', "", None, "x\ny", "中文", " sp"], dtype="string"),
        "o": ["a", None, "c,d", "", "e", "f", "g"],
        "c": pd.Categorical(["core", "", None, "core", "a, b", "x", "core"]),
        "b": [True, False, True, True, False, False, True],
        "nb": pd.array([True, None, False, True, None, False, True], dtype="boolean"),
    })
    write_frame(df, tmp_path / "fast.csv")
    df.to_csv(tmp_path / "pandas.csv", index=False)
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
    with_dates = df.assign(d=pd.Timestamp("2026-09-30"))  # a date column: pandas writes the whole file
    write_frame(with_dates, tmp_path / "dated.csv")
    assert (tmp_path / "dated.csv").read_text(encoding="utf-8") == with_dates.to_csv(index=False)
