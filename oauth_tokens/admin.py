"""Token health in the admin: a credentials list, a dashboard, and two actions.

No token is ever shown, loaded or editable here: querysets defer the encrypted columns, forms
exclude them, and the change page is read-only (saving a stale copy of a row would write an
old refresh token back over a rotated one).
"""

from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.timesince import timesince, timeuntil

from .models import CredentialStatus, OAuthCredential
from .selectors import (
    EXPIRY_NEVER,
    EXPIRY_WINDOWS,
    ExpiryBucket,
    credential_health_dashboard,
    credential_status_compute,
    credentials_failing,
    credentials_health_list,
    credentials_in_expiry_window,
)
from .services import (
    RefreshOutcomeKind,
    credential_mark_invalid,
    credentials_refresh_many,
    refresh_buffer,
)
from .token_client import redact

# A refresh runs inside the admin request: keep it short, send bigger batches to the command.
ADMIN_REFRESH_MAX = 200
ADMIN_REFRESH_CONCURRENCY = 8

_ERROR_CHARS = 80


def _now_and_buffer() -> tuple[datetime, timedelta]:
    return timezone.now(), refresh_buffer()


def status_badge_html(status: str) -> str:
    # Classes, not inline styles, so a strict Content-Security-Policy keeps them.
    label = CredentialStatus(status).label if status in CredentialStatus.values else status
    return format_html('<span class="token-status token-status-{}">{}</span>', status, label)


def expiry_html(expires_at: datetime | None, now: datetime) -> str:
    """ "in 3 hours, 4 minutes" with the exact local time under it."""
    if expires_at is None:
        return "never"
    words = (
        f"in {timeuntil(expires_at, now)}"
        if expires_at > now
        else f"expired {timesince(expires_at, now)} ago"
    )
    local = timezone.localtime(expires_at)
    return format_html(
        '{}<br><time datetime="{}" class="quiet token-expiry-exact">{}</time>',
        words,
        expires_at.isoformat(),
        date_format(local, "Y-m-d H:i:s T"),
    )


