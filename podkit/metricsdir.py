"""prometheus_client's multiprocess directory under gunicorn: where it is, emptied when gunicorn starts,
dead workers forgotten (podkit/metrics.py has the metrics themselves).

No Django and no prometheus_client at import: both gunicorn.conf.py import this before the app loads, and
the benchmark's bare WSGI ceiling runs under the frontend's config, whose master and workers must not
carry Django because of a hook.
"""

import os
from pathlib import Path

from podkit import state

ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_pod_state():
    """POD_STATE_DIR/metrics (the pod's memory emptyDir) unless set; before prometheus_client is imported,
    which reads it once."""
    os.environ.setdefault(ENV, str(state.path("metrics")))


def on_starting(server):
    """gunicorn hook (master): start with an empty directory; counts of an earlier run in this pod go."""
    directory = Path(os.environ[ENV])
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.db"):
        old.unlink()


def child_exit(server, worker):
    """gunicorn hook (master): a worker is gone; its counts stay (counters add up), its live gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
