"""Fixtures that start real gunicorn processes of both services; nothing in them is mocked."""

import time
from pathlib import Path

import pytest

from testbed.processes import Gunicorn

POD_NAME = "frontend-5d9c7b6f4-x8k2p"


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
