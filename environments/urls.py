from django.urls import path

from . import views

app_name = "environments"

urlpatterns = [
    path("", views.environment_list, name="list"),
    path("new/", views.environment_create, name="create"),
    path("<int:environment_id>/", views.environment_edit, name="edit"),
    path("<int:environment_id>/delete/", views.environment_delete_view, name="delete"),
    path("<int:environment_id>/reset-cache/", views.environment_cache_reset_view, name="reset"),
]
