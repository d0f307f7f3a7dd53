"""The podman command line, with the flags every call on this kind of machine needs.

`podman --runtime runc` everywhere (runc is the runtime Debian's podman is tested with here), and every
container gets explicit rlimits: root in this VM lacks CAP_SYS_RESOURCE, so podman's default
nofile=1048576 makes runc fail with "error setting rlimit".
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

PODMAN = ("podman", "--runtime", "runc")
RLIMITS = ("--ulimit", "nofile=16384:16384", "--ulimit", "nproc=4096:4096")
# Every container, network and volume the e2e tests create carries these labels, so teardown finds them all,
# and a later session can tell what a crashed one left behind (its owner process is gone).
SESSION_LABEL = "io.task03.e2e.session"
OWNER_LABEL = "io.task03.e2e.owner-pid"
# The pods' emptyDir volumes on the node, as the kubelet keeps them under /var/lib/kubelet/pods/<uid>/volumes:
# <session>-<owner pid>/<pod uid>/<volume>, each a tmpfs.
EMPTY_DIRS = Path("/run/task03-e2e")


class PodmanError(RuntimeError):
    """A podman command failed; the message carries the command and its stderr."""


def available():
    return shutil.which("podman") is not None


def podman(*args, timeout=120, check=True):
    """Run one podman command and return the CompletedProcess (text)."""
    command = [*PODMAN, *args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PodmanError(f"{' '.join(command)} timed out after {timeout} s") from exc
    if check and result.returncode != 0:
        output = result.stderr.strip() or result.stdout.strip()
        raise PodmanError(f"{' '.join(command)} exited {result.returncode}:\n{output}")
    return result


def labels(session):
    return ("--label", f"{SESSION_LABEL}={session}", "--label", f"{OWNER_LABEL}={os.getpid()}")


def logs(container):
    """stdout and stderr of a container, interleaved as podman stored them (k8s-file log driver)."""
    result = podman("logs", container, check=False)
    return result.stdout + result.stderr


def wait_exit(container, timeout):
    """The container's exit code once it has stopped, or None if it still runs after `timeout` s."""
    try:
        result = subprocess.run(
            [*PODMAN, "wait", container], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return None
    if result.returncode != 0:
        raise PodmanError(f"podman wait {container}: {result.stderr.strip()}")
    return int(result.stdout.strip().splitlines()[-1])


def finished_at(container):
    """When the container's PID 1 exited, in seconds since the epoch (podman's own record)."""
    nanos = podman("inspect", "--format", "{{.State.FinishedAt.UnixNano}}", container).stdout.strip()
    return int(nanos) / 1e9


def stop_signal(container):
    """The signal the runtime sends to stop this container: the image's STOPSIGNAL, SIGTERM by default."""
    value = podman("inspect", "--format", "{{.Config.StopSignal}}", container).stdout.strip()
    if value.isdigit() and int(value) > 0:
        return signal.Signals(int(value)).name.removeprefix("SIG")
    return value.removeprefix("SIG") or "TERM"


def host_pids(container):
    """Host PIDs of every process in the container (`podman top` reads /proc; no `ps` in the image)."""
    out = podman("top", container, "hpid").stdout.split()
    return [int(word) for word in out[1:] if word.isdigit()]


def signal_every_process(container, signum):
    """Send a signal to every process of a container, from the host.

    `podman kill` reaches PID 1 only, and PID 1 ignores SIGSTOP sent from inside its own PID namespace
    (`kill -STOP -1` in a `podman exec`), so freezing a whole gunicorn (master and workers) needs this.
    """
    for pid in host_pids(container):
        with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
            os.kill(pid, signum)


def pod_volumes(session, pod_uid):
    """Where a pod's emptyDir volumes live on the node."""
    return EMPTY_DIRS / f"{session}-{os.getpid()}" / pod_uid


def make_empty_dir(directory, size):
    """An emptyDir on the node: a tmpfs (of `size` bytes, if given) that every container of the pod mounts,
    so what it holds outlives a container restart, and goes with the pod (remove_empty_dirs)."""
    directory.mkdir(parents=True)
    options = ",".join(["mode=0777", *([f"size={size}"] if size else [])])
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], check=True, timeout=30)
    return directory


def remove_empty_dirs(directory):
    """Unmount every emptyDir under `directory` (a pod's, or a session's) and remove the directory."""
    for mounted in sorted((m for m in directory.glob("**/*") if m.is_mount()), reverse=True):
        subprocess.run(["umount", "--lazy", str(mounted)], check=False, timeout=30)
    shutil.rmtree(directory, ignore_errors=True)


def remove_leftovers(session=None):
    """Remove the containers, networks, volumes and emptyDirs of `session`; with None, those of e2e runs
    whose process is gone."""
    selector = f"label={SESSION_LABEL}" + (f"={session}" if session else "")
    containers = json.loads(podman("ps", "--all", "--filter", selector, "--format", "json").stdout or "[]")
    networks = json.loads(podman("network", "ls", "--filter", selector, "--format", "json").stdout or "[]")
    volumes = json.loads(podman("volume", "ls", "--filter", selector, "--format", "json").stdout or "[]")
    for item in containers:
        if session is not None or not _owner_alive(item.get("Labels") or {}):
            podman("rm", "--force", "--time", "0", item["Id"], check=False)
    for item in networks:
        if session is not None or not _owner_alive(item.get("labels") or {}):
            podman("network", "rm", "--force", item["name"], check=False)
    for item in volumes:
        if session is not None or not _owner_alive(item.get("Labels") or {}):
            podman("volume", "rm", "--force", item["Name"], check=False)
    for directory in EMPTY_DIRS.glob(f"{session}-*" if session else "*"):
        if session is not None or not _alive(directory.name.rsplit("-", 1)[-1]):  # <session>-<owner pid>
            remove_empty_dirs(directory)


def _owner_alive(item_labels):
    return _alive(item_labels.get(OWNER_LABEL, ""))


def _alive(pid):
    """Whether the process `pid` (as text: a label's value, a directory's name) still runs."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
