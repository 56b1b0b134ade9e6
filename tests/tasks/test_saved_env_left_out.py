"""A saved extra-environment value that today's rules refuse (a lone surrogate, saved before the
rule existed) is left out of the task with a note, instead of failing every task."""

import pytest

from accounts.selectors import preferences_get
from tasks.models import TaskStatus
from tasks.services import task_create

from .conftest import auth_report, set_api_key

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


def test_a_saved_unwritable_value_is_left_out_and_the_task_still_runs(
    agent_settings, user, local_repo
):
    set_api_key(user, "sk-ant-api03-key-for-left-out-env-0047")
    preferences = preferences_get(user=user)
    preferences.agent_env = {"GITHUB_TOKEN": "ghp_fine_value_0123456789", "BROKEN": "x\ud800"}
    preferences.save()
    task = task_create(owner=user, repo_url=local_repo, prompt="REPORT_AUTH SLEEP:1")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, task.error_message
    names = auth_report(task)["env_names"]
    assert "GITHUB_TOKEN" in names
    assert "BROKEN" not in names
    assert "Saved environment variable BROKEN left out: The value contains an unpaired" in task.log
