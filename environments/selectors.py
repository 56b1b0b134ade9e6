"""Reading environments: which a user may use or edit, which one a repository gets."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet
from django.http import Http404

from .models import Environment, TaskEnvironment
from .validation import repo_matches, variable_name_allowed

type AnyUser = AbstractBaseUser | AnonymousUser


def environments_for_user(*, user: AnyUser) -> QuerySet[Environment]:
    """The user's own environments and every shared one, own first."""
    return (
        Environment.objects.filter(Q(owner_id=user.pk) | Q(shared=True))
        .select_related("owner")
        .order_by("shared", "name", "pk")
    )


def environment_get_for_user(*, user: AnyUser, environment_id: int) -> Environment:
    """One the user may edit (their own): 404 for anyone else's, shared ones included, so an id
    says nothing about whether it exists."""
    found = Environment.objects.filter(pk=environment_id, owner_id=user.pk).first()
    if found is None:
        raise Http404("No such environment.")
    return found


def environment_usable(*, user: AnyUser, environment_id: int) -> Environment | None:
    return environments_for_user(user=user).filter(pk=environment_id).first()


def environment_for_task(*, user: AnyUser, repo_url: str) -> Environment | None:
    """The environment a task on repo_url gets by default: among the user's own and the shared
    ones whose patterns match it, the user's own first, then the longest matching pattern (the
    most specific), then the name."""
    best: tuple[int, int, str] | None = None
    chosen = None
    for environment in environments_for_user(user=user):
        lengths = [
            len(p) for p in environment.repo_patterns if repo_matches(pattern=p, url=repo_url)
        ]
        if not lengths:
            continue
        rank = (0 if environment.owner_id == user.pk else 1, -max(lengths), environment.name)
        if best is None or rank < best:
            best, chosen = rank, environment
    return chosen


def environment_secrets_for(*, environment: Environment, user_id: int) -> dict[str, str]:
    """The setup secrets a task of user_id's setup gets: its owner's alone. A shared
    environment's setup runs each user's repository code, so another user's task gets none
    (sharing one with secrets is refused; this holds for one saved before that rule)."""
    if environment.owner_id != user_id:
        return {}
    return dict(environment.setup_secrets or {})


def environment_variables_for(*, environment: Environment) -> dict[str, str]:
    """The variables both phases' containers get: those today's rules allow (one saved before
    a rule existed, NODE_OPTIONS say, is left out)."""
    return {
        name: value
        for name, value in environment.variables.items()
        if isinstance(value, str) and variable_name_allowed(name=name)
    }


def task_environment_get(*, task_id: int) -> TaskEnvironment | None:
    return TaskEnvironment.objects.filter(pk=task_id).select_related("environment").first()
