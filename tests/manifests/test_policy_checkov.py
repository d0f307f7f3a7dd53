"""checkov on the rendered overlays: no failed check, and the only skips are the three the k3s overlay's
local images force, each made in the manifest with a reason. The production overlay is checked as a release
renders it (images pinned by digest, tests/manifests/conftest.py) and needs no skip at all.

checkov pins many packages of its own, so it lives in its own venv, .venv/checkov, installed from
requirements-checkov.txt; `--skip-download` keeps it offline (no Prisma Cloud calls).
"""

import copy
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from testbed.podspec import REPO
from tests.prerequisites import skip_or_fail

from .conftest import RELEASE_DIGEST

CHECKOV = REPO / ".venv" / "checkov" / "bin" / "checkov"
INSTALL_HINT = "python3 -m venv .venv/checkov && .venv/checkov/bin/pip install -r requirements-checkov.txt"
# What each rendered overlay may skip, and why; the reasons themselves live in the k3s overlay's patch files.
#   CKV_K8S_15 pull policy not Always: the course requires imagePullPolicy Never.
#   CKV_K8S_43 image without digest:   a locally built, never pushed image has no digest to pin.
#   CKV_K8S_14 image tag latest:       the course builds and imports <app>:latest.
# With the images pinned by digest, production's IfNotPresent passes CKV_K8S_15 too.
IMAGE_CHECKS = {"CKV_K8S_14", "CKV_K8S_15", "CKV_K8S_43"}
ALLOWED_SKIPS = {"k3s": IMAGE_CHECKS, "production-release": set()}
SKIP_ANNOTATION_PREFIX = "checkov.io/skip"


def run_checkov(manifest: Path) -> dict:
    """checkov's JSON report on one manifest file (kubernetes framework only, offline)."""
    result = subprocess.run(
        [
            str(CHECKOV),
            "--file",
            str(manifest),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--output",
            "json",
        ],
        cwd=manifest.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # 0: all passed, 1: some check failed; anything else is checkov itself going wrong.
    assert result.returncode in (0, 1), f"checkov exited {result.returncode}:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    assert isinstance(report, dict), "expected one report (one framework)"
    return report


def describe(checks: list[dict]) -> list[str]:
    """'CHECK_ID resource' for each check, for assertion messages."""
    return [f"{check['check_id']} {check['resource']}" for check in checks]


@pytest.fixture(scope="module")
def checkov() -> Path:
    """The checkov executable of the .venv/checkov venv."""
    if not CHECKOV.is_file():
        skip_or_fail(f"checkov venv missing ({CHECKOV.relative_to(REPO)}): {INSTALL_HINT}")
    return CHECKOV


@pytest.fixture(scope="module", params=sorted(ALLOWED_SKIPS))
def overlay_name(request) -> str:
    """Each overlay checkov runs on ("production-release": production with its images pinned)."""
    return request.param


@pytest.fixture(scope="module")
def report(checkov, rendered, overlay_name, tmp_path_factory) -> dict:
    """checkov's report on one rendered overlay, run once per overlay for this module."""
    manifest = tmp_path_factory.mktemp("checkov") / f"{overlay_name}.yaml"
    manifest.write_text(rendered(overlay_name).text)
    return run_checkov(manifest)


def test_checkov__overlay_has_no_failed_checks(report):
    """Every checkov check on the rendered overlay passes or is skipped in the manifest."""
    failed = report["results"]["failed_checks"]
    assert report["summary"]["failed"] == 0, describe(failed)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0


def test_checkov__skips_only_the_allowed_ids(report, overlay_name):
    """k3s skips only CKV_K8S_14/15/43 (forced by local images); production skips nothing."""
    ids = {check["check_id"] for check in report["results"]["skipped_checks"]}
    assert ids <= ALLOWED_SKIPS[overlay_name], (
        f"unexpected skips: {sorted(ids - ALLOWED_SKIPS[overlay_name])}"
    )


def test_checkov__skips_only_the_deployments(report):
    """Skips sit on the two Deployments (where the images are named), on no other object."""
    resources = {check["resource"] for check in report["results"]["skipped_checks"]}
    assert resources <= {"Deployment.task-03.backend", "Deployment.task-03.frontend"}, sorted(resources)


def test_checkov__every_skip_has_a_reason(report):
    """checkov reads a reason from each skip annotation (`ID=reason`; its default means none was given)."""
    for check in report["results"]["skipped_checks"]:
        comment = check["check_result"].get("suppress_comment", "").strip()
        assert comment and comment != "No comment provided", describe([check])


def pinned_release_of(overlay) -> list[dict]:
    """The overlay's objects with the local images swapped for registry images pinned by digest, pulled
    IfNotPresent, as a release would name them, and without checkov skip annotations."""
    local_images = {f"{app}:latest": app for app in ("backend", "frontend")}
    objects = without_policy_work(overlay)
    for obj in objects:
        if obj["kind"] != "Deployment":
            continue
        pod = obj["spec"]["template"]["spec"]
        for container in [*pod["containers"], *pod.get("initContainers", [])]:
            app = local_images.get(container["image"])
            if app is not None:
                container["image"] = f"registry.example.com/{app}:1.0@{RELEASE_DIGEST}"
                container["imagePullPolicy"] = "IfNotPresent"
    return [*objects, *(obj for obj in overlay.objects if obj["kind"] == "NetworkPolicy")]


def test_checkov__k3s_skips_hide_only_its_local_images(checkov, overlay, tmp_path):
    """The reasons hold: with its own images pinned by digest in place of backend:latest and frontend:latest
    (pull policy Never), the k3s overlay passes every check with no skip."""
    manifest = tmp_path / "k3s-pinned.yaml"
    manifest.write_text(yaml.safe_dump_all(pinned_release_of(overlay)))
    pinned = run_checkov(manifest)
    assert pinned["summary"]["failed"] == 0, describe(pinned["results"]["failed_checks"])
    assert pinned["summary"]["skipped"] == 0


def without_policy_work(overlay) -> list[dict]:
    """The overlay's objects minus its NetworkPolicies and checkov skip annotations."""
    objects = []
    for obj in copy.deepcopy(overlay.objects):
        if obj["kind"] == "NetworkPolicy":
            continue
        annotations = obj["metadata"].get("annotations", {})
        for key in [key for key in annotations if key.startswith(SKIP_ANNOTATION_PREFIX)]:
            del annotations[key]
        objects.append(obj)
    return objects


def test_checkov__fails_without_the_policies_and_skips(checkov, rendered, overlay_name, tmp_path):
    """Without NetworkPolicies and skip annotations checkov fails exactly the checks they answer."""
    manifest = tmp_path / "bare.yaml"
    manifest.write_text(yaml.safe_dump_all(without_policy_work(rendered(overlay_name))))
    bare = run_checkov(manifest)
    failed = {check["check_id"] for check in bare["results"]["failed_checks"]}
    assert failed == ALLOWED_SKIPS[overlay_name] | {"CKV2_K8S_6"}, sorted(failed)
    assert bare["summary"]["skipped"] == 0


def test_checkov__production_local_tags_fail_only_the_image_checks(checkov, production, tmp_path):
    """Unpinned (the local tags the emulator runs), production fails the image checks and nothing else."""
    manifest = tmp_path / "production.yaml"
    manifest.write_text(production.text)
    failed = {check["check_id"] for check in run_checkov(manifest)["results"]["failed_checks"]}
    assert failed == IMAGE_CHECKS, sorted(failed)
