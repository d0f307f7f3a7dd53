"""Routes of the frontend service."""

from django.urls import include, path

from frontend import views

urlpatterns = [
    path("", views.live_page, name="live-page"),
    path("startup", views.startup, name="startup"),
    path("who-am-i", views.who_am_i, name="who-am-i"),
    path("health", views.health, name="health"),
    path("", include("podkit.urls")),  # /livez, /readyz
]
