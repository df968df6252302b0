# Two entry points for a fresh machine with only Python 3.11 and pip:
#   make run   - set up, then export and verify the default models into exported/
#   make test  - set up, then lint and run the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run readme-table test lint clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

run: $(STAMP)
	$(BIN)/edge-echo export --out exported --c-array --quantize $(QUANTIZE)
	$(BIN)/edge-echo verify exported

# The TFLite converter leaves these small LSTMs' weights in float32 under
# dynamic-range quantization (export says why), so only ONNX gets "dynamic".
QUANTIZE := float16,int8,onnx:dynamic

# Regenerates the variant table in README.md from a verify run of exported/.
readme-table: $(STAMP)
	$(BIN)/edge-echo table exported --readme README.md

lint: $(STAMP)
	$(BIN)/ruff check edge_echo tests benchmarks

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
