# mnist-edge: one command per stage. The first target you run creates .venv from
# requirements.txt (and reinstalls when that file or the runtime's pyproject changes).
# Offline: MNIST_DATA=path/to/mnist.npz make train export

PYTHON  ?= python3.11
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
ARTIFACTS ?= artifacts

.DEFAULT_GOAL := help
.PHONY: help venv train export test clean

help:  ## list the targets
	@echo "mnist-edge targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 22

$(STAMP): requirements.txt runtime/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e ./runtime
	@touch $@

venv: $(STAMP)  ## create or update .venv from requirements.txt

train: $(STAMP)  ## train the reference CNN -> artifacts/model.keras, plots, metrics
	$(PY) -m train --out $(ARTIFACTS)

# export retrains only when the model is missing or older than the code that builds it
$(ARTIFACTS)/model.keras: $(wildcard train/*.py) | $(STAMP)
	$(PY) -m train --out $(ARTIFACTS)

test: $(STAMP)  ## run the test suite (self-sufficient; set MNIST_DATA to run offline)
	$(PY) -m pytest -q tests

clean:  ## remove artifacts/ and reports/ (keeps .venv)
	rm -rf $(ARTIFACTS) reports
