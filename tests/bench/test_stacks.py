"""The benchmark's pods, without running them: the bare-WSGI pod and the experiment knobs, from the real
rendered overlay (kubectl), and the throttling arithmetic."""

import copy
import subprocess
from pathlib import Path

import pytest

from bench import run, stacks
from testbed.podspec import Manifests, PodPlan
from tests.prerequisites import find_tool, skip_or_fail


@pytest.fixture(scope="module")
def manifests():
    if find_tool("kubectl") is None:
        skip_or_fail("kubectl not found: it renders kustomize/overlays/k3s")
    return Manifests.render()


def test_bare_deployment__frontend_pod_serving_the_bare_app(manifests):
    """Same image, limits, probes and securityContext as the frontend; bench/ mounted read-only; gunicorn
    with the frontend's config serving bare_wsgi; and no Service selects it."""
    frontend = manifests.get("Deployment", "frontend")
    plan = PodPlan(stacks.bare_deployment(frontend), manifests)
    original = manifests.pod_plan("frontend")
    assert (plan.image, plan.probes, plan.security) == (original.image, original.probes, original.security)
    assert plan.resource_args() == original.resource_args()
    empty_dirs = dict.fromkeys(plan.empty_dirs(), "/node/empty-dir")
    assert ["--volume", f"{stacks.ROOT / 'bench'}:/opt/bench:ro"] == plan.volume_args(empty_dirs)[-2:]
    assert plan.container["args"][-3:] == ["--pythonpath", "/opt/bench", "bare_wsgi:application"]
    assert manifests.services_selecting(plan.namespace, plan.labels) == []
    assert manifests.get("Deployment", "frontend") == frontend  # the overlay's own object is untouched


def test_pass_experiment_env__set_knobs_reach_the_pod(manifests, monkeypatch):
    """WEB_CONCURRENCY set for an experiment is added to the pod's env; unset knobs are not."""
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    deployment = copy.deepcopy(manifests.get("Deployment", "frontend"))
    stacks.pass_experiment_env(deployment)
    env = {
        item["name"]: item.get("value")
        for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["WEB_CONCURRENCY"] == "1"
    assert "GUNICORN_THREADS" not in env


def test_throttling_delta__share_of_periods_throttled():
    """Between two cpu.stat readings: periods elapsed, the share in which the quota ran out, seconds lost."""
    before = {"frontend": {"periods": 100, "throttled": 10, "throttled_s": 1.0}}
    after = {"frontend": {"periods": 300, "throttled": 60, "throttled_s": 3.5}}
    assert run.throttling_delta(before, after) == {
        "frontend": {"periods": 200, "throttled_share": 0.25, "throttled_s": 2.5}
    }


def test_throttling_delta__restarted_pod_is_unknown_not_negative():
    """A pod whose container was restarted between the readings (new cgroup, counters from zero) or had
    none running is reported as None."""
    before = {"frontend": {"periods": 500, "throttled": 50, "throttled_s": 5.0}, "backend": None}
    after = {"frontend": {"periods": 20, "throttled": 2, "throttled_s": 0.1}, "backend": None}
    assert run.throttling_delta(before, after) == {"frontend": None, "backend": None}


@pytest.mark.parametrize(
    ("argv", "committed"),
    [
        (["--mode", "containers"], True),
        (["--mode", "gunicorn"], False),
        (["--mode", "containers", "--no-cpu-limits"], False),
        (["--mode", "containers", "--smoke"], False),
    ],
)
def test_parse_args__only_the_pods_run_writes_the_committed_results(argv, committed):
    """bench/results.json and chart.png are the pods' run with their limits; other runs write no file
    unless --output / --chart name one."""
    args = run.parse_args(argv)
    expected = (run.COMMITTED_RESULTS, run.COMMITTED_CHART) if committed else (None, None)
    assert (args.output, args.chart) == expected


def test_rollouts__runs_the_rollout_scenarios_and_returns_their_verdict(monkeypatch):
    """--rollouts runs tests/e2e/test_rollouts.py (whose summary prints the numbers) and exits as it did."""
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 3)

    monkeypatch.setattr(run.subprocess, "run", fake_run)
    assert run.main(["--rollouts"]) == 3
    (command,) = calls
    target = Path(command[command.index("pytest") + 1])
    assert target == run.ROOT / "tests" / "e2e" / "test_rollouts.py" and target.is_file()


def test_set_env__replaces_the_manifests_value_and_adds_the_rest():
    """The metrics-off pair's PODKIT_METRICS=0 wins over a value the manifest sets; other env stays."""
    container = {"env": [{"name": "PODKIT_METRICS", "value": "1"}, {"name": "POD_STATE_DIR", "value": "/x"}]}
    deployment = {"spec": {"template": {"spec": {"containers": [container]}}}}
    stacks.set_env(deployment, {"PODKIT_METRICS": "0", "WEB_CONCURRENCY": 1})
    assert container["env"] == [
        {"name": "POD_STATE_DIR", "value": "/x"},
        {"name": "PODKIT_METRICS", "value": "0"},
        {"name": "WEB_CONCURRENCY", "value": "1"},
    ]
