"""How the benchmark runs the services: one `Stack` per `--mode`, all with the interface `Stack` declares.

- `gunicorn`: the services' own gunicorn.conf.py, started by testbed/processes.py exactly as the
  containers start them (same command, same config; only --bind differs).
- `containers`: the real images as pods by the e2e harness (podman), limits and all.
"""

import abc
import copy
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

from testbed import cluster, images, podman, podspec, procfs
from testbed.processes import Gunicorn

ROOT = Path(__file__).resolve().parents[1]
BACKEND_CODE = "BACKEND-4242"
POD_NAME = "bench-frontend"
# Every service gets gunicorn's default access log format (the containers' one), unless the caller set
# GUNICORN_CMD_ARGS for an experiment; testbed/processes.py would otherwise set its own format.
CMD_ARGS = os.environ.get("GUNICORN_CMD_ARGS", "")
# Knobs an experiment may set in the environment (see gunicorn.conf.py); both modes pass them on.
EXPERIMENT_ENV = ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_CMD_ARGS")


class ContainersUnavailable(RuntimeError):
    """Containers mode cannot run here: it needs podman and root (the e2e harness's rootful pods)."""


def process_memory(pids):
    """Memory of master + workers: summed RSS (as `ps` adds it up) and PSS (shared pages split)."""
    rss = sum(procfs.kib(pid, "status", "VmRSS") for pid in pids)
    pss = sum(procfs.kib(pid, "smaps_rollup", "Pss") for pid in pids)
    return {"processes": len(pids), "rss_mib": round(rss / 1024, 1), "pss_mib": round(pss / 1024, 1)}


class Stack(abc.ABC):
    """One way to run the services. A started service has `.url`, `.pids()`, `.terminate()` -> (exit code,
    seconds) and `.stop()`; `frontend` and `backend` with `ready_ok` wait for the probe path's first 200.
    `env` adds environment variables (e.g. PODKIT_METRICS=0): a frontend started with an `env` calls the
    backend started with the same one."""

    mode: str

    @abc.abstractmethod
    def backend(self, ready_ok=False, env=None): ...

    @abc.abstractmethod
    def frontend(self, backend_url, ready_ok=False, env=None): ...

    @abc.abstractmethod
    def bare(self, backend_url):
        """bench/bare_wsgi.py under the frontend's gunicorn settings: the ceiling."""

    @abc.abstractmethod
    def memory(self, server):
        """What a started service holds: RSS and PSS of its processes, plus what its cgroup counts if any."""

    @abc.abstractmethod
    def throttling(self, server):
        """CFS counters of a service's CPU limit ({periods, throttled, throttled_s}); None without one."""

    @abc.abstractmethod
    def describe(self):
        """What ran (images, resources), for results.json; None when nothing beyond the commit says it."""

    @abc.abstractmethod
    def close(self):
        """Stop everything started."""

    @staticmethod
    def cpu_seconds(server):
        """CPU time (user + system) used so far by master + workers, all their threads included."""
        return sum(procfs.cpu_seconds(pid) for pid in server.pids())


class GunicornStack(Stack):
    """The services as gunicorn processes with their container config, on free local ports."""

    mode = "gunicorn"

    def __init__(self, tmp_path):
        self.tmp_path = Path(tmp_path)
        self.started = []

    def _start(self, service, ready_path, ready_ok=False, **kwargs):
        server = Gunicorn(service, self.tmp_path, GUNICORN_CMD_ARGS=CMD_ARGS, **kwargs)
        self.started.append(server)
        return server.start(ready_path, ready_ok)

    def backend(self, ready_ok=False, env=None, root=None):
        """`root`: another source tree's backend (--compare), as for `frontend`."""
        return self._start("backend", "/ping", ready_ok, root=root, CONFIG_CODE=BACKEND_CODE, **(env or {}))

    def frontend(self, backend_url, ready_ok=False, env=None, root=None):
        # Not ready until /startup answers 200: the startup probe's condition.
        path = "/startup" if ready_ok else "/listening"
        env = {"BACKEND_URL": backend_url, "POD_NAME": POD_NAME, **(env or {})}
        return self._start("frontend", path, ready_ok, root=root, **env)

    def bare(self, backend_url):
        # The frontend's config also runs its on_exit hook: give it the real backend to talk to.
        env = {"BACKEND_URL": backend_url, "POD_NAME": POD_NAME, "CONFIG_CODE": BACKEND_CODE}
        app = {"app": "bare_wsgi:application", "pythonpath": ROOT / "bench"}
        return self._start("frontend", "/ping", **app, **env)

    def memory(self, server):
        return process_memory(server.pids())

    def throttling(self, server):
        return None  # processes without a CPU limit of their own

    def describe(self):
        return None  # processes on this machine, no limits

    def close(self):
        for server in self.started:
            server.stop()


