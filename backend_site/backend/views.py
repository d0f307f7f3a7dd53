"""The backend's endpoints: its configuration, a cheap liveness answer, and the game-over notification."""

import logging
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.http import require_POST, require_safe

from podkit.errors import error_response, probe_answer
from podkit.metrics import counter

logger = logging.getLogger(__name__)

# What a caller may put in X-Pod-Name: a DNS label-ish name, so the log line can't be forged or flooded.
POD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")
# The frontend says which of its two shutdown paths sent a game-over (X-Game-Over-Path): the preStop hook's
# curl cannot count anything itself, so the count of both paths lives here. Anything else is "unknown".
GAME_OVER_PATHS = {"preStop", "sigterm"}
GAME_OVERS = counter(
    "game_over_received_total", "game-over notifications received, by the sender's path", ["path"]
)


@require_safe
def get_config(request):
    return JsonResponse({"code": settings.CONFIG_CODE, "status": "ready"})


@require_safe
def ping(request):
    return probe_answer("ok")


@require_POST
def game_over(request):
    """A frontend says it is shutting down. The body is optional and ignored, but bounded."""
    if "Transfer-Encoding" in request.headers:
        # Django bounds a body by its Content-Length only: a chunked one would be read whole, whatever its
        # size. No caller needs one (the body is ignored), so it is refused before it is read.
        return error_response(411, "Send the body with a Content-Length, or none")
    try:
        request.body  # noqa: B018 - reading it enforces DATA_UPLOAD_MAX_MEMORY_SIZE
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return error_response(413, f"Request body is larger than {limit} bytes")
    logger.info("Received game-over signal from %s", caller(request))
    path = request.headers.get("X-Game-Over-Path", "")
    GAME_OVERS.labels(path if path in GAME_OVER_PATHS else "unknown").inc()
    return JsonResponse({"message": "Goodbye!"})


def caller(request):
    """The caller's pod name when it sent a valid X-Pod-Name header, else its address."""
    name = request.headers.get("X-Pod-Name", "")
    if POD_NAME.fullmatch(name):
        return name
    return request.META.get("REMOTE_ADDR") or "unknown"
