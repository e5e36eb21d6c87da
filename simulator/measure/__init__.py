"""A run's figures from its events: the summary (per stage, with n and 95% intervals), the
stability verdicts and the tables that print them."""
