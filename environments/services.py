"""Changing environments: save (every edit is a new version), delete, choose one for a task."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F

from common.errors import InputError

from .cache import snapshots_remove
from .egress import agent_allow_outside
from .models import EgressLevel, Environment, TaskEnvironment
from .selectors import environment_for_task, environment_usable
from .validation import (
    NAME_MAX_CHARS,
    allow_list_parse,
    image_check,
    patterns_parse,
    script_check,
    variables_parse,
)

logger = logging.getLogger(__name__)

# What the task form's environment choice may say besides an environment's id.
CHOICE_AUTO = "auto"
CHOICE_NONE = "none"
_ID_DIGITS_MAX = 18  # within a 64-bit id


@dataclass(frozen=True)
class EnvironmentInput:
    """An environment as the form gives it: text, checked here."""

    name: str
    image: str
    setup_script: str = ""
    maintenance_script: str = ""
    variables: str = ""  # NAME=value lines
    # NAME=value lines; None keeps the saved secrets, "" with clear_secrets removes them.
    setup_secrets: str | None = None
    clear_secrets: bool = False
    setup_egress: str = EgressLevel.REGISTRIES
    setup_allow: str = ""
    agent_egress: str = EgressLevel.AGENTS
    agent_allow: str = ""
    repo_patterns: str = ""
    devcontainer: bool = False
    shared: bool = False


def environment_input_from_json(*, fields: Mapping[str, Any]) -> EnvironmentInput:
    """The admin's form as the page would have typed it: its JSON lists and object as lines,
    so environment_values_check judges both alike. Raises InputError for a wrong shape."""
    variables = fields.get("variables")
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _one_line(k) and "=" not in k and _one_line(v)
        for k, v in variables.items()
    ):
        raise InputError(
            'Give a JSON object of names to one-line text values, e.g. {"NODE_ENV": "test"}.',
            field="variables",
        )
    return EnvironmentInput(
        name=fields.get("name") or "",
        image=fields.get("image") or "",
        setup_script=fields.get("setup_script") or "",
        maintenance_script=fields.get("maintenance_script") or "",
        variables="\n".join(f"{k}={v}" for k, v in variables.items()),
        setup_egress=fields.get("setup_egress") or "",
        setup_allow=_json_lines(fields.get("setup_allow"), field="setup_allow"),
        agent_egress=fields.get("agent_egress") or "",
        agent_allow=_json_lines(fields.get("agent_allow"), field="agent_allow"),
        repo_patterns=_json_lines(fields.get("repo_patterns"), field="repo_patterns"),
        devcontainer=bool(fields.get("devcontainer")),
        shared=bool(fields.get("shared")),
    )


def _one_line(text: str) -> bool:
    return "\n" not in text and "\r" not in text


def _json_lines(value: object, *, field: str) -> str:
    # A string would be read letter by letter as a list: only a list of one-line texts will do.
    if not isinstance(value, list) or not all(isinstance(v, str) and _one_line(v) for v in value):
        raise InputError(
            'Give a JSON list of texts, one entry each, e.g. ["https://github.com/acme/*"].',
            field=field,
        )
    return "\n".join(value)


_SHARED_SECRETS = (
    "other users' repositories would run with them: a shared environment's setup runs each "
    "user's repository code (its package scripts, its devcontainer.json)"
)


def environment_values_check(
    *, owner: User, data: EnvironmentInput, environment: Environment | None = None
) -> dict[str, object]:
    """The model's values from what was typed, by the rules the page and the admin share.
    Raises InputError naming the field at fault."""
    name = data.name.strip()
    if not 0 < len(name) <= NAME_MAX_CHARS or not name.isprintable():
        raise InputError(
            f"Give it a name of 1 to {NAME_MAX_CHARS} printable characters on one line (no line "
            "breaks, tabs or control characters).",
            field="name",
        )
    if data.shared and not owner.is_staff:
        raise InputError("Only an admin may share an environment.", field="shared")
    levels = set(EgressLevel.values)
    for which in ("setup_egress", "agent_egress"):
        if getattr(data, which) not in levels:
            raise InputError("Choose one of the network levels.", field=which)
    agent_allow = allow_list_parse(text=data.agent_allow, field="agent_allow")
    values: dict[str, object] = {
        "name": name,
        "image": image_check(image=data.image),
        "setup_script": script_check(script=data.setup_script, field="setup_script"),
        "maintenance_script": script_check(
            script=data.maintenance_script, field="maintenance_script"
        ),
        "variables": variables_parse(text=data.variables, field="variables"),
        "setup_egress": data.setup_egress,
        "setup_allow": allow_list_parse(text=data.setup_allow, field="setup_allow"),
        "agent_egress": data.agent_egress,
        "agent_allow": agent_allow,
        "repo_patterns": patterns_parse(text=data.repo_patterns),
        "devcontainer": data.devcontainer,
        "shared": data.shared,
    }
    for which in ("setup", "agent"):
        if getattr(data, f"{which}_egress") == EgressLevel.CUSTOM and not values[f"{which}_allow"]:
            raise InputError("A custom allow list needs at least one host.", field=f"{which}_allow")
    if data.agent_egress == EgressLevel.CUSTOM and not owner.is_staff:
        _agent_allow_bounded(entries=agent_allow)
    if data.clear_secrets:
        values["setup_secrets"] = None
    elif data.setup_secrets:
        values["setup_secrets"] = variables_parse(text=data.setup_secrets, field="setup_secrets")
    _shared_without_secrets(data=data, values=values, environment=environment)
    return values


def _agent_allow_bounded(*, entries: list[str]) -> None:
    outside = agent_allow_outside(entries=entries)
    if outside:
        allowed = ", ".join(settings.AGENT_EGRESS_ALLOW) or "nothing"
        raise InputError(
            f"{outside[0][:80]!r} reaches beyond this server's allow list for agents "
            f"(AGENT_EGRESS_ALLOW: {allowed}); only an admin may widen it. Keep to hosts "
            "within that list, or choose that list itself.",
            field="agent_allow",
        )


def _shared_without_secrets(
    *, data: EnvironmentInput, values: dict[str, object], environment: Environment | None
) -> None:
    """A shared environment holds no setup secrets: its setup runs other users' code."""
    saved = environment.setup_secrets if environment is not None else None
    secrets = values.get("setup_secrets", saved)
    if not data.shared or not secrets:
        return
    if "setup_secrets" in values:
        raise InputError(
            f"A shared environment cannot hold setup secrets: {_SHARED_SECRETS}. Leave them "
            "out, or stop sharing it.",
            field="setup_secrets",
        )
    raise InputError(
        f"An environment with setup secrets cannot be shared: {_SHARED_SECRETS}. Remove its "
        "setup secrets first, or keep it to yourself.",
        field="shared",
    )


