"""Grading: the scheme format and its conditions, compiled to SQL and run; gradings over time."""
