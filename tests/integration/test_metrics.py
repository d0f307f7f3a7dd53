"""Metrics, request ids and the access log under real gunicorn: every worker's counts add up at a scrape,
promtool accepts both services' output, an id follows a request into the backend's log, and game-overs
are counted on both sides of a real SIGTERM."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.parser import text_string_to_metric_families

from tests.prerequisites import find_tool, skip_or_fail

from .conftest import POD_NAME, get_from_workers, wait_for_workers

pytestmark = pytest.mark.integration

# gunicorn's access format as the containers run it (the testbed's own, with worker pids, switched off).
REAL_ACCESS_LOG = {"GUNICORN_CMD_ARGS": ""}


def samples(text):
    """{(name, ((label, value), ...)): value} of a Prometheus text exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def log_lines(server, text, timeout=5.0):
    """The lines of the server's output containing `text`, once there is one (gunicorn logs an access
    line after it has sent the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in server.output().splitlines() if text in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def scrape(server):
    response = requests.get(server.url + "/metrics", timeout=5)
    assert response.status_code == 200
    return response.text


def assert_pings_counted_as_logged(backend):
    """Every scrape (new connections: either worker answers) counts exactly the /ping lines of the log;
    returns that count."""
    key = ("http_requests_total", (("endpoint", "/ping"), ("status", "200")))
    counts = {samples(scrape(backend))[key] for _ in range(6)}
    served = log_lines(backend, '"GET /ping HTTP/1.1" 200')
    deadline = time.monotonic() + 5  # an access line is written just after its answer went out
    while len(served) < max(counts) and time.monotonic() < deadline:
        served = log_lines(backend, '"GET /ping HTTP/1.1" 200')
    assert counts == {len(served)}
    return len(served)


def test_metrics__every_workers_counts_add_up(start):
    """With two workers both serving /ping, every scrape counts exactly the /ping lines of the access log."""
    backend = start("backend", WEB_CONCURRENCY=2)
    get_from_workers(backend, "/ping")
    assert_pings_counted_as_logged(backend)


def test_metrics__promtool_accepts_both_services(backend, frontend_for):
    """`promtool check metrics` passes on each service's /metrics, every family present."""
    promtool = find_tool("promtool")
    if promtool is None:
        skip_or_fail("promtool not found: sudo apt-get install prometheus")
    frontend = frontend_for(backend.url)
    for path in ("/startup", "/who-am-i", "/health", "/no-such-path", "/readyz"):
        requests.get(frontend.url + path, timeout=5)
    requests.post(backend.url + "/game-over", headers={"X-Game-Over-Path": "preStop"}, timeout=5)
    for server, families in [
        (backend, {"http_requests", "http_request_duration_seconds", "game_over_received", "pod_draining"}),
        (frontend, {"backend_calls", "backend_call_duration_seconds", "probe_answers", "build_info"}),
    ]:
        text = scrape(server)
        result = subprocess.run(
            [promtool, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert families <= {family.name for family in text_string_to_metric_families(text)}


def test_metrics__podkit_metrics_0_counts_nothing(start):
    """PODKIT_METRICS=0 (the benchmark's switch) on both services: after requests that would be counted,
    including backend calls and a game-over, /metrics holds only what is read at scrape time."""
    backend = start("backend", PODKIT_METRICS="0")
    frontend = start(
        "frontend", ready_path="/startup", BACKEND_URL=backend.url, POD_NAME=POD_NAME, PODKIT_METRICS="0"
    )
    for path in ("/startup", "/who-am-i", "/health", "/no-such-path", "/readyz"):
        requests.get(frontend.url + path, timeout=5)
    requests.post(backend.url + "/game-over", headers={"X-Game-Over-Path": "preStop"}, timeout=5)
    for server in (backend, frontend):
        assert {family.name for family in text_string_to_metric_families(scrape(server))} == {
            "pod_draining",
            "build_info",
        }


def test_access_log__keeps_the_literal_post_game_over_with_the_request_id(start):
    """The backend's access line still reads "POST /game-over HTTP/1.1", and ends with the request's id."""
    backend = start("backend", **REAL_ACCESS_LOG)
    response = requests.post(
        backend.url + "/game-over", headers={"X-Pod-Name": POD_NAME, "X-Request-ID": "grade-1"}, timeout=5
    )
    assert response.headers["X-Request-ID"] == "grade-1"
    (access,) = log_lines(backend, '"POST /game-over HTTP/1.1" 200')
    assert access.endswith("request_id=grade-1")
    assert f"Received game-over signal from {POD_NAME} request_id=grade-1" in backend.output()


def test_request_id__follows_a_request_into_the_backends_log(start, frontend_for):
    """A /startup sent with X-Request-ID reaches the backend's /get-config under the same id."""
    backend = start("backend", **REAL_ACCESS_LOG)
    frontend = frontend_for(backend.url, **REAL_ACCESS_LOG)
    response = requests.get(frontend.url + "/startup", headers={"X-Request-ID": "trace-9"}, timeout=5)
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "trace-9"
    (frontend_line,) = log_lines(frontend, "GET /startup")
    (backend_line,) = log_lines(backend, "request_id=trace-9")
    assert frontend_line.endswith("request_id=trace-9")
    assert '"GET /get-config HTTP/1.1" 200' in backend_line


def test_sigterm__game_over_counted_as_sent_and_received(backend, frontend_for):
    """A SIGTERM's game-over is received as path sigterm, and the master's sent count is in its files."""
    frontend = frontend_for(backend.url)
    code, _ = frontend.terminate()
    assert code == 0
    received = samples(scrape(backend))
    assert received[("game_over_received_total", (("path", "sigterm"),))] == 1
    assert ("game_over_received_total", (("path", "preStop"),)) not in received
    # The pod is gone by now, so nothing could scrape this; the master's count is in the directory.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=Path(frontend.env["POD_STATE_DIR"]) / "metrics")
    sent = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in registry.collect() for s in f.samples}
    assert sent[("game_over_sent_total", (("outcome", "ok"), ("path", "sigterm")))] == 1


def test_metrics__a_restart_starts_from_zero(start):
    """Counts do not survive a restart of the server (on_starting empties the directory)."""
    backend = start("backend")
    for _ in range(5):
        requests.get(backend.url + "/get-config", timeout=5)
    key = ("http_requests_total", (("endpoint", "/get-config"), ("status", "200")))
    assert samples(scrape(backend))[key] == 5
    backend.terminate()
    backend.start()
    assert key not in samples(scrape(backend))


def test_metrics__a_killed_workers_counts_still_count(start):
    """kill -9 of a worker that served requests: gunicorn replaces it, and the scrape still counts them."""
    backend = start("backend", WEB_CONCURRENCY=2)
    get_from_workers(backend, "/ping")
    counted = assert_pings_counted_as_logged(backend)  # every answer logged: nothing in flight
    victim = min(backend.worker_pids("GET /ping"))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while victim in backend.workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victim not in wait_for_workers(backend), "gunicorn did not replace the killed worker"
    key = ("http_requests_total", (("endpoint", "/ping"), ("status", "200")))
    assert {samples(scrape(backend))[key] for _ in range(6)} == {counted}
