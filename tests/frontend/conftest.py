"""Frontend unit tests: HTTP to the backend is mocked at the boundary with `responses`."""

import pytest
import responses

from frontend import backend_client

BACKEND = "http://backend.test:5000"


@pytest.fixture(autouse=True)
def backend(settings):
    """Every test talks to a fake backend URL; any call not registered fails the test."""
    settings.BACKEND_URL = BACKEND
    settings.POD_NAME = "frontend-5d9c7b6f4-x8k2p"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture(autouse=True)
def no_cached_code(monkeypatch, tmp_path):
    """Each test starts like a fresh worker of a fresh pod: no backend code cached, no backend call to
    share or reuse, an empty pod state."""
    backend_client.code.forget()
    backend_client.ping.forget()
    monkeypatch.setenv("POD_STATE_DIR", str(tmp_path))


@pytest.fixture
def client(client):
    """Django's test client with the Host the kubelet's probes send (settings allow 127.0.0.1)."""
    client.defaults["HTTP_HOST"] = "127.0.0.1:8080"
    return client
