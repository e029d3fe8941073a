"""Many training runs at once: per-case seeds in worker processes (``token_runs``), cached grids
of settings (``sweep``) and their tables with intervals (``tables``)."""
