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

.PHONY: run readme-table report-screenshot test lint clean python setup js web

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

# The JavaScript runtimes verify and bench also run (onnxruntime-node, onnxruntime-web,
# @litertjs/core), pinned by package-lock.json and installed from the npm registry into
# node_modules/. --ignore-scripts: onnxruntime-node's install script would download from outside
# the registry; its CPU binaries ship in the package. Without npm, those runtimes are skipped
# (Debian: apt-get install nodejs npm).
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@; \
	else \
	  echo "edge-echo: no npm here, so the JavaScript runtimes are skipped (apt-get install nodejs npm, then make js)" >&2; \
	fi

js: $(NODE_STAMP)

# The virtual environment alone (run and test make it themselves; .ci/run makes it while apt
# installs the device tools).
setup: python $(STAMP)

# The export and its proof, then the figures and the one page that shows them all
# (exported/report.html; the JSON and the page are measured here, so git ignores them).
run: python $(STAMP) $(NODE_STAMP)
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

# examples/web/ on http://127.0.0.1:8000/examples/web/ (after make run): an echo model in
# ONNX Runtime Web and the C source's .wasm, beside the Keras output stored in the export.
web: python $(STAMP) $(NODE_STAMP)
	$(BIN)/python tools/serve-web

lint: python $(STAMP)
	$(BIN)/ruff check edge_echo tests benchmarks examples

test: lint $(NODE_STAMP)
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache node_modules
