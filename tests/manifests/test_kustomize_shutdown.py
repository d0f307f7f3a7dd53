"""Graceful shutdown: each Deployment's preStop hook, taken from the rendered overlays and run as the kubelet
runs it, against a fake backend, drains the pod, tells the backend `game-over` (the frontend), keeps the pod
serving past the Services' propagation delay, and fits terminationGracePeriodSeconds with the rest of the
stop (README, "How a pod stops").

The hook runs with the container's env, the real `python -m podkit.stop prestop` and the real curl; only
`sleep` is a stand-in, which records what it was asked and returns at once, so a 5 s sleep costs nothing.
"""

import contextlib
import http.server
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from podkit import fault, stop
from testbed.cluster import ROLLOUT_PROPAGATION_DELAY
from testbed.podspec import REPO

# s the pod serves beyond the emulated propagation delay: that delay varies on a busy node, and a connection
# the old rules routed just before they changed still arrives after it.
MARGIN = 1.0
OVERLAYS = ["k3s", "production"]
APPS = ["backend", "frontend"]
POD_NAMES = {"backend": "backend-5d8f7c9b6-x2x4q", "frontend": "frontend-6c7d9b8f5-k7m2p"}
GAME_OVER_TIMEOUT_DEFAULT = 2.0  # the frontend's default (project contract)
GUNICORN_GRACEFUL_TIMEOUT_DEFAULT = 30  # gunicorn's own default when the config sets none

# `python` for the hook under test: this venv's, with the repository importable (the image's WORKDIR).
PYTHON = """#!/bin/sh
PYTHONPATH={repo} exec {python} "$@"
"""
SLEEP = """#!{python}
# `sleep` for the hook under test: records its seconds and the pod's drain at that moment, returns at once.
import json, sys
sys.path.insert(0, {repo!r})
from podkit import fault
with open({events!r}, "a") as events:
    event = {{"event": "sleep", "seconds": float(sys.argv[1]), "drain": fault.readiness_reason()}}
    events.write(json.dumps(event) + "\\n")
"""


def record(events: Path, event: dict):
    """Append one event of the hook's run, as it happens."""
    with events.open("a") as file:
        file.write(json.dumps(event) + "\n")


