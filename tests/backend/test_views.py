"""Backend endpoints through Django's test client, with the real settings and middleware."""

import json
import logging

import pytest
from django.conf import settings

from podkit import fault
from podkit.conf import allowed_hosts

HOST = "svc-backend.task-03.svc.cluster.local:5000"


@pytest.fixture
def client(client):
    """Django's test client sending the Host header the course's in-cluster checks send."""
    client.defaults["HTTP_HOST"] = HOST
    return client


def test_get_config__returns_code_and_ready(client):
    """GET /get-config gives the server's code in the spec's shape."""
    response = client.get("/get-config")
    assert response.status_code == 200
    assert response.json() == {"code": settings.CONFIG_CODE, "status": "ready"}
    assert settings.CONFIG_CODE.startswith("BACKEND-")


def test_get_config__same_code_every_call(client):
    """The code is made once per server, not per request."""
    codes = {client.get("/get-config").json()["code"] for _ in range(5)}
    assert len(codes) == 1


def test_ping__ok(client):
    """GET /ping answers 200 {"status": "ok"}."""
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ping__head_allowed(client):
    """HEAD works wherever GET does (some load balancers probe with HEAD)."""
    assert client.head("/ping").status_code == 200


def test_game_over__bare_post_without_csrf_token(client, caplog):
    """A bare `curl -X POST` (no body, no token) is accepted and logged with the caller's address."""
    with caplog.at_level(logging.INFO, logger="backend"):
        response = client.post("/game-over")
    assert response.status_code == 200
    assert response.json() == {"message": "Goodbye!"}
    assert caplog.messages == ["Received game-over signal from 127.0.0.1"]


def test_game_over__names_the_pod_from_header(client, caplog):
    """X-Pod-Name names the caller in the log line."""
    with caplog.at_level(logging.INFO, logger="backend"):
        client.post("/game-over", headers={"X-Pod-Name": "frontend-5d9c7b6f4-x8k2p"})
    assert caplog.messages == ["Received game-over signal from frontend-5d9c7b6f4-x8k2p"]


@pytest.mark.parametrize("name", ["", "-leading-dash", "has space", "x" * 300, "a\u00e9b"])
def test_game_over__invalid_pod_name_falls_back_to_address(client, caplog, name):
    """A pod name that could forge or flood the log is replaced by the caller's address."""
    with caplog.at_level(logging.INFO, logger="backend"):
        response = client.post("/game-over", headers={"X-Pod-Name": name})
    assert response.status_code == 200
    assert caplog.messages == ["Received game-over signal from 127.0.0.1"]


def test_game_over__junk_body_is_not_an_error(client):
    """The body is ignored: junk in it is no reason to lose the shutdown signal."""
    response = client.post("/game-over", data=b"\x00{not json", content_type="application/json")
    assert response.status_code == 200


