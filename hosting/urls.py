from django.urls import path

from . import views

app_name = "hosting"

urlpatterns = [
    path("github/check/", views.github_check, name="github_check"),
    path("github/save/", views.github_save, name="github_save"),
    path("github/remove/", views.github_remove, name="github_remove"),
]
