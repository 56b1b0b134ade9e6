from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API"

    def ready(self) -> None:
        # The receiver imports models: only once the apps are loaded.
        from . import replies

        replies.connect()
