"""Shared fixtures for the manifest tests: render kustomize/ once per session, index the objects.

The manifests are read the way the course reads them: from what `kubectl kustomize` renders, never
from the source YAML. Tools these tests need (kubectl, kubernetes-validate, hadolint) and files the
services provide (gunicorn.conf.py, URLconfs, Dockerfiles) are skipped with a clear message when
absent on a developer machine, and fail the run under CI=true.
"""

import os
import runpy
import sys
from pathlib import Path

import pytest
import yaml

from testbed.podspec import BASE, OVERLAY, PRODUCTION, REPO, Manifests
from tests.prerequisites import find_tool, skip_or_fail

# A digest a release would pin with `kustomize edit set image` (any well-formed one: nothing is pulled).
RELEASE_DIGEST = "sha256:" + "0" * 64


@pytest.fixture(scope="session")
def kubectl() -> str:
    """Path of kubectl (whose `kustomize` subcommand renders offline)."""
    path = find_tool("kubectl")
    if path is None:
        skip_or_fail(
            "kubectl not found on PATH: install kubectl >= 1.27 (bundles kustomize v5) "
            "to render kustomize/base and kustomize/overlays/k3s"
        )
    return path


@pytest.fixture(scope="session")
def base(kubectl) -> Manifests:
    """kustomize/base, rendered once per session."""
    return Manifests.render(BASE, kubectl)


@pytest.fixture(scope="session")
def overlay(kubectl) -> Manifests:
    """kustomize/overlays/k3s, rendered once per session: what users apply."""
    return Manifests.render(OVERLAY, kubectl)


@pytest.fixture(scope="session")
def production(kubectl) -> Manifests:
    """kustomize/overlays/production as it stands: the local tags, so the emulator runs it."""
    return Manifests.render(PRODUCTION, kubectl)


@pytest.fixture(scope="session")
def production_release(kubectl, tmp_path_factory) -> Manifests:
    """The production overlay as a release renders it: registry names pinned by digest, as
    `kustomize edit set image backend=registry.example.com/backend:1.0@sha256:...` writes them."""
    directory = tmp_path_factory.mktemp("release")
    images = [
        {"name": app, "newName": f"registry.example.com/{app}", "newTag": "1.0", "digest": RELEASE_DIGEST}
        for app in ("backend", "frontend")
    ]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(PRODUCTION, directory)],  # kustomize refuses absolute paths
        "images": images,
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return Manifests.render(directory, kubectl)


@pytest.fixture(scope="session")
def rendered(request) -> Manifests:
    """A callable `rendered(name)`: "base", "k3s", "production" or "production-release", rendered."""
    fixtures = {"base": "base", "k3s": "overlay", "production": "production"}
    fixtures["production-release"] = "production_release"
    return lambda name: request.getfixturevalue(fixtures[name])


@pytest.fixture(scope="session")
def backend_deployment(overlay) -> dict:
    """The rendered Deployment `backend`."""
    return overlay.get("Deployment", "backend")


@pytest.fixture(scope="session")
def frontend_deployment(overlay) -> dict:
    """The rendered Deployment `frontend`."""
    return overlay.get("Deployment", "frontend")


@pytest.fixture(scope="session")
def backend_container(backend_deployment) -> dict:
    """containers[0] of the backend pod template (the course reads this one)."""
    return backend_deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="session")
def frontend_container(frontend_deployment) -> dict:
    """containers[0] of the frontend pod template (the course reads this one)."""
    return frontend_deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="session")
def require():
    """A callable `require(path, what)`: the path, or skip (fail in CI) when the file is missing."""

    def _require_file(path: Path, what: str) -> Path:
        if not path.is_file():
            skip_or_fail(f"{path.relative_to(REPO)} is missing ({what})")
        return path

    return _require_file


@pytest.fixture(scope="session")
def tool():
    """A callable `tool(name, install_hint)` returning the tool's path (skip/fail when missing)."""

    def _tool(name: str, install_hint: str) -> str:
        path = find_tool(name)
        if path is None:
            skip_or_fail(f"{name} not found on PATH or in the venv: {install_hint}")
        return path

    return _tool


def load_gunicorn_conf(service_dir: Path) -> dict:
    """Execute <service>/gunicorn.conf.py in-process (runpy) and return its module globals.

    PORT and other gunicorn knobs are unset for the duration, so the defaults are what is read: the
    Deployments set none of them. The environment is restored afterwards.
    """
    conf = service_dir / "gunicorn.conf.py"
    if not conf.is_file():
        skip_or_fail(f"{conf.relative_to(REPO)} is missing (the service provides it)")
    knobs = ("PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_CMD_ARGS")
    saved_env = dict(os.environ)  # the config also sets variables (PROMETHEUS_MULTIPROC_DIR): all undone
    for key in knobs:
        os.environ.pop(key, None)
    sys.path.insert(0, str(service_dir))
    try:
        return runpy.run_path(str(conf), run_name="gunicorn_conf")
    finally:
        sys.path.remove(str(service_dir))
        os.environ.clear()
        os.environ.update(saved_env)


@pytest.fixture(scope="session")
def gunicorn_conf():
    """A callable `gunicorn_conf("backend" | "frontend")` -> that service's gunicorn settings."""
    cache: dict[str, dict] = {}

    def _load(service: str) -> dict:
        if service not in cache:
            cache[service] = load_gunicorn_conf(REPO / f"{service}_site")
        return cache[service]

    return _load
