"""podkit's /livez and /readyz through Django's test client: answers, drain, pluggable readiness checks."""

import pytest
from django.test import override_settings

from podkit import fault, views

# What a service's readiness check says while it cannot serve (see PODKIT_READINESS_CHECKS).
NOT_STARTED = "not started: test check"


def failing_check():
    return NOT_STARTED


def passing_check():
    return None


@pytest.fixture
def checks():
    """Set PODKIT_READINESS_CHECKS for one test (the imported callables are cached, so the cache is reset)."""
    overrides = []

    def _checks(*dotted):
        override = override_settings(PODKIT_READINESS_CHECKS=list(dotted))
        override.enable()
        overrides.append(override)
        views.readiness_checks.cache_clear()

    yield _checks
    for override in overrides:
        override.disable()
    views.readiness_checks.cache_clear()


def test_livez__alive(client):
    """/livez answers 200 {"status": "alive"}, never cached."""
    response = client.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}
    assert "no-cache" in response["Cache-Control"]


def test_livez__alive_while_draining(client):
    """Draining changes readiness only: the process is still alive."""
    fault.switch_on("readiness", reason="preStop")
    assert client.get("/livez").status_code == 200


def test_readyz__ready_without_checks(client, checks):
    """A service with no readiness checks (the backend) is ready as soon as it answers."""
    checks()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz__draining_is_503(client, checks):
    """While the pod drains (readiness fail), /readyz answers 503 "draining", the reason and the way back."""
    checks("tests.podkit.test_probes.passing_check")
    fault.switch_on("readiness", reason="preStop")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "draining"
    assert "preStop" in body["error"]
    assert "podkit.fault off readiness" in body["error"]


def test_readyz__undrained_is_ready_again(client, checks):
    """Removing the marker (python -m podkit.fault off readiness) makes the pod ready again."""
    checks()
    fault.switch_on("readiness", reason="drained by hand")
    assert client.get("/readyz").status_code == 503
    fault.switch_off("readiness")
    assert client.get("/readyz").status_code == 200


def test_readyz__failing_check_is_503_with_its_reason(client, checks):
    """A service's check that fails makes /readyz 503 "unready" with the check's reason."""
    checks("tests.podkit.test_probes.passing_check", "tests.podkit.test_probes.failing_check")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unready", "error": NOT_STARTED}


def test_readyz__draining_wins_over_checks(client, checks):
    """A draining pod says draining, whatever its checks say."""
    checks("tests.podkit.test_probes.failing_check")
    fault.switch_on("readiness", reason="preStop")
    assert client.get("/readyz").json()["status"] == "draining"


@pytest.mark.parametrize("path", ["/livez", "/readyz"])
def test_probes__post_is_json_405(client, path):
    """Probes answer GET and HEAD only; anything else is the JSON 405 of every endpoint."""
    response = client.post(path)
    assert response.status_code == 405
    assert response.json()["status"] == 405