class ContainerStack(Stack):
    """The real images as pods: the e2e harness (testbed/) builds backend:latest and
    frontend:latest from the Dockerfiles and runs the rendered k3s overlay's pods on a podman network the way
    a kubelet would, with the manifests' CPU and memory limits, securityContext, probes and preStop.

    The services are reached on their published 127.0.0.1 ports; the frontend reaches the backend through
    its Service name, as in the cluster. The bare ceiling is a pod of the frontend's template (same image,
    limits and gunicorn.conf.py) whose command serves bench/bare_wsgi.py from a read-only host directory.
    Stopping a service deletes its pod: preStop, then SIGTERM; `.terminate()` times SIGTERM to exit.
    """

    mode = "containers"

    def __init__(self, tmp_path, cpu_limits=True):
        if not self.can_run():
            raise ContainersUnavailable(
                "--mode containers needs podman and root (the e2e harness's rootful pods); "
                "use --mode gunicorn (the same gunicorn config the images run)"
            )
        self.podman = podman
        images.ensure_base_image()
        self.build_seconds = images.build_images()
        self.manifests = podspec.Manifests.render()
        for deployment in self.manifests.of_kind("Deployment"):
            pass_experiment_env(deployment)
            if not cpu_limits:  # an experiment: what the pod's CPU limit costs (CFS throttling)
                container = deployment["spec"]["template"]["spec"]["containers"][0]
                container.get("resources", {}).get("limits", {}).pop("cpu", None)
        self.session = secrets.token_hex(3)
        self.clusters = {}  # the added env, as sorted items -> the Cluster its pods run in

    @staticmethod
    def can_run():
        return shutil.which("podman") is not None and os.geteuid() == 0

    def describe(self):
        """What ran: each image's id and each pod's resources, as the manifests set them."""
        images = {}
        for deployment in ("backend", "frontend"):
            plan = self.manifests.pod_plan(deployment)
            image_id = self.podman.podman("image", "inspect", "--format", "{{.Id}}", plan.image)
            images[deployment] = {
                "image": plan.image,
                "image_id": image_id.stdout.strip()[:12],
                "resources": plan.container.get("resources", {}),
            }
        return images

    def _cluster(self, env):
        """The cluster of the pods started with `env`: a pair with an env of its own gets its own network,
        Services and DNS, so its frontend's Service name reaches its own backend."""
        key = tuple(sorted((env or {}).items()))
        if key not in self.clusters:
            manifests = self.manifests
            if env:
                manifests = copy.deepcopy(manifests)
                for deployment in manifests.of_kind("Deployment"):
                    set_env(deployment, env)
            self.clusters[key] = cluster.Cluster(manifests, self.session, f"bench{len(self.clusters)}")
        return self.clusters[key]

    def _start(self, deployment, ready_path, ready_ok, env=None):
        pod = PodServer(self._cluster(env).run_pod(deployment), self.podman)
        if ready_ok:
            pod.wait_probe_path_ok(ready_path)
        else:
            pod.pod.wait_ready(timeout=90)
        return pod

    def backend(self, ready_ok=False, env=None):
        return self._start("backend", "/ping", ready_ok, env)

    def frontend(self, backend_url, ready_ok=False, env=None):
        # backend_url is unused: the pod finds the backend by its Service name, as in the cluster.
        return self._start("frontend", "/startup", ready_ok, env)

    def bare(self, backend_url):
        return self._start(bare_deployment(self.manifests.get("Deployment", "frontend")), "/startup", False)

    def memory(self, server):
        """The processes' RSS and PSS, and the pod's cgroup (any of its processes names it)."""
        pids = server.pids()
        return {**process_memory(pids), **(cgroup_memory(pids[0]) if pids else {})}

    def throttling(self, server):
        """How often the CPU limit (CFS quota) stopped the pod so far: periods, throttled ones, seconds.
        None while the pod has no running container."""
        pids = server.pids()
        return cgroup_throttling(pids[0]) if pids else None

    def close(self):
        for cluster_ in self.clusters.values():
            for pod in cluster_.pods:
                if pod.restarts or pod.failure or any(t.reason != "pod deleted" for t in pod.terminations):
                    print(
                        f"bench: pod {pod.name} did not run undisturbed:\n{pod.describe()}", file=sys.stderr
                    )
            cluster_.close()
        self.podman.remove_leftovers(self.session)


