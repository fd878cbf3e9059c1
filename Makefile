# Ensign's tasks. CI runs only these targets (through .ci/run).
UV ?= scripts/uv

.PHONY: install run test test-sqlite test-pg check fmt bench bench-engine bench-server bench-integrations bench-cohorts bench-scale docs screenshots

install:
	@scripts/bootstrap

run: install
	$(UV) run ensign serve --demo

test: install
	@scripts/test

test-sqlite: install
	$(UV) run pytest -n $${ENSIGN_TEST_WORKERS:-auto} --dist loadgroup

# The tests create ensign_test (one per xdist worker: ensign_test_gw0, ...) and empty it; they
# refuse a database holding tables that they did not create.
test-pg: install
	ENSIGN_TEST_DATABASE_URL=$${ENSIGN_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/ensign_test} $(UV) run pytest -n $${ENSIGN_TEST_WORKERS:-auto} --dist loadgroup -m db

check: install
	$(UV) run ruff check src tests bench
	$(UV) run ruff format --check src tests bench
	$(UV) run mypy
	$(UV) run lint-imports

fmt: install
	$(UV) run ruff format src tests bench
	$(UV) run ruff check --fix src tests bench

bench: bench-engine bench-server bench-integrations bench-cohorts

bench-engine: install
	$(UV) run python bench/engine.py

bench-server: install
	$(UV) run python bench/server.py

bench-integrations: install
	$(UV) run python bench/integrations.py

bench-cohorts: install
	$(UV) run python bench/cohorts.py

# Needs a scratch PostgreSQL database, which it empties: ENSIGN_BENCH_DATABASE_URL=postgresql://...
bench-scale: install
	$(UV) run python bench/scale.py

docs: install
	$(UV) run python -m ensign.cli.docs > docs/settings.md
	$(UV) run python -m ensign.cli.docs destinations > docs/destinations.md
screenshots:
	ENSIGN_UPDATE_SCREENSHOTS=1 $(UV) run pytest tests/dashboard/test_browser.py tests/dashboard/test_browser_experiments.py