def test_game_over__oversized_body_is_413(client):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused with a JSON 413."""
    body = b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client.post("/game-over", data=body, content_type="application/octet-stream")
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]


def test_game_over__chunked_body_is_411(client):
    """A chunked body (no Content-Length, so no size bound) is refused before it is read."""
    response = client.post(
        "/game-over", data=b"x", content_type="text/plain", HTTP_TRANSFER_ENCODING="chunked"
    )
    assert response.status_code == 411
    assert response.json()["status"] == 411


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/get-config"), ("put", "/ping"), ("delete", "/ping"), ("get", "/game-over")],
)
def test_wrong_method__json_405_with_allow(client, method, path):
    """A wrong method gets 405 JSON naming the allowed ones, and the Allow header."""
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == 405
    assert response["Allow"] in body["error"]


@pytest.mark.parametrize("path", ["/", "/nope", "/ping/", "/get-config/x", "/%ff"])
def test_unknown_path__json_404(client, path):
    """Any path that is not an endpoint gets 404 JSON."""
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["status"] == 404


@pytest.mark.parametrize(
    "host",
    [
        "svc-backend:5000",
        "svc-backend.task-03.svc.cluster.local:5000",
        "svc-backend.task-03.svc.cluster.local.:5000",  # the frontend's absolute name (trailing dot)
        "10.43.0.12:5000",  # the Service's ClusterIP, which the pod cannot know
        "10.42.0.7:5000",  # a kubelet probe: the pod's IP
        "localhost:5000",
    ],
)
def test_host__any_well_formed_host_served(client, host):
    """The backend builds nothing from the Host header, so it answers any well-formed one (podkit.conf)."""
    assert client.get("/ping", HTTP_HOST=host).status_code == 200


@pytest.mark.parametrize("host", ["bad host", "localhost:notaport", "[::1", "a@b.example"])
def test_host__malformed_host_is_json_400(client, host):
    """A Host that is no host at all gets 400 JSON, never a 500."""
    response = client.get("/ping", HTTP_HOST=host)
    assert response.status_code == 400
    assert "Host" in json.loads(response.content)["error"]


def test_host__pinned_list_refuses_others_and_serves_probes(client, monkeypatch, settings):
    """DJANGO_ALLOWED_HOSTS pins the names: others get 400 JSON, the kubelet's probe (pod IP) still 200."""
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "svc-backend.task-03.svc.cluster.local")
    monkeypatch.setenv("POD_IP", "10.42.0.7")
    settings.ALLOWED_HOSTS = allowed_hosts()
    assert client.get("/ping", HTTP_HOST="evil.example.com").status_code == 400
    assert client.get("/ping", HTTP_HOST="10.42.0.7:5000").status_code == 200
    assert client.get("/ping", HTTP_HOST="svc-backend.task-03.svc.cluster.local:5000").status_code == 200


def test_readyz__ready_once_serving(client, monkeypatch, tmp_path):
    """The backend depends on nothing: /readyz is 200 {"status": "ready"} as soon as it answers."""
    monkeypatch.setenv("POD_STATE_DIR", str(tmp_path))
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readyz__draining_is_503(client, monkeypatch, tmp_path):
    """While the pod drains, /readyz is 503 "draining" while /get-config keeps serving."""
    monkeypatch.setenv("POD_STATE_DIR", str(tmp_path))
    fault.switch_on("readiness", reason="preStop")
    assert client.get("/readyz").json()["status"] == "draining"
    assert client.get("/readyz").status_code == 503
    assert client.get("/get-config").status_code == 200
    assert client.get("/livez").json() == {"status": "alive"}


def game_overs_received(path):
    """This process's count of game-overs received from `path` (the backend's metric)."""
    from backend.views import GAME_OVERS

    return GAME_OVERS.labels(path)._value.get()


@pytest.mark.parametrize(
    ("sent", "counted_as"),
    [
        ("preStop", "preStop"),
        ("sigterm", "sigterm"),
        (None, "unknown"),
        ("prestop", "unknown"),
        ("x" * 300, "unknown"),
    ],
)
def test_game_over__counted_by_the_senders_path(client, sent, counted_as):
    """X-Game-Over-Path preStop or sigterm is counted as such; anything else, or none, as unknown."""
    before = game_overs_received(counted_as)
    headers = {} if sent is None else {"HTTP_X_GAME_OVER_PATH": sent}
    assert client.post("/game-over", **headers).status_code == 200
    assert game_overs_received(counted_as) == before + 1


def test_game_over__log_line_carries_the_request_id(client, caplog):
    """The game-over log line is logged under the request's id, which the answer returns."""
    with caplog.at_level(logging.INFO, logger="backend"):
        response = client.post("/game-over", HTTP_X_POD_NAME="frontend-1", HTTP_X_REQUEST_ID="rid-77")
    assert response["X-Request-ID"] == "rid-77"
    (record,) = [r for r in caplog.records if "Received game-over signal from frontend-1" in r.getMessage()]
    assert record.request_id == "rid-77"
