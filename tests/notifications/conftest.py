import pytest
from django.contrib.auth import get_user_model

from notifications.services import settings_get
from tests.fakes.smtp_server import SMTPServer
from tests.fakes.webhook_receiver import WebhookReceiver


@pytest.fixture
def smtp(settings):
    with SMTPServer() as server:
        settings.MAILERS = server.mailers()
        yield server


@pytest.fixture
def webhook(settings):
    with WebhookReceiver() as receiver:
        settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = [f"127.0.0.1:{receiver.port}"]
        yield receiver


@pytest.fixture
def listener(db, webhook):
    """A user who hears about everything by email and webhook."""
    user = get_user_model().objects.create_user(
        username="carol", password="pw-carol-123", email="carol@example.test"
    )
    chosen = settings_get(user=user)
    chosen.webhook_url = f"{webhook.url}/hook"
    chosen.webhook_host = "127.0.0.1"
    chosen.save()
    return user
