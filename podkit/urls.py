"""Routes both services include (`path("", include("podkit.urls"))`): the probes, /metrics, /version."""

from django.urls import path

from podkit import metrics, views

urlpatterns = [
    path("livez", views.livez, name="livez"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("version", views.version, name="version"),
]
