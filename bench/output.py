"""What the benchmark hands back: results.json, a table for the terminal, the targets, a PNG chart."""

import json
import statistics

# The performance targets, on this machine, each judged from one run.
WHO_AM_I_MIN_RATIO = 0.6  # x the ceiling's req/s
HEALTH_MIN_RATIO = 0.5  # x the ceiling's req/s
HEALTH_MIN_OF_WHO_AM_I = 0.8  # x /who-am-i's req/s
WHO_AM_I_MAX_P99_OF_CEILING = 1.5  # x the ceiling's p99
HEALTH_MAX_P99_MS = 15.0
HEALTH_MAX_BACKEND_CALLS = 0.05  # backend /ping requests per /health
METRICS_MAX_CPU_ON_OFF = 1.15  # CPU per request with metrics on, x with them off
COLD_START_MAX_S = 1.5
IDLE_SIGTERM_MAX_S = 1.0
FRONTEND_MAX_RSS_MIB = 120.0
TARGET_CONCURRENCY = 16
THROUGHPUT_CONCURRENCIES = (16, 64)
REPORTED = "(reported)"


def write_json(results, path):
    path.write_text(json.dumps(results, indent=2) + "\n")


def find_row(results, service, path, concurrency):
    for row in results["load"]:
        if (row["service"], row["path"], row["c"]) == (service, path, concurrency):
            return row
    return None


def targets(results):
    """Each target: what was measured, the limit, and whether it was met (None: not measured this run)."""
    items = throughput_targets(results)
    health = find_row(results, "frontend", "/health", TARGET_CONCURRENCY)
    items.append(
        target(
            f"/health p99 ms at c={TARGET_CONCURRENCY}, 0 errors",
            health and health["p99_ms"],
            f"< {HEALTH_MAX_P99_MS}",
            health and health["p99_ms"] < HEALTH_MAX_P99_MS and health["errors"] == 0,
        )
    )
    for concurrency in THROUGHPUT_CONCURRENCIES:
        health = find_row(results, "frontend", "/health", concurrency)
        calls = health and health.get("backend_calls_per_req")
        name = f"/health backend /ping calls per request at c={concurrency}"
        if concurrency == TARGET_CONCURRENCY:
            items.append(at_most(name, calls, HEALTH_MAX_BACKEND_CALLS))
        else:
            items.append(target(name, calls, REPORTED, None))
    # One per endpoint measured: what counting metrics costs it.
    endpoints = dict.fromkeys(
        (row["service"], row["path"]) for row in results["load"] if row["service"] != "bare"
    )
    for service, path in endpoints:
        row = find_row(results, service, path, TARGET_CONCURRENCY)
        ratio = row and row.get("cpu_on_off")
        name = f"{service} {path} CPU/req metrics on / off, c={TARGET_CONCURRENCY}"
        items.append(at_most(name, ratio, METRICS_MAX_CPU_ON_OFF))
    return items + lifecycle_targets(results)


def throughput_targets(results):
    """Req/s against the ceiling's and /who-am-i's, and /who-am-i's p99 against the ceiling's, at c=16, 64."""
    items = []
    for c in THROUGHPUT_CONCURRENCIES:
        bare = find_row(results, "bare", "/who-am-i", c)
        who = find_row(results, "frontend", "/who-am-i", c)
        health = find_row(results, "frontend", "/health", c)
        items += [
            at_least(
                f"/who-am-i / bare req/s at c={c}, 0 errors", who and who["ratio"], WHO_AM_I_MIN_RATIO, who
            ),
            at_least(
                f"/health / bare req/s at c={c}, 0 errors",
                health and health["ratio"],
                HEALTH_MIN_RATIO,
                health,
            ),
            at_least(
                f"/health / /who-am-i req/s at c={c}, 0 errors",
                quotient(health, who, "rps"),
                HEALTH_MIN_OF_WHO_AM_I,
                health,
                who,
            ),
        ]
        p99 = quotient(who, bare, "p99_ms")
        items.append(at_most(f"/who-am-i p99 / bare p99 at c={c}", p99, WHO_AM_I_MAX_P99_OF_CEILING))
    return items


def lifecycle_targets(results):
    """Cold start and idle SIGTERM of the frontend, and its memory."""
    frontend = results.get("lifecycle", {}).get("frontend")
    cold = frontend and round(statistics.median(frontend["cold_start_s"]), 3)
    idle = frontend and round(statistics.median(run["seconds"] for run in frontend["sigterm_idle"]), 3)
    memory = results["memory_after_warmup"]["frontend"]
    # A pod's RSS is what its memory cgroup counts (cAdvisor's container_memory_rss): each page once, however
    # many workers map it. Without a cgroup of its own (gunicorn mode) the sum over processes stands in,
    # counting the pages the preloaded workers share once per process: an upper bound.
    if "cgroup_anon_mib" in memory:
        rss_name, rss = "frontend pod RSS (cgroup anon), MiB", memory["cgroup_anon_mib"]
    else:
        rss_name, rss = "frontend RSS summed over master+workers, MiB", memory["rss_mib"]
    return [
        at_most("frontend cold start to /startup 200, s (median)", cold, COLD_START_MAX_S),
        at_most("frontend idle SIGTERM to exit, s (median)", idle, IDLE_SIGTERM_MAX_S),
        at_most(rss_name, rss, FRONTEND_MAX_RSS_MIB),
    ]


