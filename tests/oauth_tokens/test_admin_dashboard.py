"""The token health dashboard in the admin."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from oauth_tokens.models import CredentialStatus
from tests.oauth_tokens.test_admin import _assert_no_token, _bulk_credentials

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:oauth_tokens_oauthcredential_dashboard")


def _section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    return html[start : html.index("</div>", start)]


def _status_count(html: str, label: str) -> int:
    counts = _section(html, "status-counts")
    match = re.search(rf">{re.escape(label)}</span></a></th>\s*<td class=\"count\">(\d+)<", counts)
    assert match, f"no count for {label}"
    return int(match.group(1))


def test_index_links_the_dashboard(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{DASHBOARD}"' in html
    changelist = reverse("admin:oauth_tokens_oauthcredential_changelist")
    assert f'href="{DASHBOARD}"' in admin_client.get(changelist).content.decode()


def test_dashboard_counts_lists_and_chart(admin_client, make_credential):
    users = [get_user_model().objects.create_user(username=n) for n in "abcdefg"]
    soon = make_credential(users[0], expires_in=20 * 60)  # next hour, stored "valid"
    make_credential(users[1], expires_in=-60)  # expired (stored "valid")
    make_credential(users[2], expires_in=5 * 3600)  # within the day
    failing = make_credential(
        users[3],
        expires_in=3 * 86400,
        status=CredentialStatus.REFRESH_FAILED,
        consecutive_failures=3,
        last_refresh_error="OAuth token endpoint failed after 3 attempt(s): HTTP 503",
        last_refresh_attempt_at=timezone.now() - timedelta(minutes=2),
    )
    make_credential(
        users[4],
        expires_in=10 * 86400,  # beyond the chart
        status=CredentialStatus.INVALID,
        last_refresh_error="invalid_grant",
    )
    make_credential(users[5], expires_in=120)  # inside the 5 min buffer: expiring
    make_credential(users[6], expires_in=None, refresh=False)  # never expires

    response = admin_client.get(DASHBOARD)

    assert response.status_code == 200
    html = response.content.decode()
    _assert_no_token(html, soon, failing)
    assert "7 credentials" in html
    assert _status_count(html, "Valid") == 3  # the 20 min, 5 h and never-expiring ones
    assert _status_count(html, "Expiring soon") == 1
    assert _status_count(html, "Expired") == 1
    assert _status_count(html, "Refresh failed") == 1
    assert _status_count(html, "Invalid") == 1

    hour = _section(html, "expiring-hour")
    assert "Expire within the next hour (2)" in hour
    assert ">a</a>" in hour
    assert ">f</a>" in hour
    assert ">c</a>" not in hour
    assert hour.index(">f</a>") < hour.index(">a</a>")  # soonest first
    day = _section(html, "expiring-day")
    assert "Expire in 1 to 24 hours (1)" in day
    assert ">c</a>" in day
    failures = _section(html, "failures")
    assert "Recent refresh failures (2)" in failures
    assert ">d</a>" in failures
    assert "HTTP 503" in failures
    assert ">e</a>" in failures
    assert failures.index(">d</a>") < failures.index(">e</a>")  # latest attempt first

    start = html.index('id="expiry-chart"')
    chart = html[start : html.index("</svg>", start)]
    assert chart.count("<g>") == 7  # one bar per day
    assert "Today" in chart
    assert "<script" not in html.split('id="content-main"')[1]
    total_in_chart = sum(int(n) for n in re.findall(r"<title>(\d+) expire on", chart))
    assert total_in_chart == 4  # a, c, d, f (b has expired, e is beyond, g never expires)


def test_dashboard_links_to_filtered_lists(admin_client, make_credential, user):
    make_credential(user, expires_in=-60)
    html = admin_client.get(DASHBOARD).content.decode()
    changelist = reverse("admin:oauth_tokens_oauthcredential_changelist")
    assert f'href="{changelist}?status=expired"' in html
    response = admin_client.get(changelist, {"status": "expired"})
    assert ">alice</a>" in response.content.decode()


def test_lists_are_capped_with_a_link_to_the_rest(admin_client):
    _bulk_credentials(120)
    html = admin_client.get(DASHBOARD).content.decode()
    day = _section(html, "expiring-day")
    counted = re.search(r"Expire in 1 to 24 hours \((\d+)\)", day)
    assert counted is not None
    total = int(counted.group(1))
    assert total > 25
    assert day.count('<th scope="row">') == 25
    assert f"All {total} in the list of credentials" in day


@pytest.mark.parametrize("count", [5, 300])
def test_dashboard_queries_do_not_grow(admin_client, django_assert_max_num_queries, count):
    _bulk_credentials(count)
    with django_assert_max_num_queries(6):
        response = admin_client.get(DASHBOARD)
    assert response.status_code == 200
