"""The two other inputs of the Code agent settings page, checked: the API key and the agent's
extra environment. What the page says about a valid input is in accounts.live_check.

Pasted OAuth credentials are parsed only by oauth_tokens.formats.credential_input_parse. Messages
never quote a secret: a key pasted in the wrong field must not be echoed back.
"""

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import InputError
from common.logging import REDACT_MIN_CHARS
from oauth_tokens.formats import (
    API_KEY_PREFIX,
    KIND_ACCESS_TOKEN,
    KIND_REFRESH_TOKEN,
    MAX_INPUT_BYTES,
    json_int_checked,
    json_type_name,
    token_bad_character,
    token_kind_by_prefix,
)

from .env_rules import env_name_behaviour_refusal, env_name_refused_message, env_name_secret_refusal


class SettingsInputError(InputError):
    """Input the settings page cannot accept."""


# Real keys are about 108 characters; much shorter means it was cut off while copying.
API_KEY_MIN_CHARS = 40
API_KEY_MAX_CHARS = 512


_API_KEY_WRONG_KIND = {
    KIND_ACCESS_TOKEN: "This is a Claude OAuth token (it starts with sk-ant-oat), not an API key. "
    "Paste it in the Claude OAuth tokens box instead, and leave this field empty.",
    KIND_REFRESH_TOKEN: "This is a Claude OAuth refresh token (it starts with sk-ant-ort), not an "
    "API key. Paste the whole credentials JSON in the Claude OAuth tokens box instead.",
}


def api_key_parse(*, raw: str) -> str:
    """A pasted Anthropic API key, checked; "" when nothing was given (keep the saved one).

    Messages never quote the input: a secret pasted in the wrong field must not be echoed.
    """
    key = raw.strip()
    if not key:
        return ""
    wrong = _API_KEY_WRONG_KIND.get(token_kind_by_prefix(key) or "")
    if wrong:
        raise SettingsInputError(wrong)
    if key.startswith(("{", "[", '"')):
        raise SettingsInputError(
            "This looks like JSON, not an API key. OAuth credentials go in the Claude OAuth "
            "tokens box; here paste only the key, which starts with sk-ant-api."
        )
    bad = token_bad_character(key)
    if bad is not None and bad[1] == "space":
        raise SettingsInputError(
            f"The key contains a space or line break (at character {bad[0]}). Copy it "
            "again as one line."
        )
    if bad is not None:
        raise SettingsInputError(
            f"The key contains a character that is not printable ASCII (at character "
            f"{bad[0]}), such as a curly quote or an invisible character. Copy it again "
            "from the Anthropic Console."
        )
    if not key.startswith(API_KEY_PREFIX):
        if "=" in key[:40]:
            raise SettingsInputError(
                "Paste only the key itself (it starts with sk-ant-api), without a variable "
                "name such as ANTHROPIC_API_KEY=."
            )
        raise SettingsInputError(
            "This is not an Anthropic API key: those start with sk-ant-api. Create one in the "
            "Anthropic Console under API keys."
        )
    if len(key) < API_KEY_MIN_CHARS:
        raise SettingsInputError(
            f"The key is only {len(key)} characters long; it looks cut off. Copy the whole key."
        )
    if len(key) > API_KEY_MAX_CHARS:
        raise SettingsInputError(
            f"The key is {len(key):,} characters long; at most {API_KEY_MAX_CHARS} are allowed. "
            "Copy only the key."
        )
    return key


AGENT_ENV_MAX_VARIABLES = 50
AGENT_ENV_MAX_VALUE_BYTES = 4 * 1024
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_NAME_MAX_CHARS = 128

