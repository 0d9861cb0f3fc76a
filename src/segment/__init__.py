"""segment: grade customers into tiers and prove the grading against churn history."""
__version__ = "0.1.0"