class CurrentStatusFilter(admin.SimpleListFilter):
    """By the status that holds now ("expired" follows the clock, not the stored column)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> Any:
        return CredentialStatus.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in CredentialStatus.values:
            return queryset.filter(current_status=self.value())
        return queryset


class ExpiryWindowFilter(admin.SimpleListFilter):
    title = "expires"
    parameter_name = "expires"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> Any:
        return [(key, label) for key, (label, _lo, _hi) in EXPIRY_WINDOWS.items()] + [
            (EXPIRY_NEVER, "Never")
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if window := self.value():
            return credentials_in_expiry_window(queryset, window=window, now=timezone.now())
        return queryset


class FailingFilter(admin.SimpleListFilter):
    title = "refresh failing"
    parameter_name = "failing"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> Any:
        return [("yes", "Yes")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return credentials_failing(queryset) if self.value() == "yes" else queryset


@admin.register(OAuthCredential)
class OAuthCredentialAdmin(admin.ModelAdmin):
    list_display = (
        "owner_display",
        "kind",
        "source",
        "status_badge",
        "expires_in",
        "last_refreshed_at",
        "consecutive_failures",
        "last_error",
        "last_used_at",
    )
    list_display_links = ("owner_display",)
    list_filter = (CurrentStatusFilter, "kind", "source", ExpiryWindowFilter, FailingFilter)
    search_fields = ("owner__username", "owner__email")
    list_select_related = ("owner",)
    # Soonest expiry first; credentials that never expire last on every database.
    ordering = (F("expires_at").asc(nulls_last=True), "pk")
    list_per_page = 100
    show_full_result_count = False  # one COUNT less on every filtered page
    actions = ("refresh_selected", "mark_invalid")
    change_list_template = "admin/oauth_tokens/oauthcredential/change_list.html"

    # The change page is read-only and lists health only; tokens are excluded from any form.
    exclude = ("access_token", "refresh_token", "refresh_claim", "seed_fingerprint")
    fields = (
        "owner_display",
        "kind",
        "source",
        "status_badge",
        "expires_in",
        "scopes",
        "subscription_type",
        "rate_limit_tier",
        "last_refreshed_at",
        "last_refresh_attempt_at",
        "refresh_in_progress",
        "consecutive_failures",
        "refresh_count",
        "last_error_full",
        "last_used_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    # -- queries ----------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[OAuthCredential]:
        now, buffer = _now_and_buffer()
        return credentials_health_list(now=now, buffer=buffer)

    # -- permissions ------------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens come from the settings page, the environment or an import

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # No editing of a row (view only), but the list's actions need change permission.
        if obj is not None:
            return False
        return super().has_change_permission(request)

    # -- columns ----------------------------------------------------------------------------

    @admin.display(description="owner", ordering="owner__username")
    def owner_display(self, obj: OAuthCredential) -> str:
        return obj.owner.get_username() if obj.owner_id else "global"  # type: ignore[union-attr]

    @admin.display(description="status", ordering="current_status")
    def status_badge(self, obj: OAuthCredential) -> str:
        status = getattr(obj, "current_status", None)
        if status is None:
            now, buffer = _now_and_buffer()
            status = credential_status_compute(credential=obj, now=now, buffer=buffer)
        return status_badge_html(status)

    @admin.display(description="expires", ordering=F("expires_at").asc(nulls_last=True))
    def expires_in(self, obj: OAuthCredential) -> str:
        return expiry_html(obj.expires_at, timezone.now())

    @admin.display(description="last error (redacted)")
    def last_error(self, obj: OAuthCredential) -> str:
        if not obj.last_refresh_error:
            return "-"
        text = redact(obj.last_refresh_error)
        return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(_ERROR_CHARS))

    @admin.display(description="last error (redacted)")
    def last_error_full(self, obj: OAuthCredential) -> str:
        return redact(obj.last_refresh_error) or "-"

    @admin.display(description="refresh in progress", boolean=True)
    def refresh_in_progress(self, obj: OAuthCredential) -> bool:
        until = obj.refresh_claimed_until
        return bool(obj.refresh_claim and until and until > timezone.now())

    # -- actions ----------------------------------------------------------------------------

    @admin.action(description="Refresh selected credentials now", permissions=["change"])
    def refresh_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        ids = list(queryset.values_list("pk", flat=True)[: ADMIN_REFRESH_MAX + 1])
        if len(ids) > ADMIN_REFRESH_MAX:
            self.message_user(
                request,
                f"Refresh at most {ADMIN_REFRESH_MAX} credentials here; for more run "
                "`manage.py refresh_tokens` (see its --all, --within and --user options).",
                messages.WARNING,
            )
            return
        summary = credentials_refresh_many(
            credential_ids=ids, force=True, concurrency=ADMIN_REFRESH_CONCURRENCY
        )
        level = messages.ERROR if summary.failed else messages.SUCCESS
        self.message_user(
            request,
            f"Refreshed {summary.refreshed}, skipped {summary.skipped}, failed {summary.failed}.",
            level,
        )
        for outcome in summary.outcomes:
            if outcome.outcome != RefreshOutcomeKind.REFRESHED:
                self.message_user(
                    request,
                    f"{outcome.outcome.capitalize()} {outcome.label}: {outcome.reason}",
                    messages.ERROR
                    if outcome.outcome == RefreshOutcomeKind.FAILED
                    else messages.WARNING,
                )

    @admin.action(description="Mark selected credentials invalid", permissions=["change"])
    def mark_invalid(self, request: HttpRequest, queryset: QuerySet) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        count = credential_mark_invalid(
            credential_ids=ids,
            reason=f"Marked invalid in the admin by {request.user.get_username()}",
        )
        self.message_user(
            request,
            f"Marked {count} credential(s) invalid. They are not used or refreshed until "
            "their users save new tokens.",
            messages.SUCCESS,
        )

    # -- dashboard --------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        dashboard = path(
            "dashboard/",
            self.admin_site.admin_view(self.dashboard_view),
            name="oauth_tokens_oauthcredential_dashboard",
        )
        return [dashboard, *super().get_urls()]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        now, buffer = _now_and_buffer()
        dashboard = credential_health_dashboard(now=now, buffer=buffer)
        changelist = reverse("admin:oauth_tokens_oauthcredential_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Token health",
            "opts": self.model._meta,
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
            "expiring_hour": [self._row(c, now) for c in dashboard.expiring_hour],
            "expiring_day": [self._row(c, now) for c in dashboard.expiring_day],
            "failures": [self._row(c, now) for c in dashboard.failures],
            "chart": _expiry_chart(dashboard.expiry_days),
            "buffer_minutes": int(buffer.total_seconds() // 60),
        }
        return TemplateResponse(request, "admin/oauth_tokens/dashboard.html", context)

    def _row(self, credential: OAuthCredential, now: datetime) -> dict[str, Any]:
        return {
            "owner": self.owner_display(credential),
            "url": reverse("admin:oauth_tokens_oauthcredential_change", args=[credential.pk]),
            "kind": credential.get_kind_display(),
            "status": self.status_badge(credential),
            "expires": expiry_html(credential.expires_at, now),
            "failures": credential.consecutive_failures,
            "error": self.last_error(credential),
            "last_attempt": credential.last_refresh_attempt_at,
        }


# Geometry of the server-rendered SVG bar chart (no scripts).
_CHART_BAR = 56
_CHART_GAP = 14
_CHART_HEIGHT = 140
_CHART_TOP = 18  # room for the count above the tallest bar
_CHART_LABEL = 34  # room for two lines of day label under the bars


def _expiry_chart(buckets: list[ExpiryBucket]) -> dict[str, Any]:
    peak = max((bucket.count for bucket in buckets), default=0) or 1
    bars = []
    for i, bucket in enumerate(buckets):
        height = round(bucket.count / peak * _CHART_HEIGHT) if bucket.count else 0
        x = _CHART_GAP + i * (_CHART_BAR + _CHART_GAP)
        y = _CHART_TOP + _CHART_HEIGHT - height
        bars.append(
            {
                "x": x,
                "y": y,
                "height": height,
                "width": _CHART_BAR,
                "centre": x + _CHART_BAR // 2,
                "count": bucket.count,
                "count_y": y - 4,
                "weekday": "Today" if i == 0 else date_format(bucket.day, "D"),
                "date": date_format(bucket.day, "j M"),
                "title": f"{bucket.count} expire on {date_format(bucket.day, 'l j F')}",
            }
        )
    baseline = _CHART_TOP + _CHART_HEIGHT
    return {
        "bars": bars,
        "width": _CHART_GAP + len(buckets) * (_CHART_BAR + _CHART_GAP),
        "height": baseline + _CHART_LABEL,
        "baseline": baseline,
        "label_y": baseline + 14,
        "label2_y": baseline + 28,
    }
