"""The data: the contract, the data config, reading and validating sources into DuckDB (or Spark)."""
