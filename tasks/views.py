from http import HTTPStatus

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseClientRefresh, reswap

from accounts.selectors import preferences_get
from common.errors import InputError
from common.http import AuthenticatedRequest
from environments.selectors import task_environment_get
from environments.services import CHOICE_AUTO
from hosting.selectors import pull_request_host_blocker
from tasks.follow_ups import (
    follow_up_blocker,
    run_again_blocker,
    task_continue,
    task_message_send,
    task_run_again,
)
from tasks.models import CodingTask, TaskStatus
from tasks.pull_requests.create import pull_request_blocker
from tasks.pull_requests.follow_ups import task_pull_request_request
from tasks.waits.usage_limit import wait_words

from .forms import ContinueForm, MessageForm, TaskForm
from .selectors import (
    LiveChange,
    MessageFate,
    SentMessage,
    chain_turns,
    diff_lines,
    task_get_for_user,
    task_live_poll,
    task_live_state,
    task_messages_sent,
    tasks_for_user,
)
from .services import task_cancel, task_run_now_with_api_key, task_submit
from .validation import TaskInputError, live_since_parse


@never_cache
@require_http_methods(["GET", "POST"])
def task_list(request: AuthenticatedRequest) -> HttpResponse:
    pr_blocker = pull_request_host_blocker(user=request.user)
    form = TaskForm(
        request.POST or None, user=request.user, pull_requests_blocked=pr_blocker is not None
    )
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        choice = values.pop("environment") or CHOICE_AUTO
        try:
            task = task_submit(owner=request.user, environment=choice, **values)
        except InputError as exc:  # TaskInputError, or the environment chosen
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"Task {task.pk} queued.")
            return redirect("tasks:detail", task_id=task.pk)
    page = Paginator(tasks_for_user(user=request.user), 25).get_page(request.GET.get("page"))
    # The table follows its tasks while one of them is queued or running (htmx polls it).
    live = any(t.status in (TaskStatus.QUEUED, TaskStatus.RUNNING) for t in page.object_list)
    context = {"form": form, "page": page, "live": live, "pr_blocker": pr_blocker}
    if request.htmx and request.method == "GET":
        return render(request, "tasks/_task_table.html", context)
    return render(request, "tasks/list.html", context)


@never_cache
@require_safe
def task_detail(request: AuthenticatedRequest, task_id: int) -> HttpResponse:
    task = task_get_for_user(user=request.user, task_id=task_id)
    sent = task_messages_sent(task=task)
    context = _live_context(request, task, sent) | _follow_up_context(task)
    # Messages that reached no agent wait in the Continue box, for their owner to send on.
    undelivered = [s.message.text for s in sent if s.fate == MessageFate.NOT_DELIVERED]
    context |= {
        "diff": diff_lines(diff=task.diff),
        "chain": chain_turns(task=task),
        "continue_form": ContinueForm(initial={"prompt": "\n\n".join(undelivered)}),
        "messages_undelivered": len(undelivered),
        "message_form": MessageForm(),
    }
    return render(request, "tasks/detail.html", context)


@never_cache
@require_safe
def task_live(request: AuthenticatedRequest, task_id: int) -> HttpResponse:
    """What a task page's poll gets: 204 when nothing changed, the log's new tail when only the
    log moved on, the whole live part when more did, a reload once the task has finished."""
    poll = task_live_poll(
        user=request.user,
        task_id=task_id,
        state=request.GET.get("state", "")[:100],
        since=live_since_parse(text=request.GET.get("since", "")),
    )
    if poll.change == LiveChange.NOTHING:
        return HttpResponse(status=HTTPStatus.NO_CONTENT)
    if poll.change == LiveChange.FINISHED:
        return HttpResponseClientRefresh()  # show the full result once, then stop polling
    if poll.change == LiveChange.LOG:
        response = render(request, "tasks/_live_tail.html", {"poll": poll})
        return reswap(response, "none")  # only the out-of-band parts: the tail and the cursor
    task = task_get_for_user(user=request.user, task_id=task_id)
    # The live part, and the sent messages' list out of band (the form beside it keeps what
    # is being typed).
    context = _live_context(request, task, task_messages_sent(task=task))
    return render(request, "tasks/_live_poll.html", context)


def _live_context(
    request: AuthenticatedRequest, task: CodingTask, sent: list[SentMessage]
) -> dict[str, object]:
    environment_run = task_environment_get(task_id=task.pk)
    return {
        "task": task,
        "live_state": task_live_state(task=task, sent=sent, environment_run=environment_run),
        "messages_sent": sent,
        "wait_words": wait_words(task=task, now=timezone.now()),
        "has_api_key": preferences_get(user=request.user).has_api_key,
        "environment_run": environment_run,
    }


