# Two commands on a fresh machine: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
# make run is local development: debug on, console email, SQLite unless DATABASE_URL is set.
DEV    := DJANGO_DEBUG=1 SITE_URL=http://$(HOST):$(PORT)

.PHONY: help venv run serve test test-fast lint format typecheck migrate seed bench bench-notify bench-portal bench-promises bench-visits bench-staff bench-webhooks clean

help:
	@echo "make run        set up .venv, migrate, load demo data, start web server + worker"
	@echo "make test       run the whole test suite (SQLite unless DATABASE_URL is set)"
	@echo "make lint       ruff lint and format check"
	@echo "make format     ruff format and autofix"
	@echo "make typecheck  mypy with django-stubs"
	@echo "make bench      benchmarks (figures as ratios to a baseline measured in the same run)"
	@echo "make bench-notify  the notification benchmark alone (needs PostgreSQL + Redis)"
	@echo "make bench-portal  portal job page and live poll under gunicorn (needs PostgreSQL)"
	@echo "make bench-promises  the promise scan over 1,000,000 commitments (needs PostgreSQL)"
	@echo "make bench-visits  the visit scan on a day of 10,000 visits (needs PostgreSQL)"
	@echo "make bench-staff   staff pages on 10,000 jobs and 200,000 events (needs PostgreSQL)"
	@echo "make bench-webhooks  10,000 stage changes to signed webhooks (needs PostgreSQL + Redis)"

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

migrate: venv
	$(DEV) $(BIN)/python manage.py migrate --noinput

seed: migrate
	$(DEV) $(BIN)/python manage.py seed_demo

run: seed
	@$(DEV) $(BIN)/python manage.py setup_schedules
	@echo ""
	@echo "  Staff CRM   http://$(HOST):$(PORT)/            (alice = manager, bob = owner; password: demo)"
	@echo "  Admin       http://$(HOST):$(PORT)/admin/"
	@echo "  Portal      (Marie Lefèvre, in French; any contact: $(BIN)/python manage.py portal_link <email>)"
	@$(DEV) $(BIN)/python manage.py portal_link marie.lefevre@example.org -v 0 | sed 's/^/              /'
	@echo "  Health      http://$(HOST):$(PORT)/healthz"
	@echo "  Email is printed below (console backend). Ctrl-C stops the web server and the worker."
	@echo ""
	@$(DEV) $(BIN)/python manage.py qcluster & QPID=$$!; \
	trap 'kill $$QPID 2>/dev/null; wait $$QPID 2>/dev/null' EXIT INT TERM; \
	$(DEV) $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: venv
	$(BIN)/mypy .

# Benchmarks are not tests: PostgreSQL and Redis are needed, see docs/performance.md.
# bench-notify drops and recreates DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench)
# and flushes REDIS_URL (default redis://127.0.0.1:6379/13). BENCH_MESSAGES=1000 for a quick try.
bench: bench-notify bench-portal bench-promises bench-visits bench-staff bench-webhooks

bench-notify: venv
	DJANGO_SETTINGS_MODULE=config.settings $(BIN)/python -m bench.notify

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .mypy_cache

# bench-portal serves the app with gunicorn on its own PostgreSQL database (portal_bench_portal).
bench-portal: venv
	$(BIN)/python -m bench.portal

# bench-promises drops and recreates DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench_promises),
# fills it with 1,000,000 commitments and leaves it for inspection. BENCH_COMMITMENTS=100000 for a quick try.
bench-promises: venv
	DJANGO_SETTINGS_MODULE=config.settings $(BIN)/python -m bench.promises

# bench-visits drops and recreates DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench_visits).
# BENCH_VISITS=2000 for a quick try.
bench-visits: venv
	DJANGO_SETTINGS_MODULE=config.settings $(BIN)/python -m bench.visits

# bench-staff drops and recreates DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench_staff);
# BENCH_REUSE=1 measures the database already loaded again (new migrations applied). BENCH_JOBS=1000 for a quick try.
bench-staff: venv
	$(BIN)/python -m bench.staff_scale

# bench-webhooks drops and recreates DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench_webhooks)
# and flushes REDIS_URL (default redis://127.0.0.1:6379/12). BENCH_WEBHOOKS=1000 for a quick try.
bench-webhooks: venv
	$(BIN)/python -m bench.webhooks
