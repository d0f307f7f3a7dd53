"""A Service's virtual address (kube-proxy's place): new connections spread over the Service's endpoints.

It runs inside the Service's proxy pod (`python service_proxy.py ENDPOINTS PORT...`, standard library only),
at the Service's fixed address on the pod network, listening on each Service port. Each new connection goes
to the next endpoint of that port, round-robin, as kube-proxy's userspace mode chose them; established
connections are never touched, whatever the endpoints become. The endpoints file is a JSON object
{"<service port>": [[pod IP, target port], ...]} that the Cluster replaces atomically (write, then rename);
every accepted connection first checks whether it was replaced (one stat), as dns_server.py does.

Unlike the userspace proxier, a connection the chosen endpoint refuses is not retried on another: it is
reset, which is what a client of kube-proxy's iptables mode sees (its SYN, DNATed to that endpoint, is
refused). So is a connection while the Service has no endpoint (iptables mode REJECTs it). The client's
address the pod sees is this proxy's.
"""

import asyncio
import contextlib
import itertools
import json
import os
import socket
import struct
import sys

CONNECT_TIMEOUT = 5.0  # s; the pod network is one bridge, a live endpoint answers at once
CHUNK = 65536


class Endpoints:
    """The endpoints file, read again whenever it was replaced."""

    def __init__(self, path):
        self.path, self.version, self.ports = path, None, {}
        self.turn = itertools.count()

    def pick(self, port):
        stat = os.stat(self.path)
        if (stat.st_ino, stat.st_mtime_ns) != self.version:
            with open(self.path) as endpoints:
                self.ports = {int(key): value for key, value in json.load(endpoints).items()}
            self.version = (stat.st_ino, stat.st_mtime_ns)
        endpoints = self.ports.get(port) or []
        return tuple(endpoints[next(self.turn) % len(endpoints)]) if endpoints else None


def reset(writer):
    """Close with an RST (SO_LINGER 0), as a refused or broken connection ends for the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def pipe(reader, writer, peer_writer):
    """Copy one direction until EOF (passed on as a half-close) or a reset (passed on as a reset)."""
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        reset(writer)
        reset(peer_writer)


async def handle(client_reader, client_writer, port, endpoints):
    try:
        await forward(client_reader, client_writer, port, endpoints)
    except Exception as exc:  # one bad connection or a half-written file must not stop the proxy
        print(f"connection on port {port} reset: {exc!r}", file=sys.stderr, flush=True)
        reset(client_writer)


async def forward(client_reader, client_writer, port, endpoints):
    endpoint = endpoints.pick(port)
    if endpoint is None:
        reset(client_writer)
        return
    try:
        upstream = asyncio.open_connection(endpoint[0], endpoint[1])
        upstream_reader, upstream_writer = await asyncio.wait_for(upstream, CONNECT_TIMEOUT)
    except (OSError, TimeoutError):
        reset(client_writer)
        return
    await asyncio.gather(
        pipe(client_reader, upstream_writer, client_writer),
        pipe(upstream_reader, client_writer, upstream_writer),
    )
    for writer in (client_writer, upstream_writer):
        writer.close()


async def serve(endpoints_path, ports):
    endpoints = Endpoints(endpoints_path)
    anywhere = "0.0.0.0"  # noqa: S104 - the proxy pod's own network namespace
    for port in ports:
        await asyncio.start_server(
            lambda r, w, p=port: handle(r, w, p, endpoints), anywhere, port, backlog=1024
        )
    print(f"proxying ports {ports} to the endpoints in {endpoints_path}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], [int(port) for port in sys.argv[2:]]))
