import pytest
from django.contrib.auth import get_user_model


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(username="alice", password="pw-alice-123")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user(username="bob", password="pw-bob-123")


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client
