"""The frontend's readiness (/readyz, /livez from podkit): ready once this pod holds the backend's code,
never asking the backend; a worker that has not fetched the code reads it from the pod's state."""

import requests

from frontend import backend_client
from podkit import fault, state

from .conftest import BACKEND


def fetch_in_another_worker(code):
    """What another worker's /startup leaves behind: the code in the pod's state, none in this worker."""
    state.write(backend_client.BackendCode.STATE, code)


def test_readyz__unready_before_startup(client, backend):
    """Before any /startup the pod holds no code: 503 "unready" saying it has not started, no backend call."""
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unready"
    assert "not started" in body["error"]
    assert len(backend.calls) == 0


def test_readyz__ready_after_startup(client, backend):
    """After /startup fetched the code, /readyz is 200 {"status": "ready"}."""
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-4242"})
    client.get("/startup")
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readyz__ready_when_another_worker_fetched(client, backend):
    """Readiness is the pod's: a worker that never fetched the code is ready once another worker did."""
    fetch_in_another_worker("BACKEND-4242")
    assert client.get("/readyz").status_code == 200
    assert len(backend.calls) == 0


def test_readyz__stays_ready_while_backend_down(client, backend):
    """A backend outage does not take the frontend out of its Service: /readyz never calls the backend."""
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-4242"})
    client.get("/startup")
    backend.replace("GET", f"{BACKEND}/get-config", body=requests.ConnectionError())
    backend.get(f"{BACKEND}/ping", body=requests.ConnectionError())
    assert client.get("/readyz").status_code == 200
    assert client.get("/livez").status_code == 200
    assert client.get("/health").status_code == 503


def test_readyz__draining_frontend_keeps_serving_the_rest(client, backend):
    """While draining, /readyz is 503 "draining" and /who-am-i, /startup, /health still answer."""
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-4242"})
    backend.get(f"{BACKEND}/ping", json={"status": "ok"})
    client.get("/startup")
    fault.switch_on("readiness", reason="preStop")
    assert client.get("/readyz").json()["status"] == "draining"
    assert client.get("/who-am-i").json()["code"] == "BACKEND-4242"
    assert client.get("/startup").status_code == 200
    assert client.get("/health").status_code == 200


def test_who_am_i__reads_the_code_another_worker_fetched(client, backend):
    """A worker without the code takes the one the pod holds, without calling the backend."""
    call = backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-9999"})
    fetch_in_another_worker("BACKEND-4242")
    assert client.get("/who-am-i").json()["code"] == "BACKEND-4242"
    assert call.call_count == 0


def test_startup__leaves_the_code_for_the_other_workers(client, backend):
    """/startup writes the fetched code to the pod's state, replacing an older one."""
    fetch_in_another_worker("BACKEND-1111")
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-4242"})
    client.get("/startup")
    assert state.read(backend_client.BackendCode.STATE) == "BACKEND-4242"
