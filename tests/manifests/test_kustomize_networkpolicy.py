"""The two NetworkPolicies: the backend admits only pods of namespace task-03 on TCP 5000, the frontend
admits anyone on TCP 8080 only, and every pod the overlay creates is selected by one of them.

Besides the fields, `admits()` below applies the NetworkPolicy ingress rules (the subset these
policies use: namespaceSelector/podSelector with matchLabels, numeric ports) to sample connections,
so the tests say who gets in rather than only what the YAML spells.
https://kubernetes.io/docs/concepts/services-networking/network-policies/#behavior-of-to-and-from-selectors
"""

import pytest

NAMESPACE = "task-03"
# The label the API server puts on every namespace, with the namespace's name as its value.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
PORTS = {"backend": 5000, "frontend": 8080}


def labels_match(selector: dict, labels: dict) -> bool:
    """A LabelSelector against a label set; only matchLabels is understood (enough for ours)."""
    assert set(selector) <= {"matchLabels"}, f"unsupported selector {selector}"
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def peer_matches(peer: dict, policy_namespace: str, source_namespace: str, source_labels: dict) -> bool:
    """One `from` entry: namespaceSelector and podSelector together mean both must match."""
    assert "ipBlock" not in peer, "ipBlock peers are not used here"
    if "namespaceSelector" in peer:
        namespace_ok = labels_match(peer["namespaceSelector"], {NAMESPACE_NAME_LABEL: source_namespace})
    else:
        namespace_ok = source_namespace == policy_namespace
    return namespace_ok and labels_match(peer.get("podSelector", {}), source_labels)


def port_matches(rule_ports: list[dict] | None, port: int, protocol: str) -> bool:
    """A rule's `ports` list; absent or empty means every port."""
    if not rule_ports:
        return True
    for entry in rule_ports:
        assert isinstance(entry.get("port"), int), f"only numeric ports are checked here: {entry}"
        first, last = entry["port"], entry.get("endPort", entry["port"])
        if entry.get("protocol", "TCP") == protocol and first <= port <= last:
            return True
    return False


def admits(policy: dict, source_namespace: str, source_labels: dict, port: int, protocol: str) -> bool:
    """Whether this policy lets a pod (namespace, labels) open a connection to `port` of its pods."""
    for rule in policy["spec"].get("ingress", []):
        peers = rule.get("from")
        from_ok = not peers or any(
            peer_matches(peer, policy["metadata"]["namespace"], source_namespace, source_labels)
            for peer in peers
        )
        if from_ok and port_matches(rule.get("ports"), port, protocol):
            return True
    return False


@pytest.fixture(scope="module")
def policies(overlay) -> dict[str, dict]:
    """The rendered NetworkPolicies by app: {"backend": ..., "frontend": ...}."""
    return {app: overlay.get("NetworkPolicy", app) for app in PORTS}


@pytest.mark.parametrize("app", PORTS)
def test_networkpolicy__selects_the_apps_pods(policies, overlay, app):
    """NetworkPolicy <app> selects exactly `app: <app>`, the Deployment's and Service's selector."""
    selector = policies[app]["spec"]["podSelector"]
    assert selector == {"matchLabels": {"app": app}}
    assert overlay.get("Deployment", app)["spec"]["selector"] == selector
    assert overlay.get("Service", f"svc-{app}")["spec"]["selector"] == selector["matchLabels"]


@pytest.mark.parametrize("app", PORTS)
def test_networkpolicy__governs_ingress_only(policies, app):
    """Both policies isolate ingress and leave egress alone (DNS and svc-backend stay reachable)."""
    assert policies[app]["spec"]["policyTypes"] == ["Ingress"]
    assert "egress" not in policies[app]["spec"]


@pytest.mark.parametrize("app", PORTS)
def test_networkpolicy__lives_in_task_03(policies, app):
    """Both policies are in namespace task-03, where the pods they select run."""
    assert policies[app]["metadata"]["namespace"] == NAMESPACE


def test_networkpolicy__backend_admits_namespace_task_03_by_name(policies):
    """The backend's one rule: any pod in the namespace labelled kubernetes.io/metadata.name=task-03."""
    (rule,) = policies["backend"]["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: NAMESPACE}}}]


@pytest.mark.parametrize("app", PORTS)
def test_networkpolicy__opens_only_the_container_port(policies, overlay, app):
    """The one rule opens TCP 5000 or 8080 only: containers[0]'s port, the Service's targetPort."""
    (rule,) = policies[app]["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": PORTS[app]}]
    container = overlay.get("Deployment", app)["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"][0]["containerPort"] == PORTS[app]
    assert overlay.get("Service", f"svc-{app}")["spec"]["ports"][0]["targetPort"] == PORTS[app]


def test_networkpolicy__frontend_admits_every_source(policies):
    """The frontend's rule has no `from`: the NodePort is for clients anywhere."""
    (rule,) = policies["frontend"]["spec"]["ingress"]
    assert "from" not in rule


@pytest.mark.parametrize(
    ("source_namespace", "source_labels", "port", "protocol", "expected"),
    [
        pytest.param("task-03", {"app": "frontend"}, 5000, "TCP", True, id="frontend-pod"),
        pytest.param("task-03", {"run": "test"}, 5000, "TCP", True, id="course-test-pod"),
        pytest.param("default", {"app": "frontend"}, 5000, "TCP", False, id="other-namespace"),
        pytest.param("kube-system", {}, 5000, "TCP", False, id="kube-system"),
        pytest.param("task-03", {"app": "frontend"}, 8080, "TCP", False, id="other-port"),
        pytest.param("task-03", {"app": "frontend"}, 5000, "UDP", False, id="udp"),
    ],
)
def test_networkpolicy__backend_admits(policies, source_namespace, source_labels, port, protocol, expected):
    """Pods of task-03 (frontend, the course's test pod) reach backend:5000/TCP; nothing else does."""
    assert admits(policies["backend"], source_namespace, source_labels, port, protocol) is expected


@pytest.mark.parametrize(
    ("source_namespace", "source_labels", "port", "expected"),
    [
        pytest.param("default", {}, 8080, True, id="other-namespace"),
        pytest.param("task-03", {"run": "test"}, 8080, True, id="course-test-pod"),
        pytest.param("task-03", {"app": "backend"}, 8081, False, id="other-port"),
    ],
)
def test_networkpolicy__frontend_admits(policies, source_namespace, source_labels, port, expected):
    """Anyone reaches frontend:8080/TCP (the NodePort's target); no other port is open."""
    assert admits(policies["frontend"], source_namespace, source_labels, port, "TCP") is expected


def test_networkpolicy__every_pod_is_selected(overlay):
    """Every pod template the overlay creates is selected by some NetworkPolicy (none is left open)."""
    selectors = [policy["spec"]["podSelector"] for policy in overlay.of_kind("NetworkPolicy")]
    for deployment in overlay.of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(labels_match(selector, labels) for selector in selectors), deployment["metadata"]["name"]
