"""Every kustomization renders, validates strictly against the Kubernetes API schemas, holds exactly
the expected objects in namespace task-03, and the k3s overlay changes only what differs on k3s."""

import copy
import subprocess
import sys

import pytest
import yaml

from testbed.podspec import BASE, KUSTOMIZE, OVERLAY, PRODUCTION, REPO
from tests.prerequisites import skip_or_fail

RENDERED = ("base", "k3s", "production")
NAMESPACE = "task-03"

K8S_VERSIONS = ("1.30", "1.32", "1.35")
VALIDATE_INSTALL_HINT = "pip install kubernetes-validate==1.37.0"
APPS = ("backend", "frontend")
# The overlay's Deployments carry checkov skip annotations (see test_policy_checkov.py).
CHECKOV_SKIP_PREFIX = "checkov.io/skip"
RECOMMENDED_LABELS = {
    "app.kubernetes.io/part-of": "task-03",
    "app.kubernetes.io/managed-by": "kustomize",
}


@pytest.fixture(scope="module")
def kubernetes_validate():
    """A callable running `kubernetes-validate --strict` on a file (offline: it ships schemas)."""
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        skip_or_fail(f"kubernetes-validate is not installed: {VALIDATE_INSTALL_HINT}")
    return run_kubernetes_validate


def run_kubernetes_validate(path, version: str) -> subprocess.CompletedProcess:
    """`kubernetes-validate --strict --quiet -k <version> <path>`, run with this Python."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kubernetes_validate",
            "--strict",
            "--quiet",
            "--kubernetes-version",
            version,
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def kinds_and_names(rendered) -> set[tuple[str, str]]:
    """(kind, name) of every rendered object, with the ConfigMap's hash suffix cut off."""
    out = set()
    for obj in rendered.objects:
        name = obj["metadata"]["name"]
        if obj["kind"] == "ConfigMap":
            name = name.rsplit("-", 1)[0]
        out.add((obj["kind"], name))
    return out


EXPECTED_OBJECTS = {
    ("Namespace", NAMESPACE),
    ("ConfigMap", "backend-config"),
    ("Deployment", "backend"),
    ("Deployment", "frontend"),
    ("Service", "svc-backend"),
    ("Service", "svc-frontend"),
    ("NetworkPolicy", "backend"),
    ("NetworkPolicy", "frontend"),
}


def test_base__renders_the_eight_objects(base):
    """kustomize/base renders the Namespace, the ConfigMap, 2 Deployments, 2 Services, 2 NetworkPolicies."""
    assert kinds_and_names(base) == EXPECTED_OBJECTS


def test_overlay__renders_the_eight_objects(overlay):
    """kustomize/overlays/k3s renders the same eight objects as the base."""
    assert kinds_and_names(overlay) == EXPECTED_OBJECTS


