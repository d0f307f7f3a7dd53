"""SIGTERM to a gunicorn master, as the kubelet sends it: drain, game-over once, exit 0; every connection
queued at the stop is served, and under load that never stops every connection is served or refused at
connect, but for at most one reset in the instant of the close (podkit/gunicorn.py)."""

import os
import re
import signal
import threading
import time
from collections import Counter

import pytest
import requests

from podkit import stop
from testbed import procfs
from testbed.processes import ROOT
from testbed.traffic import Load, get

from .conftest import POD_NAME, accept_queue_length, until, wait_for_workers

pytestmark = pytest.mark.integration

GRACEFUL_TIMEOUT = 15  # frontend_site/gunicorn.conf.py
GAME_OVER_TIMEOUT = 2.0  # frontend settings default
# These tests prove what shutdown waits for, not how fast it is (bench/ measures that): an idle frontend
# or one whose backend refuses connections must not sit out graceful_timeout or GAME_OVER_TIMEOUT. The
# slack covers a loaded 2-core CI machine.
PROMPT = 4.0


def game_over_lines(backend):
    output = backend.output()
    return output.count('"POST /game-over HTTP/1.1"'), output.count("Received game-over signal from")


# Each worker's step of the stop once it has served what the kernel queued (podkit/gunicorn.py).
DRAINED = re.compile(r"accept queue drained \(\d+ connections?\), listener closed")


def drained(server):
    """{worker pid: its drained step} from the server's log: the workers that took the draining path."""
    return {who: step for _, who, step in stop.timeline(server.output()) if DRAINED.fullmatch(step)}


def stop_with_health_in_flight(backend, frontend, workers):
    """SIGTERM to the frontend while a GET /health is in flight in it (the frozen backend holds its /ping
    call queued), the backend thawed once every worker has begun its stop. Returns the frontend's exit code
    and the /health client's {"response": ...} or {"error": ...}."""
    backend.signal_all(signal.SIGSTOP)
    result = {}

    def ask():
        try:
            result["response"] = requests.get(frontend.url + "/health", timeout=10)
        except requests.RequestException as exc:
            result["error"] = exc

    in_flight = threading.Thread(target=ask)
    in_flight.start()
    until(lambda: accept_queue_length(backend.port), "/health never called the backend")
    frontend.process.send_signal(signal.SIGTERM)
    until(lambda: drained(frontend).keys() == workers, "the workers never began the stop")
    backend.signal_all(signal.SIGCONT)
    in_flight.join()
    return frontend.process.wait(timeout=GRACEFUL_TIMEOUT + GAME_OVER_TIMEOUT + 5), result


def test_sigterm__inflight_request_completes_then_game_over_once(backend, frontend_for):
    """A request in flight at SIGTERM completes; the backend then logs exactly one game-over."""
    frontend = frontend_for(backend.url)
    workers = wait_for_workers(frontend)
    assert game_over_lines(backend) == (0, 0)
    code, result = stop_with_health_in_flight(backend, frontend, workers)

    assert "response" in result, result
    assert result["response"].status_code == 200, result["response"].text
    assert code == 0
    assert game_over_lines(backend) == (1, 1)
    assert f"Received game-over signal from {POD_NAME}" in backend.output()


def test_sigterm__logs_each_step_of_the_stop_in_order(backend, frontend_for):
    """A request in flight at SIGTERM: each worker logs SIGTERM, its drained queue and its last request
    done, then the master the game-over's outcome and its exit, with times from the first step on."""
    frontend = frontend_for(backend.url)
    workers = wait_for_workers(frontend)
    code, result = stop_with_health_in_flight(backend, frontend, workers)
    assert code == 0
    assert "response" in result and result["response"].status_code == 200, result

    steps = stop.timeline(frontend.output())
    for pid in workers:
        mine = [(at, step) for at, who, step in steps if who == pid]
        assert [step.split(" (")[0] for _, step in mine] == [
            "SIGTERM received",
            "accept queue drained",
            "last in-flight request done",
        ], steps
        assert [at for at, _ in mine] == sorted(at for at, _ in mine), steps
    last_worker_step = max(at for at, who, _ in steps if who is not None)
    assert [(who, step) for _, who, step in steps[-2:]] == [
        (None, "game-over sent by on_exit: ok"),
        (None, "exit"),
    ]
    assert last_worker_step <= steps[-2][0] <= steps[-1][0], steps
    assert min(at for at, _, _ in steps) == 0.0
    assert steps[-1][0] < GRACEFUL_TIMEOUT + GAME_OVER_TIMEOUT, steps
    # The worker that held /health answered it between its drained queue and its last request done.
    log = frontend.output().splitlines()
    served = [n for n, line in enumerate(log) if line.endswith('"GET /health HTTP/1.1" 200')]
    assert len(served) == 1, log
    (pid,) = frontend.worker_pids("GET /health", 200)
    drained_at, done_at = (
        next(n for n, line in enumerate(log) if line.endswith(f"worker {pid}: {step}"))
        for step in (drained(frontend)[pid], "last in-flight request done")
    )
    assert drained_at < served[0] < done_at, "the in-flight request did not hold its worker's stop"


