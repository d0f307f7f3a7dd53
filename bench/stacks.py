"""How the benchmark runs the services: one class per `--mode`, all with the same small interface.

A stack starts `backend`, `frontend` (pointed at a backend) and `bare` (bench/bare_wsgi.py under the
frontend's gunicorn settings), and says how much memory a started service holds. A started service has
`.url`, `.terminate()` -> (exit code, seconds) and `.stop()`.

- `gunicorn`: the services' own gunicorn.conf.py, started by tests/integration/servers.py exactly as the
  containers start them (same command, same config; only --bind differs).
- `containers`: the real images run as pods (podman). The seam is here; it needs the e2e harness.
"""

import importlib.util
import os
import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BACKEND_CODE = "BACKEND-4242"
POD_NAME = "bench-frontend"
# Every service gets gunicorn's default access log format (the containers' one), unless the caller set
# GUNICORN_CMD_ARGS for an experiment; tests/integration/servers.py would otherwise set its own format.
CMD_ARGS = os.environ.get("GUNICORN_CMD_ARGS", "")


def _load_servers():
    """tests/integration/servers.py, loaded by path (tests/ is not a package)."""
    path = ROOT / "tests" / "integration" / "servers.py"
    spec = importlib.util.spec_from_file_location("bench_integration_servers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


servers = _load_servers()
Gunicorn = servers.Gunicorn


class BenchGunicorn(Gunicorn):
    """The integration tests' launcher, plus two things the benchmark needs.

    `app` serves another WSGI app with the same config (the bare ceiling), and `ready_ok` makes start()
    wait for a 200 rather than any answer, polling every 10 ms (the cold-start measurement).
    """

    def __init__(self, service, tmp_path, app=None, ready_ok=False, **env):
        super().__init__(service, tmp_path, **env)
        self.app = app
        self.ready_ok = ready_ok

    def start(self, ready_path="/ping"):
        if self.app is None:
            return super().start(ready_path)
        # Same command as Gunicorn.start, with the app given on the command line (it overrides wsgi_app).
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.command(), "--pythonpath", str(ROOT / "bench"), self.app],
                cwd=ROOT / f"{self.service}_site",
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_listening(ready_path)
        return self

    def command(self):
        return [str(servers.GUNICORN), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}"]

    def wait_listening(self, path, timeout=20.0):
        if not self.ready_ok:
            return super().wait_listening(path, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.service} exited early:\n{self.output()}")
            try:
                if requests.get(self.url + path, timeout=1).status_code == 200:
                    return None
            except requests.RequestException:
                pass
            time.sleep(0.01)
        raise TimeoutError(f"{self.service} {path} not 200 after {timeout} s:\n{self.output()}")

    def pids(self):
        """The master and every process below it (the workers)."""
        return [self.process.pid, *descendants(self.process.pid)]


def descendants(pid):
    """Pids of all processes below `pid`, from /proc/*/stat (no /proc/<pid>/task/*/children here)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def proc_kib(path, field):
    """A `field: N kB` value from a /proc status-like file, in KiB (0 when the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_cpu_seconds(pid):
    """utime + stime of one process from /proc/<pid>/stat (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After "(comm)": state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class GunicornStack:
    """The services as gunicorn processes with their container config, on free local ports."""

    mode = "gunicorn"

    def __init__(self, tmp_path):
        self.tmp_path = Path(tmp_path)
        self.started = []

    def _start(self, service, ready_path, **kwargs):
        server = BenchGunicorn(service, self.tmp_path, GUNICORN_CMD_ARGS=CMD_ARGS, **kwargs)
        self.started.append(server)
        return server.start(ready_path)

    def backend(self, ready_ok=False):
        return self._start("backend", "/ping", ready_ok=ready_ok, CONFIG_CODE=BACKEND_CODE)

    def frontend(self, backend_url, ready_ok=False):
        # Not ready until /startup answers 200: the startup probe's condition.
        path = "/startup" if ready_ok else "/listening"
        env = {"BACKEND_URL": backend_url, "POD_NAME": POD_NAME}
        return self._start("frontend", path, ready_ok=ready_ok, **env)

    def bare(self, backend_url):
        # The frontend's config also runs its on_exit hook: give it the real backend to talk to.
        env = {"BACKEND_URL": backend_url, "POD_NAME": POD_NAME, "CONFIG_CODE": BACKEND_CODE}
        return self._start("frontend", "/ping", app="bare_wsgi:application", **env)

    @staticmethod
    def memory(server):
        """Memory of master + workers: summed RSS (as `ps` adds it up) and PSS (shared pages split)."""
        pids = server.pids()
        rss = sum(proc_kib(f"/proc/{pid}/status", "VmRSS") for pid in pids)
        pss = sum(proc_kib(f"/proc/{pid}/smaps_rollup", "Pss") for pid in pids)
        return {"processes": len(pids), "rss_mib": round(rss / 1024, 1), "pss_mib": round(pss / 1024, 1)}

    @staticmethod
    def cpu_seconds(server):
        """CPU time (user + system) used so far by master + workers, all their threads included."""
        return sum(proc_cpu_seconds(pid) for pid in server.pids())

    def close(self):
        for server in self.started:
            server.stop()


class ContainerStack:
    """The real images as pods under podman (tests/e2e harness): the same interface as GunicornStack.

    To do when the e2e harness lands: start each image with the rendered pod's env and securityContext,
    `.url` on the published port, `.terminate()` = time from `podman stop` (SIGTERM) to the container's exit,
    and `memory()` from the pod's cgroup (memory.current) instead of /proc.
    """

    mode = "containers"

    def __init__(self, tmp_path):
        raise NotImplementedError(
            "--mode containers needs the podman e2e harness (tests/e2e), which is not there yet; "
            "use --mode gunicorn (the same gunicorn config the images run)"
        )


STACKS = {stack.mode: stack for stack in (GunicornStack, ContainerStack)}
