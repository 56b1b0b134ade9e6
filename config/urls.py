from django.contrib import admin
from django.urls import include, path

from accounts.forms import AdminLoginForm
from api.routes import api_urls
from api.webhook import github_webhook

from . import views

# The admin's login says how many tries are left before the lockout, as ours does.
admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("tasks/", include("tasks.urls")),
    path("environments/", include("environments.urls")),
    path("settings/notifications/", include("notifications.urls")),
    path("settings/api-tokens/", include("api.urls")),
    path("api/github/webhook", github_webhook, name="github_webhook"),
    path("api/", api_urls()),
    path("usage/", include("usage.urls")),
    path("hosting/", include("hosting.urls")),
    path("admin/", admin.site.urls),
]
