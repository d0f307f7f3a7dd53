"""The environment the Deployments give containers[0]: each variable changes what the service does, and the
README's Configuration table lists it.

Each variable is shown at work by the service itself: its Django project started in a fresh Python with
the variable and without it (or with another value), asked the same thing through its real settings,
middleware and views, and its answers compared. Backend calls go to stand-ins on 127.0.0.1.
"""

import dataclasses
import json
import re
import subprocess
import sys
import tempfile

import pytest

from testbed.net import free_port
from testbed.podspec import REPO
from testbed.processes import StandInBackend

APPS = ("backend", "frontend")
OVERLAYS = ("k3s", "production")
# A row of the README's Configuration table: | `NAME` | service | default | meaning |
README_VARIABLE = re.compile(r"^\| `(\w+)` \| (backend|frontend|both) \|", re.MULTILINE)
# The slow stand-in answers after this long: longer than the defaults of BACKEND_TIMEOUT (0.5 s), shorter
# than GAME_OVER_TIMEOUT's (2 s).
SLOW_ANSWER_SECONDS = 1.0
# Asks the service one thing: GET a path (with a Host), or what gunicorn's on_exit calls; prints the answer.
ASK_SCRIPT = """\
import json, sys
import django
django.setup()
ask = json.loads(sys.argv[1])
if ask["path"] == "post_game_over":
    from frontend.backend_client import post_game_over
    outcome = post_game_over()
    answer = {"delivered": outcome in (True, "ok")}
else:
    from django.test import Client
    response = Client().get(ask["path"], HTTP_HOST=ask["host"])
    answer = {"http": response.status_code, **response.json()}
print(json.dumps(answer))
"""


@dataclasses.dataclass(frozen=True)
class Observation:
    """With the variable at `value` the service answers `ask` with `expect` (a part of its answer); with it
    at `other` (None: unset) it does not. `{ok}`, `{slow}` and `{nothing}` stand for the stand-ins' URLs."""

    value: str
    ask: str
    expect: dict
    other: str | None = None
    host: str = "testserver"
    env: dict = dataclasses.field(default_factory=dict)


POD_IP = "10.42.0.7"
OBSERVATIONS = {
    ("backend", "CONFIG_CODE"): Observation(
        "CODE-FROM-THE-CONFIGMAP", "/get-config", {"http": 200, "code": "CODE-FROM-THE-CONFIGMAP"}
    ),
    # The kubelet's probes send Host: <pod IP>; a pinned DJANGO_ALLOWED_HOSTS admits it only through POD_IP.
    ("backend", "POD_IP"): Observation(
        POD_IP, "/livez", {"http": 200}, host=f"{POD_IP}:5000", env={"DJANGO_ALLOWED_HOSTS": "pinned.example"}
    ),
    ("frontend", "POD_IP"): Observation(
        POD_IP, "/livez", {"http": 200}, host=f"{POD_IP}:8080", env={"DJANGO_ALLOWED_HOSTS": "pinned.example"}
    ),
    ("frontend", "POD_NAME"): Observation(
        "frontend-7d4b9c-x2x9q", "/who-am-i", {"name": "frontend-7d4b9c-x2x9q"}, env={"BACKEND_URL": "{ok}"}
    ),
    ("frontend", "BACKEND_URL"): Observation(
        "{ok}", "/startup", {"http": 200, "backend_code": "BACKEND-1111"}, other="{nothing}"
    ),
    ("frontend", "BACKEND_TIMEOUT"): Observation(
        "10", "/startup", {"http": 200, "status": "ready"}, env={"BACKEND_URL": "{slow}"}
    ),
    ("frontend", "GAME_OVER_TIMEOUT"): Observation(
        "0.2", "post_game_over", {"delivered": False}, env={"BACKEND_URL": "{slow}"}
    ),
}


def container_env(rendered, overlay: str, app: str) -> list[str]:
    """The names of the variables containers[0] of Deployment <app> sets in the rendered overlay."""
    container = rendered(overlay).get("Deployment", app)["spec"]["template"]["spec"]["containers"][0]
    return [item["name"] for item in container.get("env", [])]


@pytest.fixture(scope="module")
def stand_ins():
    """URLs for the observations: a backend that answers at once, one that answers late, and nothing."""
    ok = StandInBackend("ok", free_port()).start()
    slow = StandInBackend("slow", free_port(), delay=SLOW_ANSWER_SECONDS).start()
    yield {
        "ok": f"http://127.0.0.1:{ok.port}",
        "slow": f"http://127.0.0.1:{slow.port}",
        "nothing": f"http://127.0.0.1:{free_port()}",
    }
    ok.stop()
    slow.stop()


def answer(app: str, observation: Observation, env: dict, tmp_path) -> dict:
    """The service's answer to `observation.ask`, started in a fresh Python with exactly `env` set."""
    base = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": f"{app}_site.settings",
        "POD_STATE_DIR": tempfile.mkdtemp(dir=tmp_path),  # a pod of its own: no backend code held yet
    }
    result = subprocess.run(
        [sys.executable, "-c", ASK_SCRIPT, json.dumps({"path": observation.ask, "host": observation.host})],
        cwd=REPO / f"{app}_site",
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("observed", sorted(OBSERVATIONS), ids="-".join)
def test_env__each_variable_changes_what_the_service_does(stand_ins, tmp_path, observed):
    """With the variable the service answers as `expect` says; without it, or at `other`, it does not."""
    app, name = observed
    observation = OBSERVATIONS[observed]
    env = {key: value.format(**stand_ins) for key, value in observation.env.items()}
    with_it = answer(app, observation, {**env, name: observation.value.format(**stand_ins)}, tmp_path)
    other = {} if observation.other is None else {name: observation.other.format(**stand_ins)}
    without_it = answer(app, observation, {**env, **other}, tmp_path)
    assert observation.expect.items() <= with_it.items(), f"{name}={observation.value}: {with_it}"
    assert not observation.expect.items() <= without_it.items(), f"{name} left out: {without_it}"


@pytest.mark.parametrize("app", APPS)
def test_env__every_variable_set_is_observed(rendered, app):
    """The variables the Deployments set (either overlay) are the ones shown at work above, no more."""
    set_here = {name for overlay in OVERLAYS for name in container_env(rendered, overlay, app)}
    observed = {name for observed_app, name in OBSERVATIONS if observed_app == app}
    assert set_here == observed, f"set but not observed: {set_here - observed}; gone: {observed - set_here}"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("app", APPS)
def test_env__every_variable_set_is_documented(rendered, overlay, app):
    """Each variable containers[0] sets is a row of the README's Configuration table for its service."""
    documented = {
        name
        for name, service in README_VARIABLE.findall((REPO / "README.md").read_text())
        if service in (app, "both")
    }
    missing = set(container_env(rendered, overlay, app)) - documented
    assert not missing, f"missing from the README's Configuration table: {missing}"
