from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, object]:
    # Not "site_name": auth views (login) set that to the host name and would win.
    return {"signup_enabled": settings.ACCOUNTS_ALLOW_SIGNUP, "app_name": "Claude Runner"}
