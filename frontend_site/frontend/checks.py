"""The django-health-check check behind /health (the liveness probe): the backend answers /ping.

/health runs it in the request's thread (frontend/views.py). Its one failure is the backend client's
BackendError, a django-health-check ServiceUnavailable, raised as it comes: bounded by BACKEND_TIMEOUT,
shared among the worker's concurrent checks and reused for HEALTH_REUSE_SECONDS (backend_client.ping).
"""

import dataclasses

from health_check.base import HealthCheck

from frontend import backend_client


@dataclasses.dataclass
class BackendPing(HealthCheck):
    """The backend answers /ping: without it this frontend can serve nothing useful."""

    def run(self):
        backend_client.ping()
