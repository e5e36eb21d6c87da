"""Statistics with no knowledge of runs: a figure with its interval, drift intervals, profile drift and
the Thurstonian utility fit."""
