"""Fixtures that start real gunicorn processes of both services; nothing in them is mocked."""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from testbed.processes import Gunicorn
from testbed.traffic import PROBE_USER_AGENT

POD_NAME = "frontend-5d9c7b6f4-x8k2p"
WORKERS = 2  # the pods' default; a test that says "every worker" hears from both
# How long to keep asking until two workers have answered: the kernel may hand a whole batch to one.
SPREAD_DEADLINE = 30.0
KUBELET = {"User-Agent": PROBE_USER_AGENT}  # a request as the kubelet's prober sends it


def until(condition, failure, timeout=10.0):
    """Poll `condition` every 10 ms until it holds, and return its value; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, failure
        time.sleep(0.01)
    return value


def wait_for_workers(server, count=2, timeout=20.0):
    """Until the master has `count` live workers (it forks them up to 0.1 s apart, and replaces a dead one);
    returns their pids."""
    return until(
        lambda: workers if len(workers := server.workers()) >= count else None,
        f"{server.service}: fewer than {count} workers after {timeout:g} s",
        timeout,
    )


def accept_queue_length(port):
    """Connections the kernel has established on 127.0.0.1:`port` and no one has accepted yet; None when
    nothing listens there."""
    listener = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == listener and fields[3] == "0A":  # LISTEN; rx_queue is then the accept queue
            return int(fields[4].split(":")[1], 16)
    return None


@pytest.fixture
def start(tmp_path):
    """Start a service: start("backend", WEB_CONCURRENCY=3); every one started is stopped afterwards.

    `port=` puts it on a given port, e.g. where a stand-in or an earlier instance of it was; `prefix=` a
    command it runs under; `config=` a gunicorn config file in place of the service's own.
    """
    started = []

    def _start(service, ready_path="/ping", port=None, prefix=(), config=None, **env):
        server = Gunicorn(service, tmp_path, port=port, prefix=prefix, config=config, **env)
        started.append(server)
        return server.start(ready_path=ready_path)

    yield _start
    for server in started:
        server.stop()


@pytest.fixture
def backend(start):
    return start("backend")


@pytest.fixture
def frontend_for(start):
    """Start a frontend pointed at a given backend URL, as its pod would be."""

    def _frontend_for(backend_url, **env):
        # Readiness is checked on a path that never reaches the backend (a 404), so no worker has
        # fetched the backend's code before the test does.
        return start("frontend", ready_path="/listening", BACKEND_URL=backend_url, POD_NAME=POD_NAME, **env)

    return _frontend_for


def running(start, service):
    """Both services when `service` is the frontend (it needs its backend), each with WORKERS workers; the
    one asked for, past its /startup."""
    backend = start("backend", WEB_CONCURRENCY=WORKERS)
    if service == "backend":
        return backend
    frontend = start("frontend", BACKEND_URL=backend.url, POD_NAME=POD_NAME, WEB_CONCURRENCY=WORKERS)
    assert requests.get(frontend.url + "/startup", timeout=5).status_code == 200
    return frontend


def get_many(url, count=40, parallel=8, headers=None):
    """`count` GETs, `parallel` at a time, each on a new connection (so the kernel spreads them)."""
    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(lambda _: requests.get(url, headers=headers, timeout=5), range(count)))


def get_from_workers(server, path, workers=WORKERS, headers=None):
    """Batches of GETs of `path` until `workers` workers have answered them; every answer."""
    responses = []
    seen_from = len(server.output())
    deadline = time.monotonic() + SPREAD_DEADLINE
    while True:
        responses += get_many(server.url + path, headers=headers)
        if len(server.worker_pids(f"GET {path}", since=seen_from)) >= workers:
            return responses
        assert time.monotonic() < deadline, f"{path} reached fewer than {workers} workers"


def statuses(responses):
    """The (HTTP status, "status" word) pairs among JSON answers."""
    return {(r.status_code, r.json()["status"]) for r in responses}


def fault(server, *args):
    """`python -m podkit.fault ARGS` in a process of its own, as `kubectl exec` runs it: what it printed
    (what is on, and the probe hits)."""
    env = {**os.environ, "POD_STATE_DIR": server.env["POD_STATE_DIR"]}
    result = subprocess.run(
        [sys.executable, "-m", "podkit.fault", *args], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
