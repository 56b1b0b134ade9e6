import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.fakes.token_server", "tests.fakes.docker_env"]

# Property tests (tests/fuzz) stay bounded: "ci" is the default; HYPOTHESIS_PROFILE=dev is
# quicker, =deep searches longer. No deadline: a loaded CI machine must not turn into failures.
# Examples the database remembers live in .hypothesis/ (git-ignored); a failure found becomes
# an explicit @example in the test.
_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
settings.register_profile("ci", max_examples=200, **_COMMON)
settings.register_profile("dev", max_examples=50, **_COMMON)
settings.register_profile("deep", max_examples=5000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
