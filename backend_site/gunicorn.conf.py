"""gunicorn settings of the backend container (`gunicorn --config gunicorn.conf.py`): what differs from the
settings both services share (podkit/gunicorn_settings.py)."""

from podkit.gunicorn_settings import *  # noqa: F403 - the settings both services share
from podkit.gunicorn_settings import bind_on

wsgi_app = "backend_site.wsgi:application"
bind = bind_on(5000)
# In-flight requests get this long after SIGTERM; part of the shutdown budget (README, "How a pod stops").
graceful_timeout = 20
