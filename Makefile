.PHONY: run dev test lint
# Set up (venv, .env, database, admin) and run the web server (gunicorn) and the task worker.
run:
	scripts/run.sh
# The same setup, then runserver with DJANGO_DEBUG=true (auto-reload) and the task worker.
dev:
	scripts/dev.sh
# Run the whole test suite (DATABASE_URL=postgres://... for PostgreSQL).
test:
	scripts/test.sh $(ARGS)
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
