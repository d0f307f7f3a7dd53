"""The fault switches (`python -m podkit.fault`) on real gunicorn processes, set from a process of their own,
as `kubectl exec` sets them: each reaches every worker from the next request on; the --next count and the
probe hits are the pod's, not a worker's; slow spares the kubelet's probes; a corrupt state file changes
nothing but a log line."""

import itertools
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from podkit import fault as switches

from .conftest import (
    KUBELET,
    POD_NAME,
    SPREAD_DEADLINE,
    WORKERS,
    fault,
    get_from_workers,
    get_many,
    running,
    statuses,
    until,
)

pytestmark = pytest.mark.integration

LIVENESS_PATHS = {"backend": ("/livez", "/ping"), "frontend": ("/livez", "/health")}  # their settings.py
ENDPOINT = {"backend": "/get-config", "frontend": "/who-am-i"}
SLOW = 1.5  # s
CORRUPT_LOG_LINE = "is corrupt"  # podkit.fault's warning


def answered_by(server, request_line, count):
    """The workers whose access lines show `request_line`, once the log holds `count` of them (gunicorn
    writes the line after the answer, so the client may have it first)."""
    logged = f'"{request_line} HTTP/1.1"'
    until(lambda: server.output().count(logged) >= count, f"fewer than {count} access lines {logged}")
    return server.worker_pids(request_line)


def seconds(responses):
    """How long each answer took, from sending the request to its headers."""
    return [r.elapsed.total_seconds() for r in responses]


@pytest.mark.parametrize("service", ["backend", "frontend"])
def test_switches__every_worker_sees_each_at_once(start, service):
    """Each switch, set by a process of its own, acts in both workers from the next request; off ends it."""
    server = running(start, service)
    endpoint, liveness_paths = ENDPOINT[service], LIVENESS_PATHS[service]

    assert set(fault(server, "liveness", "fail")["on"]) == {"liveness"}
    for path in liveness_paths:
        assert statuses(get_from_workers(server, path)) == {(503, "fault")}
        assert statuses(get_from_workers(server, path, headers=KUBELET)) == {(503, "fault")}
    assert {r.status_code for r in get_from_workers(server, endpoint)} == {200}
    assert statuses(get_from_workers(server, "/readyz")) == {(200, "ready")}

    assert set(fault(server, "readiness", "fail")["on"]) == {"liveness", "readiness"}
    assert statuses(get_from_workers(server, "/readyz")) == {(503, "draining")}

    assert set(fault(server, "slow", "0.5")["on"]) == {"liveness", "readiness", "slow"}
    assert min(seconds(get_from_workers(server, endpoint))) >= 0.5

    assert fault(server, "off")["on"] == {}
    assert statuses(get_from_workers(server, "/readyz")) == {(200, "ready")}
    for path in liveness_paths:
        assert {r.status_code for r in get_from_workers(server, path)} == {200}
    assert max(seconds(get_from_workers(server, endpoint))) < 0.5


def test_liveness_next__fails_exactly_n_of_concurrent_probes_over_both_workers(start):
    """--next 5, then 15 probes 8 at a time answered by both workers: exactly 5 fail, 10 pass, the switch is
    off, and `status` lists all 15 hits (so both workers' hits)."""
    server = running(start, "backend")
    n, probes = 5, 15
    # If each worker counted on its own, a round both answered would fail more than n: min(a, n) + min(b, n).
    deadline = time.monotonic() + SPREAD_DEADLINE
    for round_ in itertools.count():
        assert fault(server, "liveness", "fail", "--next", str(n))["on"]["liveness"]["next"] == n
        path = f"/livez?round={round_}"
        answers = get_many(server.url + path, count=probes, headers=KUBELET)
        expected = {(503, "fault"): n, (200, "alive"): probes - n}
        assert Counter((r.status_code, r.json()["status"]) for r in answers) == expected
        shown = fault(server, "status")
        assert shown["on"] == {}
        hits = shown["probe_hits"][-probes:]
        assert Counter((hit["status"], hit["answer"]) for hit in hits) == expected
        assert {hit["path"] for hit in hits} == {"/livez"}
        if len(answered_by(server, f"GET {path}", probes)) == WORKERS:
            break
        assert time.monotonic() < deadline, "no round of probes reached both workers"
    assert statuses(get_from_workers(server, "/livez", headers=KUBELET)) == {(200, "alive")}


