"""Settings of environments (environments/, tasks/run/setup.py; README "Environments"), read
like the rest of config.settings.base, which imports this module at its end."""

from pathlib import Path

import environ

env = environ.Env()  # base.py has read `.env` into the process environment already

# Images a user may pick besides AGENT_IMAGE (always allowed; environments.validation).
AGENT_IMAGES_ALLOWED = env.list("AGENT_IMAGES_ALLOWED", default=[])
# The hosts the "package registries" network level reaches.
_registries = "pypi.org files.pythonhosted.org registry.npmjs.org proxy.golang.org sum.golang.org"
AGENT_PACKAGE_REGISTRIES = env.list("AGENT_PACKAGE_REGISTRIES", default=_registries.split())
AGENT_SETUP_TIMEOUT_SECONDS = env.int("AGENT_SETUP_TIMEOUT_SECONDS", default=15 * 60)
AGENT_SETUP_LOG_MAX_BYTES = env.int("AGENT_SETUP_LOG_MAX_BYTES", default=256 * 1024)
AGENT_ENV_SCRIPT_MAX_BYTES = env.int("AGENT_ENV_SCRIPT_MAX_BYTES", default=64 * 1024)
# Snapshots of a successful setup: kept this long after their last use, within this size.
AGENT_ENV_CACHE_HOURS = env.float("AGENT_ENV_CACHE_HOURS", default=12.0)
AGENT_ENV_CACHE_MAX_GB = env.float("AGENT_ENV_CACHE_MAX_GB", default=20.0)
AGENT_ENV_CACHE_DIR = env.str("AGENT_ENV_CACHE_DIR", default="") or str(
    Path(__file__).resolve().parents[2] / "var" / "environment-cache"
)
