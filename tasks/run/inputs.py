"""What goes into a task's container: its environment, the files written before it starts (the
prompt, a placeholder credential, the user's extra variables as secret files), and its mounts.

No real credential ever goes in. The container gets the auth MODE of the method chosen for the
task with a per-task placeholder in place of the secret, so the CLI sends its normal header
shape (docs/claude-cli-contract.md#messages-api-through-a-base-url) to the task's gateway, which
swaps in the real credential on the way out. Never both OAuth and an API key
(docs/claude-cli-contract.md#environment-precedence).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from oauth_tokens.formats import credentials_file_dumps
from oauth_tokens.services import AuthMethod, AuthResolution
from tasks.models import CodingTask

from .archives import InputFile
from .containers import CREDENTIALS_PATH, TASK_DIR
from .conversation import conversation_inputs

# The placeholder's credentials file names only the inference scope: with it the CLI sends its
# model calls and nothing else (a file with user:profile also makes it fetch the profile from
# api.anthropic.com, which the gateway refuses: docs/claude-cli-contract.md#credentials-file).
PLACEHOLDER_SCOPES = ("user:inference",)
# The placeholder "expires" well after the task's deadline, so the CLI never tries to refresh
# it (it would refresh within 5 minutes of expiry); the gateway renews the real token instead.
PLACEHOLDER_LIFETIME_MARGIN = timedelta(hours=1)


@dataclass
class ContainerInputs:
    env: dict[str, str]
    files: list[InputFile]
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list, repr=False)  # to redact from the log


def _secret_file(name: str, value: str) -> InputFile:
    return InputFile(f"{TASK_DIR}/secret-env/{name}", value.encode(), 0o600)


def placeholder_expires_at(*, now: datetime | None = None) -> datetime:
    """When the placeholder credentials file says its token expires: past the task's deadline."""
    now = now or timezone.now()
    return now + timedelta(seconds=settings.AGENT_TIMEOUT_SECONDS) + PLACEHOLDER_LIFETIME_MARGIN


def container_inputs(
    *, task: CodingTask, auth: AuthResolution, agent_env: dict[str, str], placeholder: str
) -> ContainerInputs:
    """What goes into the container: environment, files written before start (the placeholder
    credential, never a real one), mounts, and the values to redact from the log."""
    env = {
        **{k: str(v) for k, v in settings.AGENT_EXTRA_ENV.items()},
        "REPO_URL": task.repo_url,
        "REPO_BRANCH": task.branch,
        "AGENT_GATEWAY_PORT": str(settings.AGENT_GATEWAY_PORT),
        # The entrypoint stops (exit 4) rather than run without its gateway.
        "AGENT_GATEWAY_REQUIRED": "1",
    }
    conversation = conversation_inputs(task=task)  # a follow-up's earlier session or summary
    env |= conversation.env
    files = [
        InputFile(f"{TASK_DIR}/prompt.txt", conversation.prompt.encode(), 0o600),
        *conversation.files,
    ]
    secrets: list[str] = []
    # The user's extra variables may hold secrets: files, not env, and redacted like tokens.
    for name, value in agent_env.items():
        files.append(_secret_file(name, value))
        secrets.append(value)
    if auth.method == AuthMethod.OAUTH and auth.oauth is not None:
        snap = auth.oauth
        expires_at = placeholder_expires_at()
        # The CLI's own file format, holding the placeholder; no refresh token.
        files.append(
            InputFile(
                CREDENTIALS_PATH,
                credentials_file_dumps(
                    access_token=placeholder,
                    refresh_token="",
                    expires_at=expires_at,
                    scopes=PLACEHOLDER_SCOPES,
                    subscription_type=snap.subscription_type,
                    rate_limit_tier=snap.rate_limit_tier,
                ).encode(),
                0o600,
            )
        )
        # The real values never go in; redacting them is a second line of defence only.
        secrets += [snap.access_token, snap.refresh_token]
    else:
        files.append(_secret_file("ANTHROPIC_API_KEY", placeholder))
        secrets.append(auth.api_key)
    volumes = {}
    parts = urlsplit(task.repo_url)
    if parts.scheme == "file":
        # Local repositories (development/tests only) are mounted read-only at the same path.
        path = str(Path(parts.path))
        volumes[path] = {"bind": path, "mode": "ro"}
    return ContainerInputs(env, files, volumes, [s for s in secrets if s])
