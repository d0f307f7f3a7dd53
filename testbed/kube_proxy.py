"""The Services' virtual addresses, kube-proxy's place: one proxy pod per Service (service_proxy.py).

Each runs at the Service's ClusterIP on the pod network, listens on the Service's ports, and publishes them
on 127.0.0.1 so the host can be a client of the Service (as through a NodePort). The endpoints it spreads
new connections over come from a file in a labelled volume that `publish()` replaces atomically; the Cluster
decides what goes in it and when (after the propagation delay).
"""

import time
from pathlib import Path

from . import net
from . import podman as pm
from .nameserver import IMAGE, replace_json

SERVER = Path(__file__).with_name("service_proxy.py")


class ServiceProxy:
    def __init__(self, session, name, network, ip, volume, directory, service, ports):
        """Start the proxy of `service` at `ip` with no endpoint yet; `ports` are the Service's ports."""
        self.name, self.ip, self.service = name, ip, service
        self.file = Path(directory) / f"{service}.json"
        self.host_ports = {port: net.free_port() for port in ports}
        self.publish({})
        run = ["--detach", "--name", name, *pm.labels(session), "--pull", "never", *pm.RLIMITS]
        run += ["--log-driver", "k8s-file", "--network", network, "--ip", ip, "--read-only"]
        run += ["--user", "65534:65534", "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"]
        run += ["--volume", f"{volume}:/endpoints:ro", "--volume", f"{SERVER}:/service_proxy.py:ro"]
        for port, host_port in self.host_ports.items():
            run += ["--publish", f"127.0.0.1:{host_port}:{port}"]
        command = ["python", "-u", "/service_proxy.py", f"/endpoints/{self.file.name}", *map(str, ports)]
        pm.podman("run", *run, IMAGE, *command)
        self._wait_listening(timeout=30)

    def publish(self, endpoints):
        """Replace the endpoints ({service port: [(pod IP, target port), ...]}) at once."""
        replace_json(self.file, {str(port): [list(e) for e in found] for port, found in endpoints.items()})

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        while "proxying ports" not in pm.logs(self.name):
            if time.monotonic() > deadline:
                raise pm.PodmanError(f"the proxy of {self.service} does not start:\n{pm.logs(self.name)}")
            time.sleep(0.1)

    def close(self):
        pm.podman("rm", "--force", "--time", "0", self.name, check=False)
