# Two commands: `make run` (set up everything, serve http://127.0.0.1:8000) and `make test`.
# Every step is idempotent: stamps make a second run quick.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ANTT := $(VENV)/bin/antt
STAMP := .antt/stamps
PYTHON ?= /usr/bin/python3

.PHONY: run test setup system venv web db demo lint bench clean-db

run: setup db demo
	$(ANTT) serve

test: setup
	$(VENV)/bin/pytest -q

setup: system venv web

system: $(STAMP)/system
$(STAMP)/system: scripts/setup-system.sh
	@mkdir -p $(STAMP)
	bash scripts/setup-system.sh
	@touch $@

venv: $(STAMP)/venv
$(STAMP)/venv: pyproject.toml constraints.txt $(STAMP)/system
	@mkdir -p $(STAMP)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

web: $(STAMP)/web
$(STAMP)/web: $(STAMP)/venv $(wildcard web/package.json) $(wildcard web/package-lock.json) $(wildcard scripts/setup-web.sh)
	@mkdir -p $(STAMP)
	if [ -f scripts/setup-web.sh ]; then bash scripts/setup-web.sh; fi
	@touch $@

db: setup
	$(ANTT) db up
	$(ANTT) migrate

demo: db
	$(ANTT) demo --if-empty

bench: setup
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[dev,bench]'
	$(ANTT) bench run all

lint: setup
	$(VENV)/bin/ruff check .

clean-db:
	-$(ANTT) db down
	rm -rf .antt/pgdata .antt/port
