"""Bad input to both services under real gunicorn: a clean 4xx, never a 5xx, never a crash.

Django answers everything that reaches it with JSON. gunicorn's own HTTP parser answers malformed or
oversized requests before Django sees them (414, 431, 400): those answers are gunicorn's HTML, asserted
here as they are so a change of gunicorn's behaviour shows.
"""

import http.client
import json
import socket
import threading
from urllib.parse import quote_from_bytes

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testbed.processes import Gunicorn

from .conftest import POD_NAME, wait_for_workers

pytestmark = pytest.mark.integration

CODE = "BACKEND-4242"
BIG = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """One backend and one frontend for the whole module: bad input must not change them."""
    tmp_path = tmp_path_factory.mktemp("bad-input")
    backend = Gunicorn("backend", tmp_path, CONFIG_CODE=CODE).start()
    frontend = Gunicorn("frontend", tmp_path, BACKEND_URL=backend.url, POD_NAME=POD_NAME)
    try:
        frontend.start(ready_path="/health")
        for server in (backend, frontend):  # the first worker answers before the second is forked
            wait_for_workers(server)
        yield {"backend": backend, "frontend": frontend}
    finally:
        frontend.stop()
        backend.stop()


@pytest.fixture(autouse=True)
def alive_afterwards(services):
    """After each test both services still answer, from the same workers: nothing crashed."""
    workers = {name: server.workers() for name, server in services.items()}
    yield
    assert requests.get(services["backend"].url + "/get-config", timeout=5).json()["code"] == CODE
    assert requests.get(services["frontend"].url + "/health", timeout=5).json() == {"status": "healthy"}
    assert {name: server.workers() for name, server in services.items()} == workers


def exchange(server, data, method="GET", timeout=10.0):
    """Send raw bytes, read one response: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return response.status, response.headers, response.read()


def raw_request(method, target, headers=(), body=b""):
    """A request built byte by byte, so whatever is in it reaches the server unchanged."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    if body:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def assert_json_error(status, headers, body, expected_status):
    assert status == expected_status, body[:300]
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)
    assert isinstance(error["error"], str)
    assert error["status"] == expected_status
    return error


def assert_gunicorn_error(status, headers, body, expected_status, reason):
    """gunicorn's own answer: HTML naming the problem, and the connection closed."""
    assert status == expected_status, body[:300]
    assert headers["Content-Type"] == "text/html"
    assert headers["Connection"] == "close"
    assert body.startswith(b"<html>")
    assert reason in body


def game_overs(backend):
    return backend.output().count("Received game-over signal from")


@pytest.mark.parametrize(
    ("service", "path", "method", "allow"),
    [
        ("backend", "/get-config", "POST", "GET, HEAD"),
        ("backend", "/ping", "PUT", "GET, HEAD"),
        ("backend", "/game-over", "GET", "POST"),
        ("backend", "/game-over", "DELETE", "POST"),
        ("frontend", "/startup", "POST", "GET, HEAD"),
        ("frontend", "/who-am-i", "PATCH", "GET, HEAD"),
        ("frontend", "/health", "POST", "GET, HEAD"),
        ("frontend", "/health", "OPTIONS", "GET, HEAD"),
        ("frontend", "/who-am-i", "BREW", "GET, HEAD"),
    ],
)
def test_method__wrong_one_is_json_405_with_allow(services, service, path, method, allow):
    """A method an endpoint does not take: 405 JSON, and Allow names the right ones."""
    response = requests.request(method, services[service].url + path, timeout=5)
    assert_json_error(response.status_code, response.headers, response.content, 405)
    assert response.headers["Allow"] == allow


UNKNOWN_PATHS = ["/", "/admin/", "/ping/", "/PING", "/.env", "/static/app.js", "/health/x"]


@pytest.mark.parametrize(
    ("service", "path"),
    [("backend", path) for path in UNKNOWN_PATHS]
    + [("frontend", path) for path in UNKNOWN_PATHS if path != "/"],  # the frontend's / is its live page
)
def test_path__unknown_is_json_404(services, service, path):
    """Paths no endpoint has: 404 JSON naming the path."""
    response = requests.get(services[service].url + path, timeout=5)
    error = assert_json_error(response.status_code, response.headers, response.content, 404)
    assert error["error"] == f"No endpoint at {path}"


@pytest.mark.parametrize("service", ["backend", "frontend"])
@pytest.mark.parametrize(
    "host",
    [
        b"localhost:notaport",
        b"bad host",
        b"[::1",
        b"",
        b"127.0.0.1@evil.example.com",
        b"\xff\xfe",
    ],
)
def test_host__malformed_is_json_400(services, service, host):
    """A Host header that is no host at all: 400 JSON (any well-formed one is served, podkit.conf)."""
    request = b"GET /get-config HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
    assert_json_error(*exchange(services[service], request), 400)


def test_host__two_host_headers_refused_by_gunicorn(services):
    """Two Host headers: gunicorn refuses the request itself, 400 HTML (not JSON)."""
    request = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example.com\r\n\r\n"
    assert_gunicorn_error(*exchange(services["backend"], request), 400, b"Invalid HTTP Header: &#x27;HOST")


