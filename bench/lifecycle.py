"""Start and stop, timed: cold start to ready, SIGTERM to exit when idle and under load.

Each measurement starts a fresh service of its own, so none of them disturbs the load cells.
"""

import time

import requests

from . import wrk

# A few requests so every worker has imported, connected and cached what it needs before SIGTERM.
WARM_REQUESTS = 20


def cold_start(stack, service, backend_url):
    """Seconds from starting the process to the first 200 of its probe path; returns (seconds, server)."""
    started = time.monotonic()
    if service == "frontend":
        server = stack.frontend(backend_url, ready_ok=True)
    else:
        server = stack.backend(ready_ok=True)
    return time.monotonic() - started, server


def warm(server, path):
    for _ in range(WARM_REQUESTS):
        requests.get(server.url + path, timeout=2)


def sigterm_idle(server, path):
    """SIGTERM to a warm, idle master; seconds until it has exited (the frontend's on_exit POST included)."""
    warm(server, path)
    code, seconds = server.terminate()
    return {"exit_code": code, "seconds": round(seconds, 3), **deletion(server)}


def sigterm_under_load(server, path, load, after_s=1.0):
    """SIGTERM while wrk keeps `load.concurrency` connections busy; seconds until the master exits.

    wrk runs until the service is gone (a pod's preStop comes first), then is interrupted; its errors after
    the listener closes are expected (connection refused) and reported apart.
    """
    warm(server, path)
    driver = wrk.start(server.url + path, wrk.Load(load.concurrency, seconds=600, threads=load.threads))
    time.sleep(after_s)
    code, seconds = server.terminate()
    summary = wrk.interrupt(driver)
    return {
        "exit_code": code,
        "seconds": round(seconds, 3),
        **deletion(server),
        "concurrency": load.concurrency,
        "wrk_requests": summary["requests"],
        "wrk_errors": summary["error_detail"],
    }


def deletion(server):
    """For a pod: how long its preStop hook ran and the whole deletion took (nothing for a bare process)."""
    termination = getattr(server, "termination", None)
    if termination is None:
        return {}
    return {"pre_stop_s": round(termination.pre_stop or 0, 3), "deletion_s": round(termination.total, 3)}


def measure(stack, backend_url, repeats, load):
    """Cold start and idle SIGTERM `repeats` times per service, then one SIGTERM under load each."""
    paths = {"backend": "/get-config", "frontend": "/who-am-i"}
    result = {}
    for service, path in paths.items():
        starts, idle = [], []
        for _ in range(repeats):
            seconds, server = cold_start(stack, service, backend_url)
            starts.append(round(seconds, 3))
            idle.append(sigterm_idle(server, path))
        _, server = cold_start(stack, service, backend_url)
        loaded = sigterm_under_load(server, path, load, after_s=min(1.0, load.seconds / 2))
        result[service] = {"cold_start_s": starts, "sigterm_idle": idle, "sigterm_under_load": loaded}
    return result
