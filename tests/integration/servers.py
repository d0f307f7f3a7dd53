"""Real gunicorn processes of our two services, started the way the containers start them."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port():
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """One service (`backend` or `frontend`) under gunicorn with its own gunicorn.conf.py, on a free port.

    It runs in a session of its own, so `signal_all` reaches the master and every worker, and its output
    (access log included) goes to a file that `output()` reads.
    """

    def __init__(self, service, tmp_path, **env):
        self.service = service
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"{service}-{self.port}.log"
        # The worker pid in each access line lets tests see which worker served what.
        access_format = '%(p)s %(h)s "%(r)s" %(s)s'
        self.env = {
            **os.environ,
            "GUNICORN_CMD_ARGS": f"--access-logformat '{access_format}'",
            **{key: str(value) for key, value in env.items()},
        }
        self.process = None

    def start(self, ready_path="/ping"):
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(GUNICORN), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}"],
            cwd=ROOT / f"{self.service}_site",
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.wait_listening(ready_path)
        return self

    def wait_listening(self, path, timeout=20.0):
        """Wait until the server answers HTTP on `path` (any status)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.service} exited early:\n{self.output()}")
            try:
                requests.get(self.url + path, timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.05)
        raise TimeoutError(f"{self.service} not listening after {timeout} s:\n{self.output()}")

    def output(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def worker_pids(self, request_line):
        """The pids of the workers whose access lines contain `request_line` (e.g. "GET /who-am-i")."""
        return {
            line.split()[0] for line in self.output().splitlines() if f'"{request_line} HTTP/1.1"' in line
        }

    def signal_all(self, signum):
        """Send a signal to the master and all its workers (e.g. SIGSTOP to freeze the whole service)."""
        os.killpg(self.process.pid, signum)

    def terminate(self, timeout=30.0):
        """SIGTERM to the master, as the kubelet sends it; returns (exit code, seconds to exit)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def stop(self):
        """Teardown: whatever state it is in (even frozen), make sure nothing is left running."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.signal_all(signal.SIGCONT)
            self.signal_all(signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
