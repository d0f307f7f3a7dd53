"""The frontend's one way to talk to the backend: one session, hard timeouts, clear errors.

Every call is bounded by BACKEND_TIMEOUT per phase and either returns parsed data or raises BackendError
with a message fit for a probe's log. Nothing here retries: the kubelet re-probes on its own schedule.
"""

import logging
import time

import requests
from django.conf import settings
from prometheus_client import Counter, Histogram

from podkit import requestid, state
from podkit.metrics import LATENCY_BUCKETS

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
CALLS = Counter("backend_calls_total", "Calls to the backend, by path and outcome", ["call", "outcome"])
CALL_SECONDS = Histogram(
    "backend_call_duration_seconds",
    "Time a call to the backend took, by outcome",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)
GAME_OVERS = Counter(
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


def ping():
    """Raise BackendError unless the backend's /ping answers 200 with JSON."""
    get_json("/ping")


def config_code(refresh=False):
    """The backend's configuration code: cached per worker, fetched when refresh is asked or when this pod
    holds none (no worker has fetched it yet)."""
    global _config_code
    if not refresh and _config_code is None:
        _config_code = state.read(CODE_STATE)
    if refresh or _config_code is None:
        code = get_json("/get-config").get("code")
        if not isinstance(code, str) or not code:
            raise BackendError("backend /get-config answered no code")
        state.write(CODE_STATE, code)
        _config_code = code
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
    curl is the other). Bounded by GAME_OVER_TIMEOUT; never raises; counted by outcome."""
    url = settings.BACKEND_URL + "/game-over"
    timeout = settings.GAME_OVER_TIMEOUT
    headers = {"X-Pod-Name": settings.POD_NAME, "X-Game-Over-Path": "sigterm"}
    try:
        response = session.post(url, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        logger.warning("game-over not delivered to %s: %s", url, type(exc).__name__)
        GAME_OVERS.labels("sigterm", "timeout" if isinstance(exc, requests.Timeout) else "unreachable").inc()
        return False
    logger.info("game-over delivered to %s: HTTP %s", url, response.status_code)
    GAME_OVERS.labels("sigterm", "ok" if response.status_code == 200 else "bad_answer").inc()
    return response.status_code == 200
