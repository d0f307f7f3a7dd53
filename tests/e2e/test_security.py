"""Scenario 7: the containers run as the non-root user of the manifests, on a read-only root filesystem."""

import pytest

pytestmark = pytest.mark.e2e

UID = 10001  # runAsUser/runAsGroup in the manifests, USER in the Dockerfiles


def proc_status(pod, pid):
    text = pod.exec("cat", f"/proc/{pid}/status").stdout
    return {key: value.split() for key, _, value in (line.partition(":") for line in text.splitlines())}


def test_containers__run_as_non_root_on_a_read_only_root(steady):
    """uid/gid 10001 (from /proc/1/status), no capabilities, / read-only, /tmp writable; both still serve."""
    for pod in steady.pods:
        assert pod.plan.security["runAsUser"] == UID and pod.plan.security["runAsGroup"] == UID
        workers = pod.exec("cat", "/proc/1/task/1/children").stdout.split()
        assert workers, f"{pod.name}: gunicorn has no workers"
        for pid in ["1", *workers]:
            status = proc_status(pod, pid)
            assert status["Uid"] == [str(UID)] * 4 and status["Gid"] == [str(UID)] * 4, (
                pod.name,
                pid,
                status,
            )
            assert status["CapEff"] == ["0000000000000000"] and status["CapBnd"] == ["0000000000000000"]
            assert status["NoNewPrivs"] == ["1"] and status["Seccomp"] == ["2"], (pod.name, pid, status)

        mounts = pod.exec("cat", "/proc/mounts").stdout.splitlines()
        root = next(line.split() for line in mounts if line.split()[1] == "/")
        assert "ro" in root[3].split(","), root
        for path in ("/e2e-write-test", "/app/e2e-write-test"):
            write = pod.exec("sh", "-c", f"echo x > {path}")
            assert write.returncode != 0 and "Read-only file system" in write.stderr, (path, write)
        scratch = pod.exec("sh", "-c", "echo x > /tmp/e2e-write-test && rm /tmp/e2e-write-test")
        assert scratch.returncode == 0, f"the emptyDir at /tmp must stay writable: {scratch.stderr}"

    assert steady.service_get("svc-backend", "/ping").status == 200
    who = steady.service_get("svc-frontend", "/who-am-i")
    assert who.status == 200 and who.json()["name"] == steady.pod("frontend").name, who
