"""A `kubectl` that answers from an emulated Cluster's own state, for running tools/verify.py against it.

`KubectlServer(cluster)` serves from a thread of the test process over a Unix socket, and writes an
executable `kubectl` (a shell line running kubectl_client.py) into a directory of its own; `env()` is the
environment with that directory first on PATH, for the command under test only.

It answers exactly the calls `verify.Cluster` makes, `-n NAMESPACE` first; another namespace is empty
(NotFound, no pods), as on a cluster:

    get deployment NAME -o json          the rendered Deployment with the API server's defaults where verify
    get service NAME -o json             reads them (probe timing, port protocol, targetPort) and a status
                                         counted from the live pods; a name not in the overlay is NotFound
    get pods -l KEY=VALUE[,...] -o json  the live pods: Ready/ContainersReady conditions, containerStatuses
                                         (ready, started, restartCount), podIP, hostIP, and
                                         deletionTimestamp once deleted, until the kubelet is done with them
    logs POD                             the current container's log (Pod.logs)
    exec deploy/NAME -c CONTAINER -- CMD  in the real container of a running (Ready first) pod, podman exec;
                                         CMD's exit status, with kubectl's "command terminated" line
    delete pod NAME --wait=false         Cluster.delete_pod: the kubelet's deletion (preStop, SIGTERM, grace
                                         period) in the background and a replacement pod, as the ReplicaSet

Anything else exits 1 with "unsupported kubectl call: ..." on stderr, so verify cannot drift from what this
module knows. Not emulated: resourceVersion, uid of anything but pods, events, and every other field
verify does not read.
"""

import copy
import json
import os
import shlex
import socketserver
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from . import podman as pm

CLIENT = Path(__file__).resolve().parent / "kubectl_client.py"

# What the API server fills in for fields a manifest leaves out (the ones verify reads, and their neighbours).
PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
DEPLOYMENT_DEFAULTS = {
    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
    "revisionHistoryLimit": 10,
    "progressDeadlineSeconds": 600,
}
POD_SPEC_DEFAULTS = {
    "restartPolicy": "Always",
    "dnsPolicy": "ClusterFirst",
    "terminationGracePeriodSeconds": 30,
    "schedulerName": "default-scheduler",
    "securityContext": {},
}


class Answer(Exception):
    """kubectl's output for a call that fails: stderr and the exit status."""

    def __init__(self, stderr, code=1):
        super().__init__(stderr)
        self.stderr, self.code = stderr, code


def unsupported(argv):
    return Answer(f"unsupported kubectl call: kubectl {shlex.join(argv)} (testbed/kubectl.py)\n")


def not_found(resource, name):
    return Answer(f'Error from server (NotFound): {resource} "{name}" not found\n')


def timestamp(monotonic):
    """A time.monotonic() value as the API's RFC 3339 UTC timestamp."""
    wall = time.time() - (time.monotonic() - monotonic)
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def selector_matches(selector, labels):
    """`-l key=value,key2==value2` (equality only) against a pod's labels."""
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        if not sep or not key or "!" in key:
            raise Answer(f"unsupported kubectl call: label selector {selector!r} (equality only)\n")
        if labels.get(key.strip()) != value.removeprefix("=").strip():
            return False
    return True


def with_pod_defaults(pod_spec):
    spec = {**copy.deepcopy(POD_SPEC_DEFAULTS), **copy.deepcopy(pod_spec)}
    for container in spec["containers"]:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(kind)
            if probe is not None:
                for key, value in PROBE_DEFAULTS.items():
                    probe.setdefault(key, value)
                if "httpGet" in probe:
                    probe["httpGet"].setdefault("scheme", "HTTP")
    return spec


