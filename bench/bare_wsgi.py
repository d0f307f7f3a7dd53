"""The ceiling: a WSGI app with no Django that answers what our endpoints answer, byte for byte.

gunicorn serves it with the frontend's own gunicorn.conf.py (same workers, threads, access log), so the
gap between it and an endpoint is what Django, our code and the backend round trip cost. POD_NAME and
CONFIG_CODE are the values the benchmark gives the real services.
"""

import json
import os

NAME = os.environ.get("POD_NAME") or "unknown"
CODE = os.environ.get("CONFIG_CODE") or "BACKEND-4242"

BODIES = {
    path: json.dumps(body).encode()
    for path, body in {
        "/who-am-i": {"name": NAME, "code": CODE},
        "/health": {"status": "healthy"},
        "/startup": {"status": "ready", "backend_code": CODE},
        "/get-config": {"code": CODE, "status": "ready"},
        "/ping": {"status": "ok"},
    }.items()
}
NOT_FOUND = b'{"error": "not found", "status": 404}'


def application(environ, start_response):
    body = BODIES.get(environ.get("PATH_INFO", ""))
    status = "200 OK" if body is not None else "404 Not Found"
    body = body if body is not None else NOT_FOUND
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
