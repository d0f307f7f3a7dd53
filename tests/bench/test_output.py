"""The targets, judged from a hand-made results dict: each from one run's rows, None where not measured."""

import pytest

from bench import output


def row(service, path, c, rps, p99_ms=10.0, **extra):
    """A load-table row as run.aggregate makes it; the ratio is to a ceiling of 1000 req/s."""
    return {
        **{"service": service, "path": path, "c": c, "rps": rps, "ratio": rps / 1000, "p99_ms": p99_ms},
        **{"errors": 0, "backend_calls_per_req": None, "cpu_on_off": None, **extra},
    }


def results(health_rps=700.0, health_calls=0.01, on_off=1.05, concurrencies=(16, 64)):
    """A run that meets every throughput, amplification and metrics target (health_rps etc. change that)."""
    load = []
    for c in concurrencies:
        load += [
            row("bare", "/who-am-i", c, 1000.0, p99_ms=10.0),
            row("frontend", "/who-am-i", c, 800.0, p99_ms=12.0, cpu_on_off=on_off),
            row("frontend", "/health", c, health_rps, p99_ms=12.0, backend_calls_per_req=health_calls),
        ]
    return {"load": load, "memory_after_warmup": {"frontend": {"rss_mib": 100.0}}}


def judged(results_):
    return {item["target"]: item for item in output.targets(results_)}


def test_targets__all_met():
    """A run inside every limit meets every target it measured (lifecycle not measured: None)."""
    targets = judged(results())
    assert targets["/health / bare req/s at c=16, 0 errors"]["met"] is True
    assert targets["/health / /who-am-i req/s at c=64, 0 errors"]["value"] == pytest.approx(0.875)
    assert targets["/who-am-i p99 / bare p99 at c=16"]["value"] == pytest.approx(1.2)
    assert targets["frontend /health CPU/req metrics on / off, c=16"]["met"] is None  # no off cells given
    assert targets["frontend cold start to /startup 200, s (median)"]["met"] is None
    measured = [item for item in targets.values() if item["value"] is not None]
    assert all(item["met"] is not False for item in measured), measured


def test_targets__health_at_0_4_of_the_ceiling_missed():
    """/health at 0.4x the ceiling misses the 0.5x target, and 0.5x of /who-am-i misses the 0.8x one."""
    targets = judged(results(health_rps=400.0))
    assert targets["/health / bare req/s at c=16, 0 errors"] == {
        "target": "/health / bare req/s at c=16, 0 errors",
        "value": 0.4,
        "limit": ">= 0.5",
        "met": False,
    }
    assert targets["/health / /who-am-i req/s at c=64, 0 errors"]["met"] is False


def test_targets__errors_miss_a_throughput_target():
    """Fast error answers are no throughput: a ratio met with errors is missed."""
    data = results()
    data["load"][1]["errors"] = 3  # /who-am-i at c=16
    assert judged(data)["/who-am-i / bare req/s at c=16, 0 errors"]["met"] is False


def test_targets__amplification_judged_at_16_reported_at_64():
    """One backend /ping per /health misses <= 0.05 at c=16; at c=64 the value is reported, not judged."""
    targets = judged(results(health_calls=1.0))
    assert targets["/health backend /ping calls per request at c=16"]["met"] is False
    at_64 = targets["/health backend /ping calls per request at c=64"]
    assert (at_64["value"], at_64["limit"], at_64["met"]) == (1.0, "(reported)", None)


def test_targets__metrics_costing_more_than_15_percent_missed():
    """CPU per request 1.2x with metrics on than off misses the 1.15x target."""
    assert judged(results(on_off=1.2))["frontend /who-am-i CPU/req metrics on / off, c=16"]["met"] is False


def test_targets__not_measured_without_c_64():
    """Targets at a concurrency the run did not drive report no value and no verdict."""
    targets = judged(results(concurrencies=(16,)))
    for name in ("/who-am-i / bare req/s at c=64, 0 errors", "/who-am-i p99 / bare p99 at c=64"):
        assert (targets[name]["value"], targets[name]["met"]) == (None, None)
    assert targets["/who-am-i / bare req/s at c=16, 0 errors"]["met"] is True
