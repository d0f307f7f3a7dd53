"""Scenarios 9 to 11: `./manage.sh verify` grades the running pods, through a kubectl answering from them.

testbed/kubectl.py serves the calls verify makes from the harness's own state (objects, pods, logs, exec into
the real containers, deletion with preStop and SIGTERM and a replacement pod); its `kubectl` is first on PATH
for verify's process only.
"""

import json
import subprocess
import time
from pathlib import Path

import pytest

from testbed.kubectl import KubectlServer
from tests.verify_table import rows
from tools import verify

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
FULL_MARKS = sum(verify.POINTS.values())
# What the course cannot award while the backend is down: its two endpoints, the frontend's three (each
# needs the backend's answer), and the game-over call, which has no backend to reach.
NEED_THE_BACKEND = {
    "Backend /get-config",
    "Backend /ping",
    "Frontend /startup",
    "Frontend /who-am-i",
    "Frontend /health",
    "Graceful Shutdown",
}


def run_verify(kubectl):
    """`./manage.sh verify` with the harness's kubectl: (CompletedProcess, its table, seconds it took)."""
    started = time.monotonic()
    proc = subprocess.run(
        ["./manage.sh", "verify"],
        cwd=REPO,
        env=kubectl.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    took = time.monotonic() - started
    assert not kubectl.errors, kubectl.errors
    table = rows(proc.stdout)
    assert set(table) == {*verify.POINTS, "TOTAL"}, proc.stdout + proc.stderr
    return proc, table, took


def assert_lost_exactly(proc, table, lost):
    """Every row passed but `lost`, which got 0, and the total is what that leaves; exit 1 if any was lost."""
    report = proc.stdout + proc.stderr
    failed = {criterion for criterion in verify.POINTS if table[criterion][1] != table[criterion][0]}
    assert failed == lost, report
    assert all(table[criterion][1] == "0" for criterion in lost), report
    got = FULL_MARKS - sum(verify.POINTS[criterion] for criterion in lost)
    assert table["TOTAL"][:2] == [str(FULL_MARKS), str(got)], report
    assert proc.returncode == (1 if lost else 0), report


def deletions(kubectl):
    return [argv for argv in kubectl.calls if argv[2:3] == ["delete"]]


def test_verify__full_marks_on_the_running_pods(cluster, record):
    """On the rendered overlay verify scores every row, deletes the frontend pod once and sees it replaced."""
    backend, frontend = cluster.apply()
    with KubectlServer(cluster) as kubectl:
        proc, table, took = run_verify(kubectl)
    print(proc.stdout)

    assert_lost_exactly(proc, table, set())
    code = cluster.service_get("svc-backend", "/get-config").json()["code"]
    assert table["Frontend /who-am-i"][2] == f"name {frontend.name}, code {code}"
    assert deletions(kubectl) == [["-n", cluster.namespace, "delete", "pod", frontend.name, "--wait=false"]]
    replacement = cluster.pod("frontend")
    assert replacement is not frontend and replacement.ready.is_set(), replacement.describe()
    assert f"replacement {replacement.name} Ready" in table["Graceful Shutdown"][2]
    frontend.wait_for(frontend.gone.is_set, timeout=frontend.plan.grace + 10, what="gone")
    termination = frontend.terminations[-1]
    assert termination.pre_stop_exit == 0 and termination.exit_code == 0 and not termination.sigkill
    assert f"Received game-over signal from {frontend.name}" in backend.logs()
    record("./manage.sh verify, good deployment (full marks)", took)


def without_game_over(objects):
    """The overlay with a frontend that never says game-over: no preStop hook, and gunicorn run with an empty
    config file instead of gunicorn.conf.py (whose on_exit hook would say it)."""
    for obj in objects:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "frontend":
            container = obj["spec"]["template"]["spec"]["containers"][0]
            del container["lifecycle"]["preStop"]
            if not container["lifecycle"]:
                del container["lifecycle"]
            port = container["ports"][0]["containerPort"]
            container["args"] = [
                *("gunicorn", "--config", "/dev/null", "--bind", f"0.0.0.0:{port}"),
                *("--worker-class", "gthread", "--threads", "8", "--worker-tmp-dir", "/dev/shm"),
                *("--no-control-socket", "--access-logfile", "-", "frontend_site.wsgi:application"),
            ]
    return objects


@pytest.mark.parametrize("cluster", [without_game_over], indirect=True)
def test_verify__takes_the_courses_points_from_a_broken_deployment(cluster, record):
    """No game-over on deletion loses Graceful Shutdown only; the backend stopped, every row needing it."""
    backend, frontend = cluster.apply()
    with KubectlServer(cluster) as kubectl:
        proc, table, took = run_verify(kubectl)
        print(proc.stdout)
        assert_lost_exactly(proc, table, {"Graceful Shutdown"})
        assert "'POST /game-over' in backend log: 0 -> 0" in table["Graceful Shutdown"][2]
        assert backend.logs().count(verify.GAME_OVER_MARKER) == 0
        record("./manage.sh verify, no game-over (waits out 15 s)", took)

        backend.kill("KILL", restart=False)
        backend.wait_for(backend.gone.is_set, timeout=30, what="gone")
        proc, table, took = run_verify(kubectl)
        print(proc.stdout)
        assert_lost_exactly(proc, table, NEED_THE_BACKEND)
        assert table["Graceful Shutdown"][2].startswith("FAIL: ready pods: backend []")
        record("./manage.sh verify, no game-over and the backend stopped", took)
    assert deletions(kubectl) == [["-n", cluster.namespace, "delete", "pod", frontend.name, "--wait=false"]]
    frontend.wait_for(frontend.gone.is_set, timeout=frontend.plan.grace + 10, what="gone")
    termination = frontend.terminations[-1]
    assert termination.pre_stop is None and termination.exit_code == 0 and not termination.sigkill


def test_kubectl__refuses_the_calls_verify_does_not_make(steady):
    """The harness's kubectl answers verify's calls and fails loudly on any other, so verify cannot drift."""
    namespace = steady.namespace
    with KubectlServer(steady) as kubectl:

        def run(*argv):
            command = [str(kubectl.directory / "kubectl"), *argv]
            return subprocess.run(command, env=kubectl.env(), capture_output=True, text=True, timeout=60)

        got = run("-n", namespace, "get", "deployment", "frontend", "-o", "json")
        refused = [
            ("version",),
            ("-n", namespace, "get", "pods", "-o", "json"),
            ("-n", namespace, "get", "deployment", "frontend", "-o", "yaml"),
            ("-n", namespace, "exec", "deploy/frontend", "--", "true"),
            ("-n", namespace, "delete", "pod", steady.pod("frontend").name),
        ]
        answers = {argv: run(*argv) for argv in refused}
    assert got.returncode == 0, got.stderr
    assert verify.first_container(json.loads(got.stdout))["startupProbe"]["successThreshold"] == 1
    for argv, proc in answers.items():
        assert proc.returncode == 1, (argv, proc)
        assert proc.stderr.startswith("unsupported kubectl call: kubectl "), (argv, proc.stderr)
    assert not steady.pod("frontend").deleting
    assert not kubectl.errors
