# The two README commands: `make train` (install + train the default task + evaluate it) and
# `make test` (install + tests). Both install into the current Python (use a venv if you like).
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: install install-dev train test lint bench

# torch first, pinned: an open range on a fresh Linux machine pulls a multi-GB CUDA build.
install:
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e .

install-dev:
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[dev]"

# The default run, then its zero-shot evaluation report (RUN/evaluation/results.md).
ifndef RUN
RUN := runs/default_$(shell date +%Y%m%d-%H%M%S)
endif
train: install
	$(PYTHON) -m equigym.train --run-dir $(RUN)
	$(PYTHON) -m equigym.evaluate $(RUN)

test: install-dev
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check .

bench:
	$(PYTHON) benchmarks/env_throughput.py --out benchmarks/results/env_throughput.json
