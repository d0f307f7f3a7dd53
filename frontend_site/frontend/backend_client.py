"""The frontend's one way to talk to the backend: one session, one function for every call, clear errors.

`call` makes every backend call, game-over included: bounded per phase, carrying a request id, counted by
outcome, and either returning the answer's JSON object or raising BackendError with a message fit for a
probe's log. Nothing here retries: the kubelet re-probes on its own schedule. The probes' calls are shared
(SharedCall): however many requests come in, a worker has at most one of each under way, so a flood of
/health or /startup is never a flood of the backend. The backend's code is held by `code` (BackendCode).
"""

import dataclasses
import logging
import threading
import time

import requests
from django.conf import settings
from health_check.exceptions import ServiceUnavailable

from podkit import requestid, state
from podkit.metrics import counter, histogram

logger = logging.getLogger(__name__)

# One session per process, made at import before gunicorn forks; it holds no connection until the first
# call, so no worker shares another's. The backend closes every connection after its answer (keepalive = 0
# in its gunicorn settings, for slow-client protection), so each call opens a new one: on a pod network that
# costs well under a millisecond.
session = requests.Session()
# In-cluster calls never go through a proxy: skip reading proxy and netrc settings from the environment
# on every call.
session.trust_env = False

# Outcomes of a call, for the metrics: ok, timeout, unreachable (no connection or it broke), bad_answer.
CALLS = counter("backend_calls_total", "Calls to the backend, by path and outcome", ["call", "outcome"])
CALL_SECONDS = histogram(
    "backend_call_duration_seconds", "Time a call to the backend took, by outcome", ["outcome"]
)
GAME_OVERS = counter(
    "game_over_sent_total",
    "game-over notifications this process sent, by path and outcome",
    ["path", "outcome"],
)


class BackendError(ServiceUnavailable):
    """The backend could not give a usable answer; the message says why, `outcome` (for the metrics) how.

    A django-health-check ServiceUnavailable, so the /health check (checks.py) raises it as it comes.
    """

    def __init__(self, message, outcome="bad_answer"):
        super().__init__(message)
        self.outcome = outcome

    def __str__(self):
        return self.message


def call(method, path, timeout=None, headers=None):
    """`method` BACKEND_URL + path: the answer's JSON object, or BackendError saying why.

    Each phase (connect, read) is bounded by `timeout` (default BACKEND_TIMEOUT); the call carries the
    X-Request-ID of the request it serves (one of its own outside a request: game-over), and is counted in
    backend_calls_total and backend_call_duration_seconds by outcome.
    """
    started = time.perf_counter()
    try:
        answer = _send(method, path, settings.BACKEND_TIMEOUT if timeout is None else timeout, headers)
    except BackendError as exc:
        _count(path, exc.outcome, started)
        raise
    _count(path, "ok", started)
    return answer


def _count(path, outcome, started):
    CALL_SECONDS.labels(outcome).observe(time.perf_counter() - started)
    CALLS.labels(path, outcome).inc()


