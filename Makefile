# bvsim: every target bootstraps its own virtual environment.
#   make sweep   default preset (seed-demo) -> results/seed-demo/
#   make test    lint + the whole test suite
#   make bench   engine benchmark -> results/bench/
#   make bench-memory   peak memory vs number of training sets -> results/bench/
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
PRESET ?= seed-demo
ARGS   ?=

BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: sweep test bench bench-memory lint clean venv FORCE

venv: $(STAMP)

# The torch spec of the last install; rewritten (and so newer than the stamp) only when
# TORCH changes.
$(VENV)/.torch-spec: FORCE
	@mkdir -p $(VENV)
	@echo "$(TORCH)" | cmp -s - $@ || echo "$(TORCH)" > $@

# Re-installs only when pyproject.toml, the version (bvsim/_version.py, which
# pyproject.toml reads) or the torch spec changes. A sweep needs the
# runtime dependencies only; tests and benchmarks add their extras on top.
$(STAMP): pyproject.toml bvsim/_version.py $(VENV)/.torch-spec
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e .
	echo "$(TORCH)" > $@

$(VENV)/.dev: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

sweep: $(STAMP)
	$(BIN)/bvsim sweep --preset $(PRESET) --out results/$(PRESET) $(ARGS)

test: $(VENV)/.dev
	$(BIN)/ruff check bvsim tests scripts
	$(BIN)/ruff format --check bvsim tests scripts
	$(BIN)/python -m pytest -q $(ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check --fix bvsim tests scripts
	$(BIN)/ruff format bvsim tests scripts

$(VENV)/.bench: $(VENV)/.dev
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python scripts/bench.py $(ARGS)

bench-memory: $(STAMP)
	$(BIN)/python scripts/bench_memory.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info bvsim.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
