"""Probes on containers[0]: the course's startup and liveness rubric, explicit timeouts, ports that
match the container, and paths that the app's Django URLconf actually routes."""

import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from testbed.podspec import REPO
from tests.prerequisites import skip_or_fail

APPS = ("backend", "frontend")
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
MIN_STARTUP_BUDGET_SECONDS = 60

RESOLVE_SCRIPT = """
import json, sys
import django
django.setup()
from django.urls import Resolver404, resolve
routes = {}
for path in sys.argv[1:]:
    try:
        routes[path] = resolve(path)._func_path
    except Resolver404:
        routes[path] = None
print(json.dumps(routes))
"""


def containers_probes(container: dict) -> dict:
    """The probes containers[0] declares, by kind."""
    return {kind: container[kind] for kind in PROBES if kind in container}


def routed_paths(container: dict) -> list[str]:
    """Every path the kubelet's probes request from the app in this container."""
    return sorted({probe["httpGet"]["path"] for probe in containers_probes(container).values()})


def test_startup_probe__gets_startup_on_8080(frontend_container):
    """The frontend's startupProbe is an httpGet of /startup on port 8080 (a number)."""
    assert frontend_container["startupProbe"]["httpGet"] == {"path": "/startup", "port": 8080}


def test_startup_probe__budget_covers_a_late_backend(frontend_container):
    """periodSeconds x failureThreshold gives a backend that comes up later at least 60 s."""
    probe = frontend_container["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= MIN_STARTUP_BUDGET_SECONDS


def test_liveness_probe__gets_health_every_5s_three_strikes(frontend_container):
    """The frontend's livenessProbe: GET /health on 8080, periodSeconds 5, failureThreshold 3."""
    probe = frontend_container["livenessProbe"]
    assert probe["httpGet"] == {"path": "/health", "port": 8080}
    assert probe["periodSeconds"] == 5
    assert probe["failureThreshold"] == 3


def test_readiness_probe__frontend_unready_before_it_restarts(frontend_container):
    """The frontend's readinessProbe checks /health and gives up before liveness restarts it."""
    readiness = frontend_container["readinessProbe"]
    liveness = frontend_container["livenessProbe"]
    assert readiness["httpGet"] == {"path": "/health", "port": 8080}
    readiness_window = readiness["periodSeconds"] * readiness["failureThreshold"]
    liveness_window = liveness["periodSeconds"] * liveness["failureThreshold"]
    assert readiness_window < liveness_window


def test_readiness_probe__backend_pings(backend_container):
    """The backend's readinessProbe is an httpGet of /ping on port 5000."""
    assert backend_container["readinessProbe"]["httpGet"] == {"path": "/ping", "port": 5000}


@pytest.mark.parametrize("app", APPS)
def test_probes__explicit_timeouts_on_the_container_port(overlay, app):
    """Every probe on containers[0] states timeoutSeconds and targets the container port number."""
    container = overlay.get("Deployment", app)["spec"]["template"]["spec"]["containers"][0]
    probes = containers_probes(container)
    assert probes, f"{app} declares no probes"
    container_port = container["ports"][0]["containerPort"]
    for kind, probe in probes.items():
        assert probe.get("timeoutSeconds", 0) >= 1, f"{kind} has no explicit timeoutSeconds"
        assert probe["httpGet"]["port"] == container_port, kind


@pytest.fixture(scope="module")
def resolve_paths():
    """A callable resolving URL paths with one app's URLconf, in a fresh Python per project."""

    def _resolve(app: str, paths: list[str]) -> dict:
        project = REPO / f"{app}_site"
        if not (project / f"{app}_site" / "settings.py").is_file():
            skip_or_fail(f"{app}_site/{app}_site/settings.py is missing (the service's)")
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env["DJANGO_SETTINGS_MODULE"] = f"{app}_site.settings"
        env.setdefault("DJANGO_DEBUG", "0")
        result = subprocess.run(
            [sys.executable, "-c", RESOLVE_SCRIPT, *paths],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    return _resolve


@pytest.mark.parametrize("name", ["k3s", "production"])
@pytest.mark.parametrize("app", APPS)
def test_probe_paths__routed_by_the_urlconf(rendered, resolve_paths, app, name):
    """Each probe path on containers[0] of each overlay resolves to a view in <app>_site's URLconf."""
    container = rendered(name).get("Deployment", app)["spec"]["template"]["spec"]["containers"][0]
    paths = routed_paths(container)
    routes = resolve_paths(app, paths)
    unrouted = [path for path in paths if routes.get(path) is None]
    assert not unrouted, f"{app}_site does not route {unrouted}"


def test_game_over_path__routed_by_the_backend_urlconf(frontend_container, resolve_paths):
    """The path the frontend's preStop hook POSTs to resolves in backend_site's URLconf."""
    script = frontend_container["lifecycle"]["preStop"]["exec"]["command"][-1]
    backend_url = {item["name"]: item.get("value") for item in frontend_container["env"]}["BACKEND_URL"]
    (url,) = [
        word.strip('"').replace("$BACKEND_URL", backend_url) for word in script.split() if "game-over" in word
    ]
    path = urlsplit(url).path
    assert path == "/game-over"
    assert resolve_paths("backend", [path])[path] is not None


def test_urlconf_check__reports_an_unknown_path(resolve_paths):
    """A path no view serves resolves to None, so the routing checks above can fail."""
    assert resolve_paths("frontend", ["/no-such-probe-path"]) == {"/no-such-probe-path": None}
