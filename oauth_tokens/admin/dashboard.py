"""The token-health dashboard: its context (counts, lists, an expiry chart drawn as SVG)."""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils.dateformat import format as date_format

from common.svg_chart import BarChartShape, bar_chart

from ..models import CredentialStatus, OAuthCredential
from ..selectors import ExpiryBucket, credential_health_dashboard
from ..token_client import USER_AGENT_SETTING
from .display import (
    credential_status_badge,
    expiry_html,
    last_error_html,
    now_and_buffer,
    owner_text,
    status_badge_html,
)


def dashboard_context() -> dict[str, Any]:
    """What the dashboard template shows (the admin view adds the admin site's own context)."""
    now, buffer = now_and_buffer()
    dashboard = credential_health_dashboard(now=now, buffer=buffer)
    changelist = reverse("admin:oauth_tokens_oauthcredential_changelist")
    return {
        "title": "Token health",
        "dashboard": dashboard,
        "changelist_url": changelist,
        "status_rows": [
            {
                "badge": status_badge_html(value),
                "count": dashboard.status_counts[value],
                "url": f"{changelist}?status={value}",
            }
            for value in CredentialStatus.values
        ],
        "expiring_hour": [_row(c, now) for c in dashboard.expiring_hour],
        "expiring_day": [_row(c, now) for c in dashboard.expiring_day],
        "failures": [_row(c, now) for c in dashboard.failures],
        "chart": _expiry_chart(dashboard.expiry_days),
        "buffer_minutes": int(buffer.total_seconds() // 60),
        "edge_blocked": dashboard.edge_blocked_count,
        "user_agent": settings.CLAUDE_OAUTH_USER_AGENT,
        "user_agent_setting": USER_AGENT_SETTING,
    }


def _row(credential: OAuthCredential, now: datetime) -> dict[str, Any]:
    return {
        "owner": owner_text(credential),
        "url": reverse("admin:oauth_tokens_oauthcredential_change", args=[credential.pk]),
        "kind": credential.get_kind_display(),
        "status": credential_status_badge(credential),
        "expires": expiry_html(credential.expires_at, now),
        "failures": credential.consecutive_failures,
        "error": last_error_html(credential),
        "last_attempt": credential.last_refresh_attempt_at,
    }


# Geometry of the server-rendered SVG bar chart (no scripts).
# Room above the bars for each count, and two lines of day label under them.
_CHART = BarChartShape(bar=56, gap=14, height=140, top=18, label=34)


def _expiry_chart(buckets: list[ExpiryBucket]) -> dict[str, Any]:
    chart = bar_chart([bucket.count for bucket in buckets], shape=_CHART)
    for i, (bar, bucket) in enumerate(zip(chart["bars"], buckets, strict=True)):
        bar.update(
            count=bucket.count,
            count_y=bar["y"] - 4,
            weekday="Today" if i == 0 else date_format(bucket.day, "D"),
            date=date_format(bucket.day, "j M"),
            title=f"{bucket.count} expire on {date_format(bucket.day, 'l j F')}",
        )
    return chart
