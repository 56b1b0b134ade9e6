"""The one redaction: secrets_redact, and a logging filter that applies it to every record
before any handler writes it. Other redactions (the task log's, token_client's for server text)
are layered on secrets_redact rather than repeating it.

Importable before settings are configured (then only the patterns apply)."""

import logging
import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from django.conf import settings

from common.text import text_storable

REDACTED = "[redacted]"

# Anthropic keys and OAuth tokens: sk-ant-api03-..., sk-ant-oat01-..., sk-ant-ort01-...
_ANTHROPIC_TOKEN = re.compile(r"sk-ant-[A-Za-z0-9_\-]+")
# GitHub tokens: fine-grained github_pat_..., classic ghp_..., and the app/OAuth kinds.
_GITHUB_TOKEN = re.compile(r"\b(?:github_pat_|gh[pousr]_)[A-Za-z0-9_]{16,}")
# Every shape above, named for messages: secrets_redact hides them and secret_shape_find names
# them, so "looks like a secret" means the same everywhere.
_SECRET_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an Anthropic key or token", _ANTHROPIC_TOKEN),
    ("a GitHub token", _GITHUB_TOKEN),
)
# Values of fields known to be secret, in JSON, keyword, header or query-string form.
_SECRET_NAMES = (
    r"access_?token|refresh_?token|accessToken|refreshToken|api_?key|x-api-key|"
    r"ANTHROPIC_API_KEY|ANTHROPIC_AUTH_TOKEN|CLAUDE_ACCESS_TOKEN|CLAUDE_REFRESH_TOKEN|"
    r"CLAUDE_CODE_OAUTH_TOKEN|password|secret|client_secret|code_verifier|id_token"
)
_SECRET_FIELD = re.compile(
    rf"""(?P<name>["']?(?:{_SECRET_NAMES})["']?\s*[:=]\s*)(?P<quote>["']?)(?P<value>[^"'\s,;&}}]+)""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<name>\b(?:Bearer|Basic)\s+)(?P<value>[A-Za-z0-9._~+/=\-]+)")


# Known secret values shorter than this are not redacted: replacing "1" or "test" everywhere
# mangles ordinary text ("ran 12 tests in 1.1s") and hides nothing, since a value that short
# can be guessed anyway. The settings page names saved values under this length as unprotected.
REDACT_MIN_CHARS = 8


@lru_cache(maxsize=64)
def _configured_secrets(values: tuple[str, ...]) -> re.Pattern[str] | None:
    usable = sorted({v for v in values if len(v) >= REDACT_MIN_CHARS}, key=len, reverse=True)
    if not usable:
        return None
    return re.compile("|".join(re.escape(v) for v in usable))


def _settings_secrets() -> tuple[str, ...]:
    names = (
        "SECRET_KEY",
        "ANTHROPIC_API_KEY",
        "CLAUDE_ACCESS_TOKEN",
        "CLAUDE_REFRESH_TOKEN",
    )
    try:
        values = [str(getattr(settings, name, "") or "") for name in names]
        values += [str(k) for k in getattr(settings, "FIELD_ENCRYPTION_KEYS", [])]
    except Exception:  # noqa: BLE001  settings not configured yet (early import): nothing known to hide
        return ()
    return tuple(values)


def secrets_redact(text: str, *, values: Iterable[str] = ()) -> str:
    """Replace anything that looks like a token or a known secret value with [redacted].

    ``values``: more known secrets (a task's credentials and extra environment); like the
    server's own, only those of at least REDACT_MIN_CHARS characters are replaced. The result
    is text any column holds (common.text.text_storable), made so first: a NUL inside a secret
    cannot hide it.
    """
    if not text:
        return text
    text = text_storable(text)
    pattern = _configured_secrets(_settings_secrets() + tuple(values))
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for _kind, shape in _SECRET_SHAPES:
        text = shape.sub(REDACTED, text)
    text = _SECRET_FIELD.sub(lambda m: f"{m['name']}{m['quote']}{REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m['name']}{REDACTED}", text)


def secret_shape_find(*, text: str) -> str | None:
    """What kind of secret ``text`` holds by its shape ("a GitHub token"), or None: the shapes
    secrets_redact hides. For input that should never hold one, such as a variable's name."""
    return next((kind for kind, shape in _SECRET_SHAPES if shape.search(text)), None)


# Read past a cut before redacting, then dropped: a secret the cut splits is never half shown.
_REDACT_MARGIN = 4096


def redacted_head(
    text: str, *, max_chars: int, redact: Callable[[str], str] = secrets_redact
) -> tuple[str, bool]:
    """At most ``max_chars`` of ``text`` from its start, redacted by ``redact``, and whether it
    was cut. Only that part (and a margin) is redacted: a huge text costs no more than a short
    one, and a secret the cut splits is left out whole."""
    if len(text) <= max_chars:
        return redact(text), False
    window = redact(text[: max_chars + _REDACT_MARGIN])
    return window[: min(max_chars, max(0, len(window) - _REDACT_MARGIN))], True


class SecretRedactingFilter(logging.Filter):
    """Render the message, redact it, and freeze it, so no handler or formatter sees a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  a bad format string: keep the raw template, still redacted
            message = str(record.msg)
        record.msg = secrets_redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = secrets_redact(record.exc_text)
        if record.stack_info:
            record.stack_info = secrets_redact(record.stack_info)
        return True
