# mnist-edge: one command per stage. The first target you run creates .venv from
# requirements.txt (and reinstalls when that file or the runtime's pyproject changes).
# Offline: MNIST_DATA=path/to/mnist.npz make train export

PYTHON  ?= python3.11
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# the digit classifier to train (python -m train --help lists them): the reference CNN in
# artifacts/, any other registered model in artifacts-MODEL/, e.g. make train export MODEL=edge
MODEL ?= reference
ifeq ($(MODEL),reference)
ARTIFACTS ?= artifacts
else
ARTIFACTS ?= artifacts-$(MODEL)
endif
# extra flags for the stages, e.g. make train TRAIN_ARGS="--epochs 2 --limit 3000"
TRAIN_ARGS  ?=
# ...and for the line reader's training, e.g. READER_ARGS="--lines 3000 --epochs 2"
READER_ARGS ?=
# ...and for the "no digit" gate's, e.g. GATE_ARGS="--nondigits 4000 --epochs 2"
GATE_ARGS ?=
EXPORT_ARGS ?=
# The device runtime is also tested in its own venvs, installed (not editable) from ./runtime:
# .venv-runtime with ai-edge-litert + onnxruntime + Pillow and no TensorFlow, and .venv-tflite
# with tflite-runtime 2.14 on numpy<2 (the 32-bit Raspberry Pi OS stack). They are rebuilt when
# the runtime's sources, its pyproject or the test pins change.
RT_SRC    := runtime/pyproject.toml $(wildcard runtime/src/mnist_edge/*.py runtime/src/mnist_edge/page/*)
RT_VENV   := .venv-runtime
RT_STAMP  := $(RT_VENV)/.installed
TFL_VENV  := .venv-tflite
TFL_STAMP := $(TFL_VENV)/.installed
PIP_Q     := -m pip install --disable-pip-version-check -q

.DEFAULT_GOAL := help
.PHONY: help venv train export test lint format clean runtime-venvs test-runtime parity reader-report pi-check fuzz reliability bench pareto

help:  ## list the targets
	@echo "mnist-edge targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 22

$(STAMP): requirements.txt runtime/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e ./runtime
	@touch $@

venv: $(STAMP)  ## create or update .venv from requirements.txt

train: $(STAMP)  ## train the classifier (MODEL=reference; MODEL=edge), the line reader and the "no digit" gate -> artifacts/*.keras, plots, metrics
	$(PY) -m train --model $(MODEL) --out $(ARTIFACTS) $(TRAIN_ARGS)
	$(PY) -m train --model line_reader --out $(ARTIFACTS) $(READER_ARGS)
	$(PY) -m train --model gate --out $(ARTIFACTS) $(GATE_ARGS)

# export retrains only when a model is missing or older than the code that builds it
$(ARTIFACTS)/model.keras: train/train.py train/model.py train/augment.py train/checkpoint.py common/data.py common/work.py | $(STAMP)
	$(PY) -m train --model $(MODEL) --out $(ARTIFACTS) $(TRAIN_ARGS)

$(ARTIFACTS)/line_reader.keras: train/line_train.py train/line_model.py train/checkpoint.py common/strips.py common/photos.py runtime/src/mnist_edge/lines.py | $(STAMP)
	$(PY) -m train --model line_reader --out $(ARTIFACTS) $(READER_ARGS)

$(ARTIFACTS)/gate.keras: train/gate_train.py train/gate_model.py train/gate_data.py common/nondigits.py | $(STAMP)
	$(PY) -m train --model gate --out $(ARTIFACTS) $(GATE_ARGS)

export: $(STAMP) $(ARTIFACTS)/model.keras $(ARTIFACTS)/line_reader.keras $(ARTIFACTS)/gate.keras  ## export + verify int8/float TFLite and ONNX -> artifacts/manifest.json
	$(PY) -m export --artifacts $(ARTIFACTS) $(EXPORT_ARGS)

# parity reads the export as it is (run it after `make train export`); .venv-tflite runs tflite-runtime
parity: $(STAMP) $(TFL_STAMP)  ## every exported file on every backend vs Keras -> reports/parity.md/.json/.png
	$(PY) -m checks.parity --artifacts $(ARTIFACTS) --out reports --tflite-python $(TFL_VENV)/bin/python

# reader-report reads the export as it is; sets from MNIST's test digits (--split train to tune)
reader-report: $(STAMP)  ## the number reader on photo sets made from MNIST test digits -> reports/reader.*
	$(PY) -m checks.reader --artifacts $(ARTIFACTS) --out reports

# the suites run in TEST_WORKERS processes (pytest-xdist), each test file whole in one of them
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile
test: $(STAMP) $(RT_STAMP) $(TFL_STAMP)  ## lint, then run the test suite (self-sufficient; set MNIST_DATA to run offline)
	@$(MAKE) --no-print-directory lint
	$(PY) -m pytest -q $(XDIST) tests
	@$(MAKE) --no-print-directory test-runtime

# settings: ruff.toml and mypy.ini; ruff and mypy are pinned in requirements.txt
lint: $(STAMP)  ## ruff over the whole tree, mypy (strict for the runtime) over runtime and common/
	$(PY) -m ruff check --no-cache .
	$(PY) -m mypy runtime/src/mnist_edge common

format: $(STAMP)  ## apply ruff's safe fixes (import order, modern syntax); then check with make lint
	$(PY) -m ruff check --no-cache --fix .

$(RT_STAMP): $(RT_SRC) requirements.txt runtime/tests/requirements-test.txt
	@test -x $(RT_VENV)/bin/python || $(PYTHON) -m venv $(RT_VENV)
	$(RT_VENV)/bin/python $(PIP_Q) -c requirements.txt './runtime[litert,onnx,images,video,serve]' -r runtime/tests/requirements-test.txt
	$(RT_VENV)/bin/python $(PIP_Q) --no-deps --force-reinstall ./runtime
	@touch $@

$(TFL_STAMP): $(RT_SRC) runtime/tests/requirements-tflite.txt runtime/tests/requirements-test.txt
	@test -x $(TFL_VENV)/bin/python || $(PYTHON) -m venv $(TFL_VENV)
	$(TFL_VENV)/bin/python $(PIP_Q) -r runtime/tests/requirements-tflite.txt -r runtime/tests/requirements-test.txt
	$(TFL_VENV)/bin/python $(PIP_Q) --no-deps --force-reinstall ./runtime
	@touch $@

runtime-venvs: $(RT_STAMP) $(TFL_STAMP)  ## build .venv-runtime (litert, onnxruntime) and .venv-tflite (tflite-runtime)

# runtime/tests get the exported test models from checks/testmodels.py and run whole in the two
# device venvs; in .venv (the same pins plus TensorFlow, whose interpreter is one more backend)
# the tests that pick, load or compare backends run again; the photo, reader and video tests
# do not depend on the backend and are not repeated there
RT_BACKEND_TESTS := $(addprefix runtime/tests/test_edge_,predict.py selftest.py errors.py \
  misuse.py cli_hardening.py documented.py import.py untrusted_files.py)
test-runtime: $(STAMP) $(RT_STAMP) $(TFL_STAMP)  ## run runtime/tests in .venv-runtime and .venv-tflite, the backend tests in .venv
	@art="$$($(PY) -m checks.testmodels)" && for py in $(RT_VENV)/bin/python $(TFL_VENV)/bin/python; do \
	  echo "== runtime/tests with $$py"; \
	  MNIST_EDGE_TEST_ARTIFACTS="$$art" $$py -m pytest -q $(XDIST) runtime/tests || exit 1; \
	done && echo "== runtime/tests that pick or compare backends, with $(PY)" && \
	  MNIST_EDGE_TEST_ARTIFACTS="$$art" $(PY) -m pytest -q $(XDIST) $(RT_BACKEND_TESTS)

# bench times the export as it is (after `make train export`); the runtime venvs run the device-side
# rows (tflite-runtime) and the one-image cold start; a few minutes. BENCH_ARGS=--quick for a short run
BENCH_ARGS ?=
bench: $(STAMP) $(RT_STAMP) $(TFL_STAMP)  ## latency, throughput, load time, memory of every file x backend vs baselines -> reports/bench.*
	$(PY) -m checks.bench --artifacts $(ARTIFACTS) --out reports --tflite-python $(TFL_VENV)/bin/python \
	  --runtime-python $(RT_VENV)/bin/python $(BENCH_ARGS)

# pareto reads every exported set as it is (artifacts/ and each artifacts-MODEL/ from make train
# export MODEL=NAME); PARETO_ARGS="--floor 0.993" names the fastest file reaching 99.3%
PARETO_ARGS ?=
pareto: $(STAMP) $(RT_STAMP)  ## every model x file: accuracy, photos, size, MCU arena, latency, throughput -> reports/pareto.*
	$(PY) -m checks.pareto --out reports --python $(RT_VENV)/bin/python $(PARETO_ARGS)

# Emulated Raspberry Pi: Debian bookworm arm64/armhf roots under qemu-user, cached in .cache/pi/
# (the first run needs root: apt-get installs qemu-user-static and debootstrap)
pi-check: $(STAMP) $(RT_STAMP) $(TFL_STAMP)  ## the runtime on emulated Pi 4/5, 32-bit Pi OS (vs the host) and x86 CPU models (vs Keras) -> reports/pi.md
	$(PY) -m checks.pi --artifacts $(ARTIFACTS) --host-tflite-python $(TFL_VENV)/bin/python

# fuzz cases run in a child worker, so an interpreter crash is counted instead of ending the run
FUZZ_CASES ?= 25000
fuzz: $(STAMP) $(TFL_STAMP)  ## fuzz the runtime (arrays, image and video files, CLI, model files, manifests); counts per target
	$(PY) -m checks.reliability fuzz --cases $(FUZZ_CASES)

reliability: $(STAMP) $(TFL_STAMP)  ## fuzz + kill make train/export + reproducibility + memory + threads -> reports/reliability.md
	$(PY) -m checks.reliability report --cases $(FUZZ_CASES) --out reports

clean:  ## remove artifacts/ and reports/ (keeps .venv)
	rm -rf $(ARTIFACTS) reports
