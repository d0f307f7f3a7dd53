"""Routes of the backend service."""

from django.urls import include, path

from backend import views

urlpatterns = [
    path("get-config", views.get_config, name="get-config"),
    path("ping", views.ping, name="ping"),
    path("game-over", views.game_over, name="game-over"),
    path("", include("podkit.urls")),  # /livez, /readyz
]
