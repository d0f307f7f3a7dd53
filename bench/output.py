"""What the benchmark hands back: results.json, a table for the terminal, the targets, a PNG chart."""

import json
import statistics

# The performance targets, on this machine.
WHO_AM_I_MIN_RATIO = 0.4
HEALTH_MAX_P99_MS = 15.0
COLD_START_MAX_S = 1.5
IDLE_SIGTERM_MAX_S = 1.0
FRONTEND_MAX_RSS_MIB = 120.0
TARGET_CONCURRENCY = 16


def write_json(results, path):
    path.write_text(json.dumps(results, indent=2) + "\n")


def find_row(results, service, path, concurrency):
    for row in results["load"]:
        if (row["service"], row["path"], row["c"]) == (service, path, concurrency):
            return row
    return None


def targets(results):
    """Each target: what was measured, the limit, and whether it was met (None: not measured this run)."""
    who = find_row(results, "frontend", "/who-am-i", TARGET_CONCURRENCY)
    health = find_row(results, "frontend", "/health", TARGET_CONCURRENCY)
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
        target(
            "/who-am-i / bare at c=16, 0 errors",
            who and who["ratio"],
            f">= {WHO_AM_I_MIN_RATIO}",
            who and who["ratio"] >= WHO_AM_I_MIN_RATIO and who["errors"] == 0,
        ),
        target(
            "/health p99 ms at c=16, 0 errors",
            health and health["p99_ms"],
            f"< {HEALTH_MAX_P99_MS}",
            health and health["p99_ms"] < HEALTH_MAX_P99_MS and health["errors"] == 0,
        ),
        target(
            "frontend cold start to /startup 200, s (median)",
            cold,
            f"<= {COLD_START_MAX_S}",
            cold and cold <= COLD_START_MAX_S,
        ),
        target(
            "frontend idle SIGTERM to exit, s (median)",
            idle,
            f"<= {IDLE_SIGTERM_MAX_S}",
            idle and idle <= IDLE_SIGTERM_MAX_S,
        ),
        target(rss_name, rss, f"<= {FRONTEND_MAX_RSS_MIB}", rss <= FRONTEND_MAX_RSS_MIB),
    ]


def target(name, value, limit, met):
    return {"target": name, "value": value, "limit": limit, "met": None if value is None else bool(met)}


def table(results):
    parts = [load_table(results), ""]
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
        f"ratio = req/s / bare req/s in the same round (range over rounds); "
        f"cpu = CPU time of all services per request",
        f"{'endpoint':<22} {'c':>3} {'req/s':>9} {'x bare':>7} {'range':>13} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'errors':>6} {'spread':>7} {'cpu ms/req':>10}",
    ]
    for row in results["load"]:
        name = "bare (ceiling)" if row["service"] == "bare" else f"{row['service']} {row['path']}"
        low, high = row["ratio_range"] or (0, 0)
        spread = f"{row['rps_spread']:.0%}" if row["rps_spread"] is not None and repeat > 1 else "-"
        lines.append(
            f"{name:<22} {row['c']:>3} {row['rps']:>9.1f} {row['ratio']:>7.2f} {f'{low:.2f}-{high:.2f}':>13}"
            f" {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} {row['errors']:>6} {spread:>7}"
            f" {row.get('cpu_ms_per_req') or '-':>10}"
        )
    return "\n".join(lines)


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
        value = "-" if item["value"] is None else item["value"]
        lines.append(f"  {marks[item['met']]:<12} {item['target']:<48} {value!s:>8}  {item['limit']}")
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
        title="requests/s as a share of the bare-WSGI ceiling (line: 0.4)", ylabel="x bare", ylim=(0, 1.1)
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
