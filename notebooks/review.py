# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
# Parameters (papermill injects the real values; these defaults work after `make report` in JupyterLab)
quarter: str = "2026Q3"  # the period whose grading is reviewed (2026Q3, 2026-09, 2026H2 or 2026)
scheme: str = "s1_four_tier"  # scheme id under params/schemes/ or a path to a scheme file
grading: str = ""  # the period's grading (parquet); empty: reports/PERIOD/grading.parquet
previous: str = ""  # the previous period's grading, for big movers; empty: none

# %%
from segment.reports.review import review_report

review = review_report(quarter, grading, scheme, previous)
review.title()

# %% [markdown]
# ## How to review

# %%
review.how_to()

# %% [markdown]
# ## Who is reviewed, and why

# %%
review.summary()

# %% [markdown]
# ## The customers to re-check, by account manager

# %%
review.customers()
