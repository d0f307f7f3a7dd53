"""Settings of the backend service. Every knob is an environment variable with a safe default (README)."""

import secrets

from podkit.conf import allowed_hosts, env_bool, env_str, stdout_logging

DEBUG = env_bool("DJANGO_DEBUG")
# Nothing here is signed (no sessions, CSRF, auth or messages), so a key made anew on each start breaks
# nothing, and an unset variable can never ship a well-known key.
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
ALLOWED_HOSTS = allowed_hosts()

INSTALLED_APPS = ["podkit", "backend"]
MIDDLEWARE = [
    "podkit.requestid.RequestIdMiddleware",
    "podkit.metrics.MetricsMiddleware",
    "podkit.errors.JsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
]
ROOT_URLCONF = "backend_site.urls"
WSGI_APPLICATION = "backend_site.wsgi.application"
DATABASES = {}
USE_TZ = True
# /game-over takes no payload; anything bigger than this is refused with 413 before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

# The configuration code handed to frontends. gunicorn preloads the app (gunicorn.conf.py), so this line
# runs once in the master and every forked worker serves the same code. CONFIG_CODE pins it, e.g. from a
# ConfigMap, so it also survives restarts of the pod.
CONFIG_CODE = env_str("CONFIG_CODE") or f"BACKEND-{secrets.randbelow(9000) + 1000}"

LOGGING = stdout_logging("backend")
