"""Switches a person flips on one pod to see Kubernetes react, and the pod's drain: one state, one command.

    kubectl -n task-03 exec <pod> -- python -m podkit.fault liveness fail [--next N]
    kubectl -n task-03 exec <pod> -- python -m podkit.fault readiness fail [--reason TEXT]
    kubectl -n task-03 exec <pod> -- python -m podkit.fault slow SECONDS
    kubectl -n task-03 exec <pod> -- python -m podkit.fault off [liveness|readiness|slow]
    kubectl -n task-03 exec <pod> -- python -m podkit.fault status

- liveness fail: the liveness endpoints (PODKIT_LIVENESS_PATHS: /livez, and the k3s overlay's liveness
  probe) answer 503 "fault"; with --next N, until N of those answers went to the kubelet's probes (in the
  k3s overlay, whose readiness probe is /health too, the readiness probes spend some of the N).
- readiness fail: /readyz answers 503 "draining", so where readiness probes /readyz (the production
  overlay) the Service stops sending this pod new connections while every other endpoint still serves.
  The preStop hook sets it too (podkit.stop), reason "preStop".
- slow: every request but the kubelet's probes waits SECONDS (at most MAX_SLOW) before it is served, so a
  request is still in flight when the pod is deleted; the probes are spared, so the pod stays Ready.
- status: what is on, and the last PROBE_HITS answers the kubelet's probes got (time, path, status).

Only through `kubectl exec` (the pods/exec permission), never over HTTP: every endpoint is public. The state
is a file in the pod's emptyDir (podkit.state): every gunicorn worker sees it, it outlives a container
restart, and it goes with the pod. No Django at import: the command runs in a fresh process.
"""

import argparse
import contextlib
import fcntl
import json
import logging
import os
import sys
import threading
import time

from podkit import state

SWITCHES = "faults.json"
HITS = "probe-hits.json"
LOCK = "faults.lock"
MAX_SLOW = 10.0  # s: under the frontend's graceful_timeout (15 s), so a slow request still ends in a stop
PROBE_HITS = 20
BY_HAND = "set by hand"  # the drain's reason when a person set it
KUBE_PROBE = "kube-probe/"  # how the kubelet's prober starts its User-Agent
KINDS = ("liveness", "readiness", "slow")

logger = logging.getLogger(__name__)


# ---- the state -----------------------------------------------------------------------------------------


class Switches:
    """The switches as read from the pod's state: each kind's settings, or None when it is off."""

    def __init__(self, data):
        self.data = data

    @property
    def liveness(self):
        return self.data.get("liveness")

    @property
    def readiness(self):
        return self.data.get("readiness")

    @property
    def slow(self):
        setting = self.data.get("slow")
        return min(float(setting["seconds"]), MAX_SLOW) if setting else None


NONE = Switches({})
_seen = (None, NONE)  # (what os.stat said of the file, what it held), for current()
_reading = threading.Lock()


def load(text):
    """The switches a state file's text holds; ValueError when it is not what `python -m podkit.fault`
    writes (a person edited it, or the disk is full)."""
    data = json.loads(text)
    if not isinstance(data, dict) or not set(data) <= set(KINDS):
        raise ValueError(f"not a map of {', '.join(KINDS)}")
    for kind, setting in data.items():
        if not isinstance(setting, dict):
            raise ValueError(f"{kind} is not a map")
        if not isinstance(setting.get("since", 0), int | float):
            raise ValueError(f"{kind} since is not a time")
    if "slow" in data and not float(data["slow"]["seconds"]) > 0:  # time.sleep refuses NaN and less than 0
        raise ValueError("slow seconds is not more than 0")
    remaining = data.get("liveness", {}).get("next")
    if remaining is not None and not isinstance(remaining, int):
        raise ValueError("liveness next is not a number")
    return data


