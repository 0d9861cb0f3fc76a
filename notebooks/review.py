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
quarter: str = "2026Q3"  # the quarter whose grading is reviewed
scheme: str = "s1_four_tier"  # scheme id under params/schemes/ or a path to a scheme file
grading: str = ""  # the quarter's grading (parquet); empty: reports/QUARTER/grading.parquet
previous: str = ""  # the previous quarter's grading, for big movers; empty: none

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
