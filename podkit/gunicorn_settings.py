"""gunicorn settings both services share. Each service's gunicorn.conf.py starts with
`from podkit.gunicorn_settings import *` and then sets only what is its own: its app, its port (`bind_on`),
its graceful_timeout and, on the frontend, on_exit.

No Django at import: the benchmark's bare WSGI ceiling runs under the frontend's config, and its master and
workers must not carry Django because of a setting.
"""

import gc
import os

from podkit import metricsdir, stop
from podkit.requestid import ACCESS_LOG_FORMAT

__all__ = [
    "access_log_format",
    "accesslog",
    "child_exit",
    "control_socket_disable",
    "errorlog",
    "forwarded_allow_ips",
    "keepalive",
    "on_exit",
    "on_starting",
    "pre_fork",
    "preload_app",
    "threads",
    "worker_class",
    "worker_connections",
    "worker_tmp_dir",
    "workers",
]


def bind_on(default_port):
    """`bind`: every address of the pod, on PORT or the service's own port."""
    return f"0.0.0.0:{os.environ.get('PORT', default_port)}"


workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread, with a stop that serves every connection the kernel queued (podkit/gunicorn.py).
worker_class = "podkit.gunicorn.DrainingThreadWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# Slow clients: a gthread worker gives a connection a thread until its request has fully arrived (there is
# no read timeout), and keeps accepting while all its threads are taken, queueing new connections - the
# kubelet's probes too - behind them. Capped at one connection per thread, a full worker stops accepting and
# a probe goes to a worker with a thread free: workers x threads - 2 probes = 62 slow clients still leave
# the probes answering (tests/integration/test_faults.py). With no connection to spare for idle ones,
# keep-alive is off.
worker_connections = threads
keepalive = 0
# Nothing proxies to the pods, so no client's forwarding headers are trusted (gunicorn trusts 127.0.0.1 by
# default, and answers a SCRIPT_NAME header from there that does not match the path with a 500).
forwarded_allow_ips = ""
# Load Django once in the master before forking: shared memory pages, one backend CONFIG_CODE for all
# workers, and the frontend's on_exit can use the settings.
preload_app = True

# Access log on stdout: gunicorn's default format and the request id; a game-over shows as
# `"POST /game-over HTTP/1.1"`, the text the course and `kubectl logs` look for.
accesslog = "-"
access_log_format = ACCESS_LOG_FORMAT
errorlog = "-"

# Worker heartbeat files go to memory, not to the (read-only) root filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108  # nosec B108 - tmpfs, ours alone
# gunicorn >= 25 opens a control socket under $HOME by default; nothing uses it, and $HOME is read-only.
control_socket_disable = True

# Metrics (podkit/metrics.py): every process counts in files under the pod's memory emptyDir, added up at
# each scrape; set here, before the preloaded app imports prometheus_client.
metricsdir.use_pod_state()


def on_starting(server):
    """The master starts (a new container): empty the metrics files, forget an earlier container's stop."""
    metricsdir.on_starting(server)
    stop.forget()


def pre_fork(server, worker):
    """Freeze what the preloaded app made: gc then never touches (and copies) those shared pages."""
    gc.freeze()


child_exit = metricsdir.child_exit


def on_exit(server):
    """The master's last step: the workers are gone."""
    stop.mark("exit")