_USE_API_KEY_FIELD = "use the API key field on this page instead"
_USE_OAUTH_BOX = "use the Claude OAuth tokens box on this page instead"
_SET_BY_SERVER = "the server sets it for every task"
# Names the server sets itself, or that would change how the agent authenticates: the CLI lets
# an API key silently beat OAuth, so these must only ever come from the auth settings.
AGENT_ENV_RESERVED: dict[str, str] = {
    "ANTHROPIC_API_KEY": _USE_API_KEY_FIELD,
    "ANTHROPIC_AUTH_TOKEN": _USE_API_KEY_FIELD,
    "CLAUDE_CODE_OAUTH_TOKEN": _USE_OAUTH_BOX,
    "CLAUDE_ACCESS_TOKEN": _USE_OAUTH_BOX,
    "CLAUDE_REFRESH_TOKEN": _USE_OAUTH_BOX,
    "CLAUDE_EXPIRES_AT": _USE_OAUTH_BOX,
    "CLAUDE_USE_OAUTH": "use the “Use Claude OAuth” checkbox on this page instead",
    "ANTHROPIC_BASE_URL": _SET_BY_SERVER,
    "HOME": _SET_BY_SERVER,
    "PATH": _SET_BY_SERVER,
    "REPO_URL": _SET_BY_SERVER,
    "REPO_BRANCH": _SET_BY_SERVER,
    "CLAUDE_CONFIG_DIR": _SET_BY_SERVER,
}


def agent_env_name_refusal(*, name: str) -> str | None:
    """Why the agent's extra environment may not hold this name (None: it may): reserved for
    the auth settings or the server, or it changes how programs run or where traffic goes."""
    return AGENT_ENV_RESERVED.get(name.upper()) or env_name_behaviour_refusal(name=name)


_ENV_EXAMPLE = '{"GITHUB_TOKEN": "ghp_...", "NODE_ENV": "test"}'


def _env_name_label(name: str, position: int) -> str:
    # Quote a name only when it looks like one: a key pasted by mistake must not be echoed.
    if (
        0 < len(name) <= 64
        and name.isascii()
        and name.isprintable()
        and env_name_secret_refusal(name=name) is None
    ):
        return name
    return f"variable #{position}"


def agent_env_name_labels(*, env: Mapping[str, Any]) -> list[str]:
    """The saved names as pages show them: one that is not shown (a token's shape, too long,
    not printable) as its position."""
    return [_env_name_label(name, position) for position, name in enumerate(env, start=1)]


class _Pairs(list):
    """A JSON object as its (name, value) pairs, so repeated names can be reported."""


def _json_type_name(value: Any) -> str:
    # A parsed object arrives as _Pairs (a list): name it as the object it was.
    return "an object" if isinstance(value, _Pairs) else json_type_name(value)


def agent_env_parse(*, raw: str) -> dict[str, str] | None:
    """The agent's extra environment: a JSON object of variable names to text values.

    None when nothing was given (keep what is saved); {} clears it.
    """
    if not raw.strip():
        return None
    pairs = _env_pairs_load(raw)
    if len(pairs) > AGENT_ENV_MAX_VARIABLES:
        raise SettingsInputError(
            f"There are {len(pairs)} variables; at most {AGENT_ENV_MAX_VARIABLES} are allowed."
        )
    env: dict[str, str] = {}
    for position, (name, item) in enumerate(pairs, start=1):
        label = _env_name_label(name, position)
        if name in env:
            raise SettingsInputError("This name appears twice; keep only one of them.", field=label)
        env[name] = _env_item_check(name, item, label=label)
    return env


def _env_pairs_load(raw: str) -> _Pairs:
    """The pasted JSON object as its (name, value) pairs, or a SettingsInputError."""
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        raise SettingsInputError(
            f"The input is larger than {MAX_INPUT_BYTES // 1024} KiB; keep only the variables "
            "the agent needs."
        )
    try:
        # Pairs, not a dict: json.loads would silently keep only the last of two equal names.
        value = json.loads(
            raw, object_pairs_hook=_Pairs, parse_int=json_int_checked(SettingsInputError)
        )
    except json.JSONDecodeError as error:
        raise SettingsInputError(
            f"The input is not valid JSON: {error.msg} at line {error.lineno}, column "
            f"{error.colno}. Write an object such as {_ENV_EXAMPLE}."
        ) from None
    except RecursionError:
        raise SettingsInputError("The JSON is nested too deeply.") from None
    if not isinstance(value, _Pairs):
        raise SettingsInputError(
            f"Expected a JSON object of names to values, such as {_ENV_EXAMPLE}; found "
            f"{_json_type_name(value)}."
        )
    return value


