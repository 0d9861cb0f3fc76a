"""The deterministic demo company: its world (industries, regions, product lines, customers), the monthly simulation of its history, and the files written from it."""