@never_cache
@require_http_methods(["GET", "POST"])
def task_cancel_view(request: AuthenticatedRequest, task_id: int) -> HttpResponse:
    """GET asks "cancel this task?" (a page, so it works without JavaScript); POST cancels."""
    task = task_get_for_user(user=request.user, task_id=task_id)
    if request.method == "GET":
        return render(request, "tasks/cancel_confirm.html", {"task": task})
    status = task_cancel(task=task)
    if status == TaskStatus.CANCELLED:
        messages.success(request, "Task cancelled.")
    elif status == TaskStatus.RUNNING:
        messages.info(request, "Stopping the task; its container will be removed.")
    else:
        messages.warning(request, f"The task has already {task.get_status_display().lower()}.")
    return redirect("tasks:detail", task_id=task.pk)


@never_cache
@require_POST
def task_run_now_with_api_key_view(request: AuthenticatedRequest, task_id: int) -> HttpResponse:
    task = task_get_for_user(user=request.user, task_id=task_id)
    try:
        accepted = task_run_now_with_api_key(task=task)
    except TaskInputError as exc:
        messages.warning(request, exc.message)
    else:
        level = messages.SUCCESS if accepted.queued else messages.INFO
        messages.add_message(request, level, accepted.message)
    return redirect("tasks:detail", task_id=task.pk)


@require_POST
def task_pull_request_view(request: AuthenticatedRequest, task_id: int) -> HttpResponse:
    task = task_get_for_user(user=request.user, task_id=task_id)
    try:
        task_pull_request_request(task=task)
    except TaskInputError as exc:
        messages.warning(request, exc.message)
    else:
        messages.info(request, "Creating the pull request: pushing the branch, then opening it.")
    return redirect("tasks:detail", task_id=task.pk)


@never_cache
def task_pull_request_status(request: AuthenticatedRequest, task_id: int) -> HttpResponse:
    """The pull-request card alone (HTMX polls it while the pull request is being created)."""
    task = task_get_for_user(user=request.user, task_id=task_id)
    return render(request, "tasks/_pull_request.html", _follow_up_context(task))


@require_POST
def task_continue_view(request: AuthenticatedRequest, task_id: int) -> HttpResponse:
    parent = task_get_for_user(user=request.user, task_id=task_id)
    form = ContinueForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Write what the agent should do next.")
        return redirect("tasks:detail", task_id=parent.pk)
    try:
        task = task_continue(parent=parent, prompt=form.cleaned_data["prompt"])
    except TaskInputError as exc:
        messages.error(request, exc.message)
        return redirect("tasks:detail", task_id=parent.pk)
    messages.success(request, f"Task {task.pk} queued: it continues task {parent.pk}.")
    return redirect("tasks:detail", task_id=task.pk)


@require_POST
def task_run_again_view(request: AuthenticatedRequest, task_id: int) -> HttpResponse:
    task = task_get_for_user(user=request.user, task_id=task_id)
    try:
        again = task_run_again(task=task)
    except TaskInputError as exc:
        messages.error(request, exc.message)
        return redirect("tasks:detail", task_id=task.pk)
    messages.success(request, f"Task {again.pk} queued: task {task.pk} again.")
    return redirect("tasks:detail", task_id=again.pk)


@require_POST
def task_message_view(request: AuthenticatedRequest, task_id: int) -> HttpResponse:
    task = task_get_for_user(user=request.user, task_id=task_id)
    form = MessageForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Write a message for the agent.")
        return redirect("tasks:detail", task_id=task.pk)
    try:
        sent = task_message_send(task=task, text=form.cleaned_data["text"])
    except TaskInputError as exc:
        messages.error(request, exc.message)
        return redirect("tasks:detail", task_id=task.pk)
    if isinstance(sent, CodingTask):
        messages.success(
            request,
            f"Task {task.pk} had finished: your message started task {sent.pk}, which "
            f"continues it with your message as its prompt.",
        )
        return redirect("tasks:detail", task_id=sent.pk)
    if sent.late:
        messages.success(
            request,
            "Message kept: the agent had answered everything and its run is ending. When the "
            "task finishes, your message starts a follow-up task.",
        )
    else:
        messages.success(request, "Message sent: the agent takes it at its next step.")
    return redirect("tasks:detail", task_id=task.pk)


def _follow_up_context(task: CodingTask) -> dict[str, object]:
    return {
        "task": task,
        "pr_blocker": pull_request_blocker(task=task),
        "continue_blocker": follow_up_blocker(task=task),
        "run_again_blocker": run_again_blocker(task=task),
    }
