"""`./manage.sh watch` in a terminal (a pty, with Ctrl-C typed into it) against real gunicorn services.

The ground truth is the frontend's own access log: every call that reached it has a line there with its
status. So watch's answers must equal the log's 200 lines, its HTTP 503s the log's 503 lines, and its
connection failures the calls it sent that never reached the log. The timeout is 5 s, far beyond anything
these calls take here, so no call can end as a timeout on watch's side and still be answered in the log:
the counts must be equal, not close.
"""

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from testbed.net import free_port
from tests.integration.conftest import POD_NAME
from tests.prerequisites import find_tool, skip_or_fail

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "backend /get-config unreachable: ConnectionError"  # /who-am-i's error while no backend listens
SECOND_LINE = re.compile(
    r"^\d\d:\d\d:\d\d  (\d+) answered(?:: (.*?))? \| (\d+) failed(?:: (.*?))? \| p50 ", re.M
)
CTRL_C = b"\x03"


class Terminal:
    """A command in a pseudo-terminal of its own, as a shell in a terminal window runs it: the pty is its
    controlling terminal (`setsid --ctty`), so a typed Ctrl-C reaches it as SIGINT, from the tty driver."""

    def __init__(self, *command):
        setsid = find_tool("setsid")
        if setsid is None:
            skip_or_fail("setsid not found (util-linux): it gives the command the pty as its terminal")
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            [setsid, "--ctty", *command], stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, close_fds=True
        )
        os.close(slave)
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: every process holding the terminal has exited
                return
            if not chunk:
                return
            with self._lock:
                self._output += chunk

    def text(self):
        with self._lock:
            return self._output.decode(errors="replace")

    def type(self, data):
        os.write(self.master, data)

    def wait_for(self, pattern, timeout=30.0):
        """Until the output matches `pattern` (a regex); returns the match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text(), re.M)
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the terminal after {timeout:g} s:\n{self.text()}")

    def wait_exit(self, timeout=15.0):
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


@pytest.fixture
def terminal():
    opened = []

    def _open(*command):
        opened.append(Terminal(*command))
        return opened[-1]

    yield _open
    for term in opened:
        term.close()


def counts(text):
    """`frontend-x 12, connection refused 3` -> {"frontend-x": 12, "connection refused": 3}."""
    return {key: int(n) for key, n in re.findall(r"([^,]+?) (\d+)(?:, |$)", text or "")}


def test_watch__in_a_terminal_shows_the_wait_the_answers_and_the_failures_as_the_server_logged_them(
    start, frontend_for, terminal
):
    """Started before the frontend, watch shows its progress line (refused, then HTTP 503 while the
    frontend has no backend), then a line a second of answers, then refusals once the frontend is stopped;
    Ctrl-C typed into the terminal prints a summary whose counts are the frontend's access log's."""
    frontend_port, backend_port = free_port(), free_port()
    url = f"http://127.0.0.1:{frontend_port}"
    term = terminal(str(ROOT / "manage.sh"), "watch", url, "--timeout", "5")

    term.wait_for(r"\rwaiting for .*/who-am-i to answer: \d+ s, \d+ calls, last: connection refused")
    frontend = frontend_for(f"http://127.0.0.1:{backend_port}", port=frontend_port)
    term.wait_for(rf'last: HTTP 503 "{re.escape(UNREACHABLE)}"')
    start("backend", port=backend_port)
    term.wait_for(rf"^\d\d:\d\d:\d\d  \d+ answered: {POD_NAME} \d+ \|")
    frontend.terminate()
    term.wait_for(r"failed: (.*, )?connection refused \d+")
    term.type(CTRL_C)
    assert term.wait_exit() == 0, term.text()

    text = term.text()
    summary = dict(
        re.findall(
            r"^(sent|answered by pod|failed by kind|longest gap with no answer)\b:? (.*?)\r?$", text, re.M
        )
    )
    sent, answered, failed = map(
        int, re.fullmatch(r"(\d+), answered (\d+), failed (\d+)", summary["sent"]).groups()
    )
    by_pod, by_kind = counts(summary["answered by pod"]), counts(summary["failed by kind"])
    log = frontend.output()
    logged = {status: log.count(f'"GET /who-am-i HTTP/1.1" {status}') for status in (200, 503)}

    assert sent == answered + failed, text
    assert by_pod == {POD_NAME: answered} and answered == logged[200] > 0, (summary, logged)
    assert by_kind.pop(f'HTTP 503 "{UNREACHABLE}"') == logged[503] > 0, (summary, logged)
    # What never reached the frontend: refused (before it started, after it stopped), or reset in the
    # instant its listener closed.
    assert set(by_kind) <= {"connection refused", "connection reset"}, summary
    assert sum(by_kind.values()) == sent - logged[200] - logged[503] > 0, (summary, logged)
    # Every answer is in a line a second (the failures of the wait are in the summary only).
    seconds = SECOND_LINE.findall(text)
    assert sum(int(n) for n, *_ in seconds) == answered, text
    assert any("connection refused" in kinds for *_, kinds in seconds), text
    gap = float(re.match(r"([\d.]+) s \(from ", summary["longest gap with no answer"]).group(1))
    assert gap >= 1.0, summary  # the progress line showed at least a second of waiting
