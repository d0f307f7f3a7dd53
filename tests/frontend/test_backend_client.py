"""The frontend's backend client: every answer the backend can give maps to data or a clear BackendError."""

import concurrent.futures
import contextlib
import threading
import time

import pytest
import requests

from frontend import backend_client
from frontend.backend_client import BackendError

from .conftest import BACKEND


def test_get_json__returns_object(backend):
    """A 200 JSON object comes back decoded."""
    backend.get(f"{BACKEND}/ping", json={"status": "ok"})
    assert backend_client.get_json("/ping") == {"status": "ok"}


def test_get_json__passes_timeout_for_both_phases(backend, settings):
    """Connect and read are both bounded by BACKEND_TIMEOUT."""
    settings.BACKEND_TIMEOUT = 0.25
    call = backend.get(f"{BACKEND}/ping", json={})
    backend_client.get_json("/ping")
    assert call.calls[0].request.req_kwargs["timeout"] == (0.25, 0.25)


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
def test_get_json__failures_raise_backend_error(backend, settings, mock_kwargs, message):
    """Timeouts, refused connections, non-200s and non-JSON each give one clear message."""
    settings.BACKEND_TIMEOUT = 0.5
    backend.get(f"{BACKEND}/ping", **mock_kwargs)
    with pytest.raises(BackendError) as raised:
        backend_client.get_json("/ping")
    assert str(raised.value) == message


def test_get_json__prepared_once_per_url_and_sent_fresh(backend):
    """Repeated calls send the same method, URL and headers, each as its own request object."""
    call = backend.get(f"{BACKEND}/ping", json={})
    backend_client.get_json("/ping")
    backend_client.get_json("/ping")
    first, second = (recorded.request for recorded in call.calls)
    assert first is not second
    assert (first.method, first.url, dict(first.headers)) == (second.method, second.url, dict(second.headers))


def test_config_code__fetched_once_then_cached(backend):
    """The code is fetched when missing and then served from the worker's cache."""
    call = backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-1234", "status": "ready"})
    assert backend_client.config_code() == "BACKEND-1234"
    assert backend_client.config_code() == "BACKEND-1234"
    assert call.call_count == 1


def test_config_code__refresh_fetches_again(backend):
    """refresh=True (the startup probe) always asks the backend and replaces the cached code."""
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-1111"})
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-2222"})
    assert backend_client.config_code() == "BACKEND-1111"
    assert backend_client.config_code(refresh=True) == "BACKEND-2222"
    assert backend_client.config_code() == "BACKEND-2222"


@pytest.mark.parametrize("payload", [{}, {"code": ""}, {"code": 1234}, {"code": None}])
def test_config_code__missing_code_is_an_error(backend, payload):
    """A /get-config answer without a usable code is an error, and nothing is cached."""
    backend.get(f"{BACKEND}/get-config", json=payload)
    with pytest.raises(BackendError, match="answered no code"):
        backend_client.config_code()
    assert backend_client._config_code is None


def test_config_code__failed_refresh_keeps_old_code(backend):
    """A failed refresh raises, and the code fetched before stays for /who-am-i."""
    backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-1111"})
    backend.get(f"{BACKEND}/get-config", status=503)
    assert backend_client.config_code() == "BACKEND-1111"
    with pytest.raises(BackendError):
        backend_client.config_code(refresh=True)
    assert backend_client.config_code() == "BACKEND-1111"


def test_post_game_over__sends_pod_name_with_timeout(backend, settings):
    """The game-over POST names this pod and is bounded by GAME_OVER_TIMEOUT."""
    settings.GAME_OVER_TIMEOUT = 1.5
    call = backend.post(f"{BACKEND}/game-over", json={"message": "Goodbye!"})
    assert backend_client.post_game_over() == "ok"
    request = call.calls[0].request
    assert request.headers["X-Pod-Name"] == "frontend-5d9c7b6f4-x8k2p"
    assert request.req_kwargs["timeout"] == 1.5


@pytest.mark.parametrize("mock_kwargs", [{"body": requests.ConnectionError()}, {"status": 500}])
def test_post_game_over__never_raises(backend, mock_kwargs):
    """Shutdown must not fail because the backend is gone or broken."""
    backend.post(f"{BACKEND}/game-over", **mock_kwargs)
    assert backend_client.post_game_over() in ("unreachable", "bad_answer")


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
def test_get_json__counts_each_call_by_outcome(backend, mock_kwargs, outcome):
    """Every call adds one to backend_calls_total and its latency histogram, under its outcome."""
    backend.get(f"{BACKEND}/ping", **mock_kwargs)
    calls = counted(backend_client.CALLS, call="/ping", outcome=outcome)
    timed = counted(backend_client.CALL_SECONDS, outcome=outcome)
    with contextlib.suppress(BackendError):
        backend_client.get_json("/ping")
    assert counted(backend_client.CALLS, call="/ping", outcome=outcome) == calls + 1
    assert counted(backend_client.CALL_SECONDS, outcome=outcome) == timed + 1


def test_get_json__forwards_the_request_id(backend, client):
    """A call made while serving a request carries that request's X-Request-ID to the backend."""
    call = backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-1234", "status": "ready"})
    response = client.get("/startup", HTTP_X_REQUEST_ID="probe-42")
    assert response["X-Request-ID"] == "probe-42"
    assert call.calls[0].request.headers["X-Request-ID"] == "probe-42"


@pytest.mark.parametrize(
    ("mock_kwargs", "outcome"),
    [({"json": {"message": "Goodbye!"}}, "ok"), ({"body": requests.ConnectionError()}, "unreachable")],
)
def test_post_game_over__says_sigterm_and_counts_the_outcome(backend, mock_kwargs, outcome):
    """The shutdown hook's game-over names its path (sigterm) and is counted as sent, by outcome."""
    call = backend.post(f"{BACKEND}/game-over", **mock_kwargs)
    before = counted(backend_client.GAME_OVERS, path="sigterm", outcome=outcome)
    backend_client.post_game_over()
    assert call.calls[0].request.headers["X-Game-Over-Path"] == "sigterm"
    assert counted(backend_client.GAME_OVERS, path="sigterm", outcome=outcome) == before + 1


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


def test_config_code__every_refresh_asks_the_backend(backend):
    """The startup probe's refresh is never served from an earlier call: two refreshes, two fetches."""
    call = backend.get(f"{BACKEND}/get-config", json={"code": "BACKEND-1111"})
    backend_client.config_code(refresh=True)
    backend_client.config_code(refresh=True)
    assert call.call_count == 2