class KubectlServer:
    """The API server and kubelet of `cluster` as kubectl sees them; a context manager."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.calls = []  # every argv received, in order
        self.errors = []  # bugs of this module met while answering (each also answered as exit 1)
        self.directory = Path(tempfile.mkdtemp(prefix="testbed-kubectl-"))  # short: a socket path is <108
        socket_path = self.directory / "kubectl.sock"
        executable = self.directory / "kubectl"
        executable.write_text(
            f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -S {shlex.quote(str(CLIENT))} "
            f'{shlex.quote(str(socket_path))} "$@"\n'
        )
        executable.chmod(0o755)
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                argv = json.loads(self.rfile.read())
                self.wfile.write(json.dumps(server.answer(argv)).encode())

        self._server = socketserver.ThreadingUnixStreamServer(str(socket_path), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="kubectl-api", daemon=True)
        self._thread.start()

    def env(self):
        """The environment for a command under test: this `kubectl` first on PATH."""
        return {**os.environ, "PATH": f"{self.directory}{os.pathsep}{os.environ.get('PATH', '')}"}

    def close(self):
        self._server.shutdown()
        self._server.server_close()
        for path in self.directory.iterdir():
            path.unlink()
        self.directory.rmdir()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # ---- dispatch ------------------------------------------------------------------------------------------

    def answer(self, argv):
        """{"stdout", "stderr", "code"} for one kubectl command line."""
        self.calls.append(argv)
        try:
            stdout = self._run(argv)
        except Answer as failure:
            return {"stdout": "", "stderr": failure.stderr, "code": failure.code}
        except Exception as exc:  # a bug here must fail the test, not pass for a kubectl error
            self.errors.append(f"kubectl {shlex.join(argv)}: {exc!r}")
            return {"stdout": "", "stderr": f"testbed kubectl: internal error: {exc!r}\n", "code": 1}
        if isinstance(stdout, dict):  # exec: the command's own streams and status
            return stdout
        return {"stdout": stdout, "stderr": "", "code": 0}

    def _run(self, argv):
        if argv[:1] != ["-n"] or len(argv) < 3:
            raise unsupported(argv)
        namespace, args = argv[1], argv[2:]
        here = namespace == self.cluster.namespace
        match args:
            case ["get", ("deployment" | "service") as kind, name, "-o", "json"]:
                return self._get(kind, name) if here else self._missing(kind, name)
            case ["get", "pods", "-l", selector, "-o", "json"]:
                items = [self._pod_object(pod) for pod in self._pods(selector)] if here else []
                return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=4)
            case ["logs", name]:
                return self._logs(self._pod(name, here))
            case ["exec", target, "-c", container, "--", *command] if target.startswith("deploy/"):
                return self._exec(target.removeprefix("deploy/"), container, command, here)
            case ["delete", "pod", name, "--wait=false"]:
                pod = self._pod(name, here)
                if not pod.deleting:
                    self.cluster.delete_pod(pod)
                return f'pod "{name}" deleted\n'
        raise unsupported(argv)

    # ---- objects -------------------------------------------------------------------------------------------

    def _missing(self, kind, name):
        raise not_found("deployments.apps" if kind == "deployment" else "services", name)

    def _get(self, kind, name):
        try:
            obj = copy.deepcopy(self.cluster.manifests.get(kind.capitalize(), name))
        except KeyError:
            self._missing(kind, name)
        obj["metadata"].setdefault("namespace", self.cluster.namespace)
        if kind == "deployment":
            self._deployment_fields(obj)
        else:
            for port in obj["spec"].get("ports", []):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port["port"])
            obj["spec"].setdefault("sessionAffinity", "None")
            obj["spec"]["clusterIP"] = self.cluster.service_ip(name)
        return json.dumps(obj, indent=4)

    def _deployment_fields(self, deployment):
        spec = deployment["spec"]
        for key, value in DEPLOYMENT_DEFAULTS.items():
            spec.setdefault(key, copy.deepcopy(value))
        spec.setdefault("replicas", 1)
        spec["template"]["spec"] = with_pod_defaults(spec["template"]["spec"])
        pods = [pod for pod in self._live_pods() if pod.plan.deployment == deployment["metadata"]["name"]]
        current = [pod for pod in pods if not pod.deleting]
        ready = [pod for pod in current if pod.ready.is_set()]
        counts = {
            "replicas": len(current),
            "updatedReplicas": len(current),
            "readyReplicas": len(ready),
            "availableReplicas": len(ready),
            "unavailableReplicas": spec["replicas"] - len(ready),
        }
        # The API omits a count that is zero.
        deployment["status"] = {"observedGeneration": 1, **{k: v for k, v in counts.items() if v > 0}}

    def _live_pods(self):
        return [pod for pod in list(self.cluster.pods) if not pod.gone.is_set()]

    def _pods(self, selector):
        return [pod for pod in self._live_pods() if selector_matches(selector, pod.plan.labels)]

    def _pod(self, name, here):
        for pod in self._live_pods() if here else []:
            if pod.name == name:
                return pod
        raise not_found("pods", name)

    def _pod_object(self, pod):
        plan = pod.plan
        template_hash = plan.template_hash[:9]
        metadata = {
            "name": pod.name,
            "generateName": f"{plan.deployment}-{template_hash}-",
            "namespace": plan.namespace,
            "uid": pod.downward.uid,
            "labels": {**plan.labels, "pod-template-hash": template_hash},
            "creationTimestamp": timestamp(pod.created_at or time.monotonic()),
        }
        if pod.deleting:
            metadata["deletionTimestamp"] = timestamp(pod.deleted_at)
            metadata["deletionGracePeriodSeconds"] = int(plan.grace)
        spec = with_pod_defaults(plan.template["spec"])
        spec["nodeName"] = self.cluster.node_name
        ready = pod.ready.is_set()
        started = pod.attempt >= 0
        if pod.running:
            state = {"running": {"startedAt": timestamp(pod.started_at[pod.attempt])}}
        elif started:
            state = {"waiting": {"reason": "CrashLoopBackOff"}}
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        conditions = [
            ("PodScheduled", True),
            ("Initialized", True),
            ("ContainersReady", ready),
            ("Ready", ready),
        ]
        status = {
            "phase": "Running" if started else "Pending",
            "hostIP": self.cluster.host_ip,
            "podIP": pod.ip,
            "podIPs": [{"ip": pod.ip}],
            "conditions": [{"type": kind, "status": str(value)} for kind, value in conditions],
            "containerStatuses": [
                {
                    "name": plan.name,
                    "image": plan.image,
                    "ready": ready,
                    "started": pod.started.is_set(),
                    "restartCount": pod.restarts,
                    "state": state,
                }
            ],
        }
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}

    # ---- logs and exec -------------------------------------------------------------------------------------

    def _logs(self, pod):
        if pod.attempt < 0:
            raise Answer(
                f'Error from server (BadRequest): container "{pod.plan.name}" in pod "{pod.name}" '
                "is waiting to start: ContainerCreating\n"
            )
        return pod.logs()

    def _exec(self, deployment, container, command, here):
        if not command:
            raise Answer("error: you must specify at least one command for the container\n")
        if not here:
            raise not_found("deployments.apps", deployment)
        try:
            self.cluster.manifests.get("Deployment", deployment)
        except KeyError:
            raise not_found("deployments.apps", deployment) from None
        pods = [pod for pod in self._live_pods() if pod.plan.deployment == deployment and pod.running]
        if not pods:
            raise Answer(f'error: unable to upgrade connection: container not found ("{container}")\n')
        # kubectl execs into the first pod of the Deployment, the ones most likely to serve first.
        pod = max(pods, key=lambda p: (not p.deleting, p.ready.is_set()))
        if container != pod.plan.name:
            raise Answer(
                f"Error from server (BadRequest): container {container} is not valid for pod {pod.name}\n"
            )
        try:
            result = pod.exec(*command)
        except pm.PodmanError as exc:
            raise Answer(f"error: {exc}\n") from None
        stderr = result.stderr
        if result.returncode != 0:
            stderr += f"command terminated with exit code {result.returncode}\n"
        return {"stdout": result.stdout, "stderr": stderr, "code": result.returncode}
