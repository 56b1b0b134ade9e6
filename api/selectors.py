from django.contrib.auth.models import User
from django.db.models import QuerySet

from .models import ApiToken


def api_tokens_for_user(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(owner=user).defer("secret_hash")
