"""Fixtures of the container tests: the images built once, and emulated clusters to run their pods in.

The images are built once per session from the real Dockerfiles. `steady` is one cluster with both pods
started together and left alone, for the scenarios that only look; `cluster` is a fresh, empty cluster for a
scenario that breaks, stops or deletes pods (it is removed afterwards, whatever happened). Durations the
scenarios measure are printed at the end of the run ("e2e measurements").

Outside CI a machine without podman skips these tests with the reason; under CI=true nothing skips.
"""

import copy
import os
import secrets
import shutil
import time

import pytest

from testbed import podman as pm
from testbed.cluster import Cluster
from testbed.images import IMAGES, build_images, ensure_base_image
from testbed.podspec import PRODUCTION, Manifests
from tests.prerequisites import skip_or_fail

MEASUREMENTS = []  # (what, value, unit), printed by pytest_terminal_summary
E2E_SPAN = []  # time.monotonic() when the first e2e test started, when the last one finished


def record(what, value, unit="s"):
    """Keep a measurement (a duration unless told otherwise) for the summary printed at the end of the run."""
    MEASUREMENTS.append((what, value, unit))


def pytest_terminal_summary(terminalreporter):
    if not MEASUREMENTS:
        return
    terminalreporter.section("e2e measurements")
    for what, value, unit in MEASUREMENTS:
        number = f"{value:8.2f}" if unit == "s" else f"{value:8d}"
        terminalreporter.write_line(f"{what:<66} {number} {unit}")
    if E2E_SPAN:
        elapsed = E2E_SPAN[-1] - E2E_SPAN[0]
        terminalreporter.write_line(
            f"{'wall time of the tests in tests/e2e (builds included)':<66} {elapsed:8.2f} s"
        )


def pytest_runtest_logstart(nodeid):
    if nodeid.startswith("tests/e2e/") and not E2E_SPAN:
        E2E_SPAN.append(time.monotonic())


def pytest_runtest_logfinish(nodeid):
    if nodeid.startswith("tests/e2e/") and E2E_SPAN:
        E2E_SPAN[1:] = [time.monotonic()]


@pytest.fixture(name="record", scope="session")
def record_fixture():
    """record(what, value, unit="s"): a measurement for the summary at the end of the run."""
    return record


@pytest.fixture(scope="session")
def e2e_session():
    """A session id for names and labels; removes this session's leftovers at the end (and dead runs')."""
    if not pm.available():
        skip_or_fail(
            "podman not found: sudo apt-get install podman runc debootstrap netavark aardvark-dns iptables"
        )
    if shutil.which("kubectl") is None:
        skip_or_fail("kubectl not found: it renders kustomize/overlays/k3s")
    if os.geteuid() != 0:
        skip_or_fail(
            "the container tests need root (rootful podman: static pod IPs, the stand-in base image)"
        )
    pm.remove_leftovers()  # networks and containers of earlier runs that died before their teardown
    session = secrets.token_hex(3)
    yield session
    pm.remove_leftovers(session)


@pytest.fixture(scope="session")
def manifests(e2e_session):
    """The rendered k3s overlay (`kubectl kustomize kustomize/overlays/k3s`)."""
    return Manifests.render()


@pytest.fixture(scope="session")
def images(e2e_session, manifests):
    """backend:latest and frontend:latest, built once per session from the real Dockerfiles."""
    wanted = {
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        for deployment in manifests.of_kind("Deployment")
    }
    assert wanted <= set(IMAGES), f"the overlay runs {sorted(wanted)}; the harness builds {sorted(IMAGES)}"
    record("base image python:3.12-slim ready (stand-in script)", ensure_base_image())
    for tag, seconds in build_images().items():
        record(f"podman build {tag}", seconds)
    return sorted(wanted)


@pytest.fixture(scope="session")
def steady(images, manifests, e2e_session):
    """Both pods started together, as `kubectl apply -k` starts them, and Ready; nobody disturbs them."""
    cluster = Cluster(manifests, e2e_session, "steady")
    try:
        cluster.apply()
        yield cluster
        broken = kubelet_failures(cluster)
    finally:
        cluster.close()
    if broken:
        pytest.fail(f"the e2e kubelet itself failed: {broken}", pytrace=False)


@pytest.fixture
def cluster(images, manifests, e2e_session, request):
    """A fresh, empty cluster for one test, removed afterwards whatever happened.

    Parametrized indirectly with a function of the rendered objects, it runs that variant of the overlay."""
    yield from fresh_cluster(manifests, e2e_session, request)


@pytest.fixture(scope="session")
def production_manifests(images):
    """The rendered production overlay (`kubectl kustomize kustomize/overlays/production`)."""
    return Manifests.render(PRODUCTION)


@pytest.fixture
def production(production_manifests, e2e_session, request):
    """A fresh, empty cluster for the production overlay (variants as for `cluster`)."""
    yield from fresh_cluster(production_manifests, e2e_session, request)


def fresh_cluster(manifests, e2e_session, request):
    name = request.node.originalname.split("__")[-1][:20].replace("_", "-")
    variant = getattr(request, "param", None)
    if variant is not None:
        manifests = Manifests(variant(copy.deepcopy(manifests.objects)))
    fresh = Cluster(manifests, e2e_session, name)
    yield fresh
    broken = kubelet_failures(fresh)
    fresh.close()
    if broken:
        pytest.fail(f"the e2e kubelet itself failed: {broken}", pytrace=False)


def kubelet_failures(cluster):
    """What went wrong in the emulated kubelet itself (a crashed pod worker, a failed start), per pod."""
    return [f"{pod.name}: {pod.failure}" for pod in cluster.pods if pod.failure]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed scenario's report shows each pod's events, probe results and log tail."""
    report = yield
    if report.when == "call" and report.failed:
        for value in getattr(item, "funcargs", {}).values():
            for pod in value.pods if isinstance(value, Cluster) else ():
                text = f"{pod.describe()}\n--- last lines of its log ---\n{pod.logs()[-3000:]}"
                report.sections.append((f"pod {pod.name}", text))
    return report
