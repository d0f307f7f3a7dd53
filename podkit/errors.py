"""The JSON error contract of both services, and the middleware that holds every answer to it.

Two shapes, documented in the README ("Answers"):
- an error: `{"error": "<what went wrong, or what to fix>", "status": <the HTTP status, an integer>}`,
  sometimes with more keys (`/who-am-i` adds `name`);
- a probe answer: `{"status": "<state word>"}`, plus `"error": "<why>"` when it fails.
"""

import logging

from django.core.exceptions import DisallowedHost
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers

logger = logging.getLogger("django.security.DisallowedHost")


def error_response(status, message, **extra):
    """An error in the one error shape: {"error": message, "status": status, **extra}."""
    return JsonResponse({"error": message, "status": status, **extra}, status=status)


def probe_answer(state, error=None, **extra):
    """A probe answer: {"status": state, **extra}, or with "error": why and HTTP 503 when it failed.

    Never cached: a probe must see the state now. `probe_state` is what podkit.metrics counts it by.
    """
    if error is None:
        response = JsonResponse({"status": state, **extra})
    else:
        response = JsonResponse({"status": state, "error": error, **extra}, status=503)
    add_never_cache_headers(response)
    response.probe_state = state
    return response


class JsonErrorsMiddleware:
    """Checks the Host header first, turns every non-JSON error response into JSON, and gives every answer
    its Content-Length.

    Whatever Django answers below it (404 from the resolver, 405 from @require_http_methods, 500 from
    handler500), the client gets JSON with a message that says what to fix. Where it stands among the
    middlewares, and why: podkit/settings.py.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.answer(request)
        if not response.streaming:
            # Django leaves the length out, so gunicorn would send the body chunked: a write more per answer.
            response.headers["Content-Length"] = str(len(response.content))
        return response

    def answer(self, request):
        try:
            request.get_host()
        except DisallowedHost as exc:
            logger.warning("%s", exc)
            return error_response(400, "Host header is malformed or not allowed; see DJANGO_ALLOWED_HOSTS")
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
            return response
        return self.as_json(request, response)

    @staticmethod
    def as_json(request, response):
        status = response.status_code
        if status == 404:
            return error_response(404, f"No endpoint at {request.path}")
        if status == 405:
            allow = response.get("Allow", "")
            json_response = error_response(405, f"Method {request.method} is not allowed here; use {allow}")
            json_response["Allow"] = allow
            return json_response
        return error_response(status, response.reason_phrase)
