"""Benchmark both services the way the pods run them, against the bare-WSGI ceiling of the same stack.

    python -m bench                      # 8 s cells, c=16 and 64; as pods, writes bench/results.json + chart
    python -m bench --repeat 3           # every cell three times: medians, and how much they swung
    python -m bench --smoke --output /tmp/r.json --no-chart     # 1 s cells at c=4 (the test does this)
    python -m bench --rollouts           # rollouts under load, as pods: sent, failed, reset, failure windows
    python -m bench --compare main       # beside this tree's services, those of a git ref, same rounds

Absolute requests/s on a shared 2-core machine swing; the ratio of each endpoint to the bare app
measured in the same round (same repeat, same concurrency) is the number to compare across runs.
"""

import argparse
import contextlib
import io
import os
import platform
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from testbed.processes import GUNICORN

from . import lifecycle, output, wrk
from .stacks import EXPERIMENT_ENV, ROOT, STACKS, ContainerStack, ContainersUnavailable

ENDPOINTS = [
    ("frontend", "/who-am-i"),
    ("frontend", "/health"),
    ("frontend", "/startup"),
    ("backend", "/get-config"),
    ("backend", "/ping"),
]
CEILING = ("bare", "/who-am-i")
# The backend endpoint each of these frontend endpoints calls: its count at the backend, per request, is the
# endpoint's amplification.
BACKEND_CALLS = {("frontend", "/health"): "/ping", ("frontend", "/startup"): "/get-config"}
# The second pair's environment: every metric counting off (podkit/metrics.py), to measure what it costs.
METRICS_OFF = {"PODKIT_METRICS": "0"}
METRICS_OFF_VARIANT = "metrics off"
# What --compare takes from the git ref: the services and what they import.
SERVICE_TREES = ["backend_site", "frontend_site", "podkit"]
GUNICORN_KEYS = ["workers", "worker_class", "threads", "preload_app", "keepalive", "accesslog", "backlog"]
GUNICORN_KEYS += ["worker_connections", "timeout", "graceful_timeout"]
COMMITTED_RESULTS = ROOT / "bench" / "results.json"
COMMITTED_CHART = ROOT / "bench" / "chart.png"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode",
        choices=["auto", *sorted(STACKS)],
        default="auto",
        help="containers: the real images as pods (podman, root); gunicorn: the same gunicorn config as"
        " processes; auto (default): containers where podman runs them, else gunicorn",
    )
    parser.add_argument(
        "--rollouts",
        action="store_true",
        help="instead of wrk cells: the rollout scenarios under steady load (tests/e2e/test_rollouts.py,"
        " the real images as pods) and their numbers: requests sent, failed, reset, failure windows",
    )
    parser.add_argument(
        "--no-metrics-off",
        action="store_true",
        help="skip the second backend+frontend with PODKIT_METRICS=0 whose CPU per request, beside the"
        " first pair's, says what metrics cost",
    )
    parser.add_argument(
        "--compare",
        metavar="REF",
        help="gunicorn mode: also run the services of git REF (a commit, branch or tag) as a third pair, in"
        " the same rounds, and show each endpoint's ratio to the ceiling, p99 and CPU per request beside"
        " this tree's: what a change did, with the machine's swings cancelled",
    )
    parser.add_argument(
        "--no-cpu-limits",
        action="store_true",
        help="containers mode: run the pods without their CPU limit (what CFS throttling costs)",
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds per cell (default 8)")
    parser.add_argument("--concurrency", default="16,64", help="comma list of wrk connections")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every cell (default 1)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of wrk per endpoint first; 0: a few requests"
    )
    parser.add_argument(
        "--lifecycle-repeats", type=int, default=3, help="cold starts per service (default 3; 0: none)"
    )
    parser.add_argument(
        "--paths", default="", help="comma list: only these endpoints (the ceiling always runs)"
    )
    parser.add_argument(
        "--wrk-threads", type=int, default=1, help="wrk threads (default 1: leave the cores to us)"
    )
    parser.add_argument(
        "--output", type=Path, help="results JSON (default: bench/results.json in containers mode, else none)"
    )
    parser.add_argument("--chart", type=Path, help="PNG chart (default: bench/chart.png as for --output)")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG (no matplotlib needed)")
    parser.add_argument("--label", default="", help="a note stored in the results (e.g. the experiment)")
    parser.add_argument(
        "--smoke", action="store_true", help="1 s cells at c=4, one round: keeps this working"
    )
    args = parser.parse_args(argv)
    if args.compare:
        if args.mode == "containers":
            parser.error("--compare runs as processes (a second set of images is not built): --mode gunicorn")
        args.mode = "gunicorn"
    args.mode = choose_mode(args.mode)
    if args.mode == "containers" and not (args.no_cpu_limits or args.smoke):
        # The committed set is the pods' run as the manifests set them; anything else is written when asked.
        args.output = args.output or COMMITTED_RESULTS
        args.chart = args.chart or COMMITTED_CHART
    if args.no_cpu_limits and args.mode == "gunicorn":
        parser.error("--no-cpu-limits is for containers mode: gunicorn mode's processes have no CPU limit")
    if args.smoke:
        args.duration, args.concurrency, args.repeat, args.warmup, args.lifecycle_repeats = 1, "4", 1, 0, 1
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    chosen = {path for path in args.paths.split(",") if path}
    args.endpoints = [endpoint for endpoint in ENDPOINTS if not chosen or endpoint[1] in chosen]
    return args


