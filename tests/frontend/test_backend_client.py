"""The frontend's backend client: every answer the backend can give maps to data or a clear BackendError."""

import concurrent.futures
import contextlib
import threading
import time

import pytest
import requests

from frontend import backend_client
from frontend.backend_client import BackendError
from podkit import requestid, state

from .conftest import BACKEND


def test_call__returns_object(backend):
    """A 200 JSON object comes back decoded."""
    backend.get(f"{BACKEND}/ping", json={"status": "ok"})
    assert backend_client.call("GET", "/ping") == {"status": "ok"}


def test_call__passes_timeout_for_both_phases(backend, settings):
    """Connect and read are both bounded by BACKEND_TIMEOUT, unless the call names its own."""
    settings.BACKEND_TIMEOUT = 0.25
    call = backend.get(f"{BACKEND}/ping", json={})
    backend_client.call("GET", "/ping")
    backend_client.call("GET", "/ping", timeout=3)
    assert [c.request.req_kwargs["timeout"] for c in call.calls] == [(0.25, 0.25), (3, 3)]


@pytest.mark.parametrize(
    ("mock_kwargs", "message"),
    [
        ({"body": requests.ConnectTimeout()}, "backend /ping timed out after 0.5 s"),
        ({"body": requests.ReadTimeout()}, "backend /ping timed out after 0.5 s"),
        ({"body": requests.ConnectionError()}, "backend /ping unreachable: ConnectionError"),
        ({"status": 500, "json": {"error": "x"}}, "backend /ping answered HTTP 500"),
        ({"status": 404, "body": "<h1>no</h1>"}, "backend /ping answered HTTP 404"),
        ({"status": 302, "headers": {"Location": f"{BACKEND}/ok"}}, "backend /ping answered HTTP 302"),
        ({"status": 200, "body": "<html>"}, "backend /ping answered something that is not JSON"),
        ({"status": 200, "json": ["ok"]}, "backend /ping answered JSON that is not an object"),
    ],
)
def test_call__failures_raise_backend_error(backend, settings, mock_kwargs, message):
    """Timeouts, refused connections, non-200s and non-JSON each give one clear message."""
    settings.BACKEND_TIMEOUT = 0.5
    backend.get(f"{BACKEND}/ping", **mock_kwargs)
    with pytest.raises(BackendError) as raised:
        backend_client.call("GET", "/ping")
    assert str(raised.value) == message


def test_call__session_headers_reach_every_call(backend, monkeypatch):
    """A header set on the session reaches every call, game-over too, and one set after earlier calls as
    well: nothing sends a request built before it was set."""
    for method, path in [("GET", "/ping"), ("GET", "/get-config"), ("POST", "/game-over")]:
        backend.add(method, BACKEND + path, json={"code": "BACKEND-1234"})
    backend_client.call("GET", "/ping")
    monkeypatch.setitem(backend_client.session.headers, "X-Mesh-Tenant", "blue")
    backend_client.ping.forget()
    backend_client.ping()
    backend_client.code.refresh()
    backend_client.post_game_over()
    sent = [recorded.request.headers.get("X-Mesh-Tenant") for recorded in backend.calls]
    assert sent == [None, "blue", "blue", "blue"]


def test_call__forwards_the_request_id(backend, client):
    """A call made while serving a request carries that request's X-Request-ID to the backend."""
    call = backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-1234", "status": "ready"})
    response = client.get("/startup", HTTP_X_REQUEST_ID="probe-42")
    assert response["X-Request-ID"] == "probe-42"
    assert call.calls[0].request.headers["X-Request-ID"] == "probe-42"


def test_call__outside_a_request_sends_an_id_of_its_own(backend):
    """A call made outside any request (game-over, from gunicorn's master) still carries a well-formed
    X-Request-ID, a new one each time."""
    call = backend.post(f"{BACKEND}/game-over", json={"message": "Goodbye!"})
    backend_client.post_game_over()
    backend_client.post_game_over()
    sent = [recorded.request.headers["X-Request-ID"] for recorded in call.calls]
    assert all(requestid.WELL_FORMED.fullmatch(request_id) for request_id in sent)
    assert sent[0] != sent[1]


def counted(metric, **labels):
    """The current value of one labelled sample of a backend-client metric (this process's count)."""
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith(("_total", "_count")) and sample.labels == labels:
                return sample.value
    return 0


