"""pytest configuration for the whole repository (unit tests and nbval on the notebooks)."""

from nlcl_utils.pipeline.run_notebook import skip_slow_optional_imports

# nbformat (used by nbval, jupytext and papermill) would otherwise spend ~4 CPU-seconds per
# test process importing an optional IRI checker no notebook needs.
skip_slow_optional_imports()
