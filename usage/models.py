from django.contrib.auth.models import User


class UserUsage(User):
    """Users, seen by what their tasks used (the admin's "usage by user")."""

    class Meta:
        proxy = True
        verbose_name = "usage by user"
        verbose_name_plural = "usage by user"
