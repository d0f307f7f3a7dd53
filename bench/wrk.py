"""Drive one URL with wrk and read its numbers back (bench/report.lua prints them as one JSON line)."""

import json
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPORTER = Path(__file__).with_name("report.lua")
MARKER = "BENCH-JSON "
# A request slower than this counts as a socket timeout error (wrk's own default is also 2 s).
TIMEOUT_S = 2


class WrkMissing(RuntimeError):
    """wrk is not installed (Debian: apt-get install wrk)."""


@dataclass(frozen=True)
class Load:
    """How hard to push: open connections, seconds, wrk threads."""

    concurrency: int
    seconds: int
    threads: int = 1


def wrk_path():
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing("wrk not found on PATH: apt-get install wrk")
    return path


def wrk_version():
    result = subprocess.run([wrk_path(), "--version"], capture_output=True, text=True, check=False)
    return (result.stdout or result.stderr).splitlines()[0].strip()


def command(url, load):
    threads = max(1, min(load.threads, load.concurrency))
    return [
        wrk_path(),
        f"-t{threads}",
        f"-c{load.concurrency}",
        f"-d{load.seconds}s",
        f"--timeout={TIMEOUT_S}s",
        "--latency",
        "-s",
        str(REPORTER),
        url,
    ]


def start(url, load):
    """Start wrk in the background (for the SIGTERM-under-load measurement); `finish` reads it."""
    return subprocess.Popen(command(url, load), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process):
    stdout, stderr = process.communicate(timeout=600)
    return parse(stdout, stderr, process.returncode)


def interrupt(process):
    """Stop a `start`ed wrk early (SIGINT: it stops and reports what it measured so far)."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    return finish(process)


def run(url, load):
    """Run wrk against `url` and return its summary (see `summarize`)."""
    return finish(start(url, load))


def parse(stdout, stderr, returncode):
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            return summarize(json.loads(line[len(MARKER) :]))
    raise RuntimeError(f"wrk exited {returncode} without a report:\n{stdout}\n{stderr}")


def summarize(raw):
    """requests/s, p50/p99 in ms, and errors = responses that are not 2xx plus socket errors."""
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    return {
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": round(raw["latency_us"]["p50"] / 1000, 3),
        "p99_ms": round(raw["latency_us"]["p99"] / 1000, 3),
        "max_ms": round(raw["latency_us"]["max"] / 1000, 3),
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "errors": raw["non_2xx"] + socket_errors,
        "error_detail": {"non_2xx": raw["non_2xx"], **{k: errors[k] for k in errors if k != "status"}},
    }
