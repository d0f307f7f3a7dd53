"""podkit's views under a minimal Django configuration of their own (no service's settings needed)."""

import django
import pytest
from django.conf import settings
from django.test import Client

from podkit.settings import MIDDLEWARE

if not settings.configured:
    settings.configure(
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["podkit"],
        MIDDLEWARE=MIDDLEWARE,
        ROOT_URLCONF="podkit.urls",
        DATABASES={},
    )
    django.setup()

KUBELET = {"HTTP_USER_AGENT": "kube-probe/1.32"}  # a request as the kubelet's prober sends it


@pytest.fixture(autouse=True)
def pod_state(monkeypatch, tmp_path):
    """Each test gets a pod state of its own (POD_STATE_DIR), never the machine's /tmp."""
    monkeypatch.setenv("POD_STATE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def client():
    """Django's test client, through podkit's middlewares and URLs."""
    return Client()