def test_sigterm__idle_frontend_exits_fast(backend, frontend_for):
    """An idle frontend exits 0 without sitting out graceful_timeout, game-over delivered."""
    frontend = frontend_for(backend.url)
    code, seconds = frontend.terminate()
    assert code == 0
    assert seconds < PROMPT, f"exit took {seconds:.2f} s"
    assert game_over_lines(backend) == (1, 1)


# The service's own config, with a second worker that takes BOOTING s between its fork and init_signals().
SLOW_SECOND_WORKER = """
import runpy, time
globals().update(runpy.run_path({config!r}))
def post_fork(server, worker):
    if worker.age == 2:
        open({marker!r}, "w").close()
        time.sleep({booting})
"""
BOOTING = 1.0


@pytest.mark.parametrize("service", ["backend", "frontend"])
def test_sigterm__worker_still_booting_exits_too(start, backend, tmp_path, service):
    """SIGTERM to a worker between its fork and its own signal handlers reaches the master's handler, which
    the fork copied, and is lost: that worker must still see the stop, not sit out graceful_timeout."""
    marker = tmp_path / "second-worker-forked"
    config = tmp_path / "slow-second-worker.conf.py"
    own = ROOT / f"{service}_site" / "gunicorn.conf.py"
    config.write_text(SLOW_SECOND_WORKER.format(config=str(own), marker=str(marker), booting=BOOTING))
    env = {"BACKEND_URL": backend.url, "POD_NAME": POD_NAME}
    server = start(service, ready_path="/listening", config=config, **env)
    until(marker.exists, "the second worker was never forked")

    code, seconds = server.terminate()
    assert code == 0
    assert seconds < BOOTING + PROMPT, f"exit took {seconds:.2f} s"
    output = server.output()
    assert output.count("Booting worker") == output.count("Worker exiting") == 2, "a worker was killed"


def test_reuse_port__workers_stay_up_and_stop_on_sigterm(start):
    """With --reuse-port each worker listens on sockets of its own, so the master holding none of them says
    nothing about a stop: the workers keep serving, and SIGTERM still stops them."""
    server = start("backend", GUNICORN_CMD_ARGS="--reuse-port")
    workers = wait_for_workers(server)
    for _ in range(20):
        assert requests.get(server.url + "/ping", timeout=5).status_code == 200
    time.sleep(0.5)
    assert server.workers() == workers, "workers exited and were replaced"
    code, seconds = server.terminate()
    assert code == 0
    assert seconds < PROMPT, f"exit took {seconds:.2f} s"


def test_sigterm__backend_stopped_still_exits(backend, frontend_for):
    """With the backend gone, shutdown is not held up by GAME_OVER_TIMEOUT: exit 0, the failure logged."""
    frontend = frontend_for(backend.url, GAME_OVER_TIMEOUT=10)
    backend.terminate()
    code, seconds = frontend.terminate()
    assert code == 0
    assert seconds < PROMPT, f"exit took {seconds:.2f} s"
    assert "game-over not delivered" in frontend.output()


def test_sigterm__backend_hung_exits_within_game_over_timeout(backend, frontend_for):
    """With a frozen backend, the game-over POST gives up after GAME_OVER_TIMEOUT and the pod still exits."""
    frontend = frontend_for(backend.url, GAME_OVER_TIMEOUT=2)
    backend.signal_all(signal.SIGSTOP)
    code, seconds = frontend.terminate()
    assert code == 0
    assert 2.0 <= seconds < 2.0 + PROMPT, f"exit took {seconds:.2f} s"
    assert "game-over not delivered" in frontend.output()


