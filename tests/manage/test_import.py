"""`manage.sh import` and the import step of `manage.sh build`, against a real containerd set up as k3s's.

The pods ask for backend:latest and frontend:latest with imagePullPolicy: Never; containerd reads those as
docker.io/library/NAME:latest, so that is the name the import has to leave in namespace k8s.io.
"""

import subprocess

from .conftest import FAILING_K3S, FAKE_K3S, RECORDING_SUDO, REPO_ROOT

POD_IMAGES = {"docker.io/library/backend:latest", "docker.io/library/frontend:latest"}
BY_HAND = "podman save docker.io/library/backend:latest | k3s ctr images import -"


def test_import__podman_images_under_the_names_the_pods_ask_for(machine, containerd):
    """podman's localhost/ builds land in k3s's containerd as docker.io/library/NAME:latest."""
    machine.install_k3s(FAKE_K3S.format(socket=containerd.socket, ctr=containerd.ctr))
    result = machine.manage("import")
    assert result.returncode == 0, result.stderr
    images = containerd.images()
    assert set(images) >= POD_IMAGES, images
    assert not [name for name in images if name.startswith("localhost/")], images


def test_import__again_is_harmless(machine, containerd):
    """A second import (a rebuild) replaces the images under the same names and nothing else."""
    machine.install_k3s(FAKE_K3S.format(socket=containerd.socket, ctr=containerd.ctr))
    assert machine.manage("import").returncode == 0
    result = machine.manage("import")
    assert result.returncode == 0, result.stderr
    assert set(containerd.images()) == POD_IMAGES


def test_import__no_k3s_fails_with_the_by_hand_commands(machine):
    """Without k3s on PATH the import verb exits 1 and says how to import by hand."""
    result = machine.manage("import")
    assert result.returncode == 1
    assert "k3s not found" in result.stderr
    assert BY_HAND in result.stderr


def test_import__failing_ctr_fails_the_verb(machine):
    """When `k3s ctr images import` fails, so does the verb."""
    machine.install_k3s(FAILING_K3S)
    result = machine.manage("import")
    assert result.returncode != 0
    assert "importing docker.io/library/backend:latest into k3s failed" in result.stderr


def test_import__no_image_fails_asking_for_a_build(machine, containerd):
    """Nothing built yet: the verb fails, says to build first, and imports nothing."""
    machine.install_k3s(FAKE_K3S.format(socket=containerd.socket, ctr=containerd.ctr))
    for name in ("backend:latest", "frontend:latest"):
        machine.podman_rmi(name)
    result = machine.manage("import")
    assert result.returncode != 0
    assert "run ./manage.sh build first" in result.stderr
    assert containerd.images() == []


def test_build__no_k3s_succeeds_with_the_by_hand_commands(machine):
    """build without k3s still exits 0 after building, and prints how to import by hand."""
    result = machine.manage("build")
    assert result.returncode == 0, result.stderr
    assert len(machine.build_calls.read_text().splitlines()) == 2
    assert "no k3s here" in result.stderr
    assert BY_HAND in result.stderr


def test_build__passes_the_checkouts_version_and_commit(machine):
    """Each image is built with VERSION (git describe) and GIT_COMMIT (git rev-parse HEAD) as build args."""
    git = ["git", "-C", str(REPO_ROOT)]
    version = subprocess.run([*git, "describe", "--always", "--dirty"], capture_output=True, text=True).stdout
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    result = machine.manage("build")
    assert result.returncode == 0, result.stderr
    calls = machine.build_calls.read_text().splitlines()
    assert len(calls) == 2
    for call in calls:
        assert f"--build-arg VERSION={version.strip()} --build-arg GIT_COMMIT={commit.strip()}" in call


def test_build__then_imports_into_k3s(machine, containerd):
    """build with k3s present imports what it built under the pods' names."""
    machine.install_k3s(FAKE_K3S.format(socket=containerd.socket, ctr=containerd.ctr))
    result = machine.manage("build")
    assert result.returncode == 0, result.stderr
    assert set(containerd.images()) == POD_IMAGES


def test_build__failing_build_fails_before_importing(machine, containerd):
    """A failed image build exits non-zero and imports nothing."""
    machine.install_k3s(FAKE_K3S.format(socket=containerd.socket, ctr=containerd.ctr))
    result = machine.manage("build", FAKE_BUILD_STATUS="1")
    assert result.returncode != 0
    assert containerd.images() == []


def test_import__not_root_without_sudo_fails_clearly(unprivileged):
    """Not root and no sudo: the verb fails saying so, and never runs k3s."""
    result = unprivileged.manage("import")
    assert result.returncode != 0
    assert "needs root, and there is no sudo" in result.stderr
    assert unprivileged.calls.read_text() == ""


def test_import__not_root_goes_through_sudo(unprivileged):
    """Not root with sudo: each import runs `sudo /path/to/k3s ctr images import -`."""
    unprivileged.install("sudo", RECORDING_SUDO)
    result = unprivileged.manage("import")
    assert result.returncode == 0, result.stderr
    k3s = unprivileged.bin / "k3s"
    per_image = [f"sudo {k3s} ctr images import -", "k3s ctr images import - as uid 65534"]
    assert unprivileged.calls.read_text().splitlines() == per_image * 2
