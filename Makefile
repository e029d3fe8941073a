# The README's two commands: `make figures` and `make test`. Each creates .venv and installs
# the package with its pinned dependencies first when that has not been done yet.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# One torch/BLAS thread per process: these workloads are small and 2 cores oversubscribe easily.
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export MPLBACKEND := Agg

.PHONY: figures figures-quick test test-unit benchmark lint format install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

## Regenerate every notebook, its figures and figures/MANIFEST.json (committed outputs).
figures: $(STAMP)
	$(BIN)/nlcl figures
	$(BIN)/nlcl readme

## Smoke-run every notebook with small parameters; writes only under build/.
figures-quick: $(STAMP)
	$(BIN)/nlcl figures --profile quick

## Unit tests, pipeline checks, then nbval (strict) on the committed notebooks.
test: $(STAMP)
	$(BIN)/python -m pytest tests
	TQDM_DISABLE=1 NLCL_FIGURES_DIR=$(CURDIR)/build/nbval-figures $(BIN)/python -m pytest --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks

## Lint and format check (ruff, configured in pyproject.toml); `make format` fixes what it can.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests

benchmark: $(STAMP)
	$(BIN)/python benchmarks/bench_tokens.py

clean:
	rm -rf build
