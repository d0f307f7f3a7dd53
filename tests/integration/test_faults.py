"""Faults on real processes: SIGTERM under load, a failing backend, a killed worker, slow clients.

Each test prints what it measured (run with -s to see it). The backend faults and the answer bound are
tests/backend_faults.py's.
"""

import contextlib
import http.client
import json
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import pytest
import requests

from testbed.net import free_port, timed_get
from testbed.processes import StandInBackend
from tests.backend_faults import ANSWER_BOUND, FAULTS, HEALTH_REUSE, failure_body

from .conftest import POD_NAME, accept_queue_length, until

pytestmark = pytest.mark.integration

CODE = "BACKEND-4242"
# A request that needs no backend call, on a worker none of whose threads is stuck.
FAST = 0.5
PROBE_TIMEOUT = 2.0
RECOVERY_BOUND = 2.0 + HEALTH_REUSE


# --- SIGTERM under load ------------------------------------------------------------------------------


class Attempt(NamedTuple):
    path: str  # /who-am-i?n=<client>-<number>: each request can be found in the access log
    outcome: str  # "ok", "refused" (nothing listens any more), or what went wrong on a made connection
    started: float
    reused: bool  # the server had answered on this connection before, so it had certainly accepted it


class LoadClient(threading.Thread):
    """Sends GET /who-am-i back to back, over a new connection each time or reusing one (keep-alive)."""

    def __init__(self, name, port, keep_alive, stop):
        super().__init__(daemon=True)
        self.name, self.port, self.keep_alive, self.stop = name, port, keep_alive, stop
        self.attempts = []

    def run(self):
        conn, answered = None, 0
        while not self.stop.is_set():
            started = time.monotonic()
            path = f"/who-am-i?n={self.name}-{len(self.attempts)}"
            if conn is None:
                conn, answered = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10), 0
                try:
                    conn.connect()
                except OSError as exc:
                    # Refused once nothing listens; a reset when the listener closes mid-handshake.
                    outcome = "refused" if isinstance(exc, ConnectionRefusedError) else type(exc).__name__
                    self.attempts.append(Attempt(path, outcome, started, False))
                    conn = None
                    time.sleep(0.01)
                    continue
            outcome, close = self.one_request(conn, path)
            self.attempts.append(Attempt(path, outcome, started, answered > 0))
            answered += outcome == "ok"
            if close or not self.keep_alive:
                conn.close()
                conn = None

    def one_request(self, conn, path):
        headers = {} if self.keep_alive else {"Connection": "close"}
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__, True
        if response.status != 200 or json.loads(body).get("code") != CODE:
            return f"HTTP {response.status} {body[:80]!r}", True
        return "ok", response.will_close


# What a client sees when its connection is closed before any byte of an answer came back.
NO_ANSWER = {"ConnectionResetError", "RemoteDisconnected", "BrokenPipeError"}


