from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Coding tasks"

    def ready(self) -> None:
        # The receivers import models: only once the apps are loaded.
        from . import follow_ups

        follow_ups.receivers_connect()
