"""The whole verify flow, subprocess layer and exit codes included, against fake_kubectl.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.verify_table import rows
from tools import verify

REPO_ROOT = Path(__file__).resolve().parents[2]

# Generous waits (a passing poll returns at once); tests of a timeout shorten the one they need.
FAST = ["--poll-interval", "0.05", "--wait", "10", "--ready-timeout", "10"]


def run_verify(fake_kubectl: str, *extra: str) -> int:
    return verify.main(["--kubectl", fake_kubectl, *FAST, *extra])


def calls(cluster_dir: Path) -> list[list[str]]:
    lines = (cluster_dir / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def set_scenario(cluster_dir: Path, **knobs: object) -> None:
    (cluster_dir / "scenario.json").write_text(json.dumps(knobs))


def test_main__correct_cluster_full_marks(cluster_dir, fake_kubectl, capsys):
    """A correct deployment scores every point and exits 0."""
    assert run_verify(fake_kubectl) == 0
    table = rows(capsys.readouterr().out)
    assert table["TOTAL"] == ["105", "105", "100/100"]
    assert table["Frontend Service"][2] == "NodePort 8080->8080, nodePort 30080"
    assert table["Graceful Shutdown"][2].startswith("'POST /game-over' in backend log: 2 -> 4")
    assert "replacement frontend-7b9f6c5d48-r3pl4 Ready" in table["Graceful Shutdown"][2]


def test_main__deletes_the_frontend_pod_last(cluster_dir, fake_kubectl):
    """The only destructive call deletes the Ready frontend pod, after every HTTP check."""
    run_verify(fake_kubectl)
    verbs = [argv[2] for argv in calls(cluster_dir)]
    deletes = [argv for argv in calls(cluster_dir) if argv[2] == "delete"]
    assert deletes == [["-n", "task-03", "delete", "pod", "frontend-7b9f6c5d48-hx2lp", "--wait=false"]]
    assert verbs.index("delete") > max(i for i, verb in enumerate(verbs) if verb == "exec")


def test_main__curl_runs_in_frontend_against_service_dns(cluster_dir, fake_kubectl):
    """HTTP checks exec curl in the frontend container against the Services' cluster names."""
    run_verify(fake_kubectl)
    urls = [argv[-1] for argv in calls(cluster_dir) if argv[2] == "exec"]
    assert urls == [
        "http://svc-backend.task-03.svc.cluster.local:5000/get-config",
        "http://svc-backend.task-03.svc.cluster.local:5000/ping",
        "http://svc-frontend.task-03.svc.cluster.local:8080/startup",
        "http://svc-frontend.task-03.svc.cluster.local:8080/who-am-i",
        "http://svc-frontend.task-03.svc.cluster.local:8080/health",
    ]
    exec_call = next(argv for argv in calls(cluster_dir) if argv[2] == "exec")
    assert exec_call[3:12] == [
        "deploy/frontend",
        "-c",
        "frontend",
        "--",
        "curl",
        "-sS",
        "--max-time",
        "5",
        "-w",
    ]


def test_main__game_over_count_not_growing(cluster_dir, fake_kubectl, capsys):
    """No new `POST /game-over` within --wait: 5 points lost, exit 1, cluster still healed."""
    set_scenario(cluster_dir, game_over_lines=0)
    assert run_verify(fake_kubectl, "--wait", "0.5") == 1
    table = rows(capsys.readouterr().out)
    assert table["Graceful Shutdown"][:2] == ["5", "0"]
    assert "2 -> 2 in " in table["Graceful Shutdown"][2]
    assert table["TOTAL"] == ["105", "100", "95.2/100"]


def test_main__game_over_after_several_polls(cluster_dir, fake_kubectl, capsys):
    """The log grows only on a later poll; polling keeps going until it does."""
    set_scenario(cluster_dir, polls_before_growth=5)
    assert run_verify(fake_kubectl) == 0
    log_calls = [argv for argv in calls(cluster_dir) if argv[2] == "logs"]
    assert len(log_calls) == 1 + 6
    assert rows(capsys.readouterr().out)["Graceful Shutdown"][1] == "5"


def test_main__replacement_never_ready(cluster_dir, fake_kubectl, capsys):
    """The shutdown still scores, with a warning that the cluster was left without a frontend."""
    set_scenario(cluster_dir, replacement_ready=False)
    assert run_verify(fake_kubectl, "--ready-timeout", "0.5") == 0
    detail = rows(capsys.readouterr().out)["Graceful Shutdown"][2]
    assert "WARNING: no Ready replacement frontend" in detail


