"""Freeze the grading of every built-in scheme on tests/grading/test_sqlgrade.py's synthetic population.

    .venv/bin/python tests/reference/grading/freeze.py

Written once from the numpy engine (main e7507fa, before grading moved to SQL) and kept as the
reference every engine change is checked against (tests/grading/test_sqlgrade.py::test_every_scheme_matches_
the_frozen_grading). Rerun only when a scheme's meaning changes on purpose, and say so in the commit.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench"), str(ROOT)]

import pandas as pd  # noqa: E402

from segment.pipeline import grade_current  # noqa: E402
from segment.grading.scheme import SCHEMES_DIR, load_scheme  # noqa: E402
from tests.grading.test_sqlgrade import make_population  # noqa: E402


def main() -> None:
    pop = make_population()
    for path in sorted((ROOT / SCHEMES_DIR).glob("*.yaml")):
        scheme = load_scheme(path.stem)
        frame = pop if scheme.group_by else pop.drop(columns=["group"])
        g, _ = grade_current(frame, scheme, "2026-09-30")
        out = g.frame.copy()
        for c in out.columns:
            if isinstance(out[c].dtype, pd.CategoricalDtype):
                out[c] = out[c].astype("string")
        out.to_parquet(HERE / f"{path.stem}.parquet", compression="zstd", index=False)
        g.ineligible.to_parquet(HERE / f"{path.stem}.ineligible.parquet", compression="zstd", index=False)
        print(path.stem, out.shape)


if __name__ == "__main__":
    main()
