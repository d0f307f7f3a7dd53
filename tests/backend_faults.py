"""The one table of backend faults, and the one bound on the frontend's answers during them.

Each layer tests the table once: tests/frontend/test_views.py (the backend mocked with `responses`),
tests/integration/test_faults.py (real gunicorn, a stand-in or stopped backend) and
tests/e2e/test_backend_failures.py (the images as pods).
"""

# The frontend's backend calls are bounded by BACKEND_TIMEOUT (0.5 s per phase); its answers must come well
# within the probes' timeoutSeconds (2 s). Slack for a loaded 2-core machine: 1.0 s was missed by 0.07 s
# while other suites ran.
ANSWER_BOUND = 1.5

# /health answers from a backend check up to HEALTH_REUSE_SECONDS old (the frontend's default, README
# "Answers"): a fault, and its end, show in /health once this long has passed since.
HEALTH_REUSE = 1.0

# How the backend fails -> what the frontend says about it, after "backend <path> ". Not among them: a
# backend that trickles its answer a byte at a time (README, known limits).
FAULTS = {
    "unreachable": "unreachable: ConnectionError",  # nothing listens (stopped, crashed, no pod)
    "hung": "timed out after 0.5 s",  # accepts connections, never answers (SIGSTOP)
    "http_500": "answered HTTP 500",
    "not_json": "answered something that is not JSON",  # 200 with HTML
    "slow": "timed out after 0.5 s",  # a valid answer, after 2 s
}


def failure_body(path, fault, pod_name):
    """The exact JSON body the frontend's `path` answers (with 503) while the backend has this fault."""
    why = FAULTS[fault]
    if path == "/startup":
        return {"status": "error", "error": f"backend /get-config {why}"}
    if path == "/health":
        return {"status": "unhealthy", "error": f"backend /ping {why}"}
    if path == "/who-am-i":
        return {"error": f"backend /get-config {why}", "status": 503, "name": pod_name, "code": None}
    raise ValueError(f"{path} does not call the backend")
