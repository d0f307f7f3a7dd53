"""Scenarios 12-17 and 19: rollouts, a drain, evictions and a backend outage under steady load through
svc-frontend.

The load enters as a client of the Service (its ClusterIP's port published on the host, as a NodePort):
/who-am-i and /health in turn, about 50 requests a second, every answer checked. The production overlay's
minReadySeconds (10) is shortened to MIN_READY here: it guards against a pod that fails soon after becoming
Ready, which these images do not do, and 10 s per pod would add a minute of CI per rollout; the order the
controller follows (surge, wait, then delete) is the same, and every rollout is checked against its
Deployment's rules (maxSurge, maxUnavailable, minReadySeconds: testbed.rollout.broken_rules).

The rollouts (12, 13, 14, 16) run at ROLLOUT_PROPAGATION_DELAY (testbed/cluster.py), just under the preStop
sleep, and keep the load on until every old pod has exited: a request lost between an old pod's SIGTERM and
its removal from the endpoints is seen, and a sleep shorter than the delay fails (14).
"""

import contextlib
import re
import time
from dataclasses import dataclass, field

import pytest

from testbed.cluster import ROLLOUT_PROPAGATION_DELAY, EvictionRefused
from testbed.podspec import Manifests
from testbed.rollout import broken_rules
from testbed.traffic import Load
from tests.backend_faults import failure_body

pytestmark = pytest.mark.e2e

MIN_READY = 3  # s, in place of the overlay's 10 (module docstring)
PATHS = ("/who-am-i", "/health")
SETTLE = 2.0  # s of load before and after each disruption
STOPPED = 60.0  # s an old pod may take from its deletion to its exit (preStop 5 s, then SIGTERM)


def shorter_min_ready(objects):
    for obj in objects:
        if obj["kind"] == "Deployment":
            obj["spec"]["minReadySeconds"] = MIN_READY
    return objects


