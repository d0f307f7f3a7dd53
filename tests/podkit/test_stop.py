"""podkit.stop: the stop's timeline, the preStop step, and what a new container forgets (the gunicorn side
runs under real gunicorn in tests/integration/test_shutdown.py, the preStop hook in tests/e2e)."""

import io
import os
import subprocess
import sys

from podkit import fault, stop


def steps(text):
    """[(seconds since the first step, step)] of the timeline lines in `text`, workers named in the step."""
    return [(at, f"worker {pid}: {step}" if pid else step) for at, pid, step in stop.timeline(text)]


def test_mark__each_step_counts_from_the_first(pod_state, monkeypatch):
    """Steps logged by different processes share the first step's time: +0.000, then the time since."""
    clock = iter([1000.0, 1005.25])
    monkeypatch.setattr(stop.time, "time", lambda: next(clock))
    log = io.StringIO()
    stop.mark("preStop started", log)
    stop.mark("worker 7: SIGTERM received", log)
    assert steps(log.getvalue()) == [(0.0, "preStop started"), (5.25, "worker 7: SIGTERM received")]


def test_mark__state_out_of_reach_still_logs_the_step(monkeypatch, tmp_path, capsys):
    """A stop never fails for its log: without the pod's state the step is logged with an unknown time."""
    monkeypatch.setenv("POD_STATE_DIR", str(tmp_path / "missing"))
    stop.mark("exit")
    assert capsys.readouterr().out == "[stop] +? s exit\n"
    assert stop.timeline("[stop] +? s exit\n") == [(None, None, "exit")]


def test_prestop__logs_the_start_and_drains(pod_state):
    """`python -m podkit.stop prestop`, as the hook runs it (outside a container: its own stdout)."""
    env = {**os.environ, "POD_STATE_DIR": str(pod_state)}
    result = subprocess.run(
        [sys.executable, "-m", "podkit.stop", "prestop"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert [step for _, step in steps(result.stdout)] == [
        "preStop started",
        "drain set: /readyz answers 503, the Service stops sending new connections",
    ]
    assert fault.readiness_reason() == stop.PRESTOP


def test_prestop__keeps_a_drain_set_by_hand(pod_state, capsys):
    """A pod drained by hand keeps that reason: it is not the stop's to undo."""
    fault.switch_on("readiness", reason="inspecting")
    stop.prestop()
    assert fault.readiness_reason() == "inspecting"
    stop.forget()
    assert fault.readiness_reason() == "inspecting"


def test_forget__a_new_container_starts_serving(pod_state, capsys):
    """After a liveness restart (preStop ran, the pod lives on): no drain, an empty timeline."""
    stop.prestop()
    stop.forget()
    assert fault.readiness_reason() is None
    assert not (pod_state / stop.TIMELINE).exists()
    stop.mark("exit")
    assert steps(capsys.readouterr().out)[-1] == (0.0, "exit")


def test_main__anything_else_exits_2_with_usage(capsys):
    assert stop.main(["prestart"]) == 2
    assert "usage: python -m podkit.stop prestop" in capsys.readouterr().err
