"""podkit.gunicorn: how a worker tells the server's stop from a worker's own exit, against real processes'
/proc/<pid>/fd, and the gunicorn it was written against (the drain itself runs under real gunicorn in
tests/integration/test_shutdown.py)."""

import hashlib
import importlib
import inspect
import logging
import os
import socket
import subprocess

import gunicorn
import pytest
from gunicorn.config import Config

from podkit.gunicorn import DrainingThreadWorker
from testbed.processes import ROOT as REPO

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


# What of gunicorn the worker leans on, as read when it was last reviewed against podkit/gunicorn.py: the
# first 16 hex digits of the sha256 of each one's source (inspect.getsource).
REVIEWED = {
    "gunicorn.arbiter.Arbiter.stop": "7138b6afd9c46ae0",  # closes the listeners, then signals the workers
    "gunicorn.workers.base.Worker.init_signals": "65442e0602b05f37",
    "gunicorn.workers.gthread.ThreadWorker.run": "f92c7394d85715a4",  # set_accept_enabled(False), nr_conns
    "gunicorn.workers.gthread.ThreadWorker.set_accept_enabled": "140150ebfd3cae34",
    "gunicorn.workers.gthread.ThreadWorker.enqueue_req": "c9f428953d24acef",
    "gunicorn.workers.gthread.ThreadWorker.handle_exit": "b4e7decd4f9203ac",
    "gunicorn.workers.gthread.ThreadWorker.accept": "f8dcead3dce5c851",  # what take() does in its place
    "gunicorn.workers.gthread.TConn.__init__": "c8763d7c65974e1b",
}


def requirement(name):
    """The version of `name` that both services' requirements.txt pin."""
    pins = set()
    for service in ("backend_site", "frontend_site"):
        for line in (REPO / service / "requirements.txt").read_text().splitlines():
            if line.lower().startswith(f"{name}=="):
                pins.add(line.split("==")[1].strip())
    assert len(pins) == 1, f"{name} is pinned differently, or not at all: {pins}"
    return pins.pop()


def test_gunicorn__runs_the_version_both_services_pin():
    """The worker subclasses gthread's internals, so gunicorn is pinned, and what runs is the pin."""
    assert gunicorn.__version__ == requirement("gunicorn")


def test_gthread__the_internals_the_worker_uses_are_the_ones_reviewed():
    """Fails loudly on a gunicorn whose stop or gthread differs from the one podkit/gunicorn.py was read
    against: read the new source, adjust the worker, then record the new digests here."""
    changed = {}
    for dotted, digest in REVIEWED.items():
        module, _, qualified = dotted.rpartition(".")
        module, _, owner = module.rpartition(".")
        source = inspect.getsource(getattr(getattr(importlib.import_module(module), owner), qualified))
        now = hashlib.sha256(source.encode()).hexdigest()[:16]
        if now != digest:
            changed[dotted] = now
    assert changed == {}, (
        f"gunicorn {gunicorn.__version__} changed what podkit/gunicorn.py leans on: {changed}"
    )
