"""Build backend:latest and frontend:latest from the real Dockerfiles and contexts, as `manage.sh build` does.

What differs from a plain `docker build` stays here and never reaches the Dockerfiles:
- the base image python:3.12-slim may not be pullable (no registry): standin-base-image.sh provides it;
- outbound HTTPS goes through a proxy with its own CA, so pip inside the build must trust the host's CA
  bundle. Both files are bind-mounted into the RUN steps only (`-v`), so nothing reaches the image or the
  layer cache key (an `--env PIP_CERT` would be baked into the image's config and change every layer).
"""

import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path

from .podman import PODMAN, PodmanError

REPO = Path(__file__).resolve().parents[1]
STANDIN_SCRIPT = Path(__file__).with_name("standin-base-image.sh")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # Debian's ca-certificates
# Image tag -> Dockerfile, built with the repository root as context; the tags are the images the
# overlays' Deployments run.
IMAGES = {
    "backend:latest": REPO / "backend_site" / "Dockerfile",
    "frontend:latest": REPO / "frontend_site" / "Dockerfile",
}


def ensure_base_image():
    """Make python:3.12-slim available to podman (real pull or the Debian stand-in); returns seconds taken."""
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(STANDIN_SCRIPT)], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        raise PodmanError(f"{STANDIN_SCRIPT.name} failed:\n{result.stderr[-4000:]}")
    return time.monotonic() - started


@cache
def build_args():
    """VERSION and GIT_COMMIT of this checkout, as `./manage.sh build` passes them (what /version answers).

    Read once per process: a test compares what the images were built with, whatever was committed since."""

    def git(*args, default):
        result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else default

    return {
        "VERSION": git("describe", "--always", "--dirty", default="dev"),
        "GIT_COMMIT": git("rev-parse", "HEAD", default="unknown"),
    }


def build_images():
    """Build every image in IMAGES; returns {tag: seconds}. Layer cache makes an unchanged rebuild quick."""
    timings = {}
    with tempfile.TemporaryDirectory(prefix="e2e-build-") as scratch:
        mounts = []
        if HOST_CA_BUNDLE.is_file():
            pip_conf = Path(scratch) / "pip.conf"
            pip_conf.write_text("[global]\ncert = /run/host-ca.crt\n")
            mounts = ["-v", f"{HOST_CA_BUNDLE}:/run/host-ca.crt:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro"]
        args = [arg for name, value in build_args().items() for arg in ("--build-arg", f"{name}={value}")]
        for tag, dockerfile in IMAGES.items():
            started = time.monotonic()
            command = [*PODMAN, "build", *mounts, *args, "--tag", tag, "--file", str(dockerfile), str(REPO)]
            result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
            if result.returncode != 0:
                output = (result.stdout + result.stderr)[-4000:]
                raise PodmanError(f"building {tag} from {dockerfile} failed:\n{output}")
            timings[tag] = time.monotonic() - started
    return timings
