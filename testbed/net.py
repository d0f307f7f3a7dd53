"""Ports and plain HTTP on 127.0.0.1: a free port, waiting for one to be free again, a timed GET."""

import socket
import time
from typing import NamedTuple

import requests


def free_port():
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port_free(port, timeout=5.0):
    """Wait until `port` can be bound again: killed workers close their listening socket a moment after
    the master has been reaped."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
        time.sleep(0.02)


class Timed(NamedTuple):
    status: int
    headers: requests.structures.CaseInsensitiveDict
    body: object  # the parsed JSON body, or None when it is not JSON
    seconds: float


def timed_get(url, timeout=10.0):
    """GET over a new connection, timed from before connecting to the last byte of the body."""
    started = time.monotonic()
    response = requests.get(url, headers={"Connection": "close"}, timeout=timeout)
    try:
        body = response.json()
    except ValueError:
        body = None
    return Timed(response.status_code, response.headers, body, time.monotonic() - started)
