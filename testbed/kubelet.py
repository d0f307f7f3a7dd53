"""One pod run the way the kubelet runs it: container lifecycle, probes, restarts and deletion.

The probe logic follows pkg/kubelet/prober/worker.go: one worker per probe, ticking every periodSeconds from
the pod's start; nothing before initialDelaySeconds; liveness and readiness wait for the startup probe; a
result changes state only after failureThreshold equal results in a row (one success); a liveness or
startup failure kills the container, which is then started again (restartPolicy Always; the first restart at
once, later ones after the 10 s, 20 s, ... crash-loop back-off). When startup succeeds, readiness is probed at
once (the prober manager's manual trigger). On deletion, liveness and startup stop; readiness goes on until
the container has exited.

Killing a container follows kuberuntime's killContainer: the preStop hook (exec inside the container) gets
the whole grace period; then the stop signal, and SIGKILL when the grace period - counted from the start of
preStop, at least 2 s after it - runs out.
"""

import queue
import secrets
import signal
import threading
import time
import uuid
from dataclasses import dataclass

from . import net, traffic
from . import podman as pm
from .podspec import MINIMUM_GRACE_SECONDS, NAME_ALPHABET, Downward


@dataclass
class ProbeResult:
    kind: str
    attempt: int  # the container's restart count when probed
    at: float  # time.monotonic() when the probe was sent
    elapsed: float
    ok: bool
    status: int | None
    detail: str  # the answer's body (start of it) or why there was none


@dataclass
class Termination:
    """How one container stopped, phase by phase (seconds)."""

    reason: str
    grace: float
    began_at: float  # time.monotonic() when the kill began (preStop started)
    pre_stop: float | None  # how long the preStop hook ran (None: no hook)
    pre_stop_exit: int | None
    pre_stop_output: str
    signalled_at: float  # time.monotonic() just before the stop signal was sent
    sigterm_to_exit: float  # from the stop signal to PID 1's exit (podman's record of it)
    sigkill: bool  # the grace period ran out
    exit_code: int
    total: float  # from the start of preStop to the exit


class PodFailed(RuntimeError):
    pass


def pod_name(plan):
    """<deployment>-<pod-template-hash>-<5 random characters>, as a ReplicaSet names its pods."""
    suffix = "".join(secrets.choice(NAME_ALPHABET) for _ in range(5))
    return f"{plan.deployment}-{plan.template_hash[:9]}-{suffix}"


