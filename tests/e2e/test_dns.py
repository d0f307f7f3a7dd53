"""The pods' name service: Service names resolve without a miss while other containers come and go."""

import json
import subprocess
import sys
import time

import pytest

from testbed import dns_server
from testbed import podman as pm
from testbed.net import free_port

# Inside a pod: resolve each name (argv[1:], "name=expected IP") round after round until stdin closes, then
# print how many lookups ran and every miss: a failure, a wrong answer, or an answer after more than 2 s
# (glibc asks again only after 5 s, so a slow answer is a lost one). "looping" tells the test it has begun.
LOOKUP_LOOP = r"""
import json, select, socket, sys, time
expected = dict(arg.split("=") for arg in sys.argv[1:])
done, misses = 0, []
print("looping", flush=True)
while not select.select([sys.stdin], [], [], 0)[0]:
    for name, ip in expected.items():
        started = time.monotonic()
        try:
            answer = sorted({info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)})
        except OSError as exc:
            answer = repr(exc)
        done, elapsed = done + 1, time.monotonic() - started
        if answer != [ip] or elapsed > 2:
            misses.append([name, answer, round(elapsed, 3)])
    time.sleep(0.01)
print(json.dumps({"lookups": done, "misses": misses}))
"""

NXDOMAIN = dns_server.NXDOMAIN
CHURN = 20  # containers started and stopped on the pod network while the loop runs


@pytest.fixture
def server(tmp_path):
    """dns_server.py as the DNS pod runs it, on a free local port; yields (port, records file)."""
    records, port = tmp_path / "records.json", free_port()
    records.write_text("{}")
    code = f"from testbed import dns_server; dns_server.serve({str(records)!r}, 'cluster.local', {port})"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith("answering"), "the server did not start"
        yield port, records
    finally:
        process.kill()
        process.wait()


def test_dns_server__answers_from_the_records_file_as_soon_as_it_is_replaced(server):
    """Names in the file answer (any case, final dot or not), as soon as it is replaced; others NXDOMAIN."""
    port, records = server
    name = "svc-backend.task-03.svc.cluster.local"
    assert dns_server.ask("127.0.0.1", name, port=port) == (NXDOMAIN, [])
    staged = records.with_name("staged")
    staged.write_text(json.dumps({name: ["10.89.0.10", "10.89.0.11"]}))
    staged.replace(records)  # as ClusterDNS.publish replaces it
    assert dns_server.ask("127.0.0.1", name.upper() + ".", port=port) == (0, ["10.89.0.10", "10.89.0.11"])
    started = time.monotonic()
    assert dns_server.ask("127.0.0.1", f"svc-backend.task-03.{name}", port=port) == (NXDOMAIN, [])
    assert time.monotonic() - started < 0.5  # a search-list variant fails at once, never forwarded


@pytest.mark.e2e
def test_pod_dns__answers_every_lookup_while_containers_come_and_go(cluster, record):
    """A lookup loop in a pod sees 0 failures while 20 other containers start and stop on the network."""
    _, frontend = cluster.apply()
    ns = cluster.namespace
    backend_ip, frontend_ip = cluster.service_ip("svc-backend"), cluster.service_ip("svc-frontend")
    names = {
        "svc-backend": backend_ip,  # short names go through the search list (ndots:5)
        f"svc-frontend.{ns}": frontend_ip,
        f"svc-backend.{ns}.svc.cluster.local.": backend_ip,  # absolute, as the frontend's BACKEND_URL
    }
    loop = subprocess.Popen(
        [*pm.PODMAN, "exec", "-i", frontend.container, "python", "-c", LOOKUP_LOOP]
        + [f"{name}={ip}" for name, ip in names.items()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert loop.stdout.readline() == "looping\n", loop.stderr.read()
        for _ in range(CHURN):
            client = cluster.run_client("frontend:latest", ["true"])
            assert client.returncode == 0, client
        out, err = loop.communicate(input="", timeout=60)
    finally:
        loop.kill()
    assert loop.returncode == 0, err
    result = json.loads(out)
    record("pod DNS lookups during 20 container starts and stops", result["lookups"], "lookups")
    assert result["lookups"] >= 100, result
    assert result["misses"] == [], result
