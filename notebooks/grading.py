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
# Parameters (papermill injects the real values; these defaults run the demo by hand in JupyterLab)
quarter: str = "2026Q3"  # the period reported: 2026Q3, 2026-09, 2026H2 or 2026; graded at its last day
data: str = "data/demo/data.yaml"  # data config (DATA.yaml); relative: from the project root
scheme: str = "s1_four_tier"  # scheme id under params/schemes/ or a path to a scheme file
bundle: str = ""  # folder prepared by segment report; empty: compute everything here

# %%
from segment.reports.grading_data import grading_report

report = grading_report(quarter, data, scheme, bundle)
report.title()

# %% [markdown]
# ## Summary

# %%
report.summary()

# %% [markdown]
# ## Tiers over time

# %%
report.over_time()

# %% [markdown]
# ## Customers and revenue by tier

# %%
report.tiers()

# %% [markdown]
# ## Who moved since the previous period, and why

# %%
report.migration()

# %% [markdown]
# ## Scores falling over the last periods

# %%
report.score_trend()

# %% [markdown]
# ## Realised churn by tier

# %%
report.churn_by_tier()

# %% [markdown]
# ## Stability of the grading

# %%
report.stability()

# %% [markdown]
# ## By product line

# %%
report.breakdown("group")

# %% [markdown]
# ## By industry

# %%
report.breakdown("industry")

# %% [markdown]
# ## By region

# %%
report.breakdown("region")

# %% [markdown]
# ## By account manager

# %%
report.breakdown("account_manager")

# %% [markdown]
# ## What each tier gets, and the resources it takes

# %%
report.strategies()

# %% [markdown]
# ## Follow-ups overdue, by account manager

# %%
report.follow_ups()

# %% [markdown]
# ## Reviewer decisions

# %%
report.reviewer_changes()

# %% [markdown]
# ## Data quality

# %%
report.data_quality()
