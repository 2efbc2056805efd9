# sciflow: `make demo` runs the main job, `make test` the tests. Each sets itself up on a fresh
# machine: a local virtual environment, torch pinned to a tested version installed first (so pip
# never resolves a multi-GB CUDA build on its own), then sciflow with its extras.
#   make test TORCH_VERSION=2.5.1             another torch
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu   where to get it (CPU wheels)
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
EXTRAS ?= dev,chem,cells,geo,distributed
comma := ,
BIN := $(VENV)/bin
STAMP := $(VENV)/.sciflow-$(TORCH_VERSION)-$(subst $(comma),-,$(EXTRAS))
PYTEST_ARGS ?=

.PHONY: demo test test-all bench lint docs clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	echo "torch==$(TORCH_VERSION)" > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install -q torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -c $(VENV)/torch-constraint.txt -e ".[$(EXTRAS)]"
	touch $@

demo: $(STAMP)
	$(BIN)/sciflow demo

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install -q -c $(VENV)/torch-constraint.txt -e ".[$(EXTRAS),bench]"
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

docs: $(STAMP)
	$(BIN)/python -m pip install -q -c $(VENV)/torch-constraint.txt -e ".[$(EXTRAS),docs]"
	$(BIN)/python docs/gather.py
	$(BIN)/mkdocs build --strict

lint: $(STAMP)
	$(BIN)/ruff check sciflow domains datasets tests examples benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info sciflow-out
