"""Scenario 24: the live page in a real browser, opened through svc-frontend as a learner opens it at the
NodePort, while the frontend of the production overlay is rolled out, then frozen.

What the page shows is read back from the page (its tables and the marks it drew). Each pod the testbed
starts or stops changes the host's interfaces, and chromium then fails the calls still waiting for a
connection (net::ERR_NETWORK_CHANGED), which the page draws as refused/reset like any failed fetch: the
browser's own log counts those apart (testbed/browser.py), and only they may be drawn. Its picture of the
rollout is kept as bench/live-page-rollout.png, which the README shows.
"""

import time
from pathlib import Path

import pytest

from testbed.browser import LivePage
from testbed.images import build_args
from tests.e2e.test_rollouts import shorter_min_ready, wait_available

pytestmark = pytest.mark.e2e

SCREENSHOT = Path(__file__).resolve().parents[2] / "bench" / "live-page-rollout.png"
FREEZE = 4.0  # s the frontends stay frozen: two of the page's 2 s timeouts, one readiness failure at most
AFTER = 2.0  # s of answers from the new pods alone, drawn before the picture is taken


def answers(shown, pods):
    return sum(shown["pods"].get(pod, {}).get("answers", 0) for pod in pods)


@pytest.mark.parametrize("production", [shorter_min_ready], indirect=True)
def test_live_page__draws_a_rollout_without_failure_and_a_freeze_as_timeouts__production(
    production, browser, record
):
    """Production overlay, `rollout restart` of the frontend until the old pods exit: the page draws answers
    from the old pods, then the new ones (their code and build shown), no failure; the new pods frozen:
    timeouts, and nothing else."""
    production.apply()
    code = production.service_get("svc-backend", "/get-config").json()["code"]
    olds = production.live_pods("frontend")
    old = {pod.name for pod in olds}
    page = LivePage(browser, f"http://127.0.0.1:{production.service_port('svc-frontend')}/?window=30")
    assert page.response.status == 200
    page.wait_until(lambda shown: set(shown["pods"]) == old, 15, "both pods answering")
    wait_available(olds)

    rollout = production.rollout_restart("frontend")
    new = {pod.name for pod in production.live_pods("frontend")}
    assert len(new) == 2 and not new & old, rollout.events
    assert all(pod.gone.wait(30) for pod in olds), [pod.describe() for pod in olds]
    built = build_args()  # what the images were built with
    version, commit = built["VERSION"], built["GIT_COMMIT"][:7]
    build = version if version.startswith(commit) else f"{version} ({commit})"  # as the page says it
    alone_from = answers(page.read(), new)
    shown = page.wait_until(
        lambda shown: (
            all(shown["pods"].get(pod, {}).get("build") == build for pod in new)
            and answers(shown, new) >= alone_from + AFTER * 10
        ),
        30,
        "the new pods answering alone, with their builds",
    )
    assert set(shown["pods"]) == old | new, shown["pods"]
    assert {shown["pods"][pod]["code"] for pod in old | new} == {code}
    assert page.service_failures(shown) == 0, shown["failures"]
    assert shown["failures"]["refused/reset"]["count"] == page.network_changes, shown["failures"]
    page.screenshot(SCREENSHOT)
    record("24 live page: calls answered, until the old pods exited", answers(shown, old | new), "requests")
    record("24 live page: rollout duration", rollout.finished_at - rollout.started_at)

    frozen = production.live_pods("frontend")
    before = answers(page.read(), new)
    for pod in frozen:
        pod.freeze()
    try:
        time.sleep(FREEZE)
    finally:
        for pod in frozen:
            pod.thaw()
    shown = page.wait_until(lambda shown: answers(shown, new) > before + 10, 15, "answers after the thaw")
    timeouts = shown["failures"]["timeout"]["count"]
    assert timeouts > 0, shown["failures"]
    assert page.service_failures(shown) == timeouts, shown["failures"]
    assert shown["failures"]["refused/reset"]["count"] == page.network_changes, shown["failures"]
    assert shown["marks"]["timeout"] == timeouts
    assert page.errors == []
    assert page.policy_violations() == []
    record("24 live page: calls drawn as timeouts while the frontends were frozen", timeouts, "requests")
    record(
        "24 live page: calls chromium failed itself (a host network change)", page.network_changes, "requests"
    )
