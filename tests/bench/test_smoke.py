"""A 1-second run of the benchmark (`python -m bench --smoke`) in each mode, so bench/ cannot rot unnoticed.

gunicorn mode runs the real services as gunicorn processes; containers mode runs the real images as pods
through the e2e harness (podman, root). Both drive them with wrk at c=4 for 1 s per cell. wrk or podman
missing: skipped outside CI, a failure under CI=true (manage.sh and CI install them with apt).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prerequisites import find_tool, skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = [
    ("bare", "/who-am-i"),
    ("frontend", "/who-am-i"),
    ("frontend", "/health"),
    ("frontend", "/startup"),
    ("backend", "/get-config"),
    ("backend", "/ping"),
]


def require_wrk():
    if find_tool("wrk") is None:
        skip_or_fail("wrk is not installed (apt-get install wrk): the benchmark drives its load with it")


def run_bench(*args):
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """smoke_run(mode): one smoke run per mode for the whole module, made on first use:
    (results.json as a dict, printed table, chart path or None)."""
    runs = {}

    def run(mode):
        if mode not in runs:
            runs[mode] = run_smoke(mode, tmp_path_factory.mktemp(f"bench-{mode}"))
        return runs[mode]

    return run


def run_smoke(mode, folder):
    require_wrk()
    if mode == "containers" and (find_tool("podman") is None or os.geteuid() != 0):
        skip_or_fail("containers mode needs podman and root (apt-get install podman runc; run as root)")
    output = folder / "results.json"
    # The chart is drawn where matplotlib is installed (bench/requirements.txt); the rest needs none of it.
    chart = folder / "chart.png" if importlib.util.find_spec("matplotlib") else None
    chart_args = ["--chart", str(chart)] if chart else ["--no-chart"]
    result = run_bench("--smoke", "--mode", mode, "--output", str(output), *chart_args)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(output.read_text())
    assert results["mode"] == mode
    return results, result.stdout, chart


@pytest.fixture(params=["gunicorn", "containers"])
def smoke(request, smoke_run):
    """The smoke run of each mode in turn."""
    return smoke_run(request.param)


def load_row(results, service, path):
    rows = [row for row in results["load"] if (row["service"], row["path"]) == (service, path)]
    assert len(rows) == 1, f"{service} {path}: {len(rows)} rows"
    return rows[0]


@pytest.mark.parametrize(("service", "path"), ENDPOINTS)
def test_smoke__endpoint_served_without_errors(smoke, service, path):
    """Every endpoint and the bare ceiling answered 200 under load: requests/s > 0, no errors."""
    results, _, _ = smoke
    row = load_row(results, service, path)
    assert results["status"][f"{service} {path}"] == 200
    assert row["rps"] > 0
    assert row["errors"] == 0, row["runs"]
    assert 0 < row["p50_ms"] <= row["p99_ms"]


def test_smoke__ratios_are_to_the_bare_ceiling(smoke):
    """Each endpoint's ratio is its requests/s over the bare app's in the same round; the bare's is 1."""
    results, _, _ = smoke
    ceiling = load_row(results, "bare", "/who-am-i")
    assert ceiling["ratio"] == 1.0
    for service, path in ENDPOINTS[1:]:
        row = load_row(results, service, path)
        assert row["ratio"] == pytest.approx(row["rps"] / ceiling["rps"], abs=0.01)


def test_smoke__backend_calls_per_request_counted_at_the_backend(smoke):
    """/health and /startup get the backend's count of /ping and /get-config per request (a number, at
    most one call each plus the few in flight when wrk stops); the other endpoints get None, and so does the
    metrics-off pair, whose backend counts nothing (so PODKIT_METRICS=0 reached it)."""
    results, printed, _ = smoke
    for service, path in ENDPOINTS:
        row = load_row(results, service, path)
        calls = row["backend_calls_per_req"]
        if path in ("/health", "/startup"):
            assert isinstance(calls, float) and 0 <= calls <= 1.5, (path, calls)
        else:
            assert calls is None, (path, calls)
        assert all(cell["backend_calls_per_req"] is None for cell in row["runs_metrics_off"]), path
    assert "backend calls" in printed


def test_smoke__cpu_with_metrics_off_beside_each_endpoint(smoke):
    """Every endpoint also ran on the PODKIT_METRICS=0 pair without errors: CPU per request on, off and
    on/off are numbers; the ceiling has none (it counts no metrics)."""
    results, printed, _ = smoke
    for service, path in ENDPOINTS[1:]:
        row = load_row(results, service, path)
        assert row["cpu_ms_per_req_metrics_off"] > 0, row["runs_metrics_off"]
        assert row["cpu_on_off"] == pytest.approx(
            row["cpu_ms_per_req"] / row["cpu_ms_per_req_metrics_off"], abs=0.01
        )
        assert row["errors_metrics_off"] == 0, row["runs_metrics_off"]
    ceiling = load_row(results, "bare", "/who-am-i")
    assert (ceiling["cpu_ms_per_req_metrics_off"], ceiling["cpu_on_off"]) == (None, None)
    assert "what metrics cost" in printed


