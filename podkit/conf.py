"""Settings helpers: every knob is an environment variable with a safe default, parsed strictly."""

import os
import socket


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


def allowed_hosts():
    """ALLOWED_HOSTS: any well-formed Host, unless DJANGO_ALLOWED_HOSTS pins a comma-separated list.

    Neither service builds a URL, a redirect or a link from the Host header, so checking it protects
    nothing, while a NodePort (any node's IP, public or private), an Ingress name or a Service's ClusterIP
    all reach the pod under names it cannot know. A malformed Host is still refused (JSON 400). When an
    operator pins the list, the pod's own IP (Downward API POD_IP) is added, because the kubelet's probes
    send `Host: <pod IP>:<port>`.
    """
    listed = [name.strip() for name in env_str("DJANGO_ALLOWED_HOSTS").split(",") if name.strip()]
    if not listed:
        return ["*"]
    pod_ip = env_str("POD_IP")
    if pod_ip:
        listed.append(f"[{pod_ip}]" if ":" in pod_ip else pod_ip)
    return listed


def stdout_logging(logger_name):
    """LOGGING that sends the app's own logger, and podkit's, to stdout, beside gunicorn's access log
    (kubectl logs).

    Each line ends with the request's id (podkit.requestid), as the access log's line of that request does.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "podkit.requestid.RequestIdFilter"}},
        "formatters": {"plain": {"format": "[%(name)s] %(levelname)s %(message)s request_id=%(request_id)s"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "plain",
                "filters": ["request_id"],
            }
        },
        "loggers": {name: {"handlers": ["stdout"], "level": "INFO"} for name in (logger_name, "podkit")},
    }


def build_info():
    """Which build this is: VERSION and GIT_COMMIT, baked into the image by its build args (Dockerfiles)."""
    return {"version": env_str("VERSION", "dev"), "git_commit": env_str("GIT_COMMIT", "unknown")}


def pod_name():
    """This pod's name: POD_NAME (Downward API metadata.name) where the manifest sets it, else the hostname,
    which Kubernetes sets to the pod's name."""
    return env_str("POD_NAME") or socket.gethostname()
