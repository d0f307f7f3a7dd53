"""The django-health-check check behind /health (the liveness probe).

Bounded by the backend client's own timeouts (BACKEND_TIMEOUT), so /health runs it directly; the client
shares one /ping among concurrent checks and reuses its result for HEALTH_REUSE_SECONDS.
"""

import dataclasses

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from frontend import backend_client


@dataclasses.dataclass
class BackendPing(HealthCheck):
    """The backend answers /ping: without it this frontend can serve nothing useful."""

    def run(self):
        try:
            backend_client.ping()
        except backend_client.BackendError as exc:
            raise ServiceUnavailable(str(exc)) from exc