def quotient(row, other, key):
    """row[key] / other[key], for two rows of the load table; None when either is missing or zero."""
    if not row or not other or not row[key] or not other[key]:
        return None
    return round(row[key] / other[key], 3)


def at_least(name, value, limit, *rows):
    """value >= limit, and none of the rows it comes from had errors."""
    met = value is not None and value >= limit and all(row["errors"] == 0 for row in rows)
    return target(name, value, f">= {limit}", met)


def at_most(name, value, limit):
    """value <= limit."""
    return target(name, value, f"<= {limit}", value is not None and value <= limit)


def target(name, value, limit, met):
    """met is None where the value was not measured, or is only reported (limit REPORTED)."""
    judged = value is not None and limit != REPORTED
    return {"target": name, "value": value, "limit": limit, "met": bool(met) if judged else None}


def table(results):
    parts = [load_table(results), ""]
    if any(row["cpu_ms_per_req_metrics_off"] is not None for row in results["load"]):
        parts += [metrics_cost_table(results), ""]
    if results.get("compared"):
        parts += [compare_table(results), ""]
    if "lifecycle" in results:
        parts += [lifecycle_table(results), ""]
    parts += [memory_table(results), ""]
    if results.get("cpu_throttling_during_load"):
        parts += [throttling_line(results["cpu_throttling_during_load"]), ""]
    return "\n".join([*parts, targets_table(results)])


def throttling_line(throttling):
    """How much each pod's CPU limit held it back while the load cells ran."""
    pods = ", ".join(
        f"{name} {data['throttled_share']:.0%} of {data['periods']} periods ({data['throttled_s']:.1f} s)"
        if data is not None
        else f"{name} unknown (restarted)"
        for name, data in throttling.items()
    )
    return f"CPU limit (CFS quota) throttled during the load cells: {pods}"


def load_table(results):
    repeat = results["wrk"]["repeat"]
    lines = [
        f"load: wrk {results['wrk']['duration_s']} s per cell, {repeat} round(s), medians; "
        f"ratio = req/s / bare req/s in the same round (range over rounds)",
        "cpu = CPU time per request of the services serving it (the bare app, or backend + frontend); "
        "backend calls = the backend's count of the endpoint called, per request (pods' probes included)",
        f"{'endpoint':<22} {'c':>3} {'req/s':>9} {'x bare':>7} {'range':>13} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'errors':>6} {'spread':>7} {'cpu ms/req':>10} {'backend calls':>13}",
    ]
    for row in results["load"]:
        name = "bare (ceiling)" if row["service"] == "bare" else f"{row['service']} {row['path']}"
        low, high = row["ratio_range"] or (0, 0)
        spread = f"{row['rps_spread']:.0%}" if row["rps_spread"] is not None and repeat > 1 else "-"
        lines.append(
            f"{name:<22} {row['c']:>3} {row['rps']:>9.1f} {row['ratio']:>7.2f} {f'{low:.2f}-{high:.2f}':>13}"
            f" {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} {row['errors']:>6} {spread:>7}"
            f" {row.get('cpu_ms_per_req') or '-':>10} {dash(row['backend_calls_per_req']):>13}"
        )
    return "\n".join(lines)


def metrics_cost_table(results):
    """Per endpoint: CPU per request with metrics on (the pair above) and off (the second pair)."""
    lines = [
        "what metrics cost: CPU ms/req with them on, and off (a second pair, PODKIT_METRICS=0, same rounds)",
        f"{'endpoint':<22} {'c':>3} {'on':>7} {'off':>7} {'on/off':>7} {'errors off':>10}",
    ]
    for row in results["load"]:
        if row["service"] != "bare":
            lines.append(
                f"{row['service'] + ' ' + row['path']:<22} {row['c']:>3} {dash(row['cpu_ms_per_req']):>7}"
                f" {dash(row['cpu_ms_per_req_metrics_off']):>7} {dash(row['cpu_on_off']):>7}"
                f" {dash(row['errors_metrics_off']):>10}"
            )
    return "\n".join(lines)


