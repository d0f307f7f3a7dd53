"""Properties of the backend over generated requests (hypothesis, Django's test client, real settings).

Whatever the method, path, headers, Host and body: no 5xx, always a JSON object, with "error" in it when
the status is 4xx.
"""

import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

ENDPOINTS = ["/get-config", "/ping", "/game-over"]
METHODS = st.one_of(
    st.sampled_from(["GET", "POST"]),
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]),
    st.from_regex(r"\A[A-Za-z]{1,12}\Z"),
)
# Any text after one leading slash; never two, as the test client would read "//x" as a host.
PATHS = st.one_of(
    *[st.sampled_from(ENDPOINTS)] * 2,
    st.tuples(st.sampled_from(ENDPOINTS), st.text(max_size=20)).map("".join),
    st.text(max_size=40).map(lambda text: "/" + text.lstrip("/")),
)
SERVED_HOSTS = ["svc-backend.task-03.svc.cluster.local:5000", "127.0.0.1:5000", "localhost", "[::1]:5000"]
BAD_HOSTS = ["evil.example.com", "10.9.8.7:5000", "svc-backend.other:5000", "a b", "[::1", ""]
# Half the time a Host the service answers to and one of its paths, so requests reach the views.
HOSTS = st.one_of(*[st.sampled_from(SERVED_HOSTS)] * 2, st.sampled_from(BAD_HOSTS), st.text(max_size=30))
# Header values as WSGI carries them: latin-1 text without line breaks.
HEADER_VALUES = st.text(
    st.characters(min_codepoint=9, max_codepoint=255, exclude_characters="\n\r"), max_size=40
)
KNOWN_HEADERS = ["Accept", "Content-Type", "X-Pod-Name", "X-Forwarded-For", "X-Forwarded-Host", "Cookie"]
HEADER_NAMES = st.one_of(
    st.sampled_from(KNOWN_HEADERS), st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,20}\Z")
).filter(lambda name: name.lower() not in {"host", "content-length", "transfer-encoding"})
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4)
# 64 KiB is DATA_UPLOAD_MAX_MEMORY_SIZE: one byte more must be refused, not read.
BODIES = st.one_of(st.binary(max_size=300), st.just(b"{" * (64 * 1024 + 1)))


def assert_json_contract(response, method):
    """Below 500, JSON, an object, and an "error" message for every 4xx (HEAD answers carry no body)."""
    assert response.status_code < 500, response.content
    assert response["Content-Type"] == "application/json"
    if method.upper() == "HEAD":
        return
    body = json.loads(response.content)
    assert isinstance(body, dict)
    if response.status_code >= 400:
        assert isinstance(body.get("error"), str), body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=METHODS, path=PATHS, host=HOSTS, headers=HEADERS, body=BODIES)
def test_any_request__json_object_below_500(client, method, path, host, headers, body):
    """Any method, path, Host, headers and body: a JSON object below 500, with "error" when 4xx."""
    response = client.generic(method, path, data=body, headers={**headers, "Host": host})
    event(f"HTTP {response.status_code}")  # --hypothesis-show-statistics shows what was reached
    assert_json_contract(response, method)
