"""The live page's view (`GET /`): the answer, its Content-Security-Policy, and its two parameters.

What the page draws is tested in a real browser: tests/integration/test_live_page.py (real gunicorn) and
tests/e2e/test_live_page.py (the images as pods).
"""

import base64
import hashlib
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontend import live

SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
STYLE = re.compile(r"<style>(.*?)</style>", re.S)


def shown(response, name):
    """A number the page was given (data-rate="10" on its root element)."""
    return float(re.search(rf'data-{name}="([^"]*)"', response.content.decode())[1])


def sha256(text):
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_live_page__html_200_without_a_backend(client, backend):
    """GET / is an HTML page of its own (no backend call is registered, so none is made), never cached."""
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Content-Length"] == str(len(response.content))
    assert "no-store" in response["Cache-Control"]
    assert response.content.startswith(b"<!doctype html>")
    assert (shown(response, "rate"), shown(response, "window")) == (10, 60)
    assert not re.search(rb"@[A-Z_]+@", response.content), "a marker left unfilled"


def test_live_page__policy_allows_only_its_own_script_and_style(client):
    """The CSP allows the page's one inline script and one style by their hashes, and calls to its own origin;
    nothing else, from anywhere."""
    response = client.get("/")
    page = response.content.decode()
    scripts, styles = SCRIPT.findall(page), STYLE.findall(page)
    assert len(scripts) == 1
    assert len(styles) == 1
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy == {
        "default-src": "'none'",
        "script-src": sha256(scripts[0]),
        "style-src": sha256(styles[0]),
        "connect-src": "'self'",
        "img-src": "'self'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }


def test_live_page__refers_to_nothing_outside_itself(client):
    """No link, source or stylesheet import leaves the page: it works on an air-gapped node."""
    page = client.get("/").content.decode()
    assert re.findall(r'(?:href|src)="([^"#][^"]*)"', page) == []
    assert "@import" not in page
    assert "url(" not in page
    assert set(re.findall(r"fetch\(([^,)]*)", page)) == {"path"}
    assert set(re.findall(r'get\("([^"]*)"\)', page)) == {"/who-am-i", "/version"}


@pytest.mark.parametrize(
    ("query", "rate", "window"),
    [
        ("rate=5", 5, 60),
        ("window=120", 10, 120),
        ("rate=2.5&window=30", 2.5, 30),
        ("rate=1000", 20, 60),
        ("rate=0", 1, 60),
        ("rate=-3", 1, 60),
        ("window=1", 10, 10),
        ("window=999999", 10, 300),
    ],
)
def test_live_page__parameters_clamped_to_their_bounds(client, query, rate, window):
    """A number out of bounds is clamped, not refused: the page runs at the nearest rate it allows."""
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    assert (shown(response, "rate"), shown(response, "window")) == (rate, window)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("rate=fast", "rate must be a number from 1 to 20 (calls to /who-am-i per second), got 'fast'"),
        ("rate=", "rate must be a number from 1 to 20"),
        ("rate", "rate must be a number from 1 to 20"),
        ("rate=nan", "got 'nan'"),
        ("rate=inf", "got 'inf'"),
        ("window=1e3", "window must be a number from 10 to 300 (seconds of calls drawn), got '1e3'"),
        ("window=1_0", "got '1_0'"),
        ("window=%2010", "got ' 10'"),
        ("rate=1&rate=2", "rate is given 2 times; give it once"),
        ("speed=5", "unknown parameter 'speed'; the page takes rate and window"),
        ("rate=" + "9" * 5000, "got '" + "9" * 40 + "'"),
    ],
)
def test_live_page__garbage_parameter_is_json_400(client, query, says):
    """Anything that is not a plain number is a JSON 400 that says what to send (echoing at most 40
    characters of what came)."""
    response = client.get(f"/?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == 400
    assert says in body["error"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.text(max_size=12), st.floats(allow_nan=True).map(str), st.integers().map(str)))
def test_live_page__any_rate__a_clamped_page_or_a_json_400(client, value):
    """Whatever text rate= carries: a page at a rate within the bounds, or a 400 that names the bounds."""
    response = client.get("/", {"rate": value})
    if response.status_code == 200:
        low, high = live.PARAMETERS["rate"].low, live.PARAMETERS["rate"].high
        assert low <= shown(response, "rate") <= high
    else:
        assert response.status_code == 400
        assert "from 1 to 20" in response.json()["error"]


def test_live_page__head_without_body_and_post_is_json_405(client):
    """HEAD is the page's headers alone; other methods get the JSON 405 every endpoint gives."""
    head = client.head("/")
    assert head.status_code == 200
    assert head.content == b""
    post = client.post("/")
    assert post.status_code == 405
    assert post.json()["status"] == 405
    assert post["Allow"] == "GET, HEAD"
