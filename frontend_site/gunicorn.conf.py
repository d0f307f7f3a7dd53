"""gunicorn settings of the frontend container (`gunicorn --config gunicorn.conf.py`): what differs from the
settings both services share (podkit/gunicorn_settings.py), and the game-over on SIGTERM (`on_exit`)."""

from podkit import stop
from podkit.gunicorn_settings import *  # noqa: F403 - the settings both services share
from podkit.gunicorn_settings import bind_on

wsgi_app = "frontend_site.wsgi:application"
bind = bind_on(8080)
# In-flight requests get this long after SIGTERM; part of the shutdown budget (README, "How a pod stops").
graceful_timeout = 15


def on_exit(server):
    """After the workers have drained, tell the backend this pod is gone (the preStop hook does too)."""
    from frontend.backend_client import post_game_over

    stop.mark(f"game-over sent by on_exit: {post_game_over()}")
    stop.mark("exit")
