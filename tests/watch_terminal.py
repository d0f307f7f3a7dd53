"""`./manage.sh watch` in a terminal, and its summary read back: for the tests that run it against real
gunicorn (tests/integration) and against pods (tests/e2e)."""

import os
import re
import subprocess
import threading
import time
from pathlib import Path

from tests.prerequisites import find_tool, skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
CTRL_C = b"\x03"
# A line a second: `12:00:07  4 answered: frontend-x 4 | 6 failed: connection reset 6 | p50 ...`
SECOND_LINE = re.compile(
    r"^\d\d:\d\d:\d\d  (\d+) answered(?:: (.*?))? \| (\d+) failed(?:: (.*?))? \| p50 ", re.M
)


class Terminal:
    """`./manage.sh watch ARGS` in a pseudo-terminal of its own, as a shell in a terminal window runs it: the
    pty is its controlling terminal (`setsid --ctty`), so a typed Ctrl-C reaches it as SIGINT, from the tty
    driver. Use it with `with`: whatever happened, the process is gone afterwards."""

    def __init__(self, *args):
        setsid = find_tool("setsid")
        if setsid is None:
            skip_or_fail("setsid not found (util-linux): it gives the command the pty as its terminal")
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            [setsid, "--ctty", str(ROOT / "manage.sh"), "watch", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
        )
        os.close(slave)
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        os.close(self.master)

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
        """Everything printed so far (the pty ends lines with \\r\\n; a progress line is redrawn with \\r)."""
        with self._lock:
            return self._output.decode(errors="replace")

    def wait_for(self, pattern, timeout=30.0):
        """Until the output matches `pattern` (a regex, each line its own ^ and $); returns the match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text(), re.M)
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the terminal after {timeout:g} s:\n{self.text()}")

    def ctrl_c(self, timeout=15.0):
        """Type Ctrl-C; returns watch's exit status once it has printed its summary and exited."""
        os.write(self.master, CTRL_C)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


def counts(text):
    """`frontend-x 12, connection refused 3` -> {"frontend-x": 12, "connection refused": 3}."""
    return {key: int(n) for key, n in re.findall(r"([^,]+?) (\d+)(?:, |$)", text)}


def summary(text):
    """The summary watch printed: sent, answered, failed, answered by pod, failed by kind, longest gap (s)."""
    pattern = r"^(sent|answered by pod|failed by kind|longest gap with no answer):? (.*?)\r?$"
    lines = dict(re.findall(pattern, text, re.M))
    totals = re.fullmatch(r"(\d+), answered (\d+), failed (\d+)", lines.get("sent", ""))
    assert totals, f"no summary with every call finished (sent N, answered N, failed N) in:\n{text}"
    sent, answered, failed = map(int, totals.groups())
    return {
        "sent": sent,
        "answered": answered,
        "failed": failed,
        "by pod": counts(lines["answered by pod"]),  # "none" counts nothing
        "by kind": counts(lines["failed by kind"]),
        "gap": float(re.match(r"([\d.]+) s \(from ", lines["longest gap with no answer"]).group(1)),
    }
