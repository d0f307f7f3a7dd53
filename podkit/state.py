"""Pod-wide state: small files in the pod's own writable memory, which every gunicorn worker sees.

Workers are forked processes that share no memory, and the root filesystem is read-only; `/tmp` is the
pod's in-memory emptyDir, so a file there is a fact of this pod alone. POD_STATE_DIR moves it (tests give
each server its own). No Django here: `python -m podkit.fault` uses it from `kubectl exec`.
"""

import os
import tempfile
from pathlib import Path

from podkit.conf import env_str


def location(name):
    """Where the state `name` lives, as a str: POD_STATE_DIR (default /tmp, the pod's emptyDir) / name.

    A str, not a Path: a request's look at the fault switches comes here, and pathlib costs 5 us a time."""
    return os.path.join(env_str("POD_STATE_DIR", "/tmp"), name)  # noqa: S108  # nosec B108 - the pod's emptyDir


def path(name):
    """Where the state `name` lives, as a Path."""
    return Path(location(name))


def read(name):
    """The text of state `name`, or None when it is not set."""
    try:
        return path(name).read_text().strip()
    except FileNotFoundError:
        return None


def write(name, text):
    """Set state `name` to `text`, atomically: a reader sees the old text or the new, never half."""
    target = path(name)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.")
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(temporary, target)


def remove(name):
    """Unset state `name` (no error when it is not set)."""
    path(name).unlink(missing_ok=True)
