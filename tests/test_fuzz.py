"""The mutation fuzzer (tests/fuzz.py) in the suite: a fixed-seed run of mutated demo inputs (data
files, DATA.yaml, scheme, review sheet, designations) through `segment validate`, `segment grade` (with
and without designations) and `segment review apply` — each must end in exit 0, or exit 2 with
`error:` and nothing written, and leave its sources as they were. `make fuzz N=2000` runs more (SEGMENT_FUZZ_N cases,
from SEGMENT_FUZZ_FIRST); a crash names its case number: `python -m tests.fuzz CASE` reproduces it."""
from __future__ import annotations

import os

import pytest

from .fuzz import base_demo, check, mutate

N = int(os.environ.get("SEGMENT_FUZZ_N", "120"))
FIRST = int(os.environ.get("SEGMENT_FUZZ_FIRST", "0"))
CHUNK = 10


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return base_demo(tmp_path_factory.mktemp("fuzz-base"))


@pytest.mark.parametrize("start", range(FIRST, FIRST + N, CHUNK))
def test_mutated_inputs_end_in_a_result_or_a_clear_error(base, start, tmp_path):
    broken = {}
    for n in range(start, min(start + CHUNK, FIRST + N)):
        case = mutate(base, tmp_path / f"case{n}", n)
        problems = check(case)
        if problems:
            broken[f"case {n} ({case.what})"] = problems
    assert not broken, "\n".join(f"{k}: {'; '.join(v)}" for k, v in broken.items())


def test_the_unchanged_base_passes_every_command(base, tmp_path):
    """Else the fuzzer would measure nothing: validate, grade (with and without designations) and
    review apply and spot-check apply all succeed on the base, and write what they should: the decision
    with an expiry and the two spot checks logged."""
    import shutil

    from .fuzz import Case

    work = tmp_path / "unchanged"
    shutil.copytree(base, work)
    assert check(Case(-1, "unchanged", work)) == []
    assert {p.name for p in (work / "out").iterdir()} == {"g.csv", "d.csv"}
    assert (work / "reports" / "2026Q2" / "grading.approved.parquet").is_file()
    log = (work / "reports" / "audit_log.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(log) == 7 and [line.split(",")[3] for line in log[1:]] == ["decision"] * 4 + ["spot_check"] * 2


def test_the_mutations_are_reproducible_and_varied(base, tmp_path):
    whats = [mutate(base, tmp_path / "a", n).what for n in range(40)]
    assert whats == [mutate(base, tmp_path / "b", n).what for n in range(40)]  # same seed, same cases
    kinds = {w.split(":")[0] for w in whats} | {w.split(": ")[1].split(" ")[0] for w in whats if ": " in w}
    assert {"data.yaml", "scheme.yaml", "sheet.csv", "designations.csv", "spot_check.csv"} <= kinds
    assert len(set(whats)) >= 30
