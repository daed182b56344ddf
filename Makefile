# The two commands of the README. Both create .venv and install everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true
export RAY_USAGE_STATS_ENABLED := 0
# Offline machines (this project's CI) have the datasets beside the checkout; elsewhere they download.
ifneq ($(wildcard ../shared/data),)
export NTPT_DATA_DIR ?= $(abspath ../shared/data)
endif
# torch/torchvision pinned to the releases available offline here; users elsewhere get the same pair from PyPI.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test test-all lint install clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PINS)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed

lint: install
	$(BIN)/ruff check .

# Core suite + Ray tests, on two worker processes (the CI machine's two cores);
# `slow` and `gpu` tests are opt-in (make test-all).
test: install lint
	$(BIN)/python -m pytest -n 2 -m "not slow and not gpu" -p no:cacheprovider --timeout=900

test-all: install
	$(BIN)/python -m pytest -p no:cacheprovider

demo: install
	$(BIN)/ntpt-dist demo

clean:
	rm -rf $(VENV) build *.egg-info
