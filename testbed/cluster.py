"""An emulated one-node cluster for one test: a podman network standing in for the pod network.

Pods get static IPs on the network (so POD_IP is known when the container is created, as the Downward API
has it); the network's gateway plays the node (status.hostIP). Each Service has a ClusterIP: its proxy pod
(kube_proxy.py) listens there and spreads new connections over the Service's endpoints, and the cluster's own
DNS pod (nameserver.py, in CoreDNS's place) resolves svc-backend.task-03.svc.cluster.local to that address,
always. The endpoints are what the EndpointSlice controller and kube-proxy make of the pods: the ones the
Service selects that are Ready and not terminating (or, while there is none, the Ready terminating ones:
kube-proxy's fallback, KEP-1669), published to the proxy `propagation_delay` seconds after a pod changes,
the time kube-proxy on a busy node takes to see it. A rollout changes endpoints, never DNS.

Deployments: `replicas` pods each; `delete_pod` and `evict` replace a pod as its ReplicaSet does (eviction
refused when the PodDisruptionBudget would be broken); `rollout_restart` rolls out a new pod template as the
Deployment controller does (rollout.py).
"""

import ipaddress
import json
import queue
import secrets
import socket
import threading
import time

from . import podman as pm
from . import traffic
from .kube_proxy import ServiceProxy
from .kubelet import Pod
from .nameserver import ClusterDNS
from .podspec import CLUSTER_DOMAIN, PodPlan, UnsupportedField, selects, service_selector
from .rollout import Rollout

PROPAGATION_DELAY = 1.0  # s from a pod's change to kube-proxy's rules on a busy node
# The rollout scenarios' delay: just under the pods' preStop sleep (5 s), which must outlast it by a margin
# (1 s here), so a rollout passes with the manifests' sleep and fails with a shorter one (tests/e2e scenario
# 14). The hook's steps before the sleep (exec, podkit.stop, the frontend's curl) add 0.25-0.55 s: the old
# pods left the endpoints 1.26-1.55 s before their SIGTERM (4 runs, 2026-12-04).
ROLLOUT_PROPAGATION_DELAY = 4.0


class EvictionRefused(RuntimeError):
    """The API server's 429 to an eviction that would break a PodDisruptionBudget."""


