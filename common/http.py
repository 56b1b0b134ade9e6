"""Request types for views, so that type checking knows what middleware has set.

Typing only: Django still passes a plain ``HttpRequest``. Every view sits behind
``LoginRequiredMiddleware`` (the few public ones say ``login_not_required``) and
``HtmxMiddleware``, so ``request.user`` is a real user and ``request.htmx`` exists.
"""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class AuthenticatedRequest(HttpRequest):
    user: User  # narrower than HttpRequest's User | AnonymousUser
    htmx: HtmxDetails
