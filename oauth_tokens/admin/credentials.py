"""Token health in the admin: a credentials list, a dashboard, and two actions.

No token is ever shown, loaded or editable here: querysets defer the encrypted columns, forms
exclude them, and the change page is read-only (saving a stale copy of a row would write an
old refresh token back over a rotated one).
"""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone

from ..models import OAuthCredential
from ..selectors import credentials_health_list
from ..services import RefreshOutcomeKind, credential_mark_invalid, credentials_refresh_many
from ..token_client import redact
from .dashboard import dashboard_context
from .display import (
    credential_status_badge,
    expiry_html,
    last_error_html,
    now_and_buffer,
    owner_text,
)
from .filters import CurrentStatusFilter, ExpiryWindowFilter, FailingFilter

# A refresh runs inside the admin request: keep it short, send bigger batches to the command.
ADMIN_REFRESH_MAX = 200
ADMIN_REFRESH_CONCURRENCY = 8


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
        "last_accepted_at",
        "refused_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    # -- queries ----------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[OAuthCredential]:
        now, buffer = now_and_buffer()
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
        return owner_text(obj)

    @admin.display(description="status", ordering="current_status")
    def status_badge(self, obj: OAuthCredential) -> str:
        return credential_status_badge(obj)

    @admin.display(description="expires", ordering=F("expires_at").asc(nulls_last=True))
    def expires_in(self, obj: OAuthCredential) -> str:
        return expiry_html(obj.expires_at, timezone.now())

    @admin.display(description="last error (redacted)")
    def last_error(self, obj: OAuthCredential) -> str:
        return last_error_html(obj)

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
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            **dashboard_context(),
        }
        return TemplateResponse(request, "admin/oauth_tokens/dashboard.html", context)
