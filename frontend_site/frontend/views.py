"""The frontend's endpoints: the startup probe, who-am-i, the liveness probe, and the live page."""

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.http import require_safe

from frontend import backend_client, live
from frontend.checks import BackendPing
from podkit.errors import error_response, probe_answer


@require_safe
def startup(request):
    """Startup probe: fetch the backend's configuration (a fetch under way when it asks counts; the kubelet
    retries)."""
    try:
        code = backend_client.code.refresh()
    except backend_client.BackendError as exc:
        return probe_answer("error", error=str(exc))
    return probe_answer("ready", backend_code=code)


@require_safe
def who_am_i(request):
    """This pod's name (Downward API) and the backend's code, fetched when the pod holds none yet."""
    try:
        code = backend_client.code.get()
    except backend_client.BackendError as exc:
        return error_response(503, str(exc), name=settings.POD_NAME, code=None)
    return JsonResponse({"name": settings.POD_NAME, "code": code})


@require_safe
def health(request):
    """Liveness probe: the django-health-check check, run in this thread; its backend call is shared by
    the worker's concurrent /health and reused for HEALTH_REUSE_SECONDS (README, "Answers").

    django-health-check's own view runs each check in an event loop and an executor per request, which
    costs more CPU than the check itself (README, "Answers").
    """
    try:
        BackendPing().run()
    except backend_client.BackendError as exc:
        return probe_answer("unhealthy", error=str(exc))
    return probe_answer("healthy")


@require_safe
def live_page(request):
    """The live page (HTML): /who-am-i called on a clock from the browser, each answer drawn by the pod that
    gave it and each failure by its kind (README, "Live page"). ?rate= and ?window= are clamped; anything
    else is a JSON 400 that says what to send."""
    try:
        parameters = live.parameters(request.GET)
    except ValueError as exc:
        return error_response(400, str(exc))
    return live.response(**parameters)
