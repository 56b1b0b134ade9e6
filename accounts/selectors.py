from django.contrib.auth.models import User

from .models import UserPreferences


def preferences_get(*, user: User) -> UserPreferences:
    """The user's preferences, created with defaults on first use."""
    preferences, _ = UserPreferences.objects.get_or_create(user=user)
    return preferences
