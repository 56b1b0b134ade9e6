"""The JSON API (Django Ninja): tasks and the auth status, for the bearer of a personal token.

Every action goes through the same services as the web pages, so ownership (another user's
task is a 404), the per-user task limits and the repository URL rules apply alike.
"""

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Query, Schema, Status
from pydantic import Field

from common.errors import InputError
from tasks.follow_ups import task_continue, task_message_send, task_run_again
from tasks.models import CodingTask, TaskStatus
from tasks.pull_requests.follow_ups import task_pull_request_request
from tasks.selectors import message_fate, task_get_for_user, tasks_for_user
from tasks.services import task_cancel, task_run_now_with_api_key, task_submit
from tasks.validation import TaskInputError, TaskNotPossible

from .auth import ApiBearer, token_of, writer_token_of
from .error_handlers import error_handlers_install
from .errors import ApiError
from .output import auth_status_json, message_json, task_detail_json, task_summary_json
from .schemas import (
    AuthOut,
    CancelOut,
    ContinueIn,
    ErrorOut,
    MessageIn,
    MessageSentOut,
    RunNowOut,
    TaskIn,
    TaskListOut,
    TaskOut,
)
from .waiting import task_change_wait

api = NinjaAPI(
    title="Claude Runner API",
    version="1",
    description="Submit and follow coding tasks. Authenticate with a personal token from the "
    "API tokens settings page: `Authorization: Bearer crt_…`.",
    auth=ApiBearer(),
    urls_namespace="api-v1",
    docs_url="/docs",
)
error_handlers_install(api)

_ERRORS: dict[int | tuple[int, ...], type[Schema]] = {
    (400, 401, 403, 404, 409, 413, 429): ErrorOut,
}
# The service's names for the inputs, as the API calls them.
_FIELD_NAMES = {"repo_url": "repository"}


def _input_error(exc: InputError, *, whole: str) -> ApiError:
    """A refused input (400, the field named), a request the task's state refuses (409
    not_possible) or a refusal of the whole request (409, `whole`)."""
    if isinstance(exc, TaskNotPossible):
        return ApiError(409, "not_possible", exc.message)
    if exc.field is None:
        return ApiError(409, whole, exc.message)
    field = _FIELD_NAMES.get(exc.field, exc.field)
    return ApiError(400, "invalid_input", exc.message, field=field)


def _own_task(request: HttpRequest, task_id: int) -> CodingTask:
    return task_get_for_user(user=token_of(request).owner, task_id=task_id)


class WaitQuery(Schema):
    wait: int = Field(
        0,
        ge=0,
        le=30,
        description=(
            "Seconds to wait for the task's status, result or pull request, or a message's state,"
            " to change before answering (at most 30)."
        ),
    )


@api.post(
    "/tasks",
    response={201: TaskOut, **_ERRORS},
    operation_id="task_create",
    summary="Submit a task",
)
def task_create_endpoint(request: HttpRequest, body: TaskIn) -> Status[dict[str, Any]]:
    owner = writer_token_of(request).owner
    try:
        task = task_submit(
            owner=owner,
            repo_url=body.repository,
            prompt=body.prompt,
            branch=body.branch,
            open_pull_request=body.open_pull_request,
            environment=body.environment,
        )
    except InputError as exc:  # TaskInputError, or the environment chosen
        raise _input_error(exc, whole="task_limit") from None
    return Status(201, task_detail_json(task=task, new=True))


class ListQuery(Schema):
    limit: int = Field(25, ge=1, le=100)
    offset: int = Field(0, ge=0, le=1_000_000_000)
    status: TaskStatus | None = Field(None, description="Only tasks in this status.")


@api.get(
    "/tasks",
    response={200: TaskListOut, **_ERRORS},
    operation_id="task_list",
    summary="List your tasks",
)
def task_list_endpoint(request: HttpRequest, query: Query[ListQuery]) -> dict[str, Any]:
    """The token owner's tasks, newest first."""
    tasks = tasks_for_user(user=token_of(request).owner)
    if query.status is not None:
        tasks = tasks.filter(status=query.status)
    page = tasks[query.offset : query.offset + query.limit]
    return {"count": tasks.count(), "items": [task_summary_json(task=task) for task in page]}


@api.get(
    "/tasks/{task_id}",
    response={200: TaskOut, **_ERRORS},
    operation_id="task_get",
    summary="Read a task, or wait for it to change",
)
async def task_get_endpoint(
    request: HttpRequest, response: HttpResponse, task_id: int, query: Query[WaitQuery]
) -> dict[str, Any]:
    read = sync_to_async(_task_read)
    owner = token_of(request).owner
    task = await read(owner=owner, task_id=task_id)  # another user's task: 404 before any wait
    if not query.wait:
        return task
    changed = await task_change_wait(task_id=task_id, seconds=query.wait)
    response["X-Task-Changed"] = "true" if changed else "false"
    return await read(owner=owner, task_id=task_id) if changed else task