def rollouts():
    """The rollout scenarios are e2e tests (tests/e2e/test_rollouts.py): run them and let their measurements
    (the e2e summary at the end) be this mode's table, so the benchmark and CI report one set of numbers."""
    test = ROOT / "tests" / "e2e" / "test_rollouts.py"
    command = [sys.executable, "-m", "pytest", str(test), "-p", "no:django", "-q", "--no-header", "-rN"]
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def main(argv=None):
    args = parse_args(argv)
    if args.rollouts:
        return rollouts()
    # SIGTERM (a CI timeout, a kill) ends the run through the `finally` below: no service is left running.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        results = run(args)
    except (ContainersUnavailable, CompareUnavailable, wrk.WrkMissing) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(output.table(results))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        output.write_json(results, args.output)
        print(f"\nwrote {args.output}")
    if args.chart and not args.no_chart:
        print(output.write_chart(results, args.chart))
    return 0


def run(args):
    """Services up, then everything measured against them; nothing is left running afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        options = {"cpu_limits": False} if args.no_cpu_limits else {}
        compare_root = args.compare and export_services(args.compare, Path(tmp) / "compare")
        stack = STACKS[args.mode](tmp, **options)
        try:
            results = measure(stack, args, compare_root)
        finally:
            stack.close()
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["targets"] = output.targets(results)
    return results


def choose_mode(mode):
    if mode != "auto":
        return mode
    return "containers" if ContainerStack.can_run() else "gunicorn"


def measure(stack, args, compare_root=None):
    """In this order: warm-up, memory, the load cells, memory again, then start/stop of fresh services."""
    results = {"label": args.label, "mode": stack.mode, "source": source_info()}
    results |= {"machine": machine_info(), "wrk": wrk_info(args), "compared": args.compare}
    running = start_services(stack)
    # Other pairs whose endpoints run in the same rounds, each by its variant's name.
    variants = {}
    if not args.no_metrics_off:
        variants[METRICS_OFF_VARIANT] = start_pair(stack, env=METRICS_OFF)
    if compare_root:
        variants[args.compare] = start_pair(stack, root=compare_root)
    results["gunicorn"] = gunicorn_settings()
    results["pods"] = stack.describe()
    results["status"] = check_endpoints(running, args.endpoints)
    warm_up(running, [CEILING, *args.endpoints], args)
    for pair in variants.values():
        warm_up(pair, args.endpoints, args)
    results["memory_after_warmup"] = memory(stack, running)
    throttled_before = throttling(stack, running)
    runs = load_cells(stack, running, variants, args)
    for pair in variants.values():
        for server in pair.values():
            server.stop()  # done with: the start/stop measurements below run without them
    results["cpu_throttling_during_load"] = throttling_delta(throttled_before, throttling(stack, running))
    results["memory_after_load"] = memory(stack, running)
    results["load"] = aggregate(runs, args.endpoints, args.compare)
    if args.lifecycle_repeats > 0:
        load = wrk.Load(concurrency=min(16, max(args.concurrency)), seconds=max(2, args.duration // 2))
        results["lifecycle"] = lifecycle.measure(stack, running["backend"].url, args.lifecycle_repeats, load)
    return results


def start_services(stack):
    backend = stack.backend()
    return {"backend": backend, "frontend": stack.frontend(backend.url), "bare": stack.bare(backend.url)}


def start_pair(stack, **options):
    """Another backend and frontend (with `env`, or of the source tree `root`), the frontend calling this
    backend."""
    backend = stack.backend(**options)
    return {"backend": backend, "frontend": stack.frontend(backend.url, **options)}


def export_services(ref, folder):
    """The services of git `ref` (SERVICE_TREES), written under `folder`; a clear error for an unknown ref."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, *SERVICE_TREES], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise CompareUnavailable(f"--compare {ref}: {archive.stderr.decode(errors='replace').strip()}")
    folder.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder


class CompareUnavailable(RuntimeError):
    """--compare names nothing git can export here."""