class Pod:
    """An emulated pod of `plan` (containers[0] only) on `cluster`'s network, with a kubelet of its own."""

    def __init__(self, cluster, plan, ip):
        self.cluster, self.plan, self.ip = cluster, plan, ip
        self.name = pod_name(plan)
        self.downward = Downward(
            name=self.name,
            namespace=plan.namespace,
            uid=str(uuid.uuid4()),
            ip=ip,
            host_ip=cluster.host_ip,
            node_name=cluster.node_name,
            labels=plan.labels,
            annotations=plan.annotations,
        )
        # Host ports (127.0.0.1 only) for the containerPorts and the probes' ports; they stay with the pod.
        ports = [*plan.ports.values(), *(probe.port for probe in plan.probes.values())]
        self.host_ports = {number: net.free_port() for number in dict.fromkeys(ports)}
        self.restarts = 0
        self.probes = []  # every ProbeResult, in order
        self.events = []  # (monotonic time, message)
        self.terminations = []
        self.created_at = None  # when the first container was started
        self.started_at = {}  # attempt -> when its container was started
        self.startup_passed_at = {}  # attempt -> when the startup probe passed (or the container ran)
        self.ready_at = {}  # attempt -> when it first became Ready
        self.started = threading.Event()  # the current container passed its startup probe
        self.ready = threading.Event()
        self.ready_since = None  # when it last became Ready (None: not Ready)
        self.gone = threading.Event()  # deleted, or died without being restarted
        self.deleting = False
        self.deleted_at = None
        self.restart_on_exit = True
        self.container = None  # name of the current container
        self.attempt = -1
        self.running = False
        self.failure = None
        self._lock = threading.RLock()
        self._queue = queue.Queue()
        self._pending_reply = None  # where delete() waits for its answer
        self._triggers = {kind: threading.Event() for kind in plan.probes}
        self._threads = []

    # ---- public API ----------------------------------------------------------------------------------------

    def start(self):
        """Start the container (errors raise here), then the kubelet's threads for this pod."""
        self.created_at = time.monotonic()
        self._start_container()
        self._spawn(self._sync_loop_or_fail, "sync")
        for probe in self.plan.probes.values():
            self._spawn(self._probe_worker, probe.kind, probe)
        return self

    def published_port(self, container_port=None):
        """The host port a container port is published on (default: the first port)."""
        return self.host_ports[container_port or next(iter(self.host_ports))]

    def kubelet_get(self, path, container_port=None, timeout=5.0):
        """A GET as the kubelet's prober sends it (Host: <pod IP>:<port>, User-Agent: kube-probe/1.32)."""
        port = container_port or next(iter(self.host_ports))
        return traffic.probe(self.host_ports[port], path, self.ip, port, timeout)

    def wait_ready(self, timeout):
        return self._wait(self.ready, "Ready", timeout)

    def wait_started(self, timeout):
        return self._wait(self.started, "Started", timeout)

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.failure:
                raise PodFailed(f"{self.name}: {self.failure}\n{self.describe()}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: not {what} after {timeout} s\n{self.describe()}")

    def delete(self, grace=None, wait=True):
        """`kubectl delete pod`: returns the Termination of its container (None if it was not running).

        wait=False (`--wait=false`) returns at once; the Termination is then kept in `terminations`."""
        with self._lock:
            self.deleting = True
            self.deleted_at = time.monotonic()
        self.event("deletion requested")
        self.cluster.endpoints_changed()  # a terminating pod leaves its Services' endpoints
        self._pending_reply = reply = queue.Queue()
        self._queue.put(("delete", grace, reply))
        if not wait:
            return None
        termination = reply.get(timeout=(grace or self.plan.grace) + 60)
        if isinstance(termination, Exception):
            raise PodFailed(f"{self.name}: deletion failed: {termination!r}\n{self.describe()}")
        return termination

    def kill(self, signal_name="KILL", restart=True):
        """Send a signal to PID 1 from outside, as a crash or the OOM killer would.

        restart=False: the pod is gone for good once its container exits (its node died, say); a replacement
        is a new pod, which the test starts itself, as the Deployment's ReplicaSet would.
        """
        with self._lock:
            self.restart_on_exit = restart
            container = self.container
        self.event(f"SIG{signal_name} sent to the container's PID 1 (restart: {restart})")
        pm.podman("kill", "--signal", signal_name, container)

    def freeze(self):
        """SIGSTOP every process of the container (gunicorn master and workers)."""
        self.event("SIGSTOP sent to every process of the container")
        pm.signal_every_process(self.container, signal.SIGSTOP)

    def thaw(self):
        self.event("SIGCONT sent to every process of the container")
        pm.signal_every_process(self.container, signal.SIGCONT)

    def exec(self, *command, timeout=30):
        """`kubectl exec`: run a command in the current container, as its user."""
        return pm.podman("exec", self.container, *command, timeout=timeout, check=False)

    def logs(self, attempt=None):
        """`kubectl logs` of the current container, or of an earlier attempt (restart count)."""
        return pm.logs(self._container_name(self.attempt if attempt is None else attempt))

    def probe_results(self, kind, attempt=None, since=None):
        with self._lock:
            return [
                result
                for result in self.probes
                if result.kind == kind
                and (attempt is None or result.attempt == attempt)
                and (since is None or result.at >= since)
            ]

    def event(self, message, at=None):
        with self._lock:
            self.events.append((time.monotonic() if at is None else at, message))

    def describe(self):
        """Something like `kubectl describe pod`: events and the last probe results, times from creation."""
        zero = self.created_at or time.monotonic()
        with self._lock:
            lines = [f"pod {self.name} ip={self.ip} restarts={self.restarts} container={self.container}"]
            lines += [f"  {at - zero:7.2f}s  {message}" for at, message in self.events]
            lines += [
                f"  {r.at - zero:7.2f}s  probe {r.kind:<9} #{r.attempt} {'ok  ' if r.ok else 'FAIL'} "
                f"{r.status} {r.elapsed:.3f}s {r.detail[:100]}"
                for r in self.probes[-25:]
            ]
        return "\n".join(lines)

    def remove(self):
        """Teardown: stop the kubelet threads and force-remove every container of this pod."""
        self.gone.set()
        self._queue.put(("shutdown",))
        for trigger in self._triggers.values():
            trigger.set()
        for attempt in range(self.attempt + 1):
            pm.podman("rm", "--force", "--time", "0", self._container_name(attempt), check=False)
        for thread in self._threads:
            thread.join(timeout=15)

    # ---- containers ----------------------------------------------------------------------------------------

    def _container_name(self, attempt):
        return f"{self.cluster.prefix}-{self.name}-{attempt}"

    def _spawn(self, target, name, *args):
        thread = threading.Thread(target=target, args=args, name=f"{self.name}-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_container(self):
        with self._lock:
            self.attempt += 1
            attempt = self.attempt
            name = self._container_name(attempt)
        args = self.cluster.run_args(self, name)
        started = time.monotonic()
        pm.podman("run", *args)
        with self._lock:
            self.container, self.running = name, True
            self.started_at[attempt] = started
            self.started.clear()
            self.ready.clear()
            if "startup" not in self.plan.probes:
                self._mark_started(attempt)
        self.event(f"container {name} started (restart count {self.restarts})")
        self._spawn(self._watch_exit, f"wait-{attempt}", attempt, name)

    def _mark_started(self, attempt):
        self.startup_passed_at[attempt] = time.monotonic()
        self.started.set()
        if "readiness" not in self.plan.probes:
            self._set_ready(attempt, True)

    def _set_ready(self, attempt, ready):
        """The Ready condition; the Services' endpoints follow (after the cluster's propagation delay)."""
        # "Ready" carries the time the controller reads (ready_since): the rollout rule checker reads events.
        if ready and not self.ready.is_set():
            self.ready_since = time.monotonic()
            self.ready_at.setdefault(attempt, self.ready_since)
            self.ready.set()
            self.event("Ready", at=self.ready_since)
            self.cluster.endpoints_changed()
        elif not ready and self.ready.is_set():
            self.ready.clear()
            self.ready_since = None
            self.event("not Ready")
            self.cluster.endpoints_changed()

    def _watch_exit(self, attempt, name):
        try:
            code = pm.wait_exit(name, timeout=24 * 3600)
        except pm.PodmanError:
            return  # removed at teardown
        self._queue.put(("exited", attempt, code))

    def _sync_loop_or_fail(self):
        try:
            self._sync_loop()
        except Exception as exc:  # surfaced by wait_*() and delete(): a podman failure must not hang a test
            if self.gone.is_set():
                return  # removed at teardown while it worked
            self.failure = f"pod worker crashed: {exc!r}"
            self.gone.set()
            if self._pending_reply is not None:
                self._pending_reply.put(exc)

    def _sync_loop(self):
        """The pod worker: the only thread that stops and starts containers."""
        restart_at = None
        while not self.gone.is_set():
            timeout = None if restart_at is None else max(0.0, restart_at - time.monotonic())
            try:
                message = self._queue.get(timeout=timeout)
            except queue.Empty:
                restart_at = None
                try:
                    self._start_container()
                except pm.PodmanError as exc:
                    self.failure = f"restart failed: {exc}"
                    self.gone.set()
                continue
            kind, args = message[0], message[1:]
            if kind == "shutdown":
                return
            if kind == "delete":
                grace, reply = args
                termination = None
                if self.running:
                    termination = self._kill_container(grace or self.plan.grace, "pod deleted")
                self._finish()
                reply.put(termination)
                return
            if kind == "probe-failed":
                probe_kind, attempt = args
                if attempt != self.attempt or not self.running or self.deleting:
                    continue
                probe = self.plan.probes[probe_kind]
                reason = f"{probe_kind} probe failed {probe.failure_threshold} times in a row"
                self._kill_container(probe.termination_grace or self.plan.grace, reason)
                restart_at = self._schedule_restart()
            elif kind == "exited":
                attempt, code = args
                if attempt != self.attempt or not self.running:
                    continue  # a container this loop stopped itself
                with self._lock:
                    self.running = False
                    self.started.clear()
                    self._set_ready(attempt, False)
                self.event(f"container exited with code {code}")
                if not self.restart_on_exit or self.deleting:
                    self._finish()
                    return
                restart_at = self._schedule_restart()

    def _schedule_restart(self):
        """When to start the next container: at once the first time, then crash-loop back-off."""
        with self._lock:
            self.restarts += 1
            delay = 0.0 if self.restarts == 1 else min(300.0, 10.0 * 2 ** (self.restarts - 2))
        self.event(f"restarting the container in {delay:g} s (restart count {self.restarts})")
        return time.monotonic() + delay

    def _finish(self):
        self.gone.set()
        for trigger in self._triggers.values():
            trigger.set()
        self.event("pod gone")

    def _kill_container(self, grace, reason):
        """preStop, then the stop signal, then SIGKILL when the grace period runs out."""
        container = self.container
        self.event(f"Killing: {reason} (grace period {grace:g} s)")
        started = time.monotonic()
        pre_stop = pre_stop_exit = None
        pre_stop_output = ""
        if self.plan.pre_stop:
            try:
                result = pm.podman("exec", container, *self.plan.pre_stop, timeout=grace, check=False)
                pre_stop_exit, pre_stop_output = result.returncode, result.stdout + result.stderr
            except pm.PodmanError as exc:  # the hook outlived the grace period
                pre_stop_output = str(exc)
            pre_stop = time.monotonic() - started
            self.event(f"preStop hook exited {pre_stop_exit} after {pre_stop:.2f} s")
        remaining = max(MINIMUM_GRACE_SECONDS, grace - (time.monotonic() - started))
        stop_signal = pm.stop_signal(container)
        signalled_at, signalled_wall = time.monotonic(), time.time()
        pm.podman("kill", "--signal", stop_signal, container, check=False)
        self.event(f"SIG{stop_signal} sent, SIGKILL in {remaining:.2f} s")
        code = pm.wait_exit(container, timeout=remaining)
        sigkill = code is None
        if sigkill:
            self.event("grace period over: SIGKILL")
            pm.podman("kill", "--signal", "KILL", container, check=False)
            code = pm.wait_exit(container, timeout=30)
        sigterm_to_exit = pm.finished_at(container) - signalled_wall
        total = time.monotonic() - started
        with self._lock:
            self.running = False
            self.started.clear()
            self._set_ready(self.attempt, False)
        termination = Termination(
            reason=reason,
            grace=grace,
            began_at=started,
            pre_stop=pre_stop,
            pre_stop_exit=pre_stop_exit,
            pre_stop_output=pre_stop_output,
            signalled_at=signalled_at,
            sigterm_to_exit=sigterm_to_exit,
            sigkill=sigkill,
            exit_code=code,
            total=total,
        )
        self.terminations.append(termination)
        self.event(f"container exited with code {code}, {total:.2f} s after the kill began")
        return termination

    # ---- probes --------------------------------------------------------------------------------------------

    def _probe_worker(self, probe):
        """One probe of this pod, for the pod's whole life (across container restarts)."""
        state = {"attempt": None, "last": None, "run": 0, "on_hold": False}
        trigger = self._triggers[probe.kind]
        first_tick = time.monotonic()
        while self._probe_once_or_fail(probe, state):
            # The next tick of a ticker started with the worker (ticks a slow probe overran are dropped, as
            # Go's ticker drops them); a manual trigger probes in between without moving the ticks.
            now = time.monotonic()
            next_tick = first_tick + probe.period * ((now - first_tick) // probe.period + 1)
            trigger.wait(next_tick - now)
            trigger.clear()
            if self.gone.is_set():
                return

    def _probe_once_or_fail(self, probe, state):
        try:
            return self._probe_once(probe, state)
        except Exception as exc:  # a bug in this harness must fail the test, not silence a probe
            self.failure = f"{probe.kind} probe worker crashed: {exc!r}"
            return False

    def _probe_once(self, probe, state):
        """worker.doProbe: probe once if it is time to; returns False when the worker should stop."""
        with self._lock:
            if self.gone.is_set():
                return False
            attempt, running, started = self.attempt, self.running, self.started.is_set()
            container_started = self.started_at.get(attempt)
        if attempt != state["attempt"]:
            state["attempt"], state["on_hold"] = attempt, False
        if state["on_hold"]:
            return True
        if not running:
            return True
        if self.deleting and probe.kind in ("liveness", "startup"):
            return False
        if time.monotonic() - container_started < probe.initial_delay:
            return True
        if (probe.kind == "startup") == started:
            return True  # startup is done, or liveness/readiness wait for it
        sent = time.monotonic()
        reply = traffic.probe(self.host_ports[probe.port], probe.path, self.ip, probe.port, probe.timeout)
        ok = traffic.probe_succeeded(reply)
        detail = reply.body[:200].decode(errors="replace") if reply.status is not None else reply.error
        with self._lock:
            if attempt != self.attempt:
                return True  # the container changed while probing: the result is for a dead one
            self.probes.append(
                ProbeResult(probe.kind, attempt, sent, reply.elapsed, ok, reply.status, detail)
            )
        if state["last"] == ok:
            state["run"] += 1
        else:
            state["last"], state["run"] = ok, 1
        threshold = 1 if ok else probe.failure_threshold
        if state["run"] < threshold:
            return True
        with self._lock:
            if probe.kind == "readiness":
                self._set_ready(attempt, ok)
            elif probe.kind == "startup" and ok:
                self.event("startup probe passed: Started")
                self._mark_started(attempt)
                if "readiness" in self._triggers:
                    self._triggers["readiness"].set()  # the prober manager's manual trigger
            elif not ok:
                self.event(f"{probe.kind} probe failed {state['run']} times: the container will be restarted")
                state["on_hold"], state["run"] = True, 0
                self._queue.put(("probe-failed", probe.kind, attempt))
        return True

    def _wait(self, flag, what, timeout):
        deadline = time.monotonic() + timeout
        while not flag.wait(0.05):
            if self.failure:
                raise PodFailed(f"{self.name}: {self.failure}\n{self.describe()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: not {what} after {timeout} s\n{self.describe()}")
        return self
