PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
HOME_DIR ?= ./var

.PHONY: run test lint bench setup clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)
	@bash scripts/host-setup

run: setup
	$(BIN)/shipway serve --home $(HOME_DIR) --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check hooks builder release shipway tests bench
	$(BIN)/mypy

test: setup lint
	$(BIN)/python -m pytest -ra

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var
