"""Reading run folders: what a reader sees of a run, tables and exports, comparisons across runs,
the factorial analysis, terminal output and the HTML viewer."""
