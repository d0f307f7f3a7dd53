"""Readiness and drain on real gunicorn processes: a drain set from outside the server (as preStop and
`kubectl exec` set it, `python -m podkit.fault readiness fail`) reaches every worker at once, and only
/readyz changes."""

import pytest
import requests

from .conftest import WORKERS, fault, get_from_workers, get_many, running, statuses

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("service", "path"), [("backend", "/get-config"), ("frontend", "/who-am-i")])
def test_drain__every_worker_503_draining_other_endpoints_serve(start, service, path):
    """Drained by hand, every worker's /readyz answers 503 draining; the service's endpoint keeps serving."""
    server = running(start, service)
    assert statuses(get_many(server.url + "/readyz")) == {(200, "ready")}

    assert "readiness" in fault(server, "readiness", "fail")["on"]
    assert statuses(get_from_workers(server, "/readyz")) == {(503, "draining")}
    assert {r.status_code for r in get_from_workers(server, path)} == {200}
    assert requests.get(server.url + "/livez", timeout=5).status_code == 200

    assert fault(server, "off", "readiness")["on"] == {}
    assert statuses(get_many(server.url + "/readyz")) == {(200, "ready")}


def test_readyz__frontend_unready_until_startup_then_ready_in_every_worker(backend, frontend_for):
    """Before /startup no worker is ready; after one /startup, every worker is, without asking the backend."""
    frontend = frontend_for(backend.url, WEB_CONCURRENCY=WORKERS)
    assert statuses(get_many(frontend.url + "/readyz", count=10)) == {(503, "unready")}
    assert requests.get(frontend.url + "/startup", timeout=5).status_code == 200
    assert statuses(get_from_workers(frontend, "/readyz")) == {(200, "ready")}
    assert backend.output().count("GET /get-config") == 1


def test_backend_stopped__frontend_stays_ready_and_answers_who_am_i(backend, frontend_for):
    """With the backend gone, every frontend worker stays ready and serves /who-am-i; /health says 503."""
    frontend = frontend_for(backend.url, WEB_CONCURRENCY=WORKERS)
    code = requests.get(frontend.url + "/startup", timeout=5).json()["backend_code"]
    backend.terminate()
    assert statuses(get_from_workers(frontend, "/readyz")) == {(200, "ready")}
    who = get_from_workers(frontend, "/who-am-i")
    assert {(r.status_code, r.json()["code"]) for r in who} == {(200, code)}
    assert requests.get(frontend.url + "/health", timeout=5).status_code == 503
