"""tools/watch.py: the pure functions on recorded outcomes, its arguments, and its calls against local
servers that answer, fail or say nothing in each way it names (tests/integration/test_watch.py runs it in a
terminal against real gunicorn)."""

from __future__ import annotations

import http.client
import http.server
import io
import re
import socket
import struct
import threading
import time

import pytest

from testbed.net import free_port
from tools import watch
from tools.watch import Outcome

POD_A, POD_B = "frontend-5d9c7b6f4-x8k2p", "frontend-5d9c7b6f4-q7w2z"
GOOD = b'{"name": "frontend-5d9c7b6f4-x8k2p", "code": "BACKEND-4242"}'
UNAVAILABLE = (
    b'{"error": "backend /get-config unreachable: ConnectionError", "status": 503, '
    b'"name": "frontend-5d9c7b6f4-x8k2p", "code": null}'
)

# A deletion as watch records it: answers from A, a second of failures, then answers from B.
RECORDED = [
    Outcome(0.00, 0.003, POD_A),
    Outcome(0.10, 0.104, POD_A),
    Outcome(0.20, 0.201, None, watch.RESET),
    Outcome(0.30, 0.300, None, watch.REFUSED),
    Outcome(0.40, 1.400, None, watch.TIMEOUT),
    Outcome(0.50, 0.502, None, "HTTP 503", "backend /get-config unreachable: ConnectionError"),
    Outcome(0.60, 0.600, None, watch.REFUSED),
    Outcome(1.70, 1.710, POD_B),
    Outcome(1.80, 1.802, POD_B),
]


@pytest.fixture
def utc(monkeypatch):
    """Local time is UTC, so clock labels are the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --- classifying one call ----------------------------------------------------------------------


def test_classify_answer__a_who_am_i_answer_names_its_pod():
    """A 200 with a name and a code is an answer by that pod."""
    assert watch.classify_answer(200, GOOD) == (POD_A, None, "")


def test_classify_answer__an_error_status_is_http_status_with_the_error_text():
    """A 503 JSON error is the failure "HTTP 503" with the answer's error text."""
    assert watch.classify_answer(503, UNAVAILABLE) == (
        None,
        "HTTP 503",
        "backend /get-config unreachable: ConnectionError",
    )


def test_classify_answer__an_error_status_without_json_keeps_the_body_shortened():
    """gunicorn's own HTML error pages are not JSON: the body's text, on one line and shortened."""
    pod, failure, detail = watch.classify_answer(502, b"<html>\n<body>" + b"x" * 200 + b"</body></html>")
    assert (pod, failure) == (None, "HTTP 502")
    assert detail.startswith("<html> <body>xxx") and detail.endswith("...") and len(detail) == 60


@pytest.mark.parametrize(
    "body",
    [
        b"<html>hello</html>",
        b'["frontend-5d9c7b6f4-x8k2p"]',
        b'{"name": "frontend-5d9c7b6f4-x8k2p"}',
        b'{"name": "", "code": "BACKEND-4242"}',
        b'{"name": 7, "code": "BACKEND-4242"}',
        b"\xff\xfe",
    ],
)
def test_classify_answer__a_200_that_is_not_who_am_i_is_wrong_json(body):
    """Not JSON, not an object, or without a name and a code: "wrong JSON", with what came."""
    pod, failure, detail = watch.classify_answer(200, body)
    assert (pod, failure) == (None, watch.WRONG_JSON)
    assert detail


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectionRefusedError(111, "Connection refused"), watch.REFUSED),
        (TimeoutError(), watch.TIMEOUT),
        (ConnectionResetError(104, "Connection reset by peer"), watch.RESET),
        (http.client.RemoteDisconnected("Remote end closed connection without response"), watch.RESET),
        (http.client.IncompleteRead(b"{", 10), watch.RESET),
        (BrokenPipeError(32, "Broken pipe"), watch.RESET),
    ],
)
def test_classify_error__names_each_kind_of_network_failure(error, kind):
    """Refused, timed out, or made and then closed or reset with no answer: one word each, no detail."""
    assert watch.classify_error(error) == (kind, "")


