"""The two services' Dockerfiles are one recipe: they differ only in the service's folder and port, and in the
frontend's curl for its preStop hook. The spec gives each service its own Dockerfile and a Dockerfile has no
include, so this test is what keeps a change to one from missing the other."""

from testbed.podspec import REPO

PORTS = {"backend": "5000", "frontend": "8080"}
# The frontend's one step of its own: curl, for its preStop hook (kustomize/base/deployment-frontend.yaml).
CURL = [
    "RUN apt-get update \\",
    "    && apt-get install -y --no-install-recommends curl \\",
    "    && rm -rf /var/lib/apt/lists/*",
]


def recipe(text, service):
    """The instructions of a service's Dockerfile, its folder and port written as placeholders (comments,
    which say why in the service's own words, and blank lines left out)."""
    lines = (
        line.replace(f"{service}_site", "<service>").replace(PORTS[service], "<port>")
        for line in text.splitlines()
    )
    return [line for line in lines if line.strip() and not line.startswith("#")]


def frontend_without_curl(lines):
    start = lines.index(CURL[0])
    assert lines[start : start + len(CURL)] == CURL, "the frontend's curl step changed shape"
    return lines[:start] + lines[start + len(CURL) :]


def differences(backend_text, frontend_text):
    """Where the two recipes part, once the frontend's curl step is set aside: [] when they agree."""
    backend = recipe(backend_text, "backend")
    frontend = frontend_without_curl(recipe(frontend_text, "frontend"))
    if backend == frontend:
        return []
    return [
        f"backend: {b!r} / frontend: {f!r}" for b, f in zip(backend, frontend, strict=False) if b != f
    ] or [f"backend has {len(backend)} instructions, frontend {len(frontend)}"]


def read(service):
    return (REPO / f"{service}_site" / "Dockerfile").read_text()


def test_dockerfiles__one_recipe_but_for_the_service():
    """Same instructions in the same order, but for folder, port and the frontend's curl."""
    assert differences(read("backend"), read("frontend")) == []


def test_dockerfiles__a_step_in_one_only_is_found():
    """The check fails on a step changed, added or dropped in one Dockerfile only."""
    backend, frontend = read("backend"), read("frontend")
    changed = frontend.replace("USER 10001:10001", "USER 10002:10002")
    added = backend.replace("WORKDIR /app\n", "WORKDIR /app\nRUN true\n")
    dropped = backend.replace("RUN python -m compileall -q .\n", "")
    assert changed != frontend and added != backend and dropped != backend, "the mutations no longer apply"
    assert differences(backend, changed) == ["backend: 'USER 10001:10001' / frontend: 'USER 10002:10002'"]
    assert differences(added, frontend)
    assert differences(dropped, frontend)
