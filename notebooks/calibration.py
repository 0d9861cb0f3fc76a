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
quarter: str = "2026Q3"  # the period reported (2026Q3, 2026-09, 2026H2 or 2026)
calibration: str = ""  # folder with metrics.json; empty: reports/QUARTER/calibration, else reports/calibration

# %%
from segment.reports.calibration import calibration_report

report = calibration_report(quarter, calibration)
report.title()

# %% [markdown]
# ## Recommendation

# %%
report.recommendation()

# %% [markdown]
# ## Expert and calibrated weights

# %%
report.weights()

# %% [markdown]
# ## How well each weighting predicts churn out of time

# %%
report.performance()

# %% [markdown]
# ## Bands fitted to churn

# %%
report.bands()

# %% [markdown]
# ## Churn probabilities: predicted against observed

# %%
report.probabilities()

# %% [markdown]
# ## Deciles and lift of the calibrated weights

# %%
report.calibration_plot()

# %% [markdown]
# ## Churn by tier

# %%
report.tiers()

# %% [markdown]
# ## Churn timing by tier

# %%
report.timing()

# %% [markdown]
# ## What the scheme misses

# %%
report.missing()

# %% [markdown]
# ## Who was counted

# %%
report.caveats()
