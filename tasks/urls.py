from django.urls import path

from . import views

app_name = "tasks"

urlpatterns = [
    path("", views.task_list, name="list"),
    path("<int:task_id>/", views.task_detail, name="detail"),
    path("<int:task_id>/cancel/", views.task_cancel_view, name="cancel"),
    path(
        "<int:task_id>/run-now-with-api-key/",
        views.task_run_now_with_api_key_view,
        name="run_now_with_api_key",
    ),
]