def _task_read(*, owner: User, task_id: int) -> dict[str, Any]:
    return task_detail_json(task=task_get_for_user(user=owner, task_id=task_id))


@api.post(
    "/tasks/{task_id}/cancel",
    response={200: CancelOut, **_ERRORS},
    operation_id="task_cancel",
    summary="Cancel a task",
)
def task_cancel_endpoint(request: HttpRequest, task_id: int) -> dict[str, str]:
    writer_token_of(request)
    return {"status": task_cancel(task=_own_task(request, task_id))}


@api.post(
    "/tasks/{task_id}/continue",
    response={201: TaskOut, **_ERRORS},
    operation_id="task_continue",
    summary="Continue a finished task (on its pull request's branch when it has one)",
)
def task_continue_endpoint(
    request: HttpRequest, task_id: int, body: ContinueIn
) -> Status[dict[str, Any]]:
    writer_token_of(request)
    parent = _own_task(request, task_id)
    try:
        task = task_continue(parent=parent, prompt=body.prompt)
    except TaskInputError as exc:
        raise _input_error(exc, whole="task_limit") from None
    return Status(201, task_detail_json(task=task, new=True))


@api.post(
    "/tasks/{task_id}/run-again",
    response={201: TaskOut, **_ERRORS},
    operation_id="task_run_again",
    summary="Run a failed, timed-out or cancelled task again (same prompt and inputs)",
)
def task_run_again_endpoint(request: HttpRequest, task_id: int) -> Status[dict[str, Any]]:
    writer_token_of(request)
    task = _own_task(request, task_id)
    try:
        again = task_run_again(task=task)
    except TaskInputError as exc:
        raise _input_error(exc, whole="task_limit") from None
    return Status(201, task_detail_json(task=again, new=True))


@api.post(
    "/tasks/{task_id}/messages",
    response={201: MessageSentOut, **_ERRORS},
    operation_id="task_message_send",
    summary="Send the running agent a message (a finished task: start a follow-up with it)",
)
def task_message_endpoint(
    request: HttpRequest, task_id: int, body: MessageIn
) -> Status[dict[str, Any]]:
    writer_token_of(request)
    task = _own_task(request, task_id)
    try:
        sent = task_message_send(task=task, text=body.text)
    except TaskInputError as exc:
        raise _input_error(exc, whole="task_limit") from None
    if isinstance(sent, CodingTask):
        follow_up = task_detail_json(task=sent, new=True)
        return Status(201, {"kind": "follow_up", "message": None, "task": follow_up})
    kept = message_json(sent=message_fate(message=sent, task_status=task.status))
    return Status(201, {"kind": "message", "message": kept, "task": None})


@api.post(
    "/tasks/{task_id}/pull-request",
    response={202: TaskOut, **_ERRORS},
    operation_id="task_pull_request",
    summary="Create the pull request",
)
def task_pull_request_endpoint(request: HttpRequest, task_id: int) -> Status[dict[str, Any]]:
    owner = writer_token_of(request).owner
    task = _own_task(request, task_id)
    try:
        task_pull_request_request(task=task)
    except TaskInputError as exc:
        raise ApiError(409, "not_possible", exc.message) from None
    return Status(202, task_detail_json(task=task_get_for_user(user=owner, task_id=task.pk)))


@api.post(
    "/tasks/{task_id}/run-now-with-api-key",
    response={200: RunNowOut, **_ERRORS},
    operation_id="task_run_now_with_api_key",
    summary="Run a task waiting for a usage limit on your API key: now, or when a slot frees",
)
def task_run_now_endpoint(request: HttpRequest, task_id: int) -> dict[str, str]:
    writer_token_of(request)
    task = _own_task(request, task_id)
    try:
        accepted = task_run_now_with_api_key(task=task)
    except TaskInputError as exc:
        raise _input_error(exc, whole="not_possible") from None
    status = TaskStatus.QUEUED if accepted.queued else TaskStatus.WAITING
    return {"status": status, "message": accepted.message}


@api.get(
    "/auth",
    response={200: AuthOut, **_ERRORS},
    operation_id="auth_status",
    summary="How a task would authenticate",
)
def auth_status_endpoint(request: HttpRequest) -> dict[str, Any]:
    return auth_status_json(user=token_of(request).owner)