def test_game_over__20mb_body_is_json_413(services):
    """A 20 MB body with Content-Length: 413 JSON before it is read, and no game-over logged."""
    backend = services["backend"]
    before = game_overs(backend)
    response = requests.post(backend.url + "/game-over", data=b"x" * BIG, timeout=30)
    error = assert_json_error(response.status_code, response.headers, response.content, 413)
    assert "65536" in error["error"]
    assert game_overs(backend) == before


def send_while_reading(server, head, chunks):
    """Stream a request body while reading the answer, as a client that does not wait would: the
    server may answer (and close) long before the body is sent. Returns (status, headers, body)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    answer = {}

    def read():
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer.update(response=(response.status, response.headers, response.read()))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
    except OSError:
        pass  # the server closed after answering, as it may
    reader.join(30)
    sock.close()
    return answer["response"]


def test_game_over__20mb_chunked_body_is_refused(services):
    """A 20 MB chunked body (no Content-Length) to /game-over: refused with 4xx JSON, no game-over logged."""
    backend = services["backend"]
    before = game_overs(backend)
    head = b"POST /game-over HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    status, headers, body = send_while_reading(backend, head, [chunk] * (BIG // 0x10000) + [b"0\r\n\r\n"])
    assert 400 <= status < 500, (status, body)
    assert headers["Content-Type"] == "application/json"
    assert "error" in json.loads(body)
    assert game_overs(backend) == before


@pytest.mark.parametrize(
    "body", [b"{", b'{"a":', b"\xff\xfe\x00", b"null", b"[]" * 5000, b'{"pod": "x"}' * 3]
)
def test_body__junk_json_to_game_over_is_ignored(services, body):
    """Junk JSON to /game-over: the body is ignored by design, so 200 JSON, logged with the caller."""
    headers = [(b"Content-Type", b"application/json")]
    status, response_headers, answer = exchange(
        services["backend"], raw_request(b"POST", b"/game-over", headers, body)
    )
    assert (status, json.loads(answer)) == (200, {"message": "Goodbye!"})
    assert response_headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["/who-am-i", "/health", "/startup"])
def test_body__junk_json_to_frontend_get_is_ignored(services, path):
    """A GET with a junk JSON body: the frontend answers as without one."""
    request = raw_request(b"GET", path.encode(), [(b"Content-Type", b"application/json")], b'{"x": [1, 2')
    status, headers, body = exchange(services["frontend"], request)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert isinstance(json.loads(body), dict)


@pytest.mark.parametrize("service", ["backend", "frontend"])
@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414, b"Request Line is too large"),
        (
            b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + b"".join(b"X-%d: y\r\n" % n for n in range(101))
            + b"\r\n",
            431,
            b"limit request headers fields",
        ),
        (
            b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n",
            431,
            b"limit request headers fields size",
        ),
    ],
    ids=["url-5000-bytes", "101-header-fields", "header-9000-bytes"],
)
def test_gunicorn_limits__answered_by_gunicorn_as_html(services, service, request_bytes, status, reason):
    """Over gunicorn's limits (request line 4094 B, 100 fields, 8190 B a field): its own 414/431 HTML."""
    assert_gunicorn_error(*exchange(services[service], request_bytes), status, reason)


@pytest.mark.parametrize(
    ("service", "target", "status"),
    [
        ("backend", b"/%ff%fe", 404),
        ("backend", b"/%00", 404),
        ("backend", b"/ping%00", 404),
        ("backend", b"/%C0%AE%C0%AE/%C0%AE%C0%AE/etc/passwd", 404),
        ("backend", b"/ping?q=%ff%fe%00&%ZZ=%", 200),
        ("frontend", b"/who-am-i?%ff=%00", 200),
        ("frontend", b"/%E2%80%AE%F0%9F%92%A9", 404),
        ("frontend", b"/health;jsessionid=%ff", 404),
    ],
)
def test_encoding__percent_encoded_junk_reaches_django_as_json(services, service, target, status):
    """Percent-encoded junk (invalid UTF-8, NUL, overlong dots) in path or query: Django answers JSON."""
    got, headers, body = exchange(services[service], raw_request(b"GET", target))
    assert got == status, body[:200]
    assert headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert isinstance(answer, dict)
    if status >= 400:
        assert "error" in answer


@pytest.mark.parametrize("service", ["backend", "frontend"])
@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (b"/\xff\xfe", b"Invalid HTTP request line"),
        (b"/ping?a=\xff", b"Invalid HTTP request line"),
        (b"/pi\x00ng", b"Invalid HTTP request line"),
    ],
    ids=["invalid-utf8-path", "invalid-utf8-query", "nul-in-path"],
)
def test_encoding__raw_bytes_in_request_line_refused_by_gunicorn(services, service, target, reason):
    """Raw invalid UTF-8 or NUL in the request line: gunicorn refuses it, 400 HTML (not JSON)."""
    assert_gunicorn_error(*exchange(services[service], raw_request(b"GET", target)), 400, reason)


