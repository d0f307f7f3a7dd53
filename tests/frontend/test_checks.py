"""The /health check as django-health-check sees it: one error type, the backend client's, all the way up."""

import asyncio

import pytest
import requests
from health_check.exceptions import ServiceUnavailable

from frontend.backend_client import BackendError
from frontend.checks import BackendPing

from .conftest import BACKEND


def test_backend_ping__raises_the_clients_error_as_it_comes(backend):
    """The check adds no translation: the client's BackendError, message and outcome as they were made."""
    backend.get(f"{BACKEND}/ping", body=requests.ConnectionError())
    with pytest.raises(BackendError) as raised:
        BackendPing().run()
    assert (str(raised.value), raised.value.outcome) == (
        "backend /ping unreachable: ConnectionError",
        "unreachable",
    )


@pytest.mark.parametrize(
    ("mock_kwargs", "error"),
    [({"json": {"status": "ok"}}, None), ({"status": 500}, "backend /ping answered HTTP 500")],
)
def test_backend_ping__django_health_checks_runner_reports_it(backend, mock_kwargs, error):
    """django-health-check's own runner (its view's and its health_check command's) takes the check as it
    is: the failure a ServiceUnavailable with the client's message, never the library's "unknown error"."""
    backend.get(f"{BACKEND}/ping", **mock_kwargs)
    result = asyncio.run(BackendPing().get_result())
    if error is None:
        assert result.error is None
    else:
        assert isinstance(result.error, ServiceUnavailable)
        assert str(result.error) == error
