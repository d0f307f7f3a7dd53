"""Scenarios 1 and 4: the pods start, and the frontend's startup probe waits for the backend."""

import time

import pytest

pytestmark = pytest.mark.e2e


def test_pods__start_and_pass_their_probes_within_budget(steady, record):
    """Both pods start together; startup passes within its budget, then liveness and readiness pass."""
    for pod in steady.pods:
        started = pod.started_at[0]
        liveness = pod.plan.probes["liveness"]
        # The first liveness probe after Started comes within one period; wait for one that passed.
        pod.wait_for(
            lambda pod=pod: any(r.ok for r in pod.probe_results("liveness", attempt=0)),
            timeout=liveness.period + liveness.timeout + 2,
            what="live (a liveness probe passed)",
        )
        startup = pod.plan.probes.get("startup")
        if startup:
            took = pod.startup_passed_at[0] - started
            assert took <= startup.budget, (
                f"startup probe passed after {took:.1f} s > {startup.budget:g} s\n{pod.describe()}"
            )
            assert any(r.ok for r in pod.probe_results("startup", attempt=0))
            record(f"{pod.plan.deployment}: container start -> startup probe passed", took)
        assert pod.ready.is_set(), pod.describe()
        assert pod.probe_results("readiness", attempt=0)[-1].ok, pod.describe()
        assert pod.probe_results("liveness", attempt=0)[-1].ok, pod.describe()
        assert pod.restarts == 0, pod.describe()
        record(f"{pod.plan.deployment}: container start -> Ready", pod.ready_at[0] - started)


def test_frontend_startup__waits_for_a_late_backend(cluster, record):
    """With no backend, the startup probe fails (503); it passes once the backend is up, within budget."""
    frontend = cluster.run_pod("frontend")
    startup = frontend.plan.probes["startup"]

    def backend_missing_answers():
        return [r for r in frontend.probe_results("startup") if r.status == 503 and "backend" in r.detail]

    # The app is up and says the backend is missing, at least twice: the kubelet keeps waiting.
    frontend.wait_for(
        lambda: len(backend_missing_answers()) >= 2, timeout=4 * startup.period + 15, what="503 twice"
    )
    assert not frontend.started.is_set(), frontend.describe()
    backend_created = time.monotonic()
    backend = cluster.run_pod("backend")

    frontend.wait_started(timeout=startup.budget)
    frontend.wait_ready(timeout=frontend.plan.probes["readiness"].period + 5)
    took = frontend.startup_passed_at[0] - frontend.started_at[0]
    assert took <= startup.budget, f"startup took {took:.1f} s > its budget {startup.budget:g} s"
    assert frontend.restarts == 0, frontend.describe()
    assert all(not r.ok for r in frontend.probe_results("startup") if r.at < backend_created)
    who = cluster.service_get("svc-frontend", "/who-am-i")
    config = cluster.service_get("svc-backend", "/get-config")
    assert who.status == 200 and who.json() == {"name": frontend.name, "code": config.json()["code"]}, who
    backend.wait_ready(timeout=30)
    record(
        "late backend: backend pod created -> frontend startup probe passed",
        frontend.startup_passed_at[0] - backend_created,
    )
    record("late backend: frontend container start -> startup probe passed", took)
