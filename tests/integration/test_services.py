"""Both services as real gunicorn processes on free ports: workers and hosts (backend faults: test_faults)."""

import re

import pytest
import requests

from .conftest import POD_NAME, get_from_workers

pytestmark = pytest.mark.integration


def test_get_config__one_code_across_workers(start):
    """Every worker of a multi-worker backend serves the same code, over many requests."""
    backend = start("backend", WEB_CONCURRENCY=3)
    responses = get_from_workers(backend, "/get-config")
    assert {r.status_code for r in responses} == {200}
    codes = {r.json()["code"] for r in responses}
    assert len(codes) == 1
    assert re.fullmatch(r"BACKEND-\d{4}", codes.pop())


def test_get_config__config_code_env_pins_code(start):
    """CONFIG_CODE (from the ConfigMap) is the code served."""
    backend = start("backend", CONFIG_CODE="BACKEND-4242")
    assert requests.get(backend.url + "/get-config", timeout=5).json()["code"] == "BACKEND-4242"


def test_who_am_i__backend_code_from_every_worker(backend, frontend_for):
    """After one /startup, every frontend worker answers /who-am-i with the backend's real code."""
    frontend = frontend_for(backend.url, WEB_CONCURRENCY=3)
    code = requests.get(backend.url + "/get-config", timeout=5).json()["code"]
    assert requests.get(frontend.url + "/startup", timeout=5).json()["backend_code"] == code
    responses = get_from_workers(frontend, "/who-am-i")
    assert {r.status_code for r in responses} == {200}
    assert {(r.json()["name"], r.json()["code"]) for r in responses} == {(POD_NAME, code)}


def test_health__ok_with_live_backend(backend, frontend_for):
    """/health is 200 JSON while the backend answers /ping."""
    frontend = frontend_for(backend.url)
    response = requests.get(frontend.url + "/health", headers={"Accept": "*/*"}, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


@pytest.mark.parametrize(
    "host",
    [
        "10.42.0.7:8080",  # the kubelet's probe: the pod's IP
        "svc-frontend.task-03.svc.cluster.local:8080",  # the course's in-cluster check
        "54.12.3.4:30080",  # NodePort via the node's public IP (NATed: never status.hostIP)
        "ec2-54-12-3-4.compute-1.amazonaws.com:30080",  # NodePort via the node's public DNS name
        "10.0.0.6:30080",  # NodePort via another node of the cluster
        "frontend.example.com",  # an Ingress in front of svc-frontend
    ],
)
def test_host__every_way_in_is_served(backend, frontend_for, host):
    """A real server in a pod's environment answers probes, Service names, NodePorts and an Ingress."""
    frontend = frontend_for(backend.url, POD_IP="10.42.0.7", HOST_IP="10.0.0.5")
    response = requests.get(frontend.url + "/who-am-i", headers={"Host": host}, timeout=5)
    assert response.status_code == 200
    assert response.json()["code"]


def test_host__pinned_list_refuses_others(backend, frontend_for):
    """With DJANGO_ALLOWED_HOSTS pinned, another Host is a JSON 400 and the pod's IP still serves probes."""
    frontend = frontend_for(backend.url, POD_IP="10.42.0.7", DJANGO_ALLOWED_HOSTS="frontend.example.com")
    refused = requests.get(frontend.url + "/health", headers={"Host": "10.0.0.6:30080"}, timeout=5)
    assert refused.status_code == 400
    assert refused.json()["status"] == 400
    probe = requests.get(frontend.url + "/health", headers={"Host": "10.42.0.7:8080"}, timeout=5)
    assert probe.status_code == 200


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("backend", "/get-config"),
        ("backend", "/ping"),
        ("frontend", "/who-am-i"),
        ("frontend", "/health"),
        ("frontend", "/nope"),
    ],
)
def test_answers__sent_with_content_length_not_chunked(backend, frontend_for, service, path):
    """gunicorn sends each answer with its Content-Length, not chunked (one write less per answer)."""
    server = backend if service == "backend" else frontend_for(backend.url)
    response = requests.get(server.url + path, timeout=5)
    assert "Transfer-Encoding" not in response.headers
    assert response.headers["Content-Length"] == str(len(response.content))
