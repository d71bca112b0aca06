# sagetext: install, demo, test, bench. `make demo` then `make test` on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test test-fast lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# The tests also check the fused word2vec kernel against its reference, in Triton's CPU
# interpreter: they need the `gpu` extra (triton), which the demo does not.
$(VENV)/.installed-gpu: $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,gpu]'
	touch $@

demo: install  ## train BlazingText on the bundled sample, serve it, ask it one question
	$(PY) samples/demo.py

test: install $(VENV)/.installed-gpu lint  ## lint, type check, then the whole test suite, as CI runs it
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: install  ## ruff on src/, tests/ and bench/, mypy on src/ (configured in pyproject.toml)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

test-fast: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: install  ## CPU benchmarks against their anchors (needs ../shared/data); results in bench/results/
	$(PY) bench/imdb_supervised.py
	$(PY) bench/text8_word2vec.py cbow skipgram
	$(PY) bench/ntm_topics.py
	$(PY) bench/server_load.py
	$(PY) bench/peak_rss.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache bench/results

# Container images (docker/): sagetext-{blazingtext,seq2seq,ntm}, see docker/build.sh.
CONTAINER ?= podman

.PHONY: images image-test

images:  ## build the three images for SageMaker (CUDA base, torch from PyPI)
	CONTAINER=$(CONTAINER) docker/build.sh

image-test: install  ## build the images offline (debootstrap base, CPU torch) and train/serve in them
	CONTAINER=$(CONTAINER) docker/build.sh --local
	CONTAINER=$(CONTAINER) $(PY) -m pytest -q -m container tests/container $(PYTEST_ARGS)
