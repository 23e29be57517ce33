# Two entry points (see README): `make quickstart` and `make test`. Both create the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/ppml run experiments/quickstart.toml

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/ppml bench data
	$(BIN)/ppml bench fl
	$(BIN)/ppml bench dp
	$(BIN)/ppml bench secagg
	$(BIN)/ppml bench runs
	$(BIN)/ppml bench utility
	$(BIN)/ppml bench scale
	$(BIN)/ppml bench deployment
	$(BIN)/ppml bench peers
	$(BIN)/ppml bench time_use
	$(BIN)/ppml bench audit
	$(BIN)/ppml bench coverage
	$(BIN)/ppml bench small_data

clean:
	rm -rf $(VENV) runs