def test_smoke__start_stop_and_memory_measured(smoke):
    """Cold start, SIGTERM (idle and under load, exit code 0) and memory are there for both services."""
    results, _, _ = smoke
    for service in ("backend", "frontend"):
        data = results["lifecycle"][service]
        assert all(0 < seconds < 20 for seconds in data["cold_start_s"])
        assert [run["exit_code"] for run in data["sigterm_idle"]] == [0]
        assert data["sigterm_under_load"]["exit_code"] == 0
        assert data["sigterm_under_load"]["wrk_requests"] > 0
        memory = results["memory_after_warmup"][service]
        assert memory["processes"] >= 2
        assert memory["rss_mib"] >= memory["pss_mib"] > 0


def test_smoke__results_describe_the_run(smoke):
    """results.json names the commit, machine, gunicorn settings and date; every target is judged."""
    results, _, _ = smoke
    assert set(results["source"]) == {"commit", "services_changed"}
    assert results["machine"]["nproc"] >= 1
    assert results["machine"]["python"].startswith("3.")
    assert results["machine"]["date"]
    assert results["gunicorn"]["frontend"]["worker_class"]
    assert results["gunicorn"]["frontend"]["workers"]
    assert {item["met"] for item in results["targets"]} <= {True, False, None}


def test_smoke__table_printed_and_chart_drawn(smoke):
    """The terminal table lists every endpoint and the targets; the PNG is written where matplotlib is."""
    _, printed, chart = smoke
    for service, path in ENDPOINTS[1:]:
        assert f"{service} {path}" in printed
    assert "bare (ceiling)" in printed
    assert "targets:" in printed
    if chart is not None:
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_smoke__pods_measured_as_the_kubelet_sees_them(smoke_run):
    """Containers mode: memory from each pod's cgroup, CPU throttling per pod, and SIGTERM timed inside a
    real pod deletion whose preStop (curl + sleep 5) ran first."""
    results, printed, _ = smoke_run("containers")
    for service in ("backend", "frontend", "bare"):
        memory = results["memory_after_warmup"][service]
        assert 0 < memory["cgroup_anon_mib"] <= memory["cgroup_working_set_mib"] <= memory["cgroup_usage_mib"]
        assert memory["cgroup_anon_mib"] < memory["rss_mib"]  # shared pages counted once, not per worker
        assert results["cpu_throttling_during_load"][service]["periods"] > 0
    for service in ("backend", "frontend"):
        for run in [
            *results["lifecycle"][service]["sigterm_idle"],
            results["lifecycle"][service]["sigterm_under_load"],
        ]:
            assert run["pre_stop_s"] >= 5
            assert run["deletion_s"] >= run["pre_stop_s"] + run["seconds"] - 0.2
    assert results["pods"]["frontend"]["resources"]["limits"]["cpu"]
    assert "pod RSS (cgroup anon)" in printed


def test_cli__cpu_limits_belong_to_containers_mode():
    """--no-cpu-limits with --mode gunicorn is refused with a clear message (processes have no limit)."""
    result = run_bench("--mode", "gunicorn", "--no-cpu-limits", "--smoke", "--no-chart")
    assert result.returncode == 2
    assert "--no-cpu-limits is for containers mode" in result.stderr


def test_smoke__compare_runs_a_refs_services_beside_this_tree(tmp_path):
    """--compare HEAD: HEAD's services run as a third pair in the same rounds; each endpoint's row gets
    theirs (served without errors, a ratio to the same ceiling, CPU per request), and the table shows it."""
    require_wrk()
    output = tmp_path / "results.json"
    result = run_bench(
        "--smoke", "--compare", "HEAD", "--no-metrics-off", "--output", str(output), "--no-chart"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(output.read_text())
    assert (results["mode"], results["compared"]) == ("gunicorn", "HEAD")
    for service, path in ENDPOINTS[1:]:
        compared = load_row(results, service, path)["compared"]
        assert compared["errors"] == 0 and compared["ratio"] > 0 and compared["cpu_ms_per_req"] > 0, compared
    assert load_row(results, "bare", "/who-am-i")["compared"] is None
    assert "HEAD -> this tree" in result.stdout


def test_compare__refused_in_containers_mode():
    """--compare runs processes only: asking for it with --mode containers is a usage error (exit 2)."""
    result = run_bench("--compare", "HEAD", "--mode", "containers")
    assert result.returncode == 2
    assert "--compare runs as processes" in result.stderr
