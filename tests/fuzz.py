"""A seeded mutation fuzzer for segment's inputs (issue 14, deliverable 8).

From a valid small demo (its data files, DATA.yaml, a scheme, a filled review sheet of its graded
2026Q2 and a designations file) :func:`mutate` derives one broken input per case number —
deterministic for a seed — and :func:`check` runs `segment validate`, `segment grade` (with and
without the designations), `segment review apply` and `segment review spot-check apply` on it in-process. Every case must end in exit 0 (an output written), or exit 2 with
`error:` and nothing written; no source file may change. A crash is a bug: the case number and the
mutation reproduce it (``python -m tests.fuzz CASE``).

Mutations: truncation, byte flips, wrong encodings, dropped / duplicated / renamed / shuffled
columns, type changes, huge / NaN / negative / far-date values, duplicated rows, CSV ↔ Parquet, and
for the YAML files dropped keys, wrong types, unknown keys, deep nesting and aliases.
"""
from __future__ import annotations

import hashlib
import io
import random
import shutil
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

SEED = 20261202
#: values a mutated cell may take: every kind the loaders must reject or read
ODD_VALUES = ["", "NaN", "nan", "inf", "-inf", "1e308", "-1e308", "9" * 40, "-5", "0", "1,234.5", "¥12万",
              "9999-12-31", "0001-01-01", "2026-02-30", "31/12/2026", "true", "NULL", "=1+1", "\t", "\"", "💥",
              "1677-09-21", "2262-04-12", "  12  ", "0x1F", "1_000", "—"]


@dataclass
class Case:
    number: int
    what: str  # the mutation, in words (for the failure message)
    folder: Path


