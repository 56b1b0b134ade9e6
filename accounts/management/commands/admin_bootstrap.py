from typing import Any

from django.core.management.base import BaseCommand

from accounts.services import admin_user_ensure


class Command(BaseCommand):
    help = "Create an admin account if there is none, and print its password once."

    def handle(self, *args: Any, **options: Any) -> None:
        username, password = admin_user_ensure()
        if password is None:
            self.stdout.write(
                f"Admin account exists: {username} (forgot the password? "
                f".venv/bin/python manage.py changepassword {username})"
            )
            return
        self.stdout.write(self.style.SUCCESS("Created the admin account. Shown once, note it:"))
        self.stdout.write(f"  username: {username}\n  password: {password}")
