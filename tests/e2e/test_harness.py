"""The harness itself: what it cannot emulate, it refuses by name (no podman needed for these)."""

import copy

import pytest

from testbed.podspec import Manifests, UnsupportedField

DEPLOYMENT = {
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "task-03"},
    "spec": {
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "automountServiceAccountToken": False,
                "containers": [
                    {
                        "name": "web",
                        "image": "web:1",
                        "ports": [{"containerPort": 8080, "name": "http"}],
                        "env": [
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                        ],
                        "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}},
                    }
                ],
            },
        }
    },
}


def container(deployment):
    return deployment["spec"]["template"]["spec"]["containers"][0]


MUTATIONS = {
    "exec probe": lambda d: container(d).update(readinessProbe={"exec": {"command": ["true"]}}),
    "sidecar": lambda d: d["spec"]["template"]["spec"]["containers"].append({"name": "x", "image": "x"}),
    "hostPath volume, not a Directory": lambda d: d["spec"]["template"]["spec"].update(
        volumes=[{"name": "v", "hostPath": {"path": "/etc/passwd", "type": "File"}}]
    ),
    "unknown container field": lambda d: container(d).update(stdin=True),
    "service account token": lambda d: d["spec"]["template"]["spec"].pop("automountServiceAccountToken"),
    "httpGet preStop": lambda d: container(d).update(lifecycle={"preStop": {"httpGet": {"port": 8080}}}),
    "writable hostPath mount": lambda d: with_host_directory(d, read_only=False),
    # Fields no manifest here uses, so none is emulated.
    "envFrom": lambda d: container(d).update(envFrom=[{"configMapRef": {"name": "web"}}]),
    "$(VAR) in an env value": lambda d: container(d)["env"].append(
        {"name": "URL", "value": "http://$(POD_NAME)"}
    ),
    "$(VAR) in args": lambda d: container(d).update(args=["--name", "$(POD_NAME)"]),
    "probe httpHeaders": lambda d: container(d)["livenessProbe"]["httpGet"].update(
        httpHeaders=[{"name": "X-Probe", "value": "1"}]
    ),
    "probe successThreshold": lambda d: container(d)["livenessProbe"].update(successThreshold=1),
    "supplementalGroups": lambda d: d["spec"]["template"]["spec"].update(
        securityContext={"supplementalGroups": [1000]}
    ),
    "Unconfined seccomp": lambda d: container(d).update(
        securityContext={"seccompProfile": {"type": "Unconfined"}}
    ),
}


def with_host_directory(deployment, read_only):
    """Mount /srv/bench (a hostPath Directory) at /opt/bench."""
    deployment["spec"]["template"]["spec"]["volumes"] = [
        {"name": "bench", "hostPath": {"path": "/srv/bench", "type": "Directory"}}
    ]
    mount = {"name": "bench", "mountPath": "/opt/bench", "readOnly": read_only}
    container(deployment)["volumeMounts"] = [mount]
    return deployment


def test_pod_plan__translates_a_plain_template():
    """A template with only known fields becomes a plan: named probe port resolved, API defaults applied."""
    plan = Manifests([DEPLOYMENT]).pod_plan("web")
    probe = plan.probes["liveness"]
    assert (probe.port, probe.period, probe.timeout, probe.failure_threshold) == (8080, 10, 1, 3)
    assert plan.grace == 30 and plan.pull_policy() == "missing"


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_pod_plan__refuses_what_it_cannot_emulate(mutation):
    """Each field the e2e kubelet does not emulate stops the run with UnsupportedField."""
    deployment = copy.deepcopy(DEPLOYMENT)
    MUTATIONS[mutation](deployment)
    with pytest.raises(UnsupportedField):
        Manifests([deployment]).pod_plan("web")


def test_pod_plan__host_directory_is_a_read_only_bind_mount():
    """A hostPath Directory mounted readOnly (the benchmark's bare-WSGI pod) becomes `--volume ...:ro`."""
    deployment = with_host_directory(copy.deepcopy(DEPLOYMENT), read_only=True)
    plan = Manifests([deployment]).pod_plan("web")
    assert plan.volume_args() == ["--volume", "/srv/bench:/opt/bench:ro"]
