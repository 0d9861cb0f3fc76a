"""Calibration against churn: labels and the panel, weights and cut-offs fitted out of time."""
