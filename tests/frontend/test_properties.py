"""Properties of the frontend over generated requests (hypothesis, Django's test client, real settings;
the backend answers correctly, mocked at the HTTP boundary by conftest's `backend`).

Whatever the method, path, headers, Host and body: no 5xx, always a JSON object (but for the live page's own
200, its HTML), with "error" in it when the status is 4xx.
"""

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.http_properties import any_request, assert_json_contract

from .conftest import BACKEND

ENDPOINTS = ["/startup", "/who-am-i", "/health", "/"]
PAGES = ["/"]  # the live page: HTML when it succeeds, JSON errors otherwise
SERVED_HOSTS = ["svc-frontend.task-03.svc.cluster.local:8080", "127.0.0.1:8080", "localhost", "[::1]:8080"]
BAD_HOSTS = ["evil.example.com", "10.9.8.7:8080", "svc-backend:5000", "a b", "[::1", ""]
BODIES = st.one_of(st.binary(max_size=300), st.just(b"{" * (3 * 1024 * 1024)))


@pytest.fixture
def healthy_backend(backend):
    """The backend answers /ping and /get-config: any 5xx from the frontend would then be its own."""
    backend.get(f"{BACKEND}/ping", json={"status": "ok"})
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-4242", "status": "ready"})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**any_request(ENDPOINTS, SERVED_HOSTS, BAD_HOSTS, BODIES))
def test_any_request__json_object_below_500(client, healthy_backend, method, path, host, headers, body):
    """Any method, path, Host, headers and body: a JSON object below 500, with "error" when 4xx."""
    response = client.generic(method, path, data=body, headers={**headers, "Host": host})
    event(f"HTTP {response.status_code}")  # --hypothesis-show-statistics shows what was reached
    assert_json_contract(response, method, PAGES)
