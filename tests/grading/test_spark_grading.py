"""The grading engine's SQL on Spark: every built-in scheme grades the synthetic population exactly as
frozen (tests/reference/grading) — the same compiled SQL as DuckDB, Spark SQL dialect.

Run with `make test-spark` (local[2]; needs Java 17 and the `spark` extra)."""
from __future__ import annotations

import pandas as pd
import pytest

from ..data.test_spark import engines  # skips the module without Java / PySpark
from .test_sqlgrade import FROZEN, SCHEME_IDS, assert_same, make_population

pytestmark = [pytest.mark.spark, pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


@pytest.fixture(scope="module")
def spark():
    return engines.spark_session("local[2]")


@pytest.fixture(scope="module")
def population(spark):
    pop = make_population()
    # Spark has no input order: the frozen gradings are in the population's order, which is by customer id
    assert pop["customer_id"].is_monotonic_increasing
    return pop, spark.createDataFrame(pop.astype({"customer_id": object, "group": object, "latest_stage": object,
                                                  "industry": object}))


@pytest.mark.parametrize("sid", SCHEME_IDS)
def test_every_scheme_on_spark_matches_the_frozen_grading(sid, population):
    from segment.grading.engine import grade_spark
    from segment.grading.scheme import load_scheme

    pop, df = population
    scheme = load_scheme(sid)
    g = grade_spark(df if scheme.group_by else df.drop("group"), scheme, as_of="2026-09-30")
    assert_same(pd.read_parquet(FROZEN / f"{sid}.parquet"), g.frame)
    assert g.ineligible["customer_id"].tolist() == \
        pd.read_parquet(FROZEN / f"{sid}.ineligible.parquet")["customer_id"].tolist()
