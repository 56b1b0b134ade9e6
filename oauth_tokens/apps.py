from django.apps import AppConfig


class OAuthTokensConfig(AppConfig):
    name = "oauth_tokens"
    verbose_name = "Claude OAuth tokens"
