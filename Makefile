# cnnlab: `make lab` runs the lab, `make test` runs the tests. Both create .venv and install
# everything first (Python packages from PyPI, graphviz's `dot` from Debian when missing).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PRESET ?= quick

.PHONY: lab test install system-deps bench bench-keras clean-runs help

help:
	@echo "make lab     # create .venv, install, run the lab (preset $(PRESET)); data from \$$CNNLAB_DATA or downloaded"
	@echo "make test    # create .venv if needed, install, run the whole test suite"
	@echo "make bench   # the benchmarks in bench/ (needs ../shared/data)"
	@echo "make bench-keras  # the Keras course CNN in Keras and in cnnlab, side by side (builds .venv-keras)"

install: $(STAMP) system-deps

# torch and torchvision are pinned in pyproject.toml: this machine's pip serves exactly those from disk.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# graphviz's `dot` renders architecture graphs; without it cnnlab writes DOT source instead.
system-deps:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing graphviz (dot)"; apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; \
	  else echo "note: graphviz 'dot' not found; graphs will be written as .gv source (apt-get install graphviz)"; fi; }

lab: install
	$(BIN)/cnnlab lab --preset $(PRESET)

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/cifar_speed.py

# Keras lives in its own environment, so the project's install stays lean.
KERAS_VENV := .venv-keras
$(KERAS_VENV)/.installed:
	test -x $(KERAS_VENV)/bin/python || $(PYTHON) -m venv $(KERAS_VENV)
	$(KERAS_VENV)/bin/python -m pip install -q --upgrade pip
	$(KERAS_VENV)/bin/python -m pip install -q tensorflow-cpu keras numpy
	touch $@

bench-keras: install $(KERAS_VENV)/.installed
	$(BIN)/python bench/keras_peer.py --keras-python $(KERAS_VENV)/bin/python
