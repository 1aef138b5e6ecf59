# Two commands: `make run` (set up everything, serve http://127.0.0.1:8000) and `make test`.
# Every step is idempotent: stamps make a second run quick.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ANTT := $(VENV)/bin/antt
STAMP := .antt/stamps
PYTHON ?= /usr/bin/python3

.PHONY: run test setup system venv web db demo lint bench clean-db replica

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

# Demo data on the real Hải Phòng boundaries when ../shared is there (and ANTT_BOUNDARIES unset);
# otherwise `antt demo` builds its clearly labelled synthetic province.
HAIPHONG := ../shared/data/boundaries/post2025_communes_sapnhap/haiphong_communes_2025_fullres.geojson
DEMO_BOUNDARIES := $(if $(ANTT_BOUNDARIES),,$(if $(wildcard $(HAIPHONG)),--boundaries $(HAIPHONG)))

# A streaming read replica of the embedded cluster (prints READ_DATABASE_URL; README:
# "Several workers and a replica"). `antt db replica --status / --down / --remove`.
replica: db
	$(ANTT) db replica

demo: db
	$(ANTT) demo --if-empty $(DEMO_BOUNDARIES)

bench: setup
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[dev,bench]'
	$(ANTT) bench run all

lint: setup
	$(VENV)/bin/ruff check .

clean-db:
	-$(ANTT) db down
	rm -rf .antt/pgdata .antt/port
