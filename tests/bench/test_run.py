"""What the benchmark reads back from the services: the backend's request count from its /metrics text."""

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from bench import run


def metrics_text(counts):
    """/metrics as prometheus_client writes it, http_requests_total at these (endpoint, status) counts."""
    registry = CollectorRegistry()
    counter = Counter("http_requests_total", "Requests", ["endpoint", "status"], registry=registry)
    for (endpoint, status), count in counts.items():
        counter.labels(endpoint, status).inc(count)
    return generate_latest(registry).decode()


def test_requests_counted__summed_over_status_for_one_endpoint():
    """/ping's count is its 200s and 503s together; other endpoints' counts are not in it."""
    text = metrics_text({("/ping", "200"): 40, ("/ping", "503"): 2, ("/get-config", "200"): 7})
    assert run.requests_counted(text, "/ping") == 42
    assert run.requests_counted(text, "/get-config") == 7


def test_requests_counted__endpoint_not_yet_asked_is_zero():
    """A counter that exists but has never seen the endpoint counts 0 requests, not None."""
    assert run.requests_counted(metrics_text({("/ping", "200"): 3}), "/get-config") == 0


def test_requests_counted__nothing_counted_is_none():
    """metrics off (PODKIT_METRICS=0): no http_requests_total sample at all, so nothing can be measured."""
    assert run.requests_counted(metrics_text({}), "/ping") is None


def cell(service, path, cpu, variant=None, rps=100.0, p99=2.0):
    """One load cell as load_cells records it (round 0, c=16); `variant`: which other pair served it."""
    return {
        **{"round": 0, "service": service, "path": path, "c": 16, "variant": variant},
        **{"rps": rps, "p50_ms": 1.0, "p99_ms": p99, "errors": 0},
        **{"cpu_ms_per_req": cpu, "backend_calls_per_req": None},
    }


def test_aggregate__metrics_off_cpu_beside_the_same_endpoint():
    """The metrics-off pair's cells join their endpoint's row (CPU off, on/off) and add no row."""
    cells = [
        cell("bare", "/who-am-i", 0.2, rps=400.0),
        cell("frontend", "/who-am-i", 0.6),
        cell("frontend", "/who-am-i", 0.5, variant=run.METRICS_OFF_VARIANT),
    ]
    rows = run.aggregate(cells, [("frontend", "/who-am-i")])
    assert [(row["service"], row["path"]) for row in rows] == [
        ("bare", "/who-am-i"),
        ("frontend", "/who-am-i"),
    ]
    who = rows[1]
    assert (who["cpu_ms_per_req"], who["cpu_ms_per_req_metrics_off"], who["cpu_on_off"]) == (0.6, 0.5, 1.2)
    assert who["ratio"] == 0.25
    assert rows[0]["cpu_on_off"] is None


def test_aggregate__compared_ref_beside_this_tree():
    """--compare: the ref's cells make each row's `compared` row, their ratio to the same ceiling; they
    change neither this tree's numbers nor the metrics-off ones."""
    cells = [
        cell("bare", "/who-am-i", 0.2, rps=400.0, p99=4.0),
        cell("frontend", "/who-am-i", 0.4, rps=240.0, p99=6.0),
        cell("frontend", "/who-am-i", 0.5, variant="main", rps=200.0, p99=8.0),
    ]
    rows = run.aggregate(cells, [("frontend", "/who-am-i")], compared="main")
    who = rows[1]
    assert (who["ratio"], who["p99_ms"], who["cpu_ms_per_req"]) == (0.6, 6.0, 0.4)
    assert (who["compared"]["ratio"], who["compared"]["p99_ms"], who["compared"]["cpu_ms_per_req"]) == (
        0.5,
        8.0,
        0.5,
    )
    assert who["cpu_ms_per_req_metrics_off"] is None
    assert rows[0]["compared"] is None
    assert run.aggregate(cells[:2], [("frontend", "/who-am-i")])[1]["compared"] is None


def test_export_services__unknown_ref_is_a_clear_error(tmp_path):
    """A ref git does not know stops the run before anything starts, saying which."""
    with pytest.raises(run.CompareUnavailable, match="--compare no-such-ref-4711"):
        run.export_services("no-such-ref-4711", tmp_path / "compare")


def test_export_services__the_services_of_the_ref(tmp_path):
    """HEAD's services, podkit included, land under the folder; nothing else of the repository does."""
    folder = run.export_services("HEAD", tmp_path / "compare")
    assert sorted(path.name for path in folder.iterdir()) == sorted(run.SERVICE_TREES)
    assert (folder / "frontend_site" / "gunicorn.conf.py").is_file()