class PodServer:
    """A started pod as the benchmark sees a service: `.url`, `.terminate()`, `.stop()`, `.pids()`."""

    def __init__(self, pod, podman):
        self.pod, self.podman = pod, podman
        self.url = f"http://127.0.0.1:{pod.published_port()}"
        self.termination = None

    def wait_probe_path_ok(self, path, timeout=60.0):
        """Poll `path` as the kubelet's prober asks it (Host: <pod IP>:<port>) every 10 ms until 200:
        the earliest moment the startup probe could pass, not rounded up to its periodSeconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.pod.kubelet_get(path, timeout=1).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise TimeoutError(f"{self.pod.name} {path} not 200 after {timeout} s:\n{self.pod.describe()}")

    def pids(self):
        """Host pids of the container's processes; none while the kubelet restarts it (after a failed
        liveness probe, which the stack reports when it closes)."""
        try:
            return self.podman.host_pids(self.pod.container)
        except self.podman.PodmanError:
            return []

    def terminate(self):
        """Delete the pod as the kubelet does (preStop, then SIGTERM); returns (exit code, SIGTERM to exit).

        The whole deletion, preStop included, is kept in `.termination`."""
        self.termination = self.pod.delete()
        return self.termination.exit_code, self.termination.sigterm_to_exit

    def stop(self):
        self.pod.remove()


def bare_deployment(frontend):
    """The frontend's Deployment, serving bench/bare_wsgi.py instead (labels no Service selects)."""
    deployment = copy.deepcopy(frontend)
    deployment["metadata"] = {**deployment["metadata"], "name": "bare-wsgi", "labels": {"app": "bare-wsgi"}}
    deployment["spec"]["selector"] = {"matchLabels": {"app": "bare-wsgi"}}
    template = deployment["spec"]["template"]
    template["metadata"]["labels"] = {"app": "bare-wsgi"}
    template["spec"].setdefault("volumes", []).append(
        {"name": "bench", "hostPath": {"path": str(ROOT / "bench"), "type": "Directory"}}
    )
    container = template["spec"]["containers"][0]
    container["args"] = [
        *("gunicorn", "--config", "gunicorn.conf.py"),
        *("--pythonpath", "/opt/bench", "bare_wsgi:application"),
    ]
    container.setdefault("volumeMounts", []).append(
        {"name": "bench", "mountPath": "/opt/bench", "readOnly": True}
    )
    return deployment


def pass_experiment_env(deployment):
    """The gunicorn knobs set in the benchmark's environment (an experiment) reach the pod, as in gunicorn
    mode they reach the processes; the manifests' own values win where they set one."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = container.setdefault("env", [])
    named = {item["name"] for item in env}
    for key in EXPERIMENT_ENV:
        if os.environ.get(key) and key not in named:
            env.append({"name": key, "value": os.environ[key]})


def set_env(deployment, values):
    """Set environment variables in a Deployment's container, replacing the manifest's value if it has one."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = [item for item in container.get("env", []) if item["name"] not in values]
    container["env"] = env + [{"name": key, "value": str(value)} for key, value in values.items()]


def cgroup_memory(pid):
    """The container's memory as its cgroup counts it, each page once: what the kubelet and the memory limit
    see. working set = usage - inactive file cache (`kubectl top`); anon = the RSS of all its processes."""
    v1, v2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")
    paths = procfs.cgroup_paths(pid)
    if "memory" in paths:  # cgroup v1
        folder = v1 / paths["memory"].lstrip("/")
        usage = int((folder / "memory.usage_in_bytes").read_text())
        stat = cgroup_stat(folder / "memory.stat")
        inactive, anon = stat["total_inactive_file"], stat["total_rss"]
    else:  # cgroup v2: the unified hierarchy's line is "0::/path"
        folder = v2 / paths[""].lstrip("/")
        usage = int((folder / "memory.current").read_text())
        stat = cgroup_stat(folder / "memory.stat")
        inactive, anon = stat["inactive_file"], stat["anon"]
    mib = 1024 * 1024
    return {
        "cgroup_usage_mib": round(usage / mib, 1),
        "cgroup_working_set_mib": round((usage - inactive) / mib, 1),
        "cgroup_anon_mib": round(anon / mib, 1),
    }


def cgroup_throttling(pid):
    """cpu.stat of the process's cgroup: scheduler periods, how many hit the quota, time throttled (s)."""
    paths = procfs.cgroup_paths(pid)
    if "cpu" in paths:  # cgroup v1: throttled_time in ns
        stat = cgroup_stat(Path("/sys/fs/cgroup/cpu") / paths["cpu"].lstrip("/") / "cpu.stat")
        throttled_s = stat["throttled_time"] / 1e9
    else:  # cgroup v2: throttled_usec
        stat = cgroup_stat(Path("/sys/fs/cgroup") / paths[""].lstrip("/") / "cpu.stat")
        throttled_s = stat["throttled_usec"] / 1e6
    return {"periods": stat["nr_periods"], "throttled": stat["nr_throttled"], "throttled_s": throttled_s}


def cgroup_stat(path):
    return {key: int(value) for key, value in (line.split() for line in path.read_text().splitlines())}


STACKS = {stack.mode: stack for stack in (GunicornStack, ContainerStack)}
