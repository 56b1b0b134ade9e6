"""Names the agent's extra environment may not hold because they change how programs run or where
traffic goes: one variable is enough to make git run a shell command (GIT_CONFIG_* with
an ext:: rewrite), load code into every process (LD_PRELOAD, NODE_OPTIONS, BASH_ENV) or send
traffic past the task's gateway (*_PROXY). accounts.parsers applies them with the reserved names,
to input and to variables saved before a rule existed alike; environments.validation too.

A name with the shape of a secret (a token pasted as the name by mistake) is refused as well,
and never repeated back.
"""

from common.logging import secret_shape_find

_SET_BY_SERVER = "the server sets it for every task"
_RUNS_OTHER_CODE = (
    "it makes programs run other code than they would (git, the shell, Node.js, the loader)"
)
_MOVES_TRAFFIC = (
    "it changes where the agent's network traffic goes or which certificates it trusts; the "
    "task's gateway decides that"
)
_AUTH_OR_MODEL = (
    "it would change how Claude Code signs in or where it sends its requests; the server sets "
    "these itself"
)
_ENV_EXACT_RULES: dict[str, str] = {
    **dict.fromkeys(
        (
            "BASH_ENV",
            "ENV",
            "NODE_OPTIONS",
            "GIT_ASKPASS",
            "SSH_ASKPASS",
            "GIT_EXEC_PATH",
            "GIT_TEMPLATE_DIR",
            "GIT_PROXY_COMMAND",
            "PROMPT_COMMAND",
            "SHELLOPTS",
            "BASHOPTS",
            "IFS",
            "GCONV_PATH",
            "PYTHONSTARTUP",
            "PYTHONPATH",
            "PYTHONHOME",
            "PERL5OPT",
            "PERL5LIB",
            "RUBYOPT",
            "RUBYLIB",
        ),
        _RUNS_OTHER_CODE,
    ),
    **dict.fromkeys(
        (
            "NODE_TLS_REJECT_UNAUTHORIZED",
            "NODE_EXTRA_CA_CERTS",
            "CURL_CA_BUNDLE",
            "REQUESTS_CA_BUNDLE",
            "GIT_SSL_NO_VERIFY",
            "GIT_SSL_CAINFO",
            "GIT_SSL_CAPATH",
            "HOSTALIASES",
            "RES_OPTIONS",
            "LOCALDOMAIN",
        ),
        _MOVES_TRAFFIC,
    ),
}
_ENV_PREFIX_RULES: tuple[tuple[str, str], ...] = (
    ("GIT_CONFIG", _RUNS_OTHER_CODE),  # GIT_CONFIG, _COUNT, _KEY_n, _VALUE_n, _PARAMETERS, ...
    ("GIT_SSH", _RUNS_OTHER_CODE),  # GIT_SSH, GIT_SSH_COMMAND, GIT_SSH_VARIANT
    ("LD_", _RUNS_OTHER_CODE),
    ("DYLD_", _RUNS_OTHER_CODE),
    ("SSL_CERT_", _MOVES_TRAFFIC),
    ("ANTHROPIC_", _AUTH_OR_MODEL),
    ("CLAUDE_", _AUTH_OR_MODEL),
    ("AGENT_", _SET_BY_SERVER),
)


def env_name_behaviour_refusal(*, name: str) -> str | None:
    """Why this name would change how programs run or where traffic goes (None: it would not)."""
    upper = name.upper()
    reason = _ENV_EXACT_RULES.get(upper)
    if reason is None and upper.endswith("_PROXY"):  # HTTPS_PROXY, no_proxy, ALL_PROXY, ...
        reason = _MOVES_TRAFFIC
    if reason is None:
        reason = next((r for prefix, r in _ENV_PREFIX_RULES if upper.startswith(prefix)), None)
    return reason


def env_name_refused_message(*, name: str, reason: str) -> str:
    """What the settings page and the environment page say of a refused name: the same words."""
    return (
        f"{name.upper()} cannot be set here, because it would override how the agent "
        f"authenticates or runs: {reason}."
    )


def env_name_secret_refusal(*, name: str) -> str | None:
    """What to say of a name that has the shape of a secret (None: it has not). It never repeats
    the name: that is the secret."""
    kind = secret_shape_find(text=name)
    if kind is None:
        return None
    return (
        f"This name looks like {kind}. Put the token in the value, under a name such as "
        "GITHUB_TOKEN, not in the name; and since it was pasted here, consider replacing it."
    )
