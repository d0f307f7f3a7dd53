"""What both services promise for any request, and hypothesis strategies that generate such requests.

Used by tests/backend/test_properties.py and tests/frontend/test_properties.py (each runs under its own
Django settings).
"""

import json

from hypothesis import strategies as st

METHODS = st.one_of(
    st.sampled_from(["GET", "POST"]),
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]),
    st.from_regex(r"\A[A-Za-z]{1,12}\Z"),
)


def paths(endpoints):
    """Half the time one of the service's paths (so requests reach the views), else any text after one
    leading slash; never two, as the test client would read "//x" as a host."""
    return st.one_of(
        *[st.sampled_from(endpoints)] * 2,
        st.tuples(st.sampled_from(endpoints), st.text(max_size=20)).map("".join),
        st.text(max_size=40).map(lambda text: "/" + text.lstrip("/")),
    )


def hosts(served, bad):
    """Half the time a Host the service answers to, else a foreign, malformed or random one."""
    return st.one_of(*[st.sampled_from(served)] * 2, st.sampled_from(bad), st.text(max_size=30))


# Header values as WSGI carries them: latin-1 text without line breaks.
HEADER_VALUES = st.text(
    st.characters(min_codepoint=9, max_codepoint=255, exclude_characters="\n\r"), max_size=40
)
KNOWN_HEADERS = ["Accept", "Content-Type", "X-Pod-Name", "X-Forwarded-For", "X-Forwarded-Host", "Cookie"]
HEADER_NAMES = st.one_of(
    st.sampled_from(KNOWN_HEADERS), st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,20}\Z")
).filter(lambda name: name.lower() not in {"host", "content-length", "transfer-encoding"})
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4)


def any_request(endpoints, served_hosts, bad_hosts, bodies):
    """The strategies of one generated request, for `@given(**any_request(...))`: a test takes `method`,
    `path`, `host`, `headers` and `body`."""
    return {
        "method": METHODS,
        "path": paths(endpoints),
        "host": hosts(served_hosts, bad_hosts),
        "headers": HEADERS,
        "body": bodies,
    }


def assert_json_contract(response, method, pages=()):
    """Below 500, JSON, an object, and every 4xx in the error shape: {"error": <str>, "status": <the status>}
    (HEAD answers carry no body). `pages`: paths whose success is an HTML page (the frontend's live page)."""
    assert response.status_code < 500, response.content
    if response.status_code == 200 and response.request["PATH_INFO"] in pages:
        assert response["Content-Type"] == "text/html; charset=utf-8"
        return
    assert response["Content-Type"] == "application/json"
    if method.upper() == "HEAD":
        return
    body = json.loads(response.content)
    assert isinstance(body, dict)
    if response.status_code >= 400:
        assert isinstance(body.get("error"), str), body
        assert body.get("status") == response.status_code, body