def test_production__renders_the_eight_objects_pdbs_and_the_scrape(production):
    """kustomize/overlays/production renders the base's eight objects, a PodDisruptionBudget per app, a
    ServiceMonitor and the NetworkPolicy that lets its Prometheus scrape the backend."""
    pdbs = {("PodDisruptionBudget", app) for app in APPS}
    scrape = {("ServiceMonitor", NAMESPACE), ("NetworkPolicy", "backend-metrics")}
    assert kinds_and_names(production) == EXPECTED_OBJECTS | pdbs | scrape


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", RENDERED)
def test_rendered__validates_strictly(rendered, kubernetes_validate, tmp_path, name, version):
    """Each rendered kustomization passes kubernetes-validate --strict for this Kubernetes version.

    It has no schema for a CRD and only warns: the ServiceMonitor (the Prometheus operator's CRD, not
    shipped offline) is the one kind allowed that warning; test_kustomize_metrics.py checks its fields."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(rendered(name).text)
    result = kubernetes_validate(path, version)
    assert result.returncode == 0, result.stdout + result.stderr
    unvalidated = [line for line in (result.stdout + result.stderr).splitlines() if "find schema" in line]
    assert all("kind ServiceMonitor with api version monitoring.coreos.com/v1" in w for w in unvalidated)


def test_strict_validation__rejects_an_unknown_field(overlay, kubernetes_validate, tmp_path):
    """A misspelt field in a Deployment fails strict validation, so the checks above can fail."""
    broken = copy.deepcopy(overlay.get("Deployment", "frontend"))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = kubernetes_validate(path, K8S_VERSIONS[-1])
    assert result.returncode != 0
    assert "livenessProbes" in result.stdout + result.stderr


@pytest.mark.parametrize("directory", [BASE, OVERLAY, PRODUCTION], ids=RENDERED)
def test_kustomization__declares_apiversion_and_kind(directory):
    """Every kustomization.yaml names its apiVersion and kind."""
    doc = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert doc["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert doc["kind"] == "Kustomization"


def test_kustomization__uses_no_deprecated_fields():
    """No kustomization uses commonLabels, patchesStrategicMerge, patchesJson6902 or vars."""
    deprecated = {"commonLabels", "patchesStrategicMerge", "patchesJson6902", "vars", "bases"}
    for path in KUSTOMIZE.rglob("kustomization.yaml"):
        used = deprecated & set(yaml.safe_load(path.read_text()))
        assert not used, f"{path.relative_to(REPO)} uses {sorted(used)}"


def test_base__one_resource_per_file_named_by_kind():
    """Each base resource file holds one object whose kind (and app) its file name spells."""
    doc = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    for name in doc["resources"]:
        objects = [o for o in yaml.safe_load_all((BASE / name).read_text()) if o]
        assert len(objects) == 1, f"{name} holds {len(objects)} objects"
        kind = objects[0]["kind"].lower()
        assert name == f"{kind}.yaml" or name.startswith(f"{kind}-"), name
    assert sorted(doc["resources"]) == sorted(
        [
            "namespace.yaml",
            "deployment-backend.yaml",
            "service-backend.yaml",
            "deployment-frontend.yaml",
            "service-frontend.yaml",
            "networkpolicy-backend.yaml",
            "networkpolicy-frontend.yaml",
        ]
    )


@pytest.mark.parametrize("name", RENDERED[1:])
def test_objects__live_in_namespace_task_03(rendered, name):
    """Every namespaced object is in task-03, and the Namespace task-03 itself is rendered."""
    overlay = rendered(name)
    assert overlay.get("Namespace", NAMESPACE)
    for obj in overlay.objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]


@pytest.mark.parametrize("name", RENDERED[1:])
def test_objects__carry_the_recommended_labels(rendered, name):
    """Every object, and every pod template, has app.kubernetes.io/part-of and managed-by."""
    overlay = rendered(name)
    for obj in overlay.objects:
        labels = obj["metadata"].get("labels", {})
        assert RECOMMENDED_LABELS.items() <= labels.items(), obj["metadata"]["name"]
    for deployment in overlay.of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert RECOMMENDED_LABELS.items() <= labels.items()


@pytest.mark.parametrize("app", APPS)
def test_deployment__selector_is_only_app_label(overlay, app):
    """The Deployment selects pods by `app: <app>` alone; the recommended labels stay out of it."""
    deployment = overlay.get("Deployment", app)
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": app}}
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert template_labels["app"] == app
    assert template_labels["app.kubernetes.io/name"] == app
    assert deployment["metadata"]["labels"]["app"] == app


@pytest.mark.parametrize("app", APPS)
def test_service__selector_is_only_app_label(overlay, app):
    """svc-<app> selects `app: <app>` alone, matching the Deployment's pod template."""
    service = overlay.get("Service", f"svc-{app}")
    assert service["spec"]["selector"] == {"app": app}
    template_labels = overlay.get("Deployment", app)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= template_labels.items()


def test_configmap__holds_a_fixed_backend_code(overlay, backend_container):
    """The generated ConfigMap carries CONFIG_CODE=BACKEND-NNNN and the backend reads it by hash."""
    (configmap,) = overlay.of_kind("ConfigMap")
    name = configmap["metadata"]["name"]
    assert name.startswith("backend-config-") and len(name) > len("backend-config-")
    code = configmap["data"]["CONFIG_CODE"]
    assert code.startswith("BACKEND-") and code.removeprefix("BACKEND-").isdigit()
    env = {item["name"]: item for item in backend_container["env"]}
    assert env["CONFIG_CODE"]["valueFrom"]["configMapKeyRef"] == {
        "name": name,
        "key": "CONFIG_CODE",
    }


def without_k3s_changes(obj: dict) -> dict:
    """A copy of an overlay object with the k3s overlay's intended changes taken out."""
    obj = copy.deepcopy(obj)
    if obj["kind"] == "Deployment":
        annotations = obj["metadata"].get("annotations", {})
        for key in [key for key in annotations if key.startswith(CHECKOV_SKIP_PREFIX)]:
            del annotations[key]
        if not annotations:
            obj["metadata"].pop("annotations", None)
        for container in obj["spec"]["template"]["spec"]["containers"]:
            container.pop("imagePullPolicy", None)
    if obj["kind"] == "Service" and obj["metadata"]["name"] == "svc-frontend":
        for port in obj["spec"]["ports"]:
            port.pop("nodePort", None)
    return obj


def test_overlay__changes_only_pull_policy_node_port_and_checkov_skips(base, overlay):
    """Take out pull policy, nodePort and checkov skips and the overlay equals the base object for object."""
    assert [without_k3s_changes(o) for o in overlay.objects] == base.objects


def test_base__sets_no_pull_policy_or_node_port(base):
    """The base leaves imagePullPolicy and nodePort to overlays (they are cluster-specific)."""
    for deployment in base.of_kind("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert "imagePullPolicy" not in container
    for service in base.of_kind("Service"):
        assert all("nodePort" not in port for port in service["spec"]["ports"])


@pytest.mark.parametrize("app", APPS)
def test_overlay__never_pulls_the_local_image(overlay, app):
    """On k3s containers[0] runs the imported <app>:latest with imagePullPolicy Never."""
    container = overlay.get("Deployment", app)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{app}:latest"
    assert container["imagePullPolicy"] == "Never"
