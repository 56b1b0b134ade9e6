"""The whole story on the universal image, with real package clients and the REAL Claude Code
CLI: the setup phase installs a Python package (pip, from a loopback PyPI simple index) and an
npm package (npm, from a loopback npm registry) through its gateway's proxy; then a fake model
asks the CLI's Bash tool to run the repository's tests (python -m unittest, npm test): the tool
results show the failing test, and after the model's edit the passing one. The next task
starts from the cache: the packages are there without a request to the registries, and what
the first agent wrote outside the checkout is not.

Everything stays on 127.0.0.1: the registries are allowed with the test-only loopback
allowance; the model API is the fake, reached through the task's gateway."""

import pytest

from environments.models import CacheUse, TaskEnvironment
from tasks.models import TaskStatus
from tests.agent_image.helpers import make_bare_repo
from tests.environments.conftest import make_environment, run_task
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.fakes.package_registry import PlainPackageRegistry, npm_tarball, python_wheel
from tests.tasks.conftest import set_api_key

pytestmark = [
    pytest.mark.docker,
    pytest.mark.universal,
    pytest.mark.realcli,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]

API_KEY = "sk-ant-api03-universal-environment-key-0001"
REPO = {
    ".gitignore": ".venv/\nnode_modules/\n",
    "app.py": "from greeting import greet\n\n\ndef shout():\n    return greet().upper()\n",
    "test_app.py": (
        "import unittest\n\nimport app\n\n\nclass ShoutTest(unittest.TestCase):\n"
        "    def test_shout(self):\n        self.assertEqual(app.shout(), 'HI FROM PYPI!')\n"
    ),
    "package.json": '{"name": "app", "version": "1.0.0", "private": true,'
    ' "scripts": {"test": "node test.js"}, "dependencies": {"shout": "^1.0.0"}}\n',
    "test.js": "const shout = require('shout');\n"
    "if (shout('ok') !== 'OK!') { process.exit(1); }\nconsole.log('npm test: passed');\n",
}
SETUP = """set -e
# The registries are a loopback address here: through the proxy (the gateway), not direct.
unset NO_PROXY no_proxy
python3 -m venv .venv
.venv/bin/pip install --index-url "$INDEX_URL" --trusted-host 127.0.0.1 greeting
npm install --registry "$NPM_REGISTRY"
"""
RUN_TESTS = ".venv/bin/python -m unittest -v 2>&1; npm test 2>&1; true"
FIX = "sed -i \"s/greet().upper()/greet().upper() + '!'/\" app.py"


def _bash(command: str) -> tuple[str, dict[str, str]]:
    return ("Bash", {"command": command, "description": "run"})


@pytest.fixture
def world(env_settings, universal_image, user, tmp_path):
    wheel = python_wheel(
        "greeting", "1.0", {"greeting/__init__.py": "def greet():\n    return 'hi from pypi'\n"}
    )
    tarball = npm_tarball(
        "shout", "1.2.0", {"index.js": "module.exports = (s) => s.toUpperCase() + '!';\n"}
    )
    with PlainPackageRegistry([wheel, tarball]) as registry, FakeAnthropicAPI() as api:
        env_settings.AGENT_IMAGE = universal_image
        env_settings.ANTHROPIC_API_URL = api.url
        env_settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = [f"127.0.0.1:{registry.port}"]
        env_settings.AGENT_EXTRA_ENV = {"DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1"}
        env_settings.AGENT_TIMEOUT_SECONDS = 400
        env_settings.AGENT_SETUP_TIMEOUT_SECONDS = 400
        set_api_key(user, API_KEY)
        repo = f"file://{make_bare_repo(tmp_path, REPO)}"
        make_environment(
            user,
            pattern=repo,
            image=universal_image,
            setup_script=SETUP,
            variables=f"INDEX_URL={registry.pip_index_url}\nNPM_REGISTRY={registry.npm_url}",
        )
        yield registry, api, repo


def test_setup_installs_and_the_agent_runs_the_tests_red_then_green(world, user):
    registry, api, repo = world
    api.tool_script = [
        _bash(RUN_TESTS),
        _bash(f"{FIX} && echo 'written by the agent' > ~/outside.txt"),
        _bash(RUN_TESTS),
    ]
    first = run_task(user, repo, "Make the tests pass.")
    assert first.status == TaskStatus.SUCCEEDED, (first.error_message, first.log[-3000:])
    run = TaskEnvironment.objects.get(pk=first.pk)
    assert run.cache == CacheUse.MISS
    assert "Successfully installed greeting-1.0" in run.setup_log, run.setup_log[-3000:]
    assert "added 1 package" in run.setup_log
    fetched = {(r.path, r.status) for r in registry.requests}
    assert ("/simple/greeting/", 200) in fetched
    assert ("/shout", 200) in fetched

    red, _, green = api.tool_results()
    assert "AssertionError: 'HI FROM PYPI' != 'HI FROM PYPI!'" in red
    assert "FAILED (failures=1)" in red
    assert "npm test: passed" in red
    assert "OK" in green.split("Ran 1 test")[-1]
    assert "FAILED" not in green
    assert "+    return greet().upper() + '!'" in first.diff

    # The next task: a cache hit (nothing to run: the same commit, no maintenance script).
    requests_before = len(registry.requests)
    api.clear()
    look = "ls ~/outside.txt 2>&1; ls ~/work/.venv/lib/*/site-packages | grep greeting"
    api.tool_script = [_bash(f"{RUN_TESTS}; {look}")]
    second = run_task(user, repo, "Run the tests.")
    assert second.status == TaskStatus.SUCCEEDED, (second.error_message, second.log[-3000:])
    assert TaskEnvironment.objects.get(pk=second.pk).cache == CacheUse.HIT
    [result] = api.tool_results()
    # The packages are there (the test fails on the commit's code, not on an import), the
    # first agent's fix and its file outside the checkout are not.
    assert "AssertionError: 'HI FROM PYPI' != 'HI FROM PYPI!'" in result
    assert "npm test: passed" in result
    assert "No such file or directory" in result
    assert "greeting" in result
    assert len(registry.requests) == requests_before