def test_sigterm__under_load_no_accepted_request_dropped(start, frontend_for):
    """SIGTERM while clients hammer /who-am-i: every request gunicorn took is answered; game-over after."""
    backend = start("backend", CONFIG_CODE=CODE)
    frontend = frontend_for(backend.url)
    assert timed_get(frontend.url + "/startup")[0] == 200
    # With `keepalive = 0` gunicorn closes after every answer; then there is no reuse to check.
    connection = requests.get(frontend.url + "/who-am-i", timeout=5).headers.get("Connection", "")
    keep_alive_offered = connection.lower() != "close"
    stop = threading.Event()
    clients = [LoadClient(str(n), frontend.port, keep_alive=n % 2 == 1, stop=stop) for n in range(6)]
    for client in clients:
        client.start()
    time.sleep(0.6)  # the load runs a while before the stop
    # A mark in the backend's log right before the SIGTERM: any game-over above it came too early.
    mark = f"/ping?before-sigterm={uuid.uuid4().hex}"
    assert requests.get(backend.url + mark, timeout=5).status_code == 200
    until(lambda: f'"GET {mark} HTTP/1.1"' in backend.output(), "the backend never logged the mark")
    sigterm_at = time.monotonic()
    frontend.process.send_signal(signal.SIGTERM)
    code = frontend.process.wait(timeout=30)
    exited_at = time.monotonic()
    exited_in = exited_at - sigterm_at
    until(
        lambda: all(
            any(a.outcome == "refused" and a.started > exited_at for a in list(client.attempts))
            for client in clients
        ),
        "a client never met the closed port",
    )
    stop.set()
    for client in clients:
        client.join(timeout=15)

    attempts = [attempt for client in clients for attempt in client.attempts]
    ok = [a for a in attempts if a.outcome == "ok"]
    failed = [a for a in attempts if a.outcome not in ("ok", "refused")]
    served = frontend.output()
    print(
        f"\nSIGTERM under load: exit {code} in {exited_in:.2f} s; ok before "
        f"{sum(a.started < sigterm_at for a in ok)}, ok after {sum(a.started >= sigterm_at for a in ok)} "
        f"(on reused connections {sum(a.reused for a in ok)}), refused "
        f"{sum(a.outcome == 'refused' for a in attempts)}, reset unanswered at listener close {len(failed)}"
    )
    assert code == 0
    assert sum(a.started < sigterm_at for a in ok) >= 20, "the load never got going"
    if keep_alive_offered:
        assert any(a.reused for a in ok), "no connection was reused"
    # Taken by gunicorn: sent on a connection it had answered on, or seen by a worker (access log).
    assert [a for a in failed if a.reused or f'"GET {a.path} HTTP/1.1"' in served] == []
    assert {a.outcome for a in failed} <= NO_ANSWER
    for client in clients:
        assert_failures_only_at_listener_close(client.attempts)

    backend_log = backend.output()
    mark_at = backend_log.index(f'"GET {mark} HTTP/1.1"')
    assert backend_log.count('"POST /game-over HTTP/1.1" 200') >= 1
    assert '"POST /game-over HTTP/1.1"' not in backend_log[:mark_at]
    assert backend_log.index(f"Received game-over signal from {POD_NAME}") > mark_at
    frontend_log = frontend.output()
    assert frontend_log.index("Handling signal: term") < frontend_log.index("game-over delivered")


def assert_failures_only_at_listener_close(attempts):
    """A new connection may go unanswered only when the listener closes under it: the kernel had queued it
    after the workers stopped accepting. That is the client's one failure, and only refusals follow."""
    failures = [n for n, attempt in enumerate(attempts) if attempt.outcome not in ("ok", "refused")]
    assert len(failures) <= 1, [attempts[n].outcome for n in failures]
    if failures:
        assert {a.outcome for a in attempts[failures[0] + 1 :]} <= {"refused"}


# --- The backend fails -----------------------------------------------------------------------------


class BackendFault:
    """One way for the backend to fail, at a fixed address, and the real backend back there after it."""

    def __init__(self, kind, start):
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend = start("backend", port=self.port, CONFIG_CODE=CODE)
        self.stand_in = None

    def begin(self):
        if self.kind == "hung":
            self.backend.signal_all(signal.SIGSTOP)  # accepts connections, never answers
            return
        self.backend.stop()  # gone at once, as after a crash: connection refused
        if self.kind != "unreachable":
            self.stand_in = StandInBackend(self.kind, self.port).start()

    def end(self):
        """The real backend answers on the same port again (returns once it does)."""
        if self.kind == "hung":
            self.backend.signal_all(signal.SIGCONT)
            return
        if self.stand_in is not None:
            self.stand_in.stop()
            self.stand_in = None
        self.backend.start()


@pytest.fixture
def backend_fault(start):
    faults = []

    def _make(kind):
        faults.append(BackendFault(kind, start))
        return faults[-1]

    yield _make
    for fault in faults:
        if fault.stand_in is not None:
            fault.stand_in.stop()


