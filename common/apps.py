from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Common"

    def ready(self) -> None:
        # Its signal handlers import models: only once the apps are loaded.
        from . import encryption

        encryption.connect_signals()