LOAD_THREADS = 8
# The worker shrinks the accept queue to one connection before its last accept() and close(): the one that
# lands in between is reset. A second needs two handshakes into the empty queue at once (podkit/gunicorn.py):
# none in 400 stops measured under this load, beside two busy loops and without (2026-12-04: 27 stops reset
# one); plain gthread resets 8 a stop here, and 1 to 8 beside the busy loops.
RESETS_ALLOWED = 1
QUEUED = 16


def test_sigterm__connections_queued_at_the_stop_are_all_served(start):
    """Connections the kernel queued while the workers were busy are served when the stop comes (plain
    gthread closes the listener under them and resets them all)."""
    server = start("backend")
    workers = wait_for_workers(server)
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)  # busy: nothing accepts, the kernel queues
    replies = []
    clients = [
        threading.Thread(
            target=lambda: replies.append(get(server.port, "/get-config", "backend", timeout=20))
        )
        for _ in range(QUEUED)
    ]
    for client in clients:
        client.start()
    until(lambda: accept_queue_length(server.port) == QUEUED, "the kernel never queued every client")

    server.process.send_signal(signal.SIGTERM)
    # The master closes its copy of the listener, then signals the workers: the stop is on when they wake.
    until(
        lambda: all(procfs.signal_pending(pid, signal.SIGTERM) for pid in workers),
        "the master never signalled its workers",
    )
    for pid in workers:
        os.kill(pid, signal.SIGCONT)
    for client in clients:
        client.join()

    assert server.process.wait(timeout=30) == 0
    assert Counter((reply.status, reply.error) for reply in replies) == {(200, ""): QUEUED}
    assert drained(server).keys() == workers


@pytest.mark.parametrize(("service", "path"), [("frontend", "/who-am-i"), ("backend", "/get-config")])
def test_sigterm__under_load_every_connection_served_or_refused(start, frontend_for, service, path):
    """Load going on through SIGTERM: each connection is answered or refused at connect, but for at most
    RESETS_ALLOWED landing in the instant of the close."""
    backend = start("backend")
    server = backend if service == "backend" else frontend_for(backend.url)
    workers = wait_for_workers(server)
    # A new connection per request, back to back, until the port refuses them and after.
    load = Load(server.port, path, "127.0.0.1", threads=LOAD_THREADS, pause=0.0).start()
    try:
        time.sleep(1.0)  # the load runs a while before the stop
        sigterm_at = time.monotonic()
        code, exited_in = server.terminate()
        exited_at = time.monotonic()
        until(
            lambda: any(at > exited_at and load.classify(r) == "refused" for at, _, r in list(load.outcomes)),
            "the port never refused a client after the exit",
        )
    finally:
        load.stop()  # waits for every request under way: a reset at a client's retransmission counts too

    outcomes = [(started - sigterm_at, load.classify(reply), reply) for started, _, reply in load.outcomes]
    # A client notes the time before it connects, and its thread may wait for the GIL in between: a
    # request timed just before SIGTERM can reach the listener once its queue is shrunk or closed, and be
    # refused there.
    before = [reply for sent, kind, reply in outcomes if sent < 0 and kind != "refused"]
    after = [kind for sent, kind, _ in outcomes if sent >= 0]
    reset = [(round(sent, 3), reply.error) for sent, kind, reply in outcomes if kind == "dropped"]
    refused_early = [round(sent, 4) for sent, kind, _ in outcomes if sent < 0 and kind == "refused"]
    print(
        f"\n{service} SIGTERM under load: exit {code} in {exited_in:.2f} s; sent before "
        f"{len(before)} (and refused {refused_early}), after: answered {after.count('answered')}, "
        f"refused {after.count('refused')}, reset {len(reset)}"
    )
    assert drained(server).keys() == workers, "a worker did not drain (podkit/gunicorn.py)"
    assert len(reset) <= RESETS_ALLOWED, f"connections reset after their request was sent: {reset}"
    assert code == 0
    assert len(before) >= 50, "the load never got going"
    assert [r.status for r in before if r.status != 200] == [], "a request sent before SIGTERM was not served"
