from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.selectors import limit_state_get
from common.http import AuthenticatedRequest

from .chart import usage_chart
from .selectors import usage_by_day


def usage_page(request: AuthenticatedRequest) -> HttpResponse:
    now = timezone.now()
    days = usage_by_day(user=request.user, now=now)
    metric = request.GET.get("metric", "tokens")
    if metric not in ("tokens", "tasks", "cost"):
        metric = "tokens"
    totals = {
        "tasks": sum(d.tasks for d in days),
        "tokens": sum(d.tokens for d in days),
        "cost": sum((d.cost for d in days), start=0),
    }
    return render(
        request,
        "usage/usage.html",
        {
            "days": list(reversed(days)),
            "chart": usage_chart(days, metric=metric),
            "totals": totals,
            "limit": limit_state_get(user=request.user, now=now),
            "metric": metric,
        },
    )