def _env_item_check(name: str, item: Any, *, label: str) -> str:
    """One variable's value, checked against the rules (the name's rules first, so a reserved
    name is named as such whatever its value)."""
    problem = agent_env_variable_problem(name=name, value=item if isinstance(item, str) else "")
    if problem:
        raise SettingsInputError(problem, field=label)
    if not isinstance(item, str):
        item_type = _json_type_name(item)
        hint = ' Put it in quotes, for example "8080".' if item_type == "a number" else ""
        raise SettingsInputError(f"Expected text, found {item_type}.{hint}", field=label)
    return item


# --- the rules for one variable ----------------------------------------------------------------
# One list, used both to refuse input and to report variables saved before a rule existed (those
# are also left out of tasks). Each rule takes (name, value) and returns what is wrong, in words
# for the user that never quote the value, or None. Add rules as entries; the first that fails
# is reported.

EnvRule = Callable[[str, str], str | None]


def _env_name_not_secret(name: str, value: str) -> str | None:
    return env_name_secret_refusal(name=name)


def _env_name_valid(name: str, value: str) -> str | None:
    if not name:
        return "A variable name is empty."
    if not _ENV_NAME_RE.fullmatch(name) or len(name) > _ENV_NAME_MAX_CHARS:
        return (
            "Not a valid variable name: use letters, digits and underscores, not starting "
            "with a digit (for example GITHUB_TOKEN)."
        )
    return None


def _env_name_not_reserved(name: str, value: str) -> str | None:
    reserved = agent_env_name_refusal(name=name)
    if reserved:
        return env_name_refused_message(name=name, reason=reserved)
    return None


def _env_value_no_nul(name: str, value: str) -> str | None:
    if "\x00" in value:
        return "The value contains a NUL character, which an environment variable cannot hold."
    return None


def _env_value_encodable(name: str, value: str) -> str | None:
    # A lone surrogate (JSON "\ud800") is valid JSON but not text any program can read: every
    # task would fail writing it. Position only; the character is part of the value.
    for position, char in enumerate(value, start=1):
        if "\ud800" <= char <= "\udfff":
            return (
                f"The value contains an unpaired surrogate (at character {position}), which "
                "cannot be written as UTF-8. Copy the value again from its source."
            )
    return None


def _env_value_size(name: str, value: str) -> str | None:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > AGENT_ENV_MAX_VALUE_BYTES:
        return (
            f"The value is {size:,} bytes; at most {AGENT_ENV_MAX_VALUE_BYTES:,} (4 KiB) are "
            "allowed."
        )
    return None


AGENT_ENV_RULES: list[EnvRule] = [
    _env_name_not_secret,
    _env_name_valid,
    _env_name_not_reserved,
    _env_value_no_nul,
    _env_value_encodable,
    _env_value_size,
]


def agent_env_variable_problem(*, name: str, value: str) -> str | None:
    """What is wrong with one variable by AGENT_ENV_RULES (the first rule that fails), or None."""
    for rule in AGENT_ENV_RULES:
        problem = rule(name, value)
        if problem:
            return problem
    return None


@dataclass(frozen=True)
class SavedVariableProblem:
    """A saved variable that today's rules refuse: its label (never a secret) and why."""

    label: str
    message: str


def agent_env_saved_problems(*, env: Mapping[str, Any]) -> list[SavedVariableProblem]:
    """Saved variables that break a rule (saved before the rule existed): tasks leave them out."""
    problems = []
    for position, (name, value) in enumerate(env.items(), start=1):
        if not isinstance(value, str):
            problem: str | None = f"Expected text, found {json_type_name(value)}."
        else:
            problem = agent_env_variable_problem(name=name, value=value)
        if problem:
            problems.append(SavedVariableProblem(_env_name_label(name, position), problem))
    return problems


def agent_env_usable(*, env: Mapping[str, Any]) -> dict[str, str]:
    """The saved variables a task may get: those that pass every rule today."""
    return {
        name: value
        for name, value in env.items()
        if isinstance(value, str) and agent_env_variable_problem(name=name, value=value) is None
    }


def agent_env_unprotected(*, env: Mapping[str, Any]) -> list[str]:
    """Names of saved values too short to be hidden in task logs (see common.logging)."""
    return [
        _env_name_label(name, position)
        for position, (name, value) in enumerate(env.items(), start=1)
        if isinstance(value, str) and value and len(value) < REDACT_MIN_CHARS
    ]