def test_main__who_am_i_wrong_pod_name(cluster_dir, fake_kubectl, capsys):
    """/who-am-i naming another pod loses its 15 points and the run exits 1."""
    http = json.loads((cluster_dir / "http.json").read_text())
    url = "http://svc-frontend.task-03.svc.cluster.local:8080/who-am-i"
    http[url]["body"] = json.dumps({"name": "frontend", "code": "BACKEND-4242"})
    (cluster_dir / "http.json").write_text(json.dumps(http))
    assert run_verify(fake_kubectl) == 1
    row = rows(capsys.readouterr().out)["Frontend /who-am-i"]
    assert row[:2] == ["15", "0"]
    assert "name is 'frontend'" in row[2]


def test_main__backend_unreachable(cluster_dir, fake_kubectl, capsys):
    """curl failing against svc-backend fails its checks and the ones needing its code."""
    http = json.loads((cluster_dir / "http.json").read_text())
    for url in [u for u in http if "svc-backend" in u]:
        del http[url]
    (cluster_dir / "http.json").write_text(json.dumps(http))
    assert run_verify(fake_kubectl) == 1
    table = rows(capsys.readouterr().out)
    assert table["Backend /get-config"][2].startswith("FAIL: no response: curl: (7)")
    assert table["Backend /ping"][1] == "0"
    assert table["Frontend /startup"][1] == "0"
    assert table["Frontend /health"][1] == "10"


def test_main__frontend_deployment_missing(cluster_dir, fake_kubectl, capsys):
    """Without deployment/frontend every frontend criterion fails, and nothing is deleted."""
    (cluster_dir / "deployment-frontend.json").unlink()
    (cluster_dir / "pods-frontend.json").write_text('{"apiVersion": "v1", "items": []}')
    assert run_verify(fake_kubectl) == 1
    table = rows(capsys.readouterr().out)
    assert table["Frontend Deployment"][2] == "FAIL: deployment/frontend not found"
    assert table["Startup Probe Configured"][1] == "0"
    assert table["Frontend /who-am-i"][1] == "0"
    backend_pod = "backend-6c8d9f7b54-q7wzn"
    assert table["Graceful Shutdown"][2] == f"FAIL: ready pods: backend ['{backend_pod}'], frontend []"
    assert all(argv[2] != "delete" for argv in calls(cluster_dir))


def test_main__wrong_liveness_period(cluster_dir, fake_kubectl, capsys):
    """A live frontend with periodSeconds 10 loses the liveness criterion only."""
    deployment = json.loads((cluster_dir / "deployment-frontend.json").read_text())
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["periodSeconds"] = 10
    (cluster_dir / "deployment-frontend.json").write_text(json.dumps(deployment))
    assert run_verify(fake_kubectl) == 1
    table = rows(capsys.readouterr().out)
    assert table["Liveness Probe Configured"] == ["10", "0", "FAIL: periodSeconds is 10, want 5"]
    assert table["TOTAL"][1] == "95"


def test_main__wrong_namespace(cluster_dir, fake_kubectl, capsys):
    """--namespace is passed to every kubectl call; a namespace with nothing in it scores 0."""
    assert run_verify(fake_kubectl, "--namespace", "task-04") == 1
    assert rows(capsys.readouterr().out)["TOTAL"][1] == "0"
    assert {argv[1] for argv in calls(cluster_dir)} == {"task-04"}


def test_main__api_server_unreachable(cluster_dir, fake_kubectl, capsys):
    """kubectl failing for a reason other than NotFound stops the run with exit 2."""
    set_scenario(cluster_dir, unreachable=True)
    assert run_verify(fake_kubectl) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "connection to the server 127.0.0.1:6443 was refused" in captured.err


def test_main__kubectl_not_installed(tmp_path, capsys):
    """A --kubectl that does not exist exits 2 with a clear message."""
    assert verify.main(["--kubectl", str(tmp_path / "no-kubectl")]) == 2
    assert "cannot run" in capsys.readouterr().err


def test_script__exit_code_and_table(cluster_dir, fake_kubectl):
    """`python tools/verify.py` as a script prints the table and exits 0 at full marks."""
    command = [sys.executable, "tools/verify.py", "--kubectl", fake_kubectl, *FAST]
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == "task-03 verify, namespace task-03"
    assert "deleting pod frontend-7b9f6c5d48-hx2lp" in proc.stderr


def test_script__exit_code_below_full_marks(cluster_dir, fake_kubectl):
    """The script exits 1 when any criterion fails."""
    (cluster_dir / "service-frontend.json").unlink()
    command = [sys.executable, "tools/verify.py", "--kubectl", fake_kubectl, *FAST]
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "FAIL: service/svc-frontend not found" in proc.stdout
