"""podkit.gunicorn: how a worker tells the server's stop from a worker's own exit, against real processes'
/proc/<pid>/fd (the drain itself runs under real gunicorn in tests/integration/test_shutdown.py)."""

import logging
import os
import socket
import subprocess

import pytest
from gunicorn.config import Config

from podkit.gunicorn import DrainingThreadWorker

LOG = logging.getLogger("test.worker")


@pytest.fixture
def listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


@pytest.fixture
def other_process():
    """A process that holds none of our sockets, as a master that has closed its own."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def worker(master_pid, listener, **settings):
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return DrainingThreadWorker(1, master_pid, [listener], None, 30, cfg, LOG)


def test_server_stopping__not_while_the_master_holds_the_socket(listener, caplog):
    """This process as the master: it holds the socket. Its listing of /proc/self/fd names the fd of the
    listing itself, closed before it is read, as a master's fd can vanish: that is not an error."""
    assert worker(os.getpid(), listener).server_stopping() is False
    assert caplog.records == []


def test_server_stopping__once_the_master_holds_it_no_more(listener, other_process):
    assert worker(other_process.pid, listener).server_stopping() is True


def test_server_stopping__never_under_reuse_port(listener, other_process):
    """With reuse_port each worker opened its sockets itself: the master never held them."""
    assert worker(other_process.pid, listener, reuse_port=True).server_stopping() is False


def test_server_stopping__master_out_of_sight_is_not_a_stop_and_says_why(listener, caplog):
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert worker(gone.pid, listener).server_stopping() is False
    assert "cannot see the master's sockets" in caplog.text
