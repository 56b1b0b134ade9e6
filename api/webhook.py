"""POST /api/github/webhook: GitHub's deliveries (issue and review comments)."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .mentions import WebhookRefused, github_delivery_receive
from .routes import api_view

_BODY_MAX_BYTES = 1024 * 1024  # GitHub caps payloads at 25 MB; a comment event is far smaller


@csrf_exempt  # GitHub signs the body instead (X-Hub-Signature-256)
@api_view  # no login session; a wrong method is the API's JSON 405
@require_POST
def github_webhook(request: HttpRequest) -> JsonResponse:
    if int(request.headers.get("Content-Length") or 0) > _BODY_MAX_BYTES:
        return JsonResponse({"code": "too_large", "message": "The body is too big."}, status=413)
    try:
        outcome = github_delivery_receive(
            delivery_id=request.headers.get("X-GitHub-Delivery", ""),
            event=request.headers.get("X-GitHub-Event", ""),
            signature=request.headers.get("X-Hub-Signature-256", ""),
            body=request.body,
        )
    except WebhookRefused as exc:
        return JsonResponse({"code": "refused", "message": exc.message}, status=exc.status)
    return JsonResponse({"outcome": outcome})
