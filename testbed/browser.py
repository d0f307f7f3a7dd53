"""Debian's chromium, headless, driven by Playwright: the live page (`GET /` of the frontend) opened and read
back as a learner reads it.

Playwright drives the machine's own browser (`executable_path`) and never downloads one: `playwright install`
is never run. Each launch gets a fresh profile, and the flags keep chromium from calling anywhere but the
page it is given.
"""

import time
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"  # Debian's package; tests/prerequisites.py says what to install without it
FLAGS = [
    "--headless",
    "--no-sandbox",  # root, as in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What the page shows, in one call: the two tables and the marks drawn, as the learner sees them.
READ_PAGE = """() => {
  const text = (row, cell) => row.querySelector(cell).textContent;
  const marks = {};
  for (const mark of document.querySelectorAll("#scroll use")) {
    const key = mark.dataset.pod || mark.dataset.kind;
    marks[key] = (marks[key] || 0) + 1;
  }
  return {
    status: document.getElementById("status").textContent,
    pods: Object.fromEntries([...document.querySelectorAll("#pods tbody tr")].map((row) => [
      row.dataset.pod,
      {answers: Number(text(row, ".answers")), code: text(row, ".code"), build: text(row, ".build")},
    ])),
    failures: Object.fromEntries([...document.querySelectorAll("#failures tbody tr")].map((row) => [
      row.dataset.kind, {count: Number(text(row, ".count")), last: text(row, ".last")},
    ])),
    marks,
  };
}"""
# Registered before the page's own script runs: the Content-Security-Policy's refusals, which a page that
# works under its own policy never has.
WATCH_POLICY = """document.addEventListener("securitypolicyviolation", (event) => {
  window.policyViolations = window.policyViolations || [];
  window.policyViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});"""


@contextmanager
def chromium():
    """A headless chromium (a Playwright Browser), closed afterwards."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class LivePage:
    """The live page open in a tab of `browser`; `read()` returns what it shows."""

    def __init__(self, browser, url, width=1200, height=900):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors = []  # uncaught exceptions of the page's script
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.network_changes = 0  # calls chromium itself failed (below)
        self.page.on("requestfailed", self._count_network_change)
        self.page.add_init_script(WATCH_POLICY)
        self.response = self.page.goto(url)

    def read(self):
        """{"status": the status line, "pods": {name: {answers, code, build}}, "failures": {kind: {count,
        last}}, "marks": {pod name or failure kind: marks drawn}}."""
        return self.page.evaluate(READ_PAGE)

    def failed(self, shown=None):
        """Calls the failures table counts, of every kind (from `shown`, a read(), or read now)."""
        return sum(failure["count"] for failure in (shown or self.read())["failures"].values())

    def _count_network_change(self, request):
        """chromium fails every request still waiting for a connection when the host's interfaces change
        (net::ERR_NETWORK_CHANGED), as a container's start or stop changes them. The page sees a failed
        fetch like any other and draws it as refused/reset; the browser's own log tells it apart, and
        each reaches this count before the page can draw it (the same DevTools connection, in order)."""
        if request.failure == "net::ERR_NETWORK_CHANGED" and request.url.split("?")[0].endswith("/who-am-i"):
            self.network_changes += 1

    def service_failures(self, shown=None):
        """Calls drawn as failed that the service failed: all but those chromium failed itself."""
        return self.failed(shown) - self.network_changes

    def policy_violations(self):
        return self.page.evaluate("window.policyViolations || []")

    def wait_until(self, predicate, timeout, what):
        """read() every 0.1 s until predicate(read()) holds; returns that read, or fails with the last one."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.read()
            if predicate(shown):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed {what} in {timeout:g} s; it shows {shown}")
            self.page.wait_for_timeout(100)

    def click(self, button):
        """Press one of the page's buttons: "pause" (Pause/Resume) or "clear"."""
        self.page.click(f"#{button}")

    def screenshot(self, path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
