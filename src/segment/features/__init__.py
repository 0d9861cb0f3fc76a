"""Indicators: the registry of every indicator a scheme can read, and the point-in-time snapshot that computes them."""