class FakeBackend(http.server.ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1 in svc-backend's place: records each request with the pod's drain at
    that moment; answers 200 JSON, or (answers=False) never answers and records when the client hangs up."""

    daemon_threads = True

    def __init__(self, events: Path, answers: bool, hold: float):
        super().__init__(("127.0.0.1", 0), FakeBackendHandler)
        self.events, self.answers, self.hold = events, answers, hold
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address):
        pass  # a client that gave up is what the hanging backend waits for

    def got(self, handler):
        arrived = time.monotonic()
        headers = [[name.lower(), value] for name, value in handler.headers.items()]
        request = {"method": handler.command, "path": handler.path, "headers": headers}
        record(self.events, {"event": "request", **request, "drain": fault.readiness_reason()})
        handler.close_connection = True
        if self.answers:
            body = b'{"status": "ok"}'
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        handler.connection.settimeout(self.hold)
        with contextlib.suppress(TimeoutError):
            handler.rfile.read()  # until the client closes its end
            record(self.events, {"event": "client hung up", "after": time.monotonic() - arrived})


class FakeBackendHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.server.got(self)

    do_GET = do_PUT = do_POST

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def backend_at(mode: str, events: Path, hold: float):
    """The URL of a backend that "answers", "hangs" (never answers) or is "down" (refuses connections)."""
    if mode == "down":
        with socket.socket() as bound:  # bound, not listening: a connection gets a RST
            bound.bind(("127.0.0.1", 0))
            yield f"http://127.0.0.1:{bound.getsockname()[1]}"
        return
    server = FakeBackend(events, answers=mode == "answers", hold=hold)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()


def container_env(container: dict, pod_name: str) -> dict:
    """What the kubelet gives the hook: the container's plain values and its Downward API fields."""
    fields = {"metadata.name": pod_name, "status.podIP": "127.0.0.1"}
    env = {}
    for item in container.get("env", []):
        field = item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if "value" in item or field in fields:
            env[item["name"]] = item["value"] if "value" in item else fields[field]
    return env


@dataclass
class HookRun:
    returncode: int
    output: str
    seconds: float  # the real time the hook ran (its sleeps returned at once)
    events: list  # in order: what the backend got, and each sleep; each with the drain at that moment

    @property
    def slept(self) -> float:
        """How long the hook keeps the pod serving at the least: the seconds it asked to sleep."""
        return sum(event["seconds"] for event in self.of("sleep"))

    def of(self, kind: str) -> list:
        return [event for event in self.events if event["event"] == kind]


def run_hook(deployment: dict, pod_name: str, directory: Path, backend: str) -> HookRun:
    """containers[0]'s preStop command, exec'd as the kubelet does, against a backend in that `backend` mode;
    killed, as the kubelet kills it, when it outlives terminationGracePeriodSeconds."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    bin_dir, state, events = directory / "bin", directory / "state", directory / "events.jsonl"
    bin_dir.mkdir()
    state.mkdir()
    events.touch()
    python = PYTHON.format(python=shlex.quote(sys.executable), repo=shlex.quote(str(REPO)))
    sleep = SLEEP.format(python=sys.executable, repo=str(REPO), events=str(events))
    for name, text in (("python", python), ("sleep", sleep)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = container_env(container, pod_name) | {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env["POD_STATE_DIR"] = str(state)
    # The fake backend reads the pod's drain in this process.
    with mock.patch.dict(os.environ, POD_STATE_DIR=str(state)), backend_at(backend, events, grace) as url:
        if "BACKEND_URL" in env:
            env["BACKEND_URL"] = url
        started = time.monotonic()
        with (directory / "output").open("w+") as output:
            process = subprocess.Popen(
                container["lifecycle"]["preStop"]["exec"]["command"],
                env=env,
                cwd=directory,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                returncode = process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                returncode = process.wait()
            seconds = time.monotonic() - started
            output.seek(0)
            text = output.read()
    lines = events.read_text().splitlines()
    return HookRun(returncode, text, seconds, [json.loads(line) for line in lines])


@pytest.fixture(scope="module")
def hook(rendered, tool, tmp_path_factory):
    """A callable `hook(overlay, app, backend="answers")`: the HookRun of that Deployment's preStop hook in
    that rendered overlay, against a backend that "answers", "hangs" or is "down"; each run once."""
    tool("curl", "apt-get install curl (the frontend's preStop hook calls the backend with it)")
    runs = {}

    def _hook(overlay, app, backend="answers"):
        if (overlay, app, backend) not in runs:
            deployment = rendered(overlay).get("Deployment", app)
            directory = tmp_path_factory.mktemp(f"prestop-{overlay}-{app}-{backend}")
            runs[overlay, app, backend] = run_hook(deployment, POD_NAMES[app], directory, backend)
        return runs[overlay, app, backend]

    return _hook


def header(request: dict, name: str) -> list:
    return [value for key, value in request["headers"] if key == name.lower()]


@pytest.mark.parametrize("overlay_name", OVERLAYS)
def test_prestop__posts_game_over_once__backend_answers(hook, overlay_name):
    """The frontend's hook sends exactly one POST /game-over, naming the pod and the preStop path."""
    run = hook(overlay_name, "frontend")
    assert run.returncode == 0, run.output
    (request,) = run.of("request")
    assert (request["method"], request["path"]) == ("POST", "/game-over")
    assert header(request, "X-Pod-Name") == [POD_NAMES["frontend"]]
    assert header(request, "X-Game-Over-Path") == ["preStop"]


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("overlay_name", OVERLAYS)
def test_prestop__drains_before_game_over_and_sleep(hook, overlay_name, app):
    """The hook starts the stop's timeline and sets the drain before it calls the backend or sleeps."""
    run = hook(overlay_name, app)
    assert run.returncode == 0, run.output
    assert stop.timeline(run.output)[0][2] == "preStop started"
    assert run.of("sleep"), f"the hook never sleeps: {run.events}"
    assert [event["drain"] for event in run.events] == [stop.PRESTOP] * len(run.events), run.events


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("overlay_name", OVERLAYS)
def test_prestop__serves_past_the_rollout_propagation_delay(hook, overlay_name, app):
    """The hook keeps the pod serving at least ROLLOUT_PROPAGATION_DELAY + MARGIN after it starts."""
    assert hook(overlay_name, app).slept >= ROLLOUT_PROPAGATION_DELAY + MARGIN


@pytest.mark.parametrize("overlay_name", OVERLAYS)
def test_prestop__backend_down__exits_0_and_still_serves(hook, overlay_name):
    """A refused game-over fails neither the hook nor the sleep after it."""
    run = hook(overlay_name, "frontend", backend="down")
    assert run.returncode == 0, run.output
    assert run.slept >= ROLLOUT_PROPAGATION_DELAY + MARGIN, run.events


@pytest.mark.parametrize("overlay_name", OVERLAYS)
def test_prestop__backend_hangs__curl_gives_up_and_exits_0(hook, overlay_name):
    """A backend that never answers: curl hangs up by itself, the hook exits 0 and still sleeps in full."""
    run = hook(overlay_name, "frontend", backend="hangs")
    assert run.returncode == 0, f"exit {run.returncode} after {run.seconds:.1f} s:\n{run.output}"
    assert len(run.of("request")) == 1, run.events
    assert run.of("client hung up"), f"curl never gave up on its own: {run.events}"
    assert run.slept >= ROLLOUT_PROPAGATION_DELAY + MARGIN, run.events


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("overlay_name", OVERLAYS)
def test_grace_period__budget_fits(hook, rendered, gunicorn_conf, overlay_name, app):
    """The hook at its longest (the backend hangs) + graceful_timeout (+ the frontend's on_exit game-over)
    fits terminationGracePeriodSeconds."""
    run = hook(overlay_name, app, backend="hangs")
    spec = rendered(overlay_name).get("Deployment", app)["spec"]["template"]["spec"]
    env = container_env(spec["containers"][0], POD_NAMES[app])
    after_sigterm = gunicorn_conf(app).get("graceful_timeout", GUNICORN_GRACEFUL_TIMEOUT_DEFAULT)
    if app == "frontend":
        after_sigterm += float(env.get("GAME_OVER_TIMEOUT", GAME_OVER_TIMEOUT_DEFAULT))
    budget = f"preStop: {run.seconds:.2f} s run + {run.slept:g} s slept; after SIGTERM {after_sigterm:g} s"
    assert run.seconds + run.slept + after_sigterm <= spec["terminationGracePeriodSeconds"], budget


@pytest.mark.parametrize("app", APPS)
def test_grace_period__is_30_seconds(overlay, app):
    """Both pods get terminationGracePeriodSeconds 30 (the documented budget's ceiling)."""
    assert overlay.get("Deployment", app)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 30
