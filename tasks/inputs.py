"""What goes into a task's container: its environment, the files written before it starts (the
prompt, the credentials, the user's extra variables as secret files), and its mounts.

Credentials go in as the CLI's own credentials file (docs/claude-cli-contract.md#credentials-file),
never both OAuth and an API key (docs/claude-cli-contract.md#environment-precedence).
"""

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from oauth_tokens.services import AuthMethod, AuthResolution

from .containers import CREDENTIALS_PATH, TASK_DIR, InputFile
from .models import CodingTask


@dataclass
class ContainerInputs:
    env: dict[str, str]
    files: list[InputFile]
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list, repr=False)
    read_back: list[str] = field(default_factory=list)


def _secret_file(name: str, value: str) -> InputFile:
    return InputFile(f"{TASK_DIR}/secret-env/{name}", value.encode(), 0o600)


def container_inputs(
    *, task: CodingTask, auth: AuthResolution, agent_env: dict[str, str]
) -> ContainerInputs:
    """What goes into the container: environment, files written before start (credentials as
    the CLI's own file, never on the command line), mounts, and the secrets to redact."""
    env = {
        **{k: str(v) for k, v in settings.AGENT_EXTRA_ENV.items()},
        "REPO_URL": task.repo_url,
        "REPO_BRANCH": task.branch,
    }
    files = [InputFile(f"{TASK_DIR}/prompt.txt", task.prompt.encode(), 0o600)]
    secrets: list[str] = []
    read_back: list[str] = []
    # The user's extra variables may hold secrets: files, not env, and redacted like tokens.
    for name, value in agent_env.items():
        files.append(_secret_file(name, value))
        secrets.append(value)
    if auth.method == AuthMethod.OAUTH and auth.oauth is not None:
        snap = auth.oauth
        rotation = settings.AGENT_ALLOW_TOKEN_ROTATION and bool(snap.refresh_token)
        # The CLI's own file format only; the refresh token stays on the server unless allowed.
        files.append(
            InputFile(
                CREDENTIALS_PATH,
                snap.credentials_file_json(include_refresh_token=rotation).encode(),
                0o600,
            )
        )
        env["CLAUDE_USE_OAUTH"] = "1"
        if snap.expires_at is not None:
            env["CLAUDE_EXPIRES_AT"] = str(int(snap.expires_at.timestamp()))
        if settings.AGENT_PASS_TOKEN_ENV:
            files.append(_secret_file("CLAUDE_ACCESS_TOKEN", snap.access_token))
            if rotation:
                files.append(_secret_file("CLAUDE_REFRESH_TOKEN", snap.refresh_token))
        if rotation:
            read_back.append(CREDENTIALS_PATH)
        secrets += [snap.access_token, snap.refresh_token]
    else:
        files.append(_secret_file("ANTHROPIC_API_KEY", auth.api_key))
        secrets.append(auth.api_key)
    volumes = {}
    parts = urlsplit(task.repo_url)
    if parts.scheme == "file":
        # Local repositories (development/tests only) are mounted read-only at the same path.
        path = str(Path(parts.path))
        volumes[path] = {"bind": path, "mode": "ro"}
    return ContainerInputs(env, files, volumes, secrets, read_back)
