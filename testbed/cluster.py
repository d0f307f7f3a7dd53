"""An emulated one-node cluster for one test: a podman network standing in for the pod network.

Pods get static IPs on the network (so POD_IP is known when the container is created, as the Downward API
has it); the network's gateway plays the node (status.hostIP). Services are DNS names only, answered by the
cluster's own DNS pod (nameserver.py, in CoreDNS's place; podman's aardvark-dns is off): each Service's
name svc-backend.task-03.svc.cluster.local resolves to the IPs of the pods it selects whose container is
running, and every container gets the resolv.conf the kubelet writes for dnsPolicy ClusterFirst (that server
only, the pod's search list, ndots:5), so svc-backend, svc-backend.task-03 and svc-backend.task-03.svc
resolve through the search list as they do in a pod. Differences from kube-proxy: there is no ClusterIP, so
a Service's port must equal its targetPort, and while no pod backs a Service its name does not resolve
(NXDOMAIN) where Kubernetes would resolve it and refuse the connection - both fail fast.
"""

import ipaddress
import json
import secrets
import socket
import threading

from . import podman as pm
from . import traffic
from .kubelet import Pod
from .nameserver import ClusterDNS
from .podspec import CLUSTER_DOMAIN, PodPlan, UnsupportedField


class Cluster:
    def __init__(self, manifests, session, name):
        self.manifests = manifests
        self.session = session
        self.prefix = f"e2e-{session}-{name}"
        self.network = f"{self.prefix}-{secrets.token_hex(2)}"
        self.node_name = socket.gethostname()
        self.pods = []
        namespaces = {d["metadata"].get("namespace", "default") for d in manifests.of_kind("Deployment")}
        if len(namespaces) != 1:
            raise UnsupportedField(f"Deployments in several namespaces: {sorted(namespaces)}")
        self.namespace = namespaces.pop()
        self._image_users = {}
        self._serving = set()  # pods whose container is up: their IPs are in the DNS records
        self._records_lock = threading.Lock()
        pm.podman("network", "create", "--disable-dns", *pm.labels(session), self.network)
        info = json.loads(pm.podman("network", "inspect", self.network).stdout)[0]
        subnet = info["subnets"][0]
        self.host_ip = subnet["gateway"]
        hosts = list(ipaddress.ip_network(subnet["subnet"]).hosts())
        self._free_ips = (str(ip) for ip in hosts if ip.packed[-1] >= 10 and ip != hosts[-1])
        try:
            dns_ip = str(hosts[-1])
            self.dns = ClusterDNS(session, f"{self.network}-dns", self.network, dns_ip, CLUSTER_DOMAIN)
        except Exception:
            pm.podman("network", "rm", "--force", self.network, check=False)
            raise

    def run_pod(self, deployment):
        """Create a pod of the Deployment (as its ReplicaSet would) and start it; returns the Pod.

        `deployment` names one in the rendered overlay, or is a Deployment object of its own (the
        benchmark's bare-WSGI variant of the frontend)."""
        if isinstance(deployment, str):
            plan = self.manifests.pod_plan(deployment)
        else:
            plan = PodPlan(deployment, self.manifests)
        pod = Pod(self, plan, next(self._free_ips))
        self.pods.append(pod)
        return pod.start()

    def apply(self):
        """Both pods, started together as `kubectl apply -k` starts them, and Ready: (backend, frontend).

        The frontend gets the longer wait: its startup probe waits for the backend."""
        backend = self.run_pod("backend")
        frontend = self.run_pod("frontend")
        frontend.wait_ready(timeout=90)
        backend.wait_ready(timeout=30)
        return backend, frontend

    def delete_pod(self, pod, grace=None):
        """`kubectl delete pod --wait=false` of a Deployment's pod; returns its replacement, starting.

        The kubelet's deletion (preStop, SIGTERM, SIGKILL) runs in the background, and the ReplicaSet creates
        the replacement at once (a terminating pod no longer counts as a replica); it starts in the
        background too, and a start that fails is the replacement's `failure`."""
        pod.delete(grace, wait=False)
        replacement = Pod(self, pod.plan, next(self._free_ips))
        self.pods.append(replacement)

        def start():
            try:
                replacement.start()
            except Exception as exc:  # surfaced by wait_*() and the fixtures' teardown
                replacement.failure = f"start failed: {exc!r}"
                replacement.gone.set()

        threading.Thread(target=start, name=f"{replacement.name}-create", daemon=True).start()
        return replacement

    def pod(self, deployment):
        """The live pod of a Deployment (the latest one created)."""
        for pod in reversed(self.pods):
            if pod.plan.deployment == deployment and not pod.gone.is_set():
                return pod
        raise LookupError(f"no live pod of {deployment}")

    def service_get(self, service, path, timeout=5.0):
        """GET through a Service's name, as a client of it: to the published port of the live pod it
        selects, with `Host: <service>.<namespace>.svc.cluster.local:<port>`."""
        spec = self.manifests.get("Service", service)["spec"]
        port = spec["ports"][0]["port"]
        for pod in reversed(self.pods):
            selected = all(pod.plan.labels.get(k) == v for k, v in spec["selector"].items())
            if selected and not pod.gone.is_set():
                host = f"{service}.{self.namespace}.svc.{CLUSTER_DOMAIN}:{port}"
                return traffic.get(pod.host_ports[pod.plan.port_number(port)], path, host, timeout)
        raise LookupError(f"no live pod behind Service {service}")

    def service_names(self, plan):
        """The DNS name of every Service selecting this pod; refuses what DNS alone cannot emulate."""
        names = []
        for service in self.manifests.services_selecting(plan.namespace, plan.labels):
            name = service["metadata"]["name"]
            for port in service["spec"]["ports"]:
                target = plan.port_number(port.get("targetPort", port["port"]))
                if target != port["port"]:
                    raise UnsupportedField(
                        f"Service {name}: port {port['port']} -> targetPort {target} needs a proxy"
                    )
            names.append(f"{name}.{plan.namespace}.svc.{CLUSTER_DOMAIN}")
        return names

    def serving(self, pod, up):
        """The kubelet tells that the pod's container is about to start (up) or has stopped: the Services'
        names follow at once (the records are replaced before this returns)."""
        with self._records_lock:
            (self._serving.add if up else self._serving.discard)(pod)
            endpoints = {}  # Service name -> its pods' IPs (no ClusterIP: the name answers with those)
            for serving in sorted(self._serving, key=lambda p: p.ip):
                for name in self.service_names(serving.plan):
                    endpoints.setdefault(name, []).append(serving.ip)
            self.dns.publish(endpoints)

    def run_args(self, pod, container):
        """Everything after `podman run` for the current container of `pod`."""
        plan = pod.plan
        env = plan.env(pod.downward)
        command, args = plan.command_and_args()
        namespace = plan.namespace
        run = [
            "--detach",
            "--name",
            container,
            *pm.labels(self.session),
            "--label",
            f"io.task03.e2e.pod={pod.name}",
        ]
        run += ["--pull", plan.pull_policy(), "--log-driver", "k8s-file", *pm.RLIMITS]
        # A restarted container keeps the pod's IP and MAC, as it keeps the pod sandbox's network namespace
        # in Kubernetes: with a new MAC, peers' neighbour caches send answers to the old one for seconds.
        mac = "02:00:" + ":".join(f"{byte:02x}" for byte in ipaddress.ip_address(pod.ip).packed)
        run += ["--hostname", pod.name, "--network", self.network, "--ip", pod.ip, "--mac-address", mac]
        self.service_names(plan)  # refuses a Service it cannot emulate before anything starts
        run += self._dns_args(namespace)
        for container_port, host_port in pod.host_ports.items():
            run += ["--publish", f"127.0.0.1:{host_port}:{container_port}"]
        run += plan.security_args(self._image_user(plan.image))
        run += plan.volume_args()
        run += plan.resource_args()
        for key, value in env.items():
            run += ["--env", f"{key}={value}"]
        if command is not None:
            run += ["--entrypoint", json.dumps(command)]
        return [*run, plan.image, *args]

    def run_client(self, image, command, timeout=60):
        """A throwaway client pod in the namespace, like `kubectl run test --rm --image=... -- curl ...`."""
        name = f"{self.prefix}-client-{secrets.token_hex(2)}"
        run = ["--rm", "--name", name, *pm.labels(self.session), "--pull", "never", *pm.RLIMITS]
        run += ["--network", self.network, *self._dns_args(self.namespace)]
        return pm.podman("run", *run, image, *command, timeout=timeout, check=False)

    def _dns_args(self, namespace):
        """The pod's resolv.conf as the kubelet writes it for dnsPolicy ClusterFirst."""
        args = ["--dns", self.dns.ip]
        for search in (f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN):
            args += ["--dns-search", search]
        return [*args, "--dns-option", "ndots:5"]

    def _image_user(self, image):
        if image not in self._image_users:
            result = pm.podman("image", "inspect", "--format", "{{.Config.User}}", image, check=False)
            if result.returncode != 0:
                # imagePullPolicy Never and no such image: the kubelet's ErrImageNeverPull.
                raise pm.PodmanError(
                    f"image {image} is not present and may not be pulled: {result.stderr.strip()}"
                )
            self._image_users[image] = result.stdout.strip()
        return self._image_users[image]

    def close(self):
        """Remove every pod and the network, whatever state they are in."""
        for pod in self.pods:
            pod.remove()
        self.dns.close()
        pm.podman("network", "rm", "--force", self.network, check=False)
