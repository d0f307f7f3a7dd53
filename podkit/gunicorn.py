"""What happens to connections when the pod stops: gunicorn's gthread worker, with a stop that serves every
connection the kernel queued.

Plain gthread stops accepting on SIGTERM and closes its listening socket once its requests are done. The
kernel had meanwhile queued connections no worker accepted, and when the last process holding the socket
closes it, it resets them: those clients had sent their request and cannot tell whether it ran (gunicorn
issue 3397; about 8 a stop under load here). On the server's stop (the master has closed its copy of the
socket first), this worker instead:
1. shrinks the socket's accept queue to one connection (listen(0)): a new connection that finds it taken
   is dropped at its SYN, and its client, retrying a second later, finds the socket closed: refused, never
   reset;
2. accepts and serves every queued connection, and closes its copy the moment accept() finds none, no
   other thread running in between.
Whichever worker closes last can thus reset the one connection that landed between its last accept() and
its close(), a window of microseconds that a busy CPU can stretch. A second only when two handshakes run
at once into the empty queue: the kernel answers both SYNs (the second with a SYN cookie, or on another CPU),
one fits, and the other's client sends into the closed socket and is reset. In 400 stops measured under
load (2026-12-04, tests/integration/test_shutdown.py), 27 reset one connection and none two. Then it
finishes its requests within graceful_timeout, as gthread does. Each step is a line of the stop's timeline
(podkit.stop).

A worker retired while the server goes on (SIGHUP reload, max_requests) does none of this: the master
still holds the socket. Nor does one under reuse_port, whose sockets are its own. Linux only. Both
services run it (`worker_class`, podkit/gunicorn_settings.py). It leans on gthread's internals, which
tests/podkit/test_gunicorn.py pins.
"""

import contextlib
import ctypes
import errno
import os
import socket

from gunicorn.workers.gthread import TConn, ThreadWorker

from podkit import stop

# libc's accept4 and close through PyDLL, which keeps the GIL during the call: socket.accept() lets the
# request threads run before it returns, and the queue could fill again for milliseconds before close().
_libc = ctypes.PyDLL(None, use_errno=True)
_libc.accept4.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
_libc.close.argtypes = [ctypes.c_int]


def accept_or_close(listener):
    """The socket of a connection waiting in `listener`'s accept queue; if none waits, close `listener`
    at once (no other thread runs in between) and return None."""
    while True:
        os.sched_yield()  # start on a fresh time slice: a preemption there would widen the window
        fd = _libc.accept4(listener.fileno(), None, None, socket.SOCK_CLOEXEC)
        if fd >= 0:
            return socket.socket(fileno=fd)
        code = ctypes.get_errno()
        if code in (errno.EAGAIN, errno.EWOULDBLOCK):
            _libc.close(listener.detach())
            return None
        if code != errno.ECONNABORTED:  # a client gone before it was accepted: take the next
            raise OSError(code, os.strerror(code))


class DrainingThreadWorker(ThreadWorker):
    """gthread, but on the server's stop every queued connection is served, and one at most is reset but
    for two handshakes at once (module docstring)."""

    _stopping = False  # the server's stop reached this worker (not a reload)
    _drained = False

    def init_signals(self):
        super().init_signals()
        # A stop signal that came between the fork and the line above ran the master's handler, which the
        # fork copied, and was lost: the master would wait out graceful_timeout, then SIGKILL this worker.
        # It closes its sockets before it signals the workers, so a stop under way shows here.
        if self.server_stopping():
            self.alive = False
            self.stop_began("the stop began while it booted")

    def handle_exit(self, sig, frame):
        if self.alive and self.server_stopping():
            self.stop_began("SIGTERM received")
        super().handle_exit(sig, frame)  # wakes the loop, which calls set_accept_enabled(False)

    def stop_began(self, how):
        self._stopping = True
        self.mark(how)

    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        # gthread calls this with False once it is no longer alive, to stop accepting: drain first.
        if not enabled and self._stopping and not self._drained:
            self._drained = True
            self.drain_accept_queue()

    def run(self):
        super().run()
        # gthread's run() returns once its connections are done, or graceful_timeout is over.
        if self._stopping:
            cut = self.nr_conns
            self.mark(f"graceful_timeout over, {cut} cut off" if cut else "last in-flight request done")

    def mark(self, step):
        stop.mark(f"worker {self.pid}: {step}")

    def server_stopping(self):
        """Whether the master has closed its listening sockets, which it does (Arbiter.stop) right before
        it tells the workers to stop; on a reload new workers take over the same sockets from it."""
        if self.cfg.reuse_port:  # each worker opened sockets of its own, which the master never held
            return False
        try:
            ours = {f"socket:[{os.fstat(listener.fileno()).st_ino}]" for listener in self.sockets}
            fds = f"/proc/{self.ppid}/fd"
            held = set()
            for fd in os.listdir(fds):
                # The master may close an fd between the listing and the look (reaping a worker, it lists
                # the metrics folder): gone, it holds nothing.
                with contextlib.suppress(FileNotFoundError):
                    held.add(os.readlink(f"{fds}/{fd}"))
        except OSError as exc:
            self.log.warning("Not draining the accept queue: cannot see the master's sockets (%s)", exc)
            return False
        return not ours & held

    def drain_accept_queue(self):
        """Serve every queued connection and close the listening sockets, the queue shrunk to one first."""
        taken = 0
        try:
            for listener in self.sockets:
                listener.listen(0)  # the kernel queues one more at most; a SYN that finds it taken is dropped
            for listener in self.sockets:
                server = listener.getsockname()
                listener.setblocking(False)
                while (client := accept_or_close(listener)) is not None:
                    taken += self.take(client, server)
        except OSError as exc:
            self.log.warning("Accept queue not drained: %s", exc)
            return
        self.mark(f"accept queue drained ({taken} connection{'' if taken == 1 else 's'}), listener closed")

    def take(self, client, server):
        """Hand an accepted connection to the thread pool, as gthread's accept() does; 1 if it did."""
        try:
            address = client.getpeername()
        except OSError:  # the client is already gone
            client.close()
            return 0
        self.nr_conns += 1
        client.setblocking(True)
        self.enqueue_req(TConn(self.cfg, client, address, server))
        return 1
