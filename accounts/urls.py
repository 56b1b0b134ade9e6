from django.contrib.auth import views as auth_views
from django.urls import path

from . import views
from .forms import LoginForm

app_name = "accounts"

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="accounts/login.html",
            authentication_form=LoginForm,
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("settings/code-agent/", views.code_agent_settings, name="code_agent_settings"),
    path(
        "settings/code-agent/validate/<slug:field>/",
        views.code_agent_settings_validate,
        name="code_agent_settings_validate",
    ),
    path(
        "settings/code-agent/tokens/refresh/",
        views.code_agent_tokens_refresh,
        name="code_agent_tokens_refresh",
    ),
    path(
        "settings/code-agent/tokens/remove/",
        views.code_agent_tokens_remove,
        name="code_agent_tokens_remove",
    ),
    path(
        "settings/code-agent/api-key/remove/",
        views.code_agent_api_key_remove,
        name="code_agent_api_key_remove",
    ),
    path(
        "settings/code-agent/when-limited/",
        views.code_agent_when_limited,
        name="code_agent_when_limited",
    ),
    path(
        "settings/code-agent/environment/remove/",
        views.code_agent_env_remove,
        name="code_agent_env_remove",
    ),
]
