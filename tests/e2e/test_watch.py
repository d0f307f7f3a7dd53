"""Scenario 20: `./manage.sh watch` through svc-frontend while the frontend pod is deleted and replaced.

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
import time

import pytest

from tests.watch_terminal import Terminal, summary

pytestmark = pytest.mark.e2e


def logged_statuses(log, tag):
    """The status of each /who-am-i access line carrying one of this watch's request ids."""
    pattern = rf'"GET /who-am-i HTTP/1\.1" (\d{{3}}) .*request_id={re.escape(tag)}-\d+$'
    return [int(m.group(1)) for m in re.finditer(pattern, log, re.M)]


def test_watch__counts_a_frontend_deletion_as_the_pods_logs_do(cluster, record):
    """Watching svc-frontend through a deletion: answers first from the old pod, then from its replacement;
    the summary's answers per pod and its failures are what the two pods' access logs show, within one."""
    _, old = cluster.apply()
    with Terminal(f"http://127.0.0.1:{cluster.service_port('svc-frontend')}") as term:
        tag = term.wait_for(r"X-Request-ID (watch-[0-9a-f]{6})-<n>", 10).group(1)
        term.wait_for(rf"^\d\d:\d\d:\d\d  \d+ answered: {old.name} \d+", 15)
        deleted_at = time.monotonic()
        new = cluster.delete_pod(old)
        assert old.gone.wait(old.plan.grace + 30), old.describe()
        new.wait_ready(60)
        term.wait_for(rf"answered: (.*, )?{new.name} \d+", 15)
        assert term.ctrl_c() == 0, term.text()
        text = term.text()
    watched = time.monotonic() - deleted_at

    seen = summary(text)
    logs = {pod.name: logged_statuses(pod.logs(), tag) for pod in (old, new)}
    logged = sum(len(statuses) for statuses in logs.values())
    not_200 = sum(status != 200 for statuses in logs.values() for status in statuses)

    assert seen["sent"] == seen["answered"] + seen["failed"], text
    assert set(seen["by pod"]) == {old.name, new.name}, seen
    for name, statuses in logs.items():
        assert abs(seen["by pod"][name] - statuses.count(200)) <= 1, (name, seen, statuses.count(200))
    assert abs(seen["failed"] - (seen["sent"] - logged + not_200)) <= 1, (seen, logged, not_200)
    record("watch through a deletion: calls sent (10 a second)", seen["sent"], "requests")
    record("watch through a deletion: calls failed", seen["failed"], "requests")
    record("watch through a deletion: longest gap with no answer", seen["gap"])
    record("watch through a deletion: deletion -> old pod gone, new answering", watched)
