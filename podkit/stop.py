"""How the pod stops, step by step: one line in the container's log for each step, with the time since the
stop began, so `kubectl logs --previous` shows where the grace period went.

The steps, in order (README, "How a pod stops"): the preStop hook starts (`python -m podkit.stop prestop`,
the hook's first command) and sets the drain (podkit.fault's readiness switch), then runs the rest of the
hook; SIGTERM reaches each gunicorn worker, which serves what the kernel queued and closes its listener
(podkit/gunicorn.py), then finishes its in-flight requests; the master runs on_exit (the frontend's
game-over) and exits. Each step is kept in the pod's state (TIMELINE), so a step in another process counts
from the same start; gunicorn forgets it when a new container starts.

    [stop] +5.412 s worker 12: SIGTERM received

No Django at import: the gunicorn settings and the preStop command use it.
"""

import contextlib
import re
import sys
import time
from pathlib import Path

from podkit import fault, state

TIMELINE = "stop-timeline"
PRESTOP = "preStop"  # the drain's reason when the preStop hook set it
LINE = re.compile(r"\[stop\] \+(\d+\.\d{3}|\?) s (?:worker (\d+): )?(.+)")
# The container's log is PID 1's stdout. The preStop hook is a process of its own (the kubelet's exec), so
# it writes there, when PID 1 is this pod's gunicorn (not outside a container).
CONTAINER_LOG = Path("/proc/1/fd/1")


def mark(step, log=None):
    """Record a step of the stop and log it (to `log`, else stdout) with the seconds since the first step."""
    now = time.time()
    try:
        with state.path(TIMELINE).open("a") as timeline:
            timeline.write(f"{now:.6f} {step}\n")
        first = float(state.path(TIMELINE).read_text().split(maxsplit=1)[0])
        since = f"+{max(0.0, now - first):.3f} s"  # two workers' steps may land out of order
    except (OSError, ValueError):  # the state is out of reach: log the step all the same
        since = "+? s"
    (log or sys.stdout).write(f"[stop] {since} {step}\n")
    (log or sys.stdout).flush()


def timeline(log):
    """The stop's steps in a log's text, in order: [(seconds since the first step or None, worker pid or None,
    step)]; the format's reader, beside its writer (the tests read the pods' logs with it)."""
    return [
        (None if m[1] == "?" else float(m[1]), m[2] and int(m[2]), m[3])
        for m in map(LINE.fullmatch, log.splitlines())
        if m
    ]


def forget():
    """A new container starts (gunicorn's on_starting): an earlier container's stop is over, and the drain
    its preStop hook set goes with it (a liveness restart runs preStop too); a drain set by hand stays."""
    state.remove(TIMELINE)
    if fault.readiness_reason() == PRESTOP:
        fault.switch_off("readiness")


def container_log():
    """Where the preStop hook's lines reach `kubectl logs`: PID 1's stdout in a container whose PID 1 is
    gunicorn; else this process's stdout."""
    with contextlib.suppress(OSError):
        if b"gunicorn" in Path("/proc/1/cmdline").read_bytes():
            return CONTAINER_LOG.open("a")
    return sys.stdout


def prestop():
    """The preStop hook's first step: the stop begins, and the pod drains."""
    log = container_log()
    mark("preStop started", log)
    if fault.readiness_reason() is None:  # a drain set by hand keeps its reason
        fault.switch_on("readiness", reason=PRESTOP)
    mark("drain set: /readyz answers 503, the Service stops sending new connections", log)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["prestop"]:
        print("usage: python -m podkit.stop prestop", file=sys.stderr)
        return 2
    prestop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
