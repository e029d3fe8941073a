"""What a notebook imports besides the science: ``session.setup`` (threads, theme, parameters,
figure folder), ``params`` (parameter validation), ``claims`` (predictions and their verdicts)
and ``plotting`` (theme and deterministic figure files)."""
