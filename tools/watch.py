"""Watch the frontend answer, one line a second: which pod answered, what failed and how, how fast.

    python3 tools/watch.py [URL] [--rate 10] [--timeout 1]      (./manage.sh watch [URL] runs this)

URL is the frontend's address, by default its NodePort on this node (http://127.0.0.1:30080). On a steady
clock, `--rate` times a second (at most 20), watch sends GET /who-am-i, each on a new connection with its
own `--timeout` (connect and answer, in all), so every call can land on another pod, as a browser's would.
Each call is either an answer, by the pod it names (`{"name": ..., "code": ...}`), or a failure of one of
these kinds, the words the live page uses too:

    connection refused   nothing listens at the address (the pod is gone, no endpoint yet)
    connection reset     the connection was made, then closed or reset with no answer
    timeout              no whole answer within --timeout
    HTTP <status>        an error status, with the answer's error text (e.g. 503 while the backend is away)
    wrong JSON           a 2xx answer that is not a JSON object with a name and a code
    connection failed    any other network error (no route to the host, a name that does not resolve)

Until the first answer it shows one progress line: how long it has waited and the last failure. Then each
second it prints a line of what came back in that second: answers by pod, failures by kind, and the p50
and p99 of the answers' latency (failures have no latency worth the name: a refusal takes microseconds, a
timeout the whole timeout). Ctrl-C stops sending, waits for the calls in flight (at most --timeout; a
second Ctrl-C does not) and prints a summary of every call, those made while waiting too: sent, answered by
pod, failed by kind, and the longest gap with no answer (between two answers, or between the start or the
end of the watch and the nearest answer).

Every call carries `X-Request-ID: watch-<run>-<n>`, which the services echo and end their access lines
with, so a pod's log shows which of them it answered; the tests count them there.

Exit status: 0 when at least one call was answered, 1 when none was, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import queue
import secrets
import signal
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

DEFAULT_URL = "http://127.0.0.1:30080"
PATH = "/who-am-i"
DEFAULT_RATE = 10
MAX_RATE = 20  # calls a second: enough to see a pod come and go, never a load test of a shared cluster
DEFAULT_TIMEOUT = 1.0
TIMEOUT_RANGE = (0.1, 5.0)  # with MAX_RATE, at most 100 calls in flight
MAX_BODY = 64 * 1024  # an answer is a few dozen bytes; more is read no further

REFUSED = "connection refused"
RESET = "connection reset"
TIMEOUT = "timeout"
WRONG_JSON = "wrong JSON"
FAILED = "connection failed"


# --- one call ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One call: when it was sent and when it ended (seconds since the watch started), and either the pod
    that answered or the failure's kind, with a detail for the kinds that have one."""

    sent: float
    ended: float
    pod: str | None = None
    failure: str | None = None
    detail: str = ""

    @property
    def latency(self) -> float:
        return self.ended - self.sent

    @property
    def failure_label(self) -> str:
        """The failure as the lines show and count it: its kind, and the detail in quotes if it has one."""
        return f'{self.failure} "{self.detail}"' if self.detail else str(self.failure)


