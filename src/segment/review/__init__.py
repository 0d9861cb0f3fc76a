"""The review loop: the sample to re-check, the sheet, reviewers' decisions, the audit log."""
