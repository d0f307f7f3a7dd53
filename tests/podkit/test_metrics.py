"""podkit's /metrics, /version and request ids through Django's test client (one process: no multiprocess
directory; tests/integration/test_metrics.py has the real gunicorn)."""

import socket

import pytest
from django.core.exceptions import MiddlewareNotUsed
from prometheus_client.parser import text_string_to_metric_families

from podkit import fault, metrics


def scrape(client):
    """{(name, ((label, value), ...)): value} of every sample /metrics answers."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_metrics__counts_requests_by_endpoint_and_status(client):
    """Two /livez and one unknown path add 2 to /livez's 200s and 1 to unmatched 404s."""
    before = scrape(client)
    client.get("/livez")
    client.get("/livez")
    client.get("/no-such-path-xyz")
    after = scrape(client)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("http_requests_total", endpoint="/livez", status="200") == 2
    assert grew("http_requests_total", endpoint="unmatched", status="404") == 1
    assert grew("http_request_duration_seconds_count", endpoint="/livez") == 2
    assert grew("probe_answers_total", probe="/livez", result="alive") == 2


def test_metrics__never_labels_a_raw_path(client):
    """An unknown path is counted as `unmatched`; the path itself never reaches the output."""
    client.get("/secret-looking-path-4711")
    assert "secret-looking-path-4711" not in client.get("/metrics").content.decode()


def test_metrics__probe_answers_by_result(client):
    """/readyz while draining is counted as probe /readyz, result draining."""
    before = scrape(client).get(("probe_answers_total", (("probe", "/readyz"), ("result", "draining"))), 0)
    fault.switch_on("readiness", reason="test")
    assert client.get("/readyz").status_code == 503
    after = scrape(client)[("probe_answers_total", (("probe", "/readyz"), ("result", "draining")))]
    assert after - before == 1


def test_metrics__drain_gauge_read_at_scrape(client):
    """pod_draining is 0, then 1 once the pod drains, then 0 again: read from the pod's state."""
    assert scrape(client)[("pod_draining", ())] == 0
    fault.switch_on("readiness", reason="test")
    assert scrape(client)[("pod_draining", ())] == 1
    fault.switch_off("readiness")
    assert scrape(client)[("pod_draining", ())] == 0


def test_metrics__build_info_from_the_image(client, monkeypatch):
    """build_info carries VERSION and GIT_COMMIT, as /version answers them."""
    monkeypatch.setenv("VERSION", "1.2.3-4-gabcdef")
    monkeypatch.setenv("GIT_COMMIT", "abcdef0123")
    samples = scrape(client)
    assert samples[("build_info", (("git_commit", "abcdef0123"), ("version", "1.2.3-4-gabcdef")))] == 1
    monkeypatch.setenv("POD_NAME", "frontend-5d9c7b6f4-x8k2p")
    assert client.get("/version").json() == {
        "version": "1.2.3-4-gabcdef",
        "git_commit": "abcdef0123",
        "pod": "frontend-5d9c7b6f4-x8k2p",
    }


def test_version__defaults_outside_an_image(client, monkeypatch):
    """Without the build args, /version says dev / unknown; without POD_NAME the pod is the hostname."""
    monkeypatch.delenv("VERSION", raising=False)
    monkeypatch.delenv("GIT_COMMIT", raising=False)
    monkeypatch.delenv("POD_NAME", raising=False)
    expected = {"version": "dev", "git_commit": "unknown", "pod": socket.gethostname()}
    assert client.get("/version").json() == expected


def test_metrics__switched_off_by_podkit_metrics_0(monkeypatch):
    """PODKIT_METRICS=0 takes the counting middleware out (Django's MiddlewareNotUsed)."""
    monkeypatch.setenv("PODKIT_METRICS", "0")
    with pytest.raises(MiddlewareNotUsed):
        metrics.MetricsMiddleware(lambda request: None)


def test_metrics__post_refused_as_json(client):
    """/metrics answers only GET and HEAD; anything else is a JSON 405."""
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response.json()["status"] == 405


def test_request_id__a_well_formed_one_is_kept(client):
    """A caller's well-formed X-Request-ID comes back unchanged."""
    response = client.get("/livez", HTTP_X_REQUEST_ID="edge-7f3a:01.x")
    assert response["X-Request-ID"] == "edge-7f3a:01.x"


@pytest.mark.parametrize("sent", ["", "two words", "x" * 200, '"quoted"', "-leading-dash", "a\tb"])
def test_request_id__a_malformed_one_is_replaced(client, sent):
    """A missing or malformed X-Request-ID is replaced by a fresh id; errors carry one too."""
    response = client.get("/nope", HTTP_X_REQUEST_ID=sent)
    made = response["X-Request-ID"]
    assert made != sent and len(made) == 32 and made.isalnum()
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "host", "status"),
    [
        ("get", "/livez", "localhost", 200),
        ("get", "/metrics", "localhost", 200),
        ("get", "/nope", "localhost", 404),
        ("post", "/livez", "localhost", 405),
        ("get", "/livez", "bad host!", 400),
    ],
)
def test_answers__carry_their_content_length(client, method, path, host, status):
    """Every answer says its length (gunicorn would otherwise send it chunked), errors and /metrics too."""
    response = getattr(client, method)(path, HTTP_HOST=host)
    assert response.status_code == status
    assert response["Content-Length"] == str(len(response.content))
