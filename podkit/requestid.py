"""The request id: one id per request, in its answer, in both services' log lines and on the frontend's
calls to the backend, so one request can be followed across the two pods.

Taken from the caller's `X-Request-ID` when it is well formed (a proxy or the frontend made it), else made
here. No Django at import: the logging filter below is named in LOGGING, which is read early.
"""

import contextvars
import logging
import os
import re

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
# What a caller may send: short, and nothing that could break a log line or a header.
WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

# gunicorn's access log (both gunicorn.conf.py): its default format, then the request id from our answer's
# header. The request line stays as it was, `"POST /game-over HTTP/1.1"`: the course counts that text.
ACCESS_LOG_FORMAT = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" request_id=%({x-request-id}o)s'
)

_current = contextvars.ContextVar("request_id", default=None)


def current():
    """The id of the request this thread serves, or None outside a request."""
    return _current.get()


def new():
    """A fresh id: 32 hex digits (os.urandom: uuid4 costs more, and nothing needs its format)."""
    return os.urandom(16).hex()


class RequestIdMiddleware:
    """Gives the request its id before anything below it logs, and returns it in `X-Request-ID`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # META, not request.headers: that would build a dict of every header for this one.
        sent = request.META.get(META_KEY, "")
        request_id = sent if WELL_FORMED.fullmatch(sent) else new()
        token = _current.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Gives every log record `request_id`: the current request's, or "-" outside one."""

    def filter(self, record):
        record.request_id = _current.get() or "-"
        return True
