.PHONY: run dev test test-fast lint typecheck
# Set up (venv, .env, database, admin) and run the web server (gunicorn) and the task worker.
run:
	scripts/run.sh
# The same setup, then runserver with DJANGO_DEBUG=true (auto-reload) and the task worker.
dev:
	scripts/dev.sh
# Run the whole test suite (DATABASE_URL=postgres://... for PostgreSQL).
test:
	scripts/test.sh $(ARGS)
# The inner loop: everything but the Docker, real-CLI, browser and deploy tests (fresh app
# processes, migrations walked), with fewer property examples (HYPOTHESIS_PROFILE=dev); CI runs
# the whole suite with the full profile.
test-fast:
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-dev} scripts/test.sh -m "not docker and not realcli and not browser and not deploy" $(ARGS)
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/djlint templates --lint
# mypy with django-stubs; settings in pyproject.toml.
typecheck:
	scripts/venv.sh requirements-dev.txt
	.venv/bin/mypy .
