from django.urls import path

from . import views

app_name = "tasks"

urlpatterns = [
    path("", views.task_list, name="list"),
    path("<int:task_id>/", views.task_detail, name="detail"),
    path("<int:task_id>/live/", views.task_live, name="live"),
    path("<int:task_id>/cancel/", views.task_cancel_view, name="cancel"),
    path(
        "<int:task_id>/run-now-with-api-key/",
        views.task_run_now_with_api_key_view,
        name="run_now_with_api_key",
    ),
    path("<int:task_id>/pull-request/", views.task_pull_request_view, name="pull_request"),
    path(
        "<int:task_id>/pull-request/status/",
        views.task_pull_request_status,
        name="pull_request_status",
    ),
    path("<int:task_id>/continue/", views.task_continue_view, name="continue"),
    path("<int:task_id>/run-again/", views.task_run_again_view, name="run_again"),
    path("<int:task_id>/message/", views.task_message_view, name="message"),
]
