"""What happens to connections when the pod stops: gunicorn's gthread worker, with a stop that resets none
(but, without a socket filter, a connection landing in the instant of the close).

Plain gthread stops accepting on SIGTERM and closes its listening socket once its requests are done. The
kernel had meanwhile queued connections no worker accepted, and when the last process holding the socket
closes it, it resets them: those clients had sent their request and cannot tell whether it ran (gunicorn
issue 3397). On the server's stop (the master has closed its copy of the socket first), this worker
instead accepts and serves every queued connection and closes its copy the moment accept() finds the
queue empty, no other thread running in between; whichever worker closes last thus leaves a window of
microseconds, not the whole graceful period. Where the kernel lets it attach a socket filter (mainline
Linux does; some hardened kernels want CAP_NET_ADMIN, which the pods drop), it first drops new SYNs, waits
until the queue stays empty for QUIET, and the window is gone: a new client is refused at its SYN retry.
Then it finishes its requests within graceful_timeout, as gthread does.

A worker retired while the server goes on (SIGHUP reload, max_requests) does none of this: the master
still holds the socket. Nor does one under reuse_port, whose sockets are its own. Linux only. Both
gunicorn.conf.py use it as `worker_class`.
"""

import contextlib
import ctypes
import errno
import os
import socket
import struct
import time

from gunicorn.workers.gthread import TConn, ThreadWorker

# Longer than a handshake under way when the filter goes on takes to land in the queue (one RTT).
QUIET = 0.1
POLL = 0.01  # s between looks at the queue while the filter holds new connections off

SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>, level SOL_SOCKET
# Classic BPF, run on each segment to the listener with the data starting at the TCP header (byte 13: the
# flags). SYN without ACK (a new handshake): drop (return 0); anything else: keep all of it (return ~0).
DROP_NEW_HANDSHAKES = [
    (0x30, 0, 0, 13),  # ldb [13]
    (0x54, 0, 0, 0x12),  # and #(SYN|ACK)
    (0x15, 0, 1, 0x02),  # jeq #SYN, next, skip 1
    (0x06, 0, 0, 0),  # ret #0
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1
]
_FILTER_CODE = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in DROP_NEW_HANDSHAKES))
SOCK_FPROG = struct.pack("HL", len(DROP_NEW_HANDSHAKES), ctypes.addressof(_FILTER_CODE))

# libc's accept4 and close through PyDLL, which keeps the GIL during the call: socket.accept() lets the
# request threads run before it returns, and the queue could fill again for milliseconds before close().
_libc = ctypes.PyDLL(None, use_errno=True)
_libc.accept4.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
_libc.close.argtypes = [ctypes.c_int]


def refuse_new_connections(listener):
    """From now on, connections to `listener` are never established; those under way still are."""
    listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, SOCK_FPROG)


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
    """gthread, but on the server's stop every connection is either served or refused at connect."""

    _drained = False

    def init_signals(self):
        super().init_signals()
        # A stop signal that came between the fork and the line above ran the master's handler, which the
        # fork copied, and was lost: the master would wait out graceful_timeout, then SIGKILL this worker.
        # It closes its sockets before it signals the workers, so a stop under way shows here.
        if self.server_stopping():
            self.alive = False

    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        # gthread calls this with False once it is no longer alive, to stop accepting: drain first.
        if not enabled and not self.alive and not self._drained:
            self._drained = True
            if self.server_stopping():
                self.drain_accept_queue()

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
        """Serve every queued connection and close the listening sockets; first refuse new ones if we can."""
        started = time.monotonic()
        deadline = started + self.cfg.graceful_timeout
        filtered = self.hold_off_new_connections()
        taken = 0
        try:
            listeners = [(listener, listener.getsockname()) for listener in self.sockets]
            if filtered:
                quiet_since = started
                while time.monotonic() - quiet_since < QUIET and time.monotonic() < deadline:
                    for listener, server in listeners:
                        while (client := self.accept_queued(listener)) is not None:
                            taken += self.take(client, server)
                            quiet_since = time.monotonic()
                    self.notify()
                    self.wait_for_and_dispatch_events(timeout=POLL)
            for listener, server in listeners:
                listener.setblocking(False)
                while (client := accept_or_close(listener)) is not None:
                    taken += self.take(client, server)
        except OSError as exc:
            self.log.warning("Accept queue not drained: %s", exc)
            return
        self.log.info(
            "Accept queue drained in %.3f s (%d connections taken, new ones %s)",
            time.monotonic() - started,
            taken,
            "dropped at SYN" if filtered else "queued until the close",
        )

    def hold_off_new_connections(self):
        """Attach the SYN-dropping filter to every listening socket; False if the kernel refuses it."""
        try:
            for listener in self.sockets:
                refuse_new_connections(listener)
        except OSError as exc:
            self.log.info("No socket filter (%s): draining until accept() finds the queue empty", exc)
            return False
        return True

    @staticmethod
    def accept_queued(listener):
        """A connection from `listener`'s queue, or None if it is empty (the listener is non-blocking)."""
        try:
            return listener.accept()[0]
        except (BlockingIOError, ConnectionAbortedError):
            return None

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