def _send(method, path, timeout, headers):
    headers = {requestid.HEADER: requestid.current() or requestid.new(), **(headers or {})}
    try:
        # No redirects: a 3xx is not the answer asked for.
        response = session.request(
            method,
            settings.BACKEND_URL + path,
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
        )
    except requests.Timeout:
        raise BackendError(f"backend {path} timed out after {timeout:g} s", "timeout") from None
    except requests.RequestException as exc:
        raise BackendError(f"backend {path} unreachable: {type(exc).__name__}", "unreachable") from None
    if response.status_code != 200:
        raise BackendError(f"backend {path} answered HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise BackendError(f"backend {path} answered something that is not JSON") from None
    if not isinstance(answer, dict):
        raise BackendError(f"backend {path} answered JSON that is not an object")
    return answer


@dataclasses.dataclass
class _Flight:
    """One call under way or done: when it started, and its value or error once `done` is set."""

    started: float
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    value: object = None
    error: BackendError | None = None

    def result(self):
        if self.error is not None:
            # A new exception per caller: threads raising one object would share (and grow) its traceback.
            raise BackendError(str(self.error), self.error.outcome)
        return self.value


class SharedCall:
    """`call` made for many callers at once: a thread that asks while a call is under way waits for that
    call's result instead of making its own, and a result is reused until `reuse()` seconds after its call
    started. Per worker process; `reuse()` is read at each call (a setting)."""

    def __init__(self, call, reuse):
        self._call = call
        self._reuse = reuse
        self._lock = threading.Lock()
        self._flight = None

    def __call__(self):
        with self._lock:
            flight = self._flight
            lead = flight is None or (
                flight.done.is_set() and time.monotonic() - flight.started >= self._reuse()
            )
            if lead:
                flight = self._flight = _Flight(time.monotonic())
        if lead:
            try:
                flight.value = self._call()
            except BackendError as exc:
                flight.error = exc
            except BaseException:
                flight.error = BackendError("backend call failed unexpectedly; see the worker's log")
                raise
            finally:
                flight.done.set()
        else:
            flight.done.wait()
        return flight.result()

    def forget(self):
        """The next call asks the backend (a fresh worker; tests)."""
        with self._lock:
            self._flight = None


# /health's backend check: raises BackendError unless the backend's /ping answered 200 with a JSON object
# in the last HEALTH_REUSE_SECONDS.
ping = SharedCall(lambda: call("GET", "/ping"), lambda: settings.HEALTH_REUSE_SECONDS)


class BackendCode:
    """The backend's configuration code, held for the pod.

    The pod's state (POD_STATE_DIR) is the truth: a fetch by any worker leaves the code there, where every
    worker's /readyz and /who-am-i find it. This process keeps a copy of what it read or fetched, so the
    file is read once per worker, not per request. A newer code another worker fetches later is not seen
    by a worker that holds a copy; CONFIG_CODE keeps the backend's code one across its restarts.
    """

    STATE = "backend-code"

    def __init__(self):
        self._copy = None
        # Never reused: a refresh gets a fetch that was under way when it asked, or its own.
        self._fetch = SharedCall(self._fetch_and_keep, lambda: 0.0)

    def held(self):
        """The code this pod holds, or None; never calls the backend."""
        if self._copy is None:
            self._copy = state.read(self.STATE)
        return self._copy

    def get(self):
        """The code this pod holds, fetched from the backend when it holds none yet (/who-am-i)."""
        return self.held() or self.refresh()

    def refresh(self):
        """The code, fetched from the backend now and kept for the pod (/startup). On BackendError the code
        held before stays."""
        return self._fetch()

    def forget(self):
        """Drop this process's copy: the next look reads the pod's state (a fresh worker; tests)."""
        self._copy = None

    def _fetch_and_keep(self):
        fetched = call("GET", "/get-config").get("code")
        if not isinstance(fetched, str) or not fetched:
            raise BackendError("backend /get-config answered no code")
        state.write(self.STATE, fetched)
        self._copy = fetched
        return fetched


code = BackendCode()


def missing_code():
    """Readiness (podkit's /readyz): why this pod cannot serve /who-am-i yet, or None once it holds the code.

    A pod fact, not a worker's: the kubelet's probe lands on any worker, and a worker without the code in
    memory reads it from the pod's state. Never calls the backend.
    """
    if code.held() is None:
        return "not started: no backend code fetched yet (the startup probe fetches it)"
    return None


def post_game_over():
    """Tell the backend this pod is going away (gunicorn's on_exit: the "sigterm" path; the preStop hook's
    curl is the other). Bounded by GAME_OVER_TIMEOUT per phase; never raises; returns the outcome (`ok`,
    `timeout`, `unreachable`, `bad_answer`), which the stop's timeline logs, and counts it."""
    headers = {"X-Pod-Name": settings.POD_NAME, "X-Game-Over-Path": "sigterm"}
    try:
        call("POST", "/game-over", settings.GAME_OVER_TIMEOUT, headers)
    except BackendError as exc:
        logger.warning("game-over not delivered: %s", exc)
        outcome = exc.outcome
    else:
        logger.info("game-over delivered to %s", settings.BACKEND_URL)
        outcome = "ok"
    GAME_OVERS.labels("sigterm", outcome).inc()
    return outcome
