"""A repository's .devcontainer/devcontainer.json, read for its lifecycle commands
(onCreateCommand, updateContentCommand, postCreateCommand) and its image, as a setup phase
runs them when the environment says so. The file is the repository's: untrusted input."""

import json
import shlex
from dataclasses import dataclass

from common.errors import InputError

PATH = ".devcontainer/devcontainer.json"
MAX_BYTES = 256 * 1024
# In the order the devcontainer specification runs them on creation.
FRESH = ("onCreateCommand", "updateContentCommand", "postCreateCommand")
# What a reused container runs again when its content changed.
REUSED = ("updateContentCommand", "postCreateCommand")


@dataclass(frozen=True)
class DevContainer:
    image: str
    commands: dict[str, list[str]]  # lifecycle name -> shell lines

    def script(self, *, fresh: bool) -> str:
        lines = []
        for name in FRESH if fresh else REUSED:
            for line in self.commands.get(name, []):
                lines.append(f"echo '[setup] devcontainer {name}: ' {shlex.quote(line[:200])}")
                lines.append(line)
        return "\n".join(lines)


def devcontainer_parse(*, raw: bytes) -> DevContainer:
    """The parts of a devcontainer.json a setup uses. Raises InputError saying what is wrong."""
    if len(raw) > MAX_BYTES:
        raise InputError(f"{PATH} is over {MAX_BYTES:,} bytes.")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"{PATH} is not JSON ({exc}); comments and trailing commas are not read."
        ) from None
    if not isinstance(document, dict):
        raise InputError(f"{PATH} is not a JSON object.")
    image = document.get("image", "")
    if not isinstance(image, str):
        raise InputError(f"{PATH}: image is not text.")
    commands = {}
    for name in FRESH:
        if name in document:
            commands[name] = _command_lines(document[name], name)
    return DevContainer(image=image.strip(), commands=commands)


def _command_lines(value: object, name: str) -> list[str]:
    """A lifecycle command: a string (a shell line), a list (one program and its arguments) or
    an object of such (run one after another here)."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        if not value or not all(isinstance(part, str) for part in value):
            raise InputError(f"{PATH}: {name} as a list must hold text only.")
        return [shlex.join(value)]
    if isinstance(value, dict):
        lines: list[str] = []
        for part in value.values():
            if isinstance(part, dict):
                raise InputError(f"{PATH}: {name} nests objects.")
            lines += _command_lines(part, name)
        return lines
    raise InputError(f"{PATH}: {name} is neither text, a list nor an object.")
