# Two entry points for a fresh machine with CPython 3.11, 3.12 or 3.13 and pip:
#   make run   - set up, then export and verify the default models into exported/
#   make test  - set up, then lint and run the test suite
# The interpreter is the first supported python3.x found (oldest first, pyenv's included), or
# PYTHON=python3.13 (a name or a path). The virtual environment is rebuilt when it changes.
PYTHON ?=
PY := $(shell tools/find-python $(PYTHON))
PYVER := $(if $(PY),$(shell $(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])'))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(PYVER)

.PHONY: run readme-table report-screenshot test lint clean python setup

python:
	@test -n "$(PY)" || { echo "edge-echo: no supported Python (see above)" >&2; exit 2; }
	@echo "edge-echo: using Python $$($(PY) -c 'import platform; print(platform.python_version())') ($(PY))"

$(VENV)/.installed-%: requirements.lock pyproject.toml
	@test -n "$(PY)" || exit 2
	rm -rf $(VENV)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# The virtual environment alone (run and test make it themselves; .ci/run makes it while apt
# installs the device tools).
setup: python $(STAMP)

# The export and its proof, then the figures and the one page that shows them all
# (exported/report.html; the JSON and the page are measured here, so git ignores them).
run: python $(STAMP)
	$(BIN)/edge-echo export --out exported --retrain --c-array --c-source --quantize $(QUANTIZE)
	$(BIN)/edge-echo verify exported --json exported/verify.json
	$(BIN)/edge-echo bench exported --json exported/bench.json
	$(BIN)/edge-echo report exported --scaling benchmarks/results/scaling.json

# Regenerates docs/report.png, the README's picture of exported/report.html (after make run),
# in headless Chromium (Debian's chromium package).
report-screenshot: python $(STAMP)
	$(BIN)/python tools/screenshot exported/report.html docs/report.png

# The TFLite converter leaves these small LSTMs' weights in float32 under
# dynamic-range quantization (export says why), so only ONNX gets "dynamic".
QUANTIZE := float16,int8,onnx:dynamic

# Regenerates the variant table in README.md from a verify run of exported/.
readme-table: python $(STAMP)
	$(BIN)/edge-echo table exported --readme README.md

lint: python $(STAMP)
	$(BIN)/ruff check edge_echo tests benchmarks examples

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
