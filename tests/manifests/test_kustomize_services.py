"""The two Services: svc-backend (ClusterIP 5000 -> 5000) and svc-frontend (NodePort 8080 -> 8080,
nodePort 30080 on k3s), each reaching containers[0]'s port."""

import pytest

SERVICES = {
    "backend": {"name": "svc-backend", "type": "ClusterIP", "port": 5000},
    "frontend": {"name": "svc-frontend", "type": "NodePort", "port": 8080},
}


def target_container_port(service: dict, container: dict) -> int:
    """The container port a Service's first port targets, resolving a named targetPort."""
    target = service["spec"]["ports"][0]["targetPort"]
    if isinstance(target, int):
        return target
    (port,) = [p["containerPort"] for p in container["ports"] if p.get("name") == target]
    return port


@pytest.mark.parametrize("app", SERVICES)
def test_service__type_and_port(overlay, app):
    """svc-<app> has the spec's type and one TCP port named http: 5000 or 8080."""
    expected = SERVICES[app]
    service = overlay.get("Service", expected["name"])
    assert service["spec"]["type"] == expected["type"]
    (port,) = service["spec"]["ports"]
    assert port["port"] == expected["port"]
    assert port["protocol"] == "TCP"
    assert port["name"] == "http"


@pytest.mark.parametrize("app", SERVICES)
def test_service__targets_the_container_port(overlay, app):
    """svc-<app>'s targetPort is the same number (5000 -> 5000, 8080 -> 8080) as containers[0]."""
    service = overlay.get("Service", SERVICES[app]["name"])
    container = overlay.get("Deployment", app)["spec"]["template"]["spec"]["containers"][0]
    assert target_container_port(service, container) == SERVICES[app]["port"]
    assert container["ports"][0]["containerPort"] == SERVICES[app]["port"]


def test_service__frontend_node_port_30080(overlay):
    """On k3s svc-frontend is reachable on every node at port 30080."""
    assert overlay.get("Service", "svc-frontend")["spec"]["ports"][0]["nodePort"] == 30080


def test_service__backend_is_cluster_internal(overlay):
    """svc-backend stays inside the cluster: no nodePort, no external IPs."""
    backend_service = overlay.get("Service", "svc-backend")
    assert "nodePort" not in backend_service["spec"]["ports"][0]
    assert "externalIPs" not in backend_service["spec"]
