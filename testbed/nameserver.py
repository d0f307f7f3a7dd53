"""The cluster's DNS pod: the emulator's own name server on the pod network, as CoreDNS is in a cluster.

podman's aardvark-dns stops answering for a moment whenever a container joins or leaves a network (a lookup
seen failing, or lost until glibc asked again 5 s later), so the pod network is created with
`--disable-dns` and this pod answers instead: `dns_server.py` run by the base image's Python, on an address
of its own, reading its records from a labelled volume that `publish()` rewrites atomically. Running as a
container keeps the network's bridge up for the cluster's whole life (netavark deletes the bridge, and the
gateway address with it, when the last container leaves) and lets `podman.remove_leftovers` find it.
"""

import json
import os
import time
from pathlib import Path

from . import dns_server
from . import podman as pm

IMAGE = "docker.io/library/python:3.12-slim"  # present wherever the services' images are built
SERVER = Path(__file__).with_name("dns_server.py")
RECORDS = "records.json"


def replace_json(path, value):
    """Write `value` as JSON to `path` atomically (write, then rename), readable by the pods' users."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(value, sort_keys=True))
    temporary.chmod(0o644)
    temporary.replace(path)


class ClusterDNS:
    def __init__(self, session, name, network, ip, zone):
        """Start the server at `ip` on `network`, answering no name yet; returns once it answers."""
        self.name, self.ip = name, ip
        pm.podman("volume", "create", *pm.labels(session), name)
        mountpoint = pm.podman("volume", "inspect", "--format", "{{.Mountpoint}}", name).stdout.strip()
        self.records = Path(mountpoint)
        self.publish({})
        run = ["--detach", "--name", name, *pm.labels(session), "--pull", "never", *pm.RLIMITS]
        run += ["--log-driver", "k8s-file", "--network", network, "--ip", ip, "--read-only"]
        run += ["--user", "65534:65534", "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"]
        run += ["--volume", f"{name}:/records:ro", "--volume", f"{SERVER}:/dns_server.py:ro"]
        pm.podman("run", *run, IMAGE, "python", "-u", "/dns_server.py", f"/records/{RECORDS}", zone)
        self._wait_answering(f"ready.{zone}", timeout=30)

    def publish(self, records):
        """Replace every record ({name: [addresses]}) at once: queries after this return see the new ones."""
        replace_json(self.records / RECORDS, records)

    def _wait_answering(self, name, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                dns_server.ask(self.ip, name, timeout=0.5)
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise pm.PodmanError(
                        f"the cluster DNS at {self.ip} does not answer ({exc!r}):\n{pm.logs(self.name)}"
                    ) from exc
                time.sleep(0.1)

    def close(self):
        pm.podman("rm", "--force", "--time", "0", self.name, check=False)
        pm.podman("volume", "rm", "--force", self.name, check=False)
