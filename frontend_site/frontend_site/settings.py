"""Settings of the frontend service: podkit's shared settings, and what is the frontend's own (README,
"Configuration")."""

from podkit.conf import env_float, env_str, stdout_logging
from podkit.settings import *  # noqa: F403 - the settings both services share

INSTALLED_APPS = ["podkit", "frontend"]
ROOT_URLCONF = "frontend_site.urls"
WSGI_APPLICATION = "frontend_site.wsgi.application"

BACKEND_URL = env_str("BACKEND_URL", "http://svc-backend.task-03.svc.cluster.local.:5000").rstrip("/")
# Bounds each phase (connect, read) of a backend call. Kept well under the probes' timeoutSeconds so a
# hung backend gets a clear 503 from us instead of a probe timeout.
BACKEND_TIMEOUT = env_float("BACKEND_TIMEOUT", 0.5)
# /health reuses a backend check this long (from its start) before asking again: one check per worker per
# interval whatever the load, and a change of the backend's state shows within it; well under the liveness
# probe's 5 s period, so a failure is still seen within one period (README, "Answers").
HEALTH_REUSE_SECONDS = env_float("HEALTH_REUSE_SECONDS", 1.0)
# Bounds the game-over POST gunicorn's master sends on shutdown (gunicorn.conf.py, on_exit).
GAME_OVER_TIMEOUT = env_float("GAME_OVER_TIMEOUT", 2.0)
# Downward API (metadata.name); "unknown" outside Kubernetes.
POD_NAME = env_str("POD_NAME", "unknown")
# /readyz (podkit): ready once this pod holds the backend's code.
PODKIT_READINESS_CHECKS = ["frontend.backend_client.missing_code"]
# What `python -m podkit.fault liveness fail` fails: /livez, and /health, the k3s overlay's liveness probe.
PODKIT_LIVENESS_PATHS = ["/livez", "/health"]

LOGGING = stdout_logging("frontend")
