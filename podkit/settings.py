"""Django settings both services share. Each service's settings.py starts with `from podkit.settings import *`
and then says only what is its own: its app, its URLs, its knobs. Every knob is an environment variable with a
safe default (README, "Configuration")."""

import secrets

from podkit.conf import allowed_hosts, env_bool, env_str

__all__ = ["ALLOWED_HOSTS", "DATABASES", "DEBUG", "MIDDLEWARE", "SECRET_KEY", "USE_TZ"]

DEBUG = env_bool("DJANGO_DEBUG")
# Nothing here is signed (no sessions, CSRF, auth or messages), so a key made anew on each start breaks
# nothing, and an unset variable can never ship a well-known key.
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
ALLOWED_HOSTS = allowed_hosts()

# Outermost first: a request passes down this list to the view, its answer back up. The Host check is last,
# and each middleware above it needs to be above it; among themselves their order does not matter.
# tests/podkit/test_settings.py shows each reason.
MIDDLEWARE = [
    # Every answer returns the request's id, a refused Host's 400 too, and every log line carries it.
    "podkit.requestid.RequestIdMiddleware",
    # Counts and times every answer, a refused Host's 400 too.
    "podkit.metrics.MetricsMiddleware",
    # The probe hits it keeps are every answer the kubelet got, a refused Host's too. Its switches act once
    # the URL is resolved (process_view), so the metrics count a fault's answer under its route.
    "podkit.fault.FaultMiddleware",
    # Django's headers (nosniff, Referrer-Policy, COOP) on every answer, the JSON errors too.
    "django.middleware.security.SecurityMiddleware",
    # Refuses a malformed Host before any view runs, and turns every non-JSON error into JSON.
    "podkit.errors.JsonErrorsMiddleware",
]
DATABASES = {}
USE_TZ = True
