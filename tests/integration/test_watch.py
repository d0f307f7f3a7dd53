"""`./manage.sh watch` in a terminal (a pty, with Ctrl-C typed into it) against real gunicorn services.

The ground truth is the frontend's own access log: every call that reached it has a line there with its
status. So watch's answers must equal the log's 200 lines, its HTTP 503s the log's 503 lines, and its
connection failures the calls it sent that never reached the log. The timeout is 5 s, far beyond anything
these calls take here, so no call can end as a timeout on watch's side and still be answered in the log:
the counts must be equal, not close.
"""

import re

import pytest

from testbed.net import free_port
from tests.integration.conftest import POD_NAME
from tests.watch_terminal import SECOND_LINE, Terminal, summary

pytestmark = pytest.mark.integration

UNREACHABLE = "backend /get-config unreachable: ConnectionError"  # /who-am-i's error while no backend listens


def test_watch__in_a_terminal_shows_the_wait_the_answers_and_the_failures_as_the_server_logged_them(
    start, frontend_for
):
    """Started before the frontend, watch shows its progress line (refused, then HTTP 503 while the
    frontend has no backend), then a line a second of answers, then refusals once the frontend is stopped;
    Ctrl-C typed into the terminal prints a summary whose counts are the frontend's access log's."""
    frontend_port, backend_port = free_port(), free_port()
    with Terminal(f"http://127.0.0.1:{frontend_port}", "--timeout", "5") as term:
        term.wait_for(r"\rwaiting for .*/who-am-i to answer: \d+ s, \d+ calls, last: connection refused")
        frontend = frontend_for(f"http://127.0.0.1:{backend_port}", port=frontend_port)
        term.wait_for(rf'last: HTTP 503 "{re.escape(UNREACHABLE)}"')
        start("backend", port=backend_port)
        term.wait_for(rf"^\d\d:\d\d:\d\d  \d+ answered: {POD_NAME} \d+ \|")
        frontend.terminate()
        term.wait_for(r"failed: (.*, )?connection refused \d+")
        assert term.ctrl_c() == 0, term.text()
        text = term.text()

    seen = summary(text)
    log = frontend.output()
    logged = {status: log.count(f'"GET /who-am-i HTTP/1.1" {status}') for status in (200, 503)}
    by_kind = dict(seen["by kind"])

    assert seen["sent"] == seen["answered"] + seen["failed"], text
    assert seen["by pod"] == {POD_NAME: seen["answered"]} and seen["answered"] == logged[200] > 0, (
        seen,
        logged,
    )
    assert by_kind.pop(f'HTTP 503 "{UNREACHABLE}"') == logged[503] > 0, (seen, logged)
    # What never reached the frontend: refused (before it started, after it stopped), or reset in the
    # instant its listener closed.
    assert set(by_kind) <= {"connection refused", "connection reset"}, seen
    assert sum(by_kind.values()) == seen["sent"] - logged[200] - logged[503] > 0, (seen, logged)
    # Every answer is in a line a second (the failures of the wait are in the summary only).
    seconds = SECOND_LINE.findall(text)
    assert sum(int(n) for n, *_ in seconds) == seen["answered"], text
    assert any("connection refused" in kinds for *_, kinds in seconds), text
    assert seen["gap"] >= 1.0, seen  # the progress line showed at least a second of waiting