def test_classify_error__anything_else_is_connection_failed_with_the_reason():
    """A name that does not resolve, no route to the host: "connection failed" and why."""
    assert watch.classify_error(socket.gaierror(-2, "Name or service not known")) == (
        watch.FAILED,
        "Name or service not known",
    )
    assert watch.classify_error(OSError(113, "No route to host")) == (watch.FAILED, "No route to host")


# --- a second and the whole run ----------------------------------------------------------------


def test_percentile__nearest_rank_of_measured_values():
    """p50 and p99 are values that were measured (nearest rank), None when there are none."""
    values = [n / 1000 for n in range(100, 0, -1)]
    assert watch.percentile(values, 50) == 0.05
    assert watch.percentile(values, 99) == 0.099
    assert watch.percentile([0.004], 99) == 0.004
    assert watch.percentile([], 50) is None


def test_tally__answers_by_pod_and_failures_by_kind_in_the_order_first_seen():
    """Counts per pod and per failure (HTTP ones with their text); latency over the answers only."""
    t = watch.tally(RECORDED)
    assert list(t.answered.items()) == [(POD_A, 2), (POD_B, 2)]
    assert list(t.failed.items()) == [
        (watch.RESET, 1),
        (watch.REFUSED, 2),
        (watch.TIMEOUT, 1),
        ('HTTP 503 "backend /get-config unreachable: ConnectionError"', 1),
    ]
    assert (t.total_answered, t.total_failed) == (4, 5)
    assert t.p50 == pytest.approx(0.003) and t.p99 == pytest.approx(0.010)


def test_longest_gap__between_two_answers():
    """The outage of a deletion: from the last answer of one pod to the first of the next."""
    assert watch.longest_gap([0.003, 0.104, 1.710, 1.802], 0.0, 2.0) == (0.104, 1.710)


def test_longest_gap__from_the_start_or_to_the_end():
    """A watch that starts or ends in an outage counts the part of it that it saw."""
    assert watch.longest_gap([5.0, 5.1], 0.0, 6.0) == (0.0, 5.0)
    assert watch.longest_gap([0.1, 0.2], 0.0, 6.0) == (0.2, 6.0)
    assert watch.longest_gap([], 0.0, 3.0) == (0.0, 3.0)


def test_summarise__counts_every_call_sent_and_the_ones_still_in_flight():
    """Sent is every call; those that had not ended when the watch stopped are unfinished."""
    summary = watch.summarise(RECORDED, sent=11, started=0.0, stopped=1.9)
    assert (summary.sent, summary.unfinished) == (11, 2)
    assert summary.tally.total_answered + summary.tally.total_failed == 9
    assert summary.gap == (0.104, 1.710)


def test_format_second__one_line_with_pods_failures_and_latency():
    """`<time>  N answered: pod n | N failed: kind n | p50 .., p99 ..`, and how short the last one was."""
    assert watch.format_second("12:00:07", watch.tally(RECORDED[:4])) == (
        f"12:00:07  2 answered: {POD_A} 2 | 2 failed: connection reset 1, connection refused 1 "
        "| p50 3.0 ms, p99 4.0 ms"
    )
    assert watch.format_second("12:00:08", watch.tally([])) == (
        "12:00:08  0 answered | 0 failed | p50 -, p99 -"
    )
    assert watch.format_second("12:00:08", watch.tally(RECORDED[-1:]), span=0.34) == (
        f"12:00:08  1 answered: {POD_B} 1 | 0 failed | p50 2.0 ms, p99 2.0 ms (the last 0.3 s)"
    )


def test_format_progress__how_long_and_the_last_failure():
    """While nothing has answered: the wait, the calls sent and the last failure."""
    line = watch.format_progress("http://127.0.0.1:30080/who-am-i", 3.4, 34, RECORDED[3])
    assert (
        line
        == "waiting for http://127.0.0.1:30080/who-am-i to answer: 3 s, 34 calls, last: connection refused"
    )


