"""Fixtures that start real gunicorn processes of both services; nothing in them is mocked."""

import pytest

from testbed.processes import Gunicorn

POD_NAME = "frontend-5d9c7b6f4-x8k2p"


@pytest.fixture
def start(tmp_path):
    """Start a service: start("backend", WEB_CONCURRENCY=3); every one started is stopped afterwards.

    `port=` puts it on a given port, e.g. where a stand-in or an earlier instance of it was; `prefix=` a
    command it runs under.
    """
    started = []

    def _start(service, ready_path="/ping", port=None, prefix=(), **env):
        server = Gunicorn(service, tmp_path, port=port, prefix=prefix, **env)
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
