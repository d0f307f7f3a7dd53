"""Scenario 19: `./manage.sh watch` through svc-frontend while the frontend pod is deleted and replaced.

The ground truth is what the pods logged. Every call watch sends carries `X-Request-ID: watch-<run>-<n>`,
and the images' access lines end with `request_id=<id>` (podkit/requestid.py), so each pod's log lists the
calls it answered, and with what status. The Service's proxy adds no line: a call it refuses or resets never
reached a pod. So:

* watch's answers by pod = that pod's lines with status 200 and the run's ids;
* watch's failures = the calls it sent that no pod logged, plus the logged ones with another status.

Both within one call: a pod logs its line once the answer is written, and an answer that took longer than
watch's timeout (1 s here; a stalled CPU can do it) is a timeout to watch and a 200 in the log. The summary
itself must add up exactly: sent = answered + failed, nothing left unfinished.
"""

import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


class Watch:
    """`./manage.sh watch URL` with its output read line by line as it comes."""

    def __init__(self, url):
        self.process = subprocess.Popen(
            [str(ROOT / "manage.sh"), "watch", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((m for line in list(self.lines) if (m := re.search(pattern, line))), None)
            if found:
                return found
            assert self.process.poll() is None, "\n".join(self.lines)
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} from watch after {timeout:g} s:\n" + "\n".join(self.lines))

    def stop(self):
        """Ctrl-C: watch prints its summary and exits."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=15)
        self._reader.join(timeout=5)
        return code

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def counts(text):
    """`frontend-x 12, connection refused 3` -> {"frontend-x": 12, "connection refused": 3}."""
    return {key: int(n) for key, n in re.findall(r"([^,]+?) (\d+)(?:, |$)", text)}


def logged_statuses(log, tag):
    """The status of each /who-am-i access line carrying one of this watch's request ids."""
    pattern = rf'"GET /who-am-i HTTP/1\.1" (\d{{3}}) .*request_id={re.escape(tag)}-\d+$'
    return [int(m.group(1)) for m in re.finditer(pattern, log, re.M)]


def test_watch__counts_a_frontend_deletion_as_the_pods_logs_do(cluster, record):
    """Watching svc-frontend through a deletion: answers first from the old pod, then from its replacement;
    the summary's answers per pod and its failures are what the two pods' access logs show, within one."""
    _, old = cluster.apply()
    watch = Watch(f"http://127.0.0.1:{cluster.service_port('svc-frontend')}")
    try:
        tag = watch.wait_for(r"X-Request-ID (watch-[0-9a-f]{6})-<n>", 10).group(1)
        watch.wait_for(rf"^\d\d:\d\d:\d\d  \d+ answered: {old.name} \d+", 15)
        deleted_at = time.monotonic()
        new = cluster.delete_pod(old)
        assert old.gone.wait(old.plan.grace + 30), old.describe()
        new.wait_ready(60)
        watch.wait_for(rf"answered: (.*, )?{new.name} \d+", 15)
        assert watch.stop() == 0, "\n".join(watch.lines)
    finally:
        watch.close()
    watched = time.monotonic() - deleted_at

    text = "\n".join(watch.lines)
    summary = dict(
        re.findall(r"^(sent|answered by pod|failed by kind|longest gap with no answer):? (.*)$", text, re.M)
    )
    sent, answered, failed = map(
        int, re.fullmatch(r"(\d+), answered (\d+), failed (\d+)", summary["sent"]).groups()
    )
    by_pod = counts(summary["answered by pod"])
    logs = {pod.name: logged_statuses(pod.logs(), tag) for pod in (old, new)}
    logged = sum(len(statuses) for statuses in logs.values())
    not_200 = sum(status != 200 for statuses in logs.values() for status in statuses)

    assert sent == answered + failed, text
    assert set(by_pod) == {old.name, new.name}, summary
    for name, statuses in logs.items():
        assert abs(by_pod[name] - statuses.count(200)) <= 1, (name, summary, statuses.count(200))
    assert abs(failed - (sent - logged + not_200)) <= 1, (summary, logged, not_200)
    gap = float(re.match(r"([\d.]+) s", summary["longest gap with no answer"]).group(1))
    record("watch through a deletion: calls sent (10 a second)", sent, "requests")
    record("watch through a deletion: calls failed", failed, "requests")
    record("watch through a deletion: longest gap with no answer", gap)
    record("watch through a deletion: deletion -> old pod gone, new answering", watched)