def test_format_summary__sent_answered_failed_latency_and_the_gap(utc):
    """The summary of a recorded deletion, line by line."""
    summary = watch.summarise(RECORDED, sent=9, started=0.0, stopped=2.5)
    assert watch.format_summary("http://127.0.0.1:30080/who-am-i", summary, wall_start=43200.0) == [
        "--- http://127.0.0.1:30080/who-am-i: 2.5 s ---",
        "sent 9, answered 4, failed 5",
        f"answered by pod: {POD_A} 2, {POD_B} 2",
        "failed by kind: connection reset 1, connection refused 2, timeout 1, "
        'HTTP 503 "backend /get-config unreachable: ConnectionError" 1',
        "latency of the answers: p50 3.0 ms, p99 10.0 ms",
        "longest gap with no answer: 1.61 s (from 12:00:00.10 to 12:00:01.71)",
    ]


def test_format_summary__no_answer_at_all(utc):
    """Nothing answered: no pods, no latency, the whole watch one gap, and unfinished calls said."""
    refused = [Outcome(0.0, 0.001, None, watch.REFUSED)]
    lines = watch.format_summary("http://h:1/who-am-i", watch.summarise(refused, 3, 0.0, 4.0), 0.0)
    assert lines[1:] == [
        "sent 3, answered 0, failed 1, unfinished 2",
        "answered by pod: none",
        "failed by kind: connection refused 1",
        "latency of the answers: p50 -, p99 -",
        "longest gap with no answer: 4.00 s (from the start to the end)",
    ]


# --- arguments -----------------------------------------------------------------------------------


def test_parse_args__defaults_to_the_nodeport_at_ten_a_second():
    """No arguments: the NodePort on this node, 10 calls a second, 1 s each."""
    args = watch.parse_args([])
    assert (args.url, args.rate, args.timeout) == ("http://127.0.0.1:30080", 10, 1.0)
    assert watch.parse_args(["http://10.0.0.5:30080/who-am-i", "--rate", "20", "--timeout", "0.5"]).rate == 20


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "21"], "from 1 to 20"),
        (["--rate", "0"], "from 1 to 20"),
        (["--rate", "2.5"], "from 1 to 20"),
        (["--rate", "lots"], "from 1 to 20"),
        (["--timeout", "0"], "from 0.1 to 5"),
        (["--timeout", "60"], "from 0.1 to 5"),
        (["--timeout", "nan"], "from 0.1 to 5"),
        (["https://127.0.0.1:30080"], "not an http://HOST[:PORT] address"),
        (["127.0.0.1:30080"], "not an http://HOST[:PORT] address"),
        (["http://127.0.0.1:99999"], "no valid port"),
        (["http://127.0.0.1:30080/health"], "watch calls its /who-am-i"),
        (["http://127.0.0.1:30080/?x=1"], "watch calls its /who-am-i"),
    ],
)
def test_parse_args__refuses_bad_values_with_a_clear_error(argv, message, capsys):
    """Out of range or malformed: exit status 2 and a message that says what is allowed."""
    with pytest.raises(SystemExit) as exited:
        watch.parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


# --- calls against local servers -----------------------------------------------------------------


class Server:
    """A local HTTP server answering every GET with `status` and `body`, recording the X-Request-IDs."""

    def __init__(self, status=200, body=GOOD, delay=0.0):
        self.ids = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.ids.append(self.headers.get("X-Request-ID"))
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client that gave up
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def _serve(**kwargs):
        servers.append(Server(**kwargs))
        return servers[-1]

    yield _serve
    for server in servers:
        server.close()


