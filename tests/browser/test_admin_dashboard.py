"""The operators' token-health dashboard, rendered in a real browser: no token on the page."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from oauth_tokens.models import CredentialStatus, OAuthCredential


def test_dashboard_shows_health_and_never_a_token(page, live_server, screenshot, make_credential):
    users = get_user_model().objects
    admin = users.create_superuser("ops", password="pw-ops-123")
    soon = make_credential(users.create_user("soon"), expires_in=1200)
    make_credential(users.create_user("later"), expires_in=3 * 24 * 3600)
    failing = make_credential(users.create_user("failing"), expires_in=-60)
    OAuthCredential.objects.filter(pk=failing.pk).update(
        status=CredentialStatus.INVALID,
        last_refresh_error="OAuth token endpoint said invalid_grant",
        consecutive_failures=2,
        last_refresh_attempt_at=timezone.now() - timedelta(minutes=5),
    )
    page.goto(f"{live_server.url}/accounts/login/?next=/admin/")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", "pw-ops-123")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/admin/oauth_tokens/oauthcredential/dashboard/")
    content = page.content()
    assert "invalid_grant" in content
    assert "soon" in content
    assert "<svg" in content
    assert soon.access_token not in content
    assert soon.refresh_token not in content
    assert "sk-ant-" not in content
    screenshot("admin-01-dashboard")
    page.goto(f"{live_server.url}/admin/oauth_tokens/oauthcredential/")
    assert "sk-ant-" not in page.content()
    screenshot("admin-02-credentials")
