"""The production overlay: two replicas kept available, rollouts that surge, pods spread over nodes,
probes that never call another service, and the base's preStop hook, which drains."""

import pytest

APPS = ("backend", "frontend")
PORTS = {"backend": 5000, "frontend": 8080}


def deployment(production, app):
    return production.get("Deployment", app)


def container(production, app):
    return deployment(production, app)["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("app", APPS)
def test_deployment__two_replicas_surge_one_never_unavailable(production, app):
    """2 replicas; RollingUpdate adds one new pod before it stops an old one, after minReadySeconds."""
    spec = deployment(production, app)["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert spec["minReadySeconds"] > 0


@pytest.mark.parametrize("app", APPS)
def test_pdb__keeps_one_pod_and_lets_one_go(production, app):
    """PDB minAvailable 1 over the Deployment's pods; with 2 replicas a node drain may evict one."""
    pdb = production.get("PodDisruptionBudget", app)
    spec = deployment(production, app)["spec"]
    assert pdb["spec"] == {"minAvailable": 1, "selector": spec["selector"]}
    assert spec["replicas"] > pdb["spec"]["minAvailable"]


@pytest.mark.parametrize("app", APPS)
def test_spread__soft_across_nodes_over_own_pods(production, app):
    """Pods prefer different nodes (ScheduleAnyway: never unschedulable), counting this app's pods."""
    template = deployment(production, app)["spec"]["template"]
    (constraint,) = template["spec"]["topologySpreadConstraints"]
    assert constraint["topologyKey"] == "kubernetes.io/hostname"
    assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
    assert constraint["labelSelector"]["matchLabels"].items() <= template["metadata"]["labels"].items()


@pytest.mark.parametrize("app", APPS)
def test_probes__livez_and_readyz_startup_unchanged(production, overlay, app):
    """Liveness /livez with its own short grace period, readiness /readyz; the startup probe is the base's."""
    probes = container(production, app)
    assert probes["livenessProbe"]["httpGet"] == {"path": "/livez", "port": PORTS[app]}
    assert probes["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": PORTS[app]}
    grace = deployment(production, app)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert 0 < probes["livenessProbe"]["terminationGracePeriodSeconds"] < grace
    k3s = overlay.get("Deployment", app)["spec"]["template"]["spec"]["containers"][0]
    assert probes.get("startupProbe") == k3s.get("startupProbe")


@pytest.mark.parametrize("app", APPS)
def test_image__local_tag_pulled_if_not_present(production, app):
    """By default the local <app>:latest (the emulator runs it), pulled only when the node lacks it."""
    assert container(production, app)["image"] == f"{app}:latest"
    assert container(production, app)["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("app", APPS)
def test_image__release_pins_registry_digest(production_release, app):
    """`kustomize edit set image` reaches containers[0]: a registry name pinned by digest."""
    image = container(production_release, app)["image"]
    assert image.startswith(f"registry.example.com/{app}:1.0@sha256:")


@pytest.mark.parametrize("app", APPS)
def test_prestop__is_the_bases(production, base, app):
    """The overlay leaves the preStop hook alone: the base's hook drains already (podkit.stop)."""
    command = container(production, app)["lifecycle"]["preStop"]["exec"]["command"]
    base_command = base.get("Deployment", app)["spec"]["template"]["spec"]["containers"][0]
    assert command == base_command["lifecycle"]["preStop"]["exec"]["command"]
