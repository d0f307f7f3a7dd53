"""Metrics of both services, in Prometheus's text format at GET /metrics.

Under gunicorn each worker is a process of its own, so prometheus_client runs in its multiprocess mode:
every process (the master's shutdown hook too) writes its counts to small mmapped files in
PROMETHEUS_MULTIPROC_DIR, and a scrape adds up the files of every process, live or gone. podkit.metricsdir
points it at POD_STATE_DIR/metrics (the pod's memory emptyDir; the root filesystem is read-only) before the
app loads, and its gunicorn hooks empty it at start and forget dead workers. Without it (runserver, unit
tests) the counts are the process's own.

What is counted, and the labels' bounds (an unknown path is one value, `unmatched`, never the raw path):
README, "Metrics". PODKIT_METRICS=0 turns all counting off (the benchmark's switch: what the counting
costs is measured against it): every metric made by `counter()` and `histogram()` below is then a no-op,
and /metrics answers only what is read at scrape time.
"""

import os
import time
from functools import cache

from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily

from podkit import fault, metricsdir
from podkit.conf import build_info, env_bool

# Seconds; a probe's answer must stay well under its 2 s timeoutSeconds, so the buckets look below it.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNMATCHED = "unmatched"


def counting():
    """Whether metrics count (PODKIT_METRICS, default on); read when a metric or the middleware is made."""
    return env_bool("PODKIT_METRICS", True)


class Uncounted:
    """A metric while counting is off: takes every label and update, and keeps nothing."""

    def labels(self, *values):
        return self

    def inc(self, amount=1):
        pass

    def observe(self, value):
        pass


def counter(name, documentation, labelnames):
    """A prometheus_client Counter, or Uncounted with PODKIT_METRICS=0: every service's counters come here."""
    return Counter(name, documentation, labelnames) if counting() else Uncounted()


def histogram(name, documentation, labelnames):
    """A Histogram of LATENCY_BUCKETS, or Uncounted with PODKIT_METRICS=0."""
    return Histogram(name, documentation, labelnames, buckets=LATENCY_BUCKETS) if counting() else Uncounted()


REQUESTS = counter(
    "http_requests_total", "Requests answered, by endpoint and HTTP status", ["endpoint", "status"]
)
REQUEST_SECONDS = histogram(
    "http_request_duration_seconds", "Time to answer a request, by endpoint", ["endpoint"]
)
PROBE_ANSWERS = counter(
    "probe_answers_total", "Probe answers, by probe endpoint and result", ["probe", "result"]
)


class PodCollector:
    """What is read at scrape time rather than counted: the drain state and the build."""

    def collect(self):
        yield GaugeMetricFamily(
            "pod_draining",
            "1 while the pod drains (podkit.fault's readiness switch)",
            value=fault.readiness_reason() is not None,
        )
        yield InfoMetricFamily("build", "The image's version and git commit (build args)", value=build_info())


@cache
def scrape_registry():
    """The registry a scrape reads: all processes' files in multiprocess mode, else this process's metrics."""
    if os.environ.get(metricsdir.ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # reads the files anew at every scrape
    else:
        registry = REGISTRY
    registry.register(PodCollector())
    return registry


@require_safe
def metrics(request):
    """GET /metrics: Prometheus's text format (the one answer that is not JSON; its errors still are)."""
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)


def endpoint(request):
    """The route that answered ("/get-config"), or "unmatched": a bounded label, never the raw path."""
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None else UNMATCHED


class MetricsMiddleware:
    """Counts every answer by endpoint and status, its latency, and probe answers by result."""

    def __init__(self, get_response):
        if not counting():
            raise MiddlewareNotUsed("PODKIT_METRICS=0: requests are not counted")
        self.get_response = get_response
        # (endpoint, status, probe state) -> the metrics' children it updates: labels() validates and locks
        # on every call, a third of what counting a request cost. Bounded as the labels are.
        self.children = {}

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        key = (endpoint(request), response.status_code, getattr(response, "probe_state", None))
        children = self.children.get(key) or self.children.setdefault(key, self.children_of(*key))
        children[0].observe(elapsed)
        for child in children[1:]:
            child.inc()
        return response

    @staticmethod
    def children_of(where, status, probe_state):
        """The histogram child to observe, then the counter children to increment, for one kind of answer."""
        children = [REQUEST_SECONDS.labels(where), REQUESTS.labels(where, str(status))]
        if probe_state is not None:
            children.append(PROBE_ANSWERS.labels(where, probe_state))
        return children
