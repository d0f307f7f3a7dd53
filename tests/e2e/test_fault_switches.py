"""Scenarios 21-23: the fault switches flipped with `kubectl exec`, and Kubernetes' answer to each.

`liveness fail --next 3` and `readiness fail` run on the production overlay, whose liveness probe is /livez
and readiness probe /readyz (in the k3s overlay both probe /health, so a readiness probe would spend the
--next count and /readyz moves no Service); `slow` runs on the course's overlay.
"""

import http.client
import itertools
import json
import threading
import time

import pytest

from podkit import stop

pytestmark = pytest.mark.e2e

FAULT = ("python", "-m", "podkit.fault")
SLOW = 3  # s


def fault(pod, *args):
    """`kubectl exec <pod> -- python -m podkit.fault ARGS`: what it printed."""
    result = pod.exec(*FAULT, *args)
    assert result.returncode == 0, result
    return json.loads(result.stdout)


def test_liveness_fail_next_3__restarts_the_container_once__production(production, record):
    """liveness fail --next 3: three failed liveness probes, one restart, Ready again, the switch off."""
    production.apply()
    pod = production.live_pods("frontend")[0]
    liveness = pod.plan.probes["liveness"]
    assert liveness.failure_threshold == 3, "--next 3 restarts only where liveness fails after 3 failures"

    switched_at = time.monotonic()
    assert fault(pod, "liveness", "fail", "--next", "3")["on"]["liveness"]["next"] == 3
    # At most 3 periods to the third failure, then the kill: preStop and SIGTERM within the probe's grace.
    kill_bound = liveness.termination_grace or pod.plan.grace
    pod.wait_for(
        lambda: pod.restarts == 1 and pod.running,
        timeout=liveness.period * (liveness.failure_threshold + 1) + liveness.timeout + kill_bound,
        what="restarted once",
    )
    killing = pod.terminations[0]
    assert killing.reason.startswith("liveness") and killing.exit_code == 0, killing
    # The kill followed exactly 3 failures in a row, all after the switch, each the fault's answer.
    probed = pod.probe_results("liveness", attempt=0)
    failures = list(itertools.takewhile(lambda r: not r.ok, reversed(probed)))
    assert len(failures) == 3 and all(r.at >= switched_at for r in failures), pod.describe()
    assert all(r.status == 503 and '"status": "fault"' in r.detail for r in failures), pod.describe()

    pod.wait_ready(timeout=30)
    pod.wait_for(
        lambda: pod.probe_results("liveness", attempt=1),
        timeout=liveness.period + liveness.timeout + 1,
        what="probed for liveness in its new container",
    )
    assert all(r.ok for r in pod.probe_results("liveness", attempt=1)), pod.describe()
    shown = fault(pod, "status")  # the state is the pod's: the new container sees the spent switch
    assert shown["on"] == {}
    hits = [(hit["path"], hit["status"], hit["answer"]) for hit in shown["probe_hits"]]
    assert hits.count(("/livez", 503, "fault")) == 3, hits
    assert pod.restarts == 1, pod.describe()
    record("21 liveness fail --next 3: switched -> container killed", killing.began_at - switched_at)
    record("21 ... switched -> Ready again", pod.ready_at[1] - switched_at)


def test_readiness_fail__takes_the_pod_out_of_the_service_and_off_puts_it_back__production(
    production, record
):
    """readiness fail: the pod leaves svc-frontend, which answers from the other pod only; off: back."""
    production.apply()
    pod, other = production.live_pods("frontend")
    readiness = pod.plan.probes["readiness"]
    out_bound = (
        readiness.period * readiness.failure_threshold + readiness.timeout + production.propagation_delay
    )

    switched_at = time.monotonic()
    assert fault(pod, "readiness", "fail")["on"]["readiness"]["reason"] == "set by hand"
    production.wait_endpoints(lambda: not production.in_endpoints(pod), "the pod out", out_bound + 5)
    out_at = time.monotonic()
    names = {production.service_get("svc-frontend", "/who-am-i").json()["name"] for _ in range(6)}
    assert names == {other.name}
    readyz = pod.kubelet_get("/readyz")
    assert (readyz.status, readyz.json()["status"]) == (503, "draining"), readyz

    off_at = time.monotonic()
    assert fault(pod, "off", "readiness")["on"] == {}
    back_bound = readiness.period + readiness.timeout + production.propagation_delay
    production.wait_endpoints(lambda: production.in_endpoints(pod), "the pod back", back_bound + 5)
    back_at = time.monotonic()
    names = {production.service_get("svc-frontend", "/who-am-i").json()["name"] for _ in range(6)}
    assert names == {pod.name, other.name}
    assert pod.restarts == 0, pod.describe()
    record("22 readiness fail -> out of svc-frontend", out_at - switched_at)
    record("22 off -> back in svc-frontend", back_at - off_at)


def test_slow_3__a_request_sent_before_the_deletion_gets_its_200_while_the_pod_stops(cluster, record):
    """slow 3, a request sent, then the pod deleted: the request gets its 200 after 3 s, answered after the
    stop began and before its workers' last in-flight request was done; the pod exits 0."""
    _, pod = cluster.apply()
    assert fault(pod, "slow", str(SLOW))["on"]["slow"]["seconds"] == SLOW

    path, host = (
        "/who-am-i?n=slow-during-deletion",
        f"svc-frontend.{cluster.namespace}.svc.cluster.local:8080",
    )
    sent_at = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", pod.published_port(), timeout=SLOW + 10)
    connection.request("GET", path, headers={"Host": host})  # returns once the whole request is sent
    result = {}
    deletion = threading.Thread(target=lambda: result.update(termination=pod.delete()))
    deletion.start()
    answer = connection.getresponse()
    body, answered_at = json.loads(answer.read()), time.monotonic()
    connection.close()
    deletion.join(timeout=pod.plan.grace + 30)
    termination = result["termination"]

    assert (answer.status, body["name"]) == (200, pod.name)
    assert SLOW <= answered_at - sent_at < 2 * SLOW
    assert termination.exit_code == 0 and not termination.sigkill, termination
    # Where its access line falls in the pod's log, among the stop's steps (podkit.stop), line by line.
    lines = pod.logs().splitlines()
    served = [i for i, line in enumerate(lines) if f'"GET {path} HTTP/1.1" 200' in line]
    steps = [(i, step) for i, line in enumerate(lines) for _, _, step in stop.timeline(line)]
    began = [i for i, step in steps if step == "preStop started"]
    last_done = [i for i, step in steps if step.startswith("last in-flight request done")]
    assert len(served) == len(began) == 1 and len(last_done) == 2, lines[-40:]
    assert began[0] < served[0] < min(last_done), lines[-40:]
    record("23 slow 3: request sent -> its 200, while the pod stops", answered_at - sent_at)
    record("23 ... deletion began -> the slow request's 200", answered_at - termination.began_at)
    record("23 ... deletion total (preStop start -> exit 0)", termination.total)
