"""Frontend endpoints through Django's test client, the backend mocked at the HTTP boundary."""

import pytest
import requests

from podkit.conf import allowed_hosts
from tests.backend_faults import ANSWER_BOUND, FAULTS, failure_body

from .conftest import BACKEND

POD = "frontend-5d9c7b6f4-x8k2p"


def test_startup__ready_with_backend_code(client, backend):
    """/startup fetches /get-config and reports the code."""
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-4242", "status": "ready"})
    response = client.get("/startup")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "backend_code": "BACKEND-4242"}


def test_startup__asks_backend_every_call(client, backend):
    """Each startup probe is one fresh attempt, so a changed backend code is picked up."""
    call = backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-4242"})
    client.get("/startup")
    client.get("/startup")
    assert call.call_count == 2


def test_who_am_i__pod_name_and_code(client, backend):
    """/who-am-i names the pod (Downward API) and the backend's code."""
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-4242"})
    response = client.get("/who-am-i")
    assert response.status_code == 200
    assert response.json() == {"name": POD, "code": "BACKEND-4242"}


def test_who_am_i__uses_code_from_startup(client, backend):
    """After /startup, /who-am-i answers from the cached code without another backend call."""
    call = backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-4242"})
    client.get("/startup")
    assert client.get("/who-am-i").json()["code"] == "BACKEND-4242"
    assert call.call_count == 1


def test_who_am_i__keeps_serving_cached_code_when_backend_down(client, backend):
    """Once known, the code is served even while the backend is unreachable."""
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-4242"})
    client.get("/startup")
    backend.replace("GET", f"{BACKEND}/get-config", body=requests.ConnectionError())
    response = client.get("/who-am-i")
    assert response.status_code == 200
    assert response.json()["code"] == "BACKEND-4242"


def test_who_am_i__unknown_outside_kubernetes(client, backend, settings):
    """Without POD_NAME the name is "unknown"."""
    settings.POD_NAME = "unknown"
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-4242"})
    assert client.get("/who-am-i").json()["name"] == "unknown"


@pytest.mark.parametrize("accept", [None, "*/*", "text/html", "text/plain", "application/json", "image/png"])
def test_health__json_200_whatever_accept(client, backend, accept):
    """/health answers JSON whatever the Accept header (the kubelet sends */*)."""
    backend.get(f"{BACKEND}/ping", json={"status": "ok"})
    headers = {"Accept": accept} if accept else {}
    response = client.get("/health", headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "healthy"}


# Each fault of tests/backend_faults.py as the backend client meets it.
FAULT_MOCKS = {
    "unreachable": {"body": requests.ConnectionError()},
    "hung": {"body": requests.ReadTimeout()},
    "http_500": {"status": 500},
    "not_json": {"body": "not json"},
    "slow": {"body": requests.ReadTimeout()},
}
BACKEND_PATH = {"/startup": "/get-config", "/who-am-i": "/get-config", "/health": "/ping"}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("path", ["/startup", "/health", "/who-am-i"])
def test_backend_fault__json_503_saying_why(client, backend, path, fault):
    """A failing backend (no code cached yet): each endpoint answers 503 in its documented shape, and the
    call it made was bounded well within ANSWER_BOUND."""
    call = backend.get(BACKEND + BACKEND_PATH[path], **FAULT_MOCKS[fault])
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json() == failure_body(path, fault, POD)
    connect, read = call.calls[0].request.req_kwargs["timeout"]
    assert connect + read < ANSWER_BOUND


@pytest.mark.parametrize("path", ["/health", "/startup"])
def test_probe__not_cached(client, backend, path):
    """Probe answers must never be cached by anything in between."""
    backend.get(f"{BACKEND}/ping", json={"status": "ok"})
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-4242"})
    assert "no-cache" in client.get(path)["Cache-Control"]


@pytest.mark.parametrize(
    ("method", "path"), [("post", "/health"), ("post", "/startup"), ("put", "/who-am-i")]
)
def test_wrong_method__json_405(client, method, path):
    """Wrong methods get 405 JSON, also on the class-based health view."""
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response.json()["status"] == 405
    assert "GET" in response["Allow"]


def test_unknown_path__json_404(client):
    """Unknown paths get 404 JSON."""
    response = client.get("/admin/")
    assert response.status_code == 404
    assert response.json() == {"error": "No endpoint at /admin/", "status": 404}


# What a NodePort or Ingress client sends: none of it is the pod's own IP.
PUBLIC_HOSTS = [
    "54.12.3.4:30080",  # the node's public IP (NATed: never status.hostIP)
    "ec2-54-12-3-4.compute-1.amazonaws.com:30080",  # the node's public DNS name
    "10.0.0.6:30080",  # another node of the cluster: a NodePort is open on every node
    "frontend.example.com",  # an Ingress in front of svc-frontend
]


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_host__nodeport_and_ingress_hosts_served(client, backend, monkeypatch, settings, host):
    """The public entry point answers whatever name or address a browser reached it by."""
    monkeypatch.setenv("POD_IP", "10.42.0.7")
    monkeypatch.delenv("DJANGO_ALLOWED_HOSTS", raising=False)
    settings.ALLOWED_HOSTS = allowed_hosts()  # as a pod computes them at start
    backend.get(BACKEND + "/get-config", json={"code": "BACKEND-4242", "status": "ready"})
    response = client.get("/who-am-i", HTTP_HOST=host)
    assert response.status_code == 200
    assert response.json()["code"] == "BACKEND-4242"


@pytest.mark.parametrize("host", ["bad host", "localhost:notaport", "[::1", "a@b.example"])
def test_host__malformed_host_is_json_400(client, host):
    """A Host that is no host at all still gets a clean 400 JSON."""
    response = client.get("/who-am-i", HTTP_HOST=host)
    assert response.status_code == 400
    assert response.json()["status"] == 400
