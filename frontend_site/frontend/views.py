"""The frontend's endpoints: the startup probe, who-am-i, and the liveness probe."""

import asyncio

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.http import require_safe
from health_check.views import HealthCheckView

from frontend import backend_client
from frontend.checks import BackendPing


@require_safe
def startup(request):
    """Startup probe: fetch the backend's configuration, once per call (the kubelet retries)."""
    try:
        code = backend_client.config_code(refresh=True)
    except backend_client.BackendError as exc:
        return JsonResponse({"status": "error", "message": str(exc)}, status=503)
    return JsonResponse({"status": "ready", "backend_code": code})


@require_safe
def who_am_i(request):
    """This pod's name (Downward API) and the backend's code, fetched by this worker if it lacks it."""
    try:
        code = backend_client.config_code()
    except backend_client.BackendError as exc:
        body = {"name": settings.POD_NAME, "code": None, "status": "error", "message": str(exc)}
        return JsonResponse(body, status=503)
    return JsonResponse({"name": settings.POD_NAME, "code": code})


class HealthView(HealthCheckView):
    """Liveness probe: django-health-check's runner, always answering JSON (the kubelet sends */*)."""

    checks = (BackendPing,)
    http_method_names = ["get", "head"]

    async def get(self, request, *args, **kwargs):
        with self.get_executor() as executor:
            results = await asyncio.gather(*(check.get_result(executor) for check in self.get_checks()))
        failures = {repr(result.check): str(result.error) for result in results if result.error}
        if failures:
            body = {"status": "unhealthy", "error": "; ".join(failures.values()), "checks": failures}
            return JsonResponse(body, status=503)
        return JsonResponse({"status": "healthy"})
