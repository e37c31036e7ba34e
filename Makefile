# gensearch: `make demo` runs the main job, `make test` runs the tests. Both set everything up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
GS := $(VENV)/bin/gensearch
STAMP := $(VENV)/.installed
# This machine kind ships a CPU wheel of torch; use it so pip never pulls a multi-GB CUDA build here.
TORCH_LINKS := $(if $(wildcard /opt/wheels/torch-*.whl),--find-links /opt/wheels,)
PYTEST_ARGS ?=

.PHONY: install models corpus index-demo index-app app browser demo test bench clean-venv

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_LINKS) torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

models: install
	$(GS) models fetch default teacher baseline

# The built-in knowledge-base corpus: Debian's python3.11-doc (reST sources of the Python docs).
# As root: apt-get install. Otherwise: apt-get download + dpkg-deb -x into the gensearch cache dir.
PYDOCS_PKG := python3.11-doc
PYDOCS_SRC := usr/share/doc/python3.11/html/_sources
corpus: install
	@if [ -d /$(PYDOCS_SRC) ]; then echo "Python docs corpus: /$(PYDOCS_SRC)"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends $(PYDOCS_PKG); \
	else dest="$$($(PY) -c 'from encoder.settings import get_settings; print(get_settings().cache_dir / "$(PYDOCS_PKG)")')"; \
	  if [ ! -d "$$dest/$(PYDOCS_SRC)" ]; then tmp="$$(mktemp -d)" && (cd "$$tmp" && apt-get download $(PYDOCS_PKG)) \
	    && dpkg-deb -x "$$tmp"/$(PYDOCS_PKG)_*.deb "$$dest" && rm -rf "$$tmp"; fi; \
	  echo "Python docs corpus: $$dest/$(PYDOCS_SRC)"; fi

# Index a subset of the Python docs with the default encoder (progress bar; re-runs add nothing).
DEMO_GLOB ?= faq/*
index-demo: models corpus
	$(GS) index --python-docs --glob '$(DEMO_GLOB)'

# Everything the app shows: the demo corpus with LLM2Vec-Gen and with the baseline (Compare page) and the
# labelled safety corpus with both (Safety page). Re-runs embed nothing new. The safety corpus is a seeded
# sample of at most SAFETY_PER_LABEL passages per label (~600 passages, minutes on CPU); the evaluation's
# whole mixed corpus (~1,480 passages): `make demo SAFETY_PER_LABEL=`.
SAFETY_PER_LABEL ?= 200
SAFETY_LIMIT := $(if $(SAFETY_PER_LABEL),--limit $(SAFETY_PER_LABEL),)
index-app: index-demo
	$(GS) index --python-docs --glob '$(DEMO_GLOB)' --encoder baseline
	$(GS) index --safety $(SAFETY_LIMIT)
	$(GS) index --safety --encoder baseline $(SAFETY_LIMIT)

# The Streamlit UI on http://127.0.0.1:8501 (Ctrl+C stops it). Streamlit flags: make app APP_ARGS='--server.port 8600'
APP_ARGS ?=
app: install
	$(GS) app $(APP_ARGS)

# The main command: models, corpus, indexes, a taste of decoding in the terminal, then the app.
demo: models corpus index-app
	$(GS) embed --decode "How do I reverse a list in Python?" "What is a Python generator?" "Best pizza in Naples"
	$(GS) app $(APP_ARGS)

# Debian's chromium for the browser test (Playwright drives it; never `playwright install`). Quick when present.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium)

test: install corpus browser
	$(GS) models fetch test teacher baseline default
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

bench: models
	$(PY) benchmarks/encode_overhead.py

clean-venv:
	rm -rf $(VENV)