def test_encoding__nul_in_header_value_refused_by_gunicorn(services):
    """A NUL byte in a header value: gunicorn refuses it, 400 HTML (not JSON)."""
    request = raw_request(b"GET", b"/ping", [(b"X-A", b"a\x00b")])
    assert_gunicorn_error(*exchange(services["backend"], request), 400, b"Invalid HTTP Header")


def test_header__script_name_from_local_peer_no_5xx(services):
    """A SCRIPT_NAME header (gunicorn trusts it from forwarded_allow_ips, 127.0.0.1 by default): no 5xx."""
    request = raw_request(b"GET", b"/ping", [(b"SCRIPT_NAME", b"/elsewhere")])
    status, _, body = exchange(services["backend"], request)
    assert status < 500, body


def test_transfer_encoding__unknown_coding_is_gunicorns_501(services):
    """An unknown transfer coding: gunicorn's 501 HTML (RFC 9112 6.1), the one 5xx a client can cause."""
    request = b"POST /game-over HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: foo\r\n\r\n"
    assert_gunicorn_error(*exchange(services["backend"], request), 501, b"Unsupported transfer coding")


def test_encoding__junk_pod_name_not_logged(services):
    """Invalid UTF-8 in X-Pod-Name: game-over answers 200 and logs the caller's address instead."""
    backend = services["backend"]
    by_address = backend.output().count("Received game-over signal from 127.0.0.1")
    request = raw_request(b"POST", b"/game-over", [(b"X-Pod-Name", b"\xff\xfe forged-name")])
    status, _, body = exchange(backend, request)
    assert (status, json.loads(body)) == (200, {"message": "Goodbye!"})
    assert backend.output().count("Received game-over signal from 127.0.0.1") == by_address + 1
    assert "forged-name" not in backend.output()


# --- Generated requests, sent as raw bytes to the real servers ----------------------------------------

METHODS = st.one_of(
    st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"]),
    st.from_regex(rb"\A[A-Za-z]{1,10}\Z"),
)
ENDPOINTS = [b"/get-config", b"/ping", b"/game-over", b"/startup", b"/who-am-i", b"/health", b"/"]
# Anything but CR, LF and space, which would end the request line early (framing, not input).
RAW_BYTES = st.binary(max_size=12).map(lambda data: data.translate(None, b"\r\n "))
TARGETS = st.one_of(
    st.sampled_from(ENDPOINTS),
    st.tuples(st.sampled_from(ENDPOINTS), st.sampled_from([b"", b"?", b"/", b";"]), RAW_BYTES).map(b"".join),
    st.tuples(st.sampled_from(ENDPOINTS), st.binary(max_size=12).map(quote_from_bytes)).map(
        lambda parts: parts[0] + b"?" + parts[1].encode()
    ),
    st.binary(max_size=20).map(lambda data: b"/" + quote_from_bytes(data).encode()),
)
HEADER_NAMES = st.one_of(
    st.sampled_from([b"Accept", b"Content-Type", b"X-Pod-Name", b"X-Forwarded-For", b"Cookie", b"Expect"]),
    st.from_regex(rb"\A[A-Za-z][A-Za-z0-9-]{0,15}\Z"),
).filter(lambda name: name.lower() not in {b"host", b"content-length", b"transfer-encoding", b"connection"})
HEADERS = st.lists(st.tuples(HEADER_NAMES, RAW_BYTES), max_size=4)
HOSTS = st.sampled_from([b"127.0.0.1", b"localhost", b"[::1]", b"evil.example.com", b"", b"a b", b"\xff"])


# What gunicorn's parser answers itself: malformed (400), request line too long (414), an Expect it does
# not know (417), too many or too long header fields (431).
GUNICORN_REFUSALS = (400, 414, 417, 431)


def assert_clean_answer(status, headers, body, method):
    """Below 500; JSON from Django (an object, "error" when 4xx), or one of gunicorn's own refusals."""
    assert status < 500, body[:300]
    if headers["Content-Type"] == "text/html":
        assert status in GUNICORN_REFUSALS, body[:300]
        return
    assert headers["Content-Type"] == "application/json"
    if method != b"HEAD":
        answer = json.loads(body)
        assert isinstance(answer, dict)
        if status >= 400:
            assert "error" in answer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    service=st.sampled_from(["backend", "frontend"]),
    method=METHODS,
    target=TARGETS,
    host=HOSTS,
    headers=HEADERS,
    body=st.binary(max_size=64),
)
def test_any_request__real_server_clean_answer(services, service, method, target, host, headers, body):
    """Generated requests as raw bytes to real gunicorn: always a clean answer below 500."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + host, b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    lines.append(b"Content-Length: %d" % len(body))
    request = b"\r\n".join(lines) + b"\r\n\r\n" + body
    # http.client knows a HEAD answer has no body only when told so as a str.
    status, response_headers, answer = exchange(services[service], request, method=method.upper().decode())
    if service == "frontend" and status == 200 and target.split(b"?")[0] == b"/":  # the live page
        assert response_headers["Content-Type"] == "text/html; charset=utf-8"
        return
    assert_clean_answer(status, response_headers, answer, method.upper())