@pytest.mark.parametrize(
    ("mock_kwargs", "outcome"),
    [
        ({"json": {"status": "ok"}}, "ok"),
        ({"body": requests.ReadTimeout()}, "timeout"),
        ({"body": requests.ConnectionError()}, "unreachable"),
        ({"status": 500, "json": {"error": "x"}}, "bad_answer"),
        ({"status": 200, "body": "<html>"}, "bad_answer"),
    ],
)
def test_call__counts_each_call_by_outcome(backend, mock_kwargs, outcome):
    """Every call adds one to backend_calls_total and its latency histogram, under its outcome."""
    backend.get(f"{BACKEND}/ping", **mock_kwargs)
    calls = counted(backend_client.CALLS, call="/ping", outcome=outcome)
    timed = counted(backend_client.CALL_SECONDS, outcome=outcome)
    with contextlib.suppress(BackendError):
        backend_client.call("GET", "/ping")
    assert counted(backend_client.CALLS, call="/ping", outcome=outcome) == calls + 1
    assert counted(backend_client.CALL_SECONDS, outcome=outcome) == timed + 1


def test_code__fetched_once_then_held(backend):
    """The code is fetched when the pod holds none, then served from this process's copy."""
    call = backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-1234", "status": "ready"})
    assert backend_client.code.get() == "BACKEND-1234"
    assert backend_client.code.get() == "BACKEND-1234"
    assert call.call_count == 1


def test_code__refresh_fetches_again(backend):
    """refresh() (the startup probe) always asks the backend and replaces the code held, for the pod too."""
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-1111"})
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-2222"})
    assert backend_client.code.get() == "BACKEND-1111"
    assert backend_client.code.refresh() == "BACKEND-2222"
    assert backend_client.code.get() == "BACKEND-2222"
    assert state.read(backend_client.BackendCode.STATE) == "BACKEND-2222"


def test_code__every_refresh_asks_the_backend(backend):
    """The startup probe's refresh is never served from an earlier call: two refreshes, two fetches."""
    call = backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-1111"})
    backend_client.code.refresh()
    backend_client.code.refresh()
    assert call.call_count == 2


@pytest.mark.parametrize("payload", [{}, {"code": ""}, {"code": 1234}, {"code": None}])
def test_code__missing_code_is_an_error(backend, payload):
    """A /get-config answer without a usable code is an error, and the pod holds nothing."""
    backend.get(f"{BACKEND}/get-config", json=payload)
    with pytest.raises(BackendError, match="answered no code"):
        backend_client.code.get()
    assert backend_client.code.held() is None
    assert state.read(backend_client.BackendCode.STATE) is None


def test_code__failed_refresh_keeps_old_code(backend):
    """A failed refresh raises, and the code fetched before stays for /who-am-i."""
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-1111"})
    backend.get(f"{BACKEND}/get-config", status=503)
    assert backend_client.code.get() == "BACKEND-1111"
    with pytest.raises(BackendError):
        backend_client.code.refresh()
    assert backend_client.code.get() == "BACKEND-1111"


def test_code__the_pods_state_is_read_through_once(backend):
    """A process without a copy reads the pod's state, and keeps what it read: a later change of the file
    is seen only after forget() (a fresh worker) or its own refresh."""
    state.write(backend_client.BackendCode.STATE, "BACKEND-1111")
    assert backend_client.code.held() == "BACKEND-1111"
    state.write(backend_client.BackendCode.STATE, "BACKEND-2222")
    assert backend_client.code.held() == "BACKEND-1111"
    backend_client.code.forget()
    assert backend_client.code.held() == "BACKEND-2222"
    assert len(backend.calls) == 0


def test_post_game_over__names_the_pod_and_its_path_bounded_by_its_timeout(backend, settings):
    """The game-over POST names this pod and its path (sigterm), and is bounded by GAME_OVER_TIMEOUT, not
    BACKEND_TIMEOUT."""
    settings.GAME_OVER_TIMEOUT = 1.5
    call = backend.post(f"{BACKEND}/game-over", json={"message": "Goodbye!"})
    assert backend_client.post_game_over() == "ok"
    request = call.calls[0].request
    assert request.headers["X-Pod-Name"] == "frontend-5d9c7b6f4-x8k2p"
    assert request.headers["X-Game-Over-Path"] == "sigterm"
    assert request.req_kwargs["timeout"] == (1.5, 1.5)