def check_endpoints(running, endpoints):
    """One plain GET per endpoint before the load: anything but 200 is a finding, not a benchmark."""
    status = {}
    for service, path in [CEILING, *endpoints]:
        status[f"{service} {path}"] = requests.get(running[service].url + path, timeout=5).status_code
    return status


def warm_up(running, endpoints, args):
    for service, path in endpoints:
        url = running[service].url + path
        if args.warmup > 0:
            wrk.run(url, wrk.Load(max(args.concurrency), args.warmup, args.wrk_threads))
        else:
            for _ in range(lifecycle.WARM_REQUESTS):
                # A slow or failed answer is the load cells' finding to report, not a reason to stop here.
                with contextlib.suppress(requests.RequestException):
                    requests.get(url, timeout=2)


def memory(stack, running):
    return {name: stack.memory(server) for name, server in running.items()}


def throttling(stack, running):
    """Each pod's CFS counters; None when no service has a CPU limit to read (processes)."""
    readings = {name: stack.throttling(server) for name, server in running.items()}
    return readings if any(reading is not None for reading in readings.values()) else None


def throttling_delta(before, after):
    """Per pod during the load cells: share of scheduler periods in which the CPU limit stopped it."""
    if before is None:
        return None
    delta = {}
    for name in after:
        # No container, or a new one (its cgroup counts from zero): the share cannot be known.
        if before[name] is None or after[name] is None or after[name]["periods"] < before[name]["periods"]:
            delta[name] = None
            continue
        periods = after[name]["periods"] - before[name]["periods"]
        throttled = after[name]["throttled"] - before[name]["throttled"]
        delta[name] = {
            "periods": periods,
            "throttled_share": round(throttled / periods, 3) if periods else 0.0,
            "throttled_s": round(after[name]["throttled_s"] - before[name]["throttled_s"], 2),
        }
    return delta


def load_cells(stack, running, variants, args):
    """Every (round, concurrency): the ceiling first, then each endpoint, so ratios share their conditions;
    then each endpoint again on each variant's pair (metrics off, --compare)."""
    runs = []
    for round_ in range(args.repeat):
        for concurrency in args.concurrency:
            load = wrk.Load(concurrency, args.duration, args.wrk_threads)
            pairs = [(running, [CEILING, *args.endpoints], None)]
            pairs += [(pair, args.endpoints, variant) for variant, pair in variants.items()]
            for pair, endpoints, variant in pairs:
                for service, path in endpoints:
                    cell = {"round": round_, "service": service, "path": path, "c": concurrency}
                    cell["variant"] = variant
                    runs.append({**cell, **load_cell(stack, pair, service, path, load)})
                    print(progress(runs[-1]), file=sys.stderr, flush=True)
    return runs


def load_cell(stack, running, service, path, load):
    """One wrk run, plus the CPU time the services serving it spent per request meanwhile: the bare app's
    for the ceiling, the pair's (backend and frontend of `running`) for an endpoint. A frontend endpoint
    that calls the backend also gets the backend's calls per request (None where metrics are off).

    CPU per request hardly moves when other work competes for the cores (it only waits longer), so it
    separates small differences that requests/s, swinging with the machine's load, cannot.
    """
    servers = [running["bare"]] if (service, path) == CEILING else [running["backend"], running["frontend"]]
    backend_path = BACKEND_CALLS.get((service, path))
    # Scraped outside the CPU window: a scrape is not part of the cell's work.
    calls_before = backend_path and backend_requests(running["backend"].url, backend_path)
    before = sum(stack.cpu_seconds(server) for server in servers)
    summary = wrk.run(running[service].url + path, load)
    spent = sum(stack.cpu_seconds(server) for server in servers) - before
    calls_after = backend_path and backend_requests(running["backend"].url, backend_path)
    summary["cpu_ms_per_req"] = per_request(spent * 1000, summary["requests"])
    summary["backend_calls_per_req"] = (
        per_request(calls_after - calls_before, summary["requests"])
        if calls_before is not None and calls_after is not None
        else None
    )
    return summary


def per_request(total, count):
    return round(total / count, 3) if count else None


def backend_requests(backend_url, endpoint):
    """How many requests the backend has answered on `endpoint` so far, by its own /metrics."""
    return requests_counted(requests.get(backend_url + "/metrics", timeout=5).text, endpoint)


def requests_counted(metrics_text, endpoint):
    """http_requests_total{endpoint=...} summed over status, from Prometheus's text format; None when no
    request at all was counted (metrics off: PODKIT_METRICS=0)."""
    samples = [
        sample
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "http_requests_total"
    ]
    if not samples:
        return None
    return sum(sample.value for sample in samples if sample.labels.get("endpoint") == endpoint)


