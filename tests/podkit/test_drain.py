"""podkit.drain and podkit.state: the drain marker, set and read the way a pod's processes do."""

import json
import os
import subprocess
import sys

from podkit import drain, state


def run_cli(*args, state_dir):
    """`python -m podkit.drain ARGS` in a fresh process, as `kubectl exec` runs it; returns its JSON."""
    env = {**os.environ, "POD_STATE_DIR": str(state_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "podkit.drain", *args], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_cli__on_status_off(pod_state):
    """on sets the marker, status reports it, off clears it: each answer is JSON."""
    assert run_cli("status", state_dir=pod_state) == {"status": "serving"}
    assert run_cli("on", state_dir=pod_state) == {"status": "draining", "reason": "drained by hand"}
    assert drain.reason() == "drained by hand"
    assert run_cli("status", state_dir=pod_state)["status"] == "draining"
    assert run_cli("off", state_dir=pod_state) == {"status": "serving"}
    assert drain.reason() is None


def test_cli__reason_is_what_readyz_says(pod_state):
    """`on --reason preStop` (the production overlay's hook) records that reason."""
    run_cli("on", "--reason", "preStop", state_dir=pod_state)
    assert (pod_state / drain.MARKER).read_text() == "preStop"


def test_cli__off_when_not_draining_is_fine(pod_state):
    """Undraining a pod that is not drained succeeds and changes nothing."""
    assert run_cli("off", state_dir=pod_state) == {"status": "serving"}


def test_cli__unknown_action_fails(pod_state):
    """A typo is refused with usage, not taken for one of the actions."""
    env = {**os.environ, "POD_STATE_DIR": str(pod_state)}
    result = subprocess.run(
        [sys.executable, "-m", "podkit.drain", "of"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
    assert not (pod_state / drain.MARKER).exists()


def test_state__write_replaces_whole_text(pod_state):
    """A state written twice holds the second text only, and no temporary file is left beside it."""
    state.write("backend-code", "BACKEND-1111-longer")
    state.write("backend-code", "BACKEND-2")
    assert state.read("backend-code") == "BACKEND-2"
    assert [p.name for p in pod_state.iterdir()] == ["backend-code"]


def test_state__default_dir_is_tmp(monkeypatch):
    """Unset, POD_STATE_DIR is /tmp: the pod's in-memory emptyDir, the only writable path besides /dev/shm."""
    monkeypatch.delenv("POD_STATE_DIR")
    assert str(state.path(drain.MARKER)) == "/tmp/draining"
