.PHONY: run test lint
# Set up (venv, .env, database, admin) and run the web server and the task worker.
run:
	scripts/run.sh
# Run the whole test suite (DATABASE_URL=postgres://... for PostgreSQL).
test:
	scripts/test.sh $(ARGS)
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
