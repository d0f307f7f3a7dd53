"""/health under load and through backend outages, both services as real gunicorn processes.

Each frontend worker asks the backend at most once per HEALTH_REUSE_SECONDS (frontend/backend_client.py,
SharedCall), so a flood of /health reaches the backend as a trickle, and a change of the backend's state
shows in every answer within the reuse time plus one call's own time.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.backend_faults import HEALTH_REUSE

pytestmark = pytest.mark.integration

CALL = 2 * 0.5  # the longest a backend call takes: connect and read, BACKEND_TIMEOUT each
BOUND = HEALTH_REUSE + CALL  # the README's bound on how stale a /health answer can be


def health_statuses(frontend, count, threads=16):
    with ThreadPoolExecutor(threads) as pool:
        return list(
            pool.map(lambda _: requests.get(frontend.url + "/health", timeout=5).status_code, range(count))
        )


def pings(backend):
    return backend.output().count('"GET /ping HTTP/1.1"')


def test_health__a_flood_reaches_the_backend_as_a_trickle(backend, frontend_for):
    """800 /health from 16 threads: all 200, and the backend sees at most one /ping per worker per
    HEALTH_REUSE_SECONDS (2 workers), not one per /health."""
    frontend = frontend_for(backend.url)
    before = pings(backend)
    started = time.monotonic()
    statuses = health_statuses(frontend, 800)
    elapsed = time.monotonic() - started
    asked = pings(backend) - before
    assert statuses == [200] * 800
    assert 1 <= asked <= 2 * (elapsed // HEALTH_REUSE + 1), (
        f"{asked} /ping for 800 /health in {elapsed:.2f} s"
    )
    assert asked / 800 <= 0.05


def wait_for(frontend, status, deadline):
    """Poll /health every 20 ms until it answers `status`: seconds from now, or None by the deadline."""
    started = time.monotonic()
    while time.monotonic() < deadline:
        if requests.get(frontend.url + "/health", timeout=5).status_code == status:
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def test_health__backend_loss_and_return_seen_within_the_bound(backend, frontend_for):
    """Backend stopped: every /health is 503 once the bound has passed since; back: every one is 200."""
    frontend = frontend_for(backend.url)
    assert health_statuses(frontend, 64) == [200] * 64  # both workers hold a fresh, good check

    backend.stop()
    stopped = time.monotonic()
    first_503 = wait_for(frontend, 503, stopped + BOUND)
    assert first_503 is not None, f"/health still 200 {BOUND} s after the backend stopped"
    time.sleep(max(0.0, stopped + BOUND - time.monotonic()))
    assert health_statuses(frontend, 64) == [503] * 64

    backend.start()  # on the same port; returns once it answers /ping
    back = time.monotonic()
    first_200 = wait_for(frontend, 200, back + BOUND)
    assert first_200 is not None, f"/health still 503 {BOUND} s after the backend came back"
    time.sleep(max(0.0, back + BOUND - time.monotonic()))
    assert health_statuses(frontend, 64) == [200] * 64
