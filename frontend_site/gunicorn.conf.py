"""gunicorn settings of the frontend container, and what happens on SIGTERM (`on_exit` below)."""

import gc
import os

from podkit import metricsdir
from podkit.requestid import ACCESS_LOG_FORMAT

wsgi_app = "frontend_site.wsgi:application"
bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread, with a stop that serves or refuses every connection, never resets one (podkit/gunicorn.py).
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
# Nothing proxies to this pod, so no client's forwarding headers are trusted (gunicorn trusts 127.0.0.1 by
# default, and answers a SCRIPT_NAME header from there that does not match the path with a 500).
forwarded_allow_ips = ""
# Load Django once in the master before forking: shared memory pages, and on_exit can use the settings.
preload_app = True

accesslog = "-"
access_log_format = ACCESS_LOG_FORMAT  # gunicorn's default format and the request id
errorlog = "-"

# In-flight requests get this long after SIGTERM; part of the shutdown budget (README, "How a pod stops").
graceful_timeout = 15
# Worker heartbeat files go to memory, not to the (read-only) root filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108  # nosec B108 - tmpfs, ours alone
# gunicorn >= 25 opens a control socket under $HOME by default; nothing uses it, and $HOME is read-only.
control_socket_disable = True


def on_exit(server):
    """After the workers have drained, tell the backend this pod is gone (the preStop hook does too)."""
    from frontend.backend_client import post_game_over

    post_game_over()


def pre_fork(server, worker):
    """Freeze what the preloaded app made: gc then never touches (and copies) those shared pages."""
    gc.freeze()


# Metrics (podkit/metrics.py): every process counts in files under the pod's memory emptyDir, added up at
# each scrape; set here, before the preloaded app imports prometheus_client. The hooks empty it at start
# and forget dead workers.
metricsdir.use_pod_state()
on_starting = metricsdir.on_starting
child_exit = metricsdir.child_exit
