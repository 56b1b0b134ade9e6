from django import forms
from django.contrib import admin
from django.http import HttpRequest

from common.errors import InputError

from .models import Environment, EnvironmentSnapshot, TaskEnvironment
from .validation import image_check


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

    def clean_image(self) -> str:
        try:
            return image_check(image=self.cleaned_data["image"])
        except InputError as exc:
            raise forms.ValidationError(exc.message) from None


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
