"""The two Deployments as rendered by the k3s overlay: replicas, containers[0], ports, environment,
resources, and the Pod Security Standards "restricted" settings."""

import re

import pytest

APPS = ("backend", "frontend")
PORTS = {"backend": 5000, "frontend": 8080}
UID = 10001
BACKEND_URL = "http://svc-backend.task-03.svc.cluster.local.:5000"
DOWNWARD_ENV = {
    "backend": {"POD_IP": "status.podIP"},
    "frontend": {"POD_NAME": "metadata.name", "POD_IP": "status.podIP"},
}
QUANTITY_FACTORS = {"m": 0.001, "": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def pod_spec(overlay, app: str) -> dict:
    """The pod template spec of Deployment <app>."""
    return overlay.get("Deployment", app)["spec"]["template"]["spec"]


def first_container(overlay, app: str) -> dict:
    """containers[0] of Deployment <app>."""
    return pod_spec(overlay, app)["containers"][0]


def quantity(value) -> float:
    """A Kubernetes quantity such as 50m, 500m, 64Mi or 1 as a number (cores or bytes)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|)", str(value))
    assert match, f"unexpected quantity {value!r}"
    return float(match.group(1)) * QUANTITY_FACTORS[match.group(2)]


@pytest.mark.parametrize("app", APPS)
def test_deployment__runs_one_replica(overlay, app):
    """Deployment <app> asks for exactly one replica."""
    assert overlay.get("Deployment", app)["spec"]["replicas"] == 1


@pytest.mark.parametrize("app", APPS)
def test_container__first_is_named_after_the_app(overlay, app):
    """containers[0] is named `backend` / `frontend`, and it is the pod's only container."""
    containers = pod_spec(overlay, app)["containers"]
    assert containers[0]["name"] == app
    assert len(containers) == 1


@pytest.mark.parametrize("app", APPS)
def test_container__exposes_the_named_http_port(overlay, app):
    """containers[0] declares one TCP port, 5000 or 8080, named `http`."""
    assert first_container(overlay, app)["ports"] == [
        {"name": "http", "containerPort": PORTS[app], "protocol": "TCP"}
    ]


@pytest.mark.parametrize("app", APPS)
def test_container_port__is_the_port_gunicorn_binds(overlay, gunicorn_conf, app):
    """containerPort equals the port in <app>_site/gunicorn.conf.py's `bind` (PORT unset)."""
    bind = gunicorn_conf(app)["bind"]
    binds = [bind] if isinstance(bind, str) else list(bind)
    assert binds, "gunicorn.conf.py binds nothing"
    bound_ports = {int(address.rsplit(":", 1)[1]) for address in binds}
    assert bound_ports == {first_container(overlay, app)["ports"][0]["containerPort"]}


@pytest.mark.parametrize("app", APPS)
def test_env__downward_api_fields(overlay, app):
    """The pod's identity reaches the app through Downward API fieldRefs (POD_NAME, POD_IP, ...)."""
    env = {item["name"]: item for item in first_container(overlay, app)["env"]}
    for name, field_path in DOWNWARD_ENV[app].items():
        assert env[name]["valueFrom"] == {"fieldRef": {"fieldPath": field_path}}, name


def test_env__frontend_points_at_svc_backend(overlay, frontend_container):
    """BACKEND_URL names svc-backend by its absolute cluster DNS name (no search-domain lookups) and port."""
    env = {item["name"]: item.get("value") for item in frontend_container["env"]}
    backend_service = overlay.get("Service", "svc-backend")
    meta = backend_service["metadata"]
    port = backend_service["spec"]["ports"][0]["port"]
    expected = f"http://{meta['name']}.{meta['namespace']}.svc.cluster.local.:{port}"
    assert env["BACKEND_URL"] == expected == BACKEND_URL


def test_env__frontend_backend_timeout_fits_probe_timeouts(frontend_container):
    """BACKEND_TIMEOUT is below every probe's timeoutSeconds, so a slow backend gets a clean 503."""
    env = {item["name"]: item.get("value") for item in frontend_container["env"]}
    backend_timeout = float(env.get("BACKEND_TIMEOUT", "0.5"))
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert backend_timeout < frontend_container[probe]["timeoutSeconds"], probe


@pytest.mark.parametrize("app", APPS)
def test_resources__requests_and_limits(overlay, app):
    """containers[0] requests and limits cpu and memory, each request at most its limit."""
    resources = first_container(overlay, app)["resources"]
    for resource in ("cpu", "memory"):
        request = quantity(resources["requests"][resource])
        limit = quantity(resources["limits"][resource])
        assert 0 < request <= limit, resource


@pytest.mark.parametrize("app", APPS)
def test_pod_security__restricted_pod_context(overlay, app):
    """The pod runs as non-root UID/GID 10001 with fsGroup 10001 and seccomp RuntimeDefault."""
    context = pod_spec(overlay, app)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == UID
    assert context["runAsGroup"] == UID
    assert context["fsGroup"] == UID
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("app", APPS)
def test_pod_security__restricted_container_context(overlay, app):
    """containers[0] drops ALL capabilities, cannot escalate, and has a read-only root fs."""
    context = first_container(overlay, app)["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["readOnlyRootFilesystem"] is True
    assert context.get("privileged", False) is False
    assert context.get("runAsUser", UID) != 0


@pytest.mark.parametrize("app", APPS)
def test_volumes__tmp_is_an_emptydir(overlay, app):
    """/tmp, the only writable path, is mounted from an emptyDir volume."""
    spec = pod_spec(overlay, app)
    mounts = {m["mountPath"]: m["name"] for m in first_container(overlay, app)["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert "/tmp" in mounts
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert set(mounts) == {"/tmp"}


@pytest.mark.parametrize("app", APPS)
def test_service_account__token_not_mounted(overlay, app):
    """automountServiceAccountToken is false: the apps never call the Kubernetes API."""
    assert pod_spec(overlay, app)["automountServiceAccountToken"] is False
