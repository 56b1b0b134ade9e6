"""Background entry points (django.tasks): call the services, decide nothing."""

from django.tasks import task

from .services import delivery_send


@task()
def send_notification(delivery_id: int) -> None:
    delivery_send(delivery_id=delivery_id)
