"""Fixtures for running `manage.sh build` and `manage.sh import` against a real containerd, k3s-style, and
`manage.sh test` against stand-ins of apt-get, dpkg and the venv (`checkout`, at the end).

k3s's `k3s ctr ARGS` is containerd's own ctr whose --address defaults to k3s's socket and --namespace to
k8s.io (k3s-io/k3s pkg/ctr/main.go). So a real containerd on a private socket, plus a `k3s` script that
runs ctr with those two defaults, is what manage.sh meets on a k3s node. Images come from a private podman
storage (tiny FROM-scratch images named backend:latest and frontend:latest), so the real images of the
e2e tests are neither needed nor touched; a `docker` that fails makes manage.sh take the podman path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.prerequisites import skip_or_fail

REPO_ROOT = Path(__file__).resolve().parents[2]
MANAGE = REPO_ROOT / "manage.sh"
IMAGE_NAMES = ("backend", "frontend")
# A minimal containerd: no CRI plugin (nothing runs here), everything under one temporary folder.
CONTAINERD_CONFIG = """\
version = 2
root = "{folder}/root"
state = "{folder}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{socket}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{folder}/opt"
"""
# What k3s does for `k3s ctr`: containerd's ctr with k3s's socket and namespace k8s.io as the defaults.
FAKE_K3S = """\
#!/bin/sh
[ "$1" = ctr ] || {{ echo "fake k3s: only 'k3s ctr' is emulated, got: $*" >&2; exit 2; }}
shift
export CONTAINERD_ADDRESS="{socket}"
export CONTAINERD_NAMESPACE="${{CONTAINERD_NAMESPACE:-k8s.io}}"
exec {ctr} "$@"
"""
FAILING_K3S = """\
#!/bin/sh
cat >/dev/null
echo "ctr: failed to dial (fake k3s)" >&2
exit 1
"""
NO_DOCKER = """\
#!/bin/sh
echo "docker: not running (fake: these tests take manage.sh's podman path)" >&2
exit 1
"""
# `podman build` replaced (the build verb's real builds are the e2e tests' job); the rest is real podman.
FAKE_BUILD_PODMAN = """\
#!/bin/sh
if [ "$1" = build ]; then
    echo "$*" >>"{calls}"
    exit "${{FAKE_BUILD_STATUS:-0}}"
