"""The frontend's endpoints: the startup probe, who-am-i, and the liveness probe."""

from django.conf import settings
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views import View
from django.views.decorators.http import require_safe
from health_check.exceptions import HealthCheckException

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


class HealthView(View):
    """Liveness probe: django-health-check's checks, answering JSON whatever the Accept header.

    The checks run in this thread: django-health-check's own async view costs an event loop and an
    executor per request, twice the CPU of the check itself (bench/README.md).
    """

    checks = (BackendPing,)
    http_method_names = ["get", "head"]

    def get(self, request, *args, **kwargs):
        failures = {}
        for check_class in self.checks:
            check = check_class()
            try:
                check.run()
            except HealthCheckException as exc:
                failures[repr(check)] = str(exc)
        if failures:
            body = {"status": "unhealthy", "error": "; ".join(failures.values()), "checks": failures}
            response = JsonResponse(body, status=503)
        else:
            response = JsonResponse({"status": "healthy"})
        add_never_cache_headers(response)
        return response