@pytest.fixture
def listener():
    """A socket that listens and accepts, but never answers: what a frozen pod looks like."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


def test_call__an_answer_names_the_pod_and_carries_a_numbered_request_id(serve):
    """A real GET: the pod it names, its latency, and X-Request-ID watch-<run>-<n>."""
    server = serve()
    watcher = watch.Watcher(server.url, rate=10, timeout=1.0, out=io.StringIO())
    outcome = watcher.call(7)
    assert outcome.pod == POD_A and outcome.failure is None
    assert 0 < outcome.latency < 1.0
    assert server.ids == [f"{watcher.tag}-7"] and re.fullmatch(r"watch-[0-9a-f]{6}", watcher.tag)


def test_call__an_error_status_is_a_failure_with_its_text(serve):
    """A 503 JSON error comes back as "HTTP 503" and the error's text."""
    outcome = watch.Watcher(serve(status=503, body=UNAVAILABLE).url, 10, 1.0, io.StringIO()).call(0)
    assert (outcome.pod, outcome.failure_label) == (
        None,
        'HTTP 503 "backend /get-config unreachable: ConnectionError"',
    )


def test_call__nothing_listening_is_connection_refused():
    """A port with no listener: "connection refused"."""
    outcome = watch.Watcher(f"http://127.0.0.1:{free_port()}", 10, 1.0, io.StringIO()).call(0)
    assert outcome.failure == watch.REFUSED


def test_call__no_answer_within_the_timeout_is_a_timeout(listener):
    """Accepted, never answered: "timeout", after the timeout and not much later."""
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    outcome = watch.Watcher(url, 10, 0.3, io.StringIO()).call(0)
    assert outcome.failure == watch.TIMEOUT
    assert 0.3 <= outcome.latency < 2.0


def test_call__a_slow_whole_answer_is_a_timeout(serve):
    """An answer that ends after the timeout counts as a timeout, whatever it said."""
    outcome = watch.Watcher(serve(delay=0.5).url, 10, 0.2, io.StringIO()).call(0)
    assert outcome.failure == watch.TIMEOUT


@pytest.mark.parametrize("linger", [False, True], ids=["closed", "reset"])
def test_call__a_connection_closed_or_reset_without_an_answer_is_a_reset(listener, linger):
    """Accepted, then closed (FIN) or reset (RST) before any answer: "connection reset"."""

    def close_first_connection():
        conn, _ = listener.accept()
        if linger:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.recv(4096)
        conn.close()

    threading.Thread(target=close_first_connection, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    assert watch.Watcher(url, 10, 2.0, io.StringIO()).call(0).failure == watch.RESET


def test_main__lines_a_second_then_a_summary_that_accounts_for_every_call(serve):
    """Against a server that answers: a line a second, and a summary in which sent = answered, each call
    numbered once, from 0 on, as the server saw them."""
    server = serve()
    out, stop = io.StringIO(), threading.Event()
    threading.Timer(2.5, stop.set).start()
    assert watch.main([server.url, "--rate", "20"], stop=stop, out=out) == 0
    lines = out.getvalue().splitlines()
    tag = re.search(r"X-Request-ID (watch-[0-9a-f]{6})-<n>", lines[1]).group(1)
    seconds = [line for line in lines if re.match(r"\d\d:\d\d:\d\d  ", line)]
    assert len(seconds) >= 2 and all(f"answered: {POD_A} " in line for line in seconds)
    sent = int(re.fullmatch(r"sent (\d+), answered \1, failed 0", lines[-5]).group(1))
    assert sorted(server.ids) == sorted(f"{tag}-{n}" for n in range(sent))
    assert lines[-4] == f"answered by pod: {POD_A} {sent}"


def test_main__waits_with_a_progress_line_and_exits_1_when_nothing_answered():
    """Nothing listening: progress lines (one per second, not a terminal), no second lines, exit 1."""
    out, stop = io.StringIO(), threading.Event()
    threading.Timer(1.5, stop.set).start()
    assert watch.main([f"http://127.0.0.1:{free_port()}", "--rate", "5"], stop=stop, out=out) == 1
    text = out.getvalue()
    assert re.search(
        r"waiting for http://127\.0\.0\.1:\d+/who-am-i to answer: 1 s, \d+ calls, last: connection refused",
        text,
    )
    assert "answered by pod: none" in text and not re.search(r"^\d\d:\d\d:\d\d  ", text, re.M)