def test_slow__delays_requests_by_about_seconds_never_a_kubelet_probe(start):
    """slow 1.5: a person's request to any path waits 1.5 s, and less than twice that; the kubelet's probes,
    on both workers, do not wait."""
    server = running(start, "backend")
    fault(server, "slow", str(SLOW))
    paths = ("/get-config", "/livez", "/readyz", "/ping", "/version")
    with ThreadPoolExecutor(len(paths)) as pool:
        answers = list(pool.map(lambda path: requests.get(server.url + path, timeout=10), paths))
    assert [r.status_code for r in answers] == [200] * len(paths)
    waited = dict(zip(paths, seconds(answers), strict=True))
    assert all(SLOW <= s < 2 * SLOW for s in waited.values()), waited
    for path in ("/livez", "/readyz", "/ping"):
        probes = get_from_workers(server, path, headers=KUBELET)
        assert {r.status_code for r in probes} == {200}
        assert max(seconds(probes)) < SLOW, path


# What a person's editor, a full disk or a bad hand leaves in the pod's state: each is ignored.
CORRUPT = {
    "cut short": (switches.SWITCHES, '{"liveness": {"next'),
    "not a switch": (switches.SWITCHES, '{"liveness": "yes", "sleep": 3}'),
    "slow NaN": (switches.SWITCHES, '{"slow": {"seconds": NaN}}'),
    "slow negative": (switches.SWITCHES, '{"slow": {"seconds": -1}}'),
    "since not a time": (switches.SWITCHES, '{"readiness": {"reason": "x", "since": "noon"}}'),
    "probe hits not hits": (switches.HITS, '[1, {"at": "noon"}]'),
}
ENDPOINTS = {
    "backend": [
        ("GET", "/get-config"),
        ("GET", "/ping"),
        ("POST", "/game-over"),
        ("GET", "/livez"),
        ("GET", "/readyz"),
        ("GET", "/version"),
        ("GET", "/metrics"),
    ],
    "frontend": [
        ("GET", "/startup"),
        ("GET", "/who-am-i"),
        ("GET", "/health"),
        ("GET", "/livez"),
        ("GET", "/readyz"),
        ("GET", "/version"),
        ("GET", "/metrics"),
    ],
}


def answers(servers):
    """Each endpoint of each service, asked by a person and by the kubelet: its status and JSON body
    (/metrics: its status only, its counts move)."""
    seen = {}
    for service, server in servers.items():
        for (method, path), headers in itertools.product(ENDPOINTS[service], ({}, KUBELET)):
            response = requests.request(method, server.url + path, headers=headers, timeout=10)
            body = None if path == "/metrics" else response.json()
            seen[service, method, path, bool(headers)] = (response.status_code, body)
    return seen


def corrupt(server, name, text):
    """Put `text` in the server's state file `name` as one change (a reader never sees it half written)."""
    directory = server.env["POD_STATE_DIR"]
    temporary = os.path.join(directory, f".{name}.test")
    with open(temporary, "w") as file:
        file.write(text)
    os.replace(temporary, os.path.join(directory, name))


@pytest.mark.parametrize(("name", "text"), CORRUPT.values(), ids=CORRUPT)
def test_corrupt_state__every_endpoint_answers_as_without_it_with_one_warning_per_worker(start, name, text):
    """A corrupt state file: every endpoint of both services answers as before it, in both workers (never a
    500); each worker that read it says so in one log line; `status` shows nothing; `off` mends it."""
    backend = start("backend", WEB_CONCURRENCY=WORKERS)
    frontend = start("frontend", BACKEND_URL=backend.url, POD_NAME=POD_NAME, WEB_CONCURRENCY=WORKERS)
    servers = {"backend": backend, "frontend": frontend}
    # Each worker says so once (it reads the switches again only when the file changes); the first probe
    # hit replaces a corrupt hits file, so one worker says that.
    warnings = WORKERS if name == switches.SWITCHES else 1
    before = answers(servers)
    assert {status for status, _ in before.values()} == {200}

    for server in servers.values():
        corrupt(server, name, text)
        shown = fault(server, "status")  # reads it in a process of its own, as `kubectl exec` does
        assert shown["on"] == {}
        assert name != switches.HITS or shown["probe_hits"] == []
        assert get_from_workers(server, "/livez", headers=KUBELET)  # both workers have read it
    assert answers(servers) == before
    for service, server in servers.items():
        for method, path in ENDPOINTS[service]:
            if method == "GET":
                assert {r.status_code for r in get_from_workers(server, path)} == {200}, (service, path)
        assert server.output().count(CORRUPT_LOG_LINE) == warnings, server.output()[-3000:]

    for server in servers.values():
        assert fault(server, "off")["on"] == {}
        assert statuses(get_from_workers(server, "/readyz")) == {(200, "ready")}
        assert server.output().count(CORRUPT_LOG_LINE) == warnings
        assert all(isinstance(hit["at"], str) for hit in fault(server, "status")["probe_hits"])
    assert answers(servers) == before
