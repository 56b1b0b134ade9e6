from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh

from accounts.selectors import preferences_get
from common.errors import InputError
from common.http import AuthenticatedRequest
from environments.selectors import task_environment_get
from environments.services import CHOICE_AUTO
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
from .selectors import chain_turns, diff_lines, task_get_for_user, tasks_for_user
from .services import task_cancel, task_run_now_with_api_key, task_submit
from .validation import TaskInputError


@never_cache
@require_http_methods(["GET", "POST"])
def task_list(request: AuthenticatedRequest) -> HttpResponse:
    form = TaskForm(request.POST or None, user=request.user)
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
    return render(request, "tasks/list.html", {"form": form, "page": page})


@never_cache
def task_detail(request: AuthenticatedRequest, task_id: int) -> HttpResponse:
    task = task_get_for_user(user=request.user, task_id=task_id)
    context = {
        "task": task,
        "diff": diff_lines(diff=task.diff),
        "wait_words": wait_words(task=task, now=timezone.now()),
        "has_api_key": preferences_get(user=request.user).has_api_key,
        "environment_run": task_environment_get(task_id=task.pk),
    }
    if not request.htmx:
        context |= _follow_up_context(task)
        context |= {
            "chain": chain_turns(task=task),
            "continue_form": ContinueForm(),
            "message_form": MessageForm(),
        }
    # HTMX polls only the live part while the task runs.
    template = "tasks/_live.html" if request.htmx else "tasks/detail.html"
    if request.htmx and task.is_finished:
        return HttpResponseClientRefresh()  # show the full result once, then stop polling
    return render(request, template, context)


@never_cache
@require_POST
def task_cancel_view(request: AuthenticatedRequest, task_id: int) -> HttpResponse:
    task = task_get_for_user(user=request.user, task_id=task_id)
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
    if task_run_now_with_api_key(task=task):
        messages.success(request, "Running now with your API key.")
    else:
        messages.warning(
            request,
            "Not started: the task is not waiting any more, you have no API key saved, or your "
            "running slots are all taken (it then starts by itself when one is free).",
        )
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
            request, f"Task {task.pk} had finished: your message started task {sent.pk}."
        )
        return redirect("tasks:detail", task_id=sent.pk)
    messages.success(request, "Message sent: the agent takes it at its next step.")
    return redirect("tasks:detail", task_id=task.pk)


def _follow_up_context(task: CodingTask) -> dict[str, object]:
    return {
        "task": task,
        "pr_blocker": pull_request_blocker(task=task),
        "continue_blocker": follow_up_blocker(task=task),
        "run_again_blocker": run_again_blocker(task=task),
    }
