"""The frontend's one way to talk to the backend: one session, hard timeouts, clear errors.

Every call is bounded by BACKEND_TIMEOUT per phase and either returns parsed data or raises BackendError
with a message fit for a probe's log. Nothing here retries: the kubelet re-probes on its own schedule.
The probes' calls are shared (SharedCall): however many requests come in, a worker has at most one of
each under way, so a flood of /health or /startup is never a flood of the backend.
"""

import dataclasses
import logging
import threading
import time

import requests
from django.conf import settings

from podkit import requestid, state
from podkit.metrics import counter, histogram

logger = logging.getLogger(__name__)

# One session per process, made at import before gunicorn forks; it holds no connection until the first
# call, so no worker shares another's. The backend closes every connection after its answer (keepalive = 0
# in its gunicorn.conf.py, for slow-client protection), so each call opens a new one: on a pod network that
# costs well under a millisecond.
session = requests.Session()
# In-cluster calls never go through a proxy: skip reading proxy and netrc settings from the environment
# on every call.
session.trust_env = False

# The backend's configuration code, per worker process (workers share no memory). None until fetched or
# read from the pod's state, where every fetch also leaves it (CODE_STATE) for the pod's other workers.
_config_code = None
CODE_STATE = "backend-code"
# URL -> its GET, prepared once: session.get would merge the session's settings into a new request and
# parse the URL again on every call, 0.4 of the 1.4 ms of CPU a call costs (bench/README.md).
_prepared = {}


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


class BackendError(Exception):
    """The backend could not give a usable answer; the message says why, `outcome` (for the metrics) how."""

    def __init__(self, message, outcome="bad_answer"):
        super().__init__(message)
        self.outcome = outcome


def get_json(path):
    """GET BACKEND_URL + path: the decoded JSON object, or BackendError; each call counted by outcome."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        return _get_json(path)
    except BackendError as exc:
        outcome = exc.outcome
        raise
    finally:
        CALL_SECONDS.labels(outcome).observe(time.perf_counter() - started)
        CALLS.labels(path, outcome).inc()


def _get_json(path):
    url = settings.BACKEND_URL + path
    timeout = settings.BACKEND_TIMEOUT
    prepared = _prepared.get(url)
    if prepared is None:
        prepared = _prepared[url] = session.prepare_request(requests.Request("GET", url))
    # A copy per call: threads never share one. It carries the id of the request it serves.
    request = prepared.copy()
    request_id = requestid.current()
    if request_id is not None:
        request.headers[requestid.HEADER] = request_id
    try:
        # No redirects: a 3xx is not the answer asked for.
        response = session.send(request, timeout=(timeout, timeout), allow_redirects=False)
    except requests.Timeout:
        raise BackendError(f"backend {path} timed out after {timeout:g} s", "timeout") from None
    except requests.RequestException as exc:
        raise BackendError(f"backend {path} unreachable: {type(exc).__name__}", "unreachable") from None
    if response.status_code != 200:
        raise BackendError(f"backend {path} answered HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        raise BackendError(f"backend {path} answered something that is not JSON") from None
    if not isinstance(data, dict):
        raise BackendError(f"backend {path} answered JSON that is not an object")
    return data


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


def _ping():
    get_json("/ping")


# Raises BackendError unless the backend's /ping answered 200 with JSON in the last HEALTH_REUSE_SECONDS.
ping = SharedCall(_ping, lambda: settings.HEALTH_REUSE_SECONDS)


def _fetch_code():
    code = get_json("/get-config").get("code")
    if not isinstance(code, str) or not code:
        raise BackendError("backend /get-config answered no code")
    state.write(CODE_STATE, code)
    return code


# Never reused: a caller that asks for a refresh gets a call that was under way when it asked, or its own.
fetch_code = SharedCall(_fetch_code, lambda: 0.0)


def config_code(refresh=False):
    """The backend's configuration code: cached per worker, fetched when refresh is asked or when this pod
    holds none (no worker has fetched it yet)."""
    global _config_code
    if not refresh and _config_code is None:
        _config_code = state.read(CODE_STATE)
    if refresh or _config_code is None:
        _config_code = fetch_code()
    return _config_code


def missing_code():
    """Readiness (podkit's /readyz): why this pod cannot serve /who-am-i yet, or None once it holds the code.

    A pod fact, not a worker's: the kubelet's probe lands on any worker, and a worker without the code in
    memory reads it from the pod's state on its first /who-am-i. Never calls the backend.
    """
    if _config_code is None and state.read(CODE_STATE) is None:
        return "not started: no backend code fetched yet (the startup probe fetches it)"
    return None


def post_game_over():
    """Tell the backend this pod is going away (gunicorn's on_exit: the "sigterm" path; the preStop hook's
    curl is the other). Bounded by GAME_OVER_TIMEOUT; never raises; returns and counts the outcome."""
    url = settings.BACKEND_URL + "/game-over"
    timeout = settings.GAME_OVER_TIMEOUT
    headers = {"X-Pod-Name": settings.POD_NAME, "X-Game-Over-Path": "sigterm"}
    try:
        response = session.post(url, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        logger.warning("game-over not delivered to %s: %s", url, type(exc).__name__)
        outcome = "timeout" if isinstance(exc, requests.Timeout) else "unreachable"
    else:
        logger.info("game-over delivered to %s: HTTP %s", url, response.status_code)
        outcome = "ok" if response.status_code == 200 else "bad_answer"
    GAME_OVERS.labels("sigterm", outcome).inc()
    return outcome
