"""Properties of the backend over generated requests (hypothesis, Django's test client, real settings).

Whatever the method, path, headers, Host and body: no 5xx, always a JSON object, with "error" in it when
the status is 4xx.
"""

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.http_properties import any_request, assert_json_contract

ENDPOINTS = ["/get-config", "/ping", "/game-over"]
SERVED_HOSTS = ["svc-backend.task-03.svc.cluster.local:5000", "127.0.0.1:5000", "localhost", "[::1]:5000"]
BAD_HOSTS = ["evil.example.com", "10.9.8.7:5000", "svc-backend.other:5000", "a b", "[::1", ""]
# 64 KiB is DATA_UPLOAD_MAX_MEMORY_SIZE: one byte more must be refused, not read.
BODIES = st.one_of(st.binary(max_size=300), st.just(b"{" * (64 * 1024 + 1)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**any_request(ENDPOINTS, SERVED_HOSTS, BAD_HOSTS, BODIES))
def test_any_request__json_object_below_500(client, method, path, host, headers, body):
    """Any method, path, Host, headers and body: a JSON object below 500, with "error" when 4xx."""
    response = client.generic(method, path, data=body, headers={**headers, "Host": host})
    event(f"HTTP {response.status_code}")  # --hypothesis-show-statistics shows what was reached
    assert_json_contract(response, method)
