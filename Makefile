# Every target creates the virtual environment it needs, so a fresh clone needs only
# Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup example gen check-gen lint typecheck test docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

example: setup  ## run the hello example end to end through gestalt dev and gestalt invoke
	$(BIN)/python examples/run_hello.py

gen: setup  ## rebuild generated/ from proto/ (unchanged files are left as they are)
	$(BIN)/python -m codegen

check-gen: setup  ## fail if generated/ differs from what the generator renders
	@$(BIN)/python -m codegen --check

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy --strict src codegen generated tests benchmarks examples

test: setup lint typecheck  ## the whole suite, as CI runs it
	$(BIN)/python -m pytest -q

docs: setup  ## build the HTML documentation into docs/_build
	$(BIN)/python -m sphinx -W -b html docs docs/_build/html

bench: setup
	$(BIN)/python benchmarks/bench_mirrors.py
	$(BIN)/python benchmarks/bench_floor.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
