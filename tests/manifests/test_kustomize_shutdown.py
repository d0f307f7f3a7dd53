"""Graceful shutdown: the frontend's preStop hook tells the backend `game-over`, and every step of
both pods' shutdown fits in terminationGracePeriodSeconds (README, "How a pod stops")."""

import re
import stat
import subprocess
from pathlib import Path

import pytest

GAME_OVER_URL = "http://svc-backend.task-03.svc.cluster.local.:5000/game-over"
GAME_OVER_TIMEOUT_DEFAULT = 2.0  # the frontend's default (project contract)
GUNICORN_GRACEFUL_TIMEOUT_DEFAULT = 30  # gunicorn's own default when the config sets none


def prestop_script(container: dict) -> str:
    """The shell script of containers[0]'s exec preStop hook."""
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["/bin/sh", "-c"] and len(command) == 3, command
    return command[2]


def seconds_after(flag: str, script: str) -> float:
    """The number following `flag` in a shell script (e.g. `--max-time 2`, `sleep 5`)."""
    match = re.search(rf"{re.escape(flag)}[ =](\d+(?:\.\d+)?)\b", script)
    assert match, f"no `{flag} N` in {script!r}"
    return float(match.group(1))


def env_value(container: dict, name: str, default: float) -> float:
    """A numeric env value of the container, or the app's default when the manifest sets none."""
    for item in container.get("env", []):
        if item["name"] == name and "value" in item:
            return float(item["value"])
    return default


def grace_period(deployment: dict) -> int:
    """terminationGracePeriodSeconds of the Deployment's pods."""
    return deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]


def frontend_budget(container: dict, conf: dict) -> float:
    """preStop (curl max-time + sleep) + graceful_timeout + the on_exit game-over POST, in s."""
    script = prestop_script(container)
    return (
        seconds_after("--max-time", script)
        + seconds_after("sleep", script)
        + conf.get("graceful_timeout", GUNICORN_GRACEFUL_TIMEOUT_DEFAULT)
        + env_value(container, "GAME_OVER_TIMEOUT", GAME_OVER_TIMEOUT_DEFAULT)
    )


def backend_budget(container: dict, conf: dict) -> float:
    """preStop sleep + graceful_timeout, in s."""
    return seconds_after("sleep", prestop_script(container)) + conf.get(
        "graceful_timeout", GUNICORN_GRACEFUL_TIMEOUT_DEFAULT
    )


def env_of(container: dict) -> dict:
    """The container's plain env values (Downward API and ConfigMap references left out)."""
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def test_prestop__posts_game_over_to_svc_backend(frontend_container):
    """preStop curls POST to svc-backend's /game-over (the container's own BACKEND_URL), naming the pod,
    bounded by --max-time."""
    script = prestop_script(frontend_container)
    assert re.search(r"\bcurl\b", script)
    assert "-X POST" in script
    assert '"$BACKEND_URL/game-over"' in script
    assert env_of(frontend_container)["BACKEND_URL"] + "/game-over" == GAME_OVER_URL
    assert "--max-time" in script
    assert '-H "X-Pod-Name: $POD_NAME"' in script


def test_prestop__sleeps_after_the_call(frontend_container):
    """After the call the hook sleeps, so endpoints drain while the pod still serves."""
    script = prestop_script(frontend_container)
    assert script.index("curl") < script.index("sleep")
    assert seconds_after("sleep", script) > 0


def test_prestop__is_valid_shell(frontend_container):
    """/bin/sh parses the preStop script."""
    script = prestop_script(frontend_container)
    result = subprocess.run(["/bin/sh", "-n", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def stub_bin(tmp_path) -> Path:
    """A directory of stub `curl` and `sleep` commands that record their arguments and exit."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, code in (("curl", "${CURL_EXIT:-0}"), ("sleep", "0")):
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "$STUB_LOG/{name}"\nexit {code}\n')
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return bin_dir


@pytest.mark.parametrize("curl_exit", [0, 7], ids=["backend-up", "backend-down"])
def test_prestop__runs_curl_then_sleep(frontend_container, stub_bin, tmp_path, curl_exit):
    """With stub curl/sleep: curl gets the pod name and URL; sleep runs even when curl fails."""
    script = prestop_script(frontend_container)
    env = env_of(frontend_container) | {
        "PATH": f"{stub_bin}:/usr/bin:/bin",
        "POD_NAME": "frontend-abc12",
        "STUB_LOG": str(tmp_path),
        "CURL_EXIT": str(curl_exit),
    }
    result = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    curl_args = (tmp_path / "curl").read_text().splitlines()
    assert "X-Pod-Name: frontend-abc12" in curl_args
    assert curl_args[-1] == GAME_OVER_URL
    assert (tmp_path / "sleep").read_text().split() == [f"{seconds_after('sleep', script):g}"]


def test_grace_period__frontend_budget_fits(frontend_deployment, frontend_container, gunicorn_conf):
    """preStop max-time + sleep + graceful_timeout + GAME_OVER_TIMEOUT <= the grace period."""
    total = frontend_budget(frontend_container, gunicorn_conf("frontend"))
    assert total <= grace_period(frontend_deployment)


def test_grace_period__backend_budget_fits(backend_deployment, backend_container, gunicorn_conf):
    """The backend's preStop sleep + graceful_timeout <= its grace period."""
    total = backend_budget(backend_container, gunicorn_conf("backend"))
    assert total <= grace_period(backend_deployment)


@pytest.mark.parametrize("app", ["backend", "frontend"])
def test_grace_period__is_30_seconds(overlay, app):
    """Both pods get terminationGracePeriodSeconds 30 (the documented budget's ceiling)."""
    assert grace_period(overlay.get("Deployment", app)) == 30