def shorten(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify_answer(status: int, body: bytes) -> tuple[str | None, str | None, str]:
    """An HTTP answer -> (pod, failure, detail): a pod for a 2xx who-am-i answer, else the failure."""
    try:
        value = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        value = None
    if not 200 <= status < 300:
        error = value.get("error") if isinstance(value, dict) else None
        text = error if isinstance(error, str) else body.decode("utf-8", "replace")
        return None, f"HTTP {status}", shorten(text)
    if isinstance(value, dict) and isinstance(value.get("code"), str):
        name = value.get("name")
        if isinstance(name, str) and name:
            return name, None, ""
    return None, WRONG_JSON, shorten(body.decode("utf-8", "replace"), 40)


def classify_error(exc: BaseException) -> tuple[str, str]:
    """A network error (no HTTP answer) -> (failure, detail)."""
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED, ""
    if isinstance(exc, TimeoutError):
        return TIMEOUT, ""
    # RemoteDisconnected is a ConnectionResetError: closed before any answer; IncompleteRead: during one.
    if isinstance(exc, ConnectionError | http.client.IncompleteRead):
        return RESET, ""
    return FAILED, shorten(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)


# --- a second, and the whole run -----------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0-100): a value that was measured; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Tally:
    """What a set of outcomes adds up to: answers by pod and failures by kind (each in the order first seen),
    and the p50 and p99 of the answers' latency."""

    answered: Counter
    failed: Counter
    p50: float | None
    p99: float | None

    @property
    def total_answered(self) -> int:
        return sum(self.answered.values())

    @property
    def total_failed(self) -> int:
        return sum(self.failed.values())


def tally(outcomes: Iterable[Outcome]) -> Tally:
    outcomes = list(outcomes)
    answers = [o for o in outcomes if o.pod is not None]
    latencies = [o.latency for o in answers]
    return Tally(
        answered=Counter(o.pod for o in answers),
        failed=Counter(o.failure_label for o in outcomes if o.pod is None),
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
    )


def longest_gap(answered_at: Iterable[float], started: float, stopped: float) -> tuple[float, float]:
    """The longest stretch with no answer, as (from, to): between two answers, or between the watch's start
    or end and the nearest answer (a watch that ends during an outage has seen that much of it)."""
    bounds = [started, *sorted(answered_at), stopped]
    return max(itertools.pairwise(bounds), key=lambda pair: pair[1] - pair[0])


@dataclass(frozen=True)
class Summary:
    """The whole run: every call sent, how each ended, and the longest gap with no answer."""

    sent: int
    unfinished: int  # still in flight when the watch stopped (a second Ctrl-C does not wait)
    tally: Tally
    started: float
    stopped: float
    gap: tuple[float, float]


def summarise(outcomes: Sequence[Outcome], sent: int, started: float, stopped: float) -> Summary:
    answered_at = [o.ended for o in outcomes if o.pod is not None]
    return Summary(
        sent=sent,
        unfinished=sent - len(outcomes),
        tally=tally(outcomes),
        started=started,
        stopped=stopped,
        gap=longest_gap(answered_at, started, stopped),
    )


# --- the lines it prints -------------------------------------------------------------------------


def counts(counter: Counter) -> str:
    return ", ".join(f"{key} {n}" for key, n in counter.items())


def counted(word: str, counter: Counter) -> str:
    """`4 answered: frontend-x 4`, or `0 failed`."""
    total = sum(counter.values())
    return f"{total} {word}: {counts(counter)}" if counter else f"{total} {word}"


def milliseconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def clock(wall_start: float, t: float, decimals: int = 0) -> str:
    """HH:MM:SS (and `decimals` of a second) of `t` seconds after the watch started at `wall_start`."""
    text = datetime.fromtimestamp(wall_start + t).strftime("%H:%M:%S.%f")
    return text[: 9 + decimals] if decimals else text[:8]


def format_second(label: str, second: Tally, span: float = 1.0) -> str:
    """One line a second: `12:00:07  4 answered: frontend-x 4 | 6 failed: connection reset 6 | p50 ...`;
    the last line, cut short by Ctrl-C, says how short."""
    answered, failed = counted("answered", second.answered), counted("failed", second.failed)
    line = f"{label}  {answered} | {failed} | p50 {milliseconds(second.p50)}, p99 {milliseconds(second.p99)}"
    return line + (f" (the last {span:.1f} s)" if span < 1.0 else "")


def format_progress(url: str, waited: float, sent: int, last: Outcome | None) -> str:
    """The one line shown while nothing has answered yet."""
    text = f"waiting for {url} to answer: {waited:.0f} s, {sent} calls"
    return text + (f", last: {last.failure_label}" if last is not None else "")


def format_summary(url: str, summary: Summary, wall_start: float) -> list[str]:
    t = summary.tally
    sent = f"sent {summary.sent}, answered {t.total_answered}, failed {t.total_failed}"
    if summary.unfinished:
        sent += f", unfinished {summary.unfinished}"
    gap_from, gap_to = summary.gap
    ends = (
        "the start" if gap_from == summary.started else clock(wall_start, gap_from, 2),
        "the end" if gap_to == summary.stopped else clock(wall_start, gap_to, 2),
    )
    return [
        f"--- {url}: {summary.stopped - summary.started:.1f} s ---",
        sent,
        f"answered by pod: {counts(t.answered) or 'none'}",
        f"failed by kind: {counts(t.failed) or 'none'}",
        f"latency of the answers: p50 {milliseconds(t.p50)}, p99 {milliseconds(t.p99)}",
        f"longest gap with no answer: {gap_to - gap_from:.2f} s (from {ends[0]} to {ends[1]})",
    ]


# --- I/O -----------------------------------------------------------------------------------------


class Watcher:
    """Sends the calls on a steady clock, each in a thread of its own, and prints what comes back.

    The only I/O here: like tools/verify.py, everything else is a pure function of recorded outcomes, and the
    program needs only python3."""

    def __init__(self, url: str, rate: int, timeout: float, out=sys.stdout) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.url = f"http://{parts.netloc}{PATH}"
        self.rate, self.timeout, self.out = rate, timeout, out
        self.tag = f"watch-{secrets.token_hex(3)}"
        self.tty = out.isatty()
        self._t0 = time.monotonic()
        self.wall_start = time.time()
        self._done: queue.Queue[Outcome] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._progress_shown = False

    def now(self) -> float:
        return time.monotonic() - self._t0

    def call(self, number: int) -> Outcome:
        """One GET /who-am-i on a new connection, bounded by `timeout` from connect to the answer's end."""
        sent = self.now()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.connect()
            sock = connection.sock  # http.client lets go of it once a "Connection: close" answer starts
            sock.settimeout(max(0.01, self.timeout - (self.now() - sent)))
            connection.request(
                "GET",
                PATH,
                headers={
                    "X-Request-ID": f"{self.tag}-{number}",
                    "Connection": "close",
                    "User-Agent": "watch (tools/watch.py)",
                },
            )
            response = connection.getresponse()
            sock.settimeout(max(0.01, self.timeout - (self.now() - sent)))
            body = response.read(MAX_BODY)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(sent, self.now(), None, *classify_error(exc))
        finally:
            connection.close()
        ended = self.now()
        if ended - sent > self.timeout:
            return Outcome(sent, ended, None, TIMEOUT)
        return Outcome(sent, ended, *classify_answer(status, body))

    def _send(self, number: int) -> None:
        def run() -> None:
            self._done.put(self.call(number))

        thread = threading.Thread(target=run, name=f"call-{number}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _drain(self) -> list[Outcome]:
        outcomes = []
        while not self._done.empty():
            outcomes.append(self._done.get_nowait())
        return outcomes

    def _line(self, text: str) -> None:
        if self._progress_shown:  # on a terminal the progress line is still open: end it first
            print(file=self.out)
            self._progress_shown = False
        print(text, file=self.out, flush=True)

    def _progress(self, text: str) -> None:
        """On a terminal, one line rewritten in place; elsewhere (a pipe, a file) a line each time."""
        if self.tty:
            print(f"\r{text}\x1b[K", end="", file=self.out, flush=True)
            self._progress_shown = True
        else:
            self._line(text)

    def run(self, stop: threading.Event) -> Summary:
        """Watch until `stop` is set; returns the summary (printed too)."""
        self._line(
            f"watching {self.url}: {self.rate} calls a second, each on a new connection "
            f"(timeout {self.timeout:g} s); Ctrl-C stops and sums up"
        )
        self._line(f"each call carries X-Request-ID {self.tag}-<n>; the pods' access lines end with it")
        outcomes: list[Outcome] = []
        answered, last_failure, sent = False, None, 0
        started = self.now()
        next_send, next_line = started, started + 1.0
        while not stop.is_set():
            now = self.now()
            if now >= next_send:
                self._send(sent)
                sent += 1
                # A steady clock: a late tick (a stalled machine) is not made up for with a burst.
                next_send = max(next_send + 1.0 / self.rate, now)
            if now >= next_line:
                second = self._drain()
                outcomes += second
                answered = answered or any(o.pod is not None for o in second)
                last_failure = next((o for o in reversed(second) if o.pod is None), last_failure)
                if answered:
                    self._line(format_second(clock(self.wall_start, next_line), tally(second)))
                else:
                    self._progress(format_progress(self.url, now - started, sent, last_failure))
                next_line += 1.0
                self._threads = [thread for thread in self._threads if thread.is_alive()]
            stop.wait(max(0.0, min(next_send, next_line) - self.now()))
        stopped = self.now()
        for thread in self._threads:  # each call ends within its timeout
            thread.join(max(0.0, stopped + self.timeout + 1.0 - self.now()))
        second = self._drain()
        outcomes += second
        if self.tty and not self._progress_shown:
            print(file=self.out)  # past the ^C the terminal echoed
        if second and (answered or any(o.pod is not None for o in second)):
            self._line(
                format_second(clock(self.wall_start, stopped), tally(second), stopped - next_line + 1.0)
            )
        summary = summarise(outcomes, sent, started, stopped)
        for line in format_summary(self.url, summary, self.wall_start):
            self._line(line)
        return summary


# --- CLI -----------------------------------------------------------------------------------------


def watch_url(text: str) -> str:
    """The frontend's address: http://HOST[:PORT], with no path but /who-am-i itself."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme != "http" or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http://HOST[:PORT] address (e.g. {DEFAULT_URL})"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number from 0 to 65535
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} has no valid port number") from None
    if parts.path not in ("", "/", PATH) or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give the frontend's address only (e.g. {DEFAULT_URL}); watch calls its {PATH}"
        )
    return text


def rate(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_RATE:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of calls a second from 1 to {MAX_RATE}: {text!r}"
        )
    return value


def timeout(text: str) -> float:
    low, high = TIMEOUT_RANGE
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be seconds from {low:g} to {high:g}: {text!r}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="watch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "url", nargs="?", default=DEFAULT_URL, type=watch_url, help=f"the frontend (default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--rate",
        type=rate,
        default=DEFAULT_RATE,
        help=f"calls a second, 1-{MAX_RATE} (default {DEFAULT_RATE})",
    )
    parser.add_argument(
        "--timeout",
        type=timeout,
        default=DEFAULT_TIMEOUT,
        help=f"seconds each call may take, connect to answer (default {DEFAULT_TIMEOUT:g})",
    )
    return parser.parse_args(argv)


def stop_on_signals() -> threading.Event:
    """Ctrl-C (SIGINT) or SIGTERM sets the event; a second Ctrl-C ends the program at once."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def main(argv: Sequence[str] | None = None, stop: threading.Event | None = None, out=sys.stdout) -> int:
    args = parse_args(argv)
    watcher = Watcher(args.url, args.rate, args.timeout, out)
    summary = watcher.run(stop if stop is not None else stop_on_signals())
    return 0 if summary.tally.total_answered else 1


if __name__ == "__main__":
    sys.exit(main())
