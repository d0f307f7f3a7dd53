"""A stand-in for kubectl that serves recorded task-03 objects, for testing tools/verify.py.

It understands exactly the commands `verify.Cluster` issues (`-n NS get|logs|exec|delete ...`) and
keeps its state in the directory named by $FAKE_KUBECTL_DIR:

    deployment-<name>.json, service-<backend|frontend>.json   `get`; a missing file is NotFound
    pods-<app>.json                                           `get pods -l app=<app>`
    http.json        URL -> {"status": int, "body": str}      `exec ... curl URL`; missing = refused
    backend.log                                               `logs <backend pod>`
    scenario.json    knobs, see SCENARIO_DEFAULTS
    calls.jsonl      every argv received, one JSON list a line (written here)

Deleting the frontend pod marks it terminating, adds a Ready replacement, and appends
`game_over_lines` `POST /game-over` access-log lines to backend.log once `logs` has been asked
`polls_before_growth` more times, the way the real log grows a few seconds after the deletion.

The real path (the running pods, through testbed/kubectl.py) is tests/e2e/test_verify.py; this fake keeps
the cases a live run cannot stage cheaply (no API server, another namespace, a replacement never Ready) fast.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

SCENARIO_DEFAULTS = {
    "namespace": "task-03",
    "game_over_lines": 2,  # POST /game-over lines the deletion adds to the backend log
    "polls_before_growth": 1,  # `logs` calls after the deletion that still see the old log
    "replacement_ready": True,  # whether the replacement frontend pod becomes Ready
    "unreachable": False,  # every command fails like kubectl with no API server
}
REPLACEMENT_SUFFIX = "r3pl4"  # frontend-7b9f6c5d48-r3pl4
GAME_OVER_LINE = (
    '10.42.0.15 - - [25/Nov/2025:08:41:02 +0000] "POST /game-over HTTP/1.1" 200 24 "-" "curl/7.88.1"'
)


class Fail(Exception):
    """Exit like kubectl does on an error: message on stderr, non-zero status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def state_dir() -> Path:
    return Path(os.environ["FAKE_KUBECTL_DIR"])


def read_json(name: str) -> dict:
    return json.loads((state_dir() / name).read_text())


def write_json(name: str, value: dict) -> None:
    (state_dir() / name).write_text(json.dumps(value, indent=4))


def scenario() -> dict:
    path = state_dir() / "scenario.json"
    overrides = json.loads(path.read_text()) if path.exists() else {}
    return {**SCENARIO_DEFAULTS, **overrides}


def split_namespace(argv: list[str]) -> tuple[str, list[str]]:
    if argv[:1] != ["-n"] or len(argv) < 2:
        raise Fail(f"fake kubectl: expected `-n NAMESPACE ...`, got {argv}")
    return argv[1], argv[2:]


def not_found(resource: str, name: str) -> Fail:
    return Fail(f'Error from server (NotFound): {resource} "{name}" not found')


def get(args: list[str]) -> str:
    if args[:2] == ["pods", "-l"]:
        app = args[2].removeprefix("app=")
        return json.dumps(read_json(f"pods-{app}.json"))
    kind, name = args[0], args[1]
    files = {"deployment": f"deployment-{name}.json", "service": f"service-{name[4:]}.json"}
    path = state_dir() / files[kind]
    if not path.exists():
        raise not_found("deployments.apps" if kind == "deployment" else "services", name)
    return path.read_text()


def pod_names(app: str) -> list[str]:
    return [pod["metadata"]["name"] for pod in read_json(f"pods-{app}.json")["items"]]


def logs(args: list[str]) -> str:
    pod = args[0]
    if pod not in pod_names("backend"):
        raise not_found("pods", pod)
    grow_log_if_due()
    return (state_dir() / "backend.log").read_text()


def grow_log_if_due() -> None:
    state = read_json("state.json") if (state_dir() / "state.json").exists() else {}
    if "polls_left" not in state:
        return
    if state["polls_left"] > 0:
        state["polls_left"] -= 1
    else:
        with (state_dir() / "backend.log").open("a") as log:
            log.write(f"{GAME_OVER_LINE}\n" * state.pop("pending_lines"))
        del state["polls_left"]
    write_json("state.json", state)


def exec_curl(args: list[str]) -> str:
    if not (state_dir() / "deployment-frontend.json").exists():
        raise not_found("deployments.apps", "frontend")
    if "--" not in args or args[args.index("--") + 1] != "curl":
        raise Fail(f"fake kubectl: only `exec ... -- curl` is served, got {args}")
    url = args[-1]
    response = read_json("http.json").get(url)
    if response is None:
        sys.stdout.write("\n000")
        raise Fail(
            f"curl: (7) Failed to connect to {url.split('/')[2]}: Connection refused\n"
            "command terminated with exit code 7",
            7,
        )
    return f"{response['body']}\n{response['status']}"


def delete(args: list[str], knobs: dict) -> str:
    kind, name = args[0], args[1]
    pods = read_json("pods-frontend.json")
    victim = next((pod for pod in pods["items"] if pod["metadata"]["name"] == name), None)
    if kind != "pod" or victim is None:
        raise not_found("pods", name)
    victim["metadata"]["deletionTimestamp"] = "2025-11-25T08:41:00Z"
    pods["items"].append(replacement_pod(victim, knobs["replacement_ready"]))
    write_json("pods-frontend.json", pods)
    state = {"polls_left": knobs["polls_before_growth"], "pending_lines": knobs["game_over_lines"]}
    write_json("state.json", state)
    return f'pod "{name}" deleted\n'


def replacement_pod(victim: dict, ready: bool) -> dict:
    pod = copy.deepcopy(victim)
    del pod["metadata"]["deletionTimestamp"]
    pod["metadata"]["name"] = pod["metadata"]["generateName"] + REPLACEMENT_SUFFIX
    for condition in pod["status"]["conditions"]:
        if condition["type"] in ("Ready", "ContainersReady"):
            condition["status"] = "True" if ready else "False"
    return pod


def empty_namespace(verb: str, args: list[str]) -> str:
    """Answer like kubectl does for a namespace holding nothing: empty lists, else NotFound."""
    if verb == "get" and args[0] == "pods":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": []})
    resources = {"deployment": "deployments.apps", "service": "services"}
    if verb == "get":
        raise not_found(resources[args[0]], args[1])
    if verb == "exec":
        raise not_found("deployments.apps", args[0].removeprefix("deploy/"))
    raise not_found("pods", args[0] if verb == "logs" else args[1])


def run(argv: list[str]) -> str:
    knobs = scenario()
    if knobs["unreachable"]:
        raise Fail("The connection to the server 127.0.0.1:6443 was refused")
    namespace, args = split_namespace(argv)
    verb, rest = args[0], args[1:]
    if namespace != knobs["namespace"]:
        return empty_namespace(verb, rest)
    if verb == "get":
        return get(rest)
    if verb == "logs":
        return logs(rest)
    if verb == "exec":
        return exec_curl(rest)
    if verb == "delete":
        return delete(rest, knobs)
    raise Fail(f"fake kubectl: unknown verb {verb!r}")


def main() -> int:
    argv = sys.argv[1:]
    with (state_dir() / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps(argv) + "\n")
    try:
        sys.stdout.write(run(argv))
    except Fail as exc:
        sys.stderr.write(f"{exc}\n")
        return exc.status
    return 0


if __name__ == "__main__":
    sys.exit(main())
