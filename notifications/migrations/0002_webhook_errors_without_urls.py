"""Errors recorded before webhook failures were described safely repeat the webhook's URL
(its path is the secret of a Slack webhook): keep only the exception's class."""

from django.db import migrations


def _scrub(apps, schema_editor):
    Delivery = apps.get_model("notifications", "Delivery")
    leaked = Delivery.objects.filter(channel="webhook").exclude(last_error="")
    ours = ("InputError", "WebhookAnswered", "RuntimeError: the webhook answered")
    for start in ours:
        leaked = leaked.exclude(last_error__startswith=start)
    for delivery in leaked:
        name = delivery.last_error.split(":", 1)[0].split(" ", 1)[0]
        Delivery.objects.filter(pk=delivery.pk).update(last_error=f"{name} (details removed)")


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_notification_settings_and_deliveries")]

    operations = [migrations.RunPython(_scrub, migrations.RunPython.noop)]
