"""Settings of the backend service: podkit's shared settings, and what is the backend's own (README,
"Configuration")."""

import secrets

from podkit.conf import env_str, stdout_logging
from podkit.settings import *  # noqa: F403 - the settings both services share

INSTALLED_APPS = ["podkit", "backend"]
ROOT_URLCONF = "backend_site.urls"
WSGI_APPLICATION = "backend_site.wsgi.application"
# /game-over takes no payload; anything bigger than this is refused with 413 before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

# The configuration code handed to frontends. gunicorn preloads the app (podkit/gunicorn_settings.py), so this
# line runs once in the master and every forked worker serves the same code. CONFIG_CODE pins it, e.g. from a
# ConfigMap, so it also survives restarts of the pod.
CONFIG_CODE = env_str("CONFIG_CODE") or f"BACKEND-{secrets.randbelow(9000) + 1000}"
# What `python -m podkit.fault liveness fail` fails: /livez, and /ping, the k3s overlay's liveness probe.
PODKIT_LIVENESS_PATHS = ["/livez", "/ping"]

LOGGING = stdout_logging("backend")