def compare_table(results):
    """Per endpoint: the --compare ref's services, then this tree's, measured in the same rounds."""
    ref = results["compared"]
    lines = [
        f"{ref} -> this tree (a third pair, same rounds; ratio to the same ceiling)",
        f"{'endpoint':<22} {'c':>3} {'x bare':>14} {'p99 ms':>16} {'cpu ms/req':>16}",
    ]
    for row in results["load"]:
        before = row.get("compared")
        if before:
            lines.append(
                f"{row['service'] + ' ' + row['path']:<22} {row['c']:>3}"
                f" {before['ratio']:>6.2f} -> {row['ratio']:<4.2f}"
                f" {before['p99_ms']:>7.1f} -> {row['p99_ms']:<6.1f}"
                f" {dash(before['cpu_ms_per_req']):>7} -> {dash(row['cpu_ms_per_req'])}"
            )
    return "\n".join(lines)


def dash(value):
    return "-" if value is None else value


def lifecycle_table(results):
    lines = [f"{'service':<9} {'cold start s':<22} {'SIGTERM to exit, idle s':<24} {'under load s':<14}"]
    pod = "pre_stop_s" in results["lifecycle"]["frontend"]["sigterm_idle"][0]
    if pod:
        lines[0] += "  pod deletion s (preStop + SIGTERM to exit)"
    for service, data in results["lifecycle"].items():
        idle = [run["seconds"] for run in data["sigterm_idle"]]
        loaded = data["sigterm_under_load"]
        line = (
            f"{service:<9} {numbers(data['cold_start_s']):<22} {numbers(idle):<24} "
            f"{loaded['seconds']:<5.2f} (c={loaded['concurrency']:<2})"
        )
        if pod:
            line += "   " + numbers(run["deletion_s"] for run in data["sigterm_idle"])
        lines.append(line)
    return "\n".join(lines)


def memory_table(results):
    """After warm-up: summed RSS and PSS of the processes, and where there is one, the pod's cgroup."""
    lines = [
        f"memory after warm-up, MiB: {'RSS summed':>10} {'PSS summed':>10} {'pod RSS':>8} "
        f"{'working set':>11} {'procs':>5}"
    ]
    for service, memory in results["memory_after_warmup"].items():
        cgroup = [memory.get("cgroup_anon_mib"), memory.get("cgroup_working_set_mib")]
        anon, working = ("-" if value is None else f"{value:.1f}" for value in cgroup)
        lines.append(
            f"  {service:<24} {memory['rss_mib']:>10.1f} {memory['pss_mib']:>10.1f} {anon:>8} {working:>11}"
            f" {memory['processes']:>5}"
        )
    return "\n".join(lines)


def numbers(values):
    return " ".join(f"{value:.2f}" for value in values)


def targets_table(results):
    marks = {True: "ok", False: "MISSED", None: "not measured"}
    lines = ["targets:"]
    for item in results["targets"]:
        mark = "reported" if item["limit"] == REPORTED and item["value"] is not None else marks[item["met"]]
        lines.append(f"  {mark:<12} {item['target']:<56} {dash(item['value'])!s:>8}  {item['limit']}")
    return "\n".join(lines)


def write_chart(results, path):
    """A PNG of the load table: ratio to the ceiling and p99 per endpoint and concurrency."""
    try:
        import matplotlib  # optional: only the chart needs it

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"no chart: matplotlib is not installed (pip install -r bench/requirements.txt); not {path}"
    rows = [row for row in results["load"] if row["service"] != "bare"]
    names = list(dict.fromkeys(f"{row['service']}\n{row['path']}" for row in rows))
    levels = sorted({row["c"] for row in rows})
    figure, (ratio_axes, p99_axes) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(levels)
    for index, concurrency in enumerate(levels):
        chosen = [row for row in rows if row["c"] == concurrency]
        offsets = [position + index * width for position in range(len(chosen))]
        bars = ratio_axes.bar(offsets, [row["ratio"] for row in chosen], width, label=f"c={concurrency}")
        ratio_axes.bar_label(bars, fmt="%.2f", fontsize=7)
        bars = p99_axes.bar(offsets, [row["p99_ms"] for row in chosen], width, label=f"c={concurrency}")
        p99_axes.bar_label(bars, fmt="%.0f", fontsize=7)
    ticks = [position + width * (len(levels) - 1) / 2 for position in range(len(names))]
    ratio_axes.axhline(WHO_AM_I_MIN_RATIO, color="grey", linestyle="--", linewidth=1)
    ratio_axes.set(
        title=f"requests/s as a share of the bare-WSGI ceiling (line: {WHO_AM_I_MIN_RATIO:g})",
        ylabel="x bare",
        ylim=(0, 1.1),
    )
    p99_axes.axhline(HEALTH_MAX_P99_MS, color="grey", linestyle="--", linewidth=1)
    p99_axes.set(title=f"p99 latency (line: the /health target, {HEALTH_MAX_P99_MS:g} ms)", ylabel="ms")
    for axes in (ratio_axes, p99_axes):
        axes.set_xticks(ticks, names, fontsize=8)
        axes.legend()
    machine = results["machine"]
    commit = results.get("source", {}).get("commit") or "?"
    figure.suptitle(
        f"{results['mode']} mode, commit {commit}, {machine['nproc']} cores, {machine['date'][:10]}",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return f"wrote {path}"
