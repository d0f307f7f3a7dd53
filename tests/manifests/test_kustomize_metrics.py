"""Where Prometheus scrapes: the pod templates' prometheus.io annotations (every overlay), the production
overlay's ServiceMonitor, and the NetworkPolicy that lets its Prometheus reach the backend and no more."""

import pytest

from .test_kustomize_networkpolicy import admits

APPS = ("backend", "frontend")
PORTS = {"backend": 5000, "frontend": 8080}


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("name", ["k3s", "production"])
def test_pod_template__says_where_to_scrape(rendered, name, app):
    """prometheus.io/scrape, port (the container's) and path (/metrics, which podkit serves) on each pod."""
    template = rendered(name).get("Deployment", app)["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    ports = [port["containerPort"] for port in template["spec"]["containers"][0]["ports"]]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORTS[app]) and PORTS[app] in ports
    assert annotations["prometheus.io/path"] == "/metrics"


def test_servicemonitor__scrapes_both_services_on_their_http_port(production):
    """The ServiceMonitor selects exactly svc-backend and svc-frontend, by a port each names, at /metrics."""
    (monitor,) = production.of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"matchNames": [monitor["metadata"]["namespace"]]}
    assert set(spec["selector"]) == {"matchLabels"}
    selected = {
        service["metadata"]["name"]
        for service in production.of_kind("Service")
        if spec["selector"]["matchLabels"].items() <= service["metadata"].get("labels", {}).items()
    }
    assert selected == {"svc-backend", "svc-frontend"}
    (endpoint,) = spec["endpoints"]
    assert endpoint["path"] == "/metrics"
    for name in selected:
        assert endpoint["port"] in [port["name"] for port in production.get("Service", name)["spec"]["ports"]]
    seconds = {key: float(endpoint[key].removesuffix("s")) for key in ("interval", "scrapeTimeout")}
    assert 0 < seconds["scrapeTimeout"] <= seconds["interval"]


def backend_admits(manifests, namespace, labels, port):
    """Whether any of the backend's NetworkPolicies lets (namespace, labels) in on TCP `port`."""
    return any(
        admits(policy, namespace, labels, port, "TCP")
        for policy in manifests.of_kind("NetworkPolicy")
        if policy["spec"]["podSelector"] == {"matchLabels": {"app": "backend"}}
    )


PROMETHEUS = {"app.kubernetes.io/name": "prometheus"}


@pytest.mark.parametrize(
    ("namespace", "labels", "port", "expected"),
    [
        pytest.param("monitoring", PROMETHEUS, 5000, True, id="prometheus"),
        pytest.param(
            "monitoring", {"app.kubernetes.io/name": "grafana"}, 5000, False, id="other-monitoring-pod"
        ),
        pytest.param("default", PROMETHEUS, 5000, False, id="prometheus-elsewhere"),
        pytest.param("monitoring", PROMETHEUS, 5001, False, id="other-port"),
        pytest.param("task-03", {"run": "test"}, 5000, True, id="course-test-pod"),
    ],
)
def test_networkpolicy__production_lets_prometheus_scrape_the_backend(
    production, namespace, labels, port, expected
):
    """Production: the operator's Prometheus (namespace monitoring) reaches backend:5000, nothing more."""
    assert backend_admits(production, namespace, labels, port) is expected


def test_networkpolicy__k3s_lets_only_task_03_scrape_the_backend(overlay):
    """k3s: the backend's policy is the course's (task-03 only), so a scraper must run in task-03."""
    assert backend_admits(overlay, "task-03", {}, 5000)
    assert not backend_admits(overlay, "monitoring", PROMETHEUS, 5000)
