"""podkit.fault and podkit.state: the switches set the way `kubectl exec` sets them, read the way a pod's
workers read them, and carried out on requests (Django's test client; tests/integration has gunicorn)."""

import json
import logging
import os
import subprocess
import sys
import time

import pytest

from podkit import fault, state
from tests.podkit.conftest import KUBELET


def run_cli(*args, state_dir, code=0):
    """`python -m podkit.fault ARGS` in a fresh process, as `kubectl exec` runs it: (JSON or None, stderr)."""
    env = {**os.environ, "POD_STATE_DIR": str(state_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "podkit.fault", *args], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == code, result.stderr
    return (json.loads(result.stdout) if code == 0 else None), result.stderr


def test_cli__each_switch_on_then_off(pod_state):
    """Each switch goes on with its setting, status shows it, and off takes one kind or all."""
    assert run_cli("status", state_dir=pod_state)[0] == {"on": {}, "probe_hits": []}
    run_cli("liveness", "fail", "--next", "3", state_dir=pod_state)
    run_cli("readiness", "fail", "--reason", "inspecting", state_dir=pod_state)
    on = run_cli("slow", "2.5", state_dir=pod_state)[0]["on"]
    assert (on["liveness"]["next"], on["readiness"]["reason"], on["slow"]["seconds"]) == (
        3,
        "inspecting",
        2.5,
    )
    assert on["slow"]["since"].endswith("Z")
    assert set(run_cli("off", "slow", state_dir=pod_state)[0]["on"]) == {"liveness", "readiness"}
    assert run_cli("off", state_dir=pod_state)[0]["on"] == {}
    assert fault.read().data == {}


def test_cli__readiness_fail_is_the_drain(pod_state):
    """readiness fail sets the reason /readyz and pod_draining read; off readiness clears it."""
    run_cli("readiness", "fail", state_dir=pod_state)
    assert fault.readiness_reason() == fault.BY_HAND
    run_cli("off", "readiness", state_dir=pod_state)
    assert fault.readiness_reason() is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["livenes", "fail"], "invalid choice"),
        (["liveness"], "required: fail"),
        (["liveness", "fail", "--next", "0"], "N must be 1 or more"),
        (["liveness", "fail", "--next", "x"], "invalid count value"),
        (["slow", "11"], "at most 10"),
        (["slow", "0"], "more than 0"),
        (["slow", "nan"], "more than 0"),
        (["off", "everything"], "invalid choice"),
        ([], "required: {liveness,readiness,slow,off,status}"),
    ],
)
def test_cli__bad_command_exits_2_with_usage(pod_state, args, says):
    """A typo or a value out of bounds is refused with usage and exit 2, and switches nothing."""
    _, stderr = run_cli(*args, state_dir=pod_state, code=2)
    assert "usage: python -m podkit.fault" in stderr
    assert says in stderr
    assert not (pod_state / fault.SWITCHES).exists()


def test_read__corrupt_file_is_off_with_a_log_line(pod_state, caplog):
    """A state file that is not what the command writes switches nothing, says so, and `off` mends it."""
    (pod_state / fault.SWITCHES).write_text('{"liveness": "yes"')
    with caplog.at_level(logging.WARNING, logger="podkit.fault"):
        assert fault.current().data == {}
    assert "is corrupt" in caplog.text
    (pod_state / fault.SWITCHES).write_text('{"slow": {"seconds": "soon"}}')
    assert fault.read().data == {}
    fault.switch_off()
    assert json.loads((pod_state / fault.SWITCHES).read_text()) == {}


@pytest.mark.parametrize(
    "text",
    [
        '{"slow": {"seconds": NaN}}',
        '{"slow": {"seconds": -1}}',
        '{"readiness": {"reason": "x", "since": "noon"}}',
    ],
)
def test_read__values_a_request_or_status_cannot_use_are_corrupt(pod_state, text):
    """slow NaN or below 0 (time.sleep refuses both) and a since that is not a time are all off."""
    (pod_state / fault.SWITCHES).write_text(text)
    assert fault.read().data == {}
    assert run_cli("status", state_dir=pod_state)[0]["on"] == {}


