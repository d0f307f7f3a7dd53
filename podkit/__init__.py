"""podkit: what makes a Django project behave as a pod. Both services list it in INSTALLED_APPS.

- `podkit.conf`: settings read from the environment (strict parsing, safe defaults), the Host policy, and
  the logging config;
- `podkit.errors`: the JSON error contract and the middleware that enforces it on every answer;
- `podkit.urls`/`podkit.views`: /livez, /readyz, /version; `podkit.state`: pod-wide state; `podkit.fault`:
  the drain and the fault switches (`python -m podkit.fault`); `podkit.stop`: the stop's timeline;
- `podkit.settings`, `podkit.gunicorn_settings`: the Django and gunicorn settings both services share;
- `podkit.metrics` (/metrics), `podkit.metricsdir` (its gunicorn side), `podkit.requestid`: observability.

See README.md beside this file.
"""