def progress(cell):
    calls = cell["backend_calls_per_req"]
    return (
        f"  round {cell['round'] + 1} c={cell['c']:<3} {cell['service']:>8} {cell['path']:<12}"
        f" {cell['variant'] or '':<11} {cell['rps']:>9.1f} req/s"
        f"  p99 {cell['p99_ms']:.1f} ms  cpu/req {cell['cpu_ms_per_req']} ms"
        f"  errors {cell['errors']}{'' if calls is None else f'  backend calls/req {calls}'}"
    )


def aggregate(runs, endpoints, compared=None):
    """One row per (service, path, concurrency): medians over rounds, errors summed, ratio to the ceiling,
    and beside it the same endpoint's CPU per request with metrics off, and the row of the --compare ref's
    services (`compared`, the ceiling's ratio from the same rounds)."""
    ceilings = {
        (r["round"], r["c"]): r["rps"]
        for r in runs
        if (r["service"], r["path"]) == CEILING and not r["variant"]
    }
    rows = []
    for service, path in [CEILING, *endpoints]:
        for concurrency in sorted({r["c"] for r in runs}):
            cells = [r for r in runs if (r["service"], r["path"], r["c"]) == (service, path, concurrency)]
            on = row(service, path, concurrency, [c for c in cells if c["variant"] is None], ceilings)
            on |= metrics_cost(on, [c for c in cells if c["variant"] == METRICS_OFF_VARIANT])
            at_ref = [c for c in cells if compared and c["variant"] == compared]
            on["compared"] = row(service, path, concurrency, at_ref, ceilings) if at_ref else None
            rows.append(on)
    return rows


def metrics_cost(on, off_cells):
    """CPU per request with metrics off (the second pair, same rounds), and on / off; None without it."""
    off = median_of(cell["cpu_ms_per_req"] for cell in off_cells)
    return {
        "cpu_ms_per_req_metrics_off": off,
        "cpu_on_off": round(on["cpu_ms_per_req"] / off, 3) if off and on["cpu_ms_per_req"] else None,
        "errors_metrics_off": sum(cell["errors"] for cell in off_cells) if off_cells else None,
        "runs_metrics_off": off_cells,
    }


def row(service, path, concurrency, cells, ceilings):
    rps = [cell["rps"] for cell in cells]
    ratios = [
        cell["rps"] / ceilings[cell["round"], concurrency]
        for cell in cells
        if ceilings[cell["round"], concurrency]
    ]
    median_rps = statistics.median(rps)
    return {
        "service": service,
        "path": path,
        "c": concurrency,
        "rps": round(median_rps, 1),
        "ratio": round(statistics.median(ratios), 3) if ratios else None,
        "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)] if ratios else None,
        "rps_spread": round((max(rps) - min(rps)) / median_rps, 3) if median_rps else None,
        "cpu_ms_per_req": median_of(cell["cpu_ms_per_req"] for cell in cells),
        "backend_calls_per_req": median_of(cell["backend_calls_per_req"] for cell in cells),
        "p50_ms": round(statistics.median(cell["p50_ms"] for cell in cells), 2),
        "p99_ms": round(statistics.median(cell["p99_ms"] for cell in cells), 2),
        "p99_ms_max": round(max(cell["p99_ms"] for cell in cells), 2),
        "errors": sum(cell["errors"] for cell in cells),
        "runs": cells,
    }


def median_of(values):
    known = [value for value in values if value is not None]
    return round(statistics.median(known), 3) if known else None


def source_info():
    """The commit measured, and whether the services differ from it (uncommitted changes)."""

    def git(*arguments):
        try:
            result = subprocess.run(
                ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=False
            )
        except OSError:  # no git: a copy of the tree, not a clone
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    changed = git("status", "--porcelain", "--", "backend_site", "frontend_site")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "services_changed": None if changed is None else bool(changed),
    }


def machine_info():
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
    }


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def wrk_info(args):
    return {
        "version": wrk.wrk_version(),
        "threads": args.wrk_threads,
        "duration_s": args.duration,
        "concurrency": args.concurrency,
        "repeat": args.repeat,
        "timeout_s": wrk.TIMEOUT_S,
        "started": time.strftime("%H:%M:%S"),
    }


def gunicorn_settings():
    """The settings gunicorn resolves from each service's config plus the environment (--print-config)."""
    env = {**os.environ, "GUNICORN_CMD_ARGS": os.environ.get("GUNICORN_CMD_ARGS", "")}
    settings = {
        "env": {k: os.environ.get(k) for k in EXPERIMENT_ENV},
        "version": subprocess.run(
            [str(GUNICORN), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }
    for service in ("backend", "frontend"):
        printed = subprocess.run(
            [str(GUNICORN), "--config", "gunicorn.conf.py", "--print-config"],
            cwd=ROOT / f"{service}_site",
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        values = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
        settings[service] = {k.strip(): v.strip() for k, v in values.items() if k.strip() in GUNICORN_KEYS}
    return settings