def answers_during_fault(frontend, kind, code_cached, rounds=2):
    """Each endpoint once per round, all at once: a JSON 503 saying why (or 200 /who-am-i from the cached
    code) within the bound. Returns the slowest answer per path."""
    paths = ["/startup", "/health", "/who-am-i"]
    slowest = dict.fromkeys(paths, 0.0)
    with ThreadPoolExecutor(len(paths)) as pool:
        for _ in range(rounds):
            for path, (status, headers, body, seconds) in zip(
                paths, pool.map(lambda p: timed_get(frontend.url + p), paths), strict=True
            ):
                slowest[path] = max(slowest[path], seconds)
                assert headers["Content-Type"] == "application/json", path
                assert isinstance(body, dict), path
                assert seconds < ANSWER_BOUND, f"{path} answered in {seconds:.2f} s"
                if path == "/who-am-i" and code_cached:
                    assert (status, body) == (200, {"name": POD_NAME, "code": CODE})
                else:
                    assert status == 503, (path, body)
                    assert body == failure_body(path, kind, POD_NAME)
    return slowest


def assert_no_thread_stuck(frontend):
    """Right after the faulty calls, 8 requests at once that need no backend call are all fast: no thread
    is still waiting on the backend."""
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: timed_get(frontend.url + "/nowhere"), range(8)))
    slowest = max(seconds for *_, seconds in results)
    assert {status for status, *_ in results} == {404}
    assert slowest < FAST, f"slowest {slowest:.2f} s"
    return slowest


def recovery_time(fault, frontend):
    """Bring the backend back; seconds until /health, /startup and /who-am-i all answer 200 again."""
    fault.end()
    back_at = time.monotonic()
    while True:
        statuses = [timed_get(frontend.url + p)[0] for p in ("/health", "/startup", "/who-am-i")]
        if statuses == [200, 200, 200]:
            return time.monotonic() - back_at
        assert time.monotonic() - back_at < RECOVERY_BOUND, f"not recovered: {statuses}"
        time.sleep(0.02)


def until_every_worker_served(server, path, status, workers=2):
    """Ask `path` until each of the server's workers has answered it with `status`: all are booted, and
    for /who-am-i each has cached the backend's code (workers share no memory)."""
    for _ in range(200):
        pids = server.workers()
        if len(pids) == workers and pids <= server.worker_pids(f"GET {path}", status):
            return
        assert timed_get(server.url + path)[0] == status
    raise AssertionError(f"some worker never answered {path}")


@pytest.mark.slow
@pytest.mark.parametrize("kind", FAULTS)
def test_backend_fault__bounded_answers_then_recovers(backend_fault, frontend_for, kind):
    """A failing backend: every endpoint answers within the bound, no thread stays stuck, and once the
    backend is back on its port the frontend recovers by itself; cold (no code yet) and warm."""
    fault = backend_fault(kind)
    frontend = frontend_for(fault.url)
    until_every_worker_served(frontend, "/nowhere", 404)  # booted, but never called the backend

    fault.begin()
    time.sleep(HEALTH_REUSE)  # no /health answer from a check made before the fault
    cold = answers_during_fault(frontend, kind, code_cached=False)
    cold_recovery = recovery_time(fault, frontend)

    until_every_worker_served(frontend, "/who-am-i", 200)
    fault.begin()
    time.sleep(HEALTH_REUSE)
    warm = answers_during_fault(frontend, kind, code_cached=True)
    after = assert_no_thread_stuck(frontend)
    warm_recovery = recovery_time(fault, frontend)
    print(
        f"\nbackend {kind}: slowest answer cold {fmt(cold)}, warm {fmt(warm)}; 8 parallel requests "
        f"after it {after:.3f} s; recovered in {cold_recovery:.3f} s (cold), {warm_recovery:.3f} s (warm)"
    )


def fmt(slowest):
    return ", ".join(f"{path} {seconds:.3f} s" for path, seconds in slowest.items())


# --- kill -9 of a worker -----------------------------------------------------------------------------


