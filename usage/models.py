from django.contrib.auth.models import User


class UserUsage(User):
    """Users, seen by what their tasks used (the admin's "usage by user")."""

    class Meta:
        proxy = True
        # Counted as users ("2 users' usage"), listed as "Users' usage" in the admin's index.
        verbose_name = "user's usage"
        verbose_name_plural = "users' usage"
