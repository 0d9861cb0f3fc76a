"""The HTML reports: one module per report's sections, charts, and the build (papermill, nbconvert)."""