def pre_stop_sleep(seconds):
    """The production overlay (MIN_READY) with the frontend's preStop sleeping `seconds` (the number after
    the script's last `sleep ` replaced, whatever the hook runs before it), and one frontend replica: one
    old pod's stop shows the failure, and one rollout step instead of two saves CI time."""

    def variant(objects):
        for obj in shorter_min_ready(objects):
            if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "frontend":
                obj["spec"]["replicas"] = 1
                hook = obj["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]
                script = hook["command"][-1]
                head, sleep, tail = script.rpartition("sleep ")
                assert sleep and re.match(r"\d", tail), script
                hook["command"][-1] = head + sleep + re.sub(r"^\d+(\.\d+)?", str(seconds), tail)
        return objects

    return variant


def base_probes(objects):
    """The production overlay (MIN_READY) with the frontend probed as the base probes it: readiness and
    liveness on /health, which calls the backend."""
    base = Manifests.render().get("Deployment", "frontend")["spec"]["template"]["spec"]["containers"][0]
    for obj in shorter_min_ready(objects):
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "frontend":
            container = obj["spec"]["template"]["spec"]["containers"][0]
            container["livenessProbe"] = base["livenessProbe"]
            container["readinessProbe"] = base["readinessProbe"]
    assert base["readinessProbe"]["httpGet"]["path"] == base["livenessProbe"]["httpGet"]["path"] == "/health"
    return objects


@dataclass
class Tally:
    """What the load saw: every request sent, and the ones that failed (no answer, or a wrong one)."""

    sent: int = 0
    reset: int = 0  # connected, then no answer
    failed: list = field(default_factory=list)  # (sent at, path, status or error, body)
    answered_by: set = field(default_factory=set)
    health_503: list = field(default_factory=list)  # (sent at, body) of /health answered 503


def tally(cluster, load, code, backend_down=()):
    """Check every answer: /who-am-i names a frontend pod of the cluster and the backend's code; /health is
    healthy, or (sent within `backend_down`, a (start, end) span) the clear 503 of a missing backend."""
    frontends = {pod.name for pod in cluster.pods if pod.plan.deployment == "frontend"}
    result = Tally(sent=len(load.outcomes))
    for sent, path, reply in load.outcomes:
        if reply.status is None:
            result.reset += load.classify(reply) == "dropped"
            result.failed.append((sent, path, reply.error, b""))
            continue
        body = reply.json()
        if path.startswith("/who-am-i"):
            right = reply.status == 200 and body.get("name") in frontends and body.get("code") == code
            result.answered_by.add(body.get("name"))
        elif reply.status == 503 and backend_down and backend_down[0] <= sent <= backend_down[1]:
            # "hung" while the endpoints still hold the dead pods (propagation delay), then "unreachable"
            right = body in (failure_body("/health", fault, "") for fault in ("hung", "unreachable"))
            result.health_503.append((sent, body))
        else:
            right = (reply.status, body) == (200, {"status": "healthy"})
        if not right:
            result.failed.append((sent, path, reply.status, reply.body[:200]))
    return result


def load_through(cluster):
    """About 50 requests a second to svc-frontend, /who-am-i and /health in turn, a new connection each."""
    port, host = cluster.service_port("svc-frontend"), cluster.service_host("svc-frontend")
    return Load(port, PATHS, host, threads=4, pause=0.06).start()


def record_tally(record, scenario, result):
    record(f"{scenario}: requests sent", result.sent, "requests")
    record(f"{scenario}: failed", len(result.failed), "requests")
    record(f"{scenario}: reset", result.reset, "requests")


def rollout_under_load(cluster, deployment):
    """apply, then `rollout restart` of `deployment` under load, at ROLLOUT_PROPAGATION_DELAY, until every
    old pod has exited and left the endpoints; the rollout kept its Deployment's rules. Returns (Rollout,
    Tally, the new pods)."""
    cluster.apply()
    code = cluster.service_get("svc-backend", "/get-config").json()["code"]
    cluster.propagation_delay = ROLLOUT_PROPAGATION_DELAY  # from here on: the apply needs no busy node
    old = cluster.live_pods(deployment)
    load = load_through(cluster)
    try:
        time.sleep(SETTLE)
        wait_available(old)
        rollout = cluster.rollout_restart(deployment)
        stopped = [pod.gone.wait(STOPPED) for pod in old]
        cluster.wait_endpoints(lambda: not any(cluster.in_endpoints(p) for p in old), "the old pods out")
    finally:
        load.stop()
    assert all(stopped), [pod.describe() for pod in old]
    broken = broken_rules(rollout)
    moves = [(f"+{at - rollout.started_at:.2f} s", what, p and p.name) for at, what, p in rollout.events]
    assert broken == [], (broken, moves)
    new = cluster.live_pods(deployment)
    assert len(new) == new[0].plan.replicas and not {p.name for p in old} & {p.name for p in new}
    return rollout, tally(cluster, load, code), new


def wait_available(pods):
    """Until each pod is available (Ready for its minReadySeconds), as `kubectl rollout status` after the
    apply sees the Deployment: a rollout started before would delete the pods at once."""
    for pod in pods:
        min_ready = pod.plan.min_ready
        pod.wait_for(
            lambda p=pod, s=min_ready: p.ready_since is not None and time.monotonic() - p.ready_since >= s,
            30,
            f"Ready for {min_ready:g} s",
        )


def removal_and_sigterm(cluster, pod):
    """(when the pod's Service published endpoints without it after its deletion, when SIGTERM was sent)."""
    service = cluster.manifests.services_selecting(pod.plan.namespace, pod.plan.labels)[0]["metadata"]["name"]
    removed = min(
        at
        for at, name, ips in cluster.endpoint_history
        if name == service and at > pod.deleted_at and pod.ip not in ips
    )
    return removed, pod.terminations[0].signalled_at


def assert_no_request_lost(cluster, rollout, result, record, scenario):
    """0 failed, 0 reset; each old pod left its Service's endpoints before its SIGTERM (the sleep's slack
    recorded)."""
    assert result.failed == [], result.failed[:10]
    assert result.reset == 0
    slack = [sigterm - removed for removed, sigterm in (removal_and_sigterm(cluster, p) for p in rollout.old)]
    assert min(slack) > 0, slack
    record_tally(record, scenario, result)
    record(f"{scenario}: duration", rollout.finished_at - rollout.started_at)
    record(f"{scenario}: least SIGTERM - removal from the endpoints", min(slack))


@pytest.mark.parametrize("production", [shorter_min_ready], indirect=True)
def test_frontend_rollout__drops_no_request__production(production, record):
    """Production overlay, `rollout restart` of the frontend under load: 0 failed, 0 reset."""
    rollout, result, new = rollout_under_load(production, "frontend")
    assert {pod.name for pod in new} <= result.answered_by, "the load never reached the new pods"
    assert_no_request_lost(production, rollout, result, record, "12 production frontend rollout")


@pytest.mark.parametrize("production", [shorter_min_ready], indirect=True)
def test_backend_rollout__fails_no_frontend_request__production(production, record):
    """Production overlay, `rollout restart` of the backend under load: 0 failed frontend requests."""
    rollout, result, _ = rollout_under_load(production, "backend")
    assert_no_request_lost(production, rollout, result, record, "13 production backend rollout")


@pytest.mark.parametrize(
    "production",
    [pytest.param(pre_stop_sleep(0), id="sleep_0"), pytest.param(pre_stop_sleep(1), id="sleep_1")],
    indirect=True,
)
def test_frontend_rollout__fails_requests_within_the_propagation_delay__short_pre_stop_sleep(
    production, record, request
):
    """preStop sleep 0 or 1 (under the propagation delay): requests fail between an old pod's SIGTERM and
    its removal from the endpoints, and only then."""
    rollout, result, _ = rollout_under_load(production, "frontend")
    windows = [removal_and_sigterm(production, pod)[::-1] for pod in rollout.old]  # (SIGTERM, removal)
    assert result.failed, "no request failed: the preStop sleep would not be needed"
    outside = [f for f in result.failed if not any(s - 0.5 <= f[0] <= e for s, e in windows)]
    assert outside == [], (outside, windows)
    assert all(0 < e - s <= production.propagation_delay for s, e in windows), windows
    scenario = f"14 production frontend rollout, preStop {request.node.callspec.id.replace('_', ' ')}"
    record_tally(record, scenario, result)
    record("14 ... longest SIGTERM -> removal from the endpoints", max(e - s for s, e in windows))


@dataclass
class Outage:
    code: str  # the backend's code, before it went
    frontends: list
    load: Load
    down_at: float  # time.monotonic() when the backends were killed


@contextlib.contextmanager
def backend_outage_under_load(cluster):
    """apply, load through svc-frontend, then every backend pod killed for good (its node is gone, say: no
    replacement until the test starts one); yields the Outage once they went, and stops the load after."""
    cluster.apply()
    code = cluster.service_get("svc-backend", "/get-config").json()["code"]
    frontends = cluster.live_pods("frontend")
    load = load_through(cluster)
    try:
        time.sleep(SETTLE)
        down_at = time.monotonic()
        backends = [p for p in cluster.pods if p.plan.deployment == "backend"]
        for backend in cluster.live_pods("backend"):
            backend.kill("KILL", restart=False)
        for backend in backends:
            assert backend.gone.wait(10), backend.describe()
        yield Outage(code, frontends, load, down_at)
    finally:
        load.stop()


@pytest.mark.parametrize("production", [shorter_min_ready], indirect=True)
def test_backend_outage__keeps_the_frontends_ready_and_answering__production(production, record):
    """Backend down 30 s: frontends stay Ready, unrestarted, /who-am-i 0 failures, /health a clear 503."""
    with backend_outage_under_load(production) as outage:
        time.sleep(30)
        back_at = time.monotonic()
        for _ in range(2):
            production.run_pod("backend")
        production.wait_endpoints(lambda: production.published_endpoints("svc-backend"), "a backend", 60)
        healthy_at = time.monotonic()
        time.sleep(SETTLE)
    frontends, down_at = outage.frontends, outage.down_at
    result = tally(production, outage.load, outage.code, backend_down=(down_at, healthy_at + 1.0))
    assert result.failed == [], result.failed[:10]
    assert len(result.health_503) > 100, "the backend's absence was not seen by /health"
    assert all(pod.restarts == 0 for pod in frontends), [pod.describe() for pod in frontends]
    assert all(pod.ready_since is not None and pod.ready_since < down_at for pod in frontends), [
        pod.describe() for pod in frontends
    ]
    last_health = [
        r for sent, path, r in outage.load.outcomes if path.startswith("/health") and sent > healthy_at + 1
    ]
    assert last_health and all(r.status == 200 for r in last_health), last_health[:5]
    record_tally(record, "15 production backend down 30 s", result)
    record("15 ... of them /health answered 503 (the backend is down)", len(result.health_503), "requests")
    record("15 ... backend back -> svc-backend has an endpoint again", healthy_at - back_at)


@pytest.mark.parametrize("production", [base_probes], indirect=True)
def test_backend_outage__empties_svc_frontend_and_restarts_the_frontends__base_probes(production, record):
    """Scenario 15 with the base's probes (/health): the frontends leave svc-frontend, /who-am-i fails, and
    liveness restarts every frontend."""
    with backend_outage_under_load(production) as outage:
        for pod in outage.frontends:  # the liveness kill runs the preStop hook (5 s) before the restart
            pod.wait_for(lambda p=pod: p.restarts >= 1, 60, "restarted")
        restarted_at = time.monotonic()
    down_at = outage.down_at
    result = tally(production, outage.load, outage.code, backend_down=(down_at, restarted_at))
    emptied = [
        at
        for at, service, ips in production.endpoint_history
        if service == "svc-frontend" and at > down_at and not ips
    ]
    lost = [f for f in result.failed if f[1].startswith("/who-am-i")]
    assert emptied, "svc-frontend kept an endpoint through the backend's outage"
    assert lost and all(f[0] > down_at for f in lost), lost[:5]
    assert all(pod.terminations[0].reason.startswith("liveness") for pod in outage.frontends), [
        pod.describe() for pod in outage.frontends
    ]
    record_tally(record, "19 production backend down, base probes", result)
    record("19 ... backend down -> svc-frontend empty", min(emptied) - down_at)
    record("19 ... backend down -> every frontend restarted", restarted_at - down_at)


@pytest.mark.parametrize("production", [shorter_min_ready], indirect=True)
def test_drain_by_hand__takes_the_pod_out_of_the_service_in_time__production(production, record):
    """An eviction goes while the PDB allows it and is refused the next instant; a drain by hand
    (`podkit.fault readiness fail`) leaves svc-frontend within readiness period x threshold + propagation."""
    production.apply()
    code = production.service_get("svc-backend", "/get-config").json()["code"]
    evicted, kept = production.live_pods("frontend")
    load = load_through(production)
    try:
        time.sleep(SETTLE)
        # `kubectl drain` of the node: the first eviction leaves one healthy pod, the PDB's minAvailable
        replacement = production.evict(evicted)
        with pytest.raises(EvictionRefused):
            production.evict(kept)
        replacement.wait_ready(60)
        production.wait_endpoints(lambda: production.in_endpoints(replacement), "the replacement")
        pod = replacement
        readiness = pod.plan.probes["readiness"]
        bound = readiness.period * readiness.failure_threshold + production.propagation_delay
        drained_at = time.monotonic()
        drain = pod.exec("python", "-m", "podkit.fault", "readiness", "fail", "--reason", "e2e")
        assert drain.returncode == 0, drain
        production.wait_endpoints(lambda: not production.in_endpoints(pod), "the drained pod out", bound + 10)
        out_at = time.monotonic()
        time.sleep(SETTLE)
        with pytest.raises(EvictionRefused):  # the one pod left in svc-frontend is the PDB's minAvailable
            production.evict(kept)
        evicted_stopped = evicted.gone.wait(STOPPED)  # its whole stop under load (it ended during the drain)
    finally:
        load.stop()
    assert evicted_stopped, evicted.describe()
    result = tally(production, load, code)
    after = [r for sent, path, r in load.outcomes if sent > out_at + 0.5 and path.startswith("/who-am-i")]
    assert result.failed == [], result.failed[:10]
    assert out_at - drained_at <= bound + readiness.timeout, (out_at - drained_at, bound)
    assert after and all(r.json()["name"] != pod.name for r in after), "the drained pod still got requests"
    record_tally(record, "17 production eviction, then drain by hand", result)
    record(f"17 ... drain -> out of svc-frontend (bound {bound:g} s)", out_at - drained_at)


def test_frontend_rollout__drops_no_request__course(cluster, record):
    """Course overlay (one replica), `rollout restart` of the frontend under load: 0 failed, 0 reset."""
    rollout, result, new = rollout_under_load(cluster, "frontend")
    assert {pod.name for pod in new} <= result.answered_by, "the load never reached the new pod"
    assert_no_request_lost(cluster, rollout, result, record, "16 course frontend rollout")
