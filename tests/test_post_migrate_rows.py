"""Transactional tests one after another: each starts with every content type and permission
the app's models need, with the ids the admin's links and permission checks use."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from tasks.models import CodingTask

pytestmark = pytest.mark.xdist_group("post-migrate-rows")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("run", range(3))
def test_each_transactional_test_has_the_content_types_and_permissions(run: int) -> None:
    task_type = ContentType.objects.get_for_model(CodingTask)
    assert ContentType.objects.get(app_label="tasks", model="codingtask") == task_type
    assert Permission.objects.filter(content_type=task_type).count() == 4
    user = get_user_model().objects.create_user(username=f"u{run}", password="pw-0123456789")
    user.user_permissions.add(Permission.objects.get(codename="view_codingtask"))
    user = get_user_model().objects.get(pk=user.pk)
    assert user.has_perm("tasks.view_codingtask")
    assert get_user_model().objects.count() == 1  # the previous run's rows are gone
