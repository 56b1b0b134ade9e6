"""The JSON API (api/), read from the environment, into which base.py has already loaded `.env`."""

import environ
from django.core.exceptions import ImproperlyConfigured

from api.rates import rate_parse  # plain Python: API_TOKEN_RATE is checked at start

env = environ.Env()

# Requests per token: a count per s, min, hour or day ("120/min"); more get 429.
API_TOKEN_RATE = env.str("API_TOKEN_RATE", default="120/min")
# GET /api/tasks/{id}?wait=N: how often a waiting request looks at its task, in seconds.
API_WAIT_POLL_SECONDS = env.float("API_WAIT_POLL_SECONDS", default=0.1)
try:
    rate_parse(text=API_TOKEN_RATE)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
if not 0.01 <= API_WAIT_POLL_SECONDS <= 5:
    raise ImproperlyConfigured(
        f"API_WAIT_POLL_SECONDS must be between 0.01 and 5, not {API_WAIT_POLL_SECONDS}."
    )
# The cache counts each token's requests. In memory (the default) each web process counts on its
# own, so a token gets the rate once per process: with several processes point CACHE_URL at
# Redis (redis://127.0.0.1:6379/1) so they count together.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# Tasks from GitHub comments: the webhook's secret (set on the GitHub App or repository webhook;
# empty turns the endpoint off) and the name people mention, as in "@claude-runner fix this".
GITHUB_WEBHOOK_SECRET = env.str("GITHUB_WEBHOOK_SECRET", default="")
GITHUB_MENTION_NAME = env.str("GITHUB_MENTION_NAME", default="claude-runner")
