from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # The receivers import models: only once the apps are loaded.
        from . import receivers

        receivers.connect()