def test_cli__status_lists_each_probe_hit_on_one_line_a_switch_only_what_is_on(pod_state):
    """status: valid JSON whose probe hits read as a table, one line each; a switch prints what is on."""
    fault.record_probe_hit("/livez", 200, "alive", 0.001)
    fault.record_probe_hit("/readyz", 503, "draining", 0.002)
    env = {**os.environ, "POD_STATE_DIR": str(pod_state)}
    text = subprocess.run(
        [sys.executable, "-m", "podkit.fault", "status"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert [line.strip().startswith('{"at": ') for line in text.splitlines()].count(True) == 2
    assert [hit["path"] for hit in json.loads(text)["probe_hits"]] == ["/livez", "/readyz"]
    assert run_cli("slow", "1", state_dir=pod_state)[0].keys() == {"on"}


def test_probe_hits__a_corrupt_file_is_none_with_a_log_line_and_the_next_hit_replaces_it(pod_state, caplog):
    """A hits file that is not a list of hits: status shows none and says so; the next hit starts afresh."""
    (pod_state / fault.HITS).write_text('[1, {"at": "noon"}]')
    with caplog.at_level(logging.WARNING, logger="podkit.fault"):
        assert fault.probe_hits() == []
    assert "is corrupt" in caplog.text
    assert run_cli("status", state_dir=pod_state)[0]["probe_hits"] == []
    fault.record_probe_hit("/livez", 200, "alive", 0.001)
    assert [hit["path"] for hit in fault.probe_hits()] == ["/livez"]


def test_current__sees_a_change_made_by_another_process(pod_state):
    """The per-request read follows the file: on, then off, as written by `kubectl exec`."""
    assert fault.current().slow is None
    run_cli("slow", "1", state_dir=pod_state)
    assert fault.current().slow == 1.0
    run_cli("off", state_dir=pod_state)
    assert fault.current().slow is None


def test_liveness__fails_every_liveness_endpoint_and_nothing_else(client, pod_state):
    """liveness fail: /livez answers 503 "fault" to anyone, the kubelet and a person alike; /readyz serves."""
    fault.switch_on("liveness", next=None)
    for headers in ({}, KUBELET):
        response = client.get("/livez", **headers)
        assert response.status_code == 503
        assert response.json()["status"] == "fault"
        assert "until off" in response.json()["error"]
    assert client.get("/readyz").status_code == 200
    fault.switch_off("liveness")
    assert client.get("/livez").status_code == 200


def test_liveness__next_n_spends_only_the_kubelets_probes(client, pod_state):
    """--next 2: a person's request fails without spending one; the kubelet's 3rd probe passes; then off."""
    fault.switch_on("liveness", next=2)
    assert client.get("/livez").status_code == 503
    assert [client.get("/livez", **KUBELET).status_code for _ in range(3)] == [503, 503, 200]
    assert fault.read().liveness is None
    assert client.get("/livez").status_code == 200


def test_slow__delays_requests_but_not_the_kubelets_probes(client, pod_state):
    """slow 0.3: /readyz from a person takes 0.3 s or more; the kubelet's probe of it does not wait."""
    fault.switch_on("slow", seconds=0.3)
    started = time.monotonic()
    assert client.get("/readyz").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert client.get("/readyz", **KUBELET).status_code == 200
    assert time.monotonic() - started < 0.3


def test_slow__bounded_even_when_the_file_asks_more(pod_state):
    """A file that asks for more than MAX_SLOW (edited by hand) waits MAX_SLOW."""
    (pod_state / fault.SWITCHES).write_text(json.dumps({"slow": {"seconds": 3600}}))
    assert fault.read().slow == fault.MAX_SLOW


def test_probe_hits__the_kubelets_last_ones_with_their_answers(client, pod_state):
    """Only the kubelet's probes are kept, the last PROBE_HITS of them, each with path, status and answer."""
    client.get("/readyz")
    for _ in range(fault.PROBE_HITS + 3):
        client.get("/livez", **KUBELET)
    fault.switch_on("readiness", reason="test")
    client.get("/readyz", **KUBELET)
    hits = run_cli("status", state_dir=pod_state)[0]["probe_hits"]
    assert len(hits) == fault.PROBE_HITS
    assert {(hit["path"], hit["status"], hit["answer"]) for hit in hits[:-1]} == {("/livez", 200, "alive")}
    assert (hits[-1]["path"], hits[-1]["status"], hits[-1]["answer"]) == ("/readyz", 503, "draining")
    assert hits[-1]["at"].endswith("Z")


def test_state__write_replaces_whole_text(pod_state):
    """A state written twice holds the second text only, and no temporary file is left beside it."""
    state.write("backend-code", "BACKEND-1111-longer")
    state.write("backend-code", "BACKEND-2")
    assert state.read("backend-code") == "BACKEND-2"
    assert [p.name for p in pod_state.iterdir()] == ["backend-code"]


def test_state__default_dir_is_tmp(monkeypatch):
    """Unset, POD_STATE_DIR is /tmp: the pod's in-memory emptyDir, the only writable path besides /dev/shm."""
    monkeypatch.delenv("POD_STATE_DIR")
    assert str(state.path(fault.SWITCHES)) == "/tmp/faults.json"
