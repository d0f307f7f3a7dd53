"""podkit.settings: both services run podkit's one list of middlewares, and each stands where its reason in
podkit/settings.py says: above the Host check, each for what a refused request must still meet (Django's
test client; podkit's conftest runs the list)."""

import runpy

import pytest

from podkit import fault, settings
from testbed.processes import ROOT
from tests.podkit.conftest import KUBELET
from tests.podkit.test_metrics import scrape


def grew(before, after, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0) - before.get(key, 0)


@pytest.mark.parametrize("service", ["backend", "frontend"])
def test_services__run_podkits_list(service):
    """Each service's settings take the shared list as it is: one order to read, one to test."""
    own = runpy.run_path(str(ROOT / f"{service}_site" / f"{service}_site" / "settings.py"))
    assert own["MIDDLEWARE"] is settings.MIDDLEWARE


def test_request_id__first__even_a_refused_host_carries_it(client):
    """RequestIdMiddleware stands above the Host check: the 400 for a malformed Host returns an id too."""
    response = client.get("/livez", HTTP_HOST="bad host!", HTTP_X_REQUEST_ID="abc-123")
    assert response.status_code == 400
    assert response["X-Request-ID"] == "abc-123"


def test_metrics__above_the_host_check__counts_a_refused_host_and_a_fault(client):
    """MetricsMiddleware stands above the Host check: its 400 is counted; a fault's 503 is counted under its
    route, by its state word."""
    before = scrape(client)
    assert client.get("/livez", HTTP_HOST="bad host!").status_code == 400
    fault.switch_on("liveness", next=None)
    assert client.get("/livez").json()["status"] == "fault"
    after = scrape(client)
    assert grew(before, after, "http_requests_total", endpoint="unmatched", status="400") == 1
    assert grew(before, after, "http_requests_total", endpoint="/livez", status="503") == 1
    assert grew(before, after, "probe_answers_total", probe="/livez", result="fault") == 1


def test_faults__above_the_host_check__keep_a_refused_probe(client):
    """FaultMiddleware stands above JsonErrorsMiddleware: a kubelet's probe refused for its Host is in the
    probe hits, as the kubelet saw it."""
    assert client.get("/livez", HTTP_HOST="bad host!", **KUBELET).status_code == 400
    assert [(hit["path"], hit["status"]) for hit in fault.probe_hits()] == [("/livez", 400)]


def test_security__above_the_host_check__its_headers_on_a_refused_host(client):
    """SecurityMiddleware stands above the Host check: the 400 carries nosniff as every answer does."""
    response = client.get("/livez", HTTP_HOST="bad host!")
    assert response.status_code == 400
    assert response["X-Content-Type-Options"] == "nosniff"
