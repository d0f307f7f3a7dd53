"""podkit.conf: strict environment parsing and the Host policy both services follow."""

import pytest

from podkit.conf import allowed_hosts, env_bool, env_float


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("TRUE", True), (" on ", True), ("0", False), ("no", False), ("", False)],
)
def test_env_bool__values(monkeypatch, value, expected):
    """1/true/yes/on in any case are true; anything else is false; empty means the default."""
    monkeypatch.setenv("X_FLAG", value)
    assert env_bool("X_FLAG") is expected


def test_env_float__default_when_unset(monkeypatch):
    """An unset number takes its default."""
    monkeypatch.delenv("X_SECONDS", raising=False)
    assert env_float("X_SECONDS", 0.5) == 0.5


@pytest.mark.parametrize("value", ["abc", "0", "-1"])
def test_env_float__invalid_names_the_variable(monkeypatch, value):
    """A bad number fails at start-up with the variable's name, not later with a confusing error."""
    monkeypatch.setenv("X_SECONDS", value)
    with pytest.raises(ValueError, match="X_SECONDS must be a positive number"):
        env_float("X_SECONDS", 0.5)


def test_allowed_hosts__any_host_by_default(monkeypatch):
    """Unpinned, every well-formed Host is served: NodePort, Ingress and ClusterIP names are unknowable."""
    monkeypatch.delenv("DJANGO_ALLOWED_HOSTS", raising=False)
    monkeypatch.setenv("POD_IP", "10.42.0.7")
    assert allowed_hosts() == ["*"]


@pytest.mark.parametrize(("pod_ip", "added"), [("10.42.0.7", "10.42.0.7"), ("fd00::7", "[fd00::7]")])
def test_allowed_hosts__pinned_list_keeps_the_pod_ip_for_probes(monkeypatch, pod_ip, added):
    """DJANGO_ALLOWED_HOSTS pins the names; the pod's IP stays, since the kubelet's probes send it."""
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", " frontend.example.com, ,10.0.0.5 ")
    monkeypatch.setenv("POD_IP", pod_ip)
    assert allowed_hosts() == ["frontend.example.com", "10.0.0.5", added]
