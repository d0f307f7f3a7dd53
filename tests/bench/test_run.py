"""What the benchmark reads back from the services: the backend's request count from its /metrics text."""

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


def cell(service, path, cpu, metrics_off=False, rps=100.0):
    """One load cell as load_cells records it (round 0, c=16)."""
    return {
        **{"round": 0, "service": service, "path": path, "c": 16, "metrics_off": metrics_off},
        **{"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0},
        **{"cpu_ms_per_req": cpu, "backend_calls_per_req": None},
    }


def test_aggregate__metrics_off_cpu_beside_the_same_endpoint():
    """The metrics-off pair's cells join their endpoint's row (CPU off, on/off) and add no row."""
    cells = [
        cell("bare", "/who-am-i", 0.2, rps=400.0),
        cell("frontend", "/who-am-i", 0.6),
        cell("frontend", "/who-am-i", 0.5, metrics_off=True),
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