fi
exec {podman} "$@"
"""


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        skip_or_fail(f"{tool} is not on PATH (Debian: apt-get install containerd podman util-linux)")
    return path


def write_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


@dataclass
class Containerd:
    """A running containerd on a private socket, and ctr pointed at it."""

    socket: Path
    ctr: str

    def images(self) -> list[str]:
        """What `ctr -n k8s.io images ls -q` prints, one name per item."""
        result = subprocess.run(
            [self.ctr, "--address", str(self.socket), "-n", "k8s.io", "images", "ls", "-q"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return result.stdout.split()


@dataclass
class Machine:
    """A PATH and environment for manage.sh: shims in `bin`, podman on a private storage."""

    bin: Path
    env: dict[str, str]
    build_calls: Path
    podman: str

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MANAGE), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def install_k3s(self, text: str) -> None:
        write_script(self.bin / "k3s", text)

    def podman_rmi(self, image: str) -> None:
        subprocess.run([self.podman, "rmi", image], env=self.env, capture_output=True, timeout=60, check=True)


@pytest.fixture
def containerd() -> Iterator[Containerd]:
    """A real containerd (Debian's package) on a socket in a temporary folder; killed afterwards."""
    if os.geteuid() != 0:
        skip_or_fail("containerd needs root: run the tests as root")
    daemon, ctr = require("containerd"), require("ctr")
    # A short folder under /tmp: a unix socket path has to fit in 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="containerd-"))
    socket = folder / "containerd.sock"
    config = folder / "config.toml"
    config.write_text(CONTAINERD_CONFIG.format(folder=folder, socket=socket))
    log = (folder / "containerd.log").open("w")
    process = subprocess.Popen([daemon, "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_containerd(process, ctr, socket, folder / "containerd.log")
        yield Containerd(socket=socket, ctr=ctr)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def wait_for_containerd(process: subprocess.Popen, ctr: str, socket: Path, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"containerd exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        ready = subprocess.run(
            [ctr, "--address", str(socket), "version"], capture_output=True, timeout=10, check=False
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    pytest.fail(f"containerd did not answer on {socket} within 15 s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    """Shims on PATH (no k3s yet), a failing docker, podman storage holding tiny backend/frontend images."""
    if os.geteuid() != 0:
        skip_or_fail("the import tests use rootful podman and containerd: run them as root")
    podman = require("podman")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "build-calls.txt"
    write_script(bin_dir / "docker", NO_DOCKER)
    write_script(bin_dir / "podman", FAKE_BUILD_PODMAN.format(calls=calls, podman=podman))
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(bin_dir), *path_without("k3s")]),
        **private_podman(tmp_path / "podman"),
    }
    machine = Machine(bin=bin_dir, env=env, build_calls=calls, podman=podman)
    for name in IMAGE_NAMES:
        build_tiny_image(machine, name, tmp_path / f"context-{name}")
    return machine


def path_without(tool: str) -> list[str]:
    """The folders of $PATH, less any that holds `tool` (a real k3s must not answer for the fake)."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return [folder for folder in folders if folder and not (Path(folder) / tool).exists()]


def private_podman(folder: Path) -> dict[str, str]:
    """Environment giving podman its own storage and run folders under `folder`."""
    folder.mkdir()
    storage = folder / "storage.conf"
    storage.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{folder}/graph"\nrunroot = "{folder}/run"\n')
    engine = folder / "containers.conf"
    engine.write_text(f'[engine]\ntmp_dir = "{folder}/tmp"\n')
    return {"CONTAINERS_STORAGE_CONF": str(storage), "CONTAINERS_CONF": str(engine)}


def build_tiny_image(machine: Machine, name: str, context: Path) -> None:
    """A one-file image tagged NAME:latest, as podman names its builds (localhost/NAME:latest)."""
    context.mkdir()
    (context / "name").write_text(name)
    (context / "Containerfile").write_text("FROM scratch\nCOPY name /name\n")
    subprocess.run(
        [machine.podman, "build", "--quiet", "--tag", f"{name}:latest", str(context)],
        env=machine.env,
        capture_output=True,
        timeout=120,
        check=True,
    )


# For a user who is not root: podman and k3s that only pretend (rootless podman is not what is tested).
PRETEND_PODMAN = """\
#!/bin/sh
[ "$1" = save ] && echo "an image archive"
exit 0
"""
PRETEND_K3S = """\
#!/bin/sh
cat >/dev/null
echo "k3s $* as uid $(id -u)" >>"{calls}"
"""
# sudo that records how it was called and runs the command as the same user.
RECORDING_SUDO = """\
#!/bin/sh
echo "sudo $*" >>"{calls}"
exec "$@"
"""


@dataclass
class Unprivileged:
    """manage.sh run as nobody, with a PATH of only the tools it needs and the shims given. It runs a copy
    of manage.sh in a folder nobody can read: the checkout may sit where nobody cannot (CI's clone under
    `mktemp -d`, mode 0700)."""

    bin: Path
    calls: Path
    setpriv: str
    manage_sh: Path

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [
            self.setpriv,
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            str(self.manage_sh),
            *args,
        ]
        env = {"PATH": str(self.bin), "HOME": "/nonexistent", "LANG": "C.UTF-8"}
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)

    def install(self, name: str, text: str) -> None:
        write_script(self.bin / name, text.format(calls=self.calls))


@pytest.fixture
def unprivileged() -> Iterator[Unprivileged]:
    """A folder user nobody can read: manage.sh, and a PATH of bash, dirname, id and cat, a pretend podman
    and k3s; no sudo."""
    if os.geteuid() != 0:
        skip_or_fail("running manage.sh as another user needs root")
    setpriv = require("setpriv")
    folder = Path(tempfile.mkdtemp(prefix="manage-nobody-"))
    try:
        folder.chmod(0o755)
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        for tool in ("bash", "dirname", "id", "cat"):
            (bin_dir / tool).symlink_to(require(tool))
        calls = folder / "calls.txt"
        calls.touch()
        calls.chmod(0o666)
        manage_sh = folder / "manage.sh"
        shutil.copy(MANAGE, manage_sh)
        manage_sh.chmod(0o755)
        machine = Unprivileged(bin=bin_dir, calls=calls, setpriv=setpriv, manage_sh=manage_sh)
        machine.install("docker", NO_DOCKER)
        machine.install("podman", PRETEND_PODMAN)
        machine.install("k3s", PRETEND_K3S)
        yield machine
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# `manage.sh test` in a checkout of its own, where nothing is installed or tested: Debian's dpkg and apt-get
# and the venv's python, ruff and pip are stand-ins that record each call. dpkg knows a package as installed
# when its name is a line of `installed`.
RECORDING_DPKG = """\
#!/bin/sh
echo "dpkg $*" >>"{calls}"
[ "$1" = -s ] && grep -qx -- "$2" "{installed}" && exit 0
echo "dpkg-query: package '$2' is not installed" >&2
exit 1
"""
RECORDING_APT_GET = """\
#!/bin/sh
echo "apt-get $*" >>"{calls}"
"""
# pytest answers with the summary line that manage.sh's total adds up.
RECORDING_VENV_TOOL = """\
#!/bin/sh
echo "{name} $* CI=${{CI:-}}" >>"{calls}"
[ "$1 $2" = "-m pytest" ] && echo "======== 1 passed in 0.01s ========"
exit 0
"""
CHECKOUT_FILES = (
    "requirements-dev.txt",
    "requirements-checkov.txt",
    "pyproject.toml",
    "backend_site/requirements.txt",
    "frontend_site/requirements.txt",
)
# Where manage.sh looks for python and the venvs' tools, and the name each records its calls under.
VENV_STANDINS = {
    "bin/python3": "python3",
    ".venv/bin/python": "python",
    ".venv/bin/ruff": "ruff",
    ".venv/checkov/bin/python": "python",
    ".venv/checkov/bin/pip": "pip",
}
# What `manage.sh test` runs besides the stand-ins: nothing else is on its PATH (no real apt-get or dpkg).
CHECKOUT_TOOLS = ("bash", "sh", "cat", "sha256sum", "cut", "mktemp", "tee", "awk", "rm", "dirname", "grep")


@dataclass
class Checkout:
    """A folder with a copy of manage.sh, the files its venv setup hashes, and the recording stand-ins."""

    root: Path
    calls: Path
    installed: Path
    bin: Path

    def manage(self, *args: str, as_nobody: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.root / "manage.sh"), *args]
        if as_nobody:
            subprocess.run(["chown", "-R", "65534:65534", str(self.root)], check=True, timeout=30)
            command = [require("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        env = {"PATH": str(self.bin), "HOME": "/nonexistent", "LANG": "C.UTF-8", **env}
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)

    def recorded(self, tool: str) -> list[str]:
        """The calls of one stand-in (`dpkg`, `apt-get`, `python`, `ruff`, `pip`), each without its name."""
        prefix = f"{tool} "
        lines = self.calls.read_text().splitlines()
        return [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]


@pytest.fixture
def checkout() -> Iterator[Checkout]:
    """manage.sh in a fresh folder (one nobody can reach), its venv and Debian's tools as stand-ins."""
    if os.geteuid() != 0:
        skip_or_fail("manage.sh test's installs run as root (and as nobody, through setpriv): run as root")
    root = Path(tempfile.mkdtemp(prefix="manage-test-"))
    try:
        root.chmod(0o755)
        for name in CHECKOUT_FILES:
            (root / name).parent.mkdir(exist_ok=True)
            (root / name).write_text(f"# {name}\n")
        shutil.copy(MANAGE, root / "manage.sh")
        calls, installed, bin_dir = root / "calls.txt", root / "installed.txt", root / "bin"
        calls.touch()
        installed.touch()
        bin_dir.mkdir()
        for tool in CHECKOUT_TOOLS:
            (bin_dir / tool).symlink_to(require(tool))
        write_script(bin_dir / "dpkg", RECORDING_DPKG.format(calls=calls, installed=installed))
        write_script(bin_dir / "apt-get", RECORDING_APT_GET.format(calls=calls))
        for path, name in VENV_STANDINS.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            write_script(root / path, RECORDING_VENV_TOOL.format(name=name, calls=calls))
        yield Checkout(root=root, calls=calls, installed=installed, bin=bin_dir)
    finally:
        shutil.rmtree(root, ignore_errors=True)
