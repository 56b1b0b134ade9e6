"""The credentials list's filters: by the status that holds now, by expiry window, failing."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ..models import CredentialStatus
from ..selectors import (
    EXPIRY_NEVER,
    EXPIRY_WINDOWS,
    credentials_failing,
    credentials_in_expiry_window,
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
