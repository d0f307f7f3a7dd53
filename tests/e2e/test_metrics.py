"""Scenario 18: a real Prometheus scrapes the running pods; after a frontend deletion, PromQL sees one
game-over received per path, the frontend's drain before it went away, and the requests the test sent.

Prometheus (Debian's package) runs on the host with static targets, the pods' published 127.0.0.1 ports,
scraped every second; the frontend's preStop is the production overlay's (drain first, then the base's
hook), so there is a drain to see.
"""

import json
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from testbed import podman as pm
from testbed.images import IMAGES, build_args
from testbed.net import free_port
from testbed.podspec import PRODUCTION, Manifests
from tests.prerequisites import find_tool, skip_or_fail

pytestmark = pytest.mark.e2e

SENT = 25  # GET /who-am-i the test sends through the frontend (no probe asks it)
DEADLINE = 45.0  # s, for anything Prometheus must come to see; generous for a loaded 2-core machine


def with_production_prestop(objects):
    """The k3s overlay, with each container's preStop as the production overlay renders it."""
    production = Manifests.render(PRODUCTION)
    for obj in objects:
        if obj["kind"] == "Deployment":
            drained = production.get("Deployment", obj["metadata"]["name"])["spec"]["template"]["spec"]
            obj["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = drained["containers"][0][
                "lifecycle"
            ]
    return objects


class Prometheus:
    """A Prometheus server of this test's own: static targets, 1 s scrapes, storage in a temporary folder."""

    def __init__(self, binary, folder, targets):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        jobs = [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for job, port in targets.items()
        ]
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": jobs}
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (folder / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def query(self, promql):
        """An instant query: {labels as a sorted tuple: value}."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as answer:
            data = json.load(answer)["data"]["result"]
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in data}

    def wait_for(self, promql, expected, timeout=DEADLINE):
        """Ask until `expected(answer)` holds for what `promql` answers; returns that answer."""
        deadline = time.monotonic() + timeout
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = self.query(promql)
            except OSError:
                answer = None  # not listening yet
            if answer is not None and expected(answer):
                return answer
            time.sleep(0.5)
        raise AssertionError(f"{promql}: {answer} after {timeout:g} s, expected {expected}")

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def prometheus_binary():
    path = find_tool("prometheus")
    if path is None:
        skip_or_fail("prometheus not found: sudo apt-get install prometheus")
    return path


def one(answer):
    """The value of a one-series answer (labels aside)."""
    (value,) = answer.values()
    return value


@pytest.mark.parametrize("cluster", [with_production_prestop], indirect=True)
def test_prometheus__sees_a_frontend_deletion(cluster, prometheus_binary, tmp_path, record):
    """Scraped by a real Prometheus: the requests sent, the build, the drain, then one game-over per path."""
    backend, frontend = cluster.apply()
    targets = {"backend": backend.published_port(), "frontend": frontend.published_port()}
    server = Prometheus(prometheus_binary, tmp_path, targets)
    try:
        server.wait_for("sum(up)", lambda answer: answer and one(answer) == 2)
        for _ in range(SENT):
            reply = cluster.service_get("svc-frontend", "/who-am-i")
            assert reply.status == 200, reply
        sent = 'http_requests_total{job="frontend",endpoint="/who-am-i",status="200"}'
        server.wait_for(sent, lambda answer: answer and one(answer) == SENT)
        builds = server.query("count by (version, git_commit) (build_info)")
        series = server.query("scrape_samples_scraped")
        assert one(server.query('pod_draining{job="frontend"}')) == 0

        termination = frontend.delete()

        per_path = server.wait_for(
            "sum by (path) (game_over_received_total)", lambda answer: len(answer) == 2
        )
        server.wait_for('up{job="frontend"}', lambda answer: answer and one(answer) == 0)
        drained = one(server.query('max_over_time(pod_draining{job="frontend"}[10m])'))
        counted = one(server.query(f"max_over_time({sent}[10m])"))
    finally:
        server.close()

    wanted = build_args()  # what this session's images were built with (read once)
    assert builds == {(("git_commit", wanted["GIT_COMMIT"]), ("version", wanted["VERSION"])): 2}
    for image in IMAGES:  # the same two facts as OCI labels of the images the pods run
        inspected = pm.podman("image", "inspect", "--format", "{{json .Labels}}", image).stdout
        assert json.loads(inspected)["org.opencontainers.image.revision"] == wanted["GIT_COMMIT"]
    assert termination.exit_code == 0 and not termination.sigkill, termination
    assert per_path == {(("path", "preStop"),): 1, (("path", "sigterm"),): 1}
    assert drained == 1
    assert counted == SENT
    for labels, value in series.items():
        record(f"prometheus: series in one scrape of the {dict(labels)['job']} pod", int(value), "series")
    for labels, value in per_path.items():
        record(f"prometheus: game-overs received, path {dict(labels)['path']}", int(value), "count")
    record("prometheus: /who-am-i 200s counted (the test sent 25)", int(counted), "requests")
