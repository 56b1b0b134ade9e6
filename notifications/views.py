from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from common.errors import InputError
from common.http import AuthenticatedRequest

from .forms import NotificationSettingsForm
from .models import Delivery
from .selectors import email_channel_get
from .services import notification_settings_save, settings_get


@never_cache
@sensitive_post_parameters("webhook_url")
@require_http_methods(["GET", "POST"])
def notification_settings(request: AuthenticatedRequest) -> HttpResponse:
    chosen = settings_get(user=request.user)
    email = email_channel_get(user=request.user)
    form = NotificationSettingsForm(
        request.POST or None,
        initial={"events": chosen.events, "email_enabled": chosen.email_enabled and email.usable},
        email_usable=email.usable,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        webhook = "" if data["remove_webhook"] else (data["webhook_url"] or None)
        try:
            notification_settings_save(
                user=request.user,
                events=data["events"],
                email_enabled=data["email_enabled"],
                webhook_url=webhook,
            )
        except InputError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, "Notification settings saved.")
            return redirect("notifications:settings")
    recent = Delivery.objects.filter(recipient=request.user).order_by("-created_at")[:10]
    return render(
        request,
        "notifications/settings.html",
        {"form": form, "chosen": chosen, "recent": recent, "email": email},
    )