@pytest.mark.parametrize(("service", "path"), [("frontend", "/who-am-i"), ("backend", "/get-config")])
def test_worker_kill9__master_replaces_it_requests_keep_succeeding(start, frontend_for, service, path):
    """SIGKILL of one worker: every later request succeeds, and a new worker is forked and serves."""
    backend = start("backend", CONFIG_CODE=CODE)
    server = backend if service == "backend" else frontend_for(backend.url)
    until_every_worker_served(server, path, 200)
    before = server.workers()

    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    replacement = spawned_in = served_in = None
    requests_made = 0
    while served_in is None:
        assert time.monotonic() - killed_at < 10, "the replacement never served"
        status, _, body, _ = timed_get(server.url + path)
        requests_made += 1
        assert (status, body["code"]) == (200, CODE)
        if replacement is None and (new := server.workers() - before):
            replacement, spawned_in = new.pop(), time.monotonic() - killed_at
        if replacement is not None and replacement in server.worker_pids(f"GET {path}", 200):
            served_in = time.monotonic() - killed_at
    print(
        f"\n{service} kill -9: replacement forked after {spawned_in:.3f} s, served after {served_in:.3f} s; "
        f"{requests_made} requests meanwhile, all 200"
    )
    assert server.workers() == before - {victim} | {replacement}


# --- Slow clients ------------------------------------------------------------------------------------

# Slow clients the probes must withstand. With gunicorn's gthread worker a client that has sent one byte
# holds a thread until its request is complete (no read timeout), and a worker keeps accepting while all
# its threads are held, queueing the probe behind them. Capping worker_connections at the thread count
# makes a full worker stop accepting, so the probe goes to one with a free thread: with 2 workers x 32
# threads, 64 connections are served at once; minus the liveness and readiness probes, 62 slow clients.
SLOW_CLIENTS = 62


class SlowClients:
    """`count` connections, each sending a request one byte at a time and never finishing it."""

    REQUEST = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

    def __init__(self, port, count, interval=0.5):
        self.port, self.count, self.interval = port, count, interval
        self.stop = threading.Event()
        self.sockets = []
        self.thread = threading.Thread(target=self.trickle, daemon=True)

    def __enter__(self):
        self.sockets = [socket.create_connection(("127.0.0.1", self.port)) for _ in range(self.count)]
        self.thread.start()
        return self

    def trickle(self):
        sent = 0
        while not self.stop.is_set():
            byte = self.REQUEST[sent : sent + 1] or b"a"
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # the server may have given up on it
                    sock.send(byte)
            sent += 1
            self.stop.wait(self.interval)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def probe(url):
    """What the kubelet does: a GET on a new connection, given up after timeoutSeconds."""
    started = time.monotonic()
    try:
        status = requests.get(url, headers={"Connection": "close"}, timeout=PROBE_TIMEOUT).status_code
    except requests.RequestException as exc:
        status = type(exc).__name__
    return status, time.monotonic() - started


@pytest.mark.parametrize(("service", "path"), [("frontend", "/health"), ("backend", "/ping")])
def test_probe__answers_within_timeout_while_slow_clients_hold_connections(
    start, frontend_for, service, path
):
    """While SLOW_CLIENTS connections trickle requests, liveness and readiness probes answer in time."""
    backend = start("backend")
    server = backend if service == "backend" else frontend_for(backend.url)
    with SlowClients(server.port, SLOW_CLIENTS), ThreadPoolExecutor(2) as pool:
        # Each slow connection is established; once none waits in the accept queue, each holds a thread.
        until(lambda: accept_queue_length(server.port) == 0, "the workers never took every slow client")
        results = []
        for _ in range(2):
            results += pool.map(probe, [server.url + path] * 2)
            time.sleep(0.5)  # the probes come apart, as the kubelet's do
    print(f"\n{service} {path} with {SLOW_CLIENTS} slow clients: {[(s, round(t, 3)) for s, t in results]}")
    assert all(status == 200 and seconds < PROBE_TIMEOUT for status, seconds in results), results
    assert probe(server.url + path)[0] == 200
