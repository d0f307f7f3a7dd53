"""Real gunicorn processes of our two services, started the way the containers start them; and a
stand-in HTTP server that puts a misbehaving backend at an address a frontend calls."""

import collections
import http.server
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from . import procfs
from .net import free_port, wait_port_free

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")
# The access lines of the services it runs: the worker pid first, so tests see which worker served what.
ACCESS_FORMAT = '%(p)s %(h)s "%(r)s" %(s)s'
# e.g. `<4242> 127.0.0.1 "GET /ping HTTP/1.1" 200`: (pid, request line, status)
ACCESS_LINE = re.compile(r'<(\d+)> \S+ "(.*) HTTP/1\.1" (\d{3})')


class Gunicorn:
    """One service (`backend` or `frontend`) under gunicorn with its own gunicorn.conf.py, on a free port.

    It runs in a session of its own, so `signal_all` reaches the master and every worker, and its output
    (access log included) goes to a file that `output()` reads. After `stop()` or `terminate()`, `start()`
    brings it back on the same port, as a restarted pod comes back behind its Service.
    """

    def __init__(
        self,
        service,
        tmp_path,
        port=None,
        app=None,
        pythonpath=None,
        prefix=(),
        root=None,
        config=None,
        **env,
    ):
        self.service = service
        # The source tree it runs: this checkout, or another commit's services (the benchmark's --compare),
        # whose podkit then comes first on the path.
        self.root = Path(root) if root else ROOT
        self.prefix = list(prefix)  # a command gunicorn runs under, e.g. setpriv dropping a capability
        self.config = str(config or "gunicorn.conf.py")  # a test's own, in place of the service's
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"{service}-{self.port}.log"
        # Another WSGI app (e.g. "bare_wsgi:application", found on `pythonpath`) under the same config.
        self.app_args = [*(["--pythonpath", str(pythonpath)] if pythonpath else []), *([app] if app else [])]
        # Its own pod state (drain marker, the frontend's backend code), as each pod has its own /tmp.
        state_dir = tmp_path / f"{service}-{self.port}.state"
        state_dir.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "GUNICORN_CMD_ARGS": f"--access-logformat '{ACCESS_FORMAT}'",
            "POD_STATE_DIR": str(state_dir),
            **({"PYTHONPATH": str(self.root)} if root else {}),
            **{key: str(value) for key, value in env.items()},
        }
        self.process = None

    def start(self, ready_path="/ping", ready_ok=False):
        """Start gunicorn and wait until `ready_path` answers: with any status, or with 200 if `ready_ok`."""
        bind = f"127.0.0.1:{self.port}"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.prefix, str(GUNICORN), "--config", self.config, "--bind", bind, *self.app_args],
                cwd=self.root / f"{self.service}_site",
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_listening(ready_path, ready_ok)
        return self

    def wait_listening(self, path, ready_ok=False, timeout=20.0):
        """Poll `path` every 10 ms (a cold start's end is measured by it) until it answers as asked."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.service} exited early:\n{self.output()}")
            try:
                status = requests.get(self.url + path, timeout=1).status_code
            except requests.RequestException:
                status = None
            if status is not None and (status == 200 or not ready_ok):
                return
            time.sleep(0.01)
        wanted = "200" if ready_ok else "an answer"
        raise TimeoutError(f"{self.service} {path}: no {wanted} after {timeout} s:\n{self.output()}")

    def output(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def worker_pids(self, request_line, status=None, since=0):
        """The pids of the workers whose access lines show `request_line` (e.g. "GET /who-am-i"), answered
        with `status` if given, in the output from its character `since` on (what came after a look)."""
        return {
            int(line[1])
            for line in map(ACCESS_LINE.fullmatch, self.output()[since:].splitlines())
            if line and line[2] == request_line and (status is None or int(line[3]) == status)
        }

    def workers(self):
        """The pids of the master's live child processes (its workers)."""
        return procfs.children(self.process.pid)

    def pids(self):
        """The master and every process below it (the workers)."""
        return [self.process.pid, *procfs.descendants(self.process.pid)]

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
    """A real HTTP server in a service's place, answering every GET and POST in one broken way.

    Kinds: "http_500" (500 with a JSON body), "not_json" (200 with HTML), "slow" (a valid answer, but only
    after `delay` seconds), "reset" (the request read, then the connection reset: an RST, no answer). `kind`
    may be changed while it runs. `fixed` maps paths to answers it gives as they are, (content type, body,
    more headers): e.g. the frontend's live page, so a browser can be shown a broken /who-am-i. It counts
    the connections it accepted and the requests it read, by path.
    """

    BODY = b'{"code": "BACKEND-1111", "status": "ok"}'

    def __init__(self, kind, port, delay=2.0, fixed=None):
        self.kind = kind
        self.port = port
        self.delay = delay
        self.fixed = fixed or {}
        self.connections = 0
        self.requests = collections.Counter()  # path (without the query) -> requests read
        self._count_lock = threading.Lock()
        self.server = None

    def start(self):
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self):
                with stand_in._count_lock:
                    stand_in.connections += 1
                super().handle()

            def do_GET(self):
                stand_in.answer(self)

            do_POST = do_GET  # a frontend's game-over gets the same answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        # A frontend that gave up closes its end; writing to it then fails, which is expected here.
        self.server.handle_error = lambda request, address: None
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def answer(self, handler):
        path = handler.path.split("?")[0]
        with self._count_lock:
            self.requests[path] += 1
        # One answer per connection: once stopped, nothing of the stand-in may answer any more.
        handler.close_connection = True
        status, content_type, body, headers = 200, "application/json", self.BODY, {}
        if path in self.fixed:
            content_type, body, headers = self.fixed[path]
        elif self.kind == "reset":
            # SO_LINGER with a zero timeout: close() sends an RST instead of a FIN.
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
            return
        elif self.kind == "http_500":
            status, body = 500, b'{"error": "Internal Server Error", "status": 500}'
        elif self.kind == "not_json":
            content_type, body = "text/html", b"<html>not json</html>"
        elif self.kind == "slow":
            time.sleep(self.delay)
        head = (
            f"HTTP/1.1 {status} X\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        )
        handler.wfile.write(head.encode() + b"\r\n" + body)

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
