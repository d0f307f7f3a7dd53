"""Scenarios 3 and 8: deleting the frontend pod, as the course checks it and under load."""

import threading
import time

import pytest

from podkit import stop
from testbed.traffic import Load

pytestmark = pytest.mark.e2e

GAME_OVER_LINE = '"POST /game-over HTTP/1.1"'  # gunicorn's access log, what the course counts
GAME_OVER_WINDOW = 15.0  # the course looks for the call within 15 s of the deletion
RESETS_ALLOWED = 1  # tests/integration/test_shutdown.py says why
PRE_STOP_SLEEP = 5  # s, the base's preStop hooks


def test_frontend_deletion__tells_the_backend_game_over_and_exits_0(cluster, record):
    """Deleting the frontend logs POST /game-over on the backend within 15 s; the frontend exits 0 in time,
    its log tells the stop step by step; then the backend's deletion does too."""
    backend, frontend = cluster.apply()
    assert backend.logs().count(GAME_OVER_LINE) == 0, "something called /game-over before the deletion"

    result = {}
    deletion = threading.Thread(target=lambda: result.update(termination=frontend.delete()))
    deleted_at = time.monotonic()
    deletion.start()
    seen_after = None
    while seen_after is None and time.monotonic() - deleted_at < GAME_OVER_WINDOW:
        if backend.logs().count(GAME_OVER_LINE) > 0:
            seen_after = time.monotonic() - deleted_at
        time.sleep(0.1)
    deletion.join(timeout=frontend.plan.grace + 30)
    termination = result["termination"]

    assert seen_after is not None, f"no {GAME_OVER_LINE} in the backend's log within {GAME_OVER_WINDOW:g} s"
    assert f"Received game-over signal from {frontend.name}" in backend.logs()
    assert termination.exit_code == 0 and not termination.sigkill, termination
    assert termination.total < frontend.plan.grace, termination
    frontend_steps = stop_steps(frontend, ["game-over sent by on_exit: ok", "exit"])
    backend_termination = backend.delete()
    backend_steps = stop_steps(backend, ["exit"])
    record("deletion -> POST /game-over in the backend's log", seen_after)
    record("frontend preStop hook (curl game-over; sleep 5)", termination.pre_stop)
    record("frontend SIGTERM -> exit (gunicorn drain + on_exit)", termination.sigterm_to_exit)
    record("frontend deletion total (preStop start -> exit 0)", termination.total)
    record("backend POST /game-over lines after the deletion", backend.logs().count(GAME_OVER_LINE), "lines")
    for name, steps, stopped in (
        ("frontend", frontend_steps, termination),
        ("backend", backend_steps, backend_termination),
    ):
        record(f"{name} stop timeline: preStop started -> exit (its own log)", steps[-1][0])
        assert steps[-1][0] <= stopped.total < frontend.plan.grace, (steps, stopped)


def stop_steps(pod, last):
    """The stop's timeline in the pod's log (podkit.stop), checked: the preStop hook's steps first, then each
    worker's SIGTERM, drained queue and last request, then the master's `last` steps, times from 0 on."""
    steps = stop.timeline(pod.logs())
    assert [step for _, _, step in steps[:2]] == [
        "preStop started",
        "drain set: /readyz answers 503, the Service stops sending new connections",
    ], steps
    workers = {pid for _, pid, _ in steps if pid is not None}
    assert len(workers) == 2, steps
    for worker in workers:
        mine = [step.split(" (")[0] for _, pid, step in steps if pid == worker]
        assert mine == ["SIGTERM received", "accept queue drained", "last in-flight request done"], steps
    assert [step for _, pid, step in steps[-len(last) :]] == last, steps
    times = [at for at, _, _ in steps]
    assert times[0] == 0.0 and None not in times, steps
    assert max(times[2:]) >= PRE_STOP_SLEEP, "SIGTERM came before the preStop sleep was over"
    return steps


def test_frontend_deletion__under_load_answers_what_came_before_sigterm(cluster, record):
    """Under steady /who-am-i load, deleting the frontend answers every request sent before its SIGTERM and
    drains its accept queue; what comes after is answered or refused, but for at most one reset in the
    instant of the close."""
    # With one replica, a Service keeps sending new connections to the terminating pod while it still
    # serves (kube-proxy falls back to terminating endpoints, KEP-1669), so the load goes on through the
    # SIGTERM. Every request sent before the SIGTERM must be answered; after it, gunicorn serves what the
    # kernel queued and closes its listening socket when none is left (podkit/gunicorn.py).
    _, frontend = cluster.apply()
    code = cluster.service_get("svc-backend", "/get-config").json()["code"]
    host = f"svc-frontend.{cluster.namespace}.svc.cluster.local:8080"
    load = Load(frontend.published_port(), "/who-am-i", host, threads=6).start()
    try:
        time.sleep(2.0)
        termination = frontend.delete()
        time.sleep(0.5)
    finally:
        load.stop()

    sigterm = termination.signalled_at
    # (sent, ended, path, reply), times in seconds from the moment the SIGTERM was sent
    outcomes = [(t - sigterm, t + r.elapsed - sigterm, path, r) for t, path, r in load.outcomes]
    before = [o for o in outcomes if o[0] < 0]
    after = [o for o in outcomes if o[0] >= 0]
    answered = [r for *_, r in outcomes if r.status is not None]
    right = {"name": frontend.name, "code": code}
    wrong = [r for r in answered if r.status != 200 or r.json() != right]
    lost_before = [(round(ended, 3), path, r.error) for _, ended, path, r in before if r.status is None]
    during_pre_stop = [r for sent, _, _, r in before if sent >= frontend.deleted_at - sigterm]
    answered_after = [r for *_, r in after if r.status is not None]
    reset = [(round(ended, 4), path, r.error) for _, ended, path, r in after if load.classify(r) == "dropped"]
    refused = [r for *_, r in after if load.classify(r) == "refused"]

    assert termination.exit_code == 0 and not termination.sigkill, termination
    assert not wrong, f"{len(wrong)} wrong answers, e.g. {wrong[:3]}"
    assert during_pre_stop, "no request was answered during the preStop hook"
    assert not lost_before, (
        f"requests sent before SIGTERM got no answer (s after SIGTERM): {lost_before[:10]}"
    )
    # The worker shrinks the accept queue to one connection before its last accept() and close(): that one
    # can land in between and be reset (podkit/gunicorn.py; plain gthread resets what it queued).
    assert "accept queue drained" in frontend.logs(), "the worker did not drain (podkit/gunicorn.py)"
    assert len(reset) <= RESETS_ALLOWED, f"connections reset after SIGTERM: {reset}"
    record("load: requests answered (200, right body)", len(answered), "requests")
    record("load: of them sent during the preStop hook", len(during_pre_stop), "requests")
    record(
        "load: of them sent after SIGTERM (queued before gunicorn closed its listener)",
        len(answered_after),
        "requests",
    )
    record("load: sent after SIGTERM, refused (listener closed or pod gone)", len(refused), "requests")
    record("load: sent after SIGTERM, reset (in the instant of the close)", len(reset), "requests")
    record("load: sent before SIGTERM and not answered (must be 0)", len(lost_before), "requests")
