# Two entry points for a fresh machine: `make run` (the pipeline on the bundled sample) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# LightGBM's OpenMP threads spin while waiting; passive waiting keeps a shared 2-core machine usable
export OMP_WAIT_POLICY := passive

.PHONY: install run test test-fast lint

$(BIN)/churn: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test]"
	touch $@

install: $(BIN)/churn

run: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# two workers, a test file each at a time: the two end-to-end files run on both workers beside the others
test: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n 2 --dist loadfile

# unit and property tests, each property test on a quarter of its examples: no `dvc repro`, no
# Spark (about 70 s on 2 cores)
test-fast: install
	CHURN_TEST_TIER=fast PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n 2 -m "not slow and not spark"

# the same checks as .pre-commit-config.yaml; CI runs them before the tests
lint: install
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/ruff format --check pipeline tests benchmarks
	$(BIN)/mypy