def read():
    """The switches now, read from the file (None-safe): a missing file is all off, a corrupt one too,
    with a log line."""
    try:
        text = state.path(SWITCHES).read_text()
    except FileNotFoundError:
        return NONE
    try:
        return Switches(load(text))
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning(
            "fault switches ignored: %s is corrupt (%s); python -m podkit.fault off resets it",
            state.path(SWITCHES),
            exc,
        )
        return NONE


def current():
    """The switches, for a request: read again only when the file changed (one stat per request)."""
    global _seen
    try:
        info = os.stat(state.location(SWITCHES))
        seen = (info.st_ino, info.st_mtime_ns, info.st_size)
    except FileNotFoundError:
        seen = None
    if seen != _seen[0]:
        with _reading:  # one thread of the worker reads it (and logs a corrupt one), the others wait
            if seen != _seen[0]:
                _seen = (seen, read() if seen is not None else NONE)
    return _seen[1]


@contextlib.contextmanager
def locked():
    """Every change of the switches or the probe hits, across processes, one at a time."""
    with state.path(LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write(data):
    state.write(SWITCHES, json.dumps(data))


def switch_on(kind, **settings):
    with locked():
        data = read().data
        write({**data, kind: {**settings, "since": time.time()}})


def switch_off(*kinds):
    with locked():
        data = read().data if set(kinds) != set(KINDS) else {}  # all off: a corrupt file is not even read
        write({kind: setting for kind, setting in data.items() if kind not in kinds})


def readiness_reason():
    """Why the pod drains (readiness fail), or None when it does not."""
    setting = current().readiness
    return setting.get("reason", "") if setting is not None else None


def probe_hits():
    """The kept probe hits, oldest first: none when there is no file, or a corrupt one (with a log line; the
    next hit replaces it)."""
    try:
        hits = json.loads(state.path(HITS).read_text())
    except FileNotFoundError:
        return []
    except ValueError:
        hits = None
    if isinstance(hits, list) and all(
        isinstance(hit, dict) and isinstance(hit.get("at"), int | float) for hit in hits
    ):
        return hits
    logger.warning("probe hits ignored: %s is corrupt; the next probe hit replaces it", state.path(HITS))
    return []


def liveness_fails(switches, from_kubelet):
    """Whether the liveness fault answers this request, given the `switches` it saw: None, or how many
    kubelet probes it still fails after this answer ("until off" without --next). A kubelet's probe spends
    one of --next N."""
    setting = switches.liveness
    if setting is None:
        return None
    if setting.get("next") is None:
        return "until off"
    if not from_kubelet:
        return f"for the next {setting['next']} kubelet probes"
    with locked():  # the count holds across workers: the N+1st probe passes
        data = read().data
        remaining = data.get("liveness", {}).get("next")
        if remaining is None:  # switched off, or to "until off", meanwhile
            return None if "liveness" not in data else "until off"
        if remaining <= 1:
            data.pop("liveness")
        else:
            data["liveness"] = {**data["liveness"], "next": remaining - 1}
        write(data)
        return f"{remaining - 1} more kubelet probes after this one"


def record_probe_hit(path, status, word, elapsed):
    """Keep one answer the kubelet's probe got, with the last PROBE_HITS before it."""
    hit = {"at": time.time(), "path": path, "status": status, "answer": word, "ms": round(elapsed * 1000, 1)}
    with locked():
        hits = [*probe_hits(), hit][-PROBE_HITS:]
        state.write(HITS, json.dumps(hits))


# ---- the middleware ------------------------------------------------------------------------------------


class FaultMiddleware:
    """Carries out the switches on each routed request (in process_view, so the metrics count a fault's
    answer under its route), and keeps the kubelet's probe hits for `status`."""

    def __init__(self, get_response):
        from django.conf import settings

        from podkit.errors import probe_answer

        self.get_response = get_response
        self.probe_answer = probe_answer
        self.liveness_paths = frozenset(getattr(settings, "PODKIT_LIVENESS_PATHS", ["/livez"]))

    def __call__(self, request):
        if not from_kubelet(request):
            return self.get_response(request)
        started = time.monotonic()
        response = self.get_response(request)
        word = getattr(response, "probe_state", None)
        record_probe_hit(request.path, response.status_code, word, time.monotonic() - started)
        return response

    def process_view(self, request, view, args, kwargs):
        switches = current()  # one look a request, one os.stat while all is off
        if switches.liveness is not None and request.path in self.liveness_paths:
            fails = liveness_fails(switches, from_kubelet(request))
            if fails is not None:
                return self.probe_answer(
                    "fault",
                    f"liveness fault switched on ({fails}); python -m podkit.fault off liveness clears it",
                )
        if switches.slow and not from_kubelet(request):
            time.sleep(switches.slow)
        return None


def from_kubelet(request):
    return request.META.get("HTTP_USER_AGENT", "").startswith(KUBE_PROBE)


# ---- the command ---------------------------------------------------------------------------------------


def status(hits=True):
    """What is on, and (`hits`) the probe hits, for a person: times as UTC ISO 8601."""

    def when(seconds):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}Z"

    switches = read().data
    on = {kind: {**setting, "since": when(setting.get("since", 0))} for kind, setting in switches.items()}
    if not hits:
        return {"on": on}
    return {"on": on, "probe_hits": [{**hit, "at": when(hit["at"])} for hit in probe_hits()]}


