"""Routes of the probe endpoints both services include: `path("", include("podkit.urls"))`."""

from django.urls import path

from podkit import views

urlpatterns = [
    path("livez", views.livez, name="livez"),
    path("readyz", views.readyz, name="readyz"),
]