@pytest.mark.parametrize(
    ("mock_kwargs", "outcome"),
    [
        ({"json": {"message": "Goodbye!"}}, "ok"),
        ({"body": requests.ReadTimeout()}, "timeout"),
        ({"body": requests.ConnectionError()}, "unreachable"),
        ({"status": 500}, "bad_answer"),
        ({"body": "Goodbye"}, "bad_answer"),
    ],
)
def test_post_game_over__returns_and_counts_the_outcome_never_raises(backend, mock_kwargs, outcome):
    """Whatever the backend does, game-over returns its outcome word (the stop's timeline logs it) and
    counts it, as sent by path sigterm and as a backend call; shutdown never fails on it."""
    backend.post(f"{BACKEND}/game-over", **mock_kwargs)
    sent = counted(backend_client.GAME_OVERS, path="sigterm", outcome=outcome)
    calls = counted(backend_client.CALLS, call="/game-over", outcome=outcome)
    assert backend_client.post_game_over() == outcome
    assert counted(backend_client.GAME_OVERS, path="sigterm", outcome=outcome) == sent + 1
    assert counted(backend_client.CALLS, call="/game-over", outcome=outcome) == calls + 1


class CountedCall:
    """A backend call stand-in for SharedCall: counts its calls, can be held until released, and fails
    while `error` is set."""

    def __init__(self, hold=False):
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.error = None

    def __call__(self):
        self.calls += 1
        self.entered.set()
        assert self.release.wait(5), "never released"
        if self.error is not None:
            raise self.error
        return self.calls


def call_from_threads(shared, count, held=None):
    """`shared()` from `count` threads at once: their results, or the exceptions they raised. With `held`
    (a CountedCall made with hold=True), the call is released 0.2 s after it began, so the other threads
    arrive while it is under way."""

    def release_soon():
        held.entered.wait(5)
        time.sleep(0.2)
        held.release.set()

    with concurrent.futures.ThreadPoolExecutor(count + 1) as pool:
        if held is not None:
            pool.submit(release_soon)
        futures = [pool.submit(shared) for _ in range(count)]
        return [future.exception() or future.result() for future in futures]


def test_shared_call__concurrent_callers_share_one_call():
    """16 threads asking while a call is under way all get that call's result; the backend is asked once."""
    call = CountedCall(hold=True)
    shared = backend_client.SharedCall(call, lambda: 1.0)
    results = call_from_threads(shared, 16, held=call)
    assert results == [1] * 16
    assert call.calls == 1


def test_shared_call__result_reused_then_asked_again():
    """Within `reuse` seconds of its start a result is reused; after that the next caller asks anew."""
    call = CountedCall()
    shared = backend_client.SharedCall(call, lambda: 0.3)
    assert [shared(), shared(), shared()] == [1, 1, 1]
    time.sleep(0.35)
    assert shared() == 2
    assert call.calls == 2


def test_shared_call__failure_shared_as_a_new_error_each():
    """A failed call fails every caller that shared it, each with its own BackendError (outcome kept);
    once the reuse time is over, a working backend answers again."""
    call = CountedCall(hold=True)
    call.error = BackendError("backend /ping unreachable: ConnectionError", "unreachable")
    shared = backend_client.SharedCall(call, lambda: 0.3)
    errors = call_from_threads(shared, 8, held=call)
    assert call.calls == 1
    assert all(isinstance(error, BackendError) for error in errors)
    assert len({id(error) for error in errors}) == 8
    assert {(str(error), error.outcome) for error in errors} == {
        ("backend /ping unreachable: ConnectionError", "unreachable")
    }
    call.error = None
    with pytest.raises(BackendError):
        shared()  # still within the failed call's reuse time
    time.sleep(0.35)
    assert shared() == 2


def test_shared_call__unexpected_error_raised_and_never_hangs_the_others():
    """A bug in the call raises in the thread that made it; threads that waited on it get a BackendError."""
    call = CountedCall(hold=True)
    call.error = KeyError("bug")
    shared = backend_client.SharedCall(call, lambda: 1.0)
    outcomes = call_from_threads(shared, 4, held=call)
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["BackendError"] * 3 + ["KeyError"]


def test_ping__one_backend_call_per_reuse_time(backend, settings):
    """/health's check: many pings within HEALTH_REUSE_SECONDS are one /ping to the backend."""
    settings.HEALTH_REUSE_SECONDS = 0.3
    call = backend.get(f"{BACKEND}/ping", json={"status": "ok"})
    for _ in range(10):
        backend_client.ping()
    assert call.call_count == 1
    time.sleep(0.35)
    backend_client.ping()
    assert call.call_count == 2