def as_text(shown):
    """JSON for a person to read: indented, and each probe hit on one line, so the hits read as a table."""
    text = json.dumps({**shown, "probe_hits": []} if "probe_hits" in shown else shown, indent=2)
    hits = ",\n".join(f"    {json.dumps(hit)}" for hit in shown.get("probe_hits", ()))
    return text.replace('"probe_hits": []', f'"probe_hits": [\n{hits}\n  ]') if hits else text


def seconds(text):
    value = float(text)
    if not 0 < value <= MAX_SLOW:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_SLOW:g}")
    return value


def count(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("N must be 1 or more")
    return value


def parser():
    top = argparse.ArgumentParser(prog="python -m podkit.fault", description=__doc__.split("\n\n")[0])
    verbs = top.add_subparsers(dest="verb", required=True, metavar="{liveness,readiness,slow,off,status}")
    liveness = verbs.add_parser("liveness", help="the liveness endpoints answer 503: restarted")
    liveness.add_argument("action", choices=["fail"], metavar="fail")
    liveness.add_argument(
        "--next",
        type=count,
        metavar="N",
        help="only until N kubelet probes of a liveness endpoint have failed; a readiness probe of the same "
        "path (the k3s overlay's /health) counts too",
    )
    readiness = verbs.add_parser(
        "readiness", help="/readyz answers 503 draining: out of the Service where readiness probes /readyz"
    )
    readiness.add_argument("action", choices=["fail"], metavar="fail")
    readiness.add_argument("--reason", default=BY_HAND, help=f"what /readyz says (default: {BY_HAND})")
    slow = verbs.add_parser("slow", help=f"every request but the probes waits SECONDS (at most {MAX_SLOW:g})")
    slow.add_argument("seconds", type=seconds, metavar="SECONDS")
    off = verbs.add_parser("off", help="switch one kind off, or every one")
    off.add_argument("kind", nargs="?", choices=KINDS)
    verbs.add_parser("status", help="what is on, and the kubelet's last probe hits")
    return top


def main(argv=None):
    """Switch, then print what is on (`status`: and the probe hits)."""
    args = parser().parse_args(argv)
    if args.verb == "liveness":
        switch_on("liveness", **({"next": args.next} if args.next else {}))
    elif args.verb == "readiness":
        switch_on("readiness", reason=args.reason)
    elif args.verb == "slow":
        switch_on("slow", seconds=args.seconds)
    elif args.verb == "off":
        switch_off(*([args.kind] if args.kind else KINDS))
    print(as_text(status(hits=args.verb == "status")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
