"""What the settings page's live check says about a valid input: what was understood (never a
secret), and for pasted OAuth credentials a verdict whose tone (and so the colour of its box)
follows from the same facts as its words, so a box can never be green and say tasks would fail.

The live check sees the text only. It checks the format and the expiry and whether there is a
refresh token; whether Anthropic accepts the token is known only once a task's gateway has used
it (OAuthCredential.last_accepted_at), so a valid-looking paste is never called "valid".
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from common.humanize import expiry_words
from oauth_tokens.formats import CredentialKind, InputFormat, ParsedCredential
from oauth_tokens.services import credential_expired, refresh_buffer

from .parsers import agent_env_name_labels

__all__ = [
    "KIND_LABELS",
    "NO_SCOPES",
    "InputDescription",
    "Tone",
    "agent_env_describe",
    "api_key_describe",
    "credential_input_describe",
    "scopes_words",
]


class Tone(StrEnum):
    """How a verdict reads, and the box it is shown in."""

    OK = "ok"  # nothing found that would stop a task
    WARN = "warn"  # may work, may not: it depends on something not checked here
    BAD = "bad"  # tasks would fail with it


BOX_CLASSES = {Tone.OK: "ok-box", Tone.WARN: "warn-box", Tone.BAD: "error-box"}

_FORMAT_LABELS = {
    InputFormat.CLI: "the Claude CLI's credentials file (claudeAiOauth, camelCase)",
    InputFormat.FLAT: "JSON with access_token (snake_case)",
    InputFormat.SETUP_TOKEN: "a token on its own, as `claude setup-token` prints it",
}
KIND_LABELS = {
    CredentialKind.REFRESHABLE: "refreshable (access token + refresh token)",
    CredentialKind.SETUP_TOKEN: "long-lived token, no refresh token",
}
NO_SCOPES = "no scopes given"

CHECKED = "Checked here: the format, the expiry and whether there is a refresh token."
NOT_CHECKED = (
    "Not checked: whether Anthropic accepts it. The server has not used it yet; once a task "
    "has run with it, this page says when the API last accepted it."
)


@dataclass(frozen=True)
class InputDescription:
    """What was understood from a valid input: (label, value) lines, and for credentials a
    verdict (one sentence, in the tone's box) with notes on what was and was not checked."""

    facts: list[tuple[str, str]]
    tone: Tone = Tone.OK
    verdict: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def box_class(self) -> str:
        return BOX_CLASSES[self.tone]


def scopes_words(scopes: list[str] | tuple[str, ...] | None) -> str:
    """The scopes as given, or that none were: never a guess."""
    return ", ".join(scopes or ()) or NO_SCOPES


def credential_input_describe(
    *, parsed: ParsedCredential, now: datetime, buffer: timedelta | None = None
) -> InputDescription:
    """What the live check says about pasted credentials (see the module's docstring)."""
    facts = [
        ("Format", _FORMAT_LABELS[parsed.input_format]),
        ("Kind", KIND_LABELS[parsed.kind]),
        ("Expires", expiry_words(expires_at=parsed.expires_at, now=now)),
        ("Scopes", scopes_words(parsed.scopes)),
        ("Subscription", parsed.subscription_type or "not stated"),
    ]
    tone, verdict, advice = _credential_verdict(
        parsed=parsed, now=now, buffer=refresh_buffer() if buffer is None else buffer
    )
    return InputDescription(
        facts=facts, tone=tone, verdict=verdict, notes=[*advice, CHECKED, NOT_CHECKED]
    )


def _credential_verdict(
    *, parsed: ParsedCredential, now: datetime, buffer: timedelta
) -> tuple[Tone, str, list[str]]:
    """(tone, the verdict, advice) from the expiry and the refresh token alone."""
    refreshable = parsed.kind == CredentialKind.REFRESHABLE
    expires = expiry_words(expires_at=parsed.expires_at, now=now, exact=None)
    if credential_expired(credential=parsed, now=now):
        if not refreshable:
            return (
                Tone.BAD,
                f"Tasks would fail with this token: it {expires} and has no refresh token to "
                "renew it.",
                ["Create a new one with `claude setup-token` and paste it here."],
            )
        return (
            Tone.WARN,
            f"The access token {expires}; the server will try the refresh token before the "
            "next task.",
            [
                "Whether the refresh token still works is known only then: each one works "
                "once, so if the Claude CLI you copied it from has refreshed since, it is "
                "refused."
            ],
        )
    soon = parsed.expires_at is not None and parsed.expires_at - now <= buffer
    if soon and not refreshable:
        return (
            Tone.WARN,
            f"This token expires {expires} and has no refresh token: tasks that start after "
            "that would fail.",
            ["Create a new one with `claude setup-token` to run tasks later than that."],
        )
    if refreshable:
        return Tone.OK, "Well-formed and refreshable: the server renews it before tasks.", []
    if parsed.expires_at is None:
        return Tone.OK, "Well-formed; no expiry given and no refresh token: used as it is.", []
    return (
        Tone.OK,
        f"Well-formed, with no refresh token: it works until it expires ({expires}).",
        [],
    )


def api_key_describe(*, key: str) -> InputDescription:
    return InputDescription(facts=[("Understood", f"an Anthropic API key ending in …{key[-4:]}")])


def agent_env_describe(*, env: dict[str, str]) -> InputDescription:
    if not env:
        return InputDescription(
            facts=[("Understood", "no variables: saving removes the saved ones")]
        )
    count = f"{len(env)} variable{'s' if len(env) != 1 else ''}"
    names = ", ".join(agent_env_name_labels(env=env))
    return InputDescription(facts=[("Understood", count), ("Names", names)])
