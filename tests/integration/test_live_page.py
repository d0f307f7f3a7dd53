"""The live page in a real browser against real gunicorn processes: what it draws for answers and for each
kind of failure, read back from the page as a learner reads it (its tables and the marks drawn).

The page runs at its highest rate, 20 calls a second, and draws 120 s, so every call of a test stays drawn.
"""

import signal

import pytest
import requests

from testbed.browser import LivePage
from testbed.net import free_port
from testbed.processes import StandInBackend
from tests.backend_faults import failure_body

from .conftest import POD_NAME

pytestmark = pytest.mark.integration

QUERY = "/?rate=20&window=120"
KINDS = ("refused/reset", "timeout", "HTTP 5xx", "wrong JSON")


def at_least(kind, count):
    """A predicate on a read() of the page: `kind`'s failures counted reach `count`."""
    return lambda shown: shown["failures"][kind]["count"] >= count


def settled(page):
    """Pause the page and wait until no call is in flight; what it shows then."""
    page.click("pause")
    return page.wait_until(lambda shown: "waiting" not in shown["status"], 5, "no call in flight")


def assert_drawn_as_counted(page, shown):
    """Each kind's marks drawn are the calls its table counts, and each pod's too; nothing broke the page."""
    for kind in KINDS:
        assert shown["marks"].get(kind, 0) == shown["failures"][kind]["count"], (kind, shown)
    for name, pod in shown["pods"].items():
        assert shown["marks"].get(name, 0) == pod["answers"], (name, shown)
    assert page.errors == []
    assert page.policy_violations() == []


def test_live_page__draws_answers_and_each_kind_of_failure__real_gunicorn(start, frontend_for, browser):
    """Backend down, then up; the frontend frozen, then stopped: the page draws HTTP 503s with their text,
    then the pod's answers with its code and build, then timeouts, then refused/reset."""
    backend_port = free_port()
    frontend = frontend_for(
        f"http://127.0.0.1:{backend_port}", VERSION="v1.2.3", GIT_COMMIT="0123456789abcdef"
    )
    page = LivePage(browser, frontend.url + QUERY)
    assert page.response.status == 200

    shown = page.wait_until(at_least("HTTP 5xx", 5), 10, "HTTP 503s while the backend is down")
    error = failure_body("/who-am-i", "unreachable", POD_NAME)["error"]
    assert shown["failures"]["HTTP 5xx"]["last"].endswith(f"HTTP 503: {error} (from {POD_NAME})")
    assert shown["pods"] == {}

    backend = start("backend", port=backend_port)
    code = requests.get(backend.url + "/get-config", timeout=5).json()["code"]
    shown = page.wait_until(
        lambda shown: shown["pods"].get(POD_NAME, {}).get("build") == "v1.2.3 (0123456)", 10, "the build"
    )
    assert shown["pods"][POD_NAME]["code"] == code

    frontend.signal_all(signal.SIGSTOP)
    try:
        page.wait_until(at_least("timeout", 3), 10, "timeouts while the frontend is frozen")
    finally:
        frontend.signal_all(signal.SIGCONT)
    answered = page.read()["pods"][POD_NAME]["answers"]
    page.wait_until(lambda shown: shown["pods"][POD_NAME]["answers"] > answered + 5, 10, "answers again")

    assert frontend.terminate()[0] == 0
    page.wait_until(at_least("refused/reset", 5), 10, "refused calls once the frontend is gone")

    shown = settled(page)
    assert shown["failures"]["wrong JSON"]["count"] == 0, shown
    assert_drawn_as_counted(page, shown)


@pytest.fixture
def page_server(frontend_for):
    """A stand-in server on a port of its own that serves the real live page (its bytes and its CSP, from a
    real frontend) and answers everything else in the stand-in's way of the moment."""
    frontend = frontend_for("http://127.0.0.1:9")  # the page needs no backend
    real = requests.get(frontend.url + "/", timeout=5)
    page = (
        real.headers["Content-Type"],
        real.content,
        {"Content-Security-Policy": real.headers["Content-Security-Policy"]},
    )
    server = StandInBackend("reset", free_port(), fixed={"/": page}).start()
    yield server
    server.stop()


def test_live_page__each_call_is_one_connection_and_no_retry_hides_a_reset(page_server, browser):
    """/who-am-i reset after its request was read, then HTTP 500, then HTML: the server saw one connection
    per request and as many /who-am-i as the page drew failures, each kind in its own row."""
    page = LivePage(browser, f"http://127.0.0.1:{page_server.port}{QUERY}")
    page.wait_until(at_least("refused/reset", 20), 10, "resets")
    shown = settled(page)
    resets = shown["failures"]["refused/reset"]["count"] - page.network_changes  # (testbed/browser.py)
    assert resets == page_server.requests["/who-am-i"], page_server.requests

    for kind, drawn_as in (("http_500", "HTTP 5xx"), ("not_json", "wrong JSON")):
        page_server.kind = kind
        page.click("pause")  # Resume
        page.wait_until(at_least(drawn_as, 10), 10, drawn_as)
        shown = settled(page)

    assert shown["failures"]["HTTP 5xx"]["last"].endswith("HTTP 500: Internal Server Error")
    assert shown["failures"]["wrong JSON"]["last"].endswith('not {"name", "code"}: <html>not json</html>')
    assert shown["failures"]["timeout"]["count"] == 0
    assert page.service_failures(shown) == page_server.requests["/who-am-i"], page_server.requests
    assert page_server.connections == sum(page_server.requests.values()), page_server.requests
    assert_drawn_as_counted(page, shown)


def test_live_page__controls_keep_to_the_servers_bounds(frontend_for, browser):
    """The page's inputs clamp as the server does, ignore what is not a number, and keep both in the
    address, so a reload gets the same page."""
    frontend = frontend_for("http://127.0.0.1:9")
    page = LivePage(browser, frontend.url + "/")
    for name, typed, kept in (
        ("rate", "1000", "20"),
        ("rate", "2.5", "2.5"),
        ("window", "1", "10"),
        ("window", "", "10"),
    ):
        page.page.fill(f"#{name}", typed)
        page.page.dispatch_event(f"#{name}", "change")
        assert page.page.input_value(f"#{name}") == kept
    assert page.page.url.endswith("/?rate=2.5&window=10")
    reloaded = requests.get(page.page.url, timeout=5)
    assert reloaded.status_code == 200
    assert 'data-rate="2.5" data-window="10"' in reloaded.text
