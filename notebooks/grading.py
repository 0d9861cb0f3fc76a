# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
# Parameters (papermill injects the real values; these defaults run the demo by hand in JupyterLab)
quarter: str = "2026Q3"  # the quarter reported, e.g. 2026Q3; grading is at its last day
data: str = "data/demo/data.yaml"  # data config (DATA.yaml)
scheme: str = "s1_four_tier"  # scheme id under params/schemes/ or a path to a scheme file
grading: str = ""  # grading already computed by segment report (parquet); empty: grade here
data_report: str = ""  # validation warnings computed by segment report (parquet); empty: validate here

# %%
from segment.reports import GradingReport

report = GradingReport.load(quarter=quarter, data=data, scheme=scheme, grading=grading, data_report=data_report)
report.title()

# %% [markdown]
# ## Summary

# %%
report.summary()

# %% [markdown]
# ## Customers and revenue by tier

# %%
report.tiers()

# %% [markdown]
# ## What each tier gets

# %%
report.strategies()

# %% [markdown]
# ## Data quality

# %%
report.data_quality()
