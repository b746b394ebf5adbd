# The two commands: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
PORT ?= 5000
export FLASK_APP := wsgi
# Links in mails and feeds point at the address `make run` serves.
export PUBLIC_BASE_URL ?= http://127.0.0.1:$(PORT)

# fuzz: Schemathesis over every API operation, longer than the bounded run inside `make test`
# (both databases when TEST_POSTGRES_URL is set; FUZZ_EXAMPLES examples per operation).
.PHONY: run test fuzz install install-test translations extract-messages lint db-upgrade demo clean screenshots bench bench-reports bench-feeds bench-pages bench-scale

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed translations

install-test: $(VENV)/.installed-test translations

# Compiled catalogues are build output (not committed); Babel comes with Flask-Babel.
translations: $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -d booking/translations 2>&1 | tail -n 1

extract-messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output -o booking/translations/messages.pot .
	$(BIN)/pybabel update -i booking/translations/messages.pot -d booking/translations --no-fuzzy-matching --ignore-obsolete

db-upgrade: install
	@mkdir -p instance
	$(FLASK) db upgrade

demo: db-upgrade
	$(FLASK) demo load

# The web server and, beside it, the scheduler process (reminders, no-shows, mail, …).
run: demo
	@echo "Serving on http://127.0.0.1:$(PORT); the scheduler runs beside it"
	$(FLASK) scheduler & SCHEDULER=$$!; trap 'kill $$SCHEDULER 2>/dev/null' EXIT INT TERM; \
	  $(FLASK) run --host 127.0.0.1 --port $(PORT)

# axe-core, from the npm registry, checks pages for accessibility in the browser tests.
AXE := node_modules/axe-core/axe.min.js
$(AXE): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	  else echo "npm not found: the accessibility checks will be skipped (or fail under REQUIRE_BROWSER=1)"; fi

test: install-test $(AXE)
	$(BIN)/ruff check booking tests config.py wsgi.py
	$(BIN)/python -m pytest $(PYTEST_ARGS)

FUZZ_EXAMPLES ?= 200
fuzz: install-test
	API_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_api_contract.py -k keeps_its_contract -q $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check booking tests config.py wsgi.py

clean:
	rm -rf $(VENV) instance .pytest_cache

# Regenerates docs/screenshots/ from the browser journeys (needs Debian's Chromium).
screenshots: install-test
	SCREENSHOTS=1 REQUIRE_BROWSER=1 $(BIN)/python -m pytest -m browser -q

# Benchmarks (figures go into docs/benchmarks.md by hand, with the machine and date).
BENCH_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/booking_bench
# The benchmarks' PostgreSQL database, made when missing (they empty it themselves).
BENCH_DB = @psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='booking_bench'" 2>/dev/null | grep -q 1 \
	  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE booking_bench" >/dev/null 2>&1 || true
bench: install
	$(BENCH_DB)
	BENCH_POSTGRES_URL=$(BENCH_POSTGRES_URL) $(BIN)/python bench/run.py

# Only the bulk export benchmark (a month of 4,250 bookings at 50 resources).
bench-export: install
	$(BENCH_DB)
	BENCH_POSTGRES_URL=$(BENCH_POSTGRES_URL) $(BIN)/python bench/export.py

# Only the feed benchmark (a user's 10,000 events and a carrier's 60,000).
bench-feeds: install
	$(BENCH_DB)
	BENCH_POSTGRES_URL=$(BENCH_POSTGRES_URL) $(BIN)/python bench/feeds.py

# Only the page benchmark (the week view and the 4-week availability API).
bench-pages: install
	$(BENCH_DB)
	BENCH_POSTGRES_URL=$(BENCH_POSTGRES_URL) $(BIN)/python bench/pages.py

# The carrier-scale benchmark on PostgreSQL (100 carriers, 5,000 resources, 1,000,000 bookings);
# not part of `make bench`: filling alone takes minutes.
bench-scale: install
	$(BENCH_DB)
	BENCH_POSTGRES_URL=$(BENCH_POSTGRES_URL) $(BIN)/python bench/scale.py

# Only the report benchmark (a year of use at a carrier with 100 resources).
bench-reports: install
	$(BENCH_DB)
	BENCH_POSTGRES_URL=$(BENCH_POSTGRES_URL) $(BIN)/python bench/reports.py
