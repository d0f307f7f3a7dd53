"""django-health-check checks of the frontend: what /health (the liveness probe) asks."""

import dataclasses
import datetime

from django.conf import settings
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from frontend import backend_client


@dataclasses.dataclass
class BackendPing(HealthCheck):
    """The backend answers /ping: without it this frontend can serve nothing useful."""

    # The client's own timeout fires first; this only bounds the check if it somehow did not.
    timeout = datetime.timedelta(seconds=settings.BACKEND_TIMEOUT)

    def run(self):
        try:
            backend_client.ping()
        except backend_client.BackendError as exc:
            raise ServiceUnavailable(str(exc)) from exc
