import os

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.fakes.token_server", "tests.fakes.docker_env", "tests.fakes.hosting_world"]

# Property tests (tests/fuzz) stay bounded: "ci" is the default; HYPOTHESIS_PROFILE=dev is
# quicker, =deep searches longer. No deadline: a loaded CI machine must not turn into failures.
# Examples the database remembers live in .hypothesis/ (git-ignored); a failure found becomes
# an explicit @example in the test.
for name, examples in (("ci", 200), ("dev", 50), ("deep", 5000)):
    settings.register_profile(
        name,
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked slow share one xdist group: with --dist loadgroup they run one after another
    on one worker, beside the rest of the suite."""
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("serial"))