@transaction.atomic
def environment_save(
    *, owner: User, data: EnvironmentInput, environment: Environment | None = None
) -> Environment:
    """Create an environment, or change one of the owner's (its version goes up, so nothing
    cached for the old one is used again). Raises InputError naming the field at fault;
    nothing is saved then."""
    values = environment_values_check(owner=owner, data=data, environment=environment)
    duplicate = Environment.objects.filter(owner=owner, name=values["name"])
    if environment is not None:
        duplicate = duplicate.exclude(pk=environment.pk)
    if duplicate.exists():
        raise InputError("You already have an environment of that name.", field="name")
    if environment is None:
        return Environment.objects.create(owner=owner, **values)
    environment = Environment.objects.select_for_update().get(pk=environment.pk, owner=owner)
    for name, value in values.items():
        setattr(environment, name, value)
    environment.version += 1
    environment.save()
    transaction.on_commit(lambda: snapshots_remove(environment_id=environment.pk, older=True))
    logger.info("Environment %s is now version %s", environment.pk, environment.version)
    return environment


def environment_delete(*, environment: Environment) -> None:
    snapshots_remove(environment_id=environment.pk)
    environment.delete()


def environment_cache_reset(*, environment: Environment) -> int:
    """The "Reset cache" button: every snapshot of the environment goes; the next task runs
    setup afresh. How many went."""
    return snapshots_remove(environment_id=environment.pk)


def _is_id(choice: str) -> bool:
    # isdigit() alone lets through "²" and Arabic digits, and int() of thousands of digits
    # raises: only a plain number of sane length can be an id.
    return choice.isascii() and choice.isdigit() and len(choice) <= _ID_DIGITS_MAX


def task_environment_record(*, task_id: int, **values: object) -> None:
    """What the task's setup phase did so far (its log, cache, time, exit code), written with one
    more revision, so an open page of the task draws it again."""
    TaskEnvironment.objects.filter(pk=task_id).update(**values, revision=F("revision") + 1)


def task_environment_choose(
    *, task_id: int, owner: User, repo_url: str, choice: str = CHOICE_AUTO
) -> TaskEnvironment | None:
    """Record which environment a new task runs with: the matching one ("auto"), none, or one
    the owner may use (by id). Raises InputError for an id the owner may not use."""
    if choice == CHOICE_NONE:
        return None
    if choice == CHOICE_AUTO or not choice:
        environment = environment_for_task(user=owner, repo_url=repo_url)
    else:
        environment = (
            environment_usable(user=owner, environment_id=int(choice)) if _is_id(choice) else None
        )
        if environment is None:
            raise InputError("No such environment.", field="environment")
    if environment is None:
        return None
    return TaskEnvironment.objects.create(
        task_id=task_id, environment=environment, name=environment.name
    )
