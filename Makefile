# The README's two commands: `make figures` and `make test`. Each creates .venv and installs
# the package with its pinned dependencies first when that has not been done yet.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pyproject.toml requires Python 3.11; PYTHON is the first of python3.11, python3 that is 3.11
# (override: make install PYTHON=/path/to/python3.11).
IS_311 := import sys; sys.exit(sys.version_info[:2] != (3, 11))
PYTHON ?= $(shell for p in python3.11 python3; do $$p -c '$(IS_311)' 2>/dev/null && { echo $$p; break; }; done)
SITE_STAMP := $(VENV)/.installed-site
# One torch/BLAS thread per process: these workloads are small and 2 cores oversubscribe easily;
# parallelism comes from running notebooks and test files side by side, one per core.
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export MPLBACKEND := Agg
NBVAL_FIGURES := $(CURDIR)/build/nbval-figures
PERTURBED_FIGURES := $(CURDIR)/build/perturbed-figures

.PHONY: figures figures-quick check test test-perturbed test-unit benchmark lint format install clean site test-site publish-site

install: $(STAMP)

# A .venv made by another Python (an earlier install with the wrong interpreter) is replaced.
$(STAMP): pyproject.toml constraints.txt
	@if [ -z "$(PYTHON)" ] || ! $(PYTHON) -c '$(IS_311)' 2>/dev/null; then \
		echo "make: Python 3.11 is needed (pyproject.toml requires-python), but '$(or $(PYTHON),python3)' is" \
			"$$($(or $(PYTHON),python3) --version 2>&1 || echo missing). Install Python 3.11, then run:" \
			"make install PYTHON=/path/to/python3.11" >&2; \
		exit 1; \
	fi
	@if [ -e "$(VENV)" ] && ! "$(BIN)/python" -c '$(IS_311)' 2>/dev/null; then \
		echo "make: $(VENV) was made with $$("$(BIN)/python" --version 2>&1 || echo 'a Python that is gone');" \
			"removing it and creating it again with $(PYTHON)"; \
		rm -rf "$(VENV)"; \
	fi
	"$(PYTHON)" -m venv "$(VENV)"
	"$(BIN)/python" -m pip install --quiet --upgrade pip
	"$(BIN)/python" -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The reading version's tools (the `site` extra) on top of the base install.
$(SITE_STAMP): $(STAMP) pyproject.toml constraints.txt
	"$(BIN)/python" -m pip install --quiet -c constraints.txt -e '.[test,site]'
	touch $(SITE_STAMP)

## Regenerate every notebook, its figures and figures/MANIFEST.json (committed outputs),
## one notebook per core; then the generated blocks of README.md and docs/results.md from the claims.
figures: $(STAMP)
	"$(BIN)/nlcl" figures
	"$(BIN)/nlcl" readme

## Smoke-run every notebook with small parameters; writes only under build/quick/.
figures-quick: $(STAMP)
	"$(BIN)/nlcl" figures --profile quick

## The contributors' inner loop (a few minutes): lint, unit and pipeline tests (one process per
## core), every notebook's quick profile, and the quick profile of a subset again with another
## processor's kernels (results must reproduce within tolerance while their bytes differ).
check: lint
	"$(BIN)/python" -m pytest -n auto --dist loadfile -p no:cacheprovider tests
	"$(BIN)/nlcl" figures --profile quick
	NLCL_QUICK_OUTPUTS="$(CURDIR)/build/quick" "$(BIN)/python" -m pytest -p no:cacheprovider tests/test_reproduce_anywhere.py

## The full check (what CI runs): `make check`, then nbval on the committed notebooks (byte for
## byte where they were made on this machine, numbers masked elsewhere: `nlcl verify
## --nbval-config`), then the committed claims against the ones the notebooks wrote under nbval
## (bit for bit on the same machine, same verdicts and values within tolerance elsewhere).
test: check
	rm -rf "$(NBVAL_FIGURES)"
	cfg="$$("$(BIN)/nlcl" verify --nbval-config)" && \
	TQDM_DISABLE=1 NLCL_FIGURES_DIR="$(NBVAL_FIGURES)" "$(BIN)/python" -m pytest -n auto --dist loadfile --nbval \
		--nbval-current-env --nbval-sanitize-with "$$cfg" -p no:cacheprovider notebooks
	NLCL_NBVAL_FIGURES="$(NBVAL_FIGURES)" "$(BIN)/python" -m pytest -p no:cacheprovider tests/test_claims_reproduced.py

## The committed notebooks under nbval with another processor's kernels imitated on this one
## (ATen generic kernels, MKL compatible path, numpy without dispatched SIMD, another OpenBLAS
## core): the reproduce-anywhere level, end to end; the claim-by-claim table goes to
## benchmarks/results/reproduce-perturbed.md. Takes as long as nbval of every notebook.
test-perturbed: $(STAMP)
	rm -rf "$(PERTURBED_FIGURES)"
	NLCL_REPRODUCE=anywhere TQDM_DISABLE=1 NLCL_FIGURES_DIR="$(PERTURBED_FIGURES)" "$(BIN)/python" -m nlcl_utils.cli.perturbed \
		"$(BIN)/python" -m pytest -n auto --dist loadfile --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_anywhere.cfg -p no:cacheprovider notebooks
	NLCL_REPRODUCE=anywhere NLCL_NBVAL_FIGURES="$(PERTURBED_FIGURES)" "$(BIN)/python" -m pytest -p no:cacheprovider \
		tests/test_claims_reproduced.py
	"$(BIN)/nlcl" verify --executed "$(PERTURBED_FIGURES)" --markdown benchmarks/results/reproduce-perturbed.md

## Only the unit and pipeline tests.
test-unit: $(STAMP)
	"$(BIN)/python" -m pytest -n auto --dist loadfile -p no:cacheprovider tests

## Lint and format check (ruff, configured in pyproject.toml); `make format` fixes what it can.
lint: $(STAMP)
	"$(BIN)/ruff" check .
	"$(BIN)/ruff" format --check .

format: $(STAMP)
	"$(BIN)/ruff" check --fix .
	"$(BIN)/ruff" format .

## The engine's speed in the paper's setting; the result, with the machine it ran on, goes to
## benchmarks/results/.
benchmark: $(STAMP)
	"$(BIN)/python" benchmarks/bench_tokens.py

## The reading version: a static website of the committed notebooks in build/site/ (nothing is
## re-run; no network once the site extra is installed).
site: $(SITE_STAMP)
	"$(BIN)/nlcl" site

## Build the site and open every page in headless Chromium (Debian: apt-get install chromium);
## screenshots in build/site-screenshots/. The browser checks skip, saying why, without Chromium.
test-site: $(SITE_STAMP)
	"$(BIN)/python" -m pytest -q -p no:cacheprovider tests/test_site.py

## Publish build/site to the gh-pages branch and push it to origin (run by hand or by CI, never
## by another target): a static host such as GitHub Pages then serves it as is.
publish-site: site
	"$(BIN)/ghp-import" --no-jekyll --force --push --message "Reading version of $$(git rev-parse --short HEAD)" build/site

clean:
	rm -rf build
