"""Pieces both services need: settings read from the environment, and the JSON-only error contract.

This file is identical in backend_site/ and frontend_site/: each image is built from its own folder,
so the two cannot import one copy. tests/test_shared_module.py fails when the copies drift apart.
"""

import logging
import os

from django.core.exceptions import DisallowedHost
from django.http import JsonResponse

logger = logging.getLogger("django.security.DisallowedHost")


def env_str(name, default=""):
    """An environment variable, or the default when it is unset or empty."""
    return os.environ.get(name) or default


def env_bool(name, default=False):
    """True for 1/true/yes/on (any case); the default when unset or empty."""
    value = os.environ.get(name)
    if not value:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name, default):
    """A positive number of seconds (or similar); a clear error names the variable when it is not."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number


def allowed_hosts(service):
    """Host names a pod of `service` answers to, unless DJANGO_ALLOWED_HOSTS lists them instead.

    The kubelet's probes send `Host: <pod IP>:<port>` and NodePort clients the node's IP, so POD_IP and
    HOST_IP (Downward API) are always added; in-cluster clients use the Service's DNS names.
    """
    namespace = env_str("POD_NAMESPACE", "task-03")
    names = [
        "localhost",
        "127.0.0.1",
        "[::1]",
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]
    listed = env_str("DJANGO_ALLOWED_HOSTS")
    if listed:
        names = [name.strip() for name in listed.split(",") if name.strip()]
    pod_ips = [env_str("POD_IP"), env_str("HOST_IP")]
    return names + [ip if ":" not in ip else f"[{ip}]" for ip in pod_ips if ip]


def stdout_logging(logger_name):
    """LOGGING that sends the app's own logger to stdout, beside gunicorn's access log (kubectl logs)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "[%(name)s] %(levelname)s %(message)s"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "plain",
            }
        },
        "loggers": {logger_name: {"handlers": ["stdout"], "level": "INFO"}},
    }


def error_response(status, message, **extra):
    """The one shape of every error body: {"error": ..., "status": ...}."""
    return JsonResponse({"error": message, "status": status, **extra}, status=status)


class JsonErrorsMiddleware:
    """Checks the Host header first, and turns every non-JSON error response into JSON.

    Outermost middleware: whatever Django answers below it (404 from the resolver, 405 from
    @require_http_methods, 500 from handler500), the client gets JSON with a message that says what to fix.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            request.get_host()
        except DisallowedHost as exc:
            logger.warning("%s", exc)
            return error_response(400, "Host header is not allowed; see DJANGO_ALLOWED_HOSTS")
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
