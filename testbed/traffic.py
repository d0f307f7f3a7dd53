"""HTTP from the host to the pods, always through their published ports on 127.0.0.1.

Each request says who it stands for with its Host header: the kubelet's probes send `Host: <pod IP>:<port>`
and `User-Agent: kube-probe/1.32` (and close the connection, as the kubelet's prober does); a client of a
Service sends `Host: svc-frontend.task-03.svc.cluster.local:8080`. Every request is on a new connection.
"""

import http.client
import itertools
import json
import threading
import time
from dataclasses import dataclass

PROBE_USER_AGENT = "kube-probe/1.32"
MAX_BODY = 10 * 1024  # the kubelet reads at most 10 KiB of a probe's body


@dataclass
class Reply:
    status: int | None  # None when no HTTP answer came
    body: bytes
    elapsed: float
    error: str = ""  # why there was no answer: "refused", "timeout", "reset", ...
    connected: bool = False  # the TCP connection was established (the server accepted it)

    def json(self):
        return json.loads(self.body)


def get(port, path, host, timeout, headers=(), max_body=None):
    """One GET to 127.0.0.1:port on a fresh connection, bounded by `timeout` seconds in total."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    reply = Reply(status=None, body=b"", elapsed=0.0)
    try:
        connection.connect()
        reply.connected = True
        sock = connection.sock  # http.client drops its reference once a "Connection: close" answer starts
        sock.settimeout(max(0.01, timeout - (time.monotonic() - started)))
        connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for name, value in (("Host", host), ("Connection", "close"), *headers):
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        sock.settimeout(max(0.01, timeout - (time.monotonic() - started)))
        reply.body = response.read(max_body) if max_body else response.read()
        reply.status = response.status
    except ConnectionRefusedError:
        reply.error = "refused"
    except TimeoutError:
        reply.error = "timeout"
    except (ConnectionResetError, BrokenPipeError):
        reply.error = "reset"
    except (http.client.RemoteDisconnected, http.client.IncompleteRead, http.client.BadStatusLine):
        reply.error = "empty reply"
    except OSError as exc:
        reply.error = f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()
    reply.elapsed = time.monotonic() - started
    if reply.status is not None and reply.elapsed > timeout:
        reply.status, reply.error = None, "timeout"
    return reply


def probe(port, path, pod_ip, container_port, timeout):
    """A kubelet httpGet probe of a pod, sent to the pod's published port."""
    probe_headers = (("User-Agent", PROBE_USER_AGENT), ("Accept", "*/*"))
    return get(port, path, f"{pod_ip}:{container_port}", timeout, probe_headers, max_body=MAX_BODY)


def probe_succeeded(reply):
    """The kubelet's rule: an HTTP status from 200 to 399 is success, anything else a failure."""
    return reply.status is not None and 200 <= reply.status < 400


class Load:
    """Steady client load: `threads` clients, each sending GETs one after another, a new connection each.

    `path` is one path, or several that the requests take in turn. Each request carries a number (`?n=17`),
    so the server's access log shows which ones it handled. Every
    outcome is kept with its time. "refused": the TCP connection could not be made (nothing listens, or the
    container is gone); "dropped": the connection was made, then no complete answer came (reset, empty reply).
    """

    def __init__(self, port, path, host, threads=6, pause=0.02, timeout=10.0):
        self.port, self.path, self.host = port, path, host
        self.threads, self.pause, self.timeout = threads, pause, timeout
        self.outcomes = []  # (time.monotonic() when the request started, path sent, Reply)
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers = []

    def start(self):
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, name=f"load-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self):
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout + 5)

    def _run(self):
        paths = (self.path,) if isinstance(self.path, str) else tuple(self.path)
        while not self._stop.is_set():
            number = next(self._numbers)
            path = f"{paths[number % len(paths)]}?n={number}"
            started = time.monotonic()
            reply = get(self.port, path, self.host, self.timeout)
            with self._lock:
                self.outcomes.append((started, path, reply))
            if reply.status is None and not reply.connected:
                time.sleep(0.05)  # nothing listens: don't spin
            self._stop.wait(self.pause)

    def classify(self, reply):
        if reply.status is not None:
            return "answered"
        return "dropped" if reply.connected else "refused"
