import io
import logging
import logging.config
from typing import Any

import pytest
from django.conf import settings as django_settings

from common.logging import secrets_redact

TOKEN = "sk-ant-oat01-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdef"
REFRESH = "sk-ant-ort01-ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210"


@pytest.fixture
def captured():
    """The project's own LOGGING, with its console handler pointed at a buffer."""
    stream = io.StringIO()
    config: dict[str, Any] = {**django_settings.LOGGING}
    config["handlers"] = {
        name: {**handler, "stream": stream} for name, handler in config["handlers"].items()
    }
    logging.config.dictConfig(config)
    yield stream
    logging.config.dictConfig(django_settings.LOGGING)


@pytest.mark.parametrize(
    ("template", "args"),
    [
        ("refreshed token %s", (TOKEN,)),
        ("payload %s", ({"access_token": "opaque-access-value-123", "refresh_token": REFRESH},)),
        ("header Authorization: Bearer %s", ("opaque.jwt.like-value",)),
        ("env CLAUDE_REFRESH_TOKEN=%s set", ("opaque-refresh-value-456",)),
        ("cli file %s", ('{"claudeAiOauth": {"accessToken": "opaque-cli-access-789"}}',)),
    ],
)
def test_secrets_never_reach_the_log_output(captured, template, args):
    logging.getLogger("oauth_tokens.services").warning(template, *args)
    output = captured.getvalue()
    assert "[redacted]" in output
    for secret in (
        TOKEN,
        REFRESH,
        "opaque-access-value-123",
        "opaque.jwt.like-value",
        "opaque-refresh-value-456",
        "opaque-cli-access-789",
        "sk-ant-oat01",
    ):
        assert secret not in output


def test_exception_tracebacks_are_redacted_too(captured):
    try:
        raise RuntimeError(f"server rejected {TOKEN}")
    except RuntimeError:
        logging.getLogger("tasks").exception("refresh blew up")
    output = captured.getvalue()
    assert "refresh blew up" in output
    assert "RuntimeError" in output
    assert TOKEN not in output


def test_configured_secret_values_are_redacted_anywhere(settings):
    settings.ANTHROPIC_API_KEY = "plain-looking-server-key-0001"
    assert secrets_redact("key=plain-looking-server-key-0001!") == "key=[redacted]!"
    assert "plain-looking-server-key-0001" not in secrets_redact(
        "using plain-looking-server-key-0001 now"
    )


def test_ordinary_text_is_left_alone():
    text = "task 42 finished in 3.2 s with exit code 0 (tokens used: 1200)"
    assert secrets_redact(text) == text


def test_github_tokens_are_redacted():
    fine = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP"
    classic = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"
    text = secrets_redact(f"push with {fine} failed; old {classic}.")
    assert text == "push with [redacted] failed; old [redacted]."
    assert secrets_redact("branch claude-runner/3-fix-ghp_x") == "branch claude-runner/3-fix-ghp_x"