def _frame_mutation(rng: random.Random, df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    df = df.copy()
    cols = list(df.columns)
    op = rng.choice(["drop_col", "dup_col", "rename_col", "shuffle_cols", "odd_values", "dup_rows", "type_change",
                     "empty", "header_only", "shuffle_rows"])
    if op == "drop_col" and cols:
        c = rng.choice(cols)
        return df.drop(columns=[c]), f"drop column {c}"
    if op == "dup_col" and cols:
        c = rng.choice(cols)
        df.insert(rng.randrange(len(cols) + 1), c + "__dup", df[c])
        return df.rename(columns={c + "__dup": c}), f"duplicate column {c}"
    if op == "rename_col" and cols:
        c = rng.choice(cols)
        new = rng.choice([c.upper(), c + " ", "_row_", "_hash_", "customer_id", "", "日期", c[:-1] or "x"])
        return df.rename(columns={c: new}), f"rename column {c} → {new!r}"
    if op == "shuffle_cols":
        rng.shuffle(cols)
        return df[cols], "shuffle columns"
    if op == "odd_values" and len(df) and cols:
        df = df.astype(object)
        hits = []
        for _ in range(rng.randint(1, 4)):
            c, r, v = rng.choice(cols), rng.randrange(len(df)), rng.choice(ODD_VALUES)
            df.iat[r, df.columns.get_loc(c)] = v
            hits.append(f"{c}[{r}]={v!r}")
        return df, "odd values " + ", ".join(hits)
    if op == "dup_rows" and len(df):
        rows = df.sample(n=min(len(df), rng.randint(1, 5)), random_state=rng.randrange(2**31))
        return pd.concat([df, rows], ignore_index=True), "duplicate rows"
    if op == "type_change" and cols:
        c = rng.choice(cols)
        kind = rng.choice(["int", "float", "bool", "date", "text"])
        df[c] = {"int": lambda s: range(len(s)), "float": lambda s: [x * 0.5 for x in range(len(s))],
                 "bool": lambda s: [i % 2 == 0 for i in range(len(s))],
                 "date": lambda s: pd.Timestamp("2026-01-01") + pd.to_timedelta(range(len(s)), unit="D"),
                 "text": lambda s: [f"x{i}" for i in range(len(s))]}[kind](df[c])
        return df, f"column {c} becomes {kind}"
    if op == "empty":
        return df.iloc[0:0], "no rows"
    if op == "header_only":
        return df.iloc[0:0, :1], "one column, no rows"
    return df.sample(frac=1.0, random_state=rng.randrange(2**31)).reset_index(drop=True), "shuffle rows"


def _bytes_mutation(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    op = rng.choice(["truncate", "flip", "encoding", "bom", "nul", "crlf"])
    if op == "truncate" and data:
        at = rng.randrange(len(data))
        return data[:at], f"truncated at byte {at}"
    if op == "flip" and data:
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] = rng.randrange(256)
        return bytes(b), "flipped bytes"
    if op == "encoding":
        enc = rng.choice(["utf-16", "gbk", "latin-1", "utf-32"])
        return data.decode("utf-8", "replace").encode(enc, "replace"), f"re-encoded as {enc}"
    if op == "bom":
        return b"\xef\xbb\xbf" + data, "BOM added"
    if op == "nul" and data:
        at = rng.randrange(len(data))
        return data[:at] + b"\x00" * rng.randint(1, 20) + data[at:], "NUL bytes inserted"
    return data.replace(b"\n", b"\r\n"), "CRLF line ends"


def _yaml_mutation(rng: random.Random, doc) -> tuple[object, str]:
    """A structural change of a YAML document (a dict)."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + [i])

    walk(doc, [])
    path = rng.choice(paths[1:] or [[]])
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1] if path else None
    op = rng.choice(["drop", "type", "unknown", "deep", "odd", "list"])
    where = ".".join(map(str, path)) or "(root)"
    if key is None:
        return rng.choice([[], "text", 42, None]), "document replaced by a scalar"
    if op == "drop":
        del parent[key]
        return doc, f"dropped {where}"
    if op == "type":
        parent[key] = rng.choice([123, -1, 0.0, True, None, "abc", [], {}, [1, 2], float("nan")])
        return doc, f"{where} → {parent[key]!r}"
    if op == "unknown" and isinstance(parent, dict):
        parent[f"{key}_extra"] = "x"
        return doc, f"unknown key beside {where}"
    if op == "deep":
        node = "x"
        for _ in range(rng.choice([50, 500])):
            node = {"a": node}
        parent[key] = node
        return doc, f"{where} nested deeply"
    if op == "list":
        parent[key] = [parent[key]] * rng.randint(2, 3)
        return doc, f"{where} repeated as a list"
    parent[key] = rng.choice(ODD_VALUES)
    return doc, f"{where} → {parent[key]!r}"


def _write_frame(df: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)


def _read_frame(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str, keep_default_na=False)


def mutate(base: Path, work: Path, number: int, seed: int = SEED) -> Case:
    """Copy ``base`` (data.yaml, scheme.yaml and the data files) to ``work`` and break one thing."""
    rng = random.Random(seed * 1_000_003 + number)
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(base, work)
    config = yaml.safe_load((work / "data.yaml").read_text(encoding="utf-8"))
    files = sorted(p.name for p in work.iterdir() if p.suffix in (".csv", ".parquet") and p.name not in SIDE)
    target = rng.choice(["frame"] * 5 + ["bytes"] * 2 + ["data.yaml"] * 2 + ["scheme.yaml"] * 2 + ["format"]
                        + ["sheet.csv", "designations.csv", "spot_check.csv"] * 2)
    if target in SIDE:  # the review sheet or the designations: their rows, columns or bytes
        if rng.random() < 0.7:
            df, what = _frame_mutation(rng, _read_frame(work / target))
            df.to_csv(work / target, index=False, encoding="utf-8-sig" if target in ("sheet.csv", "spot_check.csv") else "utf-8")
        else:
            data, what = _bytes_mutation(rng, (work / target).read_bytes())
            (work / target).write_bytes(data)
        return Case(number, f"{target}: {what}", work)
    if target == "frame":
        name = rng.choice(files)
        df, what = _frame_mutation(rng, _read_frame(work / name))
        try:
            _write_frame(df, work / name)
        except Exception as e:  # noqa: BLE001 - pyarrow refuses a frame (mixed types): write it as CSV text
            (work / name).unlink()
            name = Path(name).with_suffix(".csv").name
            df.astype(str).to_csv(work / name, index=False)
            for t in config["tables"].values():
                if Path(t.get("path", "")).stem == Path(name).stem:
                    t["path"] = name
            (work / "data.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
            what += f" (as CSV: {type(e).__name__})"
        return Case(number, f"{name}: {what}", work)
    if target == "bytes":
        name = rng.choice(files)
        data, what = _bytes_mutation(rng, (work / name).read_bytes())
        (work / name).write_bytes(data)
        return Case(number, f"{name}: {what}", work)
    if target == "format":  # a table in the other format, with the odd values CSV text allows
        name = rng.choice(files)
        df = _read_frame(work / name)
        other = Path(name).with_suffix(".csv" if name.endswith(".parquet") else ".parquet").name
        try:
            _write_frame(df, work / other)
        except Exception:  # noqa: BLE001
            return Case(number, f"{name}: unchanged (could not convert)", work)
        (work / name).unlink()
        for t in config["tables"].values():
            if t.get("path") == name:
                t["path"] = other
        (work / "data.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        return Case(number, f"{name} → {other}", work)
    doc = yaml.safe_load((work / target).read_text(encoding="utf-8"))
    doc, what = _yaml_mutation(rng, doc)
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except (yaml.YAMLError, RecursionError):
        text = "a: [unbalanced\n"
    if rng.random() < 0.1:  # an alias bomb instead
        text = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
        what = "alias bomb"
    (work / target).write_text(text, encoding="utf-8")
    return Case(number, f"{target}: {what}", work)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def check(case: Case) -> list[str]:
    """Run validate and grade on the case; the broken promises (empty when every run kept them)."""
    from segment.cli import main

    broken = []
    before = _digest(case.folder)
    f = case.folder
    reports = f / "reports"
    approved, log = reports / "2026Q2" / "grading.approved.parquet", reports / "audit_log.csv"
    grade = ["grade", "--data", str(f / "data.yaml"), "--scheme", str(f / "scheme.yaml"), "--as-of", "2026-06-30"]
    runs = [(["validate", "--data", str(f / "data.yaml")], None),
            (grade + ["--out", str(f / "out" / "g.csv")], f / "out" / "g.csv"),
            (grade + ["--designations", str(f / "designations.csv"), "--out", str(f / "out" / "d.csv")], f / "out" / "d.csv"),
            (["review", "apply", str(f / "sheet.csv"), "--reports-dir", str(reports), "--quarter", "2026Q2"], approved),
            (["review", "spot-check", "apply", str(f / "spot_check.csv"), "--reports-dir", str(reports), "--period",
              "2026Q2"], log)]
    for args, out in runs:
        log_before = log.read_bytes() if log.exists() else None
        approved_before = approved.read_bytes() if approved.exists() else None
        err = io.StringIO()
        try:
            with redirect_stdout(io.StringIO()), redirect_stderr(err):
                code = main(args)
        except SystemExit as e:  # argparse
            code = e.code
        except BaseException as e:  # noqa: BLE001 - a crash is what this looks for
            broken.append(f"{args[0]} crashed: {type(e).__name__}: {str(e)[:300]}")
            continue
        text = err.getvalue()
        if code not in (0, 2):
            broken.append(f"{args[0]} exited {code}: {text[-500:]}")
        elif code == 2 and not text.lstrip().startswith("error:"):
            broken.append(f"{args[0]} exit 2 without `error:`: {text[:300]!r}")
        elif code == 2 and "Traceback" in text:
            broken.append(f"{args[0]} printed a traceback")
        if out == log and code == 2 and (log.read_bytes() if log.exists() else None) != log_before:
            broken.append("spot-check apply exit 2 but the audit log changed")
        if out is not None and out not in (approved, log):
            if code == 2 and out.exists():
                broken.append(f"{args[0]} exit 2 but wrote {out.name}")
            if code == 0 and not out.is_file():
                broken.append(f"{args[0]} exit 0 without {out.name}")
        if out == approved and code == 2:
            if (log.read_bytes() if log.exists() else None) != log_before:
                broken.append("review apply exit 2 but the audit log changed")
            if (approved.read_bytes() if approved.exists() else None) != approved_before:
                broken.append("review apply exit 2 but the approved grading changed")
        if out == approved and code == 0 and not approved.is_file():
            broken.append("review apply exit 0 without the approved grading")
    if _digest(case.folder) != before:
        broken.append("a source file changed")
    return broken


#: the inputs beside the data: a filled review sheet of 2026Q2 (one decision with an expiry), a designations
#: file and a filled spot-check sheet
SIDE = ("sheet.csv", "designations.csv", "spot_check.csv")


def base_demo(folder: Path) -> Path:
    """The fuzzer's valid start: a 60-customer demo (CSV and Parquet tables), the S1 scheme, its
    2026Q2 grading laid out as `segment report` does with a filled review sheet, and designations."""
    import json

    from segment.demo.write import write_demo
    from segment.paths import schemes_dir
    from segment.pipeline import grade_data
    from segment.review.params import ReviewParams
    from segment.review.sheet import export_review

    config = write_demo(folder, customers=60, seed=3)
    shutil.copy(schemes_dir() / "s1_four_tier.yaml", folder / "scheme.yaml")
    q = folder / "reports" / "2026Q2"
    q.mkdir(parents=True)
    graded = grade_data(config, folder / "scheme.yaml", "2026-06-30").frame
    graded.to_parquet(q / "grading.parquet", index=False)
    (q / "manifest.json").write_text(json.dumps({"quarter": "2026Q2", "as_of": "2026-06-30", "scheme": "s1_four_tier",
                                                 "scheme_path": str(folder / "scheme.yaml")}), encoding="utf-8")
    export_review(q / "grading.parquet", folder / "scheme.yaml", q, ReviewParams())
    sheet = pd.read_csv(q / "review_sheet.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    sheet.loc[sheet.index[:3], ["confirm", "reviewer"]] = ["yes", "张伟"]
    other = next(t for t in ("ordinary", "important") if t != sheet.loc[sheet.index[3], "tier"])
    sheet.loc[sheet.index[3], ["confirm", "new_tier", "reason", "reviewer", "expires"]] = [
        "no", other, "checked on a visit", "李娜", "2027Q1"]
    sheet.to_csv(folder / "sheet.csv", index=False, encoding="utf-8-sig")
    for p in q.glob("review_sheet.*"):
        p.unlink()
    pd.DataFrame({"customer_id": graded["customer_id"].iloc[:3].astype(str), "result": ["ok", "wrong", ""],
                  "note": ["", "closed its account", ""], "checker": ["孙宇", "孙宇", ""]}).to_csv(
        folder / "spot_check.csv", index=False, encoding="utf-8-sig")
    pd.DataFrame({"customer_id": [graded["customer_id"].iloc[0]], "tier": ["important"], "reason": ["strategic"],
                  "approver": ["王总"], "expires": ["2027-01-01"]}).to_csv(folder / "designations.csv", index=False)
    return config.parent


if __name__ == "__main__":  # python -m tests.fuzz [FIRST [COUNT]]: run cases, print the broken ones
    import tempfile

    first = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    with tempfile.TemporaryDirectory() as tmp:
        base = base_demo(Path(tmp) / "base")
        bad = 0
        for n in range(first, first + count):
            case = mutate(base, Path(tmp) / "case", n)
            problems = check(case)
            if problems:
                bad += 1
                print(f"case {n} ({case.what}):", *problems, sep="\n  ")
        print(f"{count} cases, {bad} broken")
        sys.exit(1 if bad else 0)
