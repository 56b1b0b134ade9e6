from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from common.errors import InputError

from .models import Environment, EnvironmentSnapshot, TaskEnvironment
from .services import environment_input_from_json, environment_values_check


class EnvironmentAdminForm(forms.ModelForm):
    class Meta:
        model = Environment
        fields = (
            "owner",
            "shared",
            "name",
            "image",
            "setup_script",
            "maintenance_script",
            "variables",
            "setup_egress",
            "setup_allow",
            "agent_egress",
            "agent_allow",
            "repo_patterns",
            "devcontainer",
        )

    def clean(self) -> dict[str, Any]:
        """The environment page's checks, the same function: the values it gives are saved."""
        super().clean()
        cleaned = self.cleaned_data
        owner = cleaned.get("owner")
        if owner is None or self.errors:  # those errors already say what to fix
            return cleaned
        saved = self.instance if self.instance.pk else None
        try:
            data = environment_input_from_json(fields=cleaned)
            values = environment_values_check(owner=owner, data=data, environment=saved)
        except InputError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
            return cleaned
        cleaned.update(values)
        return cleaned


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    form = EnvironmentAdminForm
    list_display = ("name", "owner", "shared", "image", "version", "updated_at")
    list_filter = ("shared", "image")
    search_fields = ("name", "owner__username")
    # The setup secrets are never shown, here neither (the form leaves them out): they are
    # edited on the environment's own page.
    readonly_fields = ("version", "created_at", "updated_at")

    def save_model(
        self, request: HttpRequest, obj: Environment, form: forms.Form, change: bool
    ) -> None:
        if change:  # any edit is a new version: older snapshots are not used again
            obj.version += 1
        super().save_model(request, obj, form, change)


@admin.register(EnvironmentSnapshot)
class EnvironmentSnapshotAdmin(admin.ModelAdmin):
    list_display = ("environment", "version", "owner", "repo_url", "size_bytes", "last_used_at")
    readonly_fields = [f.name for f in EnvironmentSnapshot._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(TaskEnvironment)
class TaskEnvironmentAdmin(admin.ModelAdmin):
    list_display = ("task", "name", "version", "cache", "setup_seconds", "setup_exit_code")
    readonly_fields = [f.name for f in TaskEnvironment._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
