"""Scenarios 5 and 6: the backend dies, or freezes, under a running frontend (tests/backend_faults.py)."""

import itertools
import re
import time

import pytest

from tests.backend_faults import ANSWER_BOUND, HEALTH_REUSE, failure_body

pytestmark = pytest.mark.e2e


def test_frontend_liveness__restarts_the_container_while_the_backend_is_dead(cluster, record):
    """Backend killed: /health fails, liveness restarts the frontend; it recovers once a backend is back."""
    backend, frontend = cluster.apply()
    liveness, startup = frontend.plan.probes["liveness"], frontend.plan.probes["startup"]

    killed_at = time.monotonic()
    backend.kill("KILL", restart=False)  # its node is gone, say: no replacement until we start one
    assert backend.gone.wait(10), backend.describe()
    # Until svc-backend's endpoints lose the dead pod, connections to its address time out ("hung").
    cluster.wait_endpoints(lambda: not cluster.published_endpoints("svc-backend"), "svc-backend empty")
    time.sleep(max(0.0, killed_at + HEALTH_REUSE - time.monotonic()))  # no check from before the kill
    health = frontend.kubelet_get("/health")
    assert health.status == 503, health
    assert health.json() == failure_body("/health", "unreachable", frontend.name), health

    restart_budget = (
        liveness.period * (liveness.failure_threshold + 1) + liveness.timeout + frontend.plan.grace
    )
    frontend.wait_for(
        lambda: frontend.restarts == 1 and frontend.running, timeout=restart_budget, what="restarted"
    )
    # The kill followed exactly failureThreshold failures in a row, all after the backend was killed.
    results = frontend.probe_results("liveness", attempt=0)
    failures = list(itertools.takewhile(lambda r: not r.ok, reversed(results)))[::-1]
    assert len(failures) == liveness.failure_threshold, frontend.describe()
    assert all(r.at >= killed_at and r.status == 503 for r in failures), frontend.describe()
    killing = frontend.terminations[0]
    assert killing.reason.startswith("liveness") and killing.exit_code == 0 and not killing.sigkill, killing
    # preStop with the backend gone: curl gives up within its --max-time, then the drain sleep runs.
    hook = " ".join(frontend.plan.pre_stop)
    bound = float(re.search(r"--max-time (\d+)", hook)[1]) + float(re.search(r"sleep (\d+)", hook)[1])
    assert killing.pre_stop <= bound + 1.5, (killing.pre_stop, hook)

    # While there is still no backend, the new container is up but does not pass its startup probe.
    frontend.wait_for(
        lambda: any(r.status == 503 for r in frontend.probe_results("startup", attempt=1)),
        timeout=3 * startup.period + 10,
        what="answering its startup probe with 503",
    )
    assert not frontend.started.is_set(), frontend.describe()
    back_at = time.monotonic()
    new_backend = cluster.run_pod("backend")
    frontend.wait_ready(timeout=startup.budget)

    assert frontend.restarts == 1, frontend.describe()
    assert frontend.startup_passed_at[1] - frontend.started_at[1] <= startup.budget
    who = cluster.service_get("svc-frontend", "/who-am-i")
    assert who.status == 200 and who.json()["name"] == frontend.name, who
    assert who.json()["code"] == cluster.service_get("svc-backend", "/get-config").json()["code"]
    new_backend.wait_ready(timeout=30)
    record("backend killed -> first failed liveness probe of the frontend", failures[0].at - killed_at)
    record("first failed liveness probe -> kill begins", killing.began_at - failures[0].at)
    record("liveness kill of the frontend: preStop (backend gone)", killing.pre_stop)
    record("liveness kill of the frontend: SIGTERM -> exit", killing.sigterm_to_exit)
    record("backend killed -> frontend container restarted", frontend.started_at[1] - killed_at)
    record("new backend pod created -> restarted frontend Ready", frontend.ready_at[1] - back_at)


def test_frontend_health__answers_503_within_the_probe_timeout_when_the_backend_is_frozen(cluster, record):
    """Backend SIGSTOPped: /health answers 503 within the liveness probe's timeoutSeconds, no restart."""
    backend, frontend = cluster.apply()
    liveness = frontend.plan.probes["liveness"]

    frozen_at = time.monotonic()
    backend.freeze()
    try:
        time.sleep(HEALTH_REUSE)  # no /health answer from a check made before the freeze
        health = frontend.kubelet_get("/health", timeout=liveness.timeout)
        checked_since = frozen_at + HEALTH_REUSE
        frontend.wait_for(
            lambda: frontend.probe_results("liveness", since=checked_since),
            timeout=liveness.period + liveness.timeout + 2,
            what="probed for liveness while the backend is frozen",
        )
        probed = frontend.probe_results("liveness", since=checked_since)[0]
    finally:
        backend.thaw()

    assert health.status == 503 and health.elapsed < liveness.timeout, health
    assert health.elapsed < ANSWER_BOUND, health
    assert b"timed out" in health.body, health  # the backend was reached and did not answer
    assert health.json() == failure_body("/health", "hung", frontend.name), health
    assert probed.status == 503 and probed.elapsed < liveness.timeout, probed
    frontend.wait_for(lambda: frontend.kubelet_get("/health").status == 200, timeout=10, what="healthy again")
    assert frontend.restarts == 0, frontend.describe()
    record("frozen backend: frontend /health answered 503 after", health.elapsed)
