# gensearch: `make demo` runs the main job, `make test` runs the tests. Both set everything up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
GS := $(VENV)/bin/gensearch
STAMP := $(VENV)/.installed
# This machine kind ships a CPU wheel of torch; use it so pip never pulls a multi-GB CUDA build here.
TORCH_LINKS := $(if $(wildcard /opt/wheels/torch-*.whl),--find-links /opt/wheels,)
PYTEST_ARGS ?=

.PHONY: install models demo test bench clean-venv

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_LINKS) torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

models: install
	$(GS) models fetch default teacher baseline

demo: models
	$(GS) embed --decode "How do I reverse a list in Python?" "What is a Python generator?" "Best pizza in Naples"

test: install
	$(GS) models fetch test teacher baseline default
	$(PY) -m pytest $(PYTEST_ARGS)

bench: models
	$(PY) benchmarks/encode_overhead.py

clean-venv:
	rm -rf $(VENV)