class Cluster:
    def __init__(self, manifests, session, name, propagation_delay=PROPAGATION_DELAY):
        self.manifests = manifests
        self.propagation_delay = propagation_delay
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
        self.plans = {}  # Deployment name -> the PodPlan of its current template (a rollout changes it)
        self.proxies = {}  # Service name -> its ServiceProxy
        self.endpoint_history = []  # (time.monotonic() when published, Service, [pod IPs])
        self._published = {}  # Service name -> the endpoints the proxy has now
        self._changes = queue.Queue()  # (when to publish, endpoints of every Service), in order
        self._endpoints_lock = threading.Lock()
        self._history_lock = threading.Lock()
        pm.podman("network", "create", "--disable-dns", *pm.labels(session), self.network)
        info = json.loads(pm.podman("network", "inspect", self.network).stdout)[0]
        subnet = info["subnets"][0]
        self.host_ip = subnet["gateway"]
        hosts = list(ipaddress.ip_network(subnet["subnet"]).hosts())
        self._free_ips = (str(ip) for ip in hosts if ip.packed[-1] >= 10 and ip != hosts[-1])
        self.dns = None
        self.volume = f"{self.network}-endpoints"
        try:
            dns_ip = str(hosts[-1])
            self.dns = ClusterDNS(session, f"{self.network}-dns", self.network, dns_ip, CLUSTER_DOMAIN)
            self._start_proxies(session, [str(ip) for ip in reversed(hosts[-20:-1])])
        except Exception:
            self.close()
            raise
        threading.Thread(target=self._publish_changes, name=f"{self.network}-kube-proxy", daemon=True).start()

    def _start_proxies(self, session, addresses):
        """A proxy pod per Service at its ClusterIP, and DNS names that resolve to it."""
        pm.podman("volume", "create", *pm.labels(session), self.volume)
        directory = pm.podman("volume", "inspect", "--format", "{{.Mountpoint}}", self.volume).stdout.strip()
        records = {}
        services = [
            s for s in self.manifests.of_kind("Service") if s["metadata"].get("namespace") == self.namespace
        ]
        for service, ip in zip(
            sorted(services, key=lambda s: s["metadata"]["name"]), addresses, strict=False
        ):
            name = service["metadata"]["name"]
            service_selector(service)  # refuses one it cannot emulate before anything starts
            ports = [port["port"] for port in service["spec"]["ports"]]
            proxy_name = f"{self.network}-svc-{name}"
            self.proxies[name] = ServiceProxy(
                session, proxy_name, self.network, ip, self.volume, directory, name, ports
            )
            self._published[name] = []
            records[f"{name}.{self.namespace}.svc.{CLUSTER_DOMAIN}"] = [ip]
        self.dns.publish(records)

    def run_pod(self, deployment):
        """Create a pod of the Deployment (as its ReplicaSet would) and start it; returns the Pod.

        `deployment` names one in the rendered overlay, or is a Deployment object of its own (the
        benchmark's bare-WSGI variant of the frontend)."""
        plan = self.plan(deployment) if isinstance(deployment, str) else PodPlan(deployment, self.manifests)
        return self.new_pod(plan).start()

    def plan(self, deployment):
        """The PodPlan of a Deployment's current template."""
        if deployment not in self.plans:
            self.plans[deployment] = self.manifests.pod_plan(deployment)
        return self.plans[deployment]

    def new_pod(self, plan):
        pod = Pod(self, plan, next(self._free_ips))
        self.pods.append(pod)
        return pod

    def apply(self):
        """Every Deployment's replicas, started together as `kubectl apply -k` starts them, Ready and in
        their Services' endpoints; returns (backend, frontend), the last pod of each.

        The frontend gets the longer wait: its startup probe waits for the backend."""
        for deployment in ("backend", "frontend"):
            for _ in range(self.plan(deployment).replicas):
                self.run_pod(deployment)
        for deployment, timeout in (("frontend", 90), ("backend", 30)):
            for pod in self.live_pods(deployment):
                pod.wait_ready(timeout=timeout)
        self.wait_endpoints(lambda: all(self.in_endpoints(pod) for pod in self.pods), "every pod")
        return self.pod("backend"), self.pod("frontend")

    def live_pods(self, deployment):
        """The pods of a Deployment that are not terminating (the ReplicaSets' replicas), oldest first."""
        return [
            p for p in self.pods if p.plan.deployment == deployment and not p.gone.is_set() and not p.deleting
        ]

    def delete_pod(self, pod, grace=None):
        """`kubectl delete pod --wait=false` of a Deployment's pod; returns its replacement, starting.

        The kubelet's deletion (preStop, SIGTERM, SIGKILL) runs in the background, and the ReplicaSet creates
        the replacement at once (a terminating pod no longer counts as a replica); it starts in the
        background too, and a start that fails is the replacement's `failure`."""
        pod.delete(grace, wait=False)
        return self.start_in_background(self.new_pod(pod.plan))

    def evict(self, pod, grace=None):
        """The Eviction API (what `kubectl drain` calls): refused while the pod's PodDisruptionBudget would
        fall below minAvailable (healthy: Ready and not terminating); else `delete_pod`."""
        for budget in self.manifests.budgets_selecting(pod.plan.namespace, pod.plan.labels):
            selector = budget["spec"]["selector"]["matchLabels"]
            healthy = [
                p
                for p in self.pods
                if selects(selector, p.plan.labels)
                and p.ready.is_set()
                and not p.deleting
                and not p.gone.is_set()
            ]
            minimum = budget["spec"]["minAvailable"]
            if pod in healthy and len(healthy) - 1 < minimum:
                raise EvictionRefused(
                    f"429 Cannot evict pod as it would violate the pod's disruption budget "
                    f"{budget['metadata']['name']}: {len(healthy)} healthy, minAvailable {minimum}"
                )
        pod.event("evicted")
        return self.delete_pod(pod, grace)

    def rollout_restart(self, deployment, timeout=300):
        """`kubectl rollout restart` then `kubectl rollout status`: the Rollout, once complete."""
        return Rollout(self, deployment).run(timeout)

    def start_in_background(self, replacement):
        """Start a new pod in a thread, as the kubelet does once the pod is bound; returns it, starting."""

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
        """GET through a Service, as a client of it: to its ClusterIP's port published on 127.0.0.1, with
        `Host: <service>.<namespace>.svc.cluster.local:<port>`, once the Service has an endpoint."""
        self.wait_endpoints(lambda: self.published_endpoints(service), f"an endpoint of {service}")
        return traffic.get(self.service_port(service), path, self.service_host(service), timeout)

    def service_port(self, service):
        """The host port (127.0.0.1) where the Service's first port is published, as a NodePort would be."""
        return next(iter(self.proxies[service].host_ports.values()))

    def service_host(self, service):
        port = next(iter(self.proxies[service].host_ports))
        return f"{service}.{self.namespace}.svc.{CLUSTER_DOMAIN}:{port}"

    def service_ip(self, service):
        return self.proxies[service].ip

    def published_endpoints(self, service):
        """The pod IPs the Service's proxy spreads new connections over now."""
        with self._history_lock:
            return list(self._published[service])

    def in_endpoints(self, pod):
        """The pod's IP is in the endpoints published to every Service that selects it."""
        services = self.manifests.services_selecting(pod.plan.namespace, pod.plan.labels)
        with self._history_lock:
            return all(pod.ip in self._published[s["metadata"]["name"]] for s in services)

    def wait_endpoints(self, predicate, what, timeout=None):
        deadline = time.monotonic() + (timeout or self.propagation_delay + 30)
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"not in the endpoints in time: {what}; published: {self._published}")
            time.sleep(0.05)

    def endpoints_changed(self):
        """A pod's readiness or deletion changed: what the endpoints are now reaches the proxies after the
        propagation delay (the EndpointSlice controller, then kube-proxy's sync)."""
        with self._endpoints_lock:  # snapshots queued in the order they were taken
            self._changes.put((time.monotonic() + self.propagation_delay, self._endpoints_now()))

    def _endpoints_now(self):
        endpoints = {}
        pods = list(self.pods)
        for name in self.proxies:
            service = self.manifests.get("Service", name)
            selector = service_selector(service)
            selected = [
                p
                for p in pods
                if selects(selector, p.plan.labels) and p.running and p.ready.is_set() and not p.gone.is_set()
            ]
            # Ready and not terminating; while there is none, the serving terminating ones (KEP-1669).
            chosen = [p for p in selected if not p.deleting] or selected
            endpoints[name] = {
                port["port"]: [
                    (p.ip, p.plan.port_number(port.get("targetPort", port["port"]))) for p in chosen
                ]
                for port in service["spec"]["ports"]
            }
        return endpoints

    def _publish_changes(self):
        while True:
            due, endpoints = self._changes.get()
            if endpoints is None:
                return
            time.sleep(max(0.0, due - time.monotonic()))
            for name, ports in endpoints.items():
                ips = sorted({ip for found in ports.values() for ip, _ in found})
                if ips == self._published.get(name):
                    continue
                try:
                    self.proxies[name].publish(ports)
                except OSError:
                    return  # the cluster is being removed
                with self._history_lock:
                    self._published[name] = ips
                    self.endpoint_history.append((time.monotonic(), name, ips))

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
        self._changes.put((0, None))
        for proxy in self.proxies.values():
            proxy.close()
        if self.dns is not None:
            self.dns.close()
        pm.podman("volume", "rm", "--force", self.volume, check=False)
        pm.podman("network", "rm", "--force", self.network, check=False)
