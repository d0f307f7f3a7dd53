"""Real gunicorn processes of our two services, started the way the containers start them; and a
stand-in HTTP server that puts a misbehaving backend at an address a frontend calls."""

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port():
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port_free(port, timeout=5.0):
    """Wait until `port` can be bound again: killed workers close their listening socket a moment after
    the master has been reaped."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
        time.sleep(0.02)


class Gunicorn:
    """One service (`backend` or `frontend`) under gunicorn with its own gunicorn.conf.py, on a free port.

    It runs in a session of its own, so `signal_all` reaches the master and every worker, and its output
    (access log included) goes to a file that `output()` reads. After `stop()` or `terminate()`, `start()`
    brings it back on the same port, as a restarted pod comes back behind its Service.
    """

    def __init__(self, service, tmp_path, port=None, **env):
        self.service = service
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"{service}-{self.port}.log"
        # Its own pod state (drain marker, the frontend's backend code), as each pod has its own /tmp.
        state_dir = tmp_path / f"{service}-{self.port}.state"
        state_dir.mkdir(exist_ok=True)
        # The worker pid in each access line lets tests see which worker served what.
        access_format = '%(p)s %(h)s "%(r)s" %(s)s'
        self.env = {
            **os.environ,
            "GUNICORN_CMD_ARGS": f"--access-logformat '{access_format}'",
            "POD_STATE_DIR": str(state_dir),
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

    def workers(self):
        """The pids of the master's live child processes (its workers), read from /proc."""
        children = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # exited meanwhile
            # Fields after "(comm)": state, ppid, ...; a zombie is dead already.
            if int(fields[1]) == self.process.pid and fields[0] != "Z":
                children.add(int(stat.parent.name))
        return children

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
        wait_port_free(self.port)


class StandInBackend:
    """A real HTTP server in the backend's place, answering every GET in one broken way.

    Kinds: "http_500" (500 with a JSON body), "not_json" (200 with HTML), "slow" (a valid answer, but only
    after `delay` seconds).
    """

    BODY = b'{"code": "BACKEND-1111", "status": "ok"}'

    def __init__(self, kind, port, delay=2.0):
        self.kind = kind
        self.port = port
        self.delay = delay
        self.server = None

    def start(self):
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                stand_in.answer(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        # A frontend that gave up closes its end; writing to it then fails, which is expected here.
        self.server.handle_error = lambda request, address: None
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def answer(self, handler):
        status, content_type, body = 200, "application/json", self.BODY
        if self.kind == "http_500":
            status, body = 500, b'{"error": "Internal Server Error", "status": 500}'
        elif self.kind == "not_json":
            content_type, body = "text/html", b"<html>not json</html>"
        elif self.kind == "slow":
            time.sleep(self.delay)
        # One answer per connection: once stopped, nothing of the stand-in may answer any more.
        handler.close_connection = True
        head = (
            f"HTTP/1.1 {status} X\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        )
        handler.wfile.write(head.encode() + b"\r\n" + body)

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
