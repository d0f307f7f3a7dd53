"""Scenario 2: the course's five HTTP checks, through the Services' names."""

import http.client
import json
import re
import socket
import time

import pytest

pytestmark = pytest.mark.e2e

# Inside the container: for each gunicorn worker (children of PID 1), the remote ports of the established
# connections to `port` it holds.
PORTS_PER_WORKER = r"""
import json, os, sys
port = int(sys.argv[1])
remote_port = {}
for line in open("/proc/net/tcp").read().splitlines()[1:]:
    fields = line.split()
    if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
        remote_port[fields[9]] = int(fields[2].split(":")[1], 16)
held = {}
for pid in open("/proc/1/task/1/children").read().split():
    held[pid] = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in remote_port:
            held[pid].append(remote_port[target[8:-1]])
print(json.dumps(held))
"""


def who_am_i_per_worker(frontend, host, connections=12, rounds=5):
    """GET /who-am-i on new connections until every gunicorn worker has answered some; {pid: [answers]}.

    Each request is sent but for its last CRLF, so the worker that took the connection holds it while
    /proc inside the container tells which worker that is (by the client's port); then the request is
    completed and its answer is that worker's. Keep-alive is off in these services, hence this detour.
    """
    answers = {}
    for _ in range(rounds):
        pending = []
        for _ in range(connections):
            sock = socket.create_connection(("127.0.0.1", frontend.published_port()), timeout=10)
            sock.sendall(f"GET /who-am-i HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n".encode())
            pending.append(sock)
        time.sleep(0.2)  # let the workers accept them
        found = frontend.exec("python", "-c", PORTS_PER_WORKER, "8080")
        held = json.loads(found.stdout) if found.returncode == 0 else {}
        worker_of = {port: pid for pid, ports in held.items() for port in ports}
        for sock in pending:
            port = sock.getsockname()[1]
            sock.sendall(b"\r\n")
            with sock:
                reply = http.client.HTTPResponse(sock)
                reply.begin()
                answer = (reply.status, json.loads(reply.read()))
            answers.setdefault(worker_of.get(port, "unknown"), []).append(answer)
        for pid in held:
            answers.setdefault(pid, [])
        if held and all(answers[pid] for pid in held):
            return answers
    raise AssertionError(f"some gunicorn worker answered no /who-am-i: {answers} {found.stderr}")


def test_service_names__answer_the_courses_five_checks(steady):
    """/get-config, /ping, /startup, /who-am-i (every worker) and /health answer through svc-* names."""
    backend, frontend = steady.pod("backend"), steady.pod("frontend")

    config = steady.service_get("svc-backend", "/get-config")
    assert config.status == 200, config
    code = config.json()["code"]
    assert re.fullmatch(r"BACKEND-\d{4}", code) and config.json()["status"] == "ready", config
    assert code == backend.plan.env(backend.downward).get("CONFIG_CODE", code)  # the ConfigMap's, if set
    ping = steady.service_get("svc-backend", "/ping")
    assert (ping.status, ping.json()) == (200, {"status": "ok"}), ping
    startup = steady.service_get("svc-frontend", "/startup")
    assert (startup.status, startup.json()) == (200, {"status": "ready", "backend_code": code}), startup
    per_worker = who_am_i_per_worker(frontend, f"svc-frontend.{steady.namespace}.svc.cluster.local:8080")
    right = (200, {"name": frontend.name, "code": code})
    assert all(answer == right for answers in per_worker.values() for answer in answers), per_worker
    assert len(per_worker.keys() - {"unknown"}) >= 2, f"expected several gunicorn workers: {per_worker}"
    health = steady.service_get("svc-frontend", "/health")
    assert (health.status, health.json()) == (200, {"status": "healthy"}), health

    # Inside the cluster with the short names, as the course does it (`kubectl run test --image=curl...`).
    script = "; ".join(
        # --max-time: a bound, not a timing; the names are the cluster DNS pod's (tests/e2e/test_dns.py).
        f"curl -sS --max-time 15 -w ' %{{http_code}}\\n' {url}"
        for url in (
            "http://svc-backend:5000/get-config",
            "http://svc-backend:5000/ping",
            "http://svc-frontend:8080/startup",
            "http://svc-frontend:8080/who-am-i",
            "http://svc-frontend:8080/health",
        )
    )
    client = steady.run_client("frontend:latest", ["sh", "-c", script])
    lines = [line.rsplit(" ", 1) for line in client.stdout.splitlines()]
    assert client.returncode == 0 and len(lines) == 5, client
    assert [status for _, status in lines] == ["200"] * 5, client
    bodies = [json.loads(body) for body, _ in lines]
    assert bodies[0]["code"] == code and bodies[1] == {"status": "ok"}, bodies
    assert bodies[2]["backend_code"] == code and bodies[3] == {"name": frontend.name, "code": code}, bodies
    assert bodies[4] == {"status": "healthy"}, bodies
